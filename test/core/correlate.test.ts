import { afterEach, describe, expect, it } from 'vitest';
import {
  type AlertLocation,
  type CorrelateInput,
  correlate,
  type DeployCandidates,
  deployWindow,
  hostOfInstance,
  locateAlert,
} from '../../src/core/correlate.js';
import type { Directory } from '../../src/core/people.js';
import type {
  Alert,
  Change,
  Decision,
  Deploy,
  Identity,
  LabelNames,
  Person,
  PolicyMode,
  ReasonCode,
  ServicePolicy,
  Target,
  WorkingHours,
} from '../../src/core/types.js';
import { openSqliteStore } from '../../src/store/sqlite/store.js';
import type { Store } from '../../src/store/store.js';

// Table-driven, one line of intent per case (Alertmanager notify/notify_test.go). Each table varies one rule
// and starts from the DESIGN example: checkout v142 by alice, merged by bob, deployed 11:02Z; alert at 11:09Z.

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;

const at = (iso: string): number => {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`bad test instant ${iso}`);
  return ms;
};

/** The alert's startsAt: Thursday 2026-11-26 11:09 UTC. */
const T = at('2026-11-26T11:09:00Z');
/** A moment in everyone's working hours unless a case says otherwise. */
const NOW = at('2026-11-26T11:10:00Z');

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const CAROL = 'carol@example.com';

const ONCALL: Target = { kind: 'oncall' };
const page = (email: string): Target => ({ kind: 'person', email });

const DEFAULT_LABELS: LabelNames = {
  service: ['service', 'app', 'job'],
  environment: ['env', 'environment'],
  host: ['pod', 'host'],
};

function person(email: string, patch: Partial<Person> = {}): Person {
  return { email, emails: [], logins: [], ...patch };
}

const PEOPLE: Person[] = [
  person(ALICE, { name: 'Alice', emails: ['alice@users.example.com'], logins: ['alice'] }),
  person(BOB, { logins: ['bob'] }),
  person(CAROL, { logins: ['carol'] }),
];

function directory(people: Person[] = PEOPLE): Directory {
  return { people, bots: ['dependabot', 'renovate'] };
}

function policy(patch: Partial<ServicePolicy> = {}): ServicePolicy {
  return {
    windowMs: HOUR,
    skewMs: 2 * MIN,
    mode: 'author',
    includeMerger: true,
    maxDms: 20,
    labels: DEFAULT_LABELS,
    ...patch,
  };
}

function alert(patch: Partial<Alert> = {}): Alert {
  return {
    fingerprint: 'f00dfeed',
    startsAt: '2026-11-26T11:09:00.000000000Z',
    startsAtMs: T,
    status: 'firing',
    labels: { alertname: 'CheckoutErrors', service: 'checkout' },
    annotations: {},
    generatorURL: 'http://prometheus.example.com/graph',
    ...patch,
  };
}

function change(author: Identity, mergedBy?: Identity): Change {
  return mergedBy ? { author, mergedBy } : { author };
}

const byAlice = change({ email: ALICE, login: 'alice' }, { email: BOB, login: 'bob' });

function deploy(patch: Partial<Deploy> = {}): Deploy {
  const when = patch.at ?? at('2026-11-26T11:02:00Z');
  return {
    id: `deploy-${patch.version ?? 'v142'}`,
    service: 'checkout',
    environment: 'production',
    version: 'v142',
    previousVersion: 'v141',
    stage: 'full',
    hosts: [],
    at: when,
    receivedAt: when,
    changes: [byAlice],
    ...patch,
  };
}

const LOCATION: AlertLocation = { service: 'checkout', environment: 'production', hosts: [] };

/** correlate() with the DESIGN example as the default for everything a case does not set. */
function decide(patch: Partial<CorrelateInput> = {}): Decision {
  return correlate({
    alert: alert(),
    location: LOCATION,
    candidates: { inWindow: [deploy()] },
    policy: policy(),
    directory: directory(),
    now: NOW,
    ...patch,
  });
}

/** Where the alert with these labels comes from, with the default label names and environment. */
function locate(labels: Record<string, string>, defaultEnvironment = 'production'): AlertLocation {
  return locateAlert(labels, DEFAULT_LABELS.service, () => policy(), defaultEnvironment);
}

describe('correlate: the DESIGN example', () => {
  it('pages alice and says which deploy, by whom, and how long before the alert', () => {
    const d = decide();
    expect(d.reason).toBe('author_paged');
    expect(d.targets).toEqual([page(ALICE)]);
    expect(d.deployId).toBe('deploy-v142');
    expect(d.service).toBe('checkout');
    expect(d.environment).toBe('production');
    expect(d.sentence).toContain('checkout deploy v142');
    expect(d.sentence).toContain(`by ${ALICE}`);
    expect(d.sentence).toContain('11:02 UTC');
    expect(d.sentence).toContain('11:09 UTC');
    expect(d.sentence).toContain('7 min later');
  });

  it('names the canary host when the deploy went to a few hosts only', () => {
    const d = decide({
      location: locate({ service: 'checkout', instance: 'checkout-7f9c-abcde:9100' }),
      candidates: { inWindow: [deploy({ stage: 'canary', hosts: ['checkout-7f9c-abcde'] })] },
    });
    expect(d.sentence).toContain('7 min later, on canary host checkout-7f9c-abcde');
  });
});

