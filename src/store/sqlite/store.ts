import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
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
import { inTurns, takesTurns } from '../../core/turns.js';
import type {
  Alert,
  AlertStatus,
  Change,
  ChangeKind,
  CodeHostName,
  CodeHostSource,
  Decision,
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
import { lockDatabase } from './instance-lock.js';
import { MIGRATIONS } from './migrations.js';

/** How many of each kind's oldest due outbox rows pages and DMs take turns among (see claimDue). */
const TURN_CANDIDATES = 1000;

/**
 * Opens (creating if needed) the SQLite database at `path` and brings its schema up to date. `:memory:` gives a
 * private in-memory database: the one-line store for tests.
 */
export function openSqliteStore(path: string, opts: { locked?: boolean } = {}): Store {
  const inMemory = path === ':memory:';
  if (!inMemory) mkdirSync(dirname(path), { recursive: true });
  // Taken first, so that a second instance neither migrates nor reads a database another one runs on. A store
  // opened in the database thread (thread.ts) runs under the lock its process already holds.
  const lock = inMemory || opts.locked ? undefined : lockDatabase(path);
  try {
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    // FULL: a commit is on disk before we answer 2xx, even across power loss. That is the promise to Alertmanager.
    // A commit of delivery records alone uses NORMAL (SqliteStore.committed).
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    // SQLite's own default page cache, 2 MB (better-sqlite3 builds with 16 MB). In a storm the cache fills with
    // pages the operating system caches anyway; the smaller one kept the 100,000-alert storm 12 MB lower and cost
    // no measurable time (docs/performance.md#delivery-records-without-an-fsync-and-sqlites-page-cache).
    db.pragma('cache_size = -2000');
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

/** Every statement of the adapter, prepared on first use into the one cache (SqliteStore.cached). */
const SQL = {
  insertDeploy: `INSERT INTO deploys (id, service, environment, version, previous_version, stage, percent, hosts, at, received_at, changes,
           kind, flag, config, subject, change_count, host_count, rollback, lead_ms, source)
         VALUES (@id, @service, @environment, @version, @previous_version, @stage, @percent, @hosts, @at, @received_at, @changes,
           @kind, @flag, @config, @subject, @change_count, @host_count, @rollback, @lead_ms, @source)
         ON CONFLICT (id) DO NOTHING`,
  deploysBefore: `SELECT * FROM deploys WHERE service = ? AND environment = ? AND kind = 'deploy' AND at <= ?
    ORDER BY at DESC, received_at DESC LIMIT ?`,
  insertRolledBack: 'INSERT INTO rolled_back (deploy_id, rollback_id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
  // What core/plan.ts planRollback reads: the pages and DMs of the alerts attributed to what a rollback undid.
  pagesOfDeploys: `SELECT DISTINCT p.id, p.status, o.due_at FROM decisions x JOIN page_members m ON m.episode_id = x.episode_id
    JOIN pages p ON p.id = m.page_id LEFT JOIN outbox o ON o.kind = 'page' AND o.ref = CAST(p.id AS TEXT)
    WHERE x.deploy_id IN (SELECT value FROM json_each(?)) ORDER BY p.id`,
  dmsOfDeploys: `SELECT dm.id, e.status, o.due_at FROM decisions x JOIN episodes e ON e.id = x.episode_id
    JOIN dms dm ON dm.episode_id = e.id LEFT JOIN outbox o ON o.kind = 'dm' AND o.ref = CAST(dm.id AS TEXT)
    WHERE x.deploy_id IN (SELECT value FROM json_each(?)) ORDER BY dm.id`,
  rollbacksOf: `SELECT r.deploy_id, r.rollback_id, r.at, d.version FROM rolled_back r JOIN deploys d ON d.id = r.rollback_id
    WHERE r.deploy_id IN (SELECT value FROM json_each(?)) ORDER BY r.at, r.deploy_id`,
  deployById: 'SELECT * FROM deploys WHERE id = ?',
  enrichDeploy: 'UPDATE deploys SET changes = ?, change_count = ?, source = ?, lead_ms = ? WHERE id = ?',
  deployAt: 'SELECT at FROM deploys WHERE id = ?',
  deploysInWindow: `SELECT * FROM deploys WHERE service = ? AND environment = ? AND at BETWEEN ? AND ? ORDER BY at DESC, received_at DESC`,
  deployAfter: 'SELECT * FROM deploys WHERE service = ? AND environment = ? AND at > ? ORDER BY at ASC LIMIT 1',
  deployBefore: 'SELECT * FROM deploys WHERE service = ? AND environment = ? AND at < ? ORDER BY at DESC LIMIT 1',
  episodeByKey: `SELECT id, fingerprint, starts_at, starts_at_ms, status, last_seen_at FROM episodes
    WHERE fingerprint = ? AND starts_at = ?`,
  firingOfFingerprint: `SELECT id, fingerprint, starts_at, starts_at_ms, status, last_seen_at FROM episodes
    WHERE fingerprint = ? AND status = 'firing'`,
  pageIdsOfEpisode: 'SELECT page_id FROM page_members WHERE episode_id = ? ORDER BY page_id',
  dmIdsOfEpisode: 'SELECT id FROM dms WHERE episode_id = ? ORDER BY id',
  firingMemberIds: `SELECT m.episode_id FROM page_members m JOIN episodes e ON e.id = m.episode_id
    WHERE m.page_id = ? AND e.status = 'firing' ORDER BY m.episode_id`,
  insertEpisode: `INSERT INTO episodes (fingerprint, starts_at, starts_at_ms, ends_at_ms, status, labels, annotations, generator_url,
           group_key, receiver, external_url, first_seen_at, last_seen_at)
         VALUES (@fingerprint, @starts_at, @starts_at_ms, @ends_at_ms, @status, @labels, @annotations, @generator_url,
           @group_key, @receiver, @external_url, @now, @now)`,
  insertDecision: `INSERT INTO decisions (episode_id, reason, sentence, service, environment, policy, deploy_id, suspects, targets,
           responders, notify, would_page, decided_at)
         VALUES (@episode_id, @reason, @sentence, @service, @environment, @policy, @deploy_id, @suspects, @targets,
           @responders, @notify, @would_page, @decided_at)`,
  resolveEpisode: `UPDATE episodes SET status = 'resolved', ends_at_ms = ?, last_seen_at = ? WHERE id = ?`,
  touchEpisode: 'UPDATE episodes SET last_seen_at = ? WHERE id = ?',
  openPage: `SELECT * FROM pages WHERE group_key = ? AND service = ? AND target = ? AND status = 'open'`,
  lastSeq: 'SELECT MAX(seq) AS seq FROM pages WHERE group_key = ? AND service = ? AND target = ?',
  insertPage: `INSERT INTO pages (group_key, service, environment, target, seq, status, opened_at, dedup_key, comment_host)
         VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?)`,
  addMember: 'INSERT INTO page_members (page_id, episode_id) VALUES (?, ?)',
  pagesOfEpisode:
    'SELECT p.* FROM pages p JOIN page_members m ON m.page_id = p.id WHERE m.episode_id = ? ORDER BY p.id',
  resolvePage: `UPDATE pages SET status = 'resolved', resolved_at = ? WHERE id = ? AND status = 'open'`,
  // A kind's oldest due rows in order (outbox_by_kind_due, no sort), with what they take turns by (core/turns.ts).
  dueOfKind: `SELECT o.*, CASE o.kind WHEN 'page' THEN p.service WHEN 'dm' THEN d.episode_id END AS turn_key
    FROM outbox o LEFT JOIN pages p ON o.kind = 'page' AND p.id = CAST(o.ref AS INTEGER)
      LEFT JOIN dms d ON o.kind = 'dm' AND d.id = CAST(o.ref AS INTEGER)
    WHERE o.kind = ? AND o.due_at <= ? ORDER BY o.due_at, o.id LIMIT ?`,
  // created_at is kept on conflict: a row's age counts from when its subject first needed delivering.
  enqueue: `INSERT INTO outbox (kind, ref, created_at, due_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (kind, ref) DO UPDATE SET generation = generation + 1, due_at = MIN(due_at, excluded.due_at)`,
  episodesByFingerprint: `SELECT e.*, d.*
         FROM episodes e JOIN decisions d ON d.episode_id = e.id WHERE e.fingerprint = ?
         ORDER BY e.starts_at_ms DESC, e.id DESC LIMIT ?`,
  episodesByFingerprintBefore: `SELECT e.*, d.*
         FROM episodes e JOIN decisions d ON d.episode_id = e.id
         WHERE e.fingerprint = ? AND (e.starts_at_ms, e.id) < (?, ?)
         ORDER BY e.starts_at_ms DESC, e.id DESC LIMIT ?`,
  membersOfPage: `SELECT e.*, d.*
         FROM page_members m JOIN episodes e ON e.id = m.episode_id JOIN decisions d ON d.episode_id = e.id
         WHERE m.page_id = ? ORDER BY e.starts_at_ms, e.id`,
  pageById: 'SELECT * FROM pages WHERE id = ?',
  latestDeliveries: 'SELECT * FROM deliveries WHERE kind = ? AND ref = ? ORDER BY id DESC LIMIT ?',
  deliveryCount: 'SELECT COUNT(*) AS n FROM deliveries WHERE kind = ? AND ref = ?',
  insertDelivery: `INSERT INTO deliveries (kind, ref, attempt, at, channel, outcome, detail, duration_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  // A row whose subject changed during the failed attempt (generation moved on) stays due now.
  reschedule:
    'UPDATE outbox SET attempts = attempts + 1, due_at = CASE WHEN generation = ? THEN ? ELSE due_at END WHERE id = ?',
  retire: 'DELETE FROM outbox WHERE id = ? AND generation = ?',
  bumpAttempts: 'UPDATE outbox SET attempts = attempts + 1 WHERE id = ?',
  setDelivered: 'UPDATE pages SET delivered = ? WHERE id = ?',
  stats: 'SELECT COUNT(*) AS depth, MIN(created_at) AS oldest FROM outbox',
  ping: 'UPDATE heartbeat SET at = ? WHERE id = 1',
  insertDm: 'INSERT INTO dms (episode_id, email, deploy_id, created_at) VALUES (?, ?, ?, ?)',
  dmById: 'SELECT * FROM dms WHERE id = ?',
  episodeById: `SELECT e.*, d.*
         FROM episodes e JOIN decisions d ON d.episode_id = e.id WHERE e.id = ?`,
  threadRoot: 'SELECT * FROM dms WHERE email = ? AND deploy_id = ? AND created_at >= ? AND id < ? ORDER BY id LIMIT 1',
  dmDelivered: 'SELECT delivered FROM dms WHERE id = ?',
  setDmDelivered: 'UPDATE dms SET delivered = ? WHERE id = ?',
  pageDelivered: 'SELECT delivered FROM pages WHERE id = ?',
  feedbackOf: `SELECT d.feedback, e.status, e.group_key, e.fingerprint, e.starts_at, d.service, d.environment
         FROM decisions d JOIN episodes e ON e.id = d.episode_id WHERE d.episode_id = ?`,
  setFeedback: 'UPDATE decisions SET feedback = ? WHERE episode_id = ?',
  setEvidence: `UPDATE decisions SET reason = ?, sentence = ?, targets = ?, responders = ?, evidence = ?
         WHERE episode_id = ?`,
  leavePage: 'DELETE FROM page_members WHERE page_id = ? AND episode_id = ?',
  pageHeldFor: `SELECT NOT EXISTS (SELECT 1 FROM deliveries WHERE kind = 'page' AND ref = @ref)
           AND EXISTS (SELECT 1 FROM outbox WHERE kind = 'page' AND ref = @ref AND due_at > @now) AS held`,
  upsertUnmapped: `INSERT INTO unmapped_people (who, reason, count, first_seen_at, last_seen_at) VALUES (?, ?, 1, ?, ?)
         ON CONFLICT (who, reason) DO UPDATE SET count = count + 1, last_seen_at = excluded.last_seen_at`,
  unmapped: 'SELECT * FROM unmapped_people ORDER BY count DESC, last_seen_at DESC, who DESC, reason DESC LIMIT ?',
  unmappedAfter: `SELECT * FROM unmapped_people WHERE (count, last_seen_at, who, reason) < (?, ?, ?, ?)
         ORDER BY count DESC, last_seen_at DESC, who DESC, reason DESC LIMIT ?`,
  insertSession: 'INSERT INTO sessions (id_hash, token_name, created_at, expires_at) VALUES (?, ?, ?, ?)',
  purgeSessions: 'DELETE FROM sessions WHERE expires_at <= ?',
  sessionById: 'SELECT * FROM sessions WHERE id_hash = ? AND expires_at > ?',
  deleteSession: 'DELETE FROM sessions WHERE id_hash = ?',
  outboxAttempts: 'SELECT attempts FROM outbox WHERE id = ?',
  attributed: `SELECT e.*, d.* FROM decisions d JOIN episodes e ON e.id = d.episode_id
    WHERE d.deploy_id IN (SELECT value FROM json_each(?)) ORDER BY e.starts_at_ms, e.id`,
} as const;

/** What a write must survive before its caller hears that it committed. */
type Survives = 'power-loss' | 'process-crash';

/** A name → statement view of `sql`, each statement prepared on its first use. */
function lazyStatements<K extends string>(
  sql: Readonly<Record<K, string>>,
  prepare: (sql: string) => Database.Statement,
): Readonly<Record<K, Database.Statement>> {
  const statements = {} as Record<K, Database.Statement>;
  for (const key of Object.keys(sql) as K[]) Object.defineProperty(statements, key, { get: () => prepare(sql[key]) });
  return statements;
}

/** What a due row takes turns by: its page's service or its DM's episode (a row whose page or DM is gone: none). */
const turnKey = (row: Row) => (row.turn_key === null ? undefined : (row.turn_key as string | number));

class SqliteStore implements Store {
  /** The statements of SQL by name, each prepared on its first use. */
  private readonly q = lazyStatements(SQL, (sql) => this.cached(sql));

  constructor(
    private readonly db: Database.Database,
    private readonly lock?: { release(): void },
  ) {}

  saveDeploy(deploy: Deploy, opts: { sendChangeEvent?: boolean; enqueue?: readonly OutboxKind[] } = {}) {
    return this.grouped(() => {
      if (this.q.insertDeploy.run(deployRow(deploy)).changes === 1) {
        const now = deploy.receivedAt;
        const kinds = [...(opts.sendChangeEvent ? ['change' as const] : []), ...(opts.enqueue ?? [])];
        for (const kind of kinds) this.q.enqueue.run(kind, deploy.id, now, now);
        const undone = deploy.rollback?.of ?? [];
        if (undone.length > 0) {
          for (const id of undone) this.q.insertRolledBack.run(id, deploy.id, deploy.at);
          const ids = JSON.stringify(undone);
          const pages = (this.q.pagesOfDeploys.all(ids) as Row[]).map((r) => ({
            id: r.id as number,
            status: r.status as PageStatus,
            ...(r.due_at === null ? {} : { dueAt: r.due_at as number }),
          }));
          const dms = (this.q.dmsOfDeploys.all(ids) as Row[]).map((r) => ({
            id: r.id as number,
            episodeStatus: r.status as AlertStatus,
            ...(r.due_at === null ? {} : { dueAt: r.due_at as number }),
          }));
          this.execute(planRollback({ pages, dms }, now), now);
        }
        return { created: true, deploy };
      }
      return { created: false, deploy: toDeploy(this.q.deployById.get(deploy.id) as Row) };
    });
  }

  enrichDeploy(id: string, update: { changes: Change[]; source: CodeHostSource }) {
    return this.grouped(() => {
      // The lead time is the deploy's, now that its changes (and when they were merged) are known.
      const at = this.q.deployAt.pluck().get(id) as number | undefined;
      const lead = at === undefined ? undefined : leadTimeMs({ at, changes: update.changes });
      const { changes } = this.q.enrichDeploy.run(
        JSON.stringify(update.changes),
        update.changes.length,
        JSON.stringify(update.source),
        lead ?? null,
        id,
      );
      return { updated: changes === 1 };
    });
  }

  async getDeploy(id: string) {
    const row = this.q.deployById.get(id) as Row | undefined;
    return row && toDeploy(row);
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
    return (this.q.attributed.all(JSON.stringify(deployIds)) as Row[]).map(toEpisode);
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
          json_array_length(changes) AS change_count, rollback, lead_ms
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
        ...codeFacts(r),
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
    const sql = `SELECT e.id, e.starts_at_ms, e.ends_at_ms, d.service, d.deploy_id, d.reason, x.kind AS deploy_kind, x.at AS deploy_at,
        ifnull(${notMine}, 0) AS not_mine, instr(d.targets, '"kind":"person"') > 0 AS paged_person,
        json_extract(d.evidence, '$.verdict') AS evidence_verdict, json_extract(d.evidence, '$.effect') AS evidence_effect
      FROM episodes e JOIN decisions d ON d.episode_id = e.id LEFT JOIN deploys x ON x.id = d.deploy_id
      WHERE e.starts_at_ms >= @since AND e.starts_at_ms < @until${timelineFilters(q, 'd.')}
        ${cursor.after ? 'AND (e.starts_at_ms, e.id) > (@starts, @episode)' : ''}
      ORDER BY e.starts_at_ms, e.id LIMIT @limit`;
    const rows = this.cached(sql).all(args) as Row[];
    const episodes = rows.map((r) => {
      const ep: DecidedEpisode = {
        startsAtMs: r.starts_at_ms as number,
        notMine: r.not_mine === 1,
        pagedPerson: r.paged_person === 1,
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

  async deploysBefore(q: { service: string; environment: string; at: number; limit: number }) {
    return (this.q.deploysBefore.all(q.service, q.environment, q.at, q.limit) as Row[]).map(toDeploy);
  }

  async rollbacksOf(deployIds: readonly string[]) {
    if (deployIds.length === 0) return [];
    return (this.q.rollbacksOf.all(JSON.stringify(deployIds)) as Row[]).map(toRolledBack);
  }

  async findDeployCandidates(queries: readonly CandidateQuery[]) {
    const deploy = (row: unknown) => (row ? toDeploy(row as Row) : undefined);
    return queries.map((q) => {
      const inWindow = (this.q.deploysInWindow.all(q.service, q.environment, q.from, q.to) as Row[]).map(toDeploy);
      const after = deploy(this.q.deployAfter.get(q.service, q.environment, q.to));
      // The last deploy before the window counts only when the window is empty: otherwise it is not read at all.
      const before =
        inWindow.length === 0 ? deploy(this.q.deployBefore.get(q.service, q.environment, q.from)) : undefined;
      return deployCandidates({ inWindow, after, before });
    });
  }

  async knownEpisodes(alerts: readonly Pick<Alert, 'fingerprint' | 'startsAt'>[]) {
    const known = new Map<string, { lastSeenAt: number }>();
    for (const a of alerts) {
      const r = this.q.episodeByKey.get(a.fingerprint, a.startsAt) as Row | undefined;
      if (r) known.set(episodeKey(a), { lastSeenAt: r.last_seen_at as number });
    }
    return known;
  }

  /** Reads what the plan needs, plans, and writes the plan: one savepoint of a group commit (see grouped()). */
  recordAlerts(group: GroupInfo, writes: readonly AlertWrite[], now: number): Promise<RecordedAlerts> {
    return this.grouped(() => {
      const snapshot = this.readSnapshot(writeNeeds(group.groupKey, writes));
      const plan = planAlertWrites(group, writes, snapshot, now);
      this.execute(plan.ops, now);
      return { ...plan.counts, queued: queuedKinds(plan.ops) };
    });
  }
  private readonly pendingWrites: {
    survives: Survives;
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
  private grouped<T>(run: () => T, survives: Survives = 'power-loss'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pendingWrites.push({ survives, run, resolve: resolve as (r: never) => void, reject });
      if (this.pendingWrites.length === 1) setImmediate(() => this.commitPendingWrites());
    });
  }

  private commitPendingWrites(): void {
    const batch = this.pendingWrites.splice(0);
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      if (!this.db.open) throw new StorageError('database: the database is closed');
      const fsync = batch.some((w) => w.survives === 'power-loss');
      this.committed(fsync, () => {
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
      });
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

  /**
   * Runs `write` in one transaction. The connection commits with synchronous=FULL, the WAL fsynced at every
   * commit; a transaction that need not survive a power loss commits with NORMAL instead, without waiting for the
   * disk. It still survives the process, and the next FULL commit (or checkpoint) syncs the WAL and with it every
   * commit written before: a power loss can take only the newest such commits, never one before a FULL one, and
   * never half of one.
   */
  private committed(fsync: boolean, write: () => void): void {
    if (!fsync) this.db.pragma('synchronous = NORMAL');
    try {
      this.db.transaction(write).immediate();
    } finally {
      if (!fsync) this.db.pragma('synchronous = FULL');
    }
  }

  /** The stored rows a plan reads (core/plan.ts WriteNeeds says which), as of this transaction. */
  private readSnapshot(needs: WriteNeeds): WriteSnapshot {
    const episodes = new Map<number, StoredEpisode>();
    const stored = (r: Row, withLinks: boolean): void => {
      const id = r.id as number;
      if (episodes.has(id)) return;
      episodes.set(id, {
        id,
        fingerprint: r.fingerprint as string,
        startsAt: r.starts_at as string,
        startsAtMs: r.starts_at_ms as number,
        status: r.status as AlertStatus,
        lastSeenAt: r.last_seen_at as number,
        // Pages and DMs matter only to an episode a resolve may close: one of a fingerprint reported resolved.
        pageIds: withLinks ? (this.q.pageIdsOfEpisode.pluck().all(id) as number[]) : [],
        dmIds: withLinks ? (this.q.dmIdsOfEpisode.pluck().all(id) as number[]) : [],
      });
    };
    const resolvedFingerprints = new Set(needs.firingOf);
    for (const k of needs.episodeKeys) {
      const r = this.q.episodeByKey.get(k.fingerprint, k.startsAt) as Row | undefined;
      if (r) stored(r, needs.withLinks === true || (r.status === 'firing' && resolvedFingerprints.has(k.fingerprint)));
    }
    for (const fingerprint of needs.firingOf) {
      for (const r of this.q.firingOfFingerprint.all(fingerprint) as Row[]) stored(r, true);
    }
    const pages = new Map<number, StoredPage>();
    const page = (r: Row): void => {
      const id = r.id as number;
      if (pages.has(id)) return;
      pages.set(id, {
        id,
        slot: {
          groupKey: r.group_key as string,
          service: r.service as string,
          target: parseTargetKey(r.target as string),
        },
        status: r.status as PageStatus,
        firing: this.q.firingMemberIds.pluck().all(id) as number[],
        ...(r.comment_host ? { commentHost: r.comment_host as CodeHostName } : {}),
      });
    };
    for (const e of episodes.values()) {
      for (const id of e.pageIds) page(this.q.pageById.get(id) as Row);
    }
    const lastSeq = new Map<string, number>();
    for (const slot of needs.slots) {
      const target = targetKey(slot.target);
      const open = this.q.openPage.get(slot.groupKey, slot.service, target) as Row | undefined;
      if (open) page(open);
      const { seq } = this.q.lastSeq.get(slot.groupKey, slot.service, target) as { seq: number | null };
      if (seq !== null) lastSeq.set(slotKey(slot), seq);
    }
    return { episodes: [...episodes.values()], pages: [...pages.values()], lastSeq };
  }

  /** Writes a plan's operations in order; the plan's negative ids name the rows it inserts. */
  private execute(ops: readonly WriteOp[], now: number): void {
    const inserted = new Map<number, number>();
    const id = (planned: number): number => {
      if (planned >= 0) return planned;
      const actual = inserted.get(planned);
      if (actual === undefined) throw new Error(`plan names row ${planned} before inserting it`);
      return actual;
    };
    const rowid = (info: Database.RunResult) => Number(info.lastInsertRowid);
    for (const op of ops) {
      switch (op.op) {
        case 'insert_episode':
          inserted.set(op.id, this.insertEpisode(op.group, op.alert, op.decision, now));
          break;
        case 'touch_episode':
          this.q.touchEpisode.run(now, id(op.id));
          break;
        case 'resolve_episode':
          this.q.resolveEpisode.run(op.endsAtMs, now, id(op.id));
          break;
        case 'open_page': {
          const { groupKey, service, target } = op.slot;
          const info = this.q.insertPage.run(
            groupKey,
            service,
            op.environment,
            targetKey(target),
            op.seq,
            now,
            op.dedupKey,
            op.commentHost ?? null,
          );
          inserted.set(op.id, rowid(info));
          break;
        }
        case 'add_member':
          this.q.addMember.run(id(op.page), id(op.episode));
          break;
        case 'resolve_page':
          this.q.resolvePage.run(now, id(op.id));
          break;
        case 'insert_dm':
          inserted.set(op.id, rowid(this.q.insertDm.run(id(op.episode), op.email, op.deployId ?? null, now)));
          break;
        case 'leave_page':
          this.q.leavePage.run(id(op.page), id(op.episode));
          break;
        case 'enqueue':
          this.q.enqueue.run(op.kind, String(id(op.id)), now, op.dueAt ?? now);
          break;
      }
    }
  }

  private insertEpisode(group: GroupInfo, alert: Alert, decision: Decision, now: number): number {
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
    this.q.insertDecision.run(decisionRow(episodeId, decision, now));
    return episodeId;
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

  /**
   * One instance holds the database (the instance lock), so claims live in this process: a claim costs no write
   * and no fsync on the way to a page, and a restart (the only way a holder can die) forgets them all, so every
   * row is due again at once instead of after a lease.
   */
  private readonly leases = new Map<number, { owner: string; until: number }>();

  async claimDue(claim: Claim): Promise<ClaimedItem[]> {
    const { owner, now, limit, leaseMs, kinds = ALL_KINDS } = claim;
    for (const [id, lease] of this.leases) if (lease.until <= now) this.leases.delete(id);
    // The turns (core/turns.ts) are dealt among the oldest due rows of each kind only, which keeps this poll cheap
    // under a backlog of thousands; a kind that takes no turns needs no more rows than can be claimed. Rows under
    // a claim are among the oldest: fetch past them.
    const wanted = limit + this.leases.size;
    const due = kinds.flatMap((kind) => {
      const candidates = takesTurns(kind) ? Math.max(wanted, TURN_CANDIDATES) : wanted;
      const rows = this.q.dueOfKind.all(kind, now, candidates) as Row[];
      return rows.map((row) => ({
        row,
        kind,
        id: row.id as number,
        dueAt: row.due_at as number,
        turnKey: turnKey(row),
      }));
    });
    const claimed: ClaimedItem[] = [];
    for (const { row, id } of inTurns(due)) {
      if (claimed.length >= limit) break;
      if (this.leases.has(id)) continue;
      const leaseUntil = now + leaseMs;
      this.leases.set(id, { owner, until: leaseUntil });
      claimed.push({ ...toOutboxItem(row), owner, leaseUntil });
    }
    return claimed;
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
    if (episode.decision.deployId !== undefined) {
      const [rolledBack] = await this.rollbacksOf([episode.decision.deployId]);
      if (rolledBack) context.rolledBack = rolledBack;
    }
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
        const row = this.q.feedbackOf.get(episodeId) as Row | undefined;
        if (!row || row.feedback !== null) return { recorded: false };
        this.q.setFeedback.run(JSON.stringify({ kind: 'not_my_change', by, at: now }), episodeId);
        const episode = {
          id: episodeId,
          status: row.status as AlertStatus,
          groupKey: row.group_key as string,
          environment: row.environment as string,
          ...(row.service === null ? {} : { service: row.service as string }),
        };
        const snapshot = this.readSnapshot({
          episodeKeys: [{ fingerprint: row.fingerprint as string, startsAt: row.starts_at as string }],
          firingOf: [],
          slots: [oncallSlot(episode)],
          withLinks: true,
        });
        this.execute(planJoinOncall(episode, snapshot), now);
        return { recorded: true };
      })
      .immediate();
  }

  async evidenceSubject(episodeId: number) {
    const row = this.q.episodeById.get(episodeId) as Row | undefined;
    if (!row) return undefined;
    const episode = toEpisode(row);
    const deploy =
      episode.decision.deployId === undefined ? undefined : await this.getDeploy(episode.decision.deployId);
    return deploy ? { episode, deploy } : { episode };
  }

  async recordEvidence(
    episodeId: number,
    evidence: Evidence & { series?: EvidenceSeries[] },
    mode: EvidenceMode,
    now: number,
  ) {
    return this.db
      .transaction(() => {
        const row = this.q.episodeById.get(episodeId) as Row | undefined;
        if (!row) return undefined;
        const episode = toEpisode(row);
        // Judged once: a second judging (a claim that expired mid-gather) changes nothing.
        const judged = episode.decision.evidence;
        if (judged) return { effect: judged.effect, late: judged.late };
        // A page is still held for the evidence while no attempt has been made and its row is not due yet.
        const personPages = (this.q.pagesOfEpisode.all(episodeId) as Row[])
          .map(toPage)
          .filter((p) => p.target.kind === 'person' && p.status === 'open');
        const held =
          personPages.length > 0 &&
          personPages.every((p) => (this.q.pageHeldFor.get({ ref: String(p.id), now }) as { held: number }).held === 1);
        const outcome = evidenceArrived({ decision: episode.decision, evidence, mode, held, now });
        const d = outcome.decision;
        this.q.setEvidence.run(
          d.reason,
          d.sentence,
          JSON.stringify(d.targets),
          JSON.stringify(d.responders),
          JSON.stringify(outcome.evidence),
          episodeId,
        );
        const { episode: where, slots } = afterEvidenceNeeds(episode, personPages);
        const snapshot = this.readSnapshot({ episodeKeys: [], firingOf: [], slots });
        const dms = this.q.dmIdsOfEpisode.pluck().all(episodeId) as number[];
        const ops = planAfterEvidence(
          where,
          { personPages: personPages.map((p) => p.id), dms, reroute: outcome.reroute },
          snapshot,
        );
        this.execute(ops, now);
        return { effect: outcome.evidence.effect, late: outcome.evidence.late };
      })
      .immediate();
  }

  /** Merges a delivery state patch into a page's or a DM's `delivered` JSON. */
  private mergeDelivered(kind: OutboxKind, id: number, patch: Record<string, string>) {
    const subject = rowSubject(kind);
    const table = subject === 'page' ? this.q.pageDelivered : subject === 'dm' ? this.q.dmDelivered : undefined;
    const setter = subject === 'page' ? this.q.setDelivered : subject === 'dm' ? this.q.setDmDelivered : undefined;
    if (!table || !setter) return;
    const current = table.get(id) as { delivered: string } | undefined;
    if (!current) return;
    setter.run(JSON.stringify({ ...JSON.parse(current.delivered), ...patch }), id);
  }

  async pageWithMembers(pageId: number) {
    const row = this.q.pageById.get(pageId) as Row | undefined;
    if (!row) return undefined;
    const members = (this.q.membersOfPage.all(pageId) as Row[]).map(toEpisode);
    const rolledBack = await this.rollbacksOf([
      ...new Set(members.flatMap((m) => (m.decision.deployId === undefined ? [] : [m.decision.deployId]))),
    ]);
    return rolledBack.length > 0 ? { page: toPage(row), members, rolledBack } : { page: toPage(row), members };
  }

  recordAttempt(
    item: ClaimedItem,
    requests: readonly AttemptRecord[],
    next: { retryAt?: number; delivered?: Record<string, string> },
  ) {
    // Survives the process, not a power loss (see Store.recordAttempt): of the writes a page makes, this is the one
    // that answers no sender, and its commit waits for no fsync.
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
      const lease = this.leases.get(item.id);
      const attempts = this.q.outboxAttempts.pluck().get(item.id) as number | undefined;
      // The fence: the claim still holds and nobody recorded an attempt of this row since it was made.
      if (lease?.owner !== item.owner || lease.until !== item.leaseUntil || attempts !== item.attempts) {
        return { recorded: false };
      }
      this.leases.delete(item.id);
      if (next.delivered) this.mergeDelivered(item.kind, Number(item.ref), next.delivered);
      if (next.retryAt !== undefined) {
        this.q.reschedule.run(item.generation, next.retryAt, item.id);
      } else if (this.q.retire.run(item.id, item.generation).changes === 0) {
        // The subject changed while this delivery ran: keep the row, due now, so the change goes out too.
        this.q.bumpAttempts.run(item.id);
      }
      return { recorded: true };
    }, 'process-crash');
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

  /** One instance: every commit that enqueues work is this process's own, and the pipeline wakes the worker. */
  onWork(_listener: (kinds: readonly OutboxKind[]) => void): void {}

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
    'd.kind, d.flag, d.config, d.subject, d.rollback, d.lead_ms, d.source',
    head('changes', changeCount, 'json(value)'),
    head('hosts', hostCount, 'value'),
    `${changeCount} AS change_count, ${hostCount} AS host_count`,
  ].join(', ');
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
