import { request as httpsRequest } from 'node:https';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { amPayload, createHarness, designDeploy, fakeClock, type Harness, TOKEN } from '../support/harness.js';
import { type PagerDutyStub, startPagerDutyStub, TEST_CA } from '../support/pagerduty-stub.js';

const auth = { Authorization: `Bearer ${TOKEN}` };
const CA_FILE = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
const CHECKOUT_KEY = 'checkout-routing-key-000000000000';
const DEFAULT_KEY = 'default-routing-key-0000000000000';
const PD_TOKEN = 'pd-api-token-secret';

function pagerdutyYaml(stubUrl: string, extra = '') {
  return `
pagerduty:
  events_url: ${stubUrl}
  api_url: ${stubUrl}
  api_token_env: PD_TOKEN
  from: changepager@example.com
  ca_file: ${CA_FILE}
  request_timeout: PT1S
  author_fallback_after: PT60S
defaults:
  pagerduty: { service_id: PDEFAULT, routing_key_env: PD_DEFAULT_KEY }
services:
  checkout:
    compare_url: "https://grafana.example.com/d/checkout?var-old={old}&var-new={new}&from={from}&to={to}"
    pagerduty: { service_id: PCHECKOUT, routing_key_env: PD_CHECKOUT_KEY }
people:
  - email: alice@example.com
    logins: [alice]
    pagerduty_user_id: PALICE
${extra}`;
}

