import { createHash } from 'node:crypto';
import type pg from 'pg';
import { kindOf, subjectOf } from '../../core/change.js';
import type { EvidenceMode } from '../../core/comparisons.js';
import { deployCandidates } from '../../core/correlate.js';
import { type EvidenceEffect, type EvidenceSeries, evidenceArrived } from '../../core/evidence-route.js';
import type { Evidence, EvidenceVerdict } from '../../core/judge.js';
import {
  type AlertWrite,
  afterEvidenceNeeds,
  episodeKey,
  type GroupInfo,
  oncallSlot,
  parseTargetKey,
  planAfterEvidence,
  planAlertWrites,
  planJoinOncall,
  planRollback,
  queuedKinds,
  type StoredEpisode,
  type StoredPage,
  slotKey,
  targetKey,
  type WriteNeeds,
  type WriteOp,
  type WriteSnapshot,
  writeNeeds,
} from '../../core/plan.js';
import { type DecidedEpisode, type HygieneFacts, leadTimeMs } from '../../core/stats.js';
import { takesTurns } from '../../core/turns.js';
import type {
  Alert,
  AlertStatus,
  Change,
  ChangeKind,
  CodeHostName,
  CodeHostSource,
  Deploy,
  ReasonCode,
} from '../../core/types.js';
import {
  codeFacts,
  decisionRow,
  deployRow,
  type Row,
  toDelivery,
  toDeploy,
  toDm,
  toEpisode,
  toOutboxItem,
  toPage,
  toRolledBack,
  toSummary,
} from '../rows.js';
import {
  ALL_KINDS,
  type AttemptRecord,
  type CandidateQuery,
  type Claim,
  type ClaimedItem,
  type DeliveryRecord,
  type DeployQuery,
  type DmContext,
  type EpisodeHistory,
  type HistoryQuery,
  type HygieneCursor,
  type HygieneQuery,
  type OutboxKind,
  type PageDeliveryRecord,
  type PageStatus,
  type RecordedAlerts,
  rowSubject,
  type SessionRecord,
  StorageError,
  type Store,
  type TimelineQuery,
  type UnmappedKey,
} from '../store.js';
import {
  createPool,
  isRetryable,
  isStalePlan,
  isUnavailable,
  isUniqueViolation,
  migrate,
  type PostgresOptions,
  toStorageError,
  WORK_CHANNEL,
  WorkListener,
  wakePayload,
} from './connection.js';

/** How many of the oldest due outbox rows pages and DMs take turns among (see claimDue). */
const TURN_CANDIDATES = 1000;
/** Rounds of claimDue: a round whose candidates another replica took first looks past them once more. */
const CLAIM_ROUNDS = 3;
/** Runs of a transaction that lost a race (a unique key, a deadlock, a serialization failure). */
const TRANSACTION_TRIES = 5;
/** Runs of a statement that met stale prepared plans: each one drops one connection that held it. */
const STALE_PLAN_TRIES = 20;

/**
 * Opens the PostgreSQL store: a pool, the schema brought up to date (once across replicas), and the wake-up
 * listener. Fails when the database cannot be reached at start: a replica that cannot migrate must not serve.
 */
export async function openPostgresStore(options: PostgresOptions): Promise<Store> {
  const pool = createPool(options);
  try {
    await migrate(pool);
  } catch (err) {
    await pool.end().catch(() => {});
    throw isUnavailable(err) ? toStorageError(err) : err;
  }
  const delivery = createPool(options, { durable: false });
  return translateErrors(new PostgresStore(pool, delivery, new WorkListener(options)));
}

/**
 * Connection-class failures (the database restarting, unreachable, out of connections, read-only after a
 * failover) become StorageError, which the API answers 503 storage_unavailable and Alertmanager retries; any
 * other error is a bug and stays as it is. After close() every call fails as retryable.
 */
function translateErrors(store: PostgresStore): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || prop === 'onWork') return value;
      return async (...args: unknown[]) => {
        if (target.closed && prop !== 'close') throw new StorageError('database: the store is closed');
        try {
          return await value.apply(target, args);
        } catch (err) {
          if (err instanceof StorageError) throw err;
          if (isUnavailable(err)) throw toStorageError(err);
          throw err;
        }
      };
    },
  });
}

/** A query runner: the pool, or the client of one transaction. */
type Queryable = pg.Pool | pg.PoolClient;

/**
 * Runs a statement as a named prepared statement (its name a hash of its text): each connection parses and plans
 * it once, not at every call, which is most of what the server spends on these short statements.
 */
async function run(db: Queryable, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const query = { name: `cp_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`, text: sql, values: params };
  if (!isPool(db)) return db.query(query);
  // On the pool: a connection of its own, so that one that failed, or holds a stale plan, is destroyed.
  for (let attempt = 1; ; attempt++) {
    const client = await db.connect();
    let broken: Error | undefined;
    const onError = (err: Error) => {
      broken = err;
    };
    client.on('error', onError);
    try {
      return await client.query(query);
    } catch (err) {
      if (isUnavailable(err) || isStalePlan(err)) broken = err as Error;
      if (!isStalePlan(err) || attempt >= STALE_PLAN_TRIES) throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }
}

function isPool(db: Queryable): db is pg.Pool {
  return 'totalCount' in db;
}

async function rows(db: Queryable, sql: string, params: unknown[] = []): Promise<Row[]> {
  return (await run(db, sql, params)).rows as Row[];
}

async function one(db: Queryable, sql: string, params: unknown[] = []): Promise<Row | undefined> {
  return (await rows(db, sql, params))[0];
}

/** Positional parameters for SQL whose shape depends on which filters are set. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** The per-group lock: HA twins of one Alertmanager group, sent to different replicas, take turns. */
const GROUP_LOCK = 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))';

const EPISODE_COLUMNS = 'id, fingerprint, starts_at, starts_at_ms, status, last_seen_at';

class PostgresStore implements Store {
  closed = false;

  constructor(
    private readonly pool: pg.Pool,
    /** Claims and delivery records: their commits need no flush (createPool), and they never queue behind ingest. */
    private readonly delivery: pg.Pool,
    private readonly wake: WorkListener,
  ) {}