describe('correlate: an alert first seen already resolved', () => {
  const resolved = alert({ status: 'resolved', endsAtMs: at('2026-11-26T11:31:00Z') });
  it.each<[string, Partial<CorrelateInput>]>([
    ['after a deploy by alice: nobody is paged or told, and no deploy is named', {}],
    ['in author+oncall mode: not even on-call is paged', { policy: policy({ mode: 'author+oncall' }) }],
    ['in shadow mode: nobody would have been paged either', { policy: policy({ mode: 'shadow' }) }],
    [
      'for a bundle of changes: no author is told',
      { candidates: { inWindow: [deploy({ changes: [byAlice, change({ email: CAROL })] })] } },
    ],
    ['for a service changepager is off for: the same', { policy: policy({ mode: 'off' }) }],
  ])('%s', (_intent, patch) => {
    const d = decide({ alert: resolved, ...patch });
    expect(d).toMatchObject({ reason: 'resolved_before_seen', service: 'checkout', environment: 'production' });
    expect(d.targets).toEqual([]);
    expect(d.notify).toEqual([]);
    expect(d.wouldPage).toEqual([]);
    expect(d.suspects).toEqual([]);
    expect(d.deployId).toBeUndefined();
    expect(d.sentence).toBe(
      'changepager first saw this alert when it had already resolved (it started at 11:09 UTC and ended at 11:31 UTC), so it paged nobody and told nobody.',
    );
  });

  it('says so for an alert without a service label too', () => {
    const d = decide({ alert: resolved, location: { environment: 'production', hosts: [] } });
    expect(d.reason).toBe('resolved_before_seen');
    expect(d.service).toBeUndefined();
    expect(d.targets).toEqual([]);
  });
});

describe('correlate: which deploy is the suspect', () => {
  interface Case {
    intent: string;
    candidates: DeployCandidates;
    reason: ReasonCode;
    targets: Target[];
    deployId?: string;
    says: RegExp;
  }
  const v143ByCarol = deploy({
    version: 'v143',
    at: at('2026-11-26T11:05:00Z'),
    changes: [change({ login: 'carol' })],
  });
  const v142AtHalfPast = deploy({ at: at('2026-11-26T10:30:00Z') });
  it.each<Case>([
    {
      intent: 'two deploys in the window: the latest (listed first) is the suspect',
      candidates: { inWindow: [v143ByCarol, v142AtHalfPast] },
      reason: 'author_paged',
      targets: [page(CAROL)],
      deployId: 'deploy-v143',
      says: /checkout deploy v143 by carol@example\.com at 11:05 UTC; the alert started at 11:09 UTC, 4 min later/,
    },
    {
      intent: 'deploy stamped 1 min after the alert started (clock skew): still claims it',
      candidates: { inWindow: [deploy({ at: T + MIN })] },
      reason: 'author_paged',
      targets: [page(ALICE)],
      deployId: 'deploy-v142',
      says: /1 min earlier \(within the clock skew allowed\)/,
    },
    {
      intent: 'deploy stamped at the same second as the alert start',
      candidates: { inWindow: [deploy({ at: T })] },
      reason: 'author_paged',
      targets: [page(ALICE)],
      deployId: 'deploy-v142',
      says: /at the same time/,
    },
    {
      intent: 'the only deploy came 3 min after the alert started: it did not cause it',
      candidates: { inWindow: [], nextAfter: deploy({ version: 'v143', at: T + 3 * MIN }) },
      reason: 'alert_started_before_deploy',
      targets: [ONCALL],
      says: /alert started at 11:09 UTC, 3 min before checkout deploy v143 at 11:12 UTC, so that deploy did not cause it/,
    },
    {
      intent: 'no deploy at all: on-call, and the sentence says which window was searched',
      candidates: { inWindow: [] },
      reason: 'no_deploy_in_window',
      targets: [ONCALL],
      says: /^No checkout deploy to production in the 1 h before the alert started at 11:09 UTC; paging on-call\.$/,
    },
    {
      intent: 'the last deploy was long before the window: the sentence says how long',
      candidates: { inWindow: [], lastBefore: deploy({ version: 'v140', at: T - 3 * HOUR }) },
      reason: 'no_deploy_in_window',
      targets: [ONCALL],
      says: /\(the last was v140, 3 h before\)/,
    },
  ])('$intent', (c) => {
    const d = decide({ candidates: c.candidates });
    expect(d.reason).toBe(c.reason);
    expect(d.targets).toEqual(c.targets);
    expect(d.deployId).toBe(c.deployId);
    expect(d.sentence).toMatch(c.says);
  });
});