describe('paging through PagerDuty', () => {
  let stub: PagerDutyStub;
  let h: Harness;
  const clock = fakeClock('2026-11-26T11:20:00Z');

  const start = (extraYaml = '') => {
    h = createHarness({
      now: clock.now,
      yaml: pagerdutyYaml(stub.url, extraYaml),
      env: { PD_TOKEN, PD_CHECKOUT_KEY: CHECKOUT_KEY, PD_DEFAULT_KEY: DEFAULT_KEY },
    });
  };
  const post = (path: string, body: unknown) =>
    request(h.app)
      .post(path)
      .set(auth)
      .send(body as object);
  const fire = (fingerprint: string, startsAt = '2026-11-26T11:09:00Z', labels: Record<string, string> = {}) =>
    post('/v1/alertmanager', amPayload([{ fingerprint, startsAt, labels }]));
  const resolve = (fingerprint: string, startsAt = '2026-11-26T11:09:00Z', labels: Record<string, string> = {}) =>
    post(
      '/v1/alertmanager',
      amPayload([{ fingerprint, startsAt, labels, status: 'resolved', endsAt: '2026-11-26T11:30:00Z' }]),
    );
  const history = async (fp: string) => (await request(h.app).get(`/v1/alerts/${fp}`).set(auth)).body.episodes[0];
  /** Runs the outbox at successive fake times until nothing is due, as the worker would over real time. */
  const settle = async (stepMs = 1000, maxSteps = 200) => {
    for (let i = 0; i < maxSteps; i++) {
      await h.worker.drain();
      const next = await h.store.nextDueAt();
      if (next === undefined) return;
      clock.set(new Date(Math.max(clock.now() + stepMs, next)).toISOString());
    }
  };

  beforeEach(async () => {
    clock.set('2026-11-26T11:20:00Z');
    stub = await startPagerDutyStub({ https: true });
    stub.users = [
      { id: 'PALICE', email: 'alice@example.com', name: 'Alice' },
      { id: 'PBOB', email: 'bob@example.com', name: 'Bob' },
    ];
    start();
  });
  afterEach(async () => {
    await h.close();
    await stub.close();
  });

  describe('the author', () => {
    it("gets one incident assigned to alice's PagerDuty user, with the PR link, the compare link and the reason", async () => {
      await post('/v1/deploys', designDeploy());
      await fire('a000000000000001');
      await settle();

      const creates = stub.requestsTo('incidents.create');
      expect(creates).toHaveLength(1);
      const create = creates[0];
      expect(create?.headers.from).toBe('changepager@example.com');
      expect(create?.headers.authorization).toBe(`Token token=${PD_TOKEN}`);
      const incident = (create?.body as { incident: Record<string, unknown> } | undefined)?.incident ?? {};
      expect(incident.assignments).toEqual([{ assignee: { id: 'PALICE', type: 'user_reference' } }]);
      expect(incident.service).toEqual({ id: 'PCHECKOUT', type: 'service_reference' });
      const details = (incident.body as { details: string }).details;
      expect(details).toContain('https://git.example.com/shop/pull/4812');
      expect(details).toContain('Paging alice@example.com');
      expect(details).toContain('was 2026.11.25-77b0e12');
      expect(details).toContain('var-old=2026.11.25-77b0e12&var-new=2026.11.26-3f2a9c1');
      expect(incident.incident_key).toBe((await history('a000000000000001')).pages[0].dedupKey);
      expect(stub.events({ accepted: true }).filter((e) => e.event_action === 'trigger')).toEqual([]);
    });

    it('reaches a plain-http REST API (a stand-in or a proxy) while events use https with the extra CA', async () => {
      const rest = await startPagerDutyStub();
      try {
        rest.users = stub.users;
        await h.close();
        h = createHarness({
          now: clock.now,
          yaml: pagerdutyYaml(stub.url).replace(`api_url: ${stub.url}`, `api_url: ${rest.url}`),
          env: { PD_TOKEN, PD_CHECKOUT_KEY: CHECKOUT_KEY, PD_DEFAULT_KEY: DEFAULT_KEY },
        });
        expect(rest.url).toMatch(/^http:/);
        await post('/v1/deploys', designDeploy());
        await fire('a00000000000000c');
        await settle();
        expect(rest.incidentCreates()).toHaveLength(1);
        expect((await history('a00000000000000c')).pages[0].delivered).toMatchObject({ via: 'incident' });
        expect(stub.events({ accepted: true })).toEqual([]); // no fallback to on-call
      } finally {
        await rest.close();
      }
    });

    it('asks for the merger as a responder, found by email through GET /users', async () => {
      await post('/v1/deploys', designDeploy());
      await fire('a000000000000002');
      await settle();
      const responders = stub.responderRequests();
      expect(responders).toHaveLength(1);
      expect(responders[0]?.body.responder_request_targets).toEqual([
        { responder_request_target: { id: 'PBOB', type: 'user_reference' } },
      ]);
      expect(stub.requestsTo('users')[0]?.query.query).toBe('bob@example.com');
    });

    it('records why the merger could not be added (402: no coordinated responding) and keeps the page', async () => {
      stub.setResponderRequestStatus(402);
      await post('/v1/deploys', designDeploy());
      await fire('a000000000000003');
      await settle();
      const page = (await history('a000000000000003')).pages[0];
      expect(page.delivered.responders).toMatch(/^not added: HTTP 402/);
      expect(stub.incidents()).toHaveLength(1);
      expect(stub.events({ accepted: true })).toEqual([]);
    });

    it('resolves the incident once every alert of the page has resolved', async () => {
      await post('/v1/deploys', designDeploy());
      await post(
        '/v1/alertmanager',
        amPayload([
          { fingerprint: 'a000000000000004', startsAt: '2026-11-26T11:09:00Z' },
          { fingerprint: 'a000000000000005', startsAt: '2026-11-26T11:10:00Z', labels: { instance: 'other:8080' } },
        ]),
      );
      await settle();
      expect(stub.incidents()).toHaveLength(1);
      await resolve('a000000000000004');
      await settle();
      expect(stub.incidentUpdates()).toEqual([]); // one alert of the two still fires
      await post(
        '/v1/alertmanager',
        amPayload([
          {
            fingerprint: 'a000000000000005',
            startsAt: '2026-11-26T11:10:00Z',
            status: 'resolved',
            endsAt: '2026-11-26T11:31:00Z',
            labels: { instance: 'other:8080' },
          },
        ]),
      );
      await settle();
      expect(stub.incidentUpdates().map((u) => u.body.incident)).toEqual([
        { type: 'incident_reference', status: 'resolved' },
      ]);
      expect(stub.incidents()[0]?.status).toBe('resolved');
    });

    it('resolves the incident when the alert resolves under another startsAt, and pages nobody for that one', async () => {
      await post('/v1/deploys', designDeploy());
      await fire('a00000000000000a', '2026-11-26T11:09:00.250Z');
      await settle();
      expect(stub.incidents()).toHaveLength(1);
      await resolve('a00000000000000a', '2026-11-26T11:09:00Z'); // the same firing, its start rounded
      await settle();
      expect(stub.incidents().map((i) => i.status)).toEqual(['resolved']);
      expect(stub.incidentCreates()).toHaveLength(1);
      expect(stub.events()).toEqual([]);
      const episodes = (await request(h.app).get('/v1/alerts/a00000000000000a').set(auth)).body.episodes;
      expect(
        episodes.map((e: { status: string; decision: { reason: string } }) => [e.status, e.decision.reason]),
      ).toEqual([
        ['resolved', 'author_paged'],
        ['resolved', 'resolved_before_seen'],
      ]);
      expect(episodes[0].pages[0]).toMatchObject({ status: 'resolved', delivered: { state: 'resolved' } });
      expect(episodes[1].pages).toEqual([]);
    });

    it('opens a new incident for an alert that joins a page whose incident was resolved in PagerDuty', async () => {
      await post('/v1/deploys', designDeploy());
      await fire('a000000000000008');
      await settle();
      const [first] = stub.incidents();
      // alice resolves it in PagerDuty while the alert still fires in Alertmanager
      await new Promise<void>((done, fail) => {
        const req = httpsRequest(
          `${stub.url}/incidents/${first?.id}`,
          {
            method: 'PUT',
            ca: TEST_CA,
            headers: { authorization: 'Token token=x', from: 'alice@example.com', 'content-type': 'application/json' },
          },
          (res) => res.resume().on('end', () => done()),
        );
        req.on('error', fail);
        req.end(JSON.stringify({ incident: { type: 'incident_reference', status: 'resolved' } }));
      });
      expect(stub.incident(first?.id ?? '')?.status).toBe('resolved');
      await post(
        '/v1/alertmanager',
        amPayload([
          { fingerprint: 'a000000000000008', startsAt: '2026-11-26T11:09:00Z' },
          { fingerprint: 'a000000000000009', startsAt: '2026-11-26T11:12:00Z', labels: { instance: 'b:1' } },
        ]),
      );
      await settle();
      expect(stub.incidentCreates()).toHaveLength(2);
      expect(stub.incidents().filter((i) => i.status === 'triggered')).toHaveLength(1);
      expect(stub.requestsTo('notes')).toEqual([]);
    });

    it('adds a note when a new alert joins the open page, instead of paging again', async () => {
      await post('/v1/deploys', designDeploy());
      await fire('a000000000000006');
      await settle();
      await post(
        '/v1/alertmanager',
        amPayload([
          { fingerprint: 'a000000000000006', startsAt: '2026-11-26T11:09:00Z' },
          { fingerprint: 'a000000000000007', startsAt: '2026-11-26T11:12:00Z', labels: { instance: 'b:1' } },
        ]),
      );
      await settle();
      expect(stub.incidentCreates()).toHaveLength(1);
      const notes = stub.requestsTo('notes');
      expect(notes).toHaveLength(1);
      expect(JSON.stringify(notes[0]?.body)).toContain('1 more alert(s) joined this page');
    });
  });

  describe('on-call', () => {
    it("gets one Events API trigger with the service's routing key for an alert with no deploy", async () => {
      await fire('b000000000000001', '2026-11-26T11:09:00Z', { severity: 'warning' });
      await settle();
      const triggers = stub.events({ accepted: true });
      expect(triggers).toHaveLength(1);
      const t = triggers[0];
      expect(t?.routing_key).toBe(CHECKOUT_KEY);
      expect(t?.event_action).toBe('trigger');
      expect(t?.dedup_key).toBe((await history('b000000000000001')).pages[0].dedupKey);
      expect(t?.payload).toMatchObject({
        summary: '[FIRING:1] HighErrorRate on checkout: Checkout error rate above 5%',
        source: 'checkout-7f9c-abcde',
        severity: 'warning',
        component: 'checkout',
        class: 'HighErrorRate',
      });
      expect((t?.payload?.custom_details as { why: string[] } | undefined)?.why[0]).toMatch(
        /^No checkout deploy to production/,
      );
      expect(t?.links).toEqual(
        expect.arrayContaining([
          { href: 'https://runbooks.example/checkout', text: 'Runbook' },
          { href: 'http://prometheus.local/graph?g0.expr=rate', text: 'Prometheus query' },
        ]),
      );
      expect(stub.incidentCreates()).toEqual([]);
    });

    it('uses the default routing key for a service without its own', async () => {
      await fire('b000000000000002', '2026-11-26T11:09:00Z', { service: 'search' });
      await settle();
      expect(stub.events({ accepted: true })[0]?.routing_key).toBe(DEFAULT_KEY);
    });

    it('resolves the event when the alert resolves', async () => {
      await fire('b000000000000003');
      await settle();
      await resolve('b000000000000003');
      await settle();
      expect(stub.events({ accepted: true }).map((e) => e.event_action)).toEqual(['trigger', 'resolve']);
      expect(stub.openAlerts()).toEqual([]);
    });

    it('resolves the event when the alert resolves under another startsAt', async () => {
      await fire('b000000000000006', '2026-11-26T11:09:00.250Z');
      await settle();
      await resolve('b000000000000006', '2026-11-26T11:09:00Z');
      await settle();
      expect(stub.events({ accepted: true }).map((e) => e.event_action)).toEqual(['trigger', 'resolve']);
      expect(stub.openAlerts()).toEqual([]);
    });

    it('pages once for the same notification sent twice, and for an HA duplicate', async () => {
      await fire('b000000000000004');
      await fire('b000000000000004');
      await settle();
      await fire('b000000000000004');
      await settle();
      expect(stub.events({ accepted: true })).toHaveLength(1);
    });

    it('sends nothing for a page that resolved before it could be delivered, as Alertmanager would', async () => {
      await fire('b000000000000005');
      await resolve('b000000000000005');
      await settle();
      expect(stub.events()).toEqual([]);
    });
  });

  describe('falling back to on-call', () => {
    it('pages on-call at once, with the reason, when the author is not a PagerDuty user', async () => {
      await post('/v1/deploys', designDeploy({ changes: [{ author: { email: 'dave@example.com' } }] }));
      await fire('c000000000000001');
      await settle();
      const triggers = stub.events({ accepted: true });
      expect(triggers).toHaveLength(1);
      expect(triggers[0]?.routing_key).toBe(CHECKOUT_KEY);
      expect((triggers[0]?.payload?.custom_details as { fallback_reason: string } | undefined)?.fallback_reason).toBe(
        'no PagerDuty user has the email dave@example.com',
      );
      const unmapped = (await request(h.app).get('/v1/people/unmapped').set(auth)).body.people;
      expect(unmapped).toEqual([
        expect.objectContaining({ who: 'dave@example.com', reason: 'no_pagerduty_user', count: 1 }),
      ]);
      expect((await request(h.app).get('/metrics')).text).toContain(
        'changepager_unmapped_people_total{reason="no_pagerduty_user"} 1',
      );
    });

    it('pages on-call at once when PagerDuty refuses the incident (a 4xx)', async () => {
      stub.failNext('incidents.create', { status: 403 });
      await post('/v1/deploys', designDeploy());
      await fire('c000000000000002');
      await settle();
      const fallback = stub.events({ accepted: true });
      expect(fallback).toHaveLength(1);
      expect(
        (fallback[0]?.payload?.custom_details as { fallback_reason: string } | undefined)?.fallback_reason,
      ).toMatch(/^PagerDuty refused the incident: HTTP 403/);
    });

    it('retries a failing REST API until the fallback time, then pages on-call within it', async () => {
      stub.failNext('incidents.create', { status: 500, times: Number.POSITIVE_INFINITY });
      await post('/v1/deploys', designDeploy());
      await fire('c000000000000003');
      const accepted = clock.now();
      await settle(5000);
      const triggers = stub.requestsTo('events').filter((r) => r.status === 202);
      expect(triggers).toHaveLength(1);
      expect(stub.requestsTo('incidents.create').length).toBeGreaterThan(2);
      const pagedAfter = clock.now() - accepted;
      expect(pagedAfter).toBeGreaterThanOrEqual(60_000);
      expect(pagedAfter).toBeLessThanOrEqual(65_000);
      const page = (await history('c000000000000003')).pages[0];
      expect(page.delivered).toMatchObject({ via: 'events', state: 'triggered' });
      expect(page.delivered.fallback).toMatch(/^still failing after 60 s: create incident: HTTP 500/);

      // Later syncs of that page go to the Events API too: the resolve reaches the alert on-call got.
      await resolve('c000000000000003');
      await settle();
      expect(stub.events({ accepted: true }).map((e) => e.event_action)).toEqual(['trigger', 'resolve']);
    });

    it('adopts the incident an earlier, timed-out attempt created instead of creating a second', async () => {
      stub.hang('incidents.create', { times: 1, process: true }); // PagerDuty creates it; the answer never comes
      await post('/v1/deploys', designDeploy());
      await fire('c000000000000004');
      await settle();
      expect(stub.requestsTo('incidents.create')).toHaveLength(2);
      expect(stub.incidents()).toHaveLength(1);
      const page = (await history('c000000000000004')).pages[0];
      expect(page.delivered).toMatchObject({ via: 'incident', incident: stub.incidents()[0]?.id });
      const details = (await history('c000000000000004')).deliveries.map((d: { detail: string }) => d.detail);
      expect(details[0]).toMatch(/^create incident: timeout/);
    });
  });

  it('adopts an incident whose creation timed out again and again, instead of also paging on-call at the deadline', async () => {
    stub.hang('incidents.create', { times: Number.POSITIVE_INFINITY, process: true });
    await post('/v1/deploys', designDeploy());
    await fire('c000000000000005');
    await settle(5000);
    expect(stub.incidents()).toHaveLength(1);
    expect(stub.events()).toEqual([]);
    const page = (await history('c000000000000005')).pages[0];
    expect(page.delivered).toMatchObject({ via: 'incident', incident: stub.incidents()[0]?.id });
    // and the resolve reaches it
    await resolve('c000000000000005');
    await settle();
    expect(stub.incidents()[0]?.status).toBe('resolved');
  });

  describe('when the Events API fails', () => {
    it('keeps retrying 500s with backoff and delivers exactly once when it recovers', async () => {
      stub.failNext('events', { status: 500, times: 6 });
      await fire('d000000000000001');
      await settle();
      expect(stub.requestsTo('events')).toHaveLength(7);
      expect(stub.events({ accepted: true })).toHaveLength(1);
      const attempts = (await history('d000000000000001')).deliveries;
      expect(attempts.map((a: { outcome: string }) => a.outcome)).toEqual([...Array(6).fill('retry'), 'delivered']);
    });

    it("waits as long as a 429's ratelimit-reset says before trying again", async () => {
      // pdjs retries a 429 three times itself before handing it back: four answers make one attempt fail.
      stub.failNext('events', { status: 429, times: 4, headers: { 'ratelimit-reset': '30' } });
      await fire('d000000000000002');
      const t0 = clock.now();
      await h.worker.drain();
      const due = await h.store.nextDueAt();
      expect(due).toBeGreaterThanOrEqual(t0 + 30_000);
      clock.set(new Date(t0 + 29_000).toISOString());
      await h.worker.drain();
      expect(stub.events({ accepted: true })).toEqual([]);
      clock.set(new Date((due as number) + 1).toISOString());
      await h.worker.drain();
      expect(stub.events({ accepted: true })).toHaveLength(1);
    });

    it('shows the backlog in /readyz and /metrics while it waits', async () => {
      stub.failNext('events', { status: 503, times: Number.POSITIVE_INFINITY });
      await fire('d000000000000003');
      await h.worker.drain();
      clock.advance(45_000);
      const ready = (await request(h.app).get('/readyz')).body;
      expect(ready.outbox).toEqual({ depth: 1, oldestUndeliveredAgeSeconds: 45 });
      // The outbox gauges show the last refresh (every metrics.refresh_interval); /readyz reads it live.
      await h.metrics.refresh();
      const metrics = (await request(h.app).get('/metrics')).text;
      expect(metrics).toContain('changepager_delivery_failures_total{channel="pagerduty",reason="http_5xx"} 1');
      expect(metrics).toContain('changepager_outbox_depth 1');
    });

    it('counts the age of a failing page from when it was accepted, not from its last retry', async () => {
      stub.failNext('events', { status: 503, times: Number.POSITIVE_INFINITY });
      await fire('d000000000000006');
      const accepted = clock.now();
      // Each retry moves the row's due time on; run them until the page has failed for over 34 s.
      while (clock.now() - accepted < 34_000) {
        clock.set(new Date(Math.max(clock.now(), (await h.store.nextDueAt()) ?? 0)).toISOString());
        await h.worker.drain();
      }
      expect(stub.requestsTo('events').length).toBeGreaterThan(3);
      expect(await h.store.nextDueAt()).toBeGreaterThan(clock.now()); // just retried: not due again yet
      const age = (clock.now() - accepted) / 1000;
      const ready = (await request(h.app).get('/readyz')).body;
      expect(ready.outbox).toEqual({ depth: 1, oldestUndeliveredAgeSeconds: age });
      // The outbox gauges show the last refresh (every metrics.refresh_interval); /readyz reads it live.
      await h.metrics.refresh();
      expect((await request(h.app).get('/metrics')).text).toContain(`changepager_outbox_oldest_age_seconds ${age}\n`);
    });

    it('treats a hung request as a timeout and retries it', async () => {
      stub.hang('events', { times: 1 });
      await fire('d000000000000004');
      await settle();
      expect(stub.events({ accepted: true })).toHaveLength(1);
      expect((await history('d000000000000004')).deliveries[0].detail).toMatch(/timeout: no answer within 1000 ms/);
    });
  });

  describe('pages too large for PagerDuty', () => {
    const bytes = (body: unknown) => Buffer.byteLength(JSON.stringify(body), 'utf8');
    const details = (e: { payload?: { custom_details?: unknown } } | undefined) =>
      e?.payload?.custom_details as Record<string, unknown> & {
        alerts: { labels: Record<string, string>; annotations: Record<string, string> }[];
        deploy?: { changes: unknown[]; changes_not_shown?: number };
      };
    const bigChanges = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        author: { email: `dev${i}@example.com` },
        commit: { sha: `c${i}`, url: `https://git.example.com/shop/commit/c${i}`, message: 'm'.repeat(600) },
      }));

    it.each([
      ['a 1 MB label', { labels: { huge: 'x'.repeat(1_000_000) } }, {}],
      ['a 4.5 MB annotation', { annotations: { description: 'd'.repeat(4_500_000) } }, {}],
      ['a deploy carrying 1,000 changes', {}, { changes: bigChanges(1000) }],
    ])('pages on-call at the first try despite %s, saying what was cut', async (_intent, alert, deploy) => {
      await post('/v1/deploys', designDeploy(deploy));
      const payload = amPayload([
        { fingerprint: 'f000000000000001', startsAt: '2026-11-26T11:09:00Z', labels: { instance: 'db1:9100' } },
      ]);
      const wire = payload.alerts[0] as { labels: Record<string, string>; annotations: Record<string, string> };
      Object.assign(wire.labels, (alert as { labels?: Record<string, string> }).labels);
      Object.assign(wire.annotations, (alert as { annotations?: Record<string, string> }).annotations);
      if (!('changes' in deploy)) wire.labels.service = 'search'; // no deploy: on-call through the Events API
      expect((await post('/v1/alertmanager', payload)).status).toBe(200);
      await settle();

      const triggers = stub.requestsTo('events');
      expect(triggers.map((r) => r.status)).toEqual([202]);
      expect(bytes(triggers[0]?.body)).toBeLessThanOrEqual(512_000);
      const shown = details(stub.events()[0]);
      if ('changes' in deploy) {
        expect(shown.deploy?.changes).toHaveLength(20);
        expect(shown.deploy?.changes_not_shown).toBe(980);
        expect(stub.changeEvents({ accepted: true })).toHaveLength(1);
      } else {
        expect(JSON.stringify(shown.alerts[0])).toMatch(/… \([\d,]+ more characters\)/);
      }
    });

    it('sends a refused page again in its minimal form, linking back to changepager, and records both', async () => {
      await h.close();
      start('external_url: https://changepager.example.com/cp/');
      stub.failNext('events', { status: 400 });
      await fire('f000000000000002', '2026-11-26T11:09:00Z', { service: 'search' });
      await settle();

      const [refused, minimal] = stub.requestsTo('events');
      expect([refused?.status, minimal?.status]).toEqual([400, 202]);
      const short = minimal?.body as { payload: Record<string, unknown>; links: unknown[]; dedup_key: string };
      expect(short.payload).toMatchObject({
        summary: '[FIRING:1] HighErrorRate on search: Checkout error rate above 5%',
        source: 'checkout-7f9c-abcde',
        severity: 'error',
      });
      expect(short.payload.custom_details).toEqual({
        note: expect.stringMatching(/^A short form of the page: PagerDuty refused the full page \(HTTP 400/),
      });
      expect(short.links).toEqual([
        {
          href: 'https://changepager.example.com/cp/v1/alerts/f000000000000002',
          text: 'This alert in changepager: decision, pages and deliveries',
        },
        { href: 'https://changepager.example.com/cp/services/search', text: 'Timeline in changepager' },
      ]);
      const episode = await history('f000000000000002');
      expect(short.dedup_key).toBe(episode.pages[0].dedupKey);
      expect(episode.pages[0].delivered).toMatchObject({ state: 'triggered', form: 'minimal' });
      expect(
        episode.deliveries.map((d: { attempt: number; outcome: string; detail: string }) => [
          d.attempt,
          d.outcome,
          d.detail,
        ]),
      ).toEqual([
        [1, 'failed', expect.stringMatching(/^trigger event refused: HTTP 400: Event object is invalid/)],
        [1, 'delivered', 'minimal trigger event accepted'],
      ]);

      await resolve('f000000000000002', '2026-11-26T11:09:00Z', { service: 'search' });
      await settle();
      expect(stub.openAlerts()).toEqual([]);
    });

    it('gives up on a page whose minimal form is refused too: logged at error, counted, never retried', async () => {
      stub.failNext('events', { status: 400, times: Number.POSITIVE_INFINITY });
      await fire('f000000000000003', '2026-11-26T11:09:00Z', { service: 'search' });
      await settle(5000);
      expect(stub.requestsTo('events').map((r) => r.status)).toEqual([400, 400]);
      expect(await h.store.nextDueAt()).toBeUndefined();
      const episode = await history('f000000000000003');
      expect(episode.deliveries.map((d: { outcome: string }) => d.outcome)).toEqual(['failed', 'failed']);
      expect((await request(h.app).get('/metrics')).text).toContain(
        'changepager_delivery_failures_total{channel="pagerduty",reason="http_4xx"} 2',
      );
      const errors = h.logs.map((l) => JSON.parse(l)).filter((l) => l.level === 50);
      expect(errors).toEqual([
        expect.objectContaining({
          msg: 'delivery failed permanently',
          detail: expect.stringMatching(/^minimal trigger event: HTTP 400/),
        }),
      ]);
    });

    it("bounds the author's incident body and the notes on it, saying what was cut", async () => {
      await post(
        '/v1/deploys',
        designDeploy({ changes: [{ ...bigChanges(1)[0], author: { email: 'alice@example.com' } }] }),
      );
      const huge = (fingerprint: string, instance: string) => {
        const payload = amPayload([{ fingerprint, startsAt: '2026-11-26T11:09:00Z', labels: { instance } }]);
        (payload.alerts[0] as { annotations: Record<string, string> }).annotations.summary = 's'.repeat(2_000_000);
        return payload;
      };
      await post('/v1/alertmanager', huge('f000000000000004', 'a:1'));
      await settle();
      const created = stub.incidentCreates()[0]?.incident;
      expect(created?.title?.length).toBeLessThanOrEqual(255);
      expect(created?.body?.details?.length).toBeLessThanOrEqual(24_000);
      expect(created?.body?.details).toMatch(/s… \(1,999,4\d\d more characters\)/);

      const joined = huge('f000000000000005', 'b:1');
      joined.alerts.unshift(huge('f000000000000004', 'a:1').alerts[0] as (typeof joined.alerts)[number]);
      await post('/v1/alertmanager', joined);
      await settle();
      const note =
        (stub.requestsTo('notes')[0]?.body as { note?: { content: string } } | undefined)?.note?.content ?? '';
      expect(note.length).toBeLessThanOrEqual(24_000);
      expect(note).toMatch(/^1 more alert\(s\) joined this page:/);
    });
  });

  describe('change events', () => {
    it('sends each new deploy once as a change event with its PR and commit links', async () => {
      await post('/v1/deploys', designDeploy());
      await post('/v1/deploys', designDeploy()); // the same id again: no second change event
      await settle();
      const changes = stub.changeEvents();
      expect(changes).toHaveLength(1);
      expect(changes[0]?.routing_key).toBe(CHECKOUT_KEY);
      expect(changes[0]?.payload?.summary).toBe(
        'checkout 2026.11.26-3f2a9c1 deployed to production (full) by alice@example.com',
      );
      expect(changes[0]?.links).toEqual([
        { href: 'https://git.example.com/shop/pull/4812', text: 'Pull request #4812' },
        { href: 'https://git.example.com/shop/commit/3f2a9c1e', text: 'Commit' },
      ]);
    });
  });

  describe('policy modes', () => {
    it.each([
      ['author+oncall pages alice and on-call', 'author+oncall', 1, 1],
      ['notify pages on-call only', 'notify', 0, 1],
      ['shadow pages on-call only', 'shadow', 0, 1],
      ['off pages on-call only', 'off', 0, 1],
    ])('%s', async (_intent, policy, incidents, triggers) => {
      await h.close();
      h = createHarness({
        now: clock.now,
        yaml: pagerdutyYaml(stub.url).replace('    compare_url:', `    policy: "${policy}"\n    compare_url:`),
        env: { PD_TOKEN, PD_CHECKOUT_KEY: CHECKOUT_KEY, PD_DEFAULT_KEY: DEFAULT_KEY },
      });
      await post('/v1/deploys', designDeploy());
      await fire('e000000000000001');
      await settle();
      expect(stub.incidentCreates()).toHaveLength(incidents);
      expect(stub.events({ accepted: true })).toHaveLength(triggers);
    });
  });
});
