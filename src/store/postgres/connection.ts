import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { type OutboxKind, StorageError } from '../store.js';
import { MIGRATIONS } from './migrations.js';

/** How to reach the database; the URL may carry a password, so it is never logged or put in an error. */
export interface PostgresOptions {
  url: string;
  poolSize: number;
  connectTimeoutMs: number;
  log: Logger;
}

/**
 * Where the URL points, without its user or password: what a log line or an error may say about it.
 * Throws (without the URL) when it is not a postgres:// URL.
 */
export function describeDatabase(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('database.url: not a URL');
  }
  return `postgres://${parsed.host}${parsed.pathname}`;
}

const INT8 = 20;
/** Longer than any statement of the store takes; a request held past it answers 503 and is sent again. */
const QUERY_TIMEOUT_MS = 30_000;
/**
 * Times are epoch milliseconds in bigints, and ids and counts are bigints too: all well inside 2^53, so they are
 * read as numbers, as the row mapping (src/store/rows.ts) expects. Set on this pool's own type table, not
 * pg's global one, so nothing else in the process is affected.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8 && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

export function connectionConfig(options: Pick<PostgresOptions, 'url' | 'connectTimeoutMs'>): pg.ClientConfig {
  return {
    connectionString: options.url,
    types,
    // A database that does not answer must fail the request fast (503, Alertmanager sends again), not hang it.
    connectionTimeoutMillis: options.connectTimeoutMs,
    // A server that vanished without closing the connection (a partition, a failed-over host) would hold a query,
    // and the request behind it, until the kernel gives up on the socket: past this it fails as unavailable, and
    // the connection is dropped.
    query_timeout: QUERY_TIMEOUT_MS,
    keepAlive: true,
    application_name: 'changepager',
  };
}

/** Connections of the delivery pool (claims and delivery records), besides `poolSize` for everything else. */
export const DELIVERY_POOL_SIZE = 4;

/**
 * A pool of connections. `durable: false` makes its commits return before their WAL is flushed: for claims and
 * delivery records, whose loss in a database crash costs a delivery made again (which the dedup key makes
 * harmless), never an accepted alert. Everything an HTTP answer vouches for goes through a durable pool.
 */
export function createPool(options: PostgresOptions, kind: { durable: boolean } = { durable: true }): pg.Pool {
  const pool = new pg.Pool({
    ...connectionConfig(options),
    max: kind.durable ? options.poolSize : DELIVERY_POOL_SIZE,
    idleTimeoutMillis: 30_000,
    ...(kind.durable ? {} : { options: '-c synchronous_commit=off' }),
  });
  // An idle connection that dies (a restart, a failover) is reported here; without a listener the process
  // would exit. The pool replaces it on the next checkout. The error object is not logged: it can carry the
  // connection parameters.
  pool.on('error', (err) => options.log.warn({ code: errorCode(err) }, 'database: an idle connection was lost'));
  // The pool listens to an idle client's first error only, and a dying connection can report more than one (the
  // server's "terminating connection" and then the socket's end), also after the pool has let go of it: each of
  // those would be an 'error' event without a listener, which ends the process. Every client keeps one that
  // ignores them; the pool's listener above and each checkout's own still see what matters.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** SQLSTATEs a transaction is simply run again for: a serialization failure or a deadlock. */
export function isRetryable(err: unknown): boolean {
  const code = errorCode(err);
  return code === '40001' || code === '40P01';
}

/**
 * A prepared statement whose result columns changed under it: a newer replica migrated the schema (added a
 * column) while this one kept the statement. The connection is dropped and the statement runs again on
 * another, prepared afresh.
 */
export function isStalePlan(err: unknown): boolean {
  return errorCode(err) === '0A000' && /cached plan must not change result type/.test((err as Error).message);
}

/** A racing insert lost on a unique key: run again, the transaction reads the winner's row. */
export function isUniqueViolation(err: unknown): boolean {
  return errorCode(err) === '23505';
}

const LOST_CONNECTION =
  /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|Client was closed|Cannot use a pool after calling end|Query read timeout/i;

/**
 * Whether an error means "the database cannot be reached or cannot take this now" rather than a bug: the
 * connection classes (08: connection, 53: out of resources such as too many clients, 57P0x: shut down or
 * restarting), a read-only database (25006: a standby after a failover), a serialization failure that retries did
 * not clear, and the socket errors and pool time-outs of the client itself.
 */
export function isUnavailable(err: unknown): boolean {
  const code = errorCode(err);
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) {
    return (
      code.startsWith('08') ||
      code.startsWith('53') ||
      code.startsWith('57P') ||
      code === '25006' ||
      code === '40001' ||
      code === '40P01'
    );
  }
  if (code?.startsWith('E')) return true; // ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, ENOTFOUND, …
  return LOST_CONNECTION.test((err as Error | undefined)?.message ?? '');
}

