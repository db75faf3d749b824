import type { EvidenceMode } from '../core/comparisons.js';
import type { DeployCandidates } from '../core/correlate.js';
import type { PageAttempts } from '../core/delivery-status.js';
import type { DecisionEvidence, EvidenceEffect, EvidenceSeries } from '../core/evidence-route.js';
import type { Evidence } from '../core/judge.js';
import type { AlertWrite, GroupInfo, KnownEpisodes, WriteCounts } from '../core/plan.js';
import type { HygieneFacts } from '../core/stats.js';
import {
  type Alert,
  type Change,
  CODE_HOSTS,
  type CodeHostName,
  type CodeHostSource,
  type Decision,
  type Deploy,
  type Target,
} from '../core/types.js';
import type { RollbackFact } from '../core/verdict.js';

// The storage ports and the records they exchange. Async, so that the SQLite adapter (the embedded default, one
// instance) and the PostgreSQL adapter (several replicas) implement the same ports; neither decides anything
// that core/ decides (docs/architecture.md, "The store").

/** An alert episode: one firing of one fingerprint, identified by (fingerprint, startsAt). */
export interface EpisodeRecord extends Alert {
  id: number;
  groupKey: string;
  receiver: string;
  externalURL: string;
  firstSeenAt: number;
  lastSeenAt: number;
  decision: Decision & { decidedAt: number; feedback?: Feedback; evidence?: DecisionEvidence };
}

/** What a person told changepager about a decision. */
export interface Feedback {
  kind: 'not_my_change';
  /** Who said so: an email when known, else the Slack user id. */
  by: string;
  at: number;
}

/** A DM to one person about one episode; `delivered` holds Slack's channel and ts once posted. */
export interface DmRecord {
  id: number;
  episodeId: number;
  email: string;
  deployId?: string;
  createdAt: number;
  delivered: Record<string, string>;
}

/** A deploy that a later rollback undid (core/rollback.ts decides what a rollback undoes). */
export interface RolledBack extends RollbackFact {
  /** The deploy undone. */
  deployId: string;
}

export interface DmContext {
  dm: DmRecord;
  /** The rollback that undid the deploy the DM is about, when one did. */
  rolledBack?: RolledBack;
  episode: EpisodeRecord;
  /** The pages the episode is on, for the PagerDuty links. */
  pages: PageRecord[];
  /** The earliest DM to the same person about the same deploy within the thread window, if not this one. */
  threadRoot?: DmRecord;
}

export type PageStatus = 'open' | 'resolved';

/**
 * A page: the alerts of one Alertmanager group, for one service, that go to one target. It opens with its
 * first firing member and resolves when every member has; a later episode then opens a page with seq + 1.
 */
export interface PageRecord {
  id: number;
  groupKey: string;
  service: string;
  environment: string;
  target: Target;
  seq: number;
  status: PageStatus;
  openedAt: number;
  resolvedAt?: number;
  /** Stable for the page's life: PagerDuty dedups on it, so a retried delivery changes nothing. */
  dedupKey: string;
  /** What a notifier reported it last delivered, e.g. a PagerDuty incident id. */
  delivered: Record<string, string>;
}

export interface PageWithMembers {
  page: PageRecord;
  members: EpisodeRecord[];
  /** The rollbacks that undid deploys the members are attributed to, earliest first. */
  rolledBack?: RolledBack[];
}

/**
 * page: bring a page to its members' state; change: send a deploy to PagerDuty as a change event;
 * dm: post or update a person's Slack DM about an episode; evidence: judge an episode's deploy on its metrics
 * (the ref is the episode id); `<host>_enrich`: find the changes a deploy reported by a code host's webhook
 * shipped (ref: the deploy id); `<host>_comment`: write or edit the comment about a page on the pull or merge
 * request of its change (ref: the page id).
 */
export type OutboxKind = 'page' | 'change' | 'dm' | 'evidence' | CodeHostKind;

/**
 * A code host's kinds, one pair per host: each kind is delivered by one channel (the first of the registry that
 * delivers it), so GitHub and GitLab, both on, each need kinds of their own.
 */
