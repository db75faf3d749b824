import { describe, expect, it } from 'vitest';
import {
  type CommentFacts,
  code,
  commentBody,
  commentDigest,
  deployFromHook,
  nextCommentStep,
  placeOf,
  type ReportedDeployment,
  type RepositoryRoute,
  safeUrl,
  withoutChanges,
} from '../../src/core/code-host.js';
import type { Deploy } from '../../src/core/types.js';

const AT = Date.parse('2026-11-26T11:02:00Z');
const SHA = '3f2a9c1e'.padEnd(40, '0');
const OLD = '77b0e12a'.padEnd(40, '0');

const REPOS: Record<string, RepositoryRoute> = {
  'acme/checkout': {
    service: 'checkout',
    environments: {
      production: { environment: 'production' },
      'production-canary': { environment: 'production', stage: 'canary' },
    },
  },
};

function event(over: Partial<ReportedDeployment> = {}): ReportedDeployment {
  return {
    host: 'github',
    deliveryId: 'delivery-1',
    repository: 'acme/checkout',
    environment: 'production',
    sha: SHA,
    state: 'success',
    deploymentId: '42',
    at: AT,
    ...over,
  };
}

describe('placeOf: which webhook deployments are deploys', () => {
  it.each<{ intent: string; event: ReportedDeployment; expected: unknown }>([
    {
      intent: 'a successful deployment of a mapped environment is a full deploy of its service',
      event: event(),
      expected: { service: 'checkout', environment: 'production', stage: 'full' },
    },
    {
      intent: 'in_progress of a canary environment is the canary stage',
      event: event({ environment: 'production-canary', state: 'in_progress' }),
      expected: { service: 'checkout', environment: 'production', stage: 'canary' },
    },
    {
      intent: 'success of a canary environment is still its canary stage',
      event: event({ environment: 'production-canary' }),
      expected: { service: 'checkout', environment: 'production', stage: 'canary' },
    },
    {
      intent: 'in_progress of an environment without a stage is not a deploy yet',
      event: event({ state: 'in_progress' }),
      expected: { ignored: expect.stringContaining('in_progress') },
    },
    {
      intent: 'a failed deployment is no deploy',
      event: event({ state: 'other' }),
      expected: { ignored: expect.stringContaining('neither success nor in_progress') },
    },
    {
      intent: 'an unmapped repository is ignored, and the reason names the key to add',
      event: event({ repository: 'acme/other' }),
      expected: { ignored: 'repository acme/other is not configured under github.repositories' },
    },
    {
      intent: 'an unmapped environment is ignored, and the reason names the key to add',
      event: event({ environment: 'staging' }),
      expected: { ignored: expect.stringContaining('github.repositories.acme/checkout.environments') },
    },
  ])('$intent', ({ event, expected }) => {
    expect(placeOf(event, REPOS)).toEqual(expected);
  });
});

describe('deployFromHook: the deploy stored at once', () => {
  const place = { service: 'checkout', environment: 'production', stage: 'full' as const };
  const compare = (base: string, head: string) => `https://github.com/acme/checkout/compare/${base}...${head}`;

  it('has the commit as version, no changes yet, and an id that every status and replay of the deployment shares', () => {
    const deploy = deployFromHook(event(), place, undefined, AT + 1000, compare);
    expect(deploy).toEqual({
      id: 'github-deployment-42',
      kind: 'deploy',
      service: 'checkout',
      environment: 'production',
      version: SHA,
      stage: 'full',
      hosts: [],
      at: AT,
      receivedAt: AT + 1000,
      changes: [],
      source: {
        host: 'github',
        repository: 'acme/checkout',
        sha: SHA,
        deploymentId: '42',
        hostEnvironment: 'production',
        deliveryId: 'delivery-1',
        changes: 'pending',
      },
    });
    expect(deployFromHook(event({ deliveryId: 'other', state: 'in_progress' }), place, undefined, AT, compare).id).toBe(
      deploy.id,
    );
  });

  it("starts the changes at the previous deploy's commit when it came from the same repository", () => {
    const previous = {
      ...deployFromHook(event({ sha: OLD, deploymentId: '41' }), place, undefined, AT - 3_600_000),
    } as Deploy;
    const deploy = deployFromHook(event(), place, previous, AT, compare);
    expect(deploy.previousVersion).toBe(OLD);
    expect(deploy.source).toMatchObject({
      previousSha: OLD,
      compareUrl: `https://github.com/acme/checkout/compare/${OLD}...${SHA}`,
    });
  });

  it('names the previous version but no commit to compare from when the previous deploy came another way', () => {
    const previous = { ...deployFromHook(event(), place, undefined, AT), source: undefined, version: 'v141' } as Deploy;
    const deploy = deployFromHook(event(), place, previous, AT, compare);
    expect(deploy.previousVersion).toBe('v141');
    expect(deploy.source?.previousSha).toBeUndefined();
    expect(deploy.source?.compareUrl).toBeUndefined();
  });
});