/** The StorageError callers see for an unavailable database: what failed, never the URL. */
export function toStorageError(err: unknown): StorageError {
  const code = errorCode(err);
  const message = (err as Error | undefined)?.message ?? String(err);
  return new StorageError(`database: ${code ? `${code}: ` : ''}${message}`, { cause: err });
}

/** One key for "the migrator": whoever holds it brings the schema up to date while the others wait. */
const MIGRATION_LOCK = "hashtextextended('changepager schema migrations', 0)";

/**
 * Brings the schema up to date under a session advisory lock, so that replicas starting together migrate once:
 * the first takes the lock and migrates, the others wait for it and then find nothing to do. A database that a
 * newer changepager migrated is refused.
 */
export async function migrate(pool: pg.Pool, migrations: readonly string[] = MIGRATIONS): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK})`);
    try {
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_version (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)',
      );
      await client.query('INSERT INTO schema_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING');
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_version WHERE id = 1');
      const current = rows[0]?.version ?? 0;
      if (current > migrations.length) {
        throw new Error(`database schema version ${current} is newer than this changepager (${migrations.length})`);
      }
      for (const [i, sql] of migrations.slice(current).entries()) {
        await client.query('BEGIN');
        try {
          await client.query(sql);
          await client.query('UPDATE schema_version SET version = $1 WHERE id = 1', [current + i + 1]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {});
          throw err;
        }
      }
      return migrations.length;
    } finally {
      await client.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`).catch(() => {});
    }
  } finally {
    client.release();
  }
}

export const WORK_CHANNEL = 'changepager_work';
const OUTBOX_KINDS: readonly OutboxKind[] = ['page', 'change', 'dm'];

/**
 * A wake-up's payload: the kinds of rows queued and who queued them, "page,dm@<sender>". The sender's own
 * workers were woken by its commit already (pipeline.ts onCommitted), so it ignores its own wake-ups.
 */
export function wakePayload(kinds: readonly OutboxKind[], sender: string): string {
  return `${[...kinds].sort().join(',')}@${sender}`;
}

/** The kinds a wake-up names; all of them when it names none this code knows (another version's). */
function kindsOf(payload: string): readonly OutboxKind[] {
  const names = payload.split('@')[0] ?? '';
  const kinds = names.split(',').filter((k): k is OutboxKind => (OUTBOX_KINDS as string[]).includes(k));
  return kinds.length > 0 ? kinds : OUTBOX_KINDS;
}

/**
 * Wakes this replica when another one commits work to deliver: a dedicated connection (LISTEN cannot share a
 * pooled one) listening on WORK_CHANNEL. Notifications are delivered on commit only, and those sent while the
 * connection is down are lost, so after every reconnect the listeners are called once: the worker's next claim
 * is the catch-up poll. Its slow poll stays as the safety net behind all of this.
 */
export class WorkListener {
  private readonly listeners = new Set<(kinds: readonly OutboxKind[]) => void>();
  private client: pg.Client | undefined;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = 250;

  /** Names this replica in its own wake-ups. */
  readonly sender = randomUUID().slice(0, 8);

  constructor(private readonly options: PostgresOptions) {}

  subscribe(listener: (kinds: readonly OutboxKind[]) => void): () => void {
    this.listeners.add(listener);
    if (!this.client && !this.retryTimer && !this.closed) void this.connect();
    return () => this.listeners.delete(listener);
  }

  private notify(kinds: readonly OutboxKind[]): void {
    for (const listener of this.listeners) listener(kinds);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client(connectionConfig(this.options));
    this.client = client;
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      client.removeAllListeners('notification');
      client.end().catch(() => {});
      if (this.client === client) this.client = undefined;
      this.scheduleReconnect();
    };
    client.on('error', (err) => {
      this.options.log.warn({ code: errorCode(err) }, 'database: the wake-up connection was lost; reconnecting');
      onLost();
    });
    client.on('end', onLost);
    client.on('notification', (message) => {
      const payload = message.payload ?? '';
      if (payload.endsWith(`@${this.sender}`)) return;
      this.notify(kindsOf(payload));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${WORK_CHANNEL}`);
      this.retryMs = 250;
      // Whatever was committed while this connection was away: look once, at every kind.
      this.notify(OUTBOX_KINDS);
    } catch (err) {
      if (!this.closed) {
        this.options.log.warn({ code: errorCode(err) }, 'database: cannot listen for wake-ups yet; retrying');
      }
      onLost();
    }
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, 5000);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => {});
    }
  }
}