export type CodeHostKind = `${CodeHostName}_enrich` | `${CodeHostName}_comment`;

/**
 * What a row of this kind is about: its ref names a page, a DM, a deploy or an episode (evidence); a page's or a
 * DM's delivery state is patched by its deliveries.
 */
export function rowSubject(kind: OutboxKind): 'page' | 'dm' | 'deploy' | 'episode' {
  if (kind === 'page' || kind.endsWith('_comment')) return 'page';
  if (kind === 'dm') return 'dm';
  return kind === 'evidence' ? 'episode' : 'deploy';
}

/** Every kind: what a claim or a look at the outbox covers when it names none. */
export const ALL_KINDS: readonly OutboxKind[] = [
  'page',
  'change',
  'dm',
  'evidence',
  ...CODE_HOSTS.flatMap((h) => [enrichKind(h), commentKind(h)]),
];

export function enrichKind(host: CodeHostName): CodeHostKind {
  return `${host}_enrich`;
}

export function commentKind(host: CodeHostName): CodeHostKind {
  return `${host}_comment`;
}

export interface OutboxItem {
  id: number;
  kind: OutboxKind;
  /** The page id, or the deploy id. */
  ref: string;
  /** Bumped whenever the subject changes again while the row waits, so an older delivery does not retire it. */
  generation: number;
  attempts: number;
  createdAt: number;
  dueAt: number;
}

/** A worker asking for due rows: who it is, how many it can take, and how long it may hold them. */
export interface Claim {
  owner: string;
  now: number;
  limit: number;
  leaseMs: number;
  kinds?: readonly OutboxKind[];
}

/** A row claimed by `owner`; `attempts` as claimed is the fence that recordAttempt checks. */
export interface ClaimedItem extends OutboxItem {
  owner: string;
  leaseUntil: number;
}

export type AttemptOutcome = 'delivered' | 'retry' | 'failed';

export interface AttemptRecord {
  at: number;
  channel: string;
  outcome: AttemptOutcome;
  detail: string;
  durationMs: number;
}

export interface DeliveryRecord extends AttemptRecord {
  kind: OutboxKind;
  ref: string;
  attempt: number;
}

export interface EpisodeHistory {
  episode: EpisodeRecord;
  pages: PageRecord[];
  /** The latest attempts of each page, oldest first. */
  deliveries: DeliveryRecord[];
  /** Earlier attempts of its pages left out of `deliveries`. */
  deliveriesNotShown: number;
}

/** Where a page of episodes of one fingerprint starts: after this one, newest first. */
export interface EpisodeKey {
  startsAtMs: number;
  id: number;
}

export interface HistoryQuery {
  limit: number;
  before?: EpisodeKey;
  /** Delivery attempts kept per page: the latest ones. */
  deliveriesPerPage: number;
}

/** The order of deploy lists, newest first; a page starts after the deploy with this key. */
export interface DeployKey {
  at: number;
  receivedAt: number;
  id: string;
}

export interface DeployQuery {
  service?: string;
  environment?: string;
  since?: number;
  before?: DeployKey;
  limit: number;
}

export interface HygieneQuery {
  since: number;
  until: number;
  service?: string;
  environment?: string;
  /** Rows per page; 2000 when absent. */
  pageRows?: number;
}

/** Where the next page of hygiene facts starts: change events after `after`, or episodes after `after`. */
export type HygieneCursor = { phase: 'events'; after: DeployKey } | { phase: 'episodes'; after?: EpisodeKey };

/** The order of the unmapped people list, most frequent first; a page starts after this entry. */
export interface UnmappedKey {
  count: number;
  lastSeenAt: number;
  who: string;
  reason: string;
}

/** A time range of the timeline page (src/ui), with its filters. */
export interface TimelineQuery {
  /** Epoch ms; both ends inclusive. */
  from: number;
  to: number;
  service?: string;
  environment?: string;
  limit: number;
  /** Changes and hosts kept per deploy (DeploySummary). */
  listLimit: number;
}