describe('correlate: window, skew and environment, with candidates as the SQLite store finds them', () => {
  // The window is applied where the deploys are looked up (Store.findDeployCandidates); correlate() trusts what
  // it is given. These cases run both, so the boundaries of the rule are tested where they are decided.
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  interface Case {
    intent: string;
    deploy: Partial<Deploy>;
    windowMs?: number;
    reason: ReasonCode;
    says: RegExp;
  }
  it.each<Case>([
    {
      intent: 'deployed exactly one window (1 h) before the alert started: a suspect',
      deploy: { at: T - HOUR },
      reason: 'author_paged',
      says: /at 10:09 UTC; the alert started at 11:09 UTC, 1 h later/,
    },
    {
      intent: 'deployed 1 ms before the window opens: not a suspect',
      deploy: { at: T - HOUR - 1 },
      reason: 'no_deploy_in_window',
      says: /\(the last was v142, 1 h before\)/,
    },
    {
      intent: 'stamped 1 min after the alert started, skew 2 min: still claims it',
      deploy: { at: T + MIN },
      reason: 'author_paged',
      says: /within the clock skew allowed/,
    },
    {
      intent: 'stamped exactly the skew (2 min) after the alert started: still claims it',
      deploy: { at: T + 2 * MIN },
      reason: 'author_paged',
      says: /2 min earlier/,
    },
    {
      intent: 'stamped 3 min after the alert started, skew 2 min: the alert started before it',
      deploy: { at: T + 3 * MIN },
      reason: 'alert_started_before_deploy',
      says: /3 min before checkout deploy v142/,
    },
    {
      intent: 'deployed to staging: not a candidate for a production alert',
      deploy: { environment: 'staging' },
      reason: 'no_deploy_in_window',
      says: /^No checkout deploy to production in the 1 h before/,
    },
    {
      intent: 'a per-service window of 30 min leaves out a deploy 45 min before',
      deploy: { at: T - 45 * MIN },
      windowMs: 30 * MIN,
      reason: 'no_deploy_in_window',
      says: /in the 30 min before the alert started at 11:09 UTC \(the last was v142, 45 min before\)/,
    },
  ])('$intent', async (c) => {
    store = openSqliteStore(':memory:');
    await store.saveDeploy(deploy(c.deploy));
    const p = policy(c.windowMs === undefined ? {} : { windowMs: c.windowMs });
    const [candidates = { inWindow: [] }] = await store.findDeployCandidates([
      { service: 'checkout', environment: 'production', ...deployWindow(T, p) },
    ]);
    const d = decide({ candidates, policy: p });
    expect(d.reason).toBe(c.reason);
    expect(d.targets).toEqual(c.reason === 'author_paged' ? [page(ALICE)] : [ONCALL]);
    expect(d.sentence).toMatch(c.says);
  });
});

describe('correlate: canary deploys claim only alerts from their hosts', () => {
  interface Case {
    intent: string;
    labels: Record<string, string>;
    inWindow: Deploy[];
    reason: ReasonCode;
    targets: Target[];
    deployId?: string;
    says: RegExp;
  }
  const canary = deploy({
    version: 'v143',
    stage: 'canary',
    percent: 1,
    hosts: ['checkout-7f9c-abcde'],
    at: at('2026-11-26T11:05:00Z'),
    changes: [change({ login: 'carol' })],
  });
  const fullEarlier = deploy({ at: at('2026-11-26T10:40:00Z') });
  it.each<Case>([
    {
      intent: 'instance "host:9100" matches once its port is stripped',
      labels: { service: 'checkout', instance: 'checkout-7f9c-abcde:9100' },
      inWindow: [canary],
      reason: 'author_paged',
      targets: [page(CAROL)],
      deployId: 'deploy-v143',
      says: /on canary host checkout-7f9c-abcde/,
    },
    {
      intent: 'a pod label matches although the instance is an IP',
      labels: { service: 'checkout', instance: '10.0.0.7:8080', pod: 'checkout-7f9c-abcde' },
      inWindow: [canary],
      reason: 'author_paged',
      targets: [page(CAROL)],
      deployId: 'deploy-v143',
      says: /on canary host checkout-7f9c-abcde/,
    },
    {
      intent: 'a host label matches',
      labels: { service: 'checkout', host: 'checkout-7f9c-abcde' },
      inWindow: [canary],
      reason: 'author_paged',
      targets: [page(CAROL)],
      deployId: 'deploy-v143',
      says: /on canary host checkout-7f9c-abcde/,
    },
    {
      intent: 'an alert from another host is not claimed: canary_host_mismatch, on-call',
      labels: { service: 'checkout', instance: 'checkout-1111-zzzzz:9100' },
      inWindow: [canary],
      reason: 'canary_host_mismatch',
      targets: [ONCALL],
      says: /v143 at 11:05 UTC went only to checkout-7f9c-abcde, and the alert \(started 11:09 UTC\) comes from checkout-1111-zzzzz; paging on-call/,
    },
    {
      intent: 'a host name that only starts with the canary host is not a match',
      labels: { service: 'checkout', instance: 'checkout-7f9c-abcdef:9100' },
      inWindow: [canary],
      reason: 'canary_host_mismatch',
      targets: [ONCALL],
      says: /comes from checkout-7f9c-abcdef;/,
    },
    {
      intent: 'an alert without any host label cannot be from the canary',
      labels: { service: 'checkout' },
      inWindow: [canary],
      reason: 'canary_host_mismatch',
      targets: [ONCALL],
      says: /comes from no host label/,
    },
    {
      intent: 'the latest canary does not claim it, an earlier full deploy in the window does',
      labels: { service: 'checkout', instance: 'checkout-1111-zzzzz:9100' },
      inWindow: [canary, fullEarlier],
      reason: 'author_paged',
      targets: [page(ALICE)],
      deployId: 'deploy-v142',
      says: /^checkout deploy v142 by alice@example\.com at 10:40 UTC; the alert started at 11:09 UTC, 29 min later\./,
    },
  ])('$intent', (c) => {
    const d = decide({ location: locate(c.labels), candidates: { inWindow: c.inWindow } });
    expect(d.reason).toBe(c.reason);
    expect(d.targets).toEqual(c.targets);
    expect(d.deployId).toBe(c.deployId);
    expect(d.sentence).toMatch(c.says);
  });
});

