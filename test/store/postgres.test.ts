import pg from 'pg';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { compose } from '../../src/compose.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { migrate } from '../../src/store/postgres/connection.js';
import { MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { openPostgresStore } from '../../src/store/postgres/store.js';
import { StorageError, type Store } from '../../src/store/store.js';
import { amPayload, TOKEN } from '../support/harness.js';
import { createTestDatabase, queryDatabase, type TestDatabase } from '../support/postgres.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { alert, decision, deploy, GROUP, T0 } from './contract.js';

// What the PostgreSQL adapter adds to the contract: migrations shared by replicas, and a database that goes away
// and comes back (through a TCP relay the test cuts), which must cost 503s and nothing else.

const PASSWORD = 'hunter2-never-logged';
const silent = createLogger('silent');

describe('PostgreSQL store', () => {
  let db: TestDatabase | undefined;
  let proxy: TcpProxy | undefined;
  const stores: Store[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    await proxy?.close();
    proxy = undefined;
    await db?.drop();
    db = undefined;
  });
  const open = async (url: string, log = silent) => {
    const store = await openPostgresStore({ url, poolSize: 4, connectTimeoutMs: 2000, log });
    stores.push(store);
    return store;
  };
  /** The test database's URL through the relay, with a password (trust auth ignores it) that must never show. */
  const relayed = async () => {
    db = await createTestDatabase();
    proxy = await startTcpProxy({
      host: '127.0.0.1',
      port: new URL(db.url).port ? Number(new URL(db.url).port) : 5432,
    });
    const url = new URL(db.url);
    url.password = PASSWORD;
    url.port = String(proxy.port);
    return url.toString();
  };

  it('migrates once when three replicas start on an empty database together', async () => {
    db = await createTestDatabase();
    const url = db.url;
    await Promise.all([open(url), open(url), open(url)]);
    const [row] = await queryDatabase<{ version: number }>(url, 'SELECT version FROM schema_version');
    expect(row?.version).toBe(MIGRATIONS.length);
    expect(await queryDatabase(url, 'SELECT * FROM heartbeat')).toHaveLength(1);
  });

  it('refuses a database that a newer changepager migrated, and leaves it as it is', async () => {
    db = await createTestDatabase();
    await open(db.url);
    await queryDatabase(db.url, 'UPDATE schema_version SET version = $1', [MIGRATIONS.length + 1]);
    await expect(open(db.url)).rejects.toThrow(/newer than this changepager/);
    const pool = new pg.Pool({ connectionString: db.url });
    await expect(migrate(pool)).rejects.toThrow(/newer/);
    await pool.end();
    const [row] = await queryDatabase<{ version: number }>(db.url, 'SELECT version FROM schema_version');
    expect(row?.version).toBe(MIGRATIONS.length + 1);
  });

  it('answers any request on any replica: a login, a logout and a "not my change" hold on the other one', async () => {
    db = await createTestDatabase();
    const [a, b] = [await open(db.url), await open(db.url)];
    const session = { idHash: 'c'.repeat(64), tokenName: 'ops', createdAt: T0, expiresAt: T0 + 3_600_000 };
    await a.createSession(session, T0);
    expect(await b.getSession(session.idHash, T0 + 1)).toEqual(session);
    await b.deleteSession(session.idHash);
    expect(await a.getSession(session.idHash, T0 + 2)).toBeUndefined();
    await a.recordAlerts(GROUP, [{ alert: alert('f1', T0), decision: decision() }], T0);
    const id = (await b.alertHistory('f1'))[0]?.episode.id as number;
    expect(await b.recordNotMine(id, 'alice@example.com', T0 + 1)).toEqual({ recorded: true });
    expect(await a.recordNotMine(id, 'alice@example.com', T0 + 2)).toEqual({ recorded: false });
    expect((await a.alertHistory('f1'))[0]?.pages.map((p) => p.target.kind)).toEqual(['person', 'oncall']);
  });

  it('keeps answering when a newer replica adds a column under its prepared statements (a rolling upgrade)', async () => {
    db = await createTestDatabase();
    const store = await open(db.url);
    await store.saveDeploy(deploy());
    // Every connection of the pool prepares the statements that read deploys.
    await Promise.all(Array.from({ length: 8 }, () => store.getDeploy('d1')));
    await Promise.all(Array.from({ length: 8 }, () => store.saveDeploy(deploy())));
    await queryDatabase(db.url, 'ALTER TABLE deploys ADD COLUMN added_by_a_newer_version text');
    for (let i = 0; i < 8; i++) {
      expect((await store.getDeploy('d1'))?.id).toBe('d1');
      expect((await store.saveDeploy(deploy())).created).toBe(false);
    }
  });

  it('fails to open with a StorageError that names the host, never the password, when nothing listens', async () => {
    const url = await relayed();
    await proxy?.cut();
    const err = await open(url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(String((err as Error).message)).not.toContain(PASSWORD);
  });

  it('answers StorageError while the database is away, and works again once it is back, on the same store', async () => {
    const store = await open(await relayed());
    await store.ping();
    await proxy?.cut();
    await expect(store.ping()).rejects.toBeInstanceOf(StorageError);
    await expect(store.getDeploy('x')).rejects.toBeInstanceOf(StorageError);
    await proxy?.restore();
    await store.ping();
    expect(await store.getDeploy('x')).toBeUndefined();
  });

  it('over HTTP: 503 storage_unavailable and readyz 503 during the outage, the retry stored and paged after it, no password in any log line', async () => {
    const url = await relayed();
    const logs: string[] = [];
    const log = createLogger('debug', { write: (line: string) => logs.push(line) });
    const store = await open(url, log);
    const config = parseConfig(`database: { url_env: DB }\n`, {
      path: 'test.yaml',
      env: { CHANGEPAGER_TOKEN: TOKEN, DB: url },
    });
    const service = compose({ config, log, store });
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const alert = amPayload([{ fingerprint: 'aaaa000000000001', startsAt: '2026-11-26T11:09:00Z' }]);
    try {
      expect((await request(service.app).get('/readyz')).status).toBe(200);
      await proxy?.cut();
      const refused = await request(service.app).post('/v1/alertmanager').set(auth).send(alert);
      expect(refused.status).toBe(503);
      expect(refused.body.error).toBe('storage_unavailable');
      expect((await request(service.app).get('/readyz')).status).toBe(503);
      await service.metrics.refresh();
      expect((await request(service.app).get('/metrics')).text).toMatch(/^changepager_database_up 0$/m);
      await proxy?.restore();
      // Alertmanager sends the notification again: now it is stored, once, and its page delivered.
      expect((await request(service.app).post('/v1/alertmanager').set(auth).send(alert)).status).toBe(200);
      expect((await request(service.app).get('/readyz')).status).toBe(200);
      await service.metrics.refresh();
      expect((await request(service.app).get('/metrics')).text).toMatch(/^changepager_database_up 1$/m);
      await service.worker.drain();
      const history = await request(service.app).get('/v1/alerts/aaaa000000000001').set(auth);
      expect(history.body.episodes).toHaveLength(1);
      expect(history.body.episodes[0].deliveries.map((d: { outcome: string }) => d.outcome)).toEqual(['delivered']);
      expect(logs.join('\n')).not.toContain(PASSWORD);
    } finally {
      await service.worker.stop();
      await service.metrics.stop();
    }
  });
});
