import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { amPayload, createHarness, designDeploy, fakeClock, type Harness, TOKEN } from '../support/harness.js';
import { type PagerDutyStub, startPagerDutyStub } from '../support/pagerduty-stub.js';

// The timeline over HTTP: what GET /v1/timeline returns for a range, what the server-rendered page contains,
// and the headers that keep the page's attacker-controllable text inert. The browser test draws it for real.

const auth = { Authorization: `Bearer ${TOKEN}` };
const DEPLOY = designDeploy({ stage: 'canary', percent: 1, hosts: ['checkout-7f9c-abcde'] });

describe('the timeline', () => {
  let h: Harness;
  const clock = fakeClock('2026-11-26T11:20:00Z');

  beforeEach(() => {
    clock.set('2026-11-26T11:20:00Z');
    h = createHarness({
      now: clock.now,
      yaml: 'services: { ledger: { policy: shadow }, search: { policy: notify } }\n',
    });
  });
  afterEach(async () => {
    await h.close();
  });

  const post = (path: string, body: unknown) =>
    request(h.app)
      .post(path)
      .set(auth)
      .send(body as object);
  const timeline = (query = '') => request(h.app).get(`/v1/timeline${query}`).set(auth);

  async function seedDesign() {
    expect((await post('/v1/deploys', DEPLOY)).status).toBe(201);
    await post(
      '/v1/alertmanager',
      amPayload([
        { fingerprint: 'aaaa000000000001', startsAt: '2026-11-26T11:09:00Z' },
        { fingerprint: 'aaaa000000000002', startsAt: '2026-11-26T11:12:00Z', labels: { instance: 'x-zzzzz:8080' } },
      ]),
    );
  }

  describe('GET /v1/timeline', () => {
    it('gives the documented example deploy and both alerts, who was paged, and the attribution', async () => {
      await seedDesign();
      const res = await timeline();
      expect(res.status).toBe(200);
      // No range asked for: fitted to the data, the deploy at 11:02 and both alerts, in at least an hour.
      expect(res.body).toMatchObject({
        from: '2026-11-26T10:20:00.000Z',
        to: '2026-11-26T11:20:00.000Z',
        live: true,
        fitted: true,
        truncated: { deploys: false, alerts: false },
      });
      const [deploy] = res.body.deploys;
      expect(deploy).toMatchObject({ id: 'gha-run-8812731', kind: 'deploy', stage: 'canary', inRange: true });
      expect(deploy.verdict).toMatchObject({ status: 'failing' });
      const alerts = res.body.alerts.map((a: Record<string, unknown>) => [a.fingerprint, a.paged, a.deployKey]);
      expect(alerts).toEqual([
        ['aaaa000000000001', 'author', deploy.key],
        ['aaaa000000000002', 'oncall', null],
      ]);
      expect(deploy.alerts).toEqual([res.body.alerts[0].key]);
      expect(res.body.alerts[0].decision.sentence).toContain('7 min later');
      expect(res.body.alerts[0].links.map((l: { href: string }) => l.href)).toContain(
        'https://git.example.com/shop/pull/4812',
      );
      // The four keys over the hour in view: one deploy, failed (a1 is attributed to it), not restored yet.
      const keys = {
        deploys: 1,
        deploymentsPerDay: 24,
        leadTimeSeconds: null,
        changeFailureRate: 1,
        timeToRestoreSeconds: null,
      };
      expect(res.body.lanes).toEqual([{ service: 'checkout', deploys: [deploy.key], alerts: ['a1', 'a2'], keys }]);
    });

    it.each([
      { intent: 'the author paged', service: 'checkout', deploy: DEPLOY, paged: 'author' },
      { intent: 'no deploy in the window', service: 'payments', deploy: undefined, paged: 'oncall' },
      {
        intent: 'shadow policy with a deploy',
        service: 'ledger',
        deploy: designDeploy({ id: 'l1', service: 'ledger' }),
        paged: 'shadow',
      },
      {
        intent: 'notify policy (author told, on-call paged)',
        service: 'search',
        deploy: designDeploy({ id: 's1', service: 'search' }),
        paged: 'oncall',
      },
      {
        intent: 'a bundle of two changes',
        service: 'cart',
        deploy: designDeploy({
          id: 'c1',
          service: 'cart',
          changes: [{ author: { email: 'alice@example.com' } }, { author: { email: 'carol@example.com' } }],
        }),
        paged: 'ambiguous',
      },
    ])('colours $intent as $paged', async ({ service, deploy, paged }) => {
      if (deploy) await post('/v1/deploys', deploy);
      await post(
        '/v1/alertmanager',
        amPayload([{ fingerprint: 'cccc000000000001', startsAt: '2026-11-26T11:09:00Z', labels: { service } }]),
      );
      const [alert] = (await timeline()).body.alerts;
      expect(alert.paged).toBe(paged);
    });

    it.each([
      {
        intent: 'a burst of the last 15 minutes fills an hour, not a sliver of a day',
        deploys: ['2026-11-26T11:05:00Z'],
        alerts: ['2026-11-26T11:12:00Z'],
        from: '2026-11-26T10:20:00.000Z',
      },
      {
        intent: 'a deploy 5 hours ago widens it to just before that deploy',
        deploys: ['2026-11-26T06:20:00Z', '2026-11-26T11:05:00Z'],
        alerts: ['2026-11-26T11:12:00Z'],
        from: '2026-11-26T06:05:00.000Z',
      },
      {
        intent: 'a deploy 8 hours ago is beyond the 6 hours looked at',
        deploys: ['2026-11-26T03:20:00Z', '2026-11-26T11:05:00Z'],
        alerts: ['2026-11-26T11:12:00Z'],
        from: '2026-11-26T10:20:00.000Z',
      },
      { intent: 'nothing at all shows the whole 6 hours', deploys: [], alerts: [], from: '2026-11-26T05:20:00.000Z' },
    ])('fits the view without a range to the data: $intent', async ({ deploys, alerts, from }) => {
      for (const [i, at] of deploys.entries()) await post('/v1/deploys', designDeploy({ id: `fit-${i}`, at }));
      for (const [i, startsAt] of alerts.entries()) {
        await post('/v1/alertmanager', amPayload([{ fingerprint: `f17000000000000${i}`, startsAt }]));
      }
      const body = (await timeline()).body;
      expect(body).toMatchObject({ from, to: '2026-11-26T11:20:00.000Z', live: true, fitted: true });
      expect(body.deploys.filter((d: { inRange: boolean }) => d.inRange)).toHaveLength(
        deploys.filter((at) => at >= '2026-11-26T05:20').length,
      );
      // A range asked for is shown as asked.
      const asked = (await timeline('?range=PT24H')).body;
      expect(asked).toMatchObject({ from: '2026-11-25T11:20:00.000Z', fitted: false });
    });

    it('keeps an alert firing since before the range, drops one that ended before it', async () => {
      await post(
        '/v1/alertmanager',
        amPayload([
          { fingerprint: 'eeee000000000001', startsAt: '2026-11-26T08:00:00Z' },
          { fingerprint: 'eeee000000000002', startsAt: '2026-11-26T08:00:00Z' },
        ]),
      );
      await post(
        '/v1/alertmanager',
        amPayload([
          {
            fingerprint: 'eeee000000000002',
            startsAt: '2026-11-26T08:00:00Z',
            status: 'resolved',
            endsAt: '2026-11-26T09:00:00Z',
          },
        ]),
      );
      const res = await timeline('?range=PT1H');
      expect(res.body.alerts.map((a: { fingerprint: string }) => a.fingerprint)).toEqual(['eeee000000000001']);
      const earlier = await timeline('?from=2026-11-26T08:30:00Z&to=2026-11-26T09:30:00Z');
      expect(earlier.body.alerts.map((a: { fingerprint: string }) => a.fingerprint).sort()).toEqual([
        'eeee000000000001',
        'eeee000000000002',
      ]);
      expect(earlier.body.live).toBe(false);
    });

    it('brings the deploy an alert in the range was attributed to, even from before the range', async () => {
      await seedDesign();
      const res = await timeline('?from=2026-11-26T11:05:00Z&to=2026-11-26T11:20:00Z');
      const [deploy] = res.body.deploys;
      expect(deploy).toMatchObject({ id: 'gha-run-8812731', inRange: false });
      expect(res.body.alerts[0].deployKey).toBe(deploy.key);
    });

    it('filters by service and environment', async () => {
      await seedDesign();
      await post('/v1/deploys', designDeploy({ id: 'p1', service: 'payments' }));
      await post('/v1/deploys', designDeploy({ id: 's1', service: 'checkout', environment: 'staging' }));
      const ids = async (q: string) => (await timeline(q)).body.deploys.map((d: { id: string }) => d.id).sort();
      expect(await ids('?service=payments')).toEqual(['p1']);
      expect(await ids('?service=checkout&env=staging')).toEqual(['s1']);
      expect(await ids('')).toEqual(['gha-run-8812731', 'p1', 's1']);
      expect((await timeline('?service=payments')).body.alerts).toEqual([]);
    });

    it('answers 304 to a poll when nothing changed, and a new revision when an alert arrives', async () => {
      await seedDesign();
      const first = await timeline();
      const etag = String(first.headers.etag);
      expect(etag).toBe(`W/"${first.body.revision}"`);
      clock.advance(5000);
      expect((await timeline().set('If-None-Match', etag)).status).toBe(304);
      await post(
        '/v1/alertmanager',
        amPayload([{ fingerprint: 'aaaa000000000003', startsAt: '2026-11-26T11:15:00Z' }]),
      );
      const next = await timeline().set('If-None-Match', etag);
      expect(next.status).toBe(200);
      expect(next.body.revision).not.toBe(first.body.revision);
    });

    it('shows what a person said about a decision, and a poll sees it as a change', async () => {
      await seedDesign();
      const before = (await timeline()).body;
      const episode = before.alerts[0].key.slice(1);
      await h.store.recordNotMine(Number(episode), 'alice@example.com', clock.now());
      const after = (await timeline()).body;
      expect(after.alerts[0].feedback).toBe('alice@example.com said: not my change at 2026-11-26T11:20:00.000Z');
      expect(after.revision).not.toBe(before.revision);
      const html = (await request(h.app).get('/?range=PT1H').set(auth)).text;
      expect(html).toContain('<p class="verdict" data-verdict="feedback">alice@example.com said: not my change');
    });

    it('lists every problem of a bad range', async () => {
      const res = await timeline('?range=PT1S&to=yesterday&from=2026-11-26T11:00:00Z&bogus=1');
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_query');
      const paths = res.body.details.problems.map((p: { path: string }) => p.path).sort();
      expect(paths).toEqual(['', 'range', 'to']);
      const reversed = await timeline('?from=2026-11-26T11:00:00Z&to=2026-11-26T10:00:00Z');
      expect(reversed.body.details.problems).toEqual([{ path: 'from', message: 'must be before to' }]);
      const huge = await timeline('?from=2026-01-01T00:00:00Z&to=2026-11-26T10:00:00Z');
      expect(huge.body.details.problems).toEqual([{ path: 'range', message: 'may span at most 31 days (P31D)' }]);
    });
  });

  describe('the page', () => {
    it('renders lanes, markers, bars, the line, the details and the table for the documented example', async () => {
      await seedDesign();
      const res = await request(h.app).get('/?range=PT1H').set(auth);
      expect(res.status).toBe(200);
      const html = res.text;
      expect(html.match(/<a class="deploy /g)).toHaveLength(1);
      expect(html.match(/<a class="alert paged-author"/g)).toHaveLength(1);
      expect(html.match(/<a class="alert paged-oncall"/g)).toHaveLength(1);
      expect(html.match(/<line class="cause" data-alert="a1"/g)).toHaveLength(1);
      expect(html.match(/<line class="cause" data-alert/g)).toHaveLength(1);
      expect(html).toContain('id="alert-a1"');
      expect(html).toContain('<time datetime="2026-11-26T11:09:00.000Z"');
      expect(html).toContain('<table class="alerts-table">');
      expect(html).toContain('data-refresh-url="/v1/timeline?range=PT1H"');
      expect(html).toContain('>24/day · lead –<title>Deployment frequency 24 per day; lead time for changes –');
      expect(html).toContain('>fail 100% · restore –<title>');
    });

    it('draws a flag flip as a flag, named by what changed and who flipped it', async () => {
      const flag = {
        id: 'flag-1',
        kind: 'flag',
        service: 'checkout',
        flag: { key: 'new-cart', from: false, to: true },
        author: { email: 'carol@example.com', name: 'Carol' },
        at: '2026-11-26T11:05:00Z',
      };
      expect((await post('/v1/deploys', flag)).status).toBe(201);
      const json = (await timeline()).body;
      expect(json.deploys[0]).toMatchObject({ kind: 'flag', what: 'flag new-cart turned on' });
      const html = (await request(h.app).get('/?range=PT1H').set(auth)).text;
      expect(html).toContain('data-kind="flag"');
      expect(html).toContain('<path class="marker marker-flag"');
      expect(html).toContain('flag new-cart turned on · Carol · full');
    });

    it('draws a rollback with an arc to the deploy it undid, and says so in the details, the table and the JSON', async () => {
      expect(
        (await post('/v1/deploys', designDeploy({ id: 'v1', version: 'v1', at: '2026-11-26T10:30:00Z' }))).status,
      ).toBe(201);
      expect(
        (await post('/v1/deploys', designDeploy({ id: 'v2', version: 'v2', at: '2026-11-26T11:02:00Z' }))).status,
      ).toBe(201);
      const rb = {
        id: 'rb-1',
        service: 'checkout',
        environment: 'production',
        version: 'v1',
        rollbackOf: 'v2',
        at: '2026-11-26T11:10:00Z',
      };
      expect((await post('/v1/deploys', rb)).status).toBe(201);

      const json = (await timeline()).body;
      const byId = (id: string) => json.deploys.find((d: { id: string }) => d.id === id);
      expect(byId('rb-1')).toMatchObject({
        rollback: { of: ['v2'], explicit: true },
        undid: [byId('v2').key],
        rolledBackBy: null,
      });
      expect(byId('v2')).toMatchObject({
        rolledBackBy: byId('rb-1').key,
        undid: [],
        verdict: { status: 'rolled_back' },
      });

      const html = (await request(h.app).get('/?range=PT1H').set(auth)).text;
      expect(html.match(/<path class="undo" data-rollback="[^"]+" data-deploy="[^"]+"/g)).toEqual([
        `<path class="undo" data-rollback="${byId('rb-1').key}" data-deploy="${byId('v2').key}"`,
      ]);
      expect(html).toContain('↩ rollback to v1');
      expect(html).toContain('<dt>Rollback of</dt>');
      expect(html).toContain('<dt>Rolled back by</dt>');
      expect(html).toContain('v2</a> (rolled back)</td>');
    });

    it('shows one service at /services/{name} and sends the form’s ?service= there, keeping the range', async () => {
      await seedDesign();
      await post('/v1/deploys', designDeploy({ id: 'p1', service: 'payments' }));
      const page = await request(h.app).get('/services/payments').set(auth);
      expect(page.text).toContain('data-service="payments"');
      expect(page.text).not.toContain('data-service="checkout"');
      const redirect = await request(h.app).get('/?service=payments&range=PT6H').set(auth);
      expect(redirect.status).toBe(303);
      expect(redirect.headers.location).toBe('/services/payments?range=PT6H');
    });

    it('shows a service named only with dots at /?service=, since /services/.. would resolve to /', async () => {
      await post('/v1/deploys', designDeploy({ id: 'dots', service: '..', at: '2026-11-26T11:02:00Z' }));
      const all = (await request(h.app).get('/?range=PT1H').set(auth)).text;
      expect(all).toContain('href="/?range=PT1H&amp;service=.."');
      expect(all).not.toContain('href="/services/..');
      const page = await request(h.app).get('/?service=..&range=PT1H').set(auth);
      expect(page.status).toBe(200);
      expect(page.text).toContain('data-service=".."');
      expect(page.text).not.toContain('href="/services/..');
    });

    it('offers every known and configured service in the filter', async () => {
      await seedDesign();
      const page = await request(h.app).get('/?range=PT1H').set(auth);
      for (const s of ['checkout', 'ledger', 'search']) expect(page.text).toContain(`<option value="${s}">`);
    });

    it('answers a bad range with a 400 page that says what is wrong (JSON for a client that is not a browser)', async () => {
      const res = await request(h.app).get('/?range=yesterday').set(auth).set('Accept', 'text/html');
      expect(res.status).toBe(400);
      expect(res.type).toBe('text/html');
      expect(res.text).toContain('must be an ISO-8601 duration from PT1M to P31D');
      const json = await request(h.app).get('/?range=yesterday').set(auth);
      expect(json.status).toBe(400);
      expect(json.body.details.problems).toEqual([
        { path: 'range', message: 'must be an ISO-8601 duration from PT1M to P31D, such as PT24H' },
      ]);
    });

    it('escapes hostile labels, versions and names, and links only http(s) URLs', async () => {
      const script = '<script>window.__pwned=1</script>';
      const attr = '"><img src=x onerror="window.__pwned=2">';
      await post(
        '/v1/deploys',
        designDeploy({ service: attr, version: script, changes: [{ author: { email: 'm@example.com', name: attr } }] }),
      );
      const payload = amPayload([
        {
          fingerprint: 'ffff000000000001',
          startsAt: '2026-11-26T11:09:00Z',
          labels: { alertname: script, service: attr },
        },
      ]);
      const alert = payload.alerts[0] as Record<string, unknown>;
      alert.generatorURL = 'javascript:window.__pwned=3';
      alert.annotations = { summary: attr, runbook_url: 'data:text/html,<script>alert(1)</script>' };
      await post('/v1/alertmanager', payload);

      const html = (await request(h.app).get('/?range=PT1H').set(auth)).text;
      expect(html).not.toContain(script);
      expect(html).not.toContain('<img');
      expect(html).not.toMatch(/href="(javascript|data):/);
      expect(html).toContain('&lt;script&gt;window.__pwned=1&lt;/script&gt;');
      expect(html).toContain('&quot;&gt;&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt;');
      expect(html).toContain('<code>javascript:window.__pwned=3</code>');
      // The only script is the page's own file.
      expect(html.match(/<script/g)).toHaveLength(1);
    });
  });

  describe('headers', () => {
    it.each([
      ['the page', '/', 200],
      ['the login form', '/login', 200],
      ['the JSON', '/v1/timeline', 200],
      ['the script', '/ui/timeline.js', 200],
    ])('%s forbids inline script, framing and sniffing', async (_what, path, status) => {
      const res = await request(h.app).get(path).set(auth);
      expect(res.status).toBe(status);
      const csp = res.headers['content-security-policy'];
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    });

    it('serves the static files with their types, long-cached under their digest', async () => {
      const page = (await request(h.app).get('/').set(auth)).text;
      const js = /src="(\/ui\/timeline\.js\?v=[0-9a-f]{16})"/.exec(page)?.[1] as string;
      const css = /href="(\/ui\/timeline\.css\?v=[0-9a-f]{16})"/.exec(page)?.[1] as string;
      const script = await request(h.app).get(js);
      expect(script.type).toBe('text/javascript');
      expect(script.headers['cache-control']).toContain('immutable');
      expect((await request(h.app).get(css)).type).toBe('text/css');
      expect((await request(h.app).get('/ui/nope.js')).status).toBe(404);
    });

    it('keeps the page out of every cache', async () => {
      expect((await request(h.app).get('/').set(auth)).headers['cache-control']).toBe('no-store');
    });
  });

  describe('delivery of the pages, through PagerDuty', () => {
    const CA_FILE = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
    let stub: PagerDutyStub;

    beforeEach(async () => {
      await h.close();
      stub = await startPagerDutyStub({ https: true });
      stub.users = [{ id: 'PALICE', email: 'alice@example.com', name: 'Alice' }];
      h = createHarness({
        now: clock.now,
        yaml: [
          'pagerduty:',
          `  events_url: ${stub.url}`,
          `  api_url: ${stub.url}`,
          '  api_token_env: PD_TOKEN',
          '  from: changepager@example.com',
          `  ca_file: ${JSON.stringify(CA_FILE)}`,
          '  request_timeout: PT1S',
          'defaults: { pagerduty: { service_id: PDEFAULT, routing_key_env: PD_KEY } }',
          'people: [ { email: alice@example.com, pagerduty_user_id: PALICE } ]',
        ].join('\n'),
        env: { PD_TOKEN: 'pd-token-timeline', PD_KEY: 'timeline-routing-key-000000000000' },
      });
    });
    afterEach(async () => {
      await stub.close();
    });

    /** An on-call alert of payments (no deploy there) in a group of its own: a page of its own. */
    const fire = (n: number) =>
      post(
        '/v1/alertmanager',
        amPayload(
          [
            {
              fingerprint: `dddd00000000000${n}`,
              startsAt: `2026-11-26T11:1${n}:00Z`,
              labels: { service: 'payments' },
            },
          ],
          `{}:{alertname="Payments${n}"}`,
        ),
      );

    it('shows each alert delivered, retrying with the last error, failed, or queued: in the JSON, the table and the details', async () => {
      await fire(1);
      await h.worker.drain();
      // Alice's incident is created, then PagerDuty refuses to resolve it: that is not retried.
      await post('/v1/deploys', designDeploy());
      const checkout = (status: 'firing' | 'resolved') =>
        amPayload(
          [
            {
              fingerprint: 'dddd000000000002',
              startsAt: '2026-11-26T11:12:00Z',
              status,
              ...(status === 'resolved' ? { endsAt: '2026-11-26T11:19:00Z' } : {}),
            },
          ],
          '{}:{alertname="Checkout2"}',
        );
      await post('/v1/alertmanager', checkout('firing'));
      await h.worker.drain();
      stub.failNext('incidents.update', { status: 403 });
      await post('/v1/alertmanager', checkout('resolved'));
      await h.worker.drain();
      stub.failNext('events', { status: 503, times: Number.POSITIVE_INFINITY });
      await fire(3);
      await h.worker.drain();
      await fire(4); // not tried yet

      const alerts = (await timeline()).body.alerts as {
        fingerprint: string;
        key: string;
        delivery: { state: string; pages: Record<string, unknown>[] };
      }[];
      const state = (n: number) => alerts.find((a) => a.fingerprint === `dddd00000000000${n}`)?.delivery;
      expect(state(1)).toEqual({
        state: 'delivered',
        pages: [
          {
            target: { kind: 'oncall' },
            state: 'delivered',
            attempts: 1,
            lastAttemptAt: '2026-11-26T11:20:00.000Z',
            channel: 'pagerduty',
            lastError: null,
            deliveredAt: '2026-11-26T11:20:00.000Z',
            nextAttemptAt: null,
          },
        ],
      });
      expect(state(2)?.state).toBe('failed');
      expect(state(2)?.pages[0]).toMatchObject({
        target: { kind: 'person', email: 'alice@example.com' },
        attempts: 1,
        lastError: expect.stringMatching(/^resolve incident: HTTP 403/),
        deliveredAt: '2026-11-26T11:20:00.000Z',
        nextAttemptAt: null,
      });
      expect(state(3)?.state).toBe('retrying');
      expect(state(3)?.pages[0]).toMatchObject({
        attempts: 1,
        lastError: expect.stringMatching(/HTTP 503/),
        nextAttemptAt: expect.stringMatching(/^2026-11-26T11:20:0\d/),
        deliveredAt: null,
      });
      expect(state(4)).toMatchObject({ state: 'queued', pages: [{ attempts: 0, lastAttemptAt: null }] });

      const html = (await request(h.app).get('/?range=PT1H').set(auth)).text;
      const row = (n: number) => {
        const key = alerts.find((a) => a.fingerprint === `dddd00000000000${n}`)?.key;
        return /<tr data-alert="[^"]+">[\s\S]*?<\/tr>/g
          .exec(html.slice(html.indexOf(`<tr data-alert="${key}">`)))?.[0]
          .replace(/<[^>]+>/g, '');
      };
      expect(row(1)).toContain('delivered');
      expect(row(2)).toMatch(
        /failed alice@example\.com: attempt 1 failed at 11:20 UTC: resolve incident: HTTP 403.*; not retried/,
      );
      expect(row(3)).toMatch(
        /retrying on-call: attempt 1 failed at 11:20 UTC: trigger event: HTTP 503.*; next try at 11:20 UTC/,
      );
      expect(row(4)).toContain('queued');
      const detail = html.slice(
        html.indexOf(`id="alert-${alerts.find((a) => a.fingerprint === 'dddd000000000003')?.key}"`),
      );
      expect(detail.slice(0, detail.indexOf('</article>')).replace(/<[^>]+>/g, '')).toMatch(
        /Delivery\nretrying on-call: attempt 1 failed at 11:20 UTC: trigger event: HTTP 503/,
      );
    });

    it('moves the revision when a delivery gets through, so the open page redraws', async () => {
      stub.failNext('events', { status: 503 });
      await fire(1);
      await h.worker.drain();
      const retrying = (await timeline()).body;
      expect(retrying.alerts[0].delivery.state).toBe('retrying');
      clock.advance(60_000);
      await h.worker.drain();
      const delivered = (await timeline()).body;
      expect(delivered.alerts[0].delivery.state).toBe('delivered');
      expect(delivered.revision).not.toBe(retrying.revision);
    });
  });
});
