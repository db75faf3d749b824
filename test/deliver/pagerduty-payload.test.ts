import { describe, expect, it } from 'vitest';
import {
  changeEvent,
  EVENT_MAX_BYTES,
  eventMinimal,
  eventTrigger,
  incidentDetails,
  joinedNote,
  type PageContext,
} from '../../src/channels/pagerduty/payload.js';
import type { Change, Deploy } from '../../src/core/types.js';
import type { EpisodeRecord } from '../../src/store/store.js';

// The builders of what PagerDuty receives, fed the largest things an alert group or a deploy event can carry:
// every body fits the size it is given, and says what it left out.

const T = Date.parse('2026-11-26T11:09:00Z');
const MB = 1_000_000;

function episode(i: number, patch: Partial<EpisodeRecord> = {}): EpisodeRecord {
  return {
    id: i + 1,
    fingerprint: `f${String(i).padStart(15, '0')}`,
    startsAt: '2026-11-26T11:09:00.000000000Z',
    startsAtMs: T,
    status: 'firing',
    labels: { alertname: 'HighErrorRate', service: 'checkout', instance: `checkout-${i}:8080`, severity: 'critical' },
    annotations: { summary: 'Checkout error rate above 5%', runbook_url: 'https://runbooks.example/checkout' },
    generatorURL: 'http://prometheus.local/graph',
    groupKey: '{}:{alertname="HighErrorRate"}',
    receiver: 'changepager',
    externalURL: 'http://am.example:9093',
    firstSeenAt: T,
    lastSeenAt: T,
    decision: {
      reason: 'ambiguous_bundle',
      sentence: 'checkout deploy v142 bundled changes; paging on-call.',
      service: 'checkout',
      environment: 'production',
      policy: 'author',
      deployId: 'd1',
      suspects: [],
      targets: [{ kind: 'oncall' }],
      responders: [],
      notify: [],
      wouldPage: [],
      decidedAt: T,
    },
    ...patch,
  };
}

function changes(n: number, messageChars = 600): Change[] {
  return Array.from({ length: n }, (_, i) => ({
    author: { email: `dev${i}@example.com` },
    commit: { sha: `c${i}`, url: `https://git.example.com/c${i}`, message: 'm'.repeat(messageChars) },
  }));
}

function deploy(patch: Partial<Deploy> = {}): Deploy {
  return {
    id: 'd1',
    service: 'checkout',
    environment: 'production',
    version: 'v142',
    previousVersion: 'v141',
    stage: 'full',
    hosts: [],
    at: T - 7 * 60_000,
    receivedAt: T - 7 * 60_000,
    changes: changes(1),
    ...patch,
  };
}

function page(members: EpisodeRecord[], d: Deploy = deploy(), service = 'checkout'): PageContext {
  return {
    page: {
      id: 1,
      groupKey: '{}:{alertname="HighErrorRate"}',
      service,
      environment: 'production',
      target: { kind: 'oncall' },
      seq: 1,
      status: 'open',
      openedAt: T,
      dedupKey: 'changepager-0123456789abcdef0123456789abcdef01234567',
      delivered: {},
    },
    members,
    deploys: new Map([[d.id, d]]),
  };
}

const bytes = (body: unknown) => Buffer.byteLength(JSON.stringify(body), 'utf8');
const one = (patch: Partial<EpisodeRecord>) => [episode(0, patch)];
const base = episode(0);

const PAGES: [string, PageContext, RegExp][] = [
  ['a 1 MB label value', page(one({ labels: { ...base.labels, huge: 'x'.repeat(MB) } })), /more characters\)/],
  [
    'a 4.5 MB annotation',
    page(one({ annotations: { ...base.annotations, description: 'd'.repeat(4.5 * MB) } })),
    /more characters\)/,
  ],
  [
    '10,000 labels on one alert',
    page(one({ labels: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`l${i}`, 'v'.repeat(50)])) })),
    /"labels_not_shown":99\d\d/,
  ],
  ['5,000 alerts in one page', page(Array.from({ length: 5000 }, (_, i) => episode(i))), /"alerts_not_shown":4950/],
  ['a deploy of 1,000 changes', page(one({}), deploy({ changes: changes(1000) })), /"changes_not_shown":980/],
  [
    '10,000 different reasons',
    page(
      Array.from({ length: 10_000 }, (_, i) =>
        episode(i, { decision: { ...base.decision, sentence: `reason ${i} ${'r'.repeat(100)}` } }),
      ),
    ),
    /"why_not_shown":9990/,
  ],
  ['a 1 MB service name', page(one({}), deploy(), 's'.repeat(MB)), /more characters\)/],
  [
    'a 2 MB alertname and summary',
    page(
      one({ labels: { ...base.labels, alertname: 'A'.repeat(2 * MB) }, annotations: { summary: 'S'.repeat(2 * MB) } }),
    ),
    /more characters\)/,
  ],
];

