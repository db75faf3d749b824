import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { amPayload, createHarness, designDeploy, type Harness, TOKEN } from '../support/harness.js';
import { type PagerDutyStub, startPagerDutyStub } from '../support/pagerduty-stub.js';
import { eventually } from '../support/wait.js';

// PagerDuty misbehaving for a few seconds of real time, in every way at once: 500s, then 429s with a
// ratelimit-reset, then requests that hang (some of which PagerDuty acted on before the client gave up), while
// alerts keep arriving, fire and resolve. The real worker loop (worker.start()) and real timers: once PagerDuty
// recovers everything arrives, and nothing arrives twice.

const CA_FILE = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
const CHECKOUT_KEY = 'outage-checkout-routing-key-0000';
const DEFAULT_KEY = 'outage-default-routing-key-00000';
const auth = { Authorization: `Bearer ${TOKEN}` };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a PagerDuty outage over a real period, with the worker running', () => {
  let stub: PagerDutyStub;
  let h: Harness;

  beforeEach(async () => {
    stub = await startPagerDutyStub({ https: true });
    stub.users = [
      { id: 'PALICE', email: 'alice@example.com', name: 'Alice' },
      { id: 'PBOB', email: 'bob@example.com', name: 'Bob' },
    ];
    h = createHarness({
      yaml: `
delivery: { poll_interval: PT0.1S, max_backoff: PT1S }
pagerduty:
  events_url: ${stub.url}
  api_url: ${stub.url}
  api_token_env: PD_TOKEN
  from: changepager@example.com
  ca_file: ${JSON.stringify(CA_FILE)}
  request_timeout: PT0.5S
  author_fallback_after: PT60S
defaults:
  pagerduty: { service_id: PDEFAULT, routing_key_env: PD_DEFAULT_KEY }
services:
  checkout:
    pagerduty: { service_id: PCHECKOUT, routing_key_env: PD_CHECKOUT_KEY }
people:
  - email: alice@example.com
    pagerduty_user_id: PALICE
`,
      env: { PD_TOKEN: 'outage-pd-token', PD_CHECKOUT_KEY: CHECKOUT_KEY, PD_DEFAULT_KEY: DEFAULT_KEY },
    });
  });
  afterEach(async () => {
    await h.close();
    await stub.close();
  });

  const post = (path: string, body: object) => request(h.app).post(path).set(auth).send(body);
  const startsAt = () => new Date(Date.now() - 60_000).toISOString();
  /** One group, one alert: its own page. Checkout alerts follow alice's deploy; search alerts have none. */
  const fire = (service: string, n: number, status: 'firing' | 'resolved' = 'firing', at = startsAt()) =>
    post(
      '/v1/alertmanager',
      amPayload(
        [
          {
            fingerprint: `${service === 'checkout' ? 'c' : '5'}${n.toString(16).padStart(15, '0')}`,
            startsAt: at,
            status,
            ...(status === 'resolved' ? { endsAt: new Date().toISOString() } : {}),
            labels: { alertname: `Outage${service}${n}`, service, instance: `${service}-${n}:8080` },
          },
        ],
        `{}:{alertname="Outage${service}${n}"}`,
      ),
    );

  it('delivers every page once PagerDuty recovers from 500s, 429s and hangs, and none twice', async () => {
    expect(
      (
        await post(
          '/v1/deploys',
          designDeploy({ id: 'outage-deploy', at: new Date(Date.now() - 300_000).toISOString() }),
        )
      ).status,
    ).toBe(201);
    h.worker.start();

    // 0-1.5 s: every request 500; 1.5-3 s: 429 with ratelimit-reset 1 s; then 12 requests hang, half of them
    // after PagerDuty applied them (the client times out and retries what was in fact done).
    stub.failFor('*', 1500, { status: 500 });
    const phases = [
      setTimeout(() => stub.failFor('*', 1500, { status: 429, headers: { 'ratelimit-reset': '1' } }), 1500),
      setTimeout(() => {
        stub.hang('*', { times: 6, process: true });
        stub.hang('*', { times: 6 });
      }, 3000),
    ];

    const starts = new Map<number, string>();
    const answers: number[] = [];
    for (let n = 0; n < 20; n++) {
      starts.set(n, startsAt());
      answers.push((await fire('checkout', n)).status, (await fire('search', n, 'firing', starts.get(n))).status);
      await sleep(100);
      // Half the on-call alerts resolve again while PagerDuty is still down.
      if (n >= 5 && n % 2 === 1) answers.push((await fire('search', n - 5, 'resolved', starts.get(n - 5))).status);
    }
    expect(new Set(answers)).toEqual(new Set([200]));

    await eventually(async () => (await h.store.outboxStats(Date.now())).depth === 0, 'the outbox to drain', 45_000);
    for (const t of phases) clearTimeout(t);
    stub.clearFaults();

    // Author pages: one incident per checkout group, each assigned to alice, none created twice.
    const incidents = stub.incidents();
    const titles = incidents.map((i) => i.title.match(/Outagecheckout\d+/)?.[0]);
    expect(new Set(titles).size).toBe(20);
    expect(incidents).toHaveLength(20);
    expect(incidents.every((i) => i.assignments[0]?.assignee.id === 'PALICE')).toBe(true);

    // On-call pages: one PagerDuty alert per search group that was still firing; the ones that resolved during
    // the outage were either never opened or opened once and resolved.
    const alerts = stub.alerts();
    expect(alerts.every((a) => a.incidentsOpened === 1)).toBe(true);
    const byName = new Map(alerts.map((a) => [a.payload?.summary?.match(/Outagesearch\d+/)?.[0], a]));
    const resolvedEarly = [0, 2, 4, 6, 8, 10, 12, 14].map((n) => `Outagesearch${n}`);
    for (let n = 0; n < 20; n++) {
      const name = `Outagesearch${n}`;
      if (resolvedEarly.includes(name)) expect(byName.get(name)?.status ?? 'resolved').toBe('resolved');
      else expect(byName.get(name)?.status, name).toBe('triggered');
    }
    // Nothing fell back to on-call: the author's incidents were retried, not given up.
    expect(alerts.every((a) => a.routingKey === DEFAULT_KEY)).toBe(true);
    expect(stub.requestsTo('events').filter((r) => r.fault !== undefined).length).toBeGreaterThan(0);
    expect(stub.requestsTo('incidents.create').filter((r) => r.fault !== undefined).length).toBeGreaterThan(0);
  });
});
