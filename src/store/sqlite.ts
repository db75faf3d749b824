import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { kindOf, subjectOf } from '../core/change.js';
import type { DeployCandidates } from '../core/correlate.js';
import { pageDedupKey } from '../core/dedup-key.js';
import type { DecidedEpisode, HygieneFacts } from '../core/stats.js';
import type { Alert, AlertStatus, ChangeKind, Decision, Deploy, PolicyMode, ReasonCode, Stage } from '../core/types.js';
import { lockDatabase } from './instance-lock.js';
import { MIGRATIONS } from './migrations.js';
import {
  type AlertWrite,
  type AttemptRecord,
  type DeliveryRecord,
  type DeployQuery,
  type DeploySummary,
  type DmContext,
  type DmRecord,
  type EpisodeHistory,
  type EpisodeRecord,
  episodeKey,
  type HistoryQuery,
  type HygieneCursor,
  type HygieneQuery,
  type OutboxItem,
  type OutboxKind,
  type PageDeliveryRecord,
  type PageRecord,
  type PageStatus,
  parseTargetKey,
  type RecordResult,
  type SessionRecord,
  StorageError,
  type Store,
  type TimelineQuery,
  targetKey,
  type UnmappedKey,
} from './store.js';

type Row = Record<string, unknown>;

const ALL_KINDS: readonly OutboxKind[] = ['page', 'change', 'dm'];
const ONCALL_TARGET = { kind: 'oncall' } as const;
const LAST_SEEN_RESOLUTION_MS = 60_000;
/** How many of the oldest due outbox rows DMs take turns among (see dueOutbox). */
const TURN_CANDIDATES = 1000;

/**
 * Opens (creating if needed) the SQLite database at `path` and brings its schema up to date. `:memory:` gives a
 * private in-memory database: the one-line store for tests.
 */
export function openSqliteStore(path: string): Store {
  const inMemory = path === ':memory:';
  if (!inMemory) mkdirSync(dirname(path), { recursive: true });
  // Taken first, so that a second instance neither migrates nor reads a database another one runs on.
  const lock = inMemory ? undefined : lockDatabase(path);
  try {
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    // FULL: a commit is on disk before we answer 2xx, even across power loss. That is the promise to Alertmanager.
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return translateErrors(new SqliteStore(db, lock));
  } catch (err) {
    lock?.release();
    throw err;
  }
}

/**
 * SQLite reports a full disk, a read-only file or a lock as SqliteError with a SQLITE_* code. Callers only need
 * to know "storage failed, retry later", so those become StorageError; anything else is a bug and stays as is.
 */
function translateErrors(store: SqliteStore): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        // After close() (shutdown under way) a request must fail as retryable, not as a bug.
        if (!target.isOpen() && prop !== 'close') throw new StorageError('database: the database is closed');
        try {
          return await value.apply(target, args);
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          if (typeof code === 'string' && code.startsWith('SQLITE_')) {
            throw new StorageError(`database: ${code}: ${(err as Error).message}`, { cause: err });
          }
          throw err;
        }
      };
    },
  });
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this changepager (${MIGRATIONS.length})`);
  }
  MIGRATIONS.slice(current).forEach((sql, i) => {
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${current + i + 1}`);
    })();
  });
}

class SqliteStore implements Store {
  private readonly q;

