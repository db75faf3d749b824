import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { openSqliteThread } from '../../src/store/sqlite/thread.js';
import { StorageError, type Store } from '../../src/store/store.js';
import { alert, decision, deploy, GROUP, T0 } from './contract.js';

// What the database thread adds to the SQLite store: opening and refusing happen before the service listens,
// errors cross the thread as the kind callers act on, and calls made together share commits without mixing up
// their answers.
const log = createLogger('silent');

describe('the SQLite database thread', () => {
  const dirs: string[] = [];
  const stores: Store[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const dbPath = () => {
    const d = mkdtempSync(join(tmpdir(), 'changepager-thread-'));
    dirs.push(d);
    return join(d, 'changepager.db');
  };
  const open = async (path: string) => {
    const store = await openSqliteThread(path, log);
    stores.push(store);
    return store;
  };

  it('when the thread dies, fails the call in flight and every later one as storage errors, once logged as fatal', async () => {
    const path = dbPath();
    const lines: string[] = [];
    const lost: Error[] = [];
    const store = await openSqliteThread(
      path,
      createLogger('info', { write: (line: string) => lines.push(line) }),
      (reason) => lost.push(reason),
      new URL('../fixtures/dying-database-thread.mjs', import.meta.url),
    );
    stores.push(store);

    const inFlight = store.getDeploy('d1').catch((err: unknown) => err);
    const error = await inFlight;
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toBe('database: the database thread exited (code 3)');
    // Later calls fail at once, the same way: a 503 that Alertmanager retries, never a hang.
    await expect(store.saveDeploy(deploy({ id: 'd2' }))).rejects.toThrow(error as Error);
    expect(lost).toEqual([error]);
    const fatal = lines.map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string } });
    expect(fatal.filter((l) => l.level === 60)).toEqual([
      expect.objectContaining({
        msg: 'the database thread stopped; every store call now fails',
        err: expect.objectContaining({ message: 'database: the database thread exited (code 3)' }),
      }),
    ]);
    // Closing gives the database back: the next start is not refused as "in use".
    await store.close();
    await open(path);
  });

  it('refuses a second instance on the same file, naming this process, before starting a thread', async () => {
    const path = dbPath();
    await open(path);
    await expect(openSqliteThread(path, log)).rejects.toThrow(
      new RegExp(`is in use by another changepager \\(pid ${process.pid} on host ${hostname()}, since \\d{4}-`),
    );
  });

  it('refuses a database from a newer changepager with the thread’s own message, and lets a corrected start in', async () => {
    const path = dbPath();
    await (await openSqliteThread(path, log)).close();
    const raw = new Database(path);
    raw.pragma('user_version = 999');
    raw.close();
    await expect(openSqliteThread(path, log)).rejects.toThrow(/schema version 999 is newer/);
    await expect(openSqliteThread(path, log)).rejects.toThrow(/schema version 999 is newer/); // not "in use"
  });

  it('answers calls made together each with its own result, and what one stored the next one reads', async () => {
    const store = await open(dbPath());
    const deploys = Array.from({ length: 50 }, (_, i) =>
      deploy({ id: `d${i}`, service: `svc-${i % 5}`, version: `v${i}`, at: T0 + i }),
    );
    const saved = await Promise.all(deploys.map((d) => store.saveDeploy(d)));
    expect(saved.map((s) => s.deploy.id)).toEqual(deploys.map((d) => d.id));
    expect(saved.every((s) => s.created)).toBe(true);
    expect((await store.getDeploy('d17'))?.version).toBe('v17');

    const a = alert('ffff000000000001', T0 + 9 * 60_000);
    const counts = await store.recordAlerts(GROUP, [{ alert: a, decision: decision() }], T0 + 10 * 60_000);
    expect(counts.newEpisodes).toBe(1);
    const known = await store.knownEpisodes([a]);
    expect(known.size).toBe(1); // a Map crosses the thread as a Map
  });

  it('fails every call after close with a storage error, so a request during shutdown is retried, not a bug', async () => {
    const store = await openSqliteThread(dbPath(), log);
    await store.close();
    await expect(store.getDeploy('d1')).rejects.toBeInstanceOf(StorageError);
    await expect(store.ping()).rejects.toThrow(/the database is closed/);
    await store.close(); // twice: nothing happens
  });
});
