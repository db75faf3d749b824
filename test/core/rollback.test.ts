import { describe, expect, it } from 'vitest';
import { type CorrelateInput, correlate } from '../../src/core/correlate.js';
import { type RollbackClaim, rollbackOf, runningAt } from '../../src/core/rollback.js';
import type { Alert, CodeHostSource, Deploy, ServicePolicy } from '../../src/core/types.js';
import { type AttributedAlert, judge } from '../../src/core/verdict.js';

// The story, in UTC on 2026-11-26: alice deploys checkout v2 (previous v1) at 09:03; the team rolls back
// to v1 at 09:13. One line of intent per case.

const MIN = 60_000;
const at = (hhmm: string) => Date.parse(`2026-11-26T${hhmm}:00Z`);
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';

function deploy(id: string, version: string, hhmm: string, patch: Partial<Deploy> = {}): Deploy {
  return {
    id,
    kind: 'deploy',
    service: 'checkout',
    environment: 'production',
    version,
    stage: 'full',
    hosts: [],
    at: at(hhmm),
    receivedAt: at(hhmm),
    changes: [{ author: { email: version === 'v3' ? BOB : ALICE } }],
    ...patch,
  };
}

const v1 = deploy('d1', 'v1', '08:00');
const v2canary = deploy('d2c', 'v2', '09:01', { stage: 'canary' });
const v2 = deploy('d2', 'v2', '09:03', { previousVersion: 'v1' });
const v3 = deploy('d3', 'v3', '09:05');
/** Latest first, as the store answers. */
const history = (...ds: Deploy[]) => [...ds].sort((a, b) => b.at - a.at);

describe('rollbackOf: what a rollback undid', () => {
  const rb = { version: 'v1', at: at('09:13') };
  it.each<[string, { version: string; at: number }, Deploy[], RollbackClaim | undefined, Deploy | undefined, unknown]>([
    [
      'the version of an earlier deploy comes back: the deploys since are undone',
      rb,
      history(v1, v2),
      undefined,
      undefined,
      { of: ['d2'], explicit: false },
    ],
    [
      'two releases back: both later ones are undone, oldest first',
      rb,
      history(v1, v2, v3),
      undefined,
      undefined,
      { of: ['d2', 'd3'], explicit: false },
    ],
    [
      'every stage event of the undone rollout is undone',
      rb,
      history(v1, v2canary, v2),
      undefined,
      undefined,
      { of: ['d2c', 'd2'], explicit: false },
    ],
    [
      'the version already running (a restart, the next stage) undoes nothing',
      { version: 'v2', at: at('09:13') },
      history(v1, v2),
      undefined,
      undefined,
      undefined,
    ],
    [
      'a new version is no rollback',
      { version: 'v4', at: at('09:13') },
      history(v1, v2),
      undefined,
      undefined,
      undefined,
    ],
    ['nothing ran before: no rollback', rb, [], undefined, undefined, undefined],
    [
      'rollback: true, an earlier version: the same as recognised, marked explicit',
      rb,
      history(v1, v2),
      { flag: true },
      undefined,
      { of: ['d2'], explicit: true },
    ],
    [
      'rollback: true to a version never seen: the current rollout is undone',
      { version: 'v0', at: at('09:13') },
      history(v1, v2canary, v2),
      { flag: true },
      undefined,
      { of: ['d2c', 'd2'], explicit: true },
    ],
    [
      'rollback: true with nothing before: recorded, nothing known undone',
      rb,
      [],
      { flag: true },
      undefined,
      { of: [], explicit: true },
    ],
    [
      'rollbackOf names the deploy: its rollout and what followed it are undone',
      { version: 'v1', at: at('09:13') },
      history(v1, v2canary, v2, v3),
      { of: 'd2' },
      v2,
      { of: ['d2c', 'd2', 'd3'], explicit: true },
    ],
    [
      'rollbackOf the latest: only it',
      { version: 'v2', at: at('09:13') },
      history(v1, v2, v3),
      { of: 'd3' },
      v3,
      { of: ['d3'], explicit: true },
    ],
    [
      'rollbackOf a deploy older than the history read: still named',
      { version: 'v0', at: at('09:13') },
      history(v3),
      { of: 'd2' },
      v2,
      { of: ['d2', 'd3'], explicit: true },
    ],
    [
      'deploys after the rollback are not undone by it',
      { version: 'v1', at: at('09:04') },
      history(v1, v2, v3),
      undefined,
      undefined,
      { of: ['d2'], explicit: false },
    ],
  ])('%s', (_intent, event, earlier, claim, named, expected) => {
    expect(rollbackOf(event, earlier, claim, named)).toEqual(expected);
  });

  it('deploying again the version a rollback took away is no rollback: the change is back', () => {
    const rolledBack = deploy('r1', 'v1', '09:13', { changes: [], rollback: { of: ['d2'], explicit: true } });
    expect(rollbackOf({ version: 'v2', at: at('09:40') }, history(v1, v2, rolledBack))).toBeUndefined();
    expect(rollbackOf({ version: 'v2', at: at('09:40') }, history(v1, v2, rolledBack), { flag: true })).toEqual({
      of: ['r1'],
      explicit: true,
    });
    // …and an alert after it is its author's again, even when the event names no change.
    const again = deploy('d2b', 'v2', '09:40', { changes: [] });
    const r = runningAt(history(v1, v2, rolledBack, again), at('09:45'), () => true);
    expect(r).toMatchObject({ kind: 'deploy', deploy: { id: 'd2' } });
  });

  it('flag and config changes are never rolled back by a code version', () => {
    const flag = deploy('f1', 'v1', '09:00', { kind: 'flag', flag: { key: 'x', to: true } });
    expect(rollbackOf(rb, history(flag, v2))).toBeUndefined();
  });
});