describe('correlate: a deploy bundling several changes is ambiguous', () => {
  interface Case {
    intent: string;
    changes: Change[];
    mode?: PolicyMode;
    notify: string[];
    /** How many distinct authors the decision names; every change's author when absent. */
    named?: number;
    says: RegExp;
  }
  it.each<Case>([
    {
      intent: 'two authors: on-call is paged and both are told',
      changes: [byAlice, change({ email: CAROL })],
      notify: [ALICE, CAROL],
      says: /bundled 2 changes \(alice@example\.com, carol@example\.com\), so it is not clear whose change it is/,
    },
    {
      intent: 'authors named by login or a noreply address are told at their people email',
      changes: [
        change({ login: 'Bob' }),
        change({ email: '123+alice@users.noreply.github.com' }),
        change({ email: CAROL }),
      ],
      notify: [BOB, ALICE, CAROL],
      says: /bundled 3 changes/,
    },
    {
      intent: 'an author nobody can reach is named but not told; the others still are',
      changes: [change({ email: '99+zed@users.noreply.github.com' }), change({ email: CAROL })],
      notify: [CAROL],
      says: /99\+zed@users\.noreply\.github\.com, carol@example\.com/,
    },
    {
      intent: 'one author with two changes is named and told once',
      changes: [byAlice, change({ login: 'alice' })],
      notify: [ALICE],
      named: 1,
      says: /bundled 2 changes \(alice@example\.com\)/,
    },
    {
      intent: 'author+oncall policy does not page anyone but on-call for a bundle',
      changes: [byAlice, change({ email: CAROL })],
      mode: 'author+oncall',
      notify: [ALICE, CAROL],
      says: /paging on-call and telling every author/,
    },
  ])('$intent', (c) => {
    const d = decide({
      candidates: { inWindow: [deploy({ changes: c.changes })] },
      policy: policy({ mode: c.mode ?? 'author' }),
    });
    expect(d.reason).toBe('ambiguous_bundle');
    expect(d.targets).toEqual([ONCALL]);
    expect(d.notify).toEqual(c.notify);
    expect(d.responders).toEqual([]);
    expect(d.suspects.map((s) => s.role)).toEqual(Array(c.named ?? c.changes.length).fill('author'));
    expect(d.deployId).toBe('deploy-v142');
    expect(d.sentence).toMatch(c.says);
  });
});

describe('correlate: a bundle of thousands of changes tells a bounded number of people', () => {
  const authors = (n: number, from = 0) =>
    Array.from({ length: n }, (_, i) => change({ email: `dev${from + i}@example.com` }));
  it.each<[string, { changes: Change[]; maxDms?: number; told: number; says: RegExp }]>([
    [
      '10,000 changes by 10,000 people: the first 20 are named and told, the rest counted',
      {
        changes: authors(10_000),
        told: 20,
        says: /bundled 10,000 changes \(dev0@example\.com, .*, dev19@example\.com, … and 9,980 more\), .*telling the 20 authors named\.$/,
      },
    ],
    [
      '10,000 changes by 3 people: each is named and told once',
      {
        changes: Array.from({ length: 10_000 }, (_, i) => change({ email: `dev${i % 3}@example.com` })),
        told: 3,
        says: /bundled 10,000 changes \(dev0@example\.com, dev1@example\.com, dev2@example\.com\), .*telling every author\.$/,
      },
    ],
    [
      'exactly as many authors as the cap: every author, nobody counted',
      { changes: authors(20), told: 20, says: /dev19@example\.com\), .*telling every author\.$/ },
    ],
    [
      "a service's own cap of 3 leaves 47 counted",
      {
        changes: authors(50),
        maxDms: 3,
        told: 3,
        says: /\(dev0@example\.com, dev1@example\.com, dev2@example\.com, … and 47 more\)/,
      },
    ],
  ])('%s', (_intent, c) => {
    const d = decide({
      candidates: { inWindow: [deploy({ changes: c.changes })] },
      policy: policy(c.maxDms === undefined ? {} : { maxDms: c.maxDms }),
    });
    expect(d.reason).toBe('ambiguous_bundle');
    expect(d.targets).toEqual([ONCALL]);
    expect(d.notify).toHaveLength(c.told);
    expect(d.suspects).toHaveLength(c.told);
    expect(d.sentence).toMatch(c.says);
    expect(d.sentence.length).toBeLessThan(1000);
  });

  const source = {
    host: 'github' as const,
    repository: 'acme/checkout',
    sha: '3f2a9c1',
    deploymentId: '42',
    deliveryId: 'd-1',
  };

  it('pages on-call for a code host deploy whose changes are not known yet, and names the deploy', () => {
    const pending = deploy({ changes: [], source: { ...source, changes: 'pending' } });
    const d = decide({ candidates: { inWindow: [pending] }, policy: policy() });
    expect(d.reason).toBe('changes_unknown');
    expect(d.targets).toEqual([{ kind: 'oncall' }]);
    expect(d.deployId).toBeDefined();
    expect(d.notify).toEqual([]);
    expect(d.sentence).toMatch(/has not said yet which changes that deploy shipped/);
  });

  it('says why when the code host could never say what a deploy shipped', () => {
    const lost = deploy({ changes: [], source: { ...source, changes: 'unavailable', detail: 'HTTP 404 from GitHub' } });
    const d = decide({ candidates: { inWindow: [lost] }, policy: policy() });
    expect(d.reason).toBe('changes_unknown');
    expect(d.sentence).toMatch(/could not say which changes that deploy shipped \(HTTP 404 from GitHub\)/);
  });

  it('a code host deploy found to ship no change is a deploy without changes', () => {
    const empty = deploy({ changes: [], source: { ...source, changes: 'found' } });
    expect(decide({ candidates: { inWindow: [empty] }, policy: policy() }).reason).toBe('deploy_without_changes');
  });

  it('a cap of 1 tells the author but not the merger of a single change', () => {
    const d = decide({ policy: policy({ maxDms: 1 }) });
    expect(d.reason).toBe('author_paged');
    expect(d.notify).toEqual([ALICE]);
    expect(d.responders).toEqual([BOB]);
  });
});