describe('nextCommentStep: one comment per page, edited when its text changes', () => {
  const body = 'the alert fired';
  it.each<{ intent: string; subject: { body: string } | { none: string }; told: object; expected: unknown }>([
    {
      intent: 'no pull request to write on: nothing',
      subject: { none: 'the deploy does not name exactly one change' },
      told: {},
      expected: { do: 'nothing', why: 'the deploy does not name exactly one change' },
    },
    {
      intent: 'nothing written yet: create it',
      subject: { body },
      told: {},
      expected: { do: 'create', body, digest: commentDigest(body) },
    },
    {
      intent: 'written with the same text (a retry, a repeat): nothing',
      subject: { body },
      told: { id: '9', digest: commentDigest(body) },
      expected: { do: 'nothing', why: 'the comment already says this' },
    },
    {
      intent: 'written, and the text changed (resolved, not my change): edit that comment',
      subject: { body: `${body}, and resolved` },
      told: { id: '9', digest: commentDigest(body) },
      expected: { do: 'edit', id: '9', body: `${body}, and resolved`, digest: commentDigest(`${body}, and resolved`) },
    },
  ])('$intent', ({ subject, told, expected }) => {
    expect(nextCommentStep(subject, told)).toEqual(expected);
  });
});

describe('commentBody', () => {
  const facts: CommentFacts = {
    alertnames: ['HighErrorRate'],
    summary: 'Checkout errors above 5%',
    service: 'checkout',
    environment: 'production',
    startsAtMs: AT + 7 * 60_000,
    deploy: { at: AT, version: SHA, stage: 'full' },
    paged: { kind: 'person', email: 'alice@example.com' },
    incidentUrl: 'https://acme.pagerduty.com/incidents/Q1',
    compareUrl: `https://github.com/acme/checkout/compare/${OLD}...${SHA}`,
  };

  it('says what fired, when, how long after the deploy, who was paged, with the incident and compare links', () => {
    const body = commentBody(facts);
    expect(body).toContain('`HighErrorRate` fired in `checkout` (`production`) at 11:09 UTC, 7 min after the deploy');
    expect(body).toContain('- Paged: `alice@example.com` ([incident](https://acme.pagerduty.com/incidents/Q1))');
    expect(body).toContain(`[Changes in this deploy](https://github.com/acme/checkout/compare/${OLD}...${SHA})`);
    expect(body).toContain('- Status: Firing.');
  });

  it('says when it resolved and who said it was not their change, so an edit tells the story', () => {
    const body = commentBody({
      ...facts,
      resolvedAt: AT + 20 * 60_000,
      notMine: { by: 'alice@example.com', at: AT + 10 * 60_000 },
    });
    expect(body).toContain('- Status: Resolved at 11:22 UTC.');
    expect(body).toContain('`alice@example.com` said this is not their change at 11:12 UTC');
  });

  it('shows evidence lines when there are some', () => {
    expect(commentBody({ ...facts, evidence: ['error ratio: 4.1% vs 0.2% (high)'] })).toContain(
      'Evidence:\n- `error ratio: 4.1% vs 0.2% (high)`',
    );
  });

  it('cannot @mention a team or inject a link from an alert name or summary', () => {
    const body = commentBody({
      ...facts,
      alertnames: ['@acme/security [click](https://evil.example)'],
      summary: 'ping @acme/admins ``` <img src=x> `x` \n# heading',
    });
    // Every untrusted text sits inside a code span: no mention, link, image or heading is rendered from it.
    expect(body).toContain('`@acme/security [click](https://evil.example)`');
    expect(body).toContain('> ```` ping @acme/admins ``` <img src=x> `x`  # heading ````');
    const outsideCode = body.replace(/(`+)[\s\S]*?\1/g, '');
    expect(outsideCode).not.toMatch(/@acme|evil\.example|<img|^#/m);
  });

  it.each([
    ['plain', '`plain`'],
    ['has `ticks`', '`` has `ticks` ``'],
    ['line\nbreak', '`line break`'],
  ])('code(%j) is %s', (text, expected) => {
    expect(code(text)).toBe(expected);
  });

  it('percent-encodes what could end a Markdown link', () => {
    expect(safeUrl('https://g/x?a=(1)&b=[2] <3>')).toBe('https://g/x?a=%281%29&b=%5B2%5D%20%3C3%3E');
  });
});

describe('withoutChanges: a deploy known to ship no change of its own', () => {
  const rollback = { of: ['github-deployment-41'], explicit: false };
  it.each<[string, Parameters<typeof withoutChanges>, string | undefined]>([
    [
      'a rollback, before the host is asked',
      [{ rollback }, { sha: OLD, previousSha: SHA }],
      'a rollback to 77b0e12a0000: it ships no change of its own',
    ],
    [
      'a compare from the previous commit that names nothing: it went back',
      [{}, { sha: OLD, previousSha: SHA }, 0],
      'no commit since 3f2a9c1e0000: a redeploy of an earlier commit ships no change of its own',
    ],
    ['a compare that names changes: they are its own', [{}, { sha: OLD, previousSha: SHA }, 2], undefined],
    ['nothing found without a previous commit: the host could not say', [{}, { sha: SHA }, 0], undefined],
    ['not asked yet, and no rollback: it may ship changes', [{}, { sha: SHA, previousSha: OLD }], undefined],
  ])('%s', (_intent, args, detail) => {
    expect(withoutChanges(...args)).toBe(detail);
  });
});
