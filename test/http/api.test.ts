import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  amPayload,
  apiClient,
  createHarness,
  designDeploy,
  fakeClock,
  fixture,
  type Harness,
  TOKEN,
} from '../support/harness.js';

const auth = { Authorization: `Bearer ${TOKEN}` };

describe('HTTP API', () => {
  let h: Harness;
  const clock = fakeClock('2026-11-26T11:20:00Z');

  beforeEach(() => {
    clock.set('2026-11-26T11:20:00Z');
    h = createHarness({ now: clock.now });
  });
  afterEach(async () => {
    await h.close();
  });

  const { post, get } = apiClient(() => h.app);

  describe('the documented walk-through', () => {
    it('names alice for an alert that started 7 minutes after her deploy, and says why', async () => {
      expect((await post('/v1/deploys', designDeploy())).status).toBe(201);
      const res = await post(
        '/v1/alertmanager',
        amPayload([{ fingerprint: 'aaaa000000000001', startsAt: '2026-11-26T11:09:00Z' }]),
      );
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ accepted: 1, newEpisodes: 1 });

      const alert = await get('/v1/alerts/aaaa000000000001');
      expect(alert.status).toBe(200);
      const decision = alert.body.episodes[0].decision;
      expect(decision.reason).toBe('author_paged');
      expect(decision.targets).toEqual([{ kind: 'person', email: 'alice@example.com' }]);
      expect(decision.deployId).toBe('gha-run-8812731');
      expect(decision.sentence).toContain('alice@example.com');
      expect(decision.sentence).toContain('7 min later');
      expect(decision.sentence).toContain('2026.11.26-3f2a9c1');
    });

    it('routes an alert that started before the deploy to on-call, and the answer says so', async () => {
      await post('/v1/deploys', designDeploy());
      await post(
        '/v1/alertmanager',
        amPayload([{ fingerprint: 'aaaa000000000002', startsAt: '2026-11-26T10:55:00Z' }]),
      );
      const decision = (await get('/v1/alerts/aaaa000000000002')).body.episodes[0].decision;
      expect(decision.reason).toBe('alert_started_before_deploy');
      expect(decision.targets).toEqual([{ kind: 'oncall' }]);
      expect(decision.sentence).toMatch(/started at 10:55 UTC, 7 min before checkout deploy/);
    });

    it('previews the same decision and stores nothing', async () => {
      await post('/v1/deploys', designDeploy());
      const payload = amPayload([{ fingerprint: 'aaaa000000000003', startsAt: '2026-11-26T11:09:00Z' }]);
      const preview = await post('/v1/preview', payload);
      expect(preview.status).toBe(200);
      expect(preview.body.decisions[0].decision.reason).toBe('author_paged');
      expect(preview.body.decisions[0].decision.targets).toEqual([{ kind: 'person', email: 'alice@example.com' }]);
      expect((await get('/v1/alerts/aaaa000000000003')).status).toBe(404);
      expect((await h.store.outboxStats(clock.now())).depth).toBe(0);

      await post('/v1/alertmanager', payload);
      const stored = (await get('/v1/alerts/aaaa000000000003')).body.episodes[0].decision;
      expect(stored.sentence).toBe(preview.body.decisions[0].decision.sentence);
    });
  });

  describe('Alertmanager ingest', () => {
    it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])(
      'takes a group in which one alert names the service "%s", and decides both alerts',
      async (odd) => {
        const res = await post(
          '/v1/alertmanager',
          amPayload([
            { fingerprint: 'cafe000000000001', startsAt: '2026-11-26T11:09:00Z' },
            { fingerprint: 'cafe000000000002', startsAt: '2026-11-26T11:09:00Z', labels: { service: odd } },
          ]),
        );
        expect(res.status).toBe(200);
        expect(res.body.newEpisodes).toBe(2);
        const decision = (await get('/v1/alerts/cafe000000000002')).body.episodes[0].decision;
        expect(decision).toMatchObject({ service: odd, reason: 'no_deploy_in_window', policy: 'author' });
      },
    );

    it('records the HA duplicate pair as one episode with one page delivered', async () => {
      const first = await post('/v1/alertmanager', fixture('am025-ha-duplicate-1.json'));
      const second = await post('/v1/alertmanager', fixture('am025-ha-duplicate-2.json'));
      expect(first.body).toMatchObject({ newEpisodes: 1, repeats: 0 });
      expect(second.body).toMatchObject({ newEpisodes: 0, repeats: 1 });
      await h.worker.drain();
      const history = (await get('/v1/alerts/3014f051e839123b')).body;
      expect(history.episodes).toHaveLength(1);
      expect(history.episodes[0].pages).toHaveLength(1);
      expect(history.episodes[0].deliveries).toHaveLength(1);
      expect(history.episodes[0].deliveries[0]).toMatchObject({ channel: 'log', outcome: 'delivered' });
    });

    it('names the page of each delivery attempt by the same number as pages[].id', async () => {
      await post('/v1/alertmanager', fixture('am025-firing.json'));
      await h.worker.drain();
      const [episode] = (await get('/v1/alerts/b45cbdc885ceb0ce')).body.episodes;
      expect(typeof episode.pages[0].id).toBe('number');
      expect(episode.deliveries.map((d: { page: unknown }) => d.page)).toEqual([episode.pages[0].id]);
    });

    it('takes the real 0.25 firing then resolved requests: one page opened, then resolved', async () => {
      await post('/v1/alertmanager', fixture('am025-firing.json'));
      await h.worker.drain();
      await post('/v1/alertmanager', fixture('am025-firing.json')); // the repeat at group_interval
      const resolved = await post('/v1/alertmanager', fixture('am025-resolved.json'));
      expect(resolved.body).toMatchObject({ resolved: 2, newEpisodes: 0 });
      await h.worker.drain();

      const episode = (await get('/v1/alerts/b45cbdc885ceb0ce')).body.episodes[0];
      expect(episode.status).toBe('resolved');
      expect(episode.endsAt).toBe('2026-11-26T11:45:29.000Z');
      expect(episode.startsAt).toBe('2026-11-26T11:44:24.659410610Z');
      // No service label in that capture: on-call is paged, and both alerts of the group share the page.
      expect(episode.decision.reason).toBe('no_service_label');
      expect(episode.pages).toEqual([expect.objectContaining({ status: 'resolved', target: { kind: 'oncall' } })]);
      expect(episode.deliveries.map((d: { detail: string }) => d.detail)).toEqual(['trigger logged', 'resolve logged']);
      const other = (await get('/v1/alerts/6821856431429ee9')).body.episodes[0];
      expect(other.pages[0].id).toBe(episode.pages[0].id);
    });

    it('opens a new page when a fingerprint fires again with a new startsAt after resolving', async () => {
      const fp = 'bbbb000000000001';
      await post('/v1/alertmanager', amPayload([{ fingerprint: fp, startsAt: '2026-11-26T11:00:00Z' }]));
      await post(
        '/v1/alertmanager',
        amPayload([
          { fingerprint: fp, startsAt: '2026-11-26T11:00:00Z', status: 'resolved', endsAt: '2026-11-26T11:05:00Z' },
        ]),
      );
      await post('/v1/alertmanager', amPayload([{ fingerprint: fp, startsAt: '2026-11-26T11:10:00Z' }]));
      const episodes = (await get(`/v1/alerts/${fp}`)).body.episodes;
      expect(episodes.map((e: { status: string }) => e.status)).toEqual(['firing', 'resolved']);
      expect(episodes[0].pages[0].dedupKey).not.toBe(episodes[1].pages[0].dedupKey);
    });

    it('closes the paged episode when the real 0.25 resolved request names another startsAt, and pages nobody for it', async () => {
      await post('/v1/alertmanager', fixture('am025-firing.json'));
      await h.worker.drain();
      // The same resolution, with the first alert's startsAt rounded to the second as `amtool --start` does.
      const body = fixture('am025-resolved.json') as { alerts: { startsAt: string }[] };
      (body.alerts[0] as { startsAt: string }).startsAt = '2026-11-26T11:44:24Z';
      const resolved = await post('/v1/alertmanager', body);
      expect(resolved.body).toMatchObject({ newEpisodes: 1, resolved: 2, repeats: 0 });
      expect(resolved.body.decisions).toEqual([
        expect.objectContaining({
          startsAt: '2026-11-26T11:44:24.000000000Z',
          decision: expect.objectContaining({
            reason: 'resolved_before_seen',
            targets: [],
            notify: [],
            deployId: null,
          }),
        }),
      ]);
      await h.worker.drain();

      const episodes = (await get('/v1/alerts/b45cbdc885ceb0ce')).body.episodes;
      const paged = episodes.find((e: { startsAt: string }) => e.startsAt === '2026-11-26T11:44:24.659410610Z');
      expect(paged).toMatchObject({ status: 'resolved', endsAt: '2026-11-26T11:45:29.000Z' });
      expect(paged.pages).toEqual([expect.objectContaining({ status: 'resolved', target: { kind: 'oncall' } })]);
      expect(paged.deliveries.map((d: { detail: string }) => d.detail)).toEqual(['trigger logged', 'resolve logged']);
      const unseen = episodes.find((e: { startsAt: string }) => e.startsAt === '2026-11-26T11:44:24.000000000Z');
      expect(unseen.status).toBe('resolved');
      expect(unseen.decision.sentence).toMatch(/^changepager first saw this alert when it had already resolved/);
      expect(unseen.pages).toEqual([]);
      expect(unseen.deliveries).toEqual([]);
      expect((await h.store.outboxStats(clock.now())).depth).toBe(0);
    });

    it('leaves open an episode of the same fingerprint that started after the end a resolved alert reports', async () => {
      const fp = 'bbbb000000000002';
      await post('/v1/alertmanager', amPayload([{ fingerprint: fp, startsAt: '2026-11-26T11:00:00Z' }]));
      await post(
        '/v1/alertmanager',
        amPayload([
          { fingerprint: fp, startsAt: '2026-11-26T11:00:00Z', status: 'resolved', endsAt: '2026-11-26T11:05:00Z' },
        ]),
      );
      await post('/v1/alertmanager', amPayload([{ fingerprint: fp, startsAt: '2026-11-26T11:10:00Z' }]));
      // A late copy of the first resolution, its startsAt shifted: it must not end the firing that began since.
      const late = await post(
        '/v1/alertmanager',
        amPayload([
          { fingerprint: fp, startsAt: '2026-11-26T11:00:01Z', status: 'resolved', endsAt: '2026-11-26T11:05:00Z' },
        ]),
      );
      expect(late.body).toMatchObject({ newEpisodes: 1, resolved: 0 });
      const episodes = (await get(`/v1/alerts/${fp}`)).body.episodes;
      expect(episodes.map((e: { startsAt: string; status: string }) => [e.startsAt, e.status])).toEqual([
        ['2026-11-26T11:10:00.000000000Z', 'firing'],
        ['2026-11-26T11:00:01.000000000Z', 'resolved'],
        ['2026-11-26T11:00:00.000000000Z', 'resolved'],
      ]);
      expect(episodes[0].pages[0].status).toBe('open');
    });

    it('tells at most 20 of the 1,000 authors of a bundle, in the log when Slack is not configured', async () => {
      const changes = Array.from({ length: 1000 }, (_, i) => ({ author: { email: `dev${i}@example.com` } }));
      await post('/v1/deploys', designDeploy({ changes }));
      await post(
        '/v1/alertmanager',
        amPayload([{ fingerprint: 'dddd000000000001', startsAt: '2026-11-26T11:09:00Z' }]),
      );
      await h.worker.drain();
      const dms = h.logs.map((l) => JSON.parse(l)).filter((l) => l.event === 'dm');
      expect(dms.map((l) => l.to)).toEqual(Array.from({ length: 20 }, (_, i) => `dev${i}@example.com`));
      for (const dm of dms) expect(dm.msg).toMatch(/dev19@example\.com, … and 980 more\)/);
      expect((await h.store.outboxStats(clock.now())).depth).toBe(0);
    });

    it('writes a page of 200 alerts to the log with 50 of them, counting the rest', async () => {
      const alerts = Array.from({ length: 200 }, (_, i) => ({
        fingerprint: `eeee${String(i).padStart(12, '0')}`,
        startsAt: '2026-11-26T11:09:00Z',
        labels: { instance: `host-${i}:9100` },
      }));
      await post('/v1/alertmanager', amPayload(alerts));
      await h.worker.drain();
      const [page] = h.logs.map((l) => JSON.parse(l)).filter((l) => l.event === 'page');
      expect(page.alerts).toHaveLength(50);
      expect(page.alertsNotShown).toBe(150);
    });

    it('lists every problem of a malformed payload with its path, and stores nothing', async () => {
      const bad = amPayload([{ fingerprint: 'cccc000000000001', startsAt: '2026-11-26T11:00:00Z' }]) as Record<
        string,
        unknown
      >;
      bad.version = '3';
      delete bad.groupKey;
      const alerts = bad.alerts as Record<string, unknown>[];
      (alerts[0] as Record<string, unknown>).startsAt = 'yesterday';
      ((alerts[0] as Record<string, unknown>).labels as Record<string, unknown>).severity = 5;
      const res = await post('/v1/alertmanager', bad);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_payload');
      const paths = res.body.details.problems.map((p: { path: string }) => p.path).sort();
      expect(paths).toEqual(['alerts.0.labels.severity', 'alerts.0.startsAt', 'groupKey', 'version']);
      expect((await get('/v1/alerts/cccc000000000001')).status).toBe(404);
    });

    it.each([
      ['a body that is not JSON', 'application/json', '{"version": "4",', 400, 'invalid_json'],
      ['a body that is not JSON at all (text/plain)', 'text/plain', 'hello', 415, 'unsupported_media_type'],
      ['a JSON array instead of an object', 'application/json', '[]', 400, 'invalid_payload'],
      ['a JSON string', 'application/json', '"4"', 400, 'invalid_json'],
    ])('rejects %s', async (_intent, type, body, status, code) => {
      const res = await request(h.app).post('/v1/alertmanager').set(auth).set('Content-Type', type).send(body);
      expect(res.status).toBe(status);
      expect(res.body.error).toBe(code);
    });

    it('answers 4xx, never 5xx, to a body in an encoding it cannot read and to a malformed path', async () => {
      const br = await request(h.app)
        .post('/v1/alertmanager')
        .set(auth)
        .set('Content-Type', 'application/json')
        .set('Content-Encoding', 'br')
        .send('not brotli');
      expect(br.status).toBeGreaterThanOrEqual(400);
      expect(br.status).toBeLessThan(500);
      const gzip = await request(h.app)
        .post('/v1/alertmanager')
        .set(auth)
        .set('Content-Type', 'application/json')
        .set('Content-Encoding', 'gzip')
        .send('not gzip');
      expect(gzip.status).toBe(400);
      for (const path of ['/v1/deploys/%E0%A4', '/v1/alerts/%ZZ']) {
        const res = await get(path);
        expect(res.status, path).toBe(400);
        expect(res.body.error).toBe('invalid_payload');
      }
    });

    it('answers 413 for a body over the configured limit', async () => {
      await h.close();
      h = createHarness({ now: clock.now, yaml: 'http: { body_limit_bytes: 1024 }\n' });
      const big = amPayload([
        { fingerprint: 'dddd000000000001', startsAt: '2026-11-26T11:00:00Z', labels: { pad: 'x'.repeat(2000) } },
      ]);
      const res = await post('/v1/alertmanager', big);
      expect(res.status).toBe(413);
      expect(res.body.error).toBe('payload_too_large');
    });
  });

  describe('deploys', () => {
    it('answers 201 for a new id and 200 with the stored event, unchanged, for a repeat', async () => {
      expect((await post('/v1/deploys', designDeploy())).status).toBe(201);
      const again = await post('/v1/deploys', designDeploy({ version: 'something-else' }));
      expect(again.status).toBe(200);
      expect(again.body.version).toBe('2026.11.26-3f2a9c1');
      expect((await get('/v1/deploys/gha-run-8812731')).body.version).toBe('2026.11.26-3f2a9c1');
    });

    it('names both missing fields of a deploy without version and service', async () => {
      const { version: _v, service: _s, ...rest } = designDeploy();
      const res = await post('/v1/deploys', rest);
      expect(res.status).toBe(400);
      expect(res.body.details.problems.map((p: { path: string }) => p.path).sort()).toEqual(['service', 'version']);
      expect((await get('/v1/deploys')).body.deploys).toEqual([]);
    });

    it('requires an email or a login for each author, and http(s) links', async () => {
      const res = await post(
        '/v1/deploys',
        designDeploy({ changes: [{ author: { name: 'Nobody' }, commit: { url: 'javascript:alert(1)' } }] }),
      );
      expect(res.status).toBe(400);
      const problems = res.body.details.problems;
      expect(problems).toContainEqual({ path: 'changes.0.author', message: 'needs an email or a login' });
      expect(problems.map((p: { path: string }) => p.path)).toContain('changes.0.commit.url');
    });

    it('rejects an `at` it could not store exactly (ten fractional digits) instead of using the time received', async () => {
      const res = await post('/v1/deploys', designDeploy({ at: '2026-11-26T11:02:00.1234567891Z' }));
      expect(res.status).toBe(400);
      expect(res.body.details.problems).toEqual([
        { path: 'at', message: 'must be RFC 3339 with at most nine fractional digits' },
      ]);
    });

    it('fills the documented defaults: environment from config, stage full, at = time received', async () => {
      const res = await post('/v1/deploys', {
        service: 'cart',
        version: 'v9',
        changes: [{ author: { login: 'carol' } }],
      });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ environment: 'production', stage: 'full', at: '2026-11-26T11:20:00.000Z' });
      expect(res.body.id).toMatch(/^dep-/);
      expect(res.headers.location).toBe(`/v1/deploys/${res.body.id}`);
    });

    it('lists deploys filtered by service, environment and since, newest first', async () => {
      await post('/v1/deploys', designDeploy({ id: 'd1', at: '2026-11-26T09:00:00Z' }));
      await post('/v1/deploys', designDeploy({ id: 'd2', at: '2026-11-26T11:00:00Z' }));
      await post('/v1/deploys', designDeploy({ id: 'd3', service: 'cart', at: '2026-11-26T11:00:00Z' }));
      await post('/v1/deploys', designDeploy({ id: 'd4', environment: 'staging', at: '2026-11-26T11:00:00Z' }));
      const ids = async (q: string) => (await get(`/v1/deploys${q}`)).body.deploys.map((d: { id: string }) => d.id);
      expect(await ids('?service=checkout&environment=production')).toEqual(['d2', 'd1']);
      expect((await ids('?service=checkout&since=PT1H')).sort()).toEqual(['d2', 'd4']);
      expect(await ids('?since=2026-11-26T10:00:00Z&service=cart')).toEqual(['d3']);
    });

    it('rejects a bad query with every problem listed', async () => {
      const res = await get('/v1/deploys?since=yesterday&limit=0');
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_query');
      expect(res.body.details.problems.map((p: { path: string }) => p.path).sort()).toEqual(['limit', 'since']);
    });

    it.each([
      ['the deploy list', '/v1/deploys?servce=checkout', 'service, environment, since, limit, cursor'],
      ['the hygiene stats', '/v1/stats?sinse=P1D', 'since, until, service, environment, limit, cursor'],
      ['the canary gate', '/v1/deploys/gha-run-8812731/verdict?observ=PT30M', 'observe, settle'],
      ['the timeline', '/v1/timeline?rang=PT1H', 'range, from, to, end, service, env'],
    ])('names an unknown query key of %s and the keys it takes', async (_route, path, keys) => {
      await post('/v1/deploys', designDeploy());
      const res = await get(path);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_query');
      const misspelt = /\?(\w+)=/.exec(path)?.[1];
      expect(res.body.details.problems).toEqual([
        { path: '', message: `Unrecognized key: "${misspelt}"; the keys are ${keys}` },
      ]);
    });

    it.each(['.', '..', '...'])(
      'rejects the id "%s", which would make its Location name another path, and stores nothing',
      async (id) => {
        const res = await post('/v1/deploys', designDeploy({ id }));
        expect(res.status).toBe(400);
        expect(res.body.details.problems).toEqual([
          { path: 'id', message: 'must not be only dots: "." and ".." cannot be one segment of a URL path' },
        ]);
        expect(res.headers.location).toBeUndefined();
        expect((await get('/v1/deploys')).body.deploys).toEqual([]);
      },
    );

    it.each(['v1.2.3', '.hidden', '..a', 'a/b', 'a%2Fb', 'ü ?#'])(
      'answers the id "%s" with a Location that reads the same event back',
      async (id) => {
        const res = await post('/v1/deploys', designDeploy({ id }));
        expect(res.status).toBe(201);
        const back = await get(new URL(String(res.headers.location), 'http://changepager.test').pathname);
        expect(back.status).toBe(200);
        expect(back.body.id).toBe(id);
      },
    );

    it('answers 404 for an unknown deploy and an unknown alert', async () => {
      expect((await get('/v1/deploys/nope')).body).toMatchObject({ error: 'not_found' });
      expect((await get('/v1/alerts/0123456789abcdef')).status).toBe(404);
    });
  });

  describe('authentication', () => {
    const routes: [string, string][] = [
      ['post', '/v1/alertmanager'],
      ['post', '/v1/deploys'],
      ['get', '/v1/deploys'],
      ['get', '/v1/deploys/x'],
      ['get', '/v1/alerts/x'],
      ['post', '/v1/preview'],
    ];
    it.each(routes)(
      '%s %s answers 401 without a token, with a wrong one, and with one off by its last character',
      async (method, path) => {
        for (const header of [undefined, 'Bearer wrong', `Bearer ${TOKEN.slice(0, -1)}x`, `Basic ${TOKEN}`, TOKEN]) {
          const req = method === 'post' ? request(h.app).post(path).send({}) : request(h.app).get(path);
          const res = await (header ? req.set('Authorization', header) : req);
          expect(res.status, String(header)).toBe(401);
          expect(res.body.error).toBe('unauthorized');
          expect(res.headers['www-authenticate']).toContain('Bearer');
        }
      },
    );

    it('accepts any token listed in config as well as CHANGEPAGER_TOKEN', async () => {
      await h.close();
      h = createHarness({
        now: clock.now,
        yaml: 'auth: { tokens: [ { name: ci, token_env: CI_TOKEN } ] }\n',
        env: { CI_TOKEN: 'ci-secret' },
      });
      expect((await request(h.app).get('/v1/deploys').set('Authorization', 'Bearer ci-secret')).status).toBe(200);
      expect((await request(h.app).get('/v1/deploys').set(auth)).status).toBe(200);
    });

    const refusals = () =>
      h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === 'request_refused');

    it('logs a refused request at warn once per client and route per minute, naming both, never the token', async () => {
      for (let i = 0; i < 5; i++) {
        const res = await request(h.app)
          .post('/v1/alertmanager')
          .set('Authorization', 'Bearer am-wrong-token')
          .send({});
        expect(res.status).toBe(401);
      }
      await request(h.app).get('/v1/deploys/gha-run-8812731'); // no token at all
      await request(h.app).get('/v1/deploys/gha-run-8812731');
      expect(refusals()).toEqual([
        expect.objectContaining({
          level: 40,
          status: 401,
          route: '/v1/alertmanager',
          method: 'POST',
          client: expect.stringMatching(/127\.0\.0\.1$/),
          reason: 'its Authorization header holds no configured token',
        }),
        expect.objectContaining({ route: '/v1/deploys/:id', reason: 'it sent no token' }),
      ]);

      clock.advance(60_000); // a minute later, the next refusal is logged again, with what the minute held back
      await request(h.app).post('/v1/alertmanager').set('Authorization', 'Bearer am-wrong-token').send({});
      expect(refusals()).toHaveLength(3);
      expect(refusals()[2]).toMatchObject({ route: '/v1/alertmanager', suppressed: 4 });
      expect(h.logs.join('\n')).not.toContain('am-wrong-token');
    });

    it('counts a 401 under the route it was for in /metrics, and still answers 401 to a path that is no route', async () => {
      await request(h.app).post('/v1/alertmanager').set('Authorization', 'Bearer wrong').send({});
      await request(h.app).get('/v1/timeline').set('Authorization', 'Bearer wrong');
      expect((await request(h.app).get('/v1/no-such-route')).status).toBe(401);
      expect((await get('/v1/no-such-route')).status).toBe(404);
      const metrics = (await request(h.app).get('/metrics')).text;
      expect(metrics).toMatch(/_count\{method="POST",route="\/v1\/alertmanager",code="401"\} 1/);
      expect(metrics).toMatch(/_count\{method="GET",route="\/v1\/timeline",code="401"\} 1/);
      expect(metrics).toMatch(/_count\{method="GET",route="unmatched",code="401"\} 1/);
      expect(refusals().find((l) => l.route === 'unmatched')).toMatchObject({ path: '/no-such-route' });
    });

    it('names a read-only token in its 403 and in the log line, and a wrong Flagger token in the log', async () => {
      await h.close();
      h = createHarness({
        now: clock.now,
        yaml: 'auth: { tokens: [ { name: dashboard, token_env: DASH_TOKEN, role: read } ] }\n',
        env: { DASH_TOKEN: 'dashboard-read-only-token' },
      });
      const res = await request(h.app)
        .post('/v1/deploys')
        .set('Authorization', 'Bearer dashboard-read-only-token')
        .send(designDeploy());
      expect(res.status).toBe(403);
      expect(res.body.message).toBe('The token "dashboard" is read-only: it may read (GET) but not change anything.');
      await request(h.app)
        .post('/v1/deploys/flagger')
        .send({ name: 'checkout', namespace: 'prod', phase: 'Progressing', metadata: { token: 'flagger-wrong' } });
      expect(refusals()).toEqual([
        expect.objectContaining({ status: 403, route: '/v1/deploys', tokenName: 'dashboard' }),
        expect.objectContaining({
          status: 401,
          route: '/v1/deploys/flagger',
          reason: 'its metadata.token holds no configured token',
        }),
      ]);
      expect(h.logs.join('\n')).not.toContain('dashboard-read-only-token');
      expect(h.logs.join('\n')).not.toContain('flagger-wrong');
    });

    it('leaves /healthz, /readyz and /metrics open for probes and scrapers', async () => {
      expect((await request(h.app).get('/healthz')).status).toBe(200);
      expect((await request(h.app).get('/readyz')).status).toBe(200);
      expect((await request(h.app).get('/metrics')).status).toBe(200);
    });
  });

  describe('operations', () => {
    it('reports outbox depth in /readyz and counts alerts in /metrics', async () => {
      await post(
        '/v1/alertmanager',
        amPayload([{ fingerprint: 'eeee000000000001', startsAt: '2026-11-26T11:00:00Z' }]),
      );
      const ready = await request(h.app).get('/readyz');
      expect(ready.body).toMatchObject({ status: 'ready', outbox: { depth: 1 } });
      // /readyz reads the outbox live; the gauge shows the last refresh (every metrics.refresh_interval).
      await h.metrics.refresh();
      const metrics = (await request(h.app).get('/metrics')).text;
      expect(metrics).toContain('changepager_alerts_received_total{result="new"} 1');
      expect(metrics).toContain('changepager_decisions_total{reason="no_deploy_in_window",policy="author"} 1');
      expect(metrics).toContain('changepager_outbox_depth 1');
      expect(metrics).toMatch(
        /changepager_http_request_duration_seconds_count\{method="POST",route="\/v1\/alertmanager",code="200"\} 1/,
      );
      await h.worker.drain();
      expect((await request(h.app).get('/readyz')).body.outbox.depth).toBe(0);
    });

    it('answers 503 from /readyz and storage_unavailable from ingest when the database is gone', async () => {
      await h.store.close();
      expect((await request(h.app).get('/readyz')).status).toBe(503);
      const res = await post(
        '/v1/alertmanager',
        amPayload([{ fingerprint: 'eeee000000000002', startsAt: '2026-11-26T11:00:00Z' }]),
      );
      expect(res.status).toBe(503);
      expect(res.body.error).toBe('storage_unavailable');
    });

    it('answers an unknown route with a JSON 404', async () => {
      const res = await request(h.app).get('/nope');
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ error: 'not_found', message: 'No route GET /nope.' });
    });

    it('never writes the token to the log', async () => {
      await post('/v1/deploys', designDeploy());
      await request(h.app).get('/v1/deploys').set('Authorization', 'Bearer wrong-token');
      expect(h.logs.join('\n')).not.toContain(TOKEN);
      expect(h.logs.join('\n')).not.toContain('wrong-token');
    });
  });
});