describe('correlate: routing policy', () => {
  interface Case {
    intent: string;
    mode: PolicyMode;
    includeMerger: boolean;
    reason: ReasonCode;
    targets: Target[];
    responders: string[];
    notify: string[];
    wouldPage: Target[];
    says: RegExp;
  }
  it.each<Case>([
    {
      intent: 'author: pages the author instead of on-call; the merger joins as responder',
      mode: 'author',
      includeMerger: true,
      reason: 'author_paged',
      targets: [page(ALICE)],
      responders: [BOB],
      notify: [ALICE, BOB],
      wouldPage: [],
      says: /\. Paging alice@example\.com\.$/,
    },
    {
      intent: 'author, merger excluded: only the author is paged and told',
      mode: 'author',
      includeMerger: false,
      reason: 'author_paged',
      targets: [page(ALICE)],
      responders: [],
      notify: [ALICE],
      wouldPage: [],
      says: /\. Paging alice@example\.com\.$/,
    },
    {
      intent: 'author+oncall: pages the author and on-call',
      mode: 'author+oncall',
      includeMerger: true,
      reason: 'author_and_oncall_paged',
      targets: [page(ALICE), ONCALL],
      responders: [BOB],
      notify: [ALICE, BOB],
      wouldPage: [],
      says: /Paging alice@example\.com and on-call\.$/,
    },
    {
      intent: 'author+oncall, merger excluded: no responder, merger not told',
      mode: 'author+oncall',
      includeMerger: false,
      reason: 'author_and_oncall_paged',
      targets: [page(ALICE), ONCALL],
      responders: [],
      notify: [ALICE],
      wouldPage: [],
      says: /Paging alice@example\.com and on-call\.$/,
    },
    {
      intent: 'notify: on-call is paged, author and merger are told',
      mode: 'notify',
      includeMerger: true,
      reason: 'author_notified',
      targets: [ONCALL],
      responders: [],
      notify: [ALICE, BOB],
      wouldPage: [],
      says: /policy is notify: paging on-call and telling alice@example\.com/,
    },
    {
      intent: 'notify, merger excluded: only the author is told',
      mode: 'notify',
      includeMerger: false,
      reason: 'author_notified',
      targets: [ONCALL],
      responders: [],
      notify: [ALICE],
      wouldPage: [],
      says: /policy is notify/,
    },
    {
      intent: 'shadow: on-call is paged, the author is recorded as who would have been',
      mode: 'shadow',
      includeMerger: true,
      reason: 'shadow',
      targets: [ONCALL],
      responders: [],
      notify: [ALICE, BOB],
      wouldPage: [page(ALICE)],
      says: /Shadow mode: paging on-call; changepager would have paged alice@example\.com/,
    },
    {
      intent: 'off: on-call is paged and nobody is named, even with a deploy in the window',
      mode: 'off',
      includeMerger: true,
      reason: 'policy_off',
      targets: [ONCALL],
      responders: [],
      notify: [],
      wouldPage: [],
      says: /^changepager is off for checkout; paging on-call\.$/,
    },
  ])('$intent', (c) => {
    const d = decide({ policy: policy({ mode: c.mode, includeMerger: c.includeMerger }) });
    expect(d.reason).toBe(c.reason);
    expect(d.policy).toBe(c.mode);
    expect(d.targets).toEqual(c.targets);
    expect(d.responders).toEqual(c.responders);
    expect(d.notify).toEqual(c.notify);
    expect(d.wouldPage).toEqual(c.wouldPage);
    expect(d.sentence).toMatch(c.says);
  });

  it('off: no deploy is attributed and no suspect is named', () => {
    const d = decide({ policy: policy({ mode: 'off' }) });
    expect(d.deployId).toBeUndefined();
    expect(d.suspects).toEqual([]);
  });

  it('an alert with no service label pages on-call whatever the policy', () => {
    const d = decide({ location: locate({ alertname: 'NodeDown', instance: 'db1:9100' }) });
    expect(d.reason).toBe('no_service_label');
    expect(d.targets).toEqual([ONCALL]);
    expect(d.service).toBeUndefined();
    expect(d.deployId).toBeUndefined();
    expect(d.notify).toEqual([]);
    expect(d.sentence).toMatch(/none of the labels that name a service/);
  });
});

