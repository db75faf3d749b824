import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite/store.js';
import type { ClaimedItem } from '../../src/store/store.js';
import { amPayload, createHarness, designDeploy, fakeClock, type Harness, TOKEN } from '../support/harness.js';

const auth = { Authorization: `Bearer ${TOKEN}` };

describe('SQLite store', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'changepager-store-'));
    dirs.push(d);
    return d;
  };

  it('finds every deploy, episode, decision, page and delivery again after the file is closed and reopened', async () => {
    const dir = tempDir();
    const clock = fakeClock('2026-11-26T11:20:00Z');
    const first = createHarness({ dir, now: clock.now });
    await request(first.app).post('/v1/deploys').set(auth).send(designDeploy());
    await request(first.app)
      .post('/v1/alertmanager')
      .set(auth)
      .send(amPayload([{ fingerprint: 'ffff000000000001', startsAt: '2026-11-26T11:09:00Z' }]));
    await first.worker.drain();
    const before = (await request(first.app).get('/v1/alerts/ffff000000000001').set(auth)).body;
    await first.close();

    const second = createHarness({ dir, now: clock.now });
    const after = (await request(second.app).get('/v1/alerts/ffff000000000001').set(auth)).body;
    expect(after).toEqual(before);
    expect(after.episodes[0].decision.targets).toEqual([{ kind: 'person', email: 'alice@example.com' }]);
    expect(after.episodes[0].deliveries).toHaveLength(1);
    expect((await request(second.app).get('/v1/deploys/gha-run-8812731').set(auth)).body.version).toBe(
      '2026.11.26-3f2a9c1',
    );
    await second.close();
  });

  it('keeps an undelivered page in the outbox across a restart, so it is delivered after it', async () => {
    const dir = tempDir();
    const clock = fakeClock('2026-11-26T11:20:00Z');
    const first = createHarness({ dir, now: clock.now });
    await request(first.app)
      .post('/v1/alertmanager')
      .set(auth)
      .send(amPayload([{ fingerprint: 'ffff000000000002', startsAt: '2026-11-26T11:09:00Z' }]));
    await first.close(); // never drained: as if the process died after the 2xx

    const second = createHarness({ dir, now: clock.now });
    expect((await second.store.outboxStats(clock.now())).depth).toBe(1);
    await second.worker.drain();
    const history = (await request(second.app).get('/v1/alerts/ffff000000000002').set(auth)).body;
    expect(history.episodes[0].deliveries).toEqual([
      expect.objectContaining({ outcome: 'delivered', detail: 'trigger logged' }),
    ]);
    expect((await second.store.outboxStats(clock.now())).depth).toBe(0);
    await second.close();
  });

  it('keeps lastSeenAt to the minute, so a repeat usually writes nothing', async () => {
    const clock = fakeClock('2026-11-26T11:20:00Z');
    const h = createHarness({ dir: tempDir(), now: clock.now });
    const send = () =>
      request(h.app)
        .post('/v1/alertmanager')
        .set(auth)
        .send(amPayload([{ fingerprint: 'ffff000000000003', startsAt: '2026-11-26T11:09:00Z' }]));
    const lastSeen = async () =>
      (await request(h.app).get('/v1/alerts/ffff000000000003').set(auth)).body.episodes[0].lastSeenAt;
    await send();
    clock.advance(30_000);
    expect((await send()).body).toMatchObject({ repeats: 1 });
    expect(await lastSeen()).toBe('2026-11-26T11:20:00.000Z');
    clock.advance(30_000);
    await send();
    expect(await lastSeen()).toBe('2026-11-26T11:21:00.000Z');
    await h.close();
  });

  it('refuses a second instance on the same file, naming the first, and opens it once the first has closed', async () => {
    const dir = tempDir();
    const clock = fakeClock('2026-11-26T11:20:00Z');
    const first = createHarness({ dir, now: clock.now });
    let second: Harness | undefined;
    try {
      expect(() => createHarness({ dir, now: clock.now })).toThrow(
        new RegExp(`is in use by another changepager \\(pid ${process.pid} on host ${hostname()}, since \\d{4}-`),
      );
      // The refused instance changed nothing: the first one still takes writes.
      expect((await request(first.app).post('/v1/deploys').set(auth).send(designDeploy())).status).toBe(201);
      await first.close();
      second = createHarness({ dir, now: clock.now });
      expect((await request(second.app).get('/v1/deploys/gha-run-8812731').set(auth)).status).toBe(200);
    } finally {
      await first.close();
      await second?.close();
    }
  });

  it('refuses a second instance that reaches the same database through a symlink', async () => {
    const dir = tempDir();
    const path = join(dir, 'changepager.db');
    const first = openSqliteStore(path);
    try {
      const elsewhere = tempDir();
      symlinkSync(path, join(elsewhere, 'linked.db'));
      expect(() => openSqliteStore(join(elsewhere, 'linked.db'))).toThrow(/is in use by another changepager/);
    } finally {
      await first.close();
    }
  });

  it('releases the lock when opening fails, so a corrected start is not refused', async () => {
    const path = join(tempDir(), 'db.sqlite');
    await openSqliteStore(path).close();
    const Database = (await import('better-sqlite3')).default;
    const raw = new Database(path);
    raw.pragma('user_version = 999');
    raw.close();
    expect(() => openSqliteStore(path)).toThrow(/schema version 999 is newer/);
    expect(() => openSqliteStore(path)).toThrow(/schema version 999 is newer/); // not "in use"
  });

  it('runs migrations once and refuses a database from a newer changepager', async () => {
    const path = join(tempDir(), 'db.sqlite');
    await openSqliteStore(path).close();
    await openSqliteStore(path).close(); // second open: nothing to migrate, no error
    const Database = (await import('better-sqlite3')).default;
    const raw = new Database(path);
    raw.pragma('user_version = 999');
    raw.close();
    expect(() => openSqliteStore(path)).toThrow(/schema version 999 is newer/);
  });

  it('finds correlation candidates with one index seek (the query plan uses the service/time index)', async () => {
    const Database = (await import('better-sqlite3')).default;
    const path = join(tempDir(), 'db.sqlite');
    await openSqliteStore(path).close();
    const raw = new Database(path);
    const plan = raw
      .prepare(
        'EXPLAIN QUERY PLAN SELECT * FROM deploys WHERE service = ? AND environment = ? AND at BETWEEN ? AND ? ORDER BY at DESC',
      )
      .all('checkout', 'production', 0, 1) as { detail: string }[];
    raw.close();
    expect(plan.map((p) => p.detail).join('\n')).toMatch(/SEARCH deploys USING INDEX deploys_by_service_time/);
  });
  it('fsyncs every commit that answers a sender; a commit of delivery records alone leaves that to the next', async () => {
    // What the store asks of SQLite: synchronous=NORMAL for one commit, then FULL again.
    const pragma = vi.spyOn(Database.prototype, 'pragma');
    const synchronous = () =>
      pragma.mock.calls.map(([sql]) => sql).filter((sql) => sql.replace(/\s/g, '').startsWith('synchronous='));
    const clock = fakeClock('2026-11-26T11:20:00Z');
    const h = createHarness({ dir: tempDir(), now: clock.now });
    try {
      expect(synchronous()).toEqual(['synchronous = FULL']); // as opened
      await request(h.app).post('/v1/deploys').set(auth).send(designDeploy()).expect(201);
      await request(h.app)
        .post('/v1/alertmanager')
        .set(auth)
        .send(amPayload([{ fingerprint: 'ffff000000000009', startsAt: '2026-11-26T11:09:00Z' }]))
        .expect(200);
      expect(synchronous()).toEqual(['synchronous = FULL']); // the deploy and the alert: fsynced before the 2xx

      await h.worker.drain(); // the page goes to the log, and its delivery record is written alone
      expect(synchronous()).toEqual(['synchronous = FULL', 'synchronous = NORMAL', 'synchronous = FULL']);
      const history = (await request(h.app).get('/v1/alerts/ffff000000000009').set(auth)).body;
      expect(history.episodes[0].deliveries).toHaveLength(1);

      // A delivery record in the same group commit as a write that answers a sender is fsynced with it.
      await request(h.app)
        .post('/v1/alertmanager')
        .set(auth)
        .send(amPayload([{ fingerprint: 'ffff00000000000a', startsAt: '2026-11-26T11:10:00Z' }]))
        .expect(200);
      const [item] = await h.store.claimDue({ owner: 'test', now: clock.now(), limit: 1, leaseMs: 60_000 });
      const attempt = {
        at: clock.now(),
        channel: 'log',
        outcome: 'delivered' as const,
        detail: 'logged',
        durationMs: 1,
      };
      const before = synchronous().length;
      const [recorded] = await Promise.all([
        h.store.recordAttempt(item as ClaimedItem, [attempt], {}),
        h.store.recordUnmapped('nobody@example.com', 'no_pagerduty_user', clock.now()),
      ]);
      expect(recorded).toEqual({ recorded: true });
      expect(synchronous().slice(before)).toEqual([]);
    } finally {
      pragma.mockRestore();
      await h.close();
    }
  });
});