  constructor(
    private readonly db: Database.Database,
    private readonly lock?: { release(): void },
  ) {
    this.q = {
      insertDeploy: db.prepare(
        `INSERT INTO deploys (id, service, environment, version, previous_version, stage, percent, hosts, at, received_at, changes,
           kind, flag, config, subject, change_count, host_count)
         VALUES (@id, @service, @environment, @version, @previous_version, @stage, @percent, @hosts, @at, @received_at, @changes,
           @kind, @flag, @config, @subject, @change_count, @host_count)
         ON CONFLICT (id) DO NOTHING`,
      ),
      deployById: db.prepare('SELECT * FROM deploys WHERE id = ?'),
      deploysInWindow: db.prepare(
        `SELECT * FROM deploys WHERE service = ? AND environment = ? AND at BETWEEN ? AND ? ORDER BY at DESC, received_at DESC`,
      ),
      deployAfter: db.prepare(
        'SELECT * FROM deploys WHERE service = ? AND environment = ? AND at > ? ORDER BY at ASC LIMIT 1',
      ),
      deployBefore: db.prepare(
        'SELECT * FROM deploys WHERE service = ? AND environment = ? AND at < ? ORDER BY at DESC LIMIT 1',
      ),
      episodeByKey: db.prepare('SELECT id, status, last_seen_at FROM episodes WHERE fingerprint = ? AND starts_at = ?'),
      insertEpisode: db.prepare(
        `INSERT INTO episodes (fingerprint, starts_at, starts_at_ms, ends_at_ms, status, labels, annotations, generator_url,
           group_key, receiver, external_url, first_seen_at, last_seen_at)
         VALUES (@fingerprint, @starts_at, @starts_at_ms, @ends_at_ms, @status, @labels, @annotations, @generator_url,
           @group_key, @receiver, @external_url, @now, @now)`,
      ),
      insertDecision: db.prepare(
        `INSERT INTO decisions (episode_id, reason, sentence, service, environment, policy, deploy_id, suspects, targets,
           responders, notify, would_page, decided_at)
         VALUES (@episode_id, @reason, @sentence, @service, @environment, @policy, @deploy_id, @suspects, @targets,
           @responders, @notify, @would_page, @decided_at)`,
      ),
      resolveEpisode: db.prepare(
        `UPDATE episodes SET status = 'resolved', ends_at_ms = ?, last_seen_at = ? WHERE id = ?`,
      ),
      touchEpisode: db.prepare('UPDATE episodes SET last_seen_at = ? WHERE id = ?'),
      openEpisodesStartedBy: db.prepare(
        `SELECT id FROM episodes WHERE fingerprint = ? AND status = 'firing' AND starts_at_ms <= ? ORDER BY id`,
      ),
      openPage: db.prepare(
        `SELECT id FROM pages WHERE group_key = ? AND service = ? AND target = ? AND status = 'open'`,
      ),
      lastSeq: db.prepare('SELECT MAX(seq) AS seq FROM pages WHERE group_key = ? AND service = ? AND target = ?'),
      insertPage: db.prepare(
        `INSERT INTO pages (group_key, service, environment, target, seq, status, opened_at, dedup_key)
         VALUES (?, ?, ?, ?, ?, 'open', ?, ?)`,
      ),
      addMember: db.prepare('INSERT OR IGNORE INTO page_members (page_id, episode_id) VALUES (?, ?)'),
      pagesOfEpisode: db.prepare(
        'SELECT p.* FROM pages p JOIN page_members m ON m.page_id = p.id WHERE m.episode_id = ? ORDER BY p.id',
      ),
      firingMembers: db.prepare(
        `SELECT COUNT(*) AS n FROM page_members m JOIN episodes e ON e.id = m.episode_id
         WHERE m.page_id = ? AND e.status = 'firing'`,
      ),
      resolvePage: db.prepare(`UPDATE pages SET status = 'resolved', resolved_at = ? WHERE id = ? AND status = 'open'`),
      // created_at is kept on conflict: a row's age counts from when its subject first needed delivering.
      enqueue: db.prepare(
        `INSERT INTO outbox (kind, ref, created_at, due_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (kind, ref) DO UPDATE SET generation = generation + 1, due_at = MIN(due_at, excluded.due_at)`,
      ),
      episodesByFingerprint: db.prepare(
        `SELECT e.*, d.*
         FROM episodes e JOIN decisions d ON d.episode_id = e.id WHERE e.fingerprint = ?
         ORDER BY e.starts_at_ms DESC, e.id DESC LIMIT ?`,
      ),
      episodesByFingerprintBefore: db.prepare(
        `SELECT e.*, d.*
         FROM episodes e JOIN decisions d ON d.episode_id = e.id
         WHERE e.fingerprint = ? AND (e.starts_at_ms, e.id) < (?, ?)
         ORDER BY e.starts_at_ms DESC, e.id DESC LIMIT ?`,
      ),
      membersOfPage: db.prepare(
        `SELECT e.*, d.*
         FROM page_members m JOIN episodes e ON e.id = m.episode_id JOIN decisions d ON d.episode_id = e.id
         WHERE m.page_id = ? ORDER BY e.starts_at_ms, e.id`,
      ),
      pageById: db.prepare('SELECT * FROM pages WHERE id = ?'),
      latestDeliveries: db.prepare('SELECT * FROM deliveries WHERE kind = ? AND ref = ? ORDER BY id DESC LIMIT ?'),
      deliveryCount: db.prepare('SELECT COUNT(*) AS n FROM deliveries WHERE kind = ? AND ref = ?'),
      insertDelivery: db.prepare(
        `INSERT INTO deliveries (kind, ref, attempt, at, channel, outcome, detail, duration_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // A row whose subject changed during the failed attempt (generation moved on) stays due now.
      reschedule: db.prepare(
        'UPDATE outbox SET attempts = attempts + 1, due_at = CASE WHEN generation = ? THEN ? ELSE due_at END WHERE id = ?',
      ),
      retire: db.prepare('DELETE FROM outbox WHERE id = ? AND generation = ?'),
      bumpAttempts: db.prepare('UPDATE outbox SET attempts = attempts + 1 WHERE id = ?'),
      setDelivered: db.prepare('UPDATE pages SET delivered = ? WHERE id = ?'),
      stats: db.prepare('SELECT COUNT(*) AS depth, MIN(created_at) AS oldest FROM outbox'),
      ping: db.prepare('UPDATE heartbeat SET at = ? WHERE id = 1'),
      insertDm: db.prepare('INSERT OR IGNORE INTO dms (episode_id, email, deploy_id, created_at) VALUES (?, ?, ?, ?)'),
      dmsOfEpisode: db.prepare('SELECT id FROM dms WHERE episode_id = ?'),
      dmById: db.prepare('SELECT * FROM dms WHERE id = ?'),
      episodeById: db.prepare(
        `SELECT e.*, d.*
         FROM episodes e JOIN decisions d ON d.episode_id = e.id WHERE e.id = ?`,
      ),
      threadRoot: db.prepare(
        'SELECT * FROM dms WHERE email = ? AND deploy_id = ? AND created_at >= ? AND id < ? ORDER BY id LIMIT 1',
      ),
      dmDelivered: db.prepare('SELECT delivered FROM dms WHERE id = ?'),
      setDmDelivered: db.prepare('UPDATE dms SET delivered = ? WHERE id = ?'),
      pageDelivered: db.prepare('SELECT delivered FROM pages WHERE id = ?'),
      feedbackOf: db.prepare(
        `SELECT d.feedback, e.status, e.group_key, d.service, d.environment
         FROM decisions d JOIN episodes e ON e.id = d.episode_id WHERE d.episode_id = ?`,
      ),
      setFeedback: db.prepare('UPDATE decisions SET feedback = ? WHERE episode_id = ?'),
      upsertUnmapped: db.prepare(
        `INSERT INTO unmapped_people (who, reason, count, first_seen_at, last_seen_at) VALUES (?, ?, 1, ?, ?)
         ON CONFLICT (who, reason) DO UPDATE SET count = count + 1, last_seen_at = excluded.last_seen_at`,
      ),
      unmapped: db.prepare(
        'SELECT * FROM unmapped_people ORDER BY count DESC, last_seen_at DESC, who DESC, reason DESC LIMIT ?',
      ),
      unmappedAfter: db.prepare(
        `SELECT * FROM unmapped_people WHERE (count, last_seen_at, who, reason) < (?, ?, ?, ?)
         ORDER BY count DESC, last_seen_at DESC, who DESC, reason DESC LIMIT ?`,
      ),
      insertSession: db.prepare(
        'INSERT INTO sessions (id_hash, token_name, created_at, expires_at) VALUES (?, ?, ?, ?)',
      ),
      purgeSessions: db.prepare('DELETE FROM sessions WHERE expires_at <= ?'),
      sessionById: db.prepare('SELECT * FROM sessions WHERE id_hash = ? AND expires_at > ?'),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id_hash = ?'),
    };
  }

  saveDeploy(deploy: Deploy, opts: { sendChangeEvent?: boolean } = {}) {
    return this.grouped(() => {
      if (this.q.insertDeploy.run(deployRow(deploy)).changes === 1) {
        if (opts.sendChangeEvent) this.q.enqueue.run('change', deploy.id, deploy.receivedAt, deploy.receivedAt);
        return { created: true, deploy };
      }
      return { created: false, deploy: toDeploy(this.q.deployById.get(deploy.id) as Row) };
    });
  }

  async getDeploy(id: string) {
    const row = this.q.deployById.get(id) as Row | undefined;
    return row && toDeploy(row);
  }

  private rolloutStatements?: ReturnType<typeof prepareRolloutQueries>;
  private get rq() {
    this.rolloutStatements ??= prepareRolloutQueries(this.db);
    return this.rolloutStatements;
  }

  async rolloutOf(id: string, opts: { listLimit?: number } = {}) {
    const columns = opts.listLimit === undefined ? 'd.*' : deployColumns(opts.listLimit);
    const row = this.cached(`SELECT ${columns} FROM deploys d WHERE d.id = ?`).get(id) as Row | undefined;
    if (!row) return undefined;
    const target = toDeploy(row);
    const key = [target.service, target.environment, kindOf(target), subjectOf(target)];
    const position = [target.at, target.receivedAt, target.id];
    // Walk away from the event in both directions until another version of the same subject shows up.
    const earlier: Deploy[] = [];
    for (const r of this.cached(rolloutWalk('before', columns)).iterate(...key, ...position) as Iterable<Row>) {
      const d = toDeploy(r);
      if (d.version !== target.version) break;
      earlier.unshift(d);
    }
    const later: Deploy[] = [];
    let supersededBy: Deploy | undefined;
    for (const r of this.cached(rolloutWalk('after', columns)).iterate(...key, ...position) as Iterable<Row>) {
      const d = toDeploy(r);
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
    return (this.rq.attributed.all(JSON.stringify(deployIds)) as Row[]).map(toEpisode);
  }

  async hygieneFacts(q: HygieneQuery, cursor?: HygieneCursor): Promise<{ facts: HygieneFacts; next?: HygieneCursor }> {
    const limit = q.pageRows ?? 2000;
    const args: Record<string, unknown> = { since: q.since, until: q.until, limit };
    if (q.service !== undefined) args.service = q.service;
    if (q.environment !== undefined) args.environment = q.environment;
    // Migration 2 added decisions.feedback, so every database this code opens keeps it.
    const feedbackRecorded = true;

    if (cursor?.phase !== 'episodes') {
      if (cursor) Object.assign(args, { at: cursor.after.at, received: cursor.after.receivedAt, id: cursor.after.id });
      const sql = `SELECT id, service, environment, kind, subject, version, at, received_at,
          json_array_length(changes) AS change_count
        FROM deploys WHERE at >= @since AND at < @until${timelineFilters(q, '')}
          ${cursor ? 'AND (at, received_at, id) > (@at, @received, @id)' : ''}
        ORDER BY at, received_at, id LIMIT @limit`;
      const rows = this.cached(sql).all(args) as Row[];
      const events = rows.map((r) => ({
        id: r.id as string,
        service: r.service as string,
        environment: r.environment as string,
        kind: r.kind as ChangeKind,
        subject: r.subject as string,
        version: r.version as string,
        at: r.at as number,
        receivedAt: r.received_at as number,
        changeCount: r.change_count as number,
      }));
      const last = events.at(-1);
      const next: HygieneCursor =
        rows.length < limit || !last
          ? { phase: 'episodes' }
          : { phase: 'events', after: { at: last.at, receivedAt: last.receivedAt, id: last.id } };
      return { facts: { events, episodes: [], feedbackRecorded }, next };
    }

    if (cursor.after) Object.assign(args, { starts: cursor.after.startsAtMs, episode: cursor.after.id });
    const notMine = `json_extract(d.feedback, '$.kind') = 'not_my_change'`;
    const sql = `SELECT e.id, e.starts_at_ms, d.service, d.deploy_id, x.kind AS deploy_kind, x.at AS deploy_at,
        ifnull(${notMine}, 0) AS not_mine
      FROM episodes e JOIN decisions d ON d.episode_id = e.id LEFT JOIN deploys x ON x.id = d.deploy_id
      WHERE e.starts_at_ms >= @since AND e.starts_at_ms < @until${timelineFilters(q, 'd.')}
        ${cursor.after ? 'AND (e.starts_at_ms, e.id) > (@starts, @episode)' : ''}
      ORDER BY e.starts_at_ms, e.id LIMIT @limit`;
    const rows = this.cached(sql).all(args) as Row[];
    const episodes = rows.map((r) => {
      const ep: DecidedEpisode = { startsAtMs: r.starts_at_ms as number, notMine: r.not_mine === 1 };
      if (r.service !== null) ep.service = r.service as string;
      if (r.deploy_id !== null) ep.deployId = r.deploy_id as string;
      if (r.deploy_kind !== null) ep.deployKind = r.deploy_kind as ChangeKind;
      if (r.deploy_at !== null) ep.deployAt = r.deploy_at as number;
      return ep;
    });
    const last = rows.at(-1);
    const facts = { events: [], episodes, feedbackRecorded };
    if (rows.length < limit || !last) return { facts };
    return {
      facts,
      next: { phase: 'episodes', after: { startsAtMs: last.starts_at_ms as number, id: last.id as number } },
    };
  }

  async listDeploys(query: DeployQuery) {
    const filters: [string, ...unknown[]][] = [];
    if (query.service !== undefined) filters.push(['service = ?', query.service]);
    if (query.environment !== undefined) filters.push(['environment = ?', query.environment]);
    if (query.since !== undefined) filters.push(['at >= ?', query.since]);
    const b = query.before;
    if (b) filters.push(['(at, received_at, id) < (?, ?, ?)', b.at, b.receivedAt, b.id]);
    const where = filters.map(([sql]) => sql);
    const args = filters.flatMap(([, ...arg]) => arg);
    const sql = `SELECT * FROM deploys ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY at DESC, received_at DESC, id DESC LIMIT ?`;
    return (this.cached(sql).all(...args, query.limit) as Row[]).map(toDeploy);
  }

  async deploysBetween(query: TimelineQuery) {
    const sql = `SELECT ${deployColumns(query.listLimit)} FROM deploys d
      WHERE d.at BETWEEN @from AND @to${timelineFilters(query, 'd.')}
      ORDER BY d.at DESC, d.received_at DESC LIMIT @limit`;
    return (this.cached(sql).all(timelineArgs(query)) as Row[]).map(toSummary);
  }

  async deploySummaries(ids: readonly string[], listLimit: number) {
    const sql = `SELECT ${deployColumns(listLimit)} FROM deploys d WHERE d.id IN (SELECT value FROM json_each(?))`;
    return (this.cached(sql).all(JSON.stringify(ids)) as Row[]).map(toSummary);
  }

  async pageDeliveries(episodeIds: readonly number[]): Promise<PageDeliveryRecord[]> {
    // The outbox and the attempts name a page by its id as text.
    const sql = `SELECT m.episode_id, p.id AS page_id, p.target, o.due_at,
        l.outcome, l.detail, l.at, l.attempt, l.channel,
        (SELECT max(x.at) FROM deliveries x
          WHERE x.kind = 'page' AND x.ref = CAST(p.id AS TEXT) AND x.outcome = 'delivered') AS delivered_at
      FROM page_members m
      JOIN pages p ON p.id = m.page_id
      LEFT JOIN outbox o ON o.kind = 'page' AND o.ref = CAST(p.id AS TEXT)
      LEFT JOIN deliveries l ON l.id = (SELECT max(x.id) FROM deliveries x WHERE x.kind = 'page' AND x.ref = CAST(p.id AS TEXT))
      WHERE m.episode_id IN (SELECT value FROM json_each(?))
      ORDER BY m.episode_id, p.id`;
    return (this.cached(sql).all(JSON.stringify(episodeIds)) as Row[]).map((r) => {
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

  async episodesBetween(query: TimelineQuery) {
    // The first condition is the expression of the episodes_by_end index, written the same way so it is used.
    const sql = `SELECT e.*, d.* FROM episodes e JOIN decisions d ON d.episode_id = e.id
      WHERE ifnull(e.ends_at_ms, 9223372036854775807) >= @from AND e.starts_at_ms <= @to${timelineFilters(query, 'd.')}
      ORDER BY e.starts_at_ms DESC, e.id DESC LIMIT @limit`;
    return (this.cached(sql).all(timelineArgs(query)) as Row[]).map(toEpisode);
  }

  async serviceNames() {
    // A skip scan over the (service, ...) indexes: one seek per distinct service, not one row per deploy.
    const sql = `WITH RECURSIVE
      ds(s) AS (SELECT min(service) FROM deploys
        UNION ALL SELECT (SELECT min(service) FROM deploys WHERE service > ds.s) FROM ds WHERE ds.s IS NOT NULL),
      es(s) AS (SELECT min(service) FROM decisions
        UNION ALL SELECT (SELECT min(service) FROM decisions WHERE service > es.s) FROM es WHERE es.s IS NOT NULL)
      SELECT s FROM ds WHERE s IS NOT NULL UNION SELECT s FROM es WHERE s IS NOT NULL ORDER BY s LIMIT 1000`;
    return (this.cached(sql).all() as { s: string }[]).map((r) => r.s);
  }

  async findDeployCandidates(q: {
    service: string;
    environment: string;
    startsAtMs: number;
    windowMs: number;
    skewMs: number;
  }): Promise<DeployCandidates> {
    const from = q.startsAtMs - q.windowMs;
    const to = q.startsAtMs + q.skewMs;
    const inWindow = (this.q.deploysInWindow.all(q.service, q.environment, from, to) as Row[]).map(toDeploy);
    const result: DeployCandidates = { inWindow };
    const after = this.q.deployAfter.get(q.service, q.environment, to) as Row | undefined;
    if (after) result.nextAfter = toDeploy(after);
    if (inWindow.length === 0) {
      const before = this.q.deployBefore.get(q.service, q.environment, from) as Row | undefined;
      if (before) result.lastBefore = toDeploy(before);
    }
    return result;
  }

  async knownEpisodes(alerts: readonly Pick<Alert, 'fingerprint' | 'startsAt'>[]) {
    const known = new Set<string>();
    for (const a of alerts) if (this.q.episodeByKey.get(a.fingerprint, a.startsAt)) known.add(episodeKey(a));
    return known;
  }

  /**
   * Records one notification; see grouped() for how its commit is shared.
   */
  recordAlerts(
    group: { groupKey: string; receiver: string; externalURL: string },
    writes: readonly AlertWrite[],
    now: number,
  ): Promise<RecordResult> {
    return this.grouped(() => this.recordAlertsNow(group, writes, now));
  }

  private readonly pendingWrites: {
    run: () => unknown;
    resolve: (r: never) => void;
    reject: (e: unknown) => void;
  }[] = [];

  /**
   * Group commit. The writes that arrive in the same turn of the event loop (notifications, deploys, delivery
   * records) share one transaction, each in a savepoint of its own, and each promise settles only after that
   * transaction has committed: under load one fsync serves many requests, and a 2xx still means on disk.
   * Alone, a write waits one setImmediate.
   */
  private grouped<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pendingWrites.push({ run, resolve: resolve as (r: never) => void, reject });
      if (this.pendingWrites.length === 1) setImmediate(() => this.commitPendingWrites());
    });
  }

  private commitPendingWrites(): void {
    const batch = this.pendingWrites.splice(0);
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      if (!this.db.open) throw new StorageError('database: the database is closed');
      this.db
        .transaction(() => {
          for (const item of batch) {
            try {
              // A nested transaction is a savepoint: one notification that fails rolls back alone.
              outcomes.push({ ok: true, value: this.db.transaction(item.run)() });
            } catch (error) {
              // SQLite rolls the whole transaction back by itself on some errors (a full disk, an I/O error):
              // then nothing in this batch can commit, and every caller must hear so.
              if (!this.db.inTransaction) throw error;
              outcomes.push({ ok: false, error });
            }
          }
        })
        .immediate();
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    }
    batch.forEach((item, k) => {
      const outcome = outcomes[k];
      if (outcome?.ok) item.resolve(outcome.value as never);
      else item.reject(outcome?.error);
    });
  }

  private recordAlertsNow(
    group: { groupKey: string; receiver: string; externalURL: string },
    writes: readonly AlertWrite[],
    now: number,
  ): RecordResult {
    const result: RecordResult = { newEpisodes: 0, resolved: 0, repeats: 0, pagesTouched: 0 };
    const touched = new Set<number>();
    for (const { alert, decision } of writes) {
      const existing = this.q.episodeByKey.get(alert.fingerprint, alert.startsAt) as
        | { id: number; status: AlertStatus; last_seen_at: number }
        | undefined;
      if (!existing) {
        if (!decision) throw new Error(`no decision for new episode ${episodeKey(alert)}`);
        const episodeId = this.insertEpisode(group, alert, decision, now);
        result.newEpisodes++;
        if (alert.status === 'firing') {
          for (const pageId of this.joinPages(group.groupKey, episodeId, decision, now)) touched.add(pageId);
        }
        for (const email of decision.notify) {
          const dm = this.q.insertDm.run(episodeId, email, decision.deployId ?? null, now);
          if (dm.changes === 1) this.q.enqueue.run('dm', String(dm.lastInsertRowid), now, now);
        }
      } else if (existing.status === 'firing' && alert.status === 'resolved') {
        this.closeEpisode(existing.id, alert.endsAtMs ?? now, now, touched);
        result.resolved++;
      } else {
        // A repeat, an HA duplicate, or a stale "firing" after we saw it resolve: resolved is final for an
        // episode, since a real re-fire comes with a new startsAt.
        // lastSeenAt is kept to the minute: a repeat then usually writes nothing, and costs no fsync.
        if (now - existing.last_seen_at >= LAST_SEEN_RESOLUTION_MS) this.q.touchEpisode.run(now, existing.id);
        result.repeats++;
      }
      if (alert.status === 'resolved') {
        // Alertmanager can report the end of a firing under another startsAt than the one it fired with (a
        // re-sent alert merged, a rule's ActiveAt moved by a Prometheus restart, amtool rounding to the second).
        // The end closes every episode of the fingerprint still open that had started by then; one that
        // started later is a new firing and stays open.
        const endsAtMs = alert.endsAtMs ?? now;
        for (const { id } of this.q.openEpisodesStartedBy.all(alert.fingerprint, endsAtMs) as { id: number }[]) {
          this.closeEpisode(id, endsAtMs, now, touched);
          result.resolved++;
        }
      }
    }
    for (const pageId of touched) this.q.enqueue.run('page', String(pageId), now, now);
    result.pagesTouched = touched.size;
    return result;
  }

  /** Marks a firing episode resolved, updates its DMs, and resolves each of its pages that has no member firing. */
  private closeEpisode(episodeId: number, endsAtMs: number, now: number, touched: Set<number>): void {
    this.q.resolveEpisode.run(endsAtMs, now, episodeId);
    for (const { id } of this.q.dmsOfEpisode.all(episodeId) as { id: number }[]) {
      this.q.enqueue.run('dm', String(id), now, now);
    }
    for (const page of this.q.pagesOfEpisode.all(episodeId) as Row[]) {
      const pageId = page.id as number;
      const { n } = this.q.firingMembers.get(pageId) as { n: number };
      if (n === 0 && this.q.resolvePage.run(now, pageId).changes === 1) touched.add(pageId);
    }
  }

  private insertEpisode(
    group: { groupKey: string; receiver: string; externalURL: string },
    alert: Alert,
    decision: Decision,
    now: number,
  ): number {
    const info = this.q.insertEpisode.run({
      fingerprint: alert.fingerprint,
      starts_at: alert.startsAt,
      starts_at_ms: alert.startsAtMs,
      ends_at_ms: alert.endsAtMs ?? null,
      status: alert.status,
      labels: JSON.stringify(alert.labels),
      annotations: JSON.stringify(alert.annotations),
      generator_url: alert.generatorURL,
      group_key: group.groupKey,
      receiver: group.receiver,
      external_url: group.externalURL,
      now,
    });
    const episodeId = Number(info.lastInsertRowid);
    this.q.insertDecision.run({
      episode_id: episodeId,
      reason: decision.reason,
      sentence: decision.sentence,
      service: decision.service ?? null,
      environment: decision.environment,
      policy: decision.policy,
      deploy_id: decision.deployId ?? null,
      suspects: JSON.stringify(decision.suspects),
      targets: JSON.stringify(decision.targets),
      responders: JSON.stringify(decision.responders),
      notify: JSON.stringify(decision.notify),
      would_page: JSON.stringify(decision.wouldPage),
      decided_at: now,
    });
    return episodeId;
  }

  /** Adds a new firing episode to the open page of each of its targets, opening pages where there is none. */
  private joinPages(
    groupKey: string,
    episodeId: number,
    decision: Pick<Decision, 'service' | 'environment' | 'targets'>,
    now: number,
  ): number[] {
    const service = decision.service ?? '';
    return decision.targets.map((t) => {
      const target = targetKey(t);
      let page = this.q.openPage.get(groupKey, service, target) as { id: number } | undefined;
      if (!page) {
        const { seq } = this.q.lastSeq.get(groupKey, service, target) as { seq: number | null };
        const next = (seq ?? 0) + 1;
        const dedupKey = pageDedupKey({ groupKey, service, target, seq: next });
        const info = this.q.insertPage.run(groupKey, service, decision.environment, target, next, now, dedupKey);
        page = { id: Number(info.lastInsertRowid) };
      }
      this.q.addMember.run(page.id, episodeId);
      return page.id;
    });
  }

  async alertHistory(fingerprint: string, query: Partial<HistoryQuery> = {}): Promise<EpisodeHistory[]> {
    const { limit = 20, before, deliveriesPerPage = 100 } = query;
    const rows = (
      before
        ? this.q.episodesByFingerprintBefore.all(fingerprint, before.startsAtMs, before.id, limit)
        : this.q.episodesByFingerprint.all(fingerprint, limit)
    ) as Row[];
    return rows.map((row) => {
      const episode = toEpisode(row);
      const pages = (this.q.pagesOfEpisode.all(episode.id) as Row[]).map(toPage);
      let deliveriesNotShown = 0;
      const deliveries = pages.flatMap((p) => {
        const { n } = this.q.deliveryCount.get('page', String(p.id)) as { n: number };
        deliveriesNotShown += Math.max(0, n - deliveriesPerPage);
        const latest = this.q.latestDeliveries.all('page', String(p.id), deliveriesPerPage) as Row[];
        return latest.reverse().map(toDelivery);
      });
      return { episode, pages, deliveries, deliveriesNotShown };
    });
  }

  async dueOutbox(now: number, limit: number, kinds: readonly OutboxKind[] = ALL_KINDS): Promise<OutboxItem[]> {
    // Pages before change events. DMs take turns by episode: the first due DM of every episode, then the second
    // of each, and so on, so that one alert's many DMs cannot hold up another alert's. The turns are dealt
    // among the oldest due rows only, which keeps this poll cheap under a backlog of thousands.
    const sql = `WITH due AS (
          SELECT * FROM outbox WHERE due_at <= ? AND kind IN (${kinds.map(() => '?').join(',')})
          ORDER BY kind = 'page' DESC, due_at, id LIMIT ?)
        SELECT due.*, ROW_NUMBER() OVER (
          PARTITION BY CASE WHEN due.kind = 'dm' THEN 'episode:' || d.episode_id ELSE due.kind || ':' || due.ref END
          ORDER BY due.due_at, due.id) AS turn
        FROM due LEFT JOIN dms d ON due.kind = 'dm' AND d.id = CAST(due.ref AS INTEGER)
        ORDER BY due.kind = 'page' DESC, turn, due.due_at, due.id LIMIT ?`;
    const rows = this.cached(sql).all(now, ...kinds, Math.max(limit, TURN_CANDIDATES), limit) as Row[];
    return rows.map((r) => ({
      id: r.id as number,
      kind: r.kind as OutboxKind,
      ref: r.ref as string,
      generation: r.generation as number,
      attempts: r.attempts as number,
      createdAt: r.created_at as number,
      dueAt: r.due_at as number,
    }));
  }

  async nextDueAt(kinds: readonly OutboxKind[] = ALL_KINDS) {
    const sql = `SELECT MIN(due_at) AS due FROM outbox WHERE kind IN (${kinds.map(() => '?').join(',')})`;
    const { due } = this.cached(sql).get(...kinds) as { due: number | null };
    return due ?? undefined;
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** Statements whose SQL depends on which filters are set, prepared once per shape. */
  private cached(sql: string): Database.Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  async dmWithContext(dmId: number, threadWindowMs: number): Promise<DmContext | undefined> {
    const row = this.q.dmById.get(dmId) as Row | undefined;
    if (!row) return undefined;
    const dm = toDm(row);
    const episodeRow = this.q.episodeById.get(dm.episodeId) as Row | undefined;
    if (!episodeRow) return undefined;
    const episode = toEpisode(episodeRow);
    const pages = (this.q.pagesOfEpisode.all(dm.episodeId) as Row[]).map(toPage);
    const context: DmContext = { dm, episode, pages };
    if (dm.deployId !== undefined) {
      const root = this.q.threadRoot.get(dm.email, dm.deployId, dm.createdAt - threadWindowMs, dm.id) as
        | Row
        | undefined;
      if (root) context.threadRoot = toDm(root);
    }
    return context;
  }

  async updateDm(dmId: number, patch: Record<string, string>) {
    this.db.transaction(() => this.mergeDelivered('dm', dmId, patch)).immediate();
  }

  async recordNotMine(episodeId: number, by: string, now: number) {
    return this.db
      .transaction(() => {
        const row = this.q.feedbackOf.get(episodeId) as
          | { feedback: string | null; status: string; group_key: string; service: string | null; environment: string }
          | undefined;
        if (!row || row.feedback !== null) return { recorded: false };
        this.q.setFeedback.run(JSON.stringify({ kind: 'not_my_change', by, at: now }), episodeId);
        if (row.status === 'firing') {
          const oncall = { service: row.service ?? undefined, environment: row.environment, targets: [ONCALL_TARGET] };
          for (const pageId of this.joinPages(row.group_key, episodeId, oncall, now)) {
            this.q.enqueue.run('page', String(pageId), now, now);
          }
        }
        return { recorded: true };
      })
      .immediate();
  }

  /** Merges a delivery state patch into a page's or a DM's `delivered` JSON. */
  private mergeDelivered(kind: OutboxKind, id: number, patch: Record<string, string>) {
    const table = kind === 'page' ? this.q.pageDelivered : kind === 'dm' ? this.q.dmDelivered : undefined;
    const setter = kind === 'page' ? this.q.setDelivered : kind === 'dm' ? this.q.setDmDelivered : undefined;
    if (!table || !setter) return;
    const current = table.get(id) as { delivered: string } | undefined;
    if (!current) return;
    setter.run(JSON.stringify({ ...JSON.parse(current.delivered), ...patch }), id);
  }

  async pageWithMembers(pageId: number) {
    const row = this.q.pageById.get(pageId) as Row | undefined;
    if (!row) return undefined;
    return { page: toPage(row), members: (this.q.membersOfPage.all(pageId) as Row[]).map(toEpisode) };
  }

  recordAttempt(
    item: OutboxItem,
    requests: readonly AttemptRecord[],
    next: { retryAt?: number; delivered?: Record<string, string> },
  ) {
    return this.grouped(() => {
      for (const request of requests) {
        this.q.insertDelivery.run(
          item.kind,
          item.ref,
          item.attempts + 1,
          request.at,
          request.channel,
          request.outcome,
          request.detail,
          Math.round(request.durationMs),
        );
      }
      if (next.delivered) this.mergeDelivered(item.kind, Number(item.ref), next.delivered);
      if (next.retryAt !== undefined) {
        this.q.reschedule.run(item.generation, next.retryAt, item.id);
        return;
      }
      // The subject changed while this delivery ran: keep the row, due now, so the change goes out too.
      if (this.q.retire.run(item.id, item.generation).changes === 0) this.q.bumpAttempts.run(item.id);
    });
  }

  recordUnmapped(who: string, reason: string, now: number) {
    // Through the group commit: on the webhook's path it shares the commit of the requests around it.
    return this.grouped(() => {
      this.q.upsertUnmapped.run(who, reason, now, now);
    });
  }

  async listUnmapped(query: { limit?: number; after?: UnmappedKey } = {}) {
    const { limit = 100, after } = query;
    const rows = after
      ? this.q.unmappedAfter.all(after.count, after.lastSeenAt, after.who, after.reason, limit)
      : this.q.unmapped.all(limit);
    return (rows as Row[]).map((r) => ({
      who: r.who as string,
      reason: r.reason as string,
      count: r.count as number,
      firstSeenAt: r.first_seen_at as number,
      lastSeenAt: r.last_seen_at as number,
    }));
  }

  async outboxStats(now: number) {
    const { depth, oldest } = this.q.stats.get() as { depth: number; oldest: number | null };
    return { depth, oldestUndeliveredAgeMs: oldest === null ? 0 : Math.max(0, now - oldest) };
  }

  createSession(session: SessionRecord, now: number) {
    return this.grouped(() => {
      this.q.purgeSessions.run(now);
      this.q.insertSession.run(session.idHash, session.tokenName, session.createdAt, session.expiresAt);
    });
  }

  async getSession(idHash: string, now: number) {
    const r = this.q.sessionById.get(idHash, now) as Row | undefined;
    return (
      r && {
        idHash: r.id_hash as string,
        tokenName: r.token_name as string,
        createdAt: r.created_at as number,
        expiresAt: r.expires_at as number,
      }
    );
  }

  deleteSession(idHash: string) {
    return this.grouped(() => {
      this.q.deleteSession.run(idHash);
    });
  }

  isOpen(): boolean {
    return this.db.open;
  }

  async ping() {
    this.db.transaction(() => this.q.ping.run(Date.now())).immediate();
  }

  async close() {
    if (this.db.open) this.db.close();
    this.lock?.release();
  }
}

function timelineFilters(q: { service?: string; environment?: string }, table: string): string {
  return `${q.service === undefined ? '' : ` AND ${table}service = @service`}${q.environment === undefined ? '' : ` AND ${table}environment = @environment`}`;
}

function timelineArgs(q: TimelineQuery): Record<string, unknown> {
  return {
    from: q.from,
    to: q.to,
    limit: q.limit,
    ...(q.service === undefined ? {} : { service: q.service }),
    ...(q.environment === undefined ? {} : { environment: q.environment }),
  };
}

/**
 * The columns of deploys (aliased d), with changes and hosts cut to their first `limit` entries in SQL: a
 * summary of a release with thousands of changes never brings them into JavaScript. json_each walks an array in
 * order and LIMIT stops it early, so a long array is neither copied nor sorted. Counts were stored with the row.
 */
function deployColumns(limit: number): string {
  const n = Math.max(0, Math.floor(limit));
  const head = (column: string, count: string, element: string) =>
    n === 0
      ? `'[]' AS ${column}`
      : `CASE WHEN ${count} <= ${n} THEN d.${column} ELSE (SELECT json_group_array(${element}) FROM (SELECT value FROM json_each(d.${column}) LIMIT ${n})) END AS ${column}`;
  const changeCount = 'ifnull(d.change_count, json_array_length(d.changes))';
  const hostCount = 'ifnull(d.host_count, json_array_length(d.hosts))';
  return [
    'd.id, d.service, d.environment, d.version, d.previous_version, d.stage, d.percent, d.at, d.received_at',
    'd.kind, d.flag, d.config, d.subject',
    head('changes', changeCount, 'json(value)'),
    head('hosts', hostCount, 'value'),
    `${changeCount} AS change_count, ${hostCount} AS host_count`,
  ].join(', ');
}

function toSummary(r: Row): DeploySummary {
  return { deploy: toDeploy(r), changeCount: r.change_count as number, hostCount: r.host_count as number };
}

/** The stage events of the same subject before or after a position (at, received_at, id), nearest first. */
function rolloutWalk(direction: 'before' | 'after', columns: string): string {
  const sameSubject = 'd.service = ? AND d.environment = ? AND d.kind = ? AND d.subject = ?';
  return direction === 'before'
    ? `SELECT ${columns} FROM deploys d WHERE ${sameSubject} AND (d.at, d.received_at, d.id) < (?, ?, ?)
       ORDER BY d.at DESC, d.received_at DESC, d.id DESC`
    : `SELECT ${columns} FROM deploys d WHERE ${sameSubject} AND (d.at, d.received_at, d.id) > (?, ?, ?)
       ORDER BY d.at, d.received_at, d.id`;
}

function deployRow(d: Deploy) {
  return {
    id: d.id,
    service: d.service,
    environment: d.environment,
    version: d.version,
    previous_version: d.previousVersion ?? null,
    stage: d.stage,
    percent: d.percent ?? null,
    hosts: JSON.stringify(d.hosts),
    at: d.at,
    received_at: d.receivedAt,
    changes: JSON.stringify(d.changes),
    kind: kindOf(d),
    flag: d.flag ? JSON.stringify(d.flag) : null,
    config: d.config ? JSON.stringify(d.config) : null,
    subject: subjectOf(d),
    change_count: d.changes.length,
    host_count: d.hosts.length,
  };
}

function toDeploy(r: Row): Deploy {
  const d: Deploy = {
    id: r.id as string,
    service: r.service as string,
    environment: r.environment as string,
    version: r.version as string,
    stage: r.stage as Stage,
    hosts: JSON.parse(r.hosts as string),
    at: r.at as number,
    receivedAt: r.received_at as number,
    changes: JSON.parse(r.changes as string),
  };
  if (r.previous_version !== null) d.previousVersion = r.previous_version as string;
  if (r.percent !== null) d.percent = r.percent as number;
  d.kind = (r.kind as ChangeKind | undefined) ?? 'deploy';
  if (r.flag) d.flag = JSON.parse(r.flag as string);
  if (r.config) d.config = JSON.parse(r.config as string);
  return d;
}

function toEpisode(r: Row): EpisodeRecord {
  const decision: EpisodeRecord['decision'] = {
    reason: r.reason as ReasonCode,
    sentence: r.sentence as string,
    environment: r.environment as string,
    policy: r.policy as PolicyMode,
    suspects: JSON.parse(r.suspects as string),
    targets: JSON.parse(r.targets as string),
    responders: JSON.parse(r.responders as string),
    notify: JSON.parse(r.notify as string),
    wouldPage: JSON.parse(r.would_page as string),
    decidedAt: r.decided_at as number,
  };
  if (r.service !== null) decision.service = r.service as string;
  if (r.deploy_id !== null) decision.deployId = r.deploy_id as string;
  if (typeof r.feedback === 'string') decision.feedback = JSON.parse(r.feedback);
  const e: EpisodeRecord = {
    id: r.id as number,
    fingerprint: r.fingerprint as string,
    startsAt: r.starts_at as string,
    startsAtMs: r.starts_at_ms as number,
    status: r.status as AlertStatus,
    labels: JSON.parse(r.labels as string),
    annotations: JSON.parse(r.annotations as string),
    generatorURL: r.generator_url as string,
    groupKey: r.group_key as string,
    receiver: r.receiver as string,
    externalURL: r.external_url as string,
    firstSeenAt: r.first_seen_at as number,
    lastSeenAt: r.last_seen_at as number,
    decision,
  };
  if (r.ends_at_ms !== null) e.endsAtMs = r.ends_at_ms as number;
  return e;
}

function toDm(r: Row): DmRecord {
  const dm: DmRecord = {
    id: r.id as number,
    episodeId: r.episode_id as number,
    email: r.email as string,
    createdAt: r.created_at as number,
    delivered: JSON.parse(r.delivered as string),
  };
  if (r.deploy_id !== null) dm.deployId = r.deploy_id as string;
  return dm;
}

function toPage(r: Row): PageRecord {
  const p: PageRecord = {
    id: r.id as number,
    groupKey: r.group_key as string,
    service: r.service as string,
    environment: r.environment as string,
    target: parseTargetKey(r.target as string),
    seq: r.seq as number,
    status: r.status as PageStatus,
    openedAt: r.opened_at as number,
    dedupKey: r.dedup_key as string,
    delivered: JSON.parse(r.delivered as string),
  };
  if (r.resolved_at !== null) p.resolvedAt = r.resolved_at as number;
  return p;
}

function toDelivery(r: Row): DeliveryRecord {
  return {
    kind: r.kind as DeliveryRecord['kind'],
    ref: r.ref as string,
    attempt: r.attempt as number,
    at: r.at as number,
    channel: r.channel as string,
    outcome: r.outcome as DeliveryRecord['outcome'],
    detail: r.detail as string,
    durationMs: r.duration_ms as number,
  };
}

/** The statements of the canary gate, prepared on first use. */
function prepareRolloutQueries(db: Database.Database) {
  return {
    attributed: db.prepare(
      `SELECT e.*, d.* FROM decisions d JOIN episodes e ON e.id = d.episode_id
       WHERE d.deploy_id IN (SELECT value FROM json_each(?)) ORDER BY e.starts_at_ms, e.id`,
    ),
  };
}
