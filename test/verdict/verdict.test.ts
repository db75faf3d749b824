import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  amPayload,
  apiClient,
  createHarness,
  designDeploy,
  fakeClock,
  type Harness,
  TOKEN,
} from '../support/harness.js';

const auth = { Authorization: `Bearer ${TOKEN}` };
const H1 = 'checkout-7f9c-h1';
const H2 = 'checkout-7f9c-h2';

describe('GET /v1/deploys/{id}/verdict: the canary gate', () => {
  let h: Harness;
  const clock = fakeClock('2026-11-26T11:00:00Z');

  beforeEach(() => {
    clock.set('2026-11-26T11:00:00Z');
    h = createHarness({ now: clock.now });
  });
  afterEach(async () => {
    await h.close();
  });

  const { post } = apiClient(() => h.app);
  const verdict = (id: string, query = '?observe=PT30M') =>
    request(h.app).get(`/v1/deploys/${id}/verdict${query}`).set(auth);
  const canary = (overrides: Record<string, unknown> = {}) =>
    designDeploy({
      id: 'canary-1',
      stage: 'canary',
      percent: 1,
      hosts: [H1],
      at: '2026-11-26T11:00:00Z',
      ...overrides,
    });
  const alertFrom = (host: string, fingerprint: string, startsAt: string, extra: Record<string, unknown> = {}) =>
    amPayload([{ fingerprint, startsAt, labels: { instance: `${host}:8080` }, ...extra }]);

  it('fails a canary when an alert from its host is attributed to it, naming the alert', async () => {
    expect((await post('/v1/deploys', canary())).status).toBe(201);
    clock.set('2026-11-26T11:06:00Z');
    await post('/v1/alertmanager', alertFrom(H1, 'a100000000000001', '2026-11-26T11:05:00Z'));

    const res = await verdict('canary-1');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: 'canary-1',
      verdict: 'failing',
      service: 'checkout',
      environment: 'production',
      kind: 'deploy',
      version: '2026.11.26-3f2a9c1',
      window: { from: '2026-11-26T11:00:00.000Z', to: '2026-11-26T11:30:00.000Z', observe: 'PT30M' },
      stage: { id: 'canary-1', stage: 'canary', percent: 1, hosts: [H1] },
    });
    expect(res.body.alerts).toEqual([
      expect.objectContaining({
        fingerprint: 'a100000000000001',
        alertname: 'HighErrorRate',
        startsAt: '2026-11-26T11:05:00.000000000Z',
        status: 'firing',
        deployId: 'canary-1',
        reason: 'author_paged',
        sentence: expect.stringContaining('on canary host checkout-7f9c-h1'),
      }),
    ]);
    expect(res.body.sentence).toMatch(
      /is failing: 1 alert attributed to it \(HighErrorRate on checkout-7f9c-h1 since 11:05 UTC\)/,
    );
  });

  it('does not count an alert from another host: pending during the window, healthy once it ends', async () => {
    await post('/v1/deploys', canary());
    clock.set('2026-11-26T11:06:00Z');
    const alert = await post('/v1/alertmanager', alertFrom(H2, 'a200000000000001', '2026-11-26T11:05:00Z'));
    expect(alert.body.decisions[0].decision.reason).toBe('canary_host_mismatch');

    const during = await verdict('canary-1');
    expect(during.body).toMatchObject({ verdict: 'pending', alerts: [], window: { decidedInSeconds: 24 * 60 } });
    expect(during.headers['retry-after']).toBe('60');

    clock.set('2026-11-26T11:30:00Z');
    const after = await verdict('canary-1');
    expect(after.body).toMatchObject({ verdict: 'healthy', alerts: [], window: { decidedInSeconds: 0 } });
    expect(after.headers['retry-after']).toBeUndefined();
    expect(after.body.sentence).toBe(
      'checkout deploy 2026.11.26-3f2a9c1 (canary 1%) in production is healthy: no alert was attributed to it from 11:00 UTC to 11:30 UTC.',
    );
  });

  it('turns from pending to healthy by the clock alone, and waits out settle before saying healthy', async () => {
    await post('/v1/deploys', canary());
    clock.set('2026-11-26T11:29:59Z');
    expect((await verdict('canary-1')).body.verdict).toBe('pending');
    clock.set('2026-11-26T11:30:00Z');
    expect((await verdict('canary-1')).body.verdict).toBe('healthy');
    const settling = await verdict('canary-1', '?observe=PT30M&settle=PT2M');
    expect(settling.body).toMatchObject({ verdict: 'pending', window: { settle: 'PT2M', decidedInSeconds: 120 } });
    clock.set('2026-11-26T11:32:00Z');
    expect((await verdict('canary-1', '?observe=PT30M&settle=PT2M')).body.verdict).toBe('healthy');
  });

  it('defaults observe to PT30M', async () => {
    await post('/v1/deploys', canary());
    const res = await verdict('canary-1', '');
    expect(res.body.window).toMatchObject({ observe: 'PT30M', settle: 'PT0S', to: '2026-11-26T11:30:00.000Z' });
  });

  describe('stages of one rollout', () => {
    const partial = (overrides: Record<string, unknown> = {}) =>
      designDeploy({ id: 'partial-10', stage: 'partial', percent: 10, at: '2026-11-26T11:40:00Z', ...overrides });

    it('restarts the window at the next stage, and answers the same for either stage id', async () => {
      await post('/v1/deploys', canary());
      clock.set('2026-11-26T11:41:00Z');
      await post('/v1/deploys', partial());
      const [byCanary, byPartial] = [await verdict('canary-1'), await verdict('partial-10')];
      for (const res of [byCanary, byPartial]) {
        expect(res.body).toMatchObject({
          verdict: 'pending',
          window: { from: '2026-11-26T11:40:00.000Z', to: '2026-11-26T12:10:00.000Z' },
          stage: { id: 'partial-10', stage: 'partial', percent: 10 },
        });
        expect(res.body.rollout.map((r: { id: string }) => r.id)).toEqual(['canary-1', 'partial-10']);
      }
      expect(byCanary.body.id).toBe('canary-1');
      clock.set('2026-11-26T12:10:00Z');
      expect((await verdict('canary-1')).body.verdict).toBe('healthy');
    });

    it('counts an alert of the 10 % stage against the canary id too', async () => {
      await post('/v1/deploys', canary());
      await post('/v1/deploys', partial());
      clock.set('2026-11-26T11:50:00Z');
      await post('/v1/alertmanager', alertFrom(H2, 'a300000000000001', '2026-11-26T11:45:00Z'));
      const res = await verdict('canary-1');
      expect(res.body.verdict).toBe('failing');
      expect(res.body.alerts).toEqual([
        expect.objectContaining({ fingerprint: 'a300000000000001', deployId: 'partial-10' }),
      ]);
    });

    it.each([
      ['still fails the next stage while the canary alert fires', undefined, 'failing', 1, 0],
      ['lets the next stage start clean once the canary alert resolved', '2026-11-26T11:10:00Z', 'pending', 0, 1],
    ])('%s', async (_intent, endsAt, expected, counted, notJudged) => {
      await post('/v1/deploys', canary());
      clock.set('2026-11-26T11:06:00Z');
      const fp = 'a400000000000001';
      await post('/v1/alertmanager', alertFrom(H1, fp, '2026-11-26T11:05:00Z'));
      if (endsAt) {
        await post(
          '/v1/alertmanager',
          amPayload([
            {
              fingerprint: fp,
              startsAt: '2026-11-26T11:05:00Z',
              status: 'resolved',
              endsAt,
              labels: { instance: `${H1}:8080` },
            },
          ]),
        );
      }
      clock.set('2026-11-26T11:41:00Z');
      await post('/v1/deploys', partial());
      const res = await verdict('partial-10');
      expect(res.body.verdict).toBe(expected);
      expect(res.body.alerts).toHaveLength(counted);
      expect(res.body.notJudged).toHaveLength(notJudged);
      if (notJudged) expect(res.body.notJudged[0]).toMatchObject({ fingerprint: fp, why: 'resolved_before_window' });
    });

    it('ends the rollout at another version and says what superseded it', async () => {
      await post('/v1/deploys', canary());
      await post('/v1/deploys', designDeploy({ id: 'next-release', version: 'v2', at: '2026-11-26T11:10:00Z' }));
      await post('/v1/deploys', partial({ id: 'late-stage-of-v2', version: 'v2', at: '2026-11-26T11:20:00Z' }));
      const res = await verdict('canary-1');
      expect(res.body.rollout.map((r: { id: string }) => r.id)).toEqual(['canary-1']);
      expect(res.body.supersededBy).toEqual({ id: 'next-release', version: 'v2', at: '2026-11-26T11:10:00.000Z' });
      expect((await verdict('late-stage-of-v2')).body.rollout.map((r: { id: string }) => r.id)).toEqual([
        'next-release',
        'late-stage-of-v2',
      ]);
    });

    it('keeps a deploy rollout whole across a flag flip of the same service', async () => {
      await post('/v1/deploys', canary());
      await post('/v1/deploys', {
        kind: 'flag',
        id: 'flag-flip',
        service: 'checkout',
        flag: { key: 'new-cart', from: false, to: true },
        author: { email: 'carol@example.com' },
        at: '2026-11-26T11:20:00Z',
      });
      await post('/v1/deploys', partial());
      expect((await verdict('canary-1')).body.rollout.map((r: { id: string }) => r.id)).toEqual([
        'canary-1',
        'partial-10',
      ]);
    });
  });

  it('lists an attributed alert that started after the window without failing the verdict', async () => {
    await post('/v1/deploys', designDeploy({ id: 'full-1', at: '2026-11-26T11:00:00Z' }));
    clock.set('2026-11-26T11:50:00Z');
    await post('/v1/alertmanager', alertFrom(H2, 'a500000000000001', '2026-11-26T11:45:00Z'));
    const res = await verdict('full-1');
    expect(res.body).toMatchObject({ verdict: 'healthy', alerts: [] });
    expect(res.body.notJudged).toEqual([
      expect.objectContaining({ fingerprint: 'a500000000000001', why: 'started_after_window' }),
    ]);
  });

  it('judges a flag flip like a deploy', async () => {
    await post('/v1/deploys', {
      kind: 'flag',
      id: 'flag-1',
      service: 'checkout',
      flag: { key: 'new-cart', from: false, to: true },
      author: { email: 'carol@example.com' },
      at: '2026-11-26T11:00:00Z',
    });
    clock.set('2026-11-26T11:06:00Z');
    await post('/v1/alertmanager', alertFrom(H1, 'a600000000000001', '2026-11-26T11:05:00Z'));
    const res = await verdict('flag-1');
    expect(res.body).toMatchObject({ verdict: 'failing', kind: 'flag', version: 'flag:new-cart=true' });
    expect(res.body.sentence).toMatch(/^checkout flag new-cart turned on \(full rollout\) in production is failing/);
  });

  it.each([
    ['an observation longer than the correlation window', '?observe=PT2H', ['observe']],
    ['a zero observation', '?observe=PT0S', ['observe']],
    ['words instead of durations', '?observe=half-an-hour&settle=soon', ['observe', 'settle']],
    ['a settle over an hour', '?settle=PT2H', ['settle']],
    ['an unknown parameter', '?obsrve=PT30M', ['']],
  ])('rejects %s with every problem listed', async (_intent, query, paths) => {
    await post('/v1/deploys', canary());
    const res = await verdict('canary-1', query);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_query');
    expect(res.body.details.problems.map((p: { path: string }) => p.path).sort()).toEqual(paths);
  });

  it('answers 404 for an unknown deploy and 401 without a token', async () => {
    expect((await verdict('nope')).body).toMatchObject({ error: 'not_found', message: 'No deploy with id "nope".' });
    expect((await request(h.app).get('/v1/deploys/nope/verdict')).status).toBe(401);
  });
});
