import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { amPayload, createHarness, designDeploy, fakeClock, type Harness, TOKEN } from '../support/harness.js';

// However large the events sent, a view of the timeline is bounded: each deploy lists its first few changes and
// hosts, each text is cut, and what was cut is one link away in the full record, which keeps all of it.

const auth = { Authorization: `Bearer ${TOKEN}` };
const MB = 1024 * 1024;

/** A release of about `bytes` of JSON: one change after another, each with its own author, until it is. */
function bigRelease(i: number, bytes: number) {
  const changes: unknown[] = [];
  let size = 0;
  for (let n = 0; size < bytes; n++) {
    const change = {
      author: { email: `dev${n}@example.com`, login: `dev${n}`, name: `Developer ${n}` },
      commit: {
        sha: `${i}${n}`.padEnd(40, '0'),
        url: `https://git.example.com/shop/commit/${i}-${n}`,
        message: `Change ${n}: ${'tune the cart cache and its invalidation '.repeat(10)}`,
      },
      pullRequest: { number: n + 1, url: `https://git.example.com/shop/pull/${n + 1}`, title: `Change ${n}` },
    };
    size += JSON.stringify(change).length + 1;
    changes.push(change);
  }
  return designDeploy({
    id: `release-${i}`,
    version: `2026.11.26-${i}`,
    at: `2026-11-26T1${i % 2}:0${i}:00Z`,
    changes,
  });
}

describe('a bounded timeline', () => {
  let h: Harness;
  const clock = fakeClock('2026-11-26T11:20:00Z');

  beforeEach(() => {
    clock.set('2026-11-26T11:20:00Z');
    h = createHarness({ now: clock.now });
  });
  afterEach(async () => {
    await h.close();
  });

  const post = (path: string, body: unknown) =>
    request(h.app)
      .post(path)
      .set(auth)
      .send(body as object);
  const get = (path: string) => request(h.app).get(path).set(auth);

  it('keeps the page and its JSON small with ten deploys of 1.8 MB, each linking the full record', async () => {
    for (let i = 0; i < 10; i++) expect((await post('/v1/deploys', bigRelease(i, 1.8 * MB))).status).toBe(201);
    // Alerts after three of them (each one's attribution reads the deploys before it).
    for (const i of [3, 6, 9]) {
      const startsAt = `2026-11-26T1${i % 2}:0${i}:30Z`;
      await post('/v1/alertmanager', amPayload([{ fingerprint: `b16000000000000${i}`, startsAt }], `{}:{n="${i}"}`));
    }
    const page = await get('/?range=PT24H');
    expect(page.status).toBe(200);
    // Was 15 MB (and 29 MB of JSON) for these before views were bounded.
    expect(page.text.length).toBeLessThan(400_000);
    const json = await get('/v1/timeline?range=PT24H');
    expect(JSON.stringify(json.body).length).toBeLessThan(400_000);

    const deploy = json.body.deploys.find((d: { id: string }) => d.id === 'release-3');
    expect(deploy.changes).toHaveLength(10);
    expect(deploy.changes.map((c: { pullRequest: { title: string } }) => c.pullRequest.title)).toEqual(
      Array.from({ length: 10 }, (_, n) => `Change ${n}`),
    );
    expect(deploy.changeCount).toBeGreaterThan(1000);
    expect(deploy).toMatchObject({ clipped: true, href: '/v1/deploys/release-3' });
    expect(deploy.changes[0].commit.message).toHaveLength(200);
    expect(deploy.changes[0].commit.message.endsWith('…')).toBe(true);
    expect(page.text).toContain(`Changes (the first 10 of ${deploy.changeCount})`);
    expect(page.text).toContain('<a href="/v1/deploys/release-3">the full record</a>');

    // The full record still has every change, whole.
    const full = (await get('/v1/deploys/release-3')).body;
    expect(full.changes).toHaveLength(deploy.changeCount);
    expect(full.changes[0].commit.message.length).toBeGreaterThan(300);
  }, 60_000); // storing 18 MB of deploys takes a while on a busy machine: nothing here is timed

  it('cuts long labels and annotations, lists at most 64 of them, and links the alert’s full record', async () => {
    const payload = amPayload([{ fingerprint: 'b17a000000000001', startsAt: '2026-11-26T11:09:00Z' }]);
    const alert = payload.alerts[0] as { labels: Record<string, string>; annotations: Record<string, string> };
    for (let n = 0; n < 100; n++) alert.labels[`label_${String(n).padStart(3, '0')}`] = `value ${n}`;
    alert.labels.team = 'payments-'.repeat(20_000);
    alert.annotations.description = 'The cart service is slow. '.repeat(40_000);
    expect((await post('/v1/alertmanager', payload)).status).toBe(200);

    const [shown] = (await get('/v1/timeline')).body.alerts;
    expect(shown).toMatchObject({ clipped: true, href: '/v1/alerts/b17a000000000001' });
    expect(Object.keys(shown.labels).length).toBeLessThanOrEqual(65);
    expect(shown.labels.alertname).toBe('HighErrorRate');
    expect(shown.annotations.description).toHaveLength(200);
    // The runbook link is built from the stored annotation, not from a cut copy of it.
    expect(shown.links.map((l: { href: string }) => l.href)).toContain('https://runbooks.example/checkout');
    const page = await get('/');
    expect(page.text.length).toBeLessThan(100_000);
    expect(page.text).toContain('<a href="/v1/alerts/b17a000000000001">the full record</a>');

    const full = (await get('/v1/alerts/b17a000000000001')).body.episodes[0];
    expect(Object.keys(full.labels)).toHaveLength(105);
    expect(full.annotations.description).toHaveLength(26 * 40_000);
  });

  it('takes its bounds from the config', async () => {
    await h.close();
    h = createHarness({ now: clock.now, yaml: 'timeline: { max_changes: 3, max_text_chars: 40, max_items: 2 }\n' });
    for (let i = 1; i <= 3; i++) await post('/v1/deploys', bigRelease(i, 20_000));
    const body = (await get('/v1/timeline')).body;
    expect(body.limit).toBe(2);
    expect(body.truncated.deploys).toBe(true);
    expect(body.deploys).toHaveLength(2);
    for (const d of body.deploys) {
      expect(d.changes).toHaveLength(3);
      expect(d.changes[0].commit.message).toHaveLength(40);
    }
  });
});