/** What a code host's webhook said of a deploy, with its changes in the given state. */
const hooked = (changes: CodeHostSource['changes']): CodeHostSource => ({
  host: 'github',
  repository: 'acme/checkout',
  sha: 'a'.repeat(40),
  deploymentId: '1',
  deliveryId: 'delivery-1',
  changes,
});

describe('runningAt: which deploy was running when the alert started', () => {
  const rollback = deploy('r1', 'v1', '09:13', { changes: [], rollback: { of: ['d2'], explicit: true } });
  const all = () => true;
  it.each<[string, Deploy[], string, string, string | undefined]>([
    [
      'after the rollback: the rollback decides, with what it undid',
      history(v2, rollback),
      '09:20',
      'after_rollback',
      'r1',
    ],
    ['at the rollback itself: already rolled back', history(v2, rollback), '09:13', 'after_rollback', 'r1'],
    [
      'before the rollback (even within the skew): the rolled-back deploy, marked',
      history(v2, rollback),
      '09:12',
      'deploy',
      'd2',
    ],
    ['no rollback: the latest deploy', history(v1, v2), '09:20', 'deploy', 'd2'],
    [
      'a restart of the running version (no changes) changes nothing: the deploy before it',
      history(v2, deploy('re', 'v2', '09:10', { changes: [] })),
      '09:20',
      'deploy',
      'd2',
    ],
    [
      'a new version without changes: nobody to attribute it to',
      history(v2, deploy('cfg', 'v2-cfg', '09:10', { changes: [] })),
      '09:20',
      'no_changes',
      'cfg',
    ],
    [
      'a lone deploy without changes that says it redeployed its version: nothing ran',
      [deploy('re', 'v2', '09:10', { changes: [], previousVersion: 'v2' })],
      '09:20',
      'none',
      undefined,
    ],
    ['nothing in the window', [], '09:20', 'none', undefined],
    [
      'a restart after a rollback runs the rollback’s version: still after the rollback',
      history(v2, rollback, deploy('re', 'v1', '09:15', { changes: [] })),
      '09:20',
      'after_rollback',
      'r1',
    ],
    [
      'a rollback through a code host whose API names no change: still after the rollback',
      history(v2, { ...rollback, source: hooked('unavailable') }),
      '09:20',
      'after_rollback',
      'r1',
    ],
    [
      'a rollback through a code host whose changes are still pending: after the rollback',
      history(v2, { ...rollback, source: hooked('pending') }),
      '09:20',
      'after_rollback',
      'r1',
    ],
    [
      'a code host redeploying the version a rollback took away, changes pending: that version’s deploy again',
      history(v2, rollback, deploy('again', 'v2', '09:15', { changes: [], source: hooked('pending') })),
      '09:20',
      'deploy',
      'd2',
    ],
    [
      'a code host restarting the running version, changes unavailable: the deploy before it',
      history(v2, deploy('re', 'v2', '09:10', { changes: [], source: hooked('unavailable') })),
      '09:20',
      'deploy',
      'd2',
    ],
    [
      'a code host deploying a new version, changes pending: its own, whose changes are unknown',
      history(v2, deploy('new', 'v3', '09:10', { changes: [], source: hooked('pending') })),
      '09:20',
      'deploy',
      'new',
    ],
  ])('%s', (_intent, inWindow, started, kind, id) => {
    const r = runningAt(inWindow, at(started), all);
    expect(r.kind).toBe(kind);
    if (r.kind === 'deploy') expect(r.deploy.id).toBe(id);
    if (r.kind === 'after_rollback') expect(r.rollback.id).toBe(id);
    if (r.kind === 'no_changes') expect(r.deploy.id).toBe(id);
  });

  it('names the rollback that undid the deploy when the alert started before it', () => {
    const r = runningAt(history(v2, rollback), at('09:12'), () => true);
    expect(r).toMatchObject({ kind: 'deploy', deploy: { id: 'd2' }, rolledBackBy: { id: 'r1' } });
  });

  it('lists the undone deploys it can see, latest first', () => {
    const two = deploy('r2', 'v1', '09:13', { changes: [], rollback: { of: ['d2', 'd3'], explicit: false } });
    const r = runningAt(history(v1, v2, v3, two), at('09:20'), () => true);
    expect(r.kind === 'after_rollback' && r.undone.map((d) => d.id)).toEqual(['d3', 'd2']);
  });
});