describe('correlate: who owns the change', () => {
  interface Case {
    intent: string;
    change: Change;
    people?: Person[];
    includeMerger?: boolean;
    reason: ReasonCode;
    targets: Target[];
    notify: string[];
    says: RegExp;
  }
  it.each<Case>([
    {
      intent: 'merger is the author: named once, no responder',
      change: change({ login: 'alice' }, { email: ALICE }),
      reason: 'author_paged',
      targets: [page(ALICE)],
      notify: [ALICE],
      says: /by alice@example\.com at/,
    },
    {
      intent: 'merger named by login only is found in people',
      change: change({ email: ALICE }, { login: 'carol' }),
      reason: 'author_paged',
      targets: [page(ALICE)],
      notify: [ALICE, CAROL],
      says: /Paging alice@example\.com\.$/,
    },
    {
      intent: 'dependabot[bot] authored: the human who merged it is the owner',
      change: change(
        { login: 'dependabot[bot]', email: '49699333+dependabot[bot]@users.noreply.github.com' },
        { login: 'bob' },
      ),
      reason: 'author_paged',
      targets: [page(BOB)],
      notify: [BOB],
      says: /, merged by bob@example\.com at 11:02 UTC.*Paging bob@example\.com\.$/,
    },
    {
      intent: 'renovate (a configured bot login without [bot]) authored: the merger is the owner',
      change: change({ login: 'renovate' }, { email: CAROL }),
      reason: 'author_paged',
      targets: [page(CAROL)],
      notify: [CAROL],
      says: /by renovate, merged by carol@example\.com/,
    },
    {
      intent: 'a bot change is owned by its merger even when mergers are otherwise excluded',
      change: change({ login: 'dependabot[bot]' }, { login: 'bob' }),
      includeMerger: false,
      reason: 'author_paged',
      targets: [page(BOB)],
      notify: [BOB],
      says: /Paging bob@example\.com\.$/,
    },
    {
      intent: 'a bot change nobody merged: no owner, on-call',
      change: change({ login: 'dependabot[bot]' }),
      reason: 'no_person_for_author',
      targets: [ONCALL],
      notify: [],
      says: /merged by nobody named.*; paging on-call\.$/,
    },
    {
      intent: 'a login that merely contains a bot name is a human author',
      change: change({ login: 'renovate-fan', email: 'fan@example.com' }, { login: 'bob' }),
      reason: 'author_paged',
      targets: [page('fan@example.com')],
      notify: ['fan@example.com', BOB],
      says: /by fan@example\.com at/,
    },
    {
      intent: 'GitHub noreply "123+alice@…" resolves through the people logins',
      change: change({ email: '123+alice@users.noreply.github.com' }),
      reason: 'author_paged',
      targets: [page(ALICE)],
      notify: [ALICE],
      says: /by alice@example\.com at/,
    },
    {
      intent: 'GitHub noreply without the numeric id resolves too',
      change: change({ email: 'alice@users.noreply.github.com' }),
      reason: 'author_paged',
      targets: [page(ALICE)],
      notify: [ALICE],
      says: /Paging alice@example\.com\.$/,
    },
    {
      intent: 'GitHub noreply with no people entry: nobody to page, on-call is',
      change: change({ email: '123+alice@users.noreply.github.com' }),
      people: [],
      reason: 'no_person_for_author',
      targets: [ONCALL],
      notify: [],
      says: /knows no email or person for 123\+alice@users\.noreply\.github\.com; paging on-call\.$/,
    },
    {
      intent: 'unreachable author, known merger: on-call is paged and the merger is told',
      change: change({ email: '7+zed@users.noreply.github.com' }, { login: 'bob' }),
      reason: 'no_person_for_author',
      targets: [ONCALL],
      notify: [BOB],
      says: /knows no email or person for 7\+zed@users\.noreply\.github\.com/,
    },
    {
      intent: 'a login nobody is configured with: no_person_for_author',
      change: change({ login: 'zed' }),
      reason: 'no_person_for_author',
      targets: [ONCALL],
      notify: [],
      says: /knows no email or person for zed;/,
    },
    {
      intent: 'a secondary commit email is paged at the primary one',
      change: change({ email: 'Alice@Users.Example.com' }),
      reason: 'author_paged',
      targets: [page(ALICE)],
      notify: [ALICE],
      says: /by alice@example\.com at/,
    },
    {
      intent: 'an author not in people but with a real email is paged at it, lower-cased',
      change: change({ email: 'Dave@Example.com' }),
      reason: 'author_paged',
      targets: [page('dave@example.com')],
      notify: ['dave@example.com'],
      says: /Paging dave@example\.com\.$/,
    },
  ])('$intent', (c) => {
    const d = decide({
      candidates: { inWindow: [deploy({ changes: [c.change] })] },
      directory: directory(c.people ?? PEOPLE),
      policy: policy({ includeMerger: c.includeMerger ?? true }),
    });
    expect(d.reason).toBe(c.reason);
    expect(d.targets).toEqual(c.targets);
    expect(d.notify).toEqual(c.notify);
    expect(d.sentence).toMatch(c.says);
  });
});