/**
 * A change event as a view lists it: `deploy.changes` and `deploy.hosts` hold at most the number of entries
 * asked for, the counts say how many it has. A release can carry thousands of changes: a view that shows ten
 * should not read (or parse) megabytes for them.
 */
export interface DeploySummary {
  deploy: Deploy;
  changeCount: number;
  hostCount: number;
  /** Its lead time for changes (core/stats.ts leadTimeMs, over all its changes), when they carry times. */
  leadMs?: number;
}

/** One page an episode is on, with what its delivery came to (core/delivery-status.ts reads it). */
export interface PageDeliveryRecord extends PageAttempts {
  episodeId: number;
  pageId: number;
}

export interface UnmappedPerson {
  who: string;
  reason: string;
  count: number;
  firstSeenAt: number;
  lastSeenAt: number;
}

/** A timeline-page login (http/session.ts). */
export interface SessionRecord {
  /** SHA-256 (hex) of the session id in the cookie. */
  idHash: string;
  /** The configured API token that logged in. */
  tokenName: string;
  createdAt: number;
  expiresAt: number;
}

export interface OutboxStats {
  depth: number;
  /**
   * How long the oldest undelivered row has waited since it was first enqueued; 0 when the outbox is empty. Not
   * since it was last due: every retry moves that forward, which would hide a delivery failing for minutes.
   */
  oldestUndeliveredAgeMs: number;
}

// The store is split by concern, so that each consumer takes only the part it uses: the pipeline ingests, the
// outbox worker and its channels deliver, the API reads, the timeline page and the numbers look back, and the
// service's lifecycle checks and closes. Every adapter (sqlite/, postgres/) implements all of them, and the
// contract suite in test/store/ runs the same cases against each. Each method is one transaction.

/** What ingest writes, and the reads its decisions need (pipeline.ts). */
export interface IngestStore {
  /**
   * Stores a deploy; `created: false` when its id was stored before (the stored one is returned unchanged).
   * With `sendChangeEvent`, a new deploy also gets an outbox row that sends it to PagerDuty as a change event;
   * with `enqueue`, a row of each of these kinds (a code host's enrichment), all in the same transaction.
   * A new rollback (`deploy.rollback`) records what it undid, and queues work for the open pages and the DMs of
   * firing alerts attributed to those deploys, so that the incident gets a note and the DM says so.
   */
  saveDeploy(
    deploy: Deploy,
    opts?: { sendChangeEvent?: boolean; enqueue?: readonly OutboxKind[] },
  ): Promise<{ created: boolean; deploy: Deploy }>;
  /**
   * Replaces the changes of a deploy reported by a code host, and its source (how finding them went), once the
   * host's API answered or gave up. `updated: false` for an unknown id.
   */
  enrichDeploy(id: string, update: { changes: Change[]; source: CodeHostSource }): Promise<{ updated: boolean }>;
  /**
   * For each query, the deploys of its service and environment around an alert's start (core/correlate.ts
   * deployWindow gives the range), in the queries' order: a slice of alerts asks once, not once per alert.
   */
  findDeployCandidates(queries: readonly CandidateQuery[]): Promise<DeployCandidates[]>;
  /** The code deploys (kind deploy) of a service and environment with `at` up to `at`, latest first. */
  deploysBefore(q: { service: string; environment: string; at: number; limit: number }): Promise<Deploy[]>;
  /** Which of these episodes are already stored, as "fingerprint|startsAt" keys (core/plan.ts episodeKey). */
  knownEpisodes(alerts: readonly Pick<Alert, 'fingerprint' | 'startsAt'>[]): Promise<KnownEpisodes>;
  /**
   * Records alerts of one Alertmanager notification (all of them, or one slice of a large one) in one
   * transaction, as core/plan.ts planAlertWrites says: new episodes with their decisions, status changes, page
   * membership, DMs and the outbox rows that deliver them.
   */
  recordAlerts(group: GroupInfo, writes: readonly AlertWrite[], now: number): Promise<RecordedAlerts>;
  /**
   * Records "not my change" on the episode's decision and, while the episode fires, adds it to the on-call
   * page of its group (core/plan.ts planJoinOncall), in one transaction. `recorded: false` when the feedback was
   * already there.
   */
  recordNotMine(episodeId: number, by: string, now: number): Promise<{ recorded: boolean }>;
}