  /**
   * Runs `work` in one transaction on one pooled connection. A transaction that lost a race (a unique key a twin
   * inserted first, a deadlock, a serialization failure) runs again from the start: it then reads what the
   * winner wrote. A connection that failed is destroyed rather than returned to the pool.
   */
  private async tx<T>(work: (db: pg.PoolClient) => Promise<T>, opts: { groupLock?: string } = {}): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      // A checked-out client whose connection dies between two queries (the server restarting) reports it as an
      // 'error' event, which would end the process without a listener; the next query then fails, and the
      // client is destroyed on release.
      const onError = (err: Error) => {
        broken = err;
      };
      client.on('error', onError);
      try {
        // With a group lock, BEGIN and the lock go in one round trip (the simple protocol takes both at once);
        // the lock is its own statement, so the reads after it see whatever the previous holder committed.
        await client.query(
          opts.groupLock === undefined
            ? 'BEGIN'
            : `BEGIN; SELECT pg_advisory_xact_lock(hashtextextended(${client.escapeLiteral(opts.groupLock)}, 0))`,
        );
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        if ((isUnavailable(err) && !isRetryable(err)) || isStalePlan(err)) broken = err as Error;
        else await client.query('ROLLBACK').catch(() => {});
        const again = isRetryable(err) || isUniqueViolation(err) || isStalePlan(err);
        if (!again || attempt >= (isStalePlan(err) ? STALE_PLAN_TRIES : TRANSACTION_TRIES)) throw err;
      } finally {
        client.off('error', onError);
        client.release(broken);
      }
    }
  }

  onWork(listener: (kinds: readonly OutboxKind[]) => void): void {
    this.wake.subscribe(listener);
  }

  /** Settles with a transaction's result once it has committed, and wakes the replicas for what it queued. */
  private async afterCommit<T>(committed: Promise<{ result: T; enqueued: readonly OutboxKind[] }>): Promise<T> {
    const { result, enqueued } = await committed;
    if (enqueued.length > 0) this.announce(enqueued);
    return result;
  }

  private announcing = false;
  /** Kinds committed while a wake-up was on its way: the next one names them. */
  private readonly toAnnounce = new Set<OutboxKind>();

  /**
   * Tells the other replicas that work was committed (this one's workers were kicked by the pipeline): NOTIFY,
   * in a transaction of its own, after the write has committed. Not inside the write: PostgreSQL serializes the commits of transactions that
   * notify (a database-wide lock held through the commit's flush), which would undo its group commit and cap
   * ingest at one flush per request. This one needs no flush (a lost wake-up costs one poll), and one at a time
   * per replica is enough: commits that arrive meanwhile share the next one. The payload names the kinds of
   * rows queued, so that only the lanes that take them wake.
   */
  private announce(kinds: readonly OutboxKind[]): void {
    for (const kind of kinds) this.toAnnounce.add(kind);
    if (this.announcing || this.closed) return;
    this.announcing = true;
    // Kinds are fixed words and the sender a hex id: safe inside the literal.
    const payload = wakePayload([...this.toAnnounce], this.wake.sender);
    this.toAnnounce.clear();
    this.pool
      .query(`BEGIN; SET LOCAL synchronous_commit TO off; NOTIFY ${WORK_CHANNEL}, '${payload}'; COMMIT`)
      .catch(() => {
        // Unreachable now: the replicas' polls find the work.
      })
      .finally(() => {
        this.announcing = false;
        if (this.toAnnounce.size > 0) this.announce([]);
      });
  }

  // --- deploys ---------------------------------------------------------------------------------------------

  saveDeploy(deploy: Deploy, opts: { sendChangeEvent?: boolean; enqueue?: readonly OutboxKind[] } = {}) {
    return this.afterCommit(
      this.tx(async (db) => {
        const r = deployRow(deploy);
        const inserted = await one(
          db,
          `INSERT INTO deploys (id, service, environment, version, previous_version, stage, percent, hosts, at, received_at,
           changes, kind, flag, config, subject, change_count, host_count, rollback, lead_ms, source)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
         ON CONFLICT (id) DO NOTHING RETURNING id`,
          [
            r.id,
            r.service,
            r.environment,
            r.version,
            r.previous_version,
            r.stage,
            r.percent,
            r.hosts,
            r.at,
            r.received_at,
            r.changes,
            r.kind,
            r.flag,
            r.config,
            r.subject,
            r.change_count,
            r.host_count,
            r.rollback,
            r.lead_ms,
            r.source,
          ],
        );
        if (inserted) {
          const kinds: OutboxKind[] = [...(opts.sendChangeEvent ? ['change' as const] : []), ...(opts.enqueue ?? [])];
          const subjects: [OutboxKind, string, number?][] = kinds.map((kind) => [kind, deploy.id]);
          const undone = deploy.rollback?.of ?? [];
          if (undone.length > 0) {
            await run(
              db,
              `INSERT INTO rolled_back (deploy_id, rollback_id, at) SELECT unnest($1::text[]), $2, $3
               ON CONFLICT DO NOTHING`,
              [undone, deploy.id, deploy.at],
            );
            // What core/plan.ts planRollback reads: the pages and DMs of the alerts attributed to what it undid.
            const pages = await rows(
              db,
              `SELECT DISTINCT p.id, p.status, o.due_at FROM decisions x JOIN page_members m ON m.episode_id = x.episode_id
               JOIN pages p ON p.id = m.page_id LEFT JOIN outbox o ON o.kind = 'page' AND o.ref = p.id::text
               WHERE x.deploy_id = ANY($1::text[]) ORDER BY p.id`,
              [undone],
            );
            const dms = await rows(
              db,
              `SELECT dm.id, e.status, o.due_at FROM decisions x JOIN episodes e ON e.id = x.episode_id
               JOIN dms dm ON dm.episode_id = e.id LEFT JOIN outbox o ON o.kind = 'dm' AND o.ref = dm.id::text
               WHERE x.deploy_id = ANY($1::text[]) ORDER BY dm.id`,
              [undone],
            );
            const dueOf = (r: Row) => (r.due_at === null ? {} : { dueAt: Number(r.due_at) });
            const ops = planRollback(
              {
                pages: pages.map((r) => ({ id: Number(r.id), status: r.status as PageStatus, ...dueOf(r) })),
                dms: dms.map((r) => ({ id: Number(r.id), episodeStatus: r.status as AlertStatus, ...dueOf(r) })),
              },
              deploy.receivedAt,
            );
            for (const op of ops) if (op.op === 'enqueue') subjects.push([op.kind, String(op.id), op.dueAt]);
          }
          await enqueue(db, subjects, deploy.receivedAt);
          return { result: { created: true, deploy }, enqueued: [...new Set(subjects.map(([kind]) => kind))] };
        }
        const stored = toDeploy((await one(db, 'SELECT * FROM deploys WHERE id = $1', [deploy.id])) as Row);
        return { result: { created: false, deploy: stored }, enqueued: [] };
      }),
    );
  }

  async enrichDeploy(id: string, update: { changes: Change[]; source: CodeHostSource }) {
    // The lead time is the deploy's, now that its changes (and when they were merged) are known.
    const at = await one(this.pool, 'SELECT at FROM deploys WHERE id = $1', [id]);
    const lead = at === undefined ? undefined : leadTimeMs({ at: Number(at.at), changes: update.changes });
    const result = await run(
      this.pool,
      'UPDATE deploys SET changes = $1, change_count = $2, source = $3, lead_ms = $4 WHERE id = $5',
      [JSON.stringify(update.changes), update.changes.length, JSON.stringify(update.source), lead ?? null, id],
    );
    return { updated: result.rowCount === 1 };
  }

  async getDeploy(id: string) {
    const row = await one(this.pool, 'SELECT * FROM deploys WHERE id = $1', [id]);
    return row && toDeploy(row);
  }

  async deploysBefore(q: { service: string; environment: string; at: number; limit: number }) {
    const found = await rows(
      this.pool,
      `SELECT * FROM deploys WHERE service = $1 AND environment = $2 AND kind = 'deploy' AND at <= $3
       ORDER BY at DESC, received_at DESC LIMIT $4`,
      [q.service, q.environment, q.at, q.limit],
    );
    return found.map(toDeploy);
  }

  async rollbacksOf(deployIds: readonly string[]) {
    if (deployIds.length === 0) return [];
    const found = await rows(
      this.pool,
      `SELECT r.deploy_id, r.rollback_id, r.at, d.version FROM rolled_back r JOIN deploys d ON d.id = r.rollback_id
       WHERE r.deploy_id = ANY($1::text[]) ORDER BY r.at, r.deploy_id`,
      [deployIds],
    );
    return found.map(toRolledBack);
  }

  async findDeployCandidates(queries: readonly CandidateQuery[]) {
    if (queries.length === 0) return [];
    // One round trip for all the queries: for each, the deploys in its window, the first one after it and the
    // last one before it (used only when the window is empty), each part a seek on deploys_by_service_time.
    const found = await rows(
      this.pool,
      `SELECT q.i, c.* FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
         WITH ORDINALITY AS q(service, environment, from_at, to_at, i)
       CROSS JOIN LATERAL (
         (SELECT 'in' AS part, d.* FROM deploys d
            WHERE d.service = q.service AND d.environment = q.environment AND d.at BETWEEN q.from_at AND q.to_at)
         UNION ALL
         (SELECT 'after', d.* FROM deploys d
            WHERE d.service = q.service AND d.environment = q.environment AND d.at > q.to_at ORDER BY d.at ASC LIMIT 1)
         UNION ALL
         (SELECT 'before', d.* FROM deploys d
            WHERE d.service = q.service AND d.environment = q.environment AND d.at < q.from_at ORDER BY d.at DESC LIMIT 1)
       ) c`,
      [
        queries.map((q) => q.service),
        queries.map((q) => q.environment),
        queries.map((q) => q.from),
        queries.map((q) => q.to),
      ],
    );
    const byQuery = queries.map(() => [] as Row[]);
    for (const r of found) byQuery[Number(r.i) - 1]?.push(r);
    return byQuery.map((parts) => {
      const part = (name: string) => {
        const row = parts.find((r) => r.part === name);
        return row && toDeploy(row);
      };
      return deployCandidates({
        inWindow: parts.filter((r) => r.part === 'in').map(toDeploy),
        after: part('after'),
        before: part('before'),
      });
    });
  }

  async listDeploys(query: DeployQuery) {
    const p = new Params();
    const where: string[] = [];
    if (query.service !== undefined) where.push(`service = ${p.add(query.service)}`);
    if (query.environment !== undefined) where.push(`environment = ${p.add(query.environment)}`);
    if (query.since !== undefined) where.push(`at >= ${p.add(query.since)}`);
    const b = query.before;
    if (b) where.push(`(at, received_at, id) < (${p.add(b.at)}, ${p.add(b.receivedAt)}, ${p.add(b.id)})`);
    const sql = `SELECT * FROM deploys ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY at DESC, received_at DESC, id DESC LIMIT ${p.add(query.limit)}`;
    return (await rows(this.pool, sql, p.values)).map(toDeploy);
  }

  async rolloutOf(id: string, opts: { listLimit?: number } = {}) {
    const columns = opts.listLimit === undefined ? 'd.*' : deployColumns(opts.listLimit);
    const row = await one(this.pool, `SELECT ${columns} FROM deploys d WHERE d.id = $1`, [id]);
    if (!row) return undefined;
    const target = toDeploy(row);
    const key = [target.service, target.environment, kindOf(target), subjectOf(target)];
    // Walk away from the event in both directions until another version of the same subject shows up, a
    // batch at a time.
    const walk = async function* (direction: 'before' | 'after', db: Queryable) {
      let position: unknown[] = [target.at, target.receivedAt, target.id];
      for (;;) {
        const batch = await rows(db, rolloutWalk(direction, columns), [...key, ...position]);
        for (const r of batch) yield toDeploy(r);
        const last = batch.at(-1);
        if (batch.length < WALK_BATCH || !last) return;
        position = [last.at, last.received_at, last.id];
      }
    };
    const earlier: Deploy[] = [];
    for await (const d of walk('before', this.pool)) {
      if (d.version !== target.version) break;
      earlier.unshift(d);
    }
    const later: Deploy[] = [];
    let supersededBy: Deploy | undefined;
    for await (const d of walk('after', this.pool)) {
      if (d.version !== target.version) {
        supersededBy = d;
        break;
      }
      later.push(d);
    }
    const events = [...earlier, target, ...later];
    return supersededBy ? { events, supersededBy } : { events };
  }

  async episodesAttributedTo(deployIds: readonly string[]) {
    const sql = `SELECT e.*, d.* FROM decisions d JOIN episodes e ON e.id = d.episode_id
      WHERE d.deploy_id = ANY($1::text[]) ORDER BY e.starts_at_ms, e.id`;
    return (await rows(this.pool, sql, [deployIds])).map(toEpisode);
  }

  // --- ingest ----------------------------------------------------------------------------------------------

  async knownEpisodes(alerts: readonly Pick<Alert, 'fingerprint' | 'startsAt'>[]) {
    const found = await rows(
      this.pool,
      `SELECT e.fingerprint, e.starts_at, e.last_seen_at FROM episodes e
       JOIN unnest($1::text[], $2::text[]) AS k (fingerprint, starts_at)
         ON e.fingerprint = k.fingerprint AND e.starts_at = k.starts_at`,
      [alerts.map((a) => a.fingerprint), alerts.map((a) => a.startsAt)],
    );
    return new Map(
      found.map((r) => [
        episodeKey({ fingerprint: r.fingerprint as string, startsAt: r.starts_at as string }),
        { lastSeenAt: Number(r.last_seen_at) },
      ]),
    );
  }

  /**
   * Reads what the plan needs, plans, and writes the plan, in one transaction. Race-free across replicas: the
   * transaction first takes the advisory lock of its Alertmanager group, so HA twins of one notification sent to
   * different replicas run one after the other, and the second reads what the first wrote (its alerts are
   * repeats: one episode, one decision, one page). Rows shared beyond one group are guarded too: the pages read
   * are locked (FOR UPDATE), and an episode inserted by a racing transaction of another group fails on its unique
   * key, which runs the transaction again.
   */
  recordAlerts(group: GroupInfo, writes: readonly AlertWrite[], now: number): Promise<RecordedAlerts> {
    return this.afterCommit(
      this.tx(
        async (db) => {
          const snapshot = await readSnapshot(db, writeNeeds(group.groupKey, writes));
          const plan = planAlertWrites(group, writes, snapshot, now);
          await execute(db, plan.ops, now);
          const queued = queuedKinds(plan.ops);
          return { result: { ...plan.counts, queued }, enqueued: queued };
        },
        { groupLock: group.groupKey },
      ),
    );
  }

  recordNotMine(episodeId: number, by: string, now: number) {
    return this.afterCommit(
      this.tx(async (db) => {
        const row = await one(
          db,
          `SELECT d.feedback, e.status, e.group_key, e.fingerprint, e.starts_at, d.service, d.environment
         FROM decisions d JOIN episodes e ON e.id = d.episode_id WHERE d.episode_id = $1`,
          [episodeId],
        );
        if (!row || row.feedback !== null) return { result: { recorded: false }, enqueued: [] };
        await run(db, GROUP_LOCK, [row.group_key]);
        // Two clicks on two replicas at once: the second finds the feedback of the first.
        const set = await run(db, 'UPDATE decisions SET feedback = $1 WHERE episode_id = $2 AND feedback IS NULL', [
          JSON.stringify({ kind: 'not_my_change', by, at: now }),
          episodeId,
        ]);
        if (set.rowCount === 0) return { result: { recorded: false }, enqueued: [] };
        const episode = {
          id: episodeId,
          status: row.status as AlertStatus,
          groupKey: row.group_key as string,
          environment: row.environment as string,
          ...(row.service === null ? {} : { service: row.service as string }),
        };
        const snapshot = await readSnapshot(db, {
          episodeKeys: [{ fingerprint: row.fingerprint as string, startsAt: row.starts_at as string }],
          firingOf: [],
          slots: [oncallSlot(episode)],
          withLinks: true,
        });
        const ops = planJoinOncall(episode, snapshot);
        await execute(db, ops, now);
        return { result: { recorded: true }, enqueued: queuedKinds(ops) };
      }),
    );
  }

  // --- evidence --------------------------------------------------------------------------------------------

  async evidenceSubject(episodeId: number) {
    const row = await one(
      this.pool,
      'SELECT e.*, d.* FROM episodes e JOIN decisions d ON d.episode_id = e.id WHERE e.id = $1',
      [episodeId],
    );
    if (!row) return undefined;
    const episode = toEpisode(row);
    const deploy =
      episode.decision.deployId === undefined ? undefined : await this.getDeploy(episode.decision.deployId);
    return deploy ? { episode, deploy } : { episode };
  }

  /** Under the advisory lock of the episode's group, like every write that moves an episode between pages. */
  recordEvidence(
    episodeId: number,
    evidence: Evidence & { series?: EvidenceSeries[] },
    mode: EvidenceMode,
    now: number,
  ) {
    return this.afterCommit(
      this.tx(async (db) => {
        const first = await one(db, 'SELECT group_key FROM episodes WHERE id = $1', [episodeId]);
        if (!first) return { result: undefined, enqueued: [] };
        await run(db, GROUP_LOCK, [first.group_key]);
        const row = (await one(
          db,
          'SELECT e.*, d.* FROM episodes e JOIN decisions d ON d.episode_id = e.id WHERE e.id = $1',
          [episodeId],
        )) as Row;
        const episode = toEpisode(row);
        // Judged once: a second judging (a claim that expired mid-gather) changes nothing.
        const judged = episode.decision.evidence;
        if (judged) return { result: { effect: judged.effect, late: judged.late }, enqueued: [] };
        const personPages = (
          await rows(
            db,
            'SELECT p.* FROM pages p JOIN page_members m ON m.page_id = p.id WHERE m.episode_id = $1 ORDER BY p.id',
            [episodeId],
          )
        )
          .map(toPage)
          .filter((p) => p.target.kind === 'person' && p.status === 'open');
        // A page is still held for the evidence while no attempt has been made and its row is not due yet.
        const heldRows = await rows(
          db,
          `SELECT p.ref FROM unnest($1::text[]) AS p (ref)
           WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE kind = 'page' AND ref = p.ref)
             AND EXISTS (SELECT 1 FROM outbox WHERE kind = 'page' AND ref = p.ref AND due_at > $2)`,
          [personPages.map((p) => String(p.id)), now],
        );
        const held = personPages.length > 0 && heldRows.length === personPages.length;
        const outcome = evidenceArrived({ decision: episode.decision, evidence, mode, held, now });
        const d = outcome.decision;
        await run(
          db,
          `UPDATE decisions SET reason = $1, sentence = $2, targets = $3, responders = $4, evidence = $5
           WHERE episode_id = $6`,
          [
            d.reason,
            d.sentence,
            JSON.stringify(d.targets),
            JSON.stringify(d.responders),
            JSON.stringify(outcome.evidence),
            episodeId,
          ],
        );
        const { episode: where, slots } = afterEvidenceNeeds(episode, personPages);
        const snapshot = await readSnapshot(db, { episodeKeys: [], firingOf: [], slots });
        const dms = (await rows(db, 'SELECT id FROM dms WHERE episode_id = $1 ORDER BY id', [episodeId])).map(
          (r) => r.id as number,
        );
        const ops = planAfterEvidence(
          where,
          { personPages: personPages.map((p) => p.id), dms, reroute: outcome.reroute },
          snapshot,
        );
        await execute(db, ops, now);
        return {
          result: { effect: outcome.evidence.effect, late: outcome.evidence.late },
          enqueued: queuedKinds(ops),
        };
      }),
    );
  }

  // --- outbox ----------------------------------------------------------------------------------------------

  /**
   * Claims in two steps: pick the candidates in delivery order (pages first, DMs in turns by episode, oldest
   * first), then take those still free with FOR UPDATE SKIP LOCKED and set the lease, so two replicas claiming at
   * the same moment never block each other nor get the same row. A candidate another replica took meanwhile is
   * skipped, and the next round looks past it.
   */
  async claimDue(claim: Claim): Promise<ClaimedItem[]> {
    const { owner, now, limit, leaseMs, kinds = ALL_KINDS } = claim;
    const leaseUntil = now + leaseMs;
    const claimed: ClaimedItem[] = [];
    const tried: number[] = [];
    for (let round = 0; round < CLAIM_ROUNDS && claimed.length < limit; round++) {
      const wanted = limit - claimed.length;
      const candidates = (
        await rows(
          this.delivery,
          `WITH due AS (
             SELECT * FROM outbox
             WHERE due_at <= $1 AND kind = ANY($2::text[]) AND (lease_until IS NULL OR lease_until <= $1)
               AND id <> ALL($3::bigint[])
             ORDER BY kind = 'page' DESC, due_at, id LIMIT $4)
           SELECT due.id FROM (
             SELECT due.*, row_number() OVER (
               PARTITION BY CASE WHEN due.kind = 'dm' THEN 'episode:' || d.episode_id
                                 WHEN due.kind = 'page' THEN 'service:' || p.service
                                 ELSE due.kind || ':' || due.ref END
               ORDER BY due.due_at, due.id) AS turn
             FROM due LEFT JOIN dms d ON d.id = CASE WHEN due.kind = 'dm' THEN due.ref::bigint END
               LEFT JOIN pages p ON p.id = CASE WHEN due.kind = 'page' THEN due.ref::bigint END) due
           ORDER BY due.kind = 'page' DESC, turn, due.due_at, due.id LIMIT $5`,
          // Turns matter among pages (by service) and DMs (by episode): other lanes need no more candidates than
          // they can take.
          [now, kinds, tried, kinds.some(takesTurns) ? Math.max(wanted, TURN_CANDIDATES) : wanted, wanted],
        )
      ).map((r) => r.id as number);
      if (candidates.length === 0) break;
      tried.push(...candidates);
      const taken = await rows(
        this.delivery,
        `UPDATE outbox SET owner = $1, lease_until = $2
         WHERE id IN (
           SELECT id FROM outbox WHERE id = ANY($3::bigint[]) AND due_at <= $4
             AND (lease_until IS NULL OR lease_until <= $4)
           FOR UPDATE SKIP LOCKED)
         RETURNING *`,
        [owner, leaseUntil, candidates, now],
      );
      const byId = new Map(taken.map((r) => [r.id as number, r]));
      for (const id of candidates) {
        const r = byId.get(id);
        if (r) claimed.push({ ...toOutboxItem(r), owner, leaseUntil });
      }
      if (candidates.length < wanted) break;
    }
    return claimed;
  }

  async nextDueAt(kinds: readonly OutboxKind[] = ALL_KINDS) {
    const row = await one(this.delivery, 'SELECT min(due_at) AS due FROM outbox WHERE kind = ANY($1::text[])', [kinds]);
    return (row?.due as number | null) ?? undefined;
  }

  /**
   * One statement, so one round trip and one commit: `fenced` locks the row only if it still carries this claim
   * (owner, lease, attempt count), and every write but the delivery records depends on it. The row is retired,
   * or kept (rescheduled, or due now because its subject changed: its generation moved on), never both.
   */
  async recordAttempt(
    item: ClaimedItem,
    requests: readonly AttemptRecord[],
    next: { retryAt?: number; delivered?: Record<string, string> },
  ) {
    const p = new Params();
    const [id, owner, leaseUntil, attempts] = [item.id, item.owner, item.leaseUntil, item.attempts].map((v) =>
      p.add(v),
    );
    const retry = `${p.add(next.retryAt !== undefined)}::boolean`;
    const generation = p.add(item.generation);
    const subject = rowSubject(item.kind);
    const table = subject === 'page' ? 'pages' : subject === 'dm' ? 'dms' : undefined;
    const merge =
      table && next.delivered
        ? `, merged AS (
            UPDATE ${table} SET delivered = (delivered::jsonb || ${p.add(JSON.stringify(next.delivered))}::jsonb)::text
            WHERE id = ${p.add(Number(item.ref))} AND EXISTS (SELECT 1 FROM fenced))`
        : '';
    const recorded =
      requests.length === 0
        ? ''
        : `, recorded AS (
            INSERT INTO deliveries (kind, ref, attempt, at, channel, outcome, detail, duration_ms)
            SELECT ${p.add(item.kind)}, ${p.add(item.ref)}, ${attempts}::integer + 1, *
            FROM unnest(${p.add(requests.map((r) => r.at))}::bigint[], ${p.add(requests.map((r) => r.channel))}::text[],
              ${p.add(requests.map((r) => r.outcome))}::text[], ${p.add(requests.map((r) => r.detail))}::text[],
              ${p.add(requests.map((r) => Math.round(r.durationMs)))}::integer[]))`;
    const row = await one(
      this.delivery,
      `WITH fenced AS (
         SELECT id, generation FROM outbox
         WHERE id = ${id} AND owner = ${owner} AND lease_until = ${leaseUntil} AND attempts = ${attempts}
         FOR UPDATE)${recorded}${merge},
       retired AS (
         DELETE FROM outbox o USING fenced f WHERE o.id = f.id AND NOT ${retry} AND f.generation = ${generation}),
       kept AS (
         UPDATE outbox o SET attempts = o.attempts + 1, owner = NULL, lease_until = NULL,
           due_at = CASE WHEN ${retry} AND f.generation = ${generation} THEN ${p.add(next.retryAt ?? null)}::bigint
             ELSE o.due_at END
         FROM fenced f WHERE o.id = f.id AND (${retry} OR f.generation <> ${generation}))
       SELECT count(*)::int AS fenced FROM fenced`,
      p.values,
    );
    return { recorded: row?.fenced === 1 };
  }

  async pageWithMembers(pageId: number) {
    const row = await one(this.pool, 'SELECT * FROM pages WHERE id = $1', [pageId]);
    if (!row) return undefined;
    const members = await rows(
      this.pool,
      `SELECT e.*, d.* FROM page_members m JOIN episodes e ON e.id = m.episode_id JOIN decisions d ON d.episode_id = e.id
       WHERE m.page_id = $1 ORDER BY e.starts_at_ms, e.id`,
      [pageId],
    );
    const records = members.map(toEpisode);
    const rolledBack = await this.rollbacksOf([
      ...new Set(records.flatMap((m) => (m.decision.deployId === undefined ? [] : [m.decision.deployId]))),
    ]);
    return rolledBack.length > 0
      ? { page: toPage(row), members: records, rolledBack }
      : { page: toPage(row), members: records };
  }

  async dmWithContext(dmId: number, threadWindowMs: number): Promise<DmContext | undefined> {
    const row = await one(this.pool, 'SELECT * FROM dms WHERE id = $1', [dmId]);
    if (!row) return undefined;
    const dm = toDm(row);
    const episodeRow = await one(
      this.pool,
      'SELECT e.*, d.* FROM episodes e JOIN decisions d ON d.episode_id = e.id WHERE e.id = $1',
      [dm.episodeId],
    );
    if (!episodeRow) return undefined;
    const context: DmContext = { dm, episode: toEpisode(episodeRow), pages: await this.pagesOf(dm.episodeId) };
    const deployId = context.episode.decision.deployId;
    if (deployId !== undefined) {
      const [rolledBack] = await this.rollbacksOf([deployId]);
      if (rolledBack) context.rolledBack = rolledBack;
    }
    if (dm.deployId !== undefined) {
      const root = await one(
        this.pool,
        `SELECT * FROM dms WHERE email = $1 AND deploy_id = $2 AND created_at >= $3 AND id < $4 ORDER BY id LIMIT 1`,
        [dm.email, dm.deployId, dm.createdAt - threadWindowMs, dm.id],
      );
      if (root) context.threadRoot = toDm(root);
    }
    return context;
  }

  private async pagesOf(episodeId: number) {
    const found = await rows(
      this.pool,
      'SELECT p.* FROM pages p JOIN page_members m ON m.page_id = p.id WHERE m.episode_id = $1 ORDER BY p.id',
      [episodeId],
    );
    return found.map(toPage);
  }

  async updateDm(dmId: number, patch: Record<string, string>) {
    await mergeDelivered(this.pool, 'dm', dmId, patch);
  }

  async outboxStats(now: number) {
    const row = (await one(this.pool, 'SELECT count(*) AS depth, min(created_at) AS oldest FROM outbox')) as Row;
    const oldest = row.oldest as number | null;
    return { depth: row.depth as number, oldestUndeliveredAgeMs: oldest === null ? 0 : Math.max(0, now - oldest) };
  }

  // --- reads -----------------------------------------------------------------------------------------------

  async alertHistory(fingerprint: string, query: Partial<HistoryQuery> = {}): Promise<EpisodeHistory[]> {
    const { limit = 20, before, deliveriesPerPage = 100 } = query;
    const found = before
      ? await rows(
          this.pool,
          `SELECT e.*, d.* FROM episodes e JOIN decisions d ON d.episode_id = e.id
           WHERE e.fingerprint = $1 AND (e.starts_at_ms, e.id) < ($2, $3)
           ORDER BY e.starts_at_ms DESC, e.id DESC LIMIT $4`,
          [fingerprint, before.startsAtMs, before.id, limit],
        )
      : await rows(
          this.pool,
          `SELECT e.*, d.* FROM episodes e JOIN decisions d ON d.episode_id = e.id WHERE e.fingerprint = $1
           ORDER BY e.starts_at_ms DESC, e.id DESC LIMIT $2`,
          [fingerprint, limit],
        );
    const histories: EpisodeHistory[] = [];
    for (const row of found) {
      const episode = toEpisode(row);
      const pages = await this.pagesOf(episode.id);
      let deliveriesNotShown = 0;
      const deliveries: DeliveryRecord[] = [];
      for (const p of pages) {
        const counted = (await one(this.pool, `SELECT count(*) AS n FROM deliveries WHERE kind = 'page' AND ref = $1`, [
          String(p.id),
        ])) as Row;
        deliveriesNotShown += Math.max(0, (counted.n as number) - deliveriesPerPage);
        const latest = await rows(
          this.pool,
          `SELECT * FROM deliveries WHERE kind = 'page' AND ref = $1 ORDER BY id DESC LIMIT $2`,
          [String(p.id), deliveriesPerPage],
        );
        deliveries.push(...latest.reverse().map(toDelivery));
      }
      histories.push({ episode, pages, deliveries, deliveriesNotShown });
    }
    return histories;
  }

  async deploysBetween(query: TimelineQuery) {
    const p = new Params();
    const sql = `SELECT ${deployColumns(query.listLimit)} FROM deploys d
      WHERE d.at BETWEEN ${p.add(query.from)} AND ${p.add(query.to)}${filters(query, 'd.', p)}
      ORDER BY d.at DESC, d.received_at DESC LIMIT ${p.add(query.limit)}`;
    return (await rows(this.pool, sql, p.values)).map(toSummary);
  }

  async deploySummaries(ids: readonly string[], listLimit: number) {
    const sql = `SELECT ${deployColumns(listLimit)} FROM deploys d WHERE d.id = ANY($1::text[])`;
    return (await rows(this.pool, sql, [ids])).map(toSummary);
  }

  async episodesBetween(query: TimelineQuery) {
    const p = new Params();
    // The first condition is the expression of the episodes_by_end index, written the same way so it is used.
    const sql = `SELECT e.*, d.* FROM episodes e JOIN decisions d ON d.episode_id = e.id
      WHERE coalesce(e.ends_at_ms, 9223372036854775807) >= ${p.add(query.from)} AND e.starts_at_ms <= ${p.add(query.to)}
        ${filters(query, 'd.', p)}
      ORDER BY e.starts_at_ms DESC, e.id DESC LIMIT ${p.add(query.limit)}`;
    return (await rows(this.pool, sql, p.values)).map(toEpisode);
  }

  async pageDeliveries(episodeIds: readonly number[]): Promise<PageDeliveryRecord[]> {
    // The outbox and the attempts name a page by its id as text.
    const sql = `SELECT m.episode_id, p.id AS page_id, p.target, o.due_at,
        l.outcome, l.detail, l.at, l.attempt, l.channel,
        (SELECT max(x.at) FROM deliveries x
          WHERE x.kind = 'page' AND x.ref = p.id::text AND x.outcome = 'delivered') AS delivered_at
      FROM page_members m
      JOIN pages p ON p.id = m.page_id
      LEFT JOIN outbox o ON o.kind = 'page' AND o.ref = p.id::text
      LEFT JOIN deliveries l ON l.id = (SELECT max(x.id) FROM deliveries x WHERE x.kind = 'page' AND x.ref = p.id::text)
      WHERE m.episode_id = ANY($1::bigint[])
      ORDER BY m.episode_id, p.id`;
    return (await rows(this.pool, sql, [episodeIds])).map((r) => {
      const record: PageDeliveryRecord = {
        episodeId: r.episode_id as number,
        pageId: r.page_id as number,
        target: parseTargetKey(r.target as string),
      };
      if (r.outcome !== null) {
        record.latest = {
          outcome: r.outcome as DeliveryRecord['outcome'],
          detail: r.detail as string,
          at: r.at as number,
          attempt: r.attempt as number,
          channel: r.channel as string,
        };
      }
      if (r.delivered_at !== null) record.deliveredAt = r.delivered_at as number;
      if (r.due_at !== null) record.waiting = { dueAt: r.due_at as number };
      return record;
    });
  }

  async serviceNames() {
    // A loose index scan over the (service, ...) indexes: one seek per distinct service, not one row per deploy.
    const sql = `WITH RECURSIVE
      ds(s) AS (SELECT min(service) FROM deploys
        UNION ALL SELECT (SELECT min(service) FROM deploys WHERE service > ds.s) FROM ds WHERE ds.s IS NOT NULL),
      es(s) AS (SELECT min(service) FROM decisions
        UNION ALL SELECT (SELECT min(service) FROM decisions WHERE service > es.s) FROM es WHERE es.s IS NOT NULL)
      SELECT s FROM ds WHERE s IS NOT NULL UNION SELECT s FROM es WHERE s IS NOT NULL ORDER BY s LIMIT 1000`;
    return (await rows(this.pool, sql)).map((r) => r.s as string);
  }

  async hygieneFacts(q: HygieneQuery, cursor?: HygieneCursor): Promise<{ facts: HygieneFacts; next?: HygieneCursor }> {
    const limit = q.pageRows ?? 2000;
    const feedbackRecorded = true;
    const p = new Params();
    const since = p.add(q.since);
    const until = p.add(q.until);

    if (cursor?.phase !== 'episodes') {
      const after = cursor
        ? `AND (at, received_at, id) > (${p.add(cursor.after.at)}, ${p.add(cursor.after.receivedAt)}, ${p.add(cursor.after.id)})`
        : '';
      const sql = `SELECT id, service, environment, kind, subject, version, at, received_at, change_count, rollback, lead_ms
        FROM deploys WHERE at >= ${since} AND at < ${until}${filters(q, '', p)} ${after}
        ORDER BY at, received_at, id LIMIT ${p.add(limit)}`;
      const found = await rows(this.pool, sql, p.values);
      const events = found.map((r) => ({
        id: r.id as string,
        service: r.service as string,
        environment: r.environment as string,
        kind: r.kind as ChangeKind,
        subject: r.subject as string,
        version: r.version as string,
        at: r.at as number,
        receivedAt: r.received_at as number,
        changeCount: r.change_count as number,
        ...codeFacts(r),
      }));
      const last = events.at(-1);
      const next: HygieneCursor =
        found.length < limit || !last
          ? { phase: 'episodes' }
          : { phase: 'events', after: { at: last.at, receivedAt: last.receivedAt, id: last.id } };
      return { facts: { events, episodes: [], feedbackRecorded }, next };
    }

    const after = cursor.after
      ? `AND (e.starts_at_ms, e.id) > (${p.add(cursor.after.startsAtMs)}, ${p.add(cursor.after.id)})`
      : '';
    const sql = `SELECT e.id, e.starts_at_ms, e.ends_at_ms, d.service, d.deploy_id, d.reason, x.kind AS deploy_kind, x.at AS deploy_at,
        coalesce(d.feedback::json ->> 'kind' = 'not_my_change', false) AS not_mine,
        strpos(d.targets, '"kind":"person"') > 0 AS paged_person,
        d.evidence::json ->> 'verdict' AS evidence_verdict, d.evidence::json ->> 'effect' AS evidence_effect
      FROM episodes e JOIN decisions d ON d.episode_id = e.id LEFT JOIN deploys x ON x.id = d.deploy_id
      WHERE e.starts_at_ms >= ${since} AND e.starts_at_ms < ${until}${filters(q, 'd.', p)} ${after}
      ORDER BY e.starts_at_ms, e.id LIMIT ${p.add(limit)}`;
    const found = await rows(this.pool, sql, p.values);
    const episodes = found.map((r) => {
      const ep: DecidedEpisode = {
        startsAtMs: r.starts_at_ms as number,
        notMine: r.not_mine === true,
        pagedPerson: r.paged_person === true,
      };
      if (r.evidence_verdict !== null && r.evidence_effect !== null) {
        ep.evidence = {
          verdict: r.evidence_verdict as EvidenceVerdict,
          effect: r.evidence_effect as EvidenceEffect,
        };
      }
      if (r.service !== null) ep.service = r.service as string;
      if (r.deploy_id !== null) ep.deployId = r.deploy_id as string;
      if (r.reason !== null) ep.reason = r.reason as ReasonCode;
      if (r.deploy_kind !== null) ep.deployKind = r.deploy_kind as ChangeKind;
      if (r.deploy_at !== null) ep.deployAt = r.deploy_at as number;
      if (r.ends_at_ms !== null) ep.endsAtMs = r.ends_at_ms as number;
      return ep;
    });
    const last = found.at(-1);
    const facts = { events: [], episodes, feedbackRecorded };
    if (found.length < limit || !last) return { facts };
    return {
      facts,
      next: { phase: 'episodes', after: { startsAtMs: last.starts_at_ms as number, id: last.id as number } },
    };
  }

  // --- people and sessions ---------------------------------------------------------------------------------

  async recordUnmapped(who: string, reason: string, now: number) {
    await run(
      this.pool,
      `INSERT INTO unmapped_people (who, reason, count, first_seen_at, last_seen_at) VALUES ($1, $2, 1, $3, $3)
       ON CONFLICT (who, reason) DO UPDATE SET count = unmapped_people.count + 1, last_seen_at = excluded.last_seen_at`,
      [who, reason, now],
    );
  }

  async listUnmapped(query: { limit?: number; after?: UnmappedKey } = {}) {
    const { limit = 100, after } = query;
    const order = 'ORDER BY count DESC, last_seen_at DESC, who DESC, reason DESC';
    const found = after
      ? await rows(
          this.pool,
          `SELECT * FROM unmapped_people WHERE (count, last_seen_at, who, reason) < ($1, $2, $3, $4) ${order} LIMIT $5`,
          [after.count, after.lastSeenAt, after.who, after.reason, limit],
        )
      : await rows(this.pool, `SELECT * FROM unmapped_people ${order} LIMIT $1`, [limit]);
    return found.map((r) => ({
      who: r.who as string,
      reason: r.reason as string,
      count: r.count as number,
      firstSeenAt: r.first_seen_at as number,
      lastSeenAt: r.last_seen_at as number,
    }));
  }

  createSession(session: SessionRecord, now: number) {
    return this.tx(async (db) => {
      await run(db, 'DELETE FROM sessions WHERE expires_at <= $1', [now]);
      await run(db, 'INSERT INTO sessions (id_hash, token_name, created_at, expires_at) VALUES ($1, $2, $3, $4)', [
        session.idHash,
        session.tokenName,
        session.createdAt,
        session.expiresAt,
      ]);
    });
  }

  async getSession(idHash: string, now: number) {
    const r = await one(this.pool, 'SELECT * FROM sessions WHERE id_hash = $1 AND expires_at > $2', [idHash, now]);
    return (
      r && {
        idHash: r.id_hash as string,
        tokenName: r.token_name as string,
        createdAt: r.created_at as number,
        expiresAt: r.expires_at as number,
      }
    );
  }

  async deleteSession(idHash: string) {
    await run(this.pool, 'DELETE FROM sessions WHERE id_hash = $1', [idHash]);
  }

  // --- lifecycle -------------------------------------------------------------------------------------------

  async ping() {
    await run(this.pool, 'UPDATE heartbeat SET at = $1 WHERE id = 1', [Date.now()]);
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    await this.wake.close();
    await Promise.all([this.pool.end(), this.delivery.end()]);
  }
}