describe('correlate: working hours, read in the person’s own timezone', () => {
  const office: WorkingHours = { days: ['mon', 'tue', 'wed', 'thu', 'fri'], startMinute: 9 * 60, endMinute: 18 * 60 };
  const nights: WorkingHours = { days: ['mon', 'tue', 'wed', 'thu', 'fri'], startMinute: 22 * 60, endMinute: 6 * 60 };
  interface Case {
    intent: string;
    timezone?: string;
    hours?: WorkingHours;
    now: string;
    paged: boolean;
  }
  // 2026-11-26 is a Thursday; Asia/Tokyo is UTC+9 all year; Europe/Berlin is UTC+2 in July.
  it.each<Case>([
    {
      intent: 'Tokyo 10:00 Thu (01:00 UTC): paged',
      timezone: 'Asia/Tokyo',
      hours: office,
      now: '2026-11-26T01:00:00Z',
      paged: true,
    },
    {
      intent: 'Tokyo 03:00 Thu (18:00 UTC Wed): not paged',
      timezone: 'Asia/Tokyo',
      hours: office,
      now: '2026-11-25T18:00:00Z',
      paged: false,
    },
    {
      intent: 'Tokyo 23:00 Thu is 14:00 UTC: not paged',
      timezone: 'Asia/Tokyo',
      hours: office,
      now: '2026-11-26T14:00:00Z',
      paged: false,
    },
    {
      intent: 'Tokyo 09:00 sharp: the start is inclusive',
      timezone: 'Asia/Tokyo',
      hours: office,
      now: '2026-11-26T00:00:00Z',
      paged: true,
    },
    {
      intent: 'Tokyo 18:00 sharp: the end is exclusive',
      timezone: 'Asia/Tokyo',
      hours: office,
      now: '2026-11-26T09:00:00Z',
      paged: false,
    },
    {
      intent: 'Tokyo Saturday 10:00: not a working day',
      timezone: 'Asia/Tokyo',
      hours: office,
      now: '2026-11-28T01:00:00Z',
      paged: false,
    },
    {
      intent: 'Berlin 09:30 CEST in July (07:30 UTC): summer time applies',
      timezone: 'Europe/Berlin',
      hours: office,
      now: '2026-07-01T07:30:00Z',
      paged: true,
    },
    { intent: 'no timezone: hours are read in UTC', hours: office, now: '2026-11-26T10:00:00Z', paged: true },
    {
      intent: 'night shift 22-06, Thu 23:00: paged',
      timezone: 'UTC',
      hours: nights,
      now: '2026-11-26T23:00:00Z',
      paged: true,
    },
    {
      intent: 'night shift 22-06, Thu 22:00 sharp: paged',
      timezone: 'UTC',
      hours: nights,
      now: '2026-11-26T22:00:00Z',
      paged: true,
    },
    {
      intent: 'night shift 22-06, Fri 03:00: the shift began Thu',
      timezone: 'UTC',
      hours: nights,
      now: '2026-11-27T03:00:00Z',
      paged: true,
    },
    {
      intent: 'night shift 22-06, Sat 03:00: the shift began Fri',
      timezone: 'UTC',
      hours: nights,
      now: '2026-11-28T03:00:00Z',
      paged: true,
    },
    {
      intent: 'night shift 22-06, Mon 03:00: no shift began Sun',
      timezone: 'UTC',
      hours: nights,
      now: '2026-11-30T03:00:00Z',
      paged: false,
    },
    {
      intent: 'night shift 22-06, Sat 23:00: no shift begins Sat',
      timezone: 'UTC',
      hours: nights,
      now: '2026-11-28T23:00:00Z',
      paged: false,
    },
    {
      intent: 'night shift 22-06, Fri 06:00 sharp: the shift is over',
      timezone: 'UTC',
      hours: nights,
      now: '2026-11-27T06:00:00Z',
      paged: false,
    },
    {
      intent: 'night shift 22-06, Thu 12:00: daytime is off',
      timezone: 'UTC',
      hours: nights,
      now: '2026-11-26T12:00:00Z',
      paged: false,
    },
    {
      intent: 'no working hours configured: reachable at 03:00',
      timezone: 'Asia/Tokyo',
      now: '2026-11-25T18:00:00Z',
      paged: true,
    },
  ])('$intent', (c) => {
    const alice = person(ALICE, { logins: ['alice'] });
    if (c.timezone !== undefined) alice.timezone = c.timezone;
    if (c.hours !== undefined) alice.workingHours = c.hours;
    const d = decide({ directory: directory([alice, person(BOB, { logins: ['bob'] })]), now: at(c.now) });
    if (c.paged) {
      expect(d.reason).toBe('author_paged');
      expect(d.targets).toEqual([page(ALICE)]);
    } else {
      expect(d.reason).toBe('author_outside_working_hours');
      expect(d.targets).toEqual([ONCALL]);
      expect(d.notify).toContain(ALICE);
      expect(d.sentence).toMatch(
        /outside alice@example\.com's working hours, so on-call is paged and alice@example\.com is told/,
      );
    }
  });

  it('author+oncall outside the author’s hours pages only on-call', () => {
    const alice = person(ALICE, { logins: ['alice'], timezone: 'Asia/Tokyo', workingHours: office });
    const d = decide({
      policy: policy({ mode: 'author+oncall' }),
      directory: directory([alice, person(BOB)]),
      now: at('2026-11-25T18:00:00Z'),
    });
    expect(d.reason).toBe('author_outside_working_hours');
    expect(d.targets).toEqual([ONCALL]);
    expect(d.notify).toEqual([ALICE, BOB]);
  });

  it('a bot change is held to the merger’s hours, not the bot’s', () => {
    const bob = person(BOB, { logins: ['bob'], timezone: 'Asia/Tokyo', workingHours: office });
    const d = decide({
      candidates: { inWindow: [deploy({ changes: [change({ login: 'dependabot[bot]' }, { login: 'bob' })] })] },
      directory: directory([bob]),
      now: at('2026-11-25T18:00:00Z'),
    });
    expect(d.reason).toBe('author_outside_working_hours');
    expect(d.targets).toEqual([ONCALL]);
    expect(d.notify).toEqual([BOB]);
  });
});

