import { describe, expect, it } from 'vitest';
import type { Comparison } from '../../src/core/comparisons.js';
import { type ComparisonPlan, planEvidence } from '../../src/core/evidence-plan.js';
import type { Deploy } from '../../src/core/types.js';

// Which two series are compared for a deploy, from when to when, with which step.

const MIN = 60_000;
const AT = Date.parse('2026-11-26T11:02:00Z');
const SETTINGS = { marginMs: MIN, minStepMs: 15_000, maxPoints: 240 };

function deploy(patch: Partial<Deploy> = {}): Deploy {
  return {
    id: 'd1',
    service: 'checkout',
    environment: 'production',
    version: '2026.11.26-3f2a9c1',
    previousVersion: '2026.11.25-77b0e12',
    stage: 'full',
    hosts: [],
    at: AT,
    receivedAt: AT,
    changes: [{ author: { email: 'alice@example.com' } }],
    ...patch,
  };
}

const comparison = (query: string): Comparison => ({
  name: 'error ratio',
  query,
  bad: 'increase',
  minChange: 0.5,
  critical: true,
  unit: 'ratio',
});
const BY_VERSION = comparison(
  'sum(rate(x{service="{service}", environment="{environment}", version="{version}"}[2m]))',
);
const BY_HOSTS = comparison('sum(rate(x{service="{service}", pod=~"{hosts}", pod!~"{not_hosts}"}[2m]))');
const BOTH = comparison('sum(rate(x{version="{version}", pod=~"{hosts}", pod!~"{not_hosts}"}[2m]))');

function planOne(c: Comparison, d: Deploy, alertStartsAtMs = AT + 6 * MIN, now = AT + 7 * MIN): ComparisonPlan {
  const plan = planEvidence({ deploy: d, alertStartsAtMs, comparisons: [c], settings: SETTINGS, now });
  return plan.comparisons[0] as ComparisonPlan;
}

describe('planEvidence: the window and the step', () => {
  it.each([
    {
      intent: 'from the deploy to the alert start plus the margin',
      alert: AT + 6 * MIN,
      now: AT + 20 * MIN,
      window: { from: AT, to: AT + 7 * MIN, stepMs: 15_000 },
    },
    {
      intent: 'never past now (Prometheus would repeat its last samples into the future)',
      alert: AT + 6 * MIN,
      now: AT + 6 * MIN + 30_000,
      window: { from: AT, to: AT + 6 * MIN + 30_000, stepMs: 15_000 },
    },
    {
      intent: 'a long window gets a longer step, in whole seconds, to stay within max_points',
      alert: AT + 119 * MIN,
      now: AT + 3 * 60 * MIN,
      window: { from: AT, to: AT + 120 * MIN, stepMs: 30_000 },
    },
  ])('$intent', ({ alert, now, window }) => {
    const plan = planEvidence({
      deploy: deploy(),
      alertStartsAtMs: alert,
      comparisons: [BY_VERSION],
      settings: SETTINGS,
      now,
    });
    expect({ from: plan.from, to: plan.to, stepMs: plan.stepMs }).toEqual(window);
  });

  it('the new side covers the window; the old side reaches as far back before the deploy, on the same grid', () => {
    const p = planOne(BY_VERSION, deploy(), AT + 6 * MIN + 50_000, AT + 20 * MIN);
    if (p.kind !== 'query') throw new Error(p.reason);
    // 7 min 50 s is 31.3 steps of 15 s: the old side starts 32 steps before the deploy.
    expect(p.new).toMatchObject({ start: AT, end: AT + 7 * MIN + 50_000, stepMs: 15_000 });
    expect(p.old).toMatchObject({ start: AT - 32 * 15_000, end: AT + 7 * MIN + 50_000, stepMs: 15_000 });
  });
});