const WALK_BATCH = 100;

/** The stage events of the same subject before or after a position (at, received_at, id), nearest first. */
function rolloutWalk(direction: 'before' | 'after', columns: string): string {
  const sameSubject = 'd.service = $1 AND d.environment = $2 AND d.kind = $3 AND d.subject = $4';
  return direction === 'before'
    ? `SELECT ${columns} FROM deploys d WHERE ${sameSubject} AND (d.at, d.received_at, d.id) < ($5, $6, $7)
       ORDER BY d.at DESC, d.received_at DESC, d.id DESC LIMIT ${WALK_BATCH}`
    : `SELECT ${columns} FROM deploys d WHERE ${sameSubject} AND (d.at, d.received_at, d.id) > ($5, $6, $7)
       ORDER BY d.at, d.received_at, d.id LIMIT ${WALK_BATCH}`;
}

function filters(q: { service?: string; environment?: string }, table: string, p: Params): string {
  return `${q.service === undefined ? '' : ` AND ${table}service = ${p.add(q.service)}`}${q.environment === undefined ? '' : ` AND ${table}environment = ${p.add(q.environment)}`}`;
}

/**
 * The columns of deploys (aliased d), with changes and hosts cut to their first `limit` entries in SQL: a
 * summary of a release with thousands of changes never brings them into JavaScript. json (not jsonb) keeps each
 * element's text as stored; the counts were stored with the row.
 */