describe('correlate after a rollback: the reason and the sentence', () => {
  const policy: ServicePolicy = {
    windowMs: 60 * MIN,
    skewMs: 2 * MIN,
    mode: 'author',
    includeMerger: true,
    maxDms: 20,
    labels: { service: ['service'], environment: ['env'], host: ['pod'] },
  };
  const alert = (hhmm: string): Alert => ({
    fingerprint: 'f1',
    startsAt: `2026-11-26T${hhmm}:00Z`,
    startsAtMs: at(hhmm),
    status: 'firing',
    labels: { service: 'checkout', alertname: 'HighErrorRate' },
    annotations: {},
    generatorURL: '',
  });
  const input = (hhmm: string, inWindow: Deploy[], patch: Partial<CorrelateInput> = {}): CorrelateInput => ({
    alert: alert(hhmm),
    location: { service: 'checkout', environment: 'production', hosts: [] },
    candidates: { inWindow },
    policy,
    directory: { people: [{ email: ALICE, emails: [], logins: [] }], bots: [] },
    now: at('09:21'),
    ...patch,
  });
  const rollback = deploy('r1', 'v1', '09:13', { changes: [], rollback: { of: ['d2'], explicit: true } });

  it('an alert after the rollback pages on-call, tells the author, and says what was rolled back and when', () => {
    const d = correlate(input('09:20', history(v2, rollback)));
    expect(d).toMatchObject({
      reason: 'after_rollback',
      targets: [{ kind: 'oncall' }],
      notify: [ALICE],
      deployId: 'd2',
    });
    expect(d.sentence).toBe(
      'checkout was rolled back to v1 at 09:13 UTC, undoing deploy v2 by alice@example.com (09:03 UTC); the alert started at 09:20 UTC, 7 min after the rollback, when the rolled-back change was no longer running; paging on-call and telling alice@example.com.',
    );
  });

  it('the rollback is never taken for a deploy nobody wrote', () => {
    const d = correlate(input('09:20', [rollback]));
    expect(d.reason).toBe('after_rollback');
    expect(d.sentence).toBe(
      'checkout was rolled back to v1 at 09:13 UTC, undoing deploy d2; the alert started at 09:20 UTC, 7 min after the rollback, when the rolled-back change was no longer running; paging on-call.',
    );
    expect(d.notify).toEqual([]);
  });

  it('a rollback whose target changepager could not tell still explains the page', () => {
    const blind = { ...rollback, rollback: { of: [], explicit: true } };
    const d = correlate(input('09:20', [blind]));
    expect(d.reason).toBe('after_rollback');
    expect(d.sentence).toMatch(/^checkout was rolled back to v1 at 09:13 UTC; the alert started at 09:20 UTC/);
  });

  it('in notify and shadow modes alike, after a rollback nobody is paged but on-call', () => {
    for (const mode of ['notify', 'shadow', 'author+oncall'] as const) {
      const d = correlate(input('09:20', history(v2, rollback), { policy: { ...policy, mode } }));
      expect([d.reason, d.targets, d.wouldPage]).toEqual(['after_rollback', [{ kind: 'oncall' }], []]);
    }
  });

  it('an alert that started before the rollback stays with the author, and the sentence says it was rolled back', () => {
    const d = correlate(input('09:12', history(v2, rollback)));
    expect(d).toMatchObject({ reason: 'author_paged', targets: [{ kind: 'person', email: ALICE }], deployId: 'd2' });
    expect(d.sentence).toContain('(it was rolled back to v1 at 09:13 UTC, after the alert started)');
  });

  it('an alert before a rollback that is the only deploy in the window started before it', () => {
    const d = correlate(input('09:12', [rollback]));
    expect(d.reason).toBe('alert_started_before_deploy');
    expect(d.sentence).toBe(
      'The alert started at 09:12 UTC, 1 min before checkout deploy v1 at 09:13 UTC, so that deploy did not cause it; paging on-call.',
    );
  });

  it('a deploy of a new version without changes pages on-call with its own reason', () => {
    const cfg = deploy('cfg', 'v2-cfg', '09:10', { changes: [] });
    const d = correlate(input('09:20', history(v2, cfg)));
    expect(d.reason).toBe('deploy_without_changes');
    expect(d.sentence).toBe(
      'checkout deploy v2-cfg at 09:10 UTC named no change (a restart or a configuration-only deploy), so there is nobody whose change it is; the alert started at 09:20 UTC, 10 min later; paging on-call.',
    );
  });
});