describe('planEvidence: the two sides', () => {
  it('by version: the new version against the previous one', () => {
    expect(planOne(BY_VERSION, deploy())).toMatchObject({
      kind: 'query',
      by: 'version',
      newLabel: '2026.11.26-3f2a9c1',
      oldLabel: '2026.11.25-77b0e12',
      new: {
        query: 'sum(rate(x{service="checkout", environment="production", version="2026.11.26-3f2a9c1"}[2m]))',
      },
      old: {
        query: 'sum(rate(x{service="checkout", environment="production", version="2026.11.25-77b0e12"}[2m]))',
      },
    });
  });

  it('by hosts: the canary hosts against every other host', () => {
    expect(planOne(BY_HOSTS, deploy({ stage: 'canary', hosts: ['checkout-7f9c-abcde', 'checkout.b'] }))).toMatchObject({
      kind: 'query',
      by: 'hosts',
      newLabel: 'checkout-7f9c-abcde and checkout.b',
      oldLabel: 'the other hosts',
      new: { query: 'sum(rate(x{service="checkout", pod=~"checkout-7f9c-abcde|checkout\\\\.b", pod!~""}[2m]))' },
      old: { query: 'sum(rate(x{service="checkout", pod=~".+", pod!~"checkout-7f9c-abcde|checkout\\\\.b"}[2m]))' },
    });
  });

  it('a template with both: canary hosts on the new version against the other hosts on the old one', () => {
    expect(planOne(BOTH, deploy({ stage: 'canary', hosts: ['web-1'] }))).toMatchObject({
      by: 'hosts',
      new: { query: 'sum(rate(x{version="2026.11.26-3f2a9c1", pod=~"web-1", pod!~""}[2m]))' },
      old: { query: 'sum(rate(x{version="2026.11.25-77b0e12", pod=~".+", pod!~"web-1"}[2m]))' },
    });
  });

  it('a template with both, for a deploy to every host: by version, the host matchers selecting every host', () => {
    expect(planOne(BOTH, deploy())).toMatchObject({
      by: 'version',
      new: { query: 'sum(rate(x{version="2026.11.26-3f2a9c1", pod=~".+", pod!~""}[2m]))' },
    });
  });

  it('a canary of a service whose metrics carry versions is compared by version when the template says so', () => {
    expect(planOne(BY_VERSION, deploy({ stage: 'canary', hosts: ['web-1'] }))).toMatchObject({ by: 'version' });
  });

  it('names a few canary hosts, and counts many', () => {
    const many = planOne(BY_HOSTS, deploy({ stage: 'canary', hosts: ['a', 'b', 'c', 'd'] }));
    expect(many).toMatchObject({ newLabel: 'the 4 canary hosts' });
    expect(planOne(BY_HOSTS, deploy({ stage: 'canary', hosts: ['a'] }))).toMatchObject({ newLabel: 'a' });
  });

  it.each([
    {
      intent: 'a deploy that names no previous version',
      c: BY_VERSION,
      d: deploy({ previousVersion: undefined }),
      reason: 'the deploy names no previous version to compare with',
    },
    {
      intent: 'a redeploy of the same version',
      c: BY_VERSION,
      d: deploy({ previousVersion: '2026.11.26-3f2a9c1' }),
      reason: 'the previous version is the new one (2026.11.26-3f2a9c1): nothing to compare',
    },
    {
      intent: 'a feature flag flip, which does not change the version label',
      c: BY_VERSION,
      d: deploy({ kind: 'flag', version: 'flag:new-cart=true', previousVersion: undefined }),
      reason: 'a flag change leaves the version label as it was: there is no other version to compare',
    },
    {
      intent: 'a host comparison for a deploy to every host',
      c: BY_HOSTS,
      d: deploy(),
      reason: 'the deploy lists no hosts: this comparison sets the canary hosts against the others',
    },
    {
      intent: 'an alert that started before the deploy (stamped up to the skew late)',
      c: BY_VERSION,
      d: deploy({ at: AT + 8 * MIN }),
      reason: 'no time to compare: the deploy is stamped after the alert started (plus the margin) or after now',
    },
  ])('nothing to compare: $intent', ({ c, d, reason }) => {
    expect(planOne(c, d)).toEqual({ kind: 'not_comparable', comparison: c, reason });
  });

  it('a flag flip on canary hosts can still be compared by hosts', () => {
    const flag = deploy({ kind: 'flag', version: 'flag:new-cart=true', previousVersion: undefined, hosts: ['web-1'] });
    expect(planOne(BY_HOSTS, flag)).toMatchObject({ kind: 'query', by: 'hosts' });
  });
});