function deployColumns(limit: number): string {
  const n = Math.max(0, Math.floor(limit));
  const head = (column: string, count: string) =>
    n === 0
      ? `'[]' AS ${column}`
      : `CASE WHEN d.${count} <= ${n} THEN d.${column} ELSE (SELECT json_agg(x.value ORDER BY x.i)::text
           FROM json_array_elements(d.${column}::json) WITH ORDINALITY AS x (value, i) WHERE x.i <= ${n}) END AS ${column}`;
  return [
    'd.id, d.service, d.environment, d.version, d.previous_version, d.stage, d.percent, d.at, d.received_at',
    'd.kind, d.flag, d.config, d.subject, d.rollback, d.lead_ms, d.source',
    head('changes', 'change_count'),
    head('hosts', 'host_count'),
    'd.change_count, d.host_count',
  ].join(', ');
}

/**
 * Adds outbox rows (due when the subject says, else now), or bumps the generation of a row already waiting for
 * the same subject, keeping the sooner due time.
 */
async function enqueue(db: Queryable, subjects: readonly (readonly [OutboxKind, string, number?])[], now: number) {
  // One statement cannot update the same row twice: a subject named twice is queued once (one bump is enough
  // to tell a delivery in flight that its subject changed), due at the sooner of its times.
  const byKey = new Map<string, readonly [OutboxKind, string, number]>();
  for (const [kind, ref, dueAt = now] of subjects) {
    const earlier = byKey.get(`${kind}:${ref}`);
    byKey.set(`${kind}:${ref}`, [kind, ref, Math.min(dueAt, earlier?.[2] ?? dueAt)]);
  }
  const unique = [...byKey.values()];
  if (unique.length === 0) return;
  // created_at is kept on conflict: a row's age counts from when its subject first needed delivering.
  await run(
    db,
    `INSERT INTO outbox (kind, ref, created_at, due_at)
     SELECT kind, ref, $3, due FROM unnest($1::text[], $2::text[], $4::bigint[]) AS t (kind, ref, due)
     ON CONFLICT (kind, ref) DO UPDATE SET generation = outbox.generation + 1, due_at = least(outbox.due_at, excluded.due_at)`,
    [unique.map(([kind]) => kind), unique.map(([, ref]) => ref), now, unique.map(([, , due]) => due)],
  );
}