describe('the verdict of a rollout that was rolled back', () => {
  const attributed = (fp: string, hhmm: string): AttributedAlert => ({
    fingerprint: fp,
    startsAt: `2026-11-26T${hhmm}:00Z`,
    startsAtMs: at(hhmm),
    status: 'firing',
    labels: { alertname: 'HighErrorRate' },
    decision: { deployId: 'd2', reason: 'author_paged', sentence: '' },
  });
  const verdict = (alerts: AttributedAlert[], rolledBack?: { rollbackId: string; at: number; version: string }) =>
    judge({
      rollout: [v2],
      attributed: alerts,
      observeMs: 30 * MIN,
      settleMs: 0,
      skewMs: 2 * MIN,
      now: at('09:20'),
      ...(rolledBack ? { rolledBack } : {}),
    });
  const rb = { rollbackId: 'rb-1', at: at('09:13'), version: 'v1' };

  it.each<[string, AttributedAlert[], typeof rb | undefined, string, string[]]>([
    ['rolled back after an alert: rolled_back, the alert listed', [attributed('a', '09:05')], rb, 'rolled_back', ['a']],
    ['rolled back with no alert: still rolled_back, final before the window ends', [], rb, 'rolled_back', []],
    ['an alert after the rollback does not count against it', [attributed('b', '09:20')], rb, 'rolled_back', []],
    ['no rollback: the gate as before', [attributed('a', '09:05')], undefined, 'failing', ['a']],
  ])('%s', (_intent, alerts, rolledBack, state, counted) => {
    const v = verdict(alerts, rolledBack);
    expect(v.state).toBe(state);
    expect(v.counted.map((a) => a.fingerprint)).toEqual(counted);
  });

  it('says what it was rolled back to, when and by which deploy', () => {
    expect(verdict([attributed('a', '09:05')], rb).sentence).toBe(
      'checkout deploy v2 (full rollout) in production was rolled back to v1 at 09:13 UTC by deploy rb-1 after 1 alert attributed to it (HighErrorRate since 09:05 UTC).',
    );
    expect(verdict([attributed('b', '09:20')], rb).notJudged.map((n) => n.why)).toEqual(['started_after_rollback']);
  });

  it('stays rolled_back whatever the metrics say, and does not quote them', () => {
    const v = judge({
      rollout: [v2],
      attributed: [],
      observeMs: 30 * MIN,
      settleMs: 0,
      skewMs: 2 * MIN,
      now: at('09:20'),
      rolledBack: rb,
      evidence: { verdict: 'worse', sentence: 'error ratio 8.1 % vs 0.3 %' },
    });
    expect(v.state).toBe('rolled_back');
    expect(v.sentence).toBe(
      'checkout deploy v2 (full rollout) in production was rolled back to v1 at 09:13 UTC by deploy rb-1.',
    );
  });
});