/** The outbox, and what a delivery reads and records (deliver/worker.ts and the channels). */
export interface OutboxStore {
  /**
   * Claims up to `limit` outbox rows of these kinds that are due at `now` and that no live claim holds, for
   * `owner` until `now + leaseMs`: no other claim gets them meanwhile, so each row is attempted by one worker (one
   * replica) at a time. Order: pages first, then oldest first, except that DMs take turns by episode (each
   * episode's oldest due DM, then each one's next), so one alert's DMs cannot delay another's. A claim whose
   * holder died simply expires, and the row is claimed again.
   */
  claimDue(claim: Claim): Promise<ClaimedItem[]>;
  /** When the next row of these kinds falls due, leases aside; undefined when the outbox holds none. */
  nextDueAt(kinds?: readonly OutboxKind[]): Promise<number | undefined>;
  /**
   * Records a delivery attempt and what follows from it, in one transaction: one delivery record per request the
   * attempt made (usually one), `delivered` merged into the subject's delivery state; `retryAt` reschedules the
   * row, otherwise it is retired (unless its subject changed meanwhile, in which case it stays due), and the claim
   * ends. When the claim was lost meanwhile (it expired and another claim took the row, or that one already
   * recorded its attempt: the row's attempt count moved on), only the delivery records are written and
   * `recorded` is false: a late worker cannot overwrite what the row's new holder does.
   *
   * The record must survive a crash of the process, not a power loss: an adapter may commit it without waiting for
   * the disk. Losing it means the delivery is made again, which delivery already allows for (a crash between the
   * request and this record does the same), and PagerDuty deduplicates on the page's key.
   */
  recordAttempt(
    item: ClaimedItem,
    requests: readonly AttemptRecord[],
    next: { retryAt?: number; delivered?: Record<string, string> },
  ): Promise<{ recorded: boolean }>;
  pageWithMembers(pageId: number): Promise<PageWithMembers | undefined>;
  dmWithContext(dmId: number, threadWindowMs: number): Promise<DmContext | undefined>;
  /** Merges state into a DM's delivery record (an acknowledgement, say) outside a delivery attempt. */
  updateDm(dmId: number, patch: Record<string, string>): Promise<void>;
  outboxStats(now: number): Promise<OutboxStats>;
}

/** What the evidence handler (evidence/handler.ts) reads and writes. */
export interface EvidenceStore {
  /** An episode and the deploy its decision names, for judging that deploy's evidence. */
  evidenceSubject(episodeId: number): Promise<{ episode: EpisodeRecord; deploy?: Deploy } | undefined>;
  /**
   * Stores an episode's judged evidence with its decision and acts on it, in one transaction, as
   * core/evidence-route.ts evidenceArrived and core/plan.ts planAfterEvidence say: the person's pages held for it
   * (no attempt made, the outbox row not due yet) and the DMs due now; when it clears the deploy, the decision
   * rewritten and the episode moved from those pages to the on-call page. Undefined for an unknown episode.
   */
  recordEvidence(
    episodeId: number,
    evidence: Evidence & { series?: EvidenceSeries[] },
    mode: EvidenceMode,
    now: number,
  ): Promise<{ effect: EvidenceEffect; late: boolean } | undefined>;
}