/** Merges a delivery state patch into a page's or a DM's `delivered` JSON, in one statement. */
async function mergeDelivered(db: Queryable, kind: OutboxKind, id: number, patch: Record<string, string>) {
  const subject = rowSubject(kind);
  const table = subject === 'page' ? 'pages' : subject === 'dm' ? 'dms' : undefined;
  if (!table) return;
  await run(db, `UPDATE ${table} SET delivered = (delivered::jsonb || $1::jsonb)::text WHERE id = $2`, [
    JSON.stringify(patch),
    id,
  ]);
}

/**
 * The stored rows a plan reads (core/plan.ts WriteNeeds says which), as of this transaction, a handful of
 * statements for a notification of any size. The pages are locked (FOR UPDATE) so that a transaction of another
 * group that resolves one of their members waits for this one, and then reads its result.
 */
async function readSnapshot(db: Queryable, needs: WriteNeeds): Promise<WriteSnapshot> {
  const resolvedFingerprints = new Set(needs.firingOf);
  const byKey = await rows(
    db,
    `SELECT ${EPISODE_COLUMNS.split(', ')
      .map((c) => `e.${c}`)
      .join(', ')} FROM episodes e
     JOIN unnest($1::text[], $2::text[]) AS k (fingerprint, starts_at)
       ON e.fingerprint = k.fingerprint AND e.starts_at = k.starts_at`,
    [needs.episodeKeys.map((k) => k.fingerprint), needs.episodeKeys.map((k) => k.startsAt)],
  );
  const firing =
    needs.firingOf.length === 0
      ? []
      : await rows(
          db,
          `SELECT ${EPISODE_COLUMNS} FROM episodes WHERE fingerprint = ANY($1::text[]) AND status = 'firing'`,
          [needs.firingOf],
        );
  const episodes = new Map<number, StoredEpisode & { withLinks: boolean }>();
  const stored = (r: Row, withLinks: boolean) => {
    const id = r.id as number;
    const known = episodes.get(id);
    if (known) {
      known.withLinks ||= withLinks;
      return;
    }
    episodes.set(id, {
      id,
      fingerprint: r.fingerprint as string,
      startsAt: r.starts_at as string,
      startsAtMs: r.starts_at_ms as number,
      status: r.status as AlertStatus,
      lastSeenAt: r.last_seen_at as number,
      pageIds: [],
      dmIds: [],
      withLinks,
    });
  };
  // Pages and DMs matter only to an episode a resolve may close: one of a fingerprint reported resolved.
  for (const r of byKey) {
    stored(r, needs.withLinks === true || (r.status === 'firing' && resolvedFingerprints.has(r.fingerprint as string)));
  }
  for (const r of firing) stored(r, true);
  const linked = [...episodes.values()].filter((e) => e.withLinks).map((e) => e.id);
  if (linked.length > 0) {
    for (const r of await rows(
      db,
      'SELECT episode_id, page_id FROM page_members WHERE episode_id = ANY($1::bigint[]) ORDER BY page_id',
      [linked],
    )) {
      episodes.get(r.episode_id as number)?.pageIds.push(r.page_id as number);
    }
    for (const r of await rows(db, 'SELECT episode_id, id FROM dms WHERE episode_id = ANY($1::bigint[]) ORDER BY id', [
      linked,
    ])) {
      episodes.get(r.episode_id as number)?.dmIds.push(r.id as number);
    }
  }

  const slots = needs.slots.map((s) => ({ ...s, target: targetKey(s.target) }));
  const slotArgs = [slots.map((s) => s.groupKey), slots.map((s) => s.service), slots.map((s) => s.target)];
  const pageIds = [...new Set([...episodes.values()].flatMap((e) => e.pageIds))];
  const pageRows =
    pageIds.length === 0 && slots.length === 0
      ? []
      : await rows(
          db,
          `SELECT p.id, p.group_key, p.service, p.target, p.status, p.comment_host FROM pages p
           WHERE p.id = ANY($1::bigint[])
              OR (p.status = 'open' AND (p.group_key, p.service, p.target) IN (
                    SELECT * FROM unnest($2::text[], $3::text[], $4::text[])))
           ORDER BY p.id FOR UPDATE`,
          [pageIds, ...slotArgs],
        );
  const firingMembers = new Map<number, number[]>();
  if (pageRows.length > 0) {
    for (const r of await rows(
      db,
      `SELECT m.page_id, m.episode_id FROM page_members m JOIN episodes e ON e.id = m.episode_id
       WHERE m.page_id = ANY($1::bigint[]) AND e.status = 'firing' ORDER BY m.episode_id`,
      [pageRows.map((r) => r.id)],
    )) {
      const list = firingMembers.get(r.page_id as number) ?? [];
      list.push(r.episode_id as number);
      firingMembers.set(r.page_id as number, list);
    }
  }
  const pages: StoredPage[] = pageRows.map((r) => ({
    id: r.id as number,
    slot: { groupKey: r.group_key as string, service: r.service as string, target: parseTargetKey(r.target as string) },
    status: r.status as PageStatus,
    firing: firingMembers.get(r.id as number) ?? [],
    ...(r.comment_host ? { commentHost: r.comment_host as CodeHostName } : {}),
  }));
  const lastSeq = new Map<string, number>();
  if (slots.length > 0) {
    for (const r of await rows(
      db,
      `SELECT p.group_key, p.service, p.target, max(p.seq) AS seq FROM pages p
       JOIN unnest($1::text[], $2::text[], $3::text[]) AS s (group_key, service, target)
         ON p.group_key = s.group_key AND p.service = s.service AND p.target = s.target
       GROUP BY p.group_key, p.service, p.target`,
      slotArgs,
    )) {
      const slot = {
        groupKey: r.group_key as string,
        service: r.service as string,
        target: parseTargetKey(r.target as string),
      };
      lastSeq.set(slotKey(slot), r.seq as number);
    }
  }
  return {
    episodes: [...episodes.values()].map(({ withLinks: _, ...e }) => e),
    pages,
    lastSeq,
  };
}