describe('eventTrigger: the page as complete as fits', () => {
  it.each(PAGES)('fits in 512,000 bytes with %s, saying what was cut', (_intent, ctx, says) => {
    const body = eventTrigger(ctx, 'rk');
    expect(bytes(body)).toBeLessThanOrEqual(EVENT_MAX_BYTES);
    expect(body.payload?.summary.length).toBeLessThanOrEqual(1024);
    expect(body.payload?.source.length).toBeLessThanOrEqual(255);
    expect(JSON.stringify(body.payload?.custom_details)).toMatch(says);
  });

  it.each(PAGES)('fits in a configured 16,384 bytes with %s', (_intent, ctx) => {
    const body = eventTrigger(ctx, 'rk', { maxBytes: 16_384 });
    expect(bytes(body)).toBeLessThanOrEqual(16_384);
    expect(body.dedup_key).toBe(ctx.page.dedupKey);
  });

  it('leaves out a link whose URL is too long to be one, and keeps the others', () => {
    const body = eventTrigger(
      page(one({ annotations: { runbook_url: `https://runbooks.example/${'r'.repeat(MB)}` } })),
      'rk',
    );
    expect(body.links?.map((l) => l.text)).toEqual(['Commit', 'Prometheus query', 'Alertmanager']);
  });

  it('keeps a small page whole: every alert, label and change', () => {
    const ctx = page([episode(0), episode(1)], deploy({ changes: changes(3, 20) }));
    const details = eventTrigger(ctx, 'rk').payload?.custom_details as Record<string, unknown>;
    expect(details.alerts).toHaveLength(2);
    expect(details).not.toHaveProperty('alerts_not_shown');
    expect((details.deploy as { changes: Change[] }).changes).toEqual(changes(3, 20));
  });
});

describe('eventMinimal: what still reaches on-call when PagerDuty refused the full page', () => {
  it.each<[string, { externalUrl?: string; why?: string }, unknown[], boolean]>([
    ['without an external URL: no links, and no note without a reason', {}, [], false],
    [
      'with an external URL: links to the alert and the timeline, and the reason it is short',
      { externalUrl: 'https://cp.example.com', why: 'PagerDuty refused the full page (HTTP 400)' },
      [
        { href: 'https://cp.example.com/v1/alerts/f000000000000000', text: expect.any(String) },
        { href: 'https://cp.example.com/services/checkout', text: 'Timeline in changepager' },
      ],
      true,
    ],
  ])('%s', (_intent, opts, links, note) => {
    const body = eventMinimal(page(one({ labels: { ...base.labels, huge: 'x'.repeat(MB) } })), 'rk', opts);
    expect(Object.keys(body.payload ?? {}).sort()).toEqual(
      note ? ['custom_details', 'severity', 'source', 'summary'] : ['severity', 'source', 'summary'],
    );
    expect(body).toMatchObject({ routing_key: 'rk', event_action: 'trigger', links });
    expect(bytes(body)).toBeLessThan(4096);
  });
});

describe('incident body, notes and change events', () => {
  it.each(PAGES)('the incident body stays within 24,000 characters with %s', (_intent, ctx) => {
    expect(incidentDetails(ctx, 'https://cp.example.com').length).toBeLessThanOrEqual(24_000);
  });

  it('the incident body names the changes it leaves out', () => {
    const text = incidentDetails(page(one({}), deploy({ changes: changes(1000, 10) })));
    expect(text).toContain('… and 980 more changes');
    expect(text).toContain('Change by dev19@example.com');
    expect(text).not.toContain('Change by dev20@example.com');
  });

  it('a note for 5,000 joining alerts stays within 24,000 characters and counts the rest', () => {
    const note = joinedNote(Array.from({ length: 5000 }, (_, i) => episode(i)));
    expect(note.length).toBeLessThanOrEqual(24_000);
    expect(note).toContain('… and 4,950 more alerts');
  });

  it.each<[string, Deploy, RegExp]>([
    ['1,000 changes of 600-character messages', deploy({ changes: changes(1000) }), /"changes_not_shown":980/],
    [
      '10,000 canary hosts',
      deploy({ hosts: Array.from({ length: 10_000 }, (_, i) => `host-${i}`) }),
      /"hosts_not_shown":9980/,
    ],
    ['a 2 MB version', deploy({ version: 'v'.repeat(2 * MB) }), /more characters\)/],
  ])('a change event fits in 512,000 bytes with %s', (_intent, d, says) => {
    const body = changeEvent(d, 'rk');
    expect(bytes(body)).toBeLessThanOrEqual(EVENT_MAX_BYTES);
    expect(body.payload.summary.length).toBeLessThanOrEqual(1024);
    expect(JSON.stringify(body.payload.custom_details)).toMatch(says);
  });

  it('names the first authors of a bundle in the change event summary and counts the rest', () => {
    expect(changeEvent(deploy({ changes: changes(1000, 1) }), 'rk').payload.summary).toBe(
      'checkout v142 deployed to production (full) by dev0@example.com, dev1@example.com, dev2@example.com … and 997 more authors',
    );
  });
});
