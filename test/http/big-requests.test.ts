import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { amPayload, createHarness, fakeClock, type Harness, TOKEN } from '../support/harness.js';

// A notification of thousands of alerts is decided and stored a slice at a time, with the event loop free in
// between: other requests are answered while it is processed, and it is answered once every slice is stored.

const ALERTS = 10_000;
const auth = { Authorization: `Bearer ${TOKEN}` };

function bigNotification(count: number, patch: (i: number) => Record<string, unknown> = () => ({})) {
  const payload = amPayload(
    Array.from({ length: count }, (_, i) => ({
      fingerprint: `b${i.toString(16).padStart(15, '0')}`,
      startsAt: '2026-11-26T11:00:00Z',
      labels: { instance: `checkout-${i}:8080` },
    })),
  );
  payload.alerts = payload.alerts.map((a, i) => ({ ...a, ...patch(i) }));
  return payload;
}

/** POSTs or GETs over a real connection; resolves with the status once the answer's headers are in. */
function send(url: string, path: string, body?: unknown): Promise<{ status: number; json: () => Promise<unknown> }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = httpRequest(
      `${url}${path}`,
      {
        method: data === undefined ? 'GET' : 'POST',
        agent: false,
        headers: { ...auth, ...(data === undefined ? {} : { 'Content-Type': 'application/json' }) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        const done = new Promise<unknown>((ok) =>
          res
            .on('data', (c: Buffer) => chunks.push(c))
            .on('end', () => ok(JSON.parse(Buffer.concat(chunks).toString()))),
        );
        resolve({ status: res.statusCode ?? 0, json: () => done });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

describe('a notification of thousands of alerts', () => {
  let h: Harness;
  let server: Server;
  let url: string;
  const clock = fakeClock('2026-11-26T11:20:00Z');

  beforeEach(async () => {
    h = createHarness({ now: clock.now, yaml: 'http: { body_limit_bytes: 50000000 }\n' });
    server = h.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve));
    await h.close();
  });

  it('lets /healthz be answered while it is processed, before its own answer', async () => {
    // The first slice is stored (delivery is woken for it) while thousands of alerts are still to go.
    const firstSliceStored = new Promise<void>((resolve) => {
      const kick = h.worker.kick.bind(h.worker);
      h.worker.kick = () => {
        resolve();
        kick();
      };
    });
    const answered: string[] = [];
    const notification = send(url, '/v1/alertmanager', bigNotification(ALERTS)).then((res) => {
      answered.push('notification');
      return res;
    });
    await firstSliceStored;
    const health = await send(url, '/healthz');
    answered.push('healthz');
    expect(health.status).toBe(200);

    const res = await notification;
    expect(answered).toEqual(['healthz', 'notification']);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ accepted: ALERTS, newEpisodes: ALERTS });
  });

  it('stores every alert, answers with the totals and the first 1000 decisions, and a repeat changes nothing', async () => {
    const count = 2500;
    const first = await send(url, '/v1/alertmanager', bigNotification(count));
    const body = (await first.json()) as { decisions: unknown[]; decisionsNotShown: number; newEpisodes: number };
    expect(first.status).toBe(200);
    expect(body.newEpisodes).toBe(count);
    expect(body.decisions).toHaveLength(1000);
    expect(body.decisionsNotShown).toBe(count - 1000);

    const last = `b${(count - 1).toString(16).padStart(15, '0')}`;
    const stored = await request(h.app).get(`/v1/alerts/${last}`).set(auth);
    expect(stored.status).toBe(200);
    expect(stored.body.episodes[0].decision.reason).toBe('no_deploy_in_window');

    const again = await send(url, '/v1/alertmanager', bigNotification(count));
    expect(await again.json()).toMatchObject({ accepted: count, newEpisodes: 0, repeats: count, decisions: [] });
  });

  it('lists the problems of alerts in different slices, each at its index, and stores nothing', async () => {
    const broken = bigNotification(1200, (i) =>
      i === 3 ? { startsAt: 'yesterday' } : i === 1100 ? { fingerprint: 'not a fingerprint' } : {},
    );
    const res = await send(url, '/v1/alertmanager', { ...broken, version: '3' });
    expect(res.status).toBe(400);
    const problems = ((await res.json()) as { details: { problems: { path: string }[] } }).details.problems;
    expect(problems.map((p) => p.path)).toEqual(['version', 'alerts.3.startsAt', 'alerts.1100.fingerprint']);
    expect((await request(h.app).get('/v1/alerts/b000000000000000').set(auth)).status).toBe(404);
  });
});
