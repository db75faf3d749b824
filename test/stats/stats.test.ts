import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type ChangeFact,
  changeFact,
  type DecidedEpisode,
  HygieneTally,
  hygiene,
  OTHER,
  rolloutStarts,
  seriesLabels,
} from '../../src/core/stats.js';
import type { Deploy } from '../../src/core/types.js';
import { amPayload, createHarness, designDeploy, fakeClock, type Harness, TOKEN } from '../support/harness.js';

const auth = { Authorization: `Bearer ${TOKEN}` };
const CANARY = 'checkout-7f9c-h1';

describe('GET /v1/stats and the hygiene gauges', () => {
  let h: Harness;
  const clock = fakeClock('2026-11-26T12:30:00Z');

  beforeEach(async () => {
    clock.set('2026-11-26T12:30:00Z');
    h = createHarness({ now: clock.now });
    // checkout: v1 canary then full (one rollout, one change), v2 a bundle of two, then a flag flip.
    await post(
      '/v1/deploys',
      designDeploy({ id: 'v1-canary', version: 'v1', stage: 'canary', hosts: [CANARY], at: '2026-11-26T10:00:00Z' }),
    );
    await post('/v1/deploys', designDeploy({ id: 'v1-full', version: 'v1', at: '2026-11-26T10:30:00Z' }));
    const bundle = designDeploy().changes;
    await post(
      '/v1/deploys',
      designDeploy({
        id: 'v2',
        version: 'v2',
        at: '2026-11-26T11:00:00Z',
        changes: [...bundle, { author: { login: 'dave' } }],
      }),
    );
    await post('/v1/deploys', {
      kind: 'flag',
      id: 'flip',
      service: 'checkout',
      flag: { key: 'new-cart', to: true },
      author: { email: 'carol@example.com' },
      at: '2026-11-26T12:00:00Z',
    });
    await post(
      '/v1/deploys',
      designDeploy({ id: 'cart-9', service: 'cart', version: 'v9', at: '2026-11-26T10:00:00Z' }),
    );
    // A deploy outside the period asked about below.
    await post('/v1/deploys', designDeploy({ id: 'old', version: 'v0', at: '2026-11-20T10:00:00Z' }));

    const alerts: [string, string, Record<string, string>][] = [
      ['s100000000000001', '2026-11-26T10:05:00Z', { instance: `${CANARY}:8080` }], // v1-canary, 5 min after
      ['s100000000000002', '2026-11-26T10:10:00Z', { instance: `${CANARY}:8080` }], // v1-canary again
      ['s100000000000003', '2026-11-26T11:20:00Z', {}], // v2 (a bundle), 20 min after
      ['s100000000000004', '2026-11-26T12:03:00Z', {}], // the flag flip, 3 min after
      ['s100000000000005', '2026-11-26T09:00:00Z', { service: 'cart' }], // before cart's deploy: on-call
    ];
    for (const [fingerprint, startsAt, labels] of alerts) {
      await post('/v1/alertmanager', amPayload([{ fingerprint, startsAt, labels }]));
    }
    const episode = (await h.store.alertHistory('s100000000000004'))[0]?.episode;
    if (!episode) throw new Error('the flag alert was stored');
    await h.store.recordNotMine(episode.id, 'carol@example.com', clock.now());
  });
  afterEach(async () => {
    await h.close();
  });

  async function post(path: string, body: unknown) {
    const res = await request(h.app)
      .post(path)
      .set(auth)
      .send(body as object);
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    return res;
  }
  const get = (path: string) => request(h.app).get(path).set(auth);

  it('counts deploys, single-change share, attributed alerts, time to first alert and feedback per service', async () => {
    const res = await get('/v1/stats?since=2026-11-26T00:00:00Z');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      since: '2026-11-26T00:00:00.000Z',
      until: '2026-11-26T12:30:00.000Z',
      feedbackRecorded: true,
    });
    expect(res.body.services).toEqual([
      {
        service: 'cart',
        deploys: 1,
        flagChanges: 0,
        configChanges: 0,
        stageEvents: 1,
        singleChangeDeploys: 1,
        singleChangeShare: 1,
        alerts: 1,
        attributedAlerts: 0,
        attributedByKind: { deploy: 0, flag: 0, config: 0 },
        medianSecondsToFirstAlert: null,
        notMyChange: 0,
        rollbacks: 0,
        // 1 deploy in 12.5 hours
        deploymentsPerDay: 1.92,
        leadTimeSeconds: null,
        failedDeploys: 0,
        changeFailureRate: 0,
        timeToRestoreSeconds: null,
      },
      {
        service: 'checkout',
        deploys: 2,
        flagChanges: 1,
        configChanges: 0,
        stageEvents: 4,
        singleChangeDeploys: 1,
        singleChangeShare: 0.5,
        alerts: 4,
        attributedAlerts: 4,
        attributedByKind: { deploy: 3, flag: 1, config: 0 },
        // first alerts: 5 min (v1-canary), 20 min (v2), 3 min (flip): the median is 5 min
        medianSecondsToFirstAlert: 300,
        notMyChange: 1,
        rollbacks: 0,
        deploymentsPerDay: 3.84,
        leadTimeSeconds: null,
        // v1 and v2 both had alerts attributed, none resolved yet: failed, not restored
        failedDeploys: 2,
        changeFailureRate: 1,
        timeToRestoreSeconds: null,
      },
    ]);
  });

  it('defaults to the last seven days, and filters by service', async () => {
    const all = await get('/v1/stats');
    expect(all.body.since).toBe('2026-11-19T12:30:00.000Z');
    const checkout = all.body.services.find((s: { service: string }) => s.service === 'checkout');
    expect(checkout.deploys).toBe(3); // the deploy of 2026-11-20 is in the default period
    const cart = await get('/v1/stats?service=cart&since=P1D');
    expect(cart.body.services.map((s: { service: string }) => s.service)).toEqual(['cart']);
  });

  it('answers an empty period with no services', async () => {
    const res = await get('/v1/stats?since=2026-11-01T00:00:00Z&until=2026-11-02T00:00:00Z');
    expect(res.body.services).toEqual([]);
  });

  it.each([
    ['a since that is neither a time nor a duration', '?since=last-week', ['since']],
    ['a since after until', '?since=2026-11-26T12:00:00Z&until=2026-11-26T11:00:00Z', ['since']],
    ['an until that is not a time, and an unknown parameter', '?until=tomorrow&team=x', ['', 'until']],
  ])('rejects %s', async (_intent, query, paths) => {
    const res = await get(`/v1/stats${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_query');
    expect(res.body.details.problems.map((p: { path: string }) => p.path).sort()).toEqual(paths);
  });

  it('exposes the same numbers over the last seven days as gauges in /metrics', async () => {
    await h.metrics.refresh();
    const metrics = (await request(h.app).get('/metrics')).text;
    expect(metrics).toContain('changepager_hygiene_deploys{service="checkout"} 3');
    expect(metrics).toContain('changepager_hygiene_deploys{service="cart"} 1');
    expect(metrics).toContain('changepager_hygiene_single_change_ratio{service="checkout"} 0.6667');
    expect(metrics).toContain('changepager_hygiene_attributed_alerts{service="checkout"} 4');
    expect(metrics).toContain('changepager_hygiene_first_alert_median_seconds{service="checkout"} 300');
    expect(metrics).toContain('changepager_hygiene_not_my_change{service="checkout"} 1');
    // cart has no attributed alert: no median sample rather than a made-up zero
    expect(metrics).not.toContain('changepager_hygiene_first_alert_median_seconds{service="cart"}');
  });

  it('answers 401 without a token', async () => {
    expect((await request(h.app).get('/v1/stats')).status).toBe(401);
  });
});

describe('the four keys, on a fixture worked out by hand', () => {
  let h: Harness;
  const clock = fakeClock('2026-11-26T12:00:00Z');
  beforeEach(() => {
    clock.set('2026-11-26T12:00:00Z');
    h = createHarness({ now: clock.now });
  });
  afterEach(async () => {
    await h.close();
  });
  const post = async (path: string, body: unknown) => {
    const res = await request(h.app)
      .post(path)
      .set(auth)
      .send(body as object);
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
  };
  const change = (times: Record<string, string>) => ({ author: { email: 'alice@example.com' }, ...times });

  it('counts deployment frequency, lead time, change failure rate and time to restore, rollbacks apart', async () => {
    // d1 08:00, two changes committed 07:00 and merged 07:30: lead 60 and 30 min, the deploy's median 45 min.
    await post(
      '/v1/deploys',
      designDeploy({
        id: 'd1',
        version: 'v1',
        at: '2026-11-26T08:00:00Z',
        changes: [change({ committedAt: '2026-11-26T07:00:00Z' }), change({ mergedAt: '2026-11-26T07:30:00Z' })],
      }),
    );
    // d2 09:00, committed 08:00 (60 min); alert A 09:10-09:40; rolled back to v1 at 09:30; alert C at 09:35.
    await post(
      '/v1/deploys',
      designDeploy({
        id: 'd2',
        version: 'v2',
        at: '2026-11-26T09:00:00Z',
        changes: [change({ committedAt: '2026-11-26T08:00:00Z' })],
      }),
    );
    await post('/v1/alertmanager', amPayload([{ fingerprint: 'k000000000000001', startsAt: '2026-11-26T09:10:00Z' }]));
    const { changes: _c, ...rollback } = designDeploy({
      id: 'rb',
      version: 'v1',
      rollback: true,
      at: '2026-11-26T09:30:00Z',
    });
    await post('/v1/deploys', rollback);
    await post('/v1/alertmanager', amPayload([{ fingerprint: 'k000000000000003', startsAt: '2026-11-26T09:35:00Z' }]));
    await post(
      '/v1/alertmanager',
      amPayload([
        {
          fingerprint: 'k000000000000001',
          startsAt: '2026-11-26T09:10:00Z',
          status: 'resolved',
          endsAt: '2026-11-26T09:40:00Z',
        },
      ]),
    );
    // d3 10:00, committed 09:00 (60 min); alert B 10:05-10:15.
    await post(
      '/v1/deploys',
      designDeploy({
        id: 'd3',
        version: 'v3',
        at: '2026-11-26T10:00:00Z',
        changes: [change({ committedAt: '2026-11-26T09:00:00Z' })],
      }),
    );
    await post('/v1/alertmanager', amPayload([{ fingerprint: 'k000000000000002', startsAt: '2026-11-26T10:05:00Z' }]));
    await post(
      '/v1/alertmanager',
      amPayload([
        {
          fingerprint: 'k000000000000002',
          startsAt: '2026-11-26T10:05:00Z',
          status: 'resolved',
          endsAt: '2026-11-26T10:15:00Z',
        },
      ]),
    );
    // d4 11:00, no times, no alert.
    await post('/v1/deploys', designDeploy({ id: 'd4', version: 'v4', at: '2026-11-26T11:00:00Z' }));

    const res = await request(h.app).get('/v1/stats?since=2026-11-26T00:00:00Z&until=2026-11-26T12:00:00Z').set(auth);
    expect(res.body.services).toHaveLength(1);
    expect(res.body.services[0]).toMatchObject({
      service: 'checkout',
      // d1, d2, d3, d4; the rollback is counted apart
      deploys: 4,
      rollbacks: 1,
      // 4 deploys in half a day
      deploymentsPerDay: 8,
      // the median of 45, 60 and 60 min (d4 carries no times)
      leadTimeSeconds: 3600,
      // d2 (an alert, and rolled back) and d3 (an alert) of 4
      failedDeploys: 2,
      changeFailureRate: 0.5,
      // d2: from A at 09:10 to the rollback at 09:30 (before A resolved at 09:40): 20 min; d3: 10 min. Median 15.
      timeToRestoreSeconds: 900,
    });

    await h.metrics.refresh();
    const metrics = await request(h.app).get('/metrics');
    // The gauges count the 7 days before now: the same deploys over 7 days.
    expect(metrics.text).toContain('changepager_lead_time_seconds{service="checkout"} 3600');
    expect(metrics.text).toContain('changepager_change_failure_ratio{service="checkout"} 0.5');
    expect(metrics.text).toContain('changepager_time_to_restore_seconds{service="checkout"} 900');
    expect(metrics.text).toContain('changepager_deployment_frequency_per_day{service="checkout"} 0.5714');
    expect(metrics.text).toContain('changepager_rollbacks{service="checkout"} 1');
  });
});

describe('rolloutStarts: which stage events begin a rollout', () => {
  const ev = (id: string, version: string, at: number, patch: Partial<Deploy> = {}): Deploy => ({
    id,
    service: 'checkout',
    environment: 'production',
    version,
    stage: 'full',
    hosts: [],
    at,
    receivedAt: at,
    changes: [{ author: { login: 'a' } }],
    ...patch,
  });
  it.each([
    ['stages of one version are one rollout', [ev('a', 'v1', 1), ev('b', 'v1', 2)], ['a']],
    [
      'a rollback and a roll forward are rollouts of their own',
      [ev('a', 'v1', 1), ev('b', 'v0', 2), ev('c', 'v1', 3)],
      ['a', 'b', 'c'],
    ],
    ['other environments are separate', [ev('a', 'v1', 1), ev('b', 'v1', 2, { environment: 'staging' })], ['a', 'b']],
    [
      'a flag flip between two stages does not split the deploy',
      [ev('a', 'v1', 1), ev('f', 'flag:x=true', 2, { kind: 'flag', flag: { key: 'x', to: true } }), ev('b', 'v1', 3)],
      ['a', 'f'],
    ],
    ['order comes from at, not from arrival', [ev('b', 'v1', 2), ev('a', 'v1', 1)], ['a']],
  ])('%s', (_intent, events, starts) => {
    expect(rolloutStarts(events).map((e) => e.id)).toEqual(starts);
  });

  it('reports a median of an even count as the mean of the middle two', () => {
    const events = [ev('a', 'v1', 0), ev('b', 'v2', 1000)];
    const rows = hygiene({
      events: events.map(changeFact),
      episodes: [
        { service: 'checkout', startsAtMs: 60_000, deployId: 'a', deployAt: 0, notMine: false },
        { service: 'checkout', startsAtMs: 1000 + 180_000, deployId: 'b', deployAt: 1000, notMine: false },
      ],
      feedbackRecorded: false,
    });
    expect(rows[0]?.medianSecondsToFirstAlert).toBe(120);
  });
});

describe('HygieneTally: the same numbers however the facts are paged, and folded services', () => {
  const at = Date.parse('2026-11-26T10:00:00Z');
  const ev = (id: string, service: string, version: string, minutes: number, changes = 1): ChangeFact => ({
    id,
    service,
    environment: 'production',
    kind: 'deploy',
    subject: '',
    version,
    at: at + minutes * 60_000,
    receivedAt: at + minutes * 60_000,
    changeCount: changes,
  });
  const events = [
    ev('a1', 'a', 'v1', 0),
    ev('a2', 'a', 'v1', 10), // a later stage of the same rollout
    ev('a3', 'a', 'v2', 20, 3),
    ev('b1', 'b', 'v1', 5),
    ev('c1', 'c', 'v1', 6),
  ];
  const ep = (service: string, minutes: number, deploy?: ChangeFact): DecidedEpisode => ({
    service,
    startsAtMs: at + minutes * 60_000,
    notMine: false,
    ...(deploy ? { deployId: deploy.id, deployKind: 'deploy' as const, deployAt: deploy.at } : {}),
  });
  const [a1, , a3, b1, c1] = events as [ChangeFact, ChangeFact, ChangeFact, ChangeFact, ChangeFact];
  const episodes = [ep('a', 4, a1), ep('a', 2, a1), ep('a', 30, a3), ep('b', 8, b1), ep('c', 16, c1), ep('c', 50)];

  it('gives the same rows for one page as for pages of one fact each', () => {
    const whole = new HygieneTally();
    whole.add({ events, episodes, feedbackRecorded: true });
    const paged = new HygieneTally();
    for (const e of events) paged.add({ events: [e], episodes: [], feedbackRecorded: true });
    for (const e of episodes) paged.add({ events: [], episodes: [e], feedbackRecorded: true });
    expect(paged.services()).toEqual(whole.services());
    expect(whole.services().find((r) => r.service === 'a')).toMatchObject({
      deploys: 2,
      stageEvents: 3,
      singleChangeDeploys: 1,
      alerts: 3,
      attributedAlerts: 3,
      medianSecondsToFirstAlert: 360, // first alerts 2 min after a1, 10 min after a3
    });
  });

  it('does not count against a deploy an alert whose evidence cleared it', () => {
    const tally = new HygieneTally();
    const cleared = { ...ep('b', 8, b1), reason: 'deploy_exonerated' as const };
    tally.add({ events, episodes: [cleared], feedbackRecorded: true });
    expect(tally.services().find((r) => r.service === 'b')).toMatchObject({
      alerts: 1,
      attributedAlerts: 0,
      failedDeploys: 0,
    });
    const convicted = new HygieneTally();
    convicted.add({ events, episodes: [{ ...cleared, reason: 'author_paged' }], feedbackRecorded: true });
    expect(convicted.services().find((r) => r.service === 'b')).toMatchObject({
      attributedAlerts: 1,
      failedDeploys: 1,
    });
  });

  it('folds services into one row: counts summed, share and median over the folded services together', () => {
    const tally = new HygieneTally();
    tally.add({ events, episodes, feedbackRecorded: true });
    const rows = tally.services((s) => (s === 'a' ? 'a' : OTHER));
    expect(rows.map((r) => r.service)).toEqual(['a', 'other']);
    expect(rows[1]).toMatchObject({
      deploys: 2,
      stageEvents: 2,
      singleChangeShare: 1,
      alerts: 3,
      attributedAlerts: 2,
      medianSecondsToFirstAlert: 390, // gaps of 3 min (b1) and 10 min (c1)
    });
    expect(tally.volumes()).toEqual(
      new Map([
        ['a', 6],
        ['b', 2],
        ['c', 3],
      ]),
    );
  });
});

describe('seriesLabels: which services keep series of their own', () => {
  const volumes = new Map([
    ['checkout', 50],
    ['cart', 40],
    ['search', 40],
    ['typo-svc', 1],
  ]);
  it.each([
    ['the busiest keep their own', 2, [], 'checkout', 'checkout'],
    ['ties on volume go by name', 2, [], 'cart', 'cart'],
    ['beyond top N a service is "other"', 2, [], 'search', 'other'],
    ['a configured service keeps its own however quiet', 2, ['typo-svc'], 'typo-svc', 'typo-svc'],
    ['a configured service with no volume at all keeps its own', 0, ['payments'], 'payments', 'payments'],
    ['with top N 0, only configured services', 0, [], 'checkout', 'other'],
    ['a service never seen is "other"', 10, [], 'new-svc', 'other'],
  ])('%s', (_intent, topN, keep, service, label) => {
    expect(seriesLabels(volumes, new Set(keep), topN)(service)).toBe(label);
  });
});