/**
 * Writes a plan's operations; the plan's negative ids name the rows it inserts. Each kind of operation is one
 * multi-row statement, so a notification of 500 alerts is a dozen statements, not thousands. Grouping by kind
 * keeps the plan's meaning: an operation depends on another only through the ids of rows it inserts, and the
 * kinds run in an order that inserts every row before anything names it (episodes, pages, members, DMs, then the
 * updates, then the outbox); the updates set a row to a final state, so their order among themselves is moot.
 */
async function execute(db: Queryable, ops: readonly WriteOp[], now: number): Promise<void> {
  const inserted = new Map<number, number>();
  const id = (planned: number): number => {
    if (planned >= 0) return planned;
    const actual = inserted.get(planned);
    if (actual === undefined) throw new Error(`plan names row ${planned} before inserting it`);
    return actual;
  };
  const of = <K extends WriteOp['op']>(kind: K) => ops.filter((o): o is Extract<WriteOp, { op: K }> => o.op === kind);

  const newEpisodes = of('insert_episode');
  if (newEpisodes.length > 0) {
    // Episodes and their decisions in one statement: the decisions join the ids the episodes got on the
    // episode's identity (fingerprint, startsAt).
    const decisions = newEpisodes.map((o) => decisionRow(0, o.decision, now));
    const col = <T>(f: (o: (typeof newEpisodes)[number]) => T) => newEpisodes.map(f);
    const dcol = <K extends keyof (typeof decisions)[number]>(k: K) => decisions.map((d) => d[k]);
    const back = await rows(
      db,
      `WITH t AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[],
           $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
           $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[])
           AS t (f, s, sm, em, st, l, a, g, gk, rc, ex, reason, sentence, service, environment, policy, deploy_id,
             suspects, targets, responders, notify, would_page)),
       e AS (
         INSERT INTO episodes (fingerprint, starts_at, starts_at_ms, ends_at_ms, status, labels, annotations,
           generator_url, group_key, receiver, external_url, first_seen_at, last_seen_at)
         SELECT f, s, sm, em, st, l, a, g, gk, rc, ex, $23, $23 FROM t
         RETURNING id, fingerprint, starts_at),
       d AS (
         INSERT INTO decisions (episode_id, reason, sentence, service, environment, policy, deploy_id, suspects,
           targets, responders, notify, would_page, decided_at)
         SELECT e.id, t.reason, t.sentence, t.service, t.environment, t.policy, t.deploy_id, t.suspects, t.targets,
           t.responders, t.notify, t.would_page, $23
         FROM e JOIN t ON t.f = e.fingerprint AND t.s = e.starts_at)
       SELECT id, fingerprint, starts_at FROM e`,
      [
        col((o) => o.alert.fingerprint),
        col((o) => o.alert.startsAt),
        col((o) => o.alert.startsAtMs),
        col((o) => o.alert.endsAtMs ?? null),
        col((o) => o.alert.status),
        col((o) => JSON.stringify(o.alert.labels)),
        col((o) => JSON.stringify(o.alert.annotations)),
        col((o) => o.alert.generatorURL),
        col((o) => o.group.groupKey),
        col((o) => o.group.receiver),
        col((o) => o.group.externalURL),
        dcol('reason'),
        dcol('sentence'),
        dcol('service'),
        dcol('environment'),
        dcol('policy'),
        dcol('deploy_id'),
        dcol('suspects'),
        dcol('targets'),
        dcol('responders'),
        dcol('notify'),
        dcol('would_page'),
        now,
      ],
    );
    const idOf = new Map(back.map((r) => [`${r.fingerprint}|${r.starts_at}`, r.id as number]));
    for (const o of newEpisodes) inserted.set(o.id, idOf.get(episodeKey(o.alert)) as number);
  }

  for (const o of of('open_page')) {
    const row = await one(
      db,
      `INSERT INTO pages (group_key, service, environment, target, seq, status, opened_at, dedup_key, comment_host)
       VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8) RETURNING id`,
      [
        o.slot.groupKey,
        o.slot.service,
        o.environment,
        targetKey(o.slot.target),
        o.seq,
        now,
        o.dedupKey,
        o.commentHost ?? null,
      ],
    );
    inserted.set(o.id, (row as Row).id as number);
  }

  const members = of('add_member');
  if (members.length > 0) {
    await run(db, 'INSERT INTO page_members (page_id, episode_id) SELECT * FROM unnest($1::bigint[], $2::bigint[])', [
      members.map((o) => id(o.page)),
      members.map((o) => id(o.episode)),
    ]);
  }

  const dms = of('insert_dm');
  if (dms.length > 0) {
    const back = await rows(
      db,
      `INSERT INTO dms (episode_id, email, deploy_id, created_at)
       SELECT e, m, d, $4 FROM unnest($1::bigint[], $2::text[], $3::text[]) AS t (e, m, d)
       RETURNING id, episode_id, email`,
      [dms.map((o) => id(o.episode)), dms.map((o) => o.email), dms.map((o) => o.deployId ?? null), now],
    );
    const idOf = new Map(back.map((r) => [`${r.episode_id}|${r.email}`, r.id as number]));
    for (const o of dms) inserted.set(o.id, idOf.get(`${id(o.episode)}|${o.email}`) as number);
  }

  const resolved = of('resolve_episode');
  if (resolved.length > 0) {
    await run(
      db,
      `UPDATE episodes e SET status = 'resolved', ends_at_ms = t.ends, last_seen_at = $3
       FROM unnest($1::bigint[], $2::bigint[]) AS t (id, ends) WHERE e.id = t.id`,
      [resolved.map((o) => id(o.id)), resolved.map((o) => o.endsAtMs), now],
    );
  }
  const touched = of('touch_episode');
  if (touched.length > 0) {
    await run(db, 'UPDATE episodes SET last_seen_at = $1 WHERE id = ANY($2::bigint[])', [
      now,
      touched.map((o) => id(o.id)),
    ]);
  }
  const left = of('leave_page');
  if (left.length > 0) {
    await run(
      db,
      `DELETE FROM page_members m USING unnest($1::bigint[], $2::bigint[]) AS t (page_id, episode_id)
       WHERE m.page_id = t.page_id AND m.episode_id = t.episode_id`,
      [left.map((o) => id(o.page)), left.map((o) => id(o.episode))],
    );
  }
  const closedPages = of('resolve_page');
  if (closedPages.length > 0) {
    await run(
      db,
      `UPDATE pages SET status = 'resolved', resolved_at = $1 WHERE id = ANY($2::bigint[]) AND status = 'open'`,
      [now, closedPages.map((o) => id(o.id))],
    );
  }
  await enqueue(
    db,
    of('enqueue').map((o) => [o.kind, String(id(o.id)), o.dueAt] as const),
    now,
  );
}