/** What the API reads: deploys, rollouts and what was attributed to them, an alert's history. */
export interface ReadStore {
  getDeploy(id: string): Promise<Deploy | undefined>;
  listDeploys(query: DeployQuery): Promise<Deploy[]>;
  /**
   * The stage events of the rollout change event `id` belongs to, oldest first: the events of its service,
   * environment, kind and subject (core/change.ts subjectOf) next to it in time that carry the same version.
   * `supersededBy` is the first later event of that subject with another version. Undefined for an unknown id.
   * With `listLimit`, each event keeps at most that many changes and hosts (the gate reads neither).
   */
  rolloutOf(
    id: string,
    opts?: { listLimit?: number },
  ): Promise<{ events: Deploy[]; supersededBy?: Deploy } | undefined>;
  /** The rollbacks that undid these deploys (each deploy's first), earliest first. */
  rollbacksOf(deployIds: readonly string[]): Promise<RolledBack[]>;
  /** Alert episodes whose decision names one of these change events. */
  episodesAttributedTo(deployIds: readonly string[]): Promise<EpisodeRecord[]>;
  /** The episodes of a fingerprint, latest start first, each with its pages and their latest delivery attempts. */
  alertHistory(fingerprint: string, query?: Partial<HistoryQuery>): Promise<EpisodeHistory[]>;
}

/** What the timeline page and the numbers (/v1/stats, the gauges) look back at. */
export interface TimelineStore {
  /** Deploys with `at` in [from, to], latest first. */
  deploysBetween(query: TimelineQuery): Promise<DeploySummary[]>;
  /** The deploys with these ids (unknown ones left out), listed as deploysBetween lists them. */
  deploySummaries(ids: readonly string[], listLimit: number): Promise<DeploySummary[]>;
  /** Alert episodes with their decisions that were firing at some moment of [from, to], latest start first. */
  episodesBetween(query: TimelineQuery): Promise<EpisodeRecord[]>;
  /** Every page each of these episodes is on, with its latest delivery attempt and waiting outbox row. */
  pageDeliveries(episodeIds: readonly number[]): Promise<PageDeliveryRecord[]>;
  /** Every service with a deploy or an alert decision stored, sorted. */
  serviceNames(): Promise<string[]>;
  /**
   * What /v1/stats and the gauges count, one page at a time: the change events with `at` in [since, until) first,
   * then the decided episodes started in it; `next` continues where a page stopped.
   */
  hygieneFacts(q: HygieneQuery, cursor?: HygieneCursor): Promise<{ facts: HygieneFacts; next?: HygieneCursor }>;
}

/** People changepager could not reach by name. */
export interface PeopleStore {
  /** Counts a person changepager could not reach by name (no email, no PagerDuty or Slack user). */
  recordUnmapped(who: string, reason: string, now: number): Promise<void>;
  listUnmapped(query?: { limit?: number; after?: UnmappedKey }): Promise<UnmappedPerson[]>;
}

/** Timeline-page logins: in the database, so that a logout holds on every replica and across restarts. */
export interface SessionStore {
  /** Stores a new login session, and deletes every session expired at `now`, so they never pile up. */
  createSession(session: SessionRecord, now: number): Promise<void>;
  /** The session with this id hash, unless there is none or it has expired at `now`. */
  getSession(idHash: string, now: number): Promise<SessionRecord | undefined>;
  /** Ends a session (logout); nothing happens for one that does not exist. */
  deleteSession(idHash: string): Promise<void>;
}

export interface Lifecycle {
  /**
   * Calls `listener` whenever another instance commits work to deliver (outbox rows of these kinds), so that the
   * outbox worker delivers it now rather than at its next poll. An adapter that runs as one instance never calls
   * it: its own commits already wake the worker (pipeline.ts onCommitted).
   */
  onWork(listener: (kinds: readonly OutboxKind[]) => void): void;
  /** Throws when the database cannot be written (a committed write, so a full or read-only disk shows). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface Store
  extends IngestStore,
    OutboxStore,
    EvidenceStore,
    ReadStore,
    TimelineStore,
    PeopleStore,
    SessionStore,
    Lifecycle {}

/** Where one alert's deploy candidates are looked for: a service and environment, and a window of `at`. */
export interface CandidateQuery {
  service: string;
  environment: string;
  from: number;
  to: number;
}

/** What recordAlerts did, and the kinds of outbox rows it queued (the delivery lanes to wake). */
export interface RecordedAlerts extends WriteCounts {
  queued: readonly OutboxKind[];
}

/** The database cannot do what was asked (disk full, file unwritable, locked): the caller should retry later. */
export class StorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}