describe('locateAlert', () => {
  const payments: ServicePolicy = policy({
    labels: { service: DEFAULT_LABELS.service, environment: ['stage'], host: ['node'] },
  });
  const policyFor = (service: string | undefined) => (service === 'payments' ? payments : policy());
  interface Case {
    intent: string;
    labels: Record<string, string>;
    expected: AlertLocation;
  }
  it.each<Case>([
    {
      intent: 'service label wins over app and job',
      labels: { service: 'checkout', app: 'shop', job: 'node-exporter' },
      expected: { service: 'checkout', environment: 'prod-eu', hosts: [] },
    },
    {
      intent: 'app when there is no service label',
      labels: { app: 'shop', job: 'node-exporter' },
      expected: { service: 'shop', environment: 'prod-eu', hosts: [] },
    },
    {
      intent: 'job as the last resort',
      labels: { job: 'node-exporter' },
      expected: { service: 'node-exporter', environment: 'prod-eu', hosts: [] },
    },
    {
      intent: 'an empty service label is skipped',
      labels: { service: '', app: 'shop' },
      expected: { service: 'shop', environment: 'prod-eu', hosts: [] },
    },
    {
      intent: 'environment from the env label',
      labels: { service: 'checkout', env: 'staging' },
      expected: { service: 'checkout', environment: 'staging', hosts: [] },
    },
    {
      intent: 'environment from the environment label when env is absent',
      labels: { service: 'checkout', environment: 'staging' },
      expected: { service: 'checkout', environment: 'staging', hosts: [] },
    },
    {
      intent: 'env is read before environment',
      labels: { service: 'checkout', env: 'staging', environment: 'production' },
      expected: { service: 'checkout', environment: 'staging', hosts: [] },
    },
    {
      intent: 'the default environment when neither label is set',
      labels: { service: 'checkout' },
      expected: { service: 'checkout', environment: 'prod-eu', hosts: [] },
    },
    {
      intent: 'hosts: the instance without its port, then pod and host labels',
      labels: { service: 'checkout', instance: 'web-1:9100', pod: 'checkout-7f9c-abcde', host: 'node-3' },
      expected: { service: 'checkout', environment: 'prod-eu', hosts: ['web-1', 'checkout-7f9c-abcde', 'node-3'] },
    },
    {
      intent: 'a host named twice is listed once',
      labels: { service: 'checkout', instance: 'web-1:9100', host: 'web-1' },
      expected: { service: 'checkout', environment: 'prod-eu', hosts: ['web-1'] },
    },
    {
      intent: 'a service with its own label names reads environment and host from them',
      labels: { service: 'payments', stage: 'canary-eu', env: 'staging', node: 'pay-2', pod: 'ignored' },
      expected: { service: 'payments', environment: 'canary-eu', hosts: ['pay-2'] },
    },
  ])('$intent', (c) => {
    expect(locateAlert(c.labels, DEFAULT_LABELS.service, policyFor, 'prod-eu')).toEqual(c.expected);
  });

  it('no service label: no service, still an environment', () => {
    const loc = locateAlert({ alertname: 'NodeDown', env: 'staging' }, DEFAULT_LABELS.service, policyFor, 'prod-eu');
    expect(loc).not.toHaveProperty('service');
    expect(loc.environment).toBe('staging');
  });
});

describe('hostOfInstance', () => {
  it.each([
    { intent: 'host:port loses its port', instance: 'db1:9100', host: 'db1' },
    { intent: 'IPv4:port loses its port', instance: '10.0.0.7:9100', host: '10.0.0.7' },
    { intent: 'bare IPv4 unchanged', instance: '10.0.0.7', host: '10.0.0.7' },
    { intent: 'bare host name unchanged', instance: 'checkout-7f9c-abcde', host: 'checkout-7f9c-abcde' },
    { intent: 'bracketed IPv6 with port', instance: '[::1]:9100', host: '::1' },
    { intent: 'bracketed IPv6 without port', instance: '[fe80::1]', host: 'fe80::1' },
    { intent: 'bare IPv6 is not mistaken for host:port', instance: 'fe80::1', host: 'fe80::1' },
    {
      intent: 'a blackbox probe URL gives its host',
      instance: 'https://checkout.example.com/health',
      host: 'checkout.example.com',
    },
    { intent: 'a probe URL with a port gives its host', instance: 'http://user@10.0.0.7:8080/', host: '10.0.0.7' },
  ])('$intent', ({ instance, host }) => {
    expect(hostOfInstance(instance)).toBe(host);
  });
});
