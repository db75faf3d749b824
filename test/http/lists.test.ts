import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { amPayload, apiClient, createHarness, designDeploy, fakeClock, type Harness } from '../support/harness.js';

// The API's lists come in pages: at most `limit` items and about 1 MiB, with a `next` link until the last page.
// Following the links returns every item once, in order.

describe('paged lists', () => {
  let h: Harness;
  const clock = fakeClock('2026-11-26T12:00:00Z');
  const api = apiClient(() => h.app);

  beforeEach(() => {
    clock.set('2026-11-26T12:00:00Z');
    h = createHarness({ now: clock.now, yaml: 'http: { body_limit_bytes: 20000000 }\n' });
  });
  afterEach(async () => {
    await h.close();
  });

  /** Every page from `path` on, following `next`. */
  async function allPages(path: string, key: string) {
    const pages: { items: Record<string, unknown>[]; bytes: number }[] = [];
    for (let next: string | null = path; next !== null; ) {
      const res = await api.get(next);
      expect(res.status, `${next}: ${res.text.slice(0, 300)}`).toBe(200);
      pages.push({ items: res.body[key], bytes: res.text.length });
      next = res.body.next;
    }
    return pages;
  }

  it('GET /v1/deploys: pages of `limit`, newest first, every deploy once, ties on `at` included', async () => {
    for (let i = 0; i < 25; i++) {
      // Pairs share an `at`: the cursor must not skip the second of a pair at a page boundary.
      const at = new Date(Date.parse('2026-11-26T10:00:00Z') + Math.floor(i / 2) * 60_000).toISOString();
      expect((await api.post('/v1/deploys', designDeploy({ id: `d-${i}`, version: `v${i}`, at }))).status).toBe(201);
    }
    const pages = await allPages('/v1/deploys?service=checkout&limit=10', 'deploys');
    expect(pages.map((p) => p.items.length)).toEqual([10, 10, 5]);
    const ats = pages.flatMap((p) => p.items.map((d) => d.at as string));
    expect(ats).toEqual([...ats].sort().reverse());
    const ids = pages.flatMap((p) => p.items.map((d) => d.id));
    expect(new Set(ids).size).toBe(25);
  });

  it('GET /v1/deploys: a page of large deploys stops at about 1 MiB, and the rest follow', async () => {
    const message = 'm'.repeat(4000);
    const changes = Array.from({ length: 100 }, (_, i) => ({
      author: { email: `dev${i}@example.com` },
      commit: { sha: `c${i}`, message },
    }));
    for (let i = 0; i < 5; i++) {
      // about 400 KB each
      const res = await api.post('/v1/deploys', designDeploy({ id: `big-${i}`, version: `v${i}`, changes }));
      expect(res.status).toBe(201);
    }
    const pages = await allPages('/v1/deploys', 'deploys');
    expect(pages.map((p) => p.items.length)).toEqual([2, 2, 1]);
    for (const page of pages) expect(page.bytes).toBeLessThan(1024 * 1024);
    expect(pages.flatMap((p) => p.items.map((d) => d.id)).sort()).toEqual([
      'big-0',
      'big-1',
      'big-2',
      'big-3',
      'big-4',
    ]);
    // The single record is whole: the page bound never truncates one.
    const one = await api.get('/v1/deploys/big-0');
    expect(one.body.changes).toHaveLength(100);
  });

  it('GET /v1/alerts/{fingerprint}: 20 episodes a page by default, newest first', async () => {
    const fp = 'f1a9000000000001';
    for (let i = 0; i < 30; i++) {
      const startsAt = new Date(Date.parse('2026-11-25T00:00:00Z') + i * 600_000).toISOString();
      const endsAt = new Date(Date.parse(startsAt) + 60_000).toISOString();
      await api.post('/v1/alertmanager', amPayload([{ fingerprint: fp, startsAt, endsAt, status: 'resolved' }]));
    }
    const pages = await allPages(`/v1/alerts/${fp}`, 'episodes');
    expect(pages.map((p) => p.items.length)).toEqual([20, 10]);
    const starts = pages.flatMap((p) => p.items.map((e) => e.startsAt as string));
    expect(new Set(starts).size).toBe(30);
    expect(starts).toEqual([...starts].sort().reverse());
  });

  it('GET /v1/alerts/{fingerprint}: the latest delivery attempts of each page, and how many earlier ones were left out', async () => {
    const fp = 'de11000000000001';
    await api.post('/v1/alertmanager', amPayload([{ fingerprint: fp, startsAt: '2026-11-26T11:50:00Z' }]));
    // PagerDuty down for a long time: 150 attempts, each rescheduled a millisecond later.
    let due = clock.now();
    for (let i = 1; i <= 150; i++) {
      const [item] = await h.store.claimDue({ owner: 'test', now: due, limit: 1, leaseMs: 30_000 });
      if (!item) throw new Error('the page is due again');
      const attempt = { at: due, channel: 'pagerduty', outcome: 'retry' as const, detail: `try ${i}`, durationMs: 1 };
      due += 1;
      expect(await h.store.recordAttempt(item, [attempt], { retryAt: due })).toEqual({ recorded: true });
    }
    const episode = (await api.get(`/v1/alerts/${fp}`)).body.episodes[0];
    expect(episode.deliveries).toHaveLength(100);
    expect(episode.deliveries[0].detail).toBe('try 51');
    expect(episode.deliveries[99].detail).toBe('try 150');
    expect(episode.deliveriesNotShown).toBe(50);
    const fewer = (await api.get(`/v1/alerts/${fp}?deliveries=10`)).body.episodes[0];
    expect(fewer.deliveries.map((d: { detail: string }) => d.detail)[0]).toBe('try 141');
    expect(fewer.deliveriesNotShown).toBe(140);
  });

  it('GET /v1/people/unmapped: 100 a page by default, most frequent first', async () => {
    for (let i = 0; i < 150; i++) {
      for (let n = 0; n <= i % 3; n++) await h.store.recordUnmapped(`dev${i}`, 'no_email', clock.now() + i);
    }
    const pages = await allPages('/v1/people/unmapped', 'people');
    expect(pages.map((p) => p.items.length)).toEqual([100, 50]);
    const people = pages.flatMap((p) => p.items);
    expect(new Set(people.map((p) => p.who)).size).toBe(150);
    const counts = people.map((p) => p.count as number);
    expect(counts).toEqual([...counts].sort((a, b) => b - a));
  });

  it('GET /v1/deploys/{id}/verdict: lists the first 100 alerts that fail a rollout, and counts the rest', async () => {
    await api.post('/v1/deploys', designDeploy({ at: '2026-11-26T11:50:00Z' }));
    const alerts = Array.from({ length: 150 }, (_, i) => ({
      fingerprint: `5707${i.toString(16).padStart(12, '0')}`,
      startsAt: '2026-11-26T11:55:00Z',
    }));
    expect((await api.post('/v1/alertmanager', amPayload(alerts))).status).toBe(200);
    const verdict = (await api.get('/v1/deploys/gha-run-8812731/verdict')).body;
    expect(verdict.verdict).toBe('failing');
    expect(verdict.alerts).toHaveLength(100);
    expect(verdict.alertsNotShown).toBe(50);
    expect(verdict.notJudgedNotShown).toBe(0);
  });

  it.each([
    ['a cursor that was never a next link', '/v1/deploys?cursor=bm9wZQ', ['cursor']],
    ['a cursor of another list', '/v1/alerts/f1a9000000000001?cursor=WzEsMiwiYSJd', ['cursor']],
    ['a limit over the maximum', '/v1/people/unmapped?limit=5000', ['limit']],
    ['an episode page larger than 100', '/v1/alerts/f1a9000000000001?limit=101', ['limit']],
    ['a bad cursor and a bad limit, both listed', '/v1/stats?cursor=x&limit=0', ['cursor', 'limit']],
  ])('rejects %s with 400 naming the parameter', async (_intent, path, paths) => {
    const res = await api.get(path);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_query');
    expect(res.body.details.problems.map((p: { path: string }) => p.path).sort()).toEqual(paths);
  });
});
