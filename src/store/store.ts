import type { DeployCandidates } from '../core/correlate.js';
import type { Alert, AlertGroup, AlertStatus, Decision, Deploy, Target } from '../core/types.js';

// The storage port. Async so that a PostgreSQL adapter can implement it later without touching the core or
// the pipeline; the SQLite adapter (sqlite.ts) is the embedded default. Each method is one transaction.

/** An alert episode: one firing of one fingerprint, identified by (fingerprint, startsAt). */
export interface EpisodeRecord {
  id: number;
  fingerprint: string;
  startsAt: string;
  startsAtMs: number;
  endsAtMs?: number;
  status: AlertStatus;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  generatorURL: string;
  groupKey: string;
  receiver: string;
  externalURL: string;
  firstSeenAt: number;
  lastSeenAt: number;
  decision: Decision & { decidedAt: number };
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
}

/** page: bring a page to its members' state; change: send a deploy to PagerDuty as a change event. */
export type OutboxKind = 'page' | 'change';

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

export interface AlertWrite {
  alert: Alert;
  /** The decision for an episode the store does not know yet. */
  decision?: Decision;
}

export interface RecordResult {
  newEpisodes: number;
  resolved: number;
  repeats: number;
  pagesTouched: number;
}

export interface EpisodeHistory {
  episode: EpisodeRecord;
  pages: PageRecord[];
  deliveries: DeliveryRecord[];
}

export interface DeployQuery {
  service?: string;
  environment?: string;
  since?: number;
  limit: number;
}

export interface UnmappedPerson {
  who: string;
  reason: string;
  count: number;
  firstSeenAt: number;
  lastSeenAt: number;
}

export interface OutboxStats {
  depth: number;
  oldestDueAgeMs: number;
}

export interface Store {
  /**
   * Stores a deploy; `created: false` when its id was stored before (the stored one is returned unchanged).
   * With `sendChangeEvent`, a new deploy also gets an outbox row that sends it to PagerDuty as a change event.
   */
  saveDeploy(deploy: Deploy, opts?: { sendChangeEvent?: boolean }): Promise<{ created: boolean; deploy: Deploy }>;
  getDeploy(id: string): Promise<Deploy | undefined>;
  listDeploys(query: DeployQuery): Promise<Deploy[]>;
  findDeployCandidates(q: {
    service: string;
    environment: string;
    startsAtMs: number;
    windowMs: number;
    skewMs: number;
  }): Promise<DeployCandidates>;

  /** Which of these episodes are already stored, as "fingerprint|startsAt" keys. */
  knownEpisodes(alerts: readonly Pick<Alert, 'fingerprint' | 'startsAt'>[]): Promise<Set<string>>;
  /**
   * Records one Alertmanager notification in one transaction: new episodes with their decisions, status
   * changes, page membership and the outbox rows that deliver them. Repeats change nothing but lastSeenAt.
   */
  recordAlerts(group: Omit<AlertGroup, 'alerts'>, writes: readonly AlertWrite[], now: number): Promise<RecordResult>;
  alertHistory(fingerprint: string): Promise<EpisodeHistory[]>;

  /** Outbox rows due at `now`, oldest first. */
  dueOutbox(now: number, limit: number): Promise<OutboxItem[]>;
  nextDueAt(): Promise<number | undefined>;
  pageWithMembers(pageId: number): Promise<PageWithMembers | undefined>;
  /**
   * Records a delivery attempt and what follows from it, in one transaction: `delivered` is merged into the
   * page's delivery state; `retryAt` reschedules the row, otherwise it is retired (unless its subject changed
   * meanwhile, in which case it stays due).
   */
  recordAttempt(
    item: OutboxItem,
    attempt: AttemptRecord,
    next: { retryAt?: number; delivered?: Record<string, string> },
  ): Promise<void>;
  /** Counts a person changepager could not reach by name (no email, no PagerDuty user). */
  recordUnmapped(who: string, reason: string, now: number): Promise<void>;
  listUnmapped(): Promise<UnmappedPerson[]>;
  outboxStats(now: number): Promise<OutboxStats>;

  /** Throws when the database cannot be read. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function episodeKey(alert: Pick<Alert, 'fingerprint' | 'startsAt'>): string {
  return `${alert.fingerprint}|${alert.startsAt}`;
}

export function targetKey(target: Target): string {
  return target.kind === 'oncall' ? 'oncall' : `person:${target.email}`;
}

export function parseTargetKey(key: string): Target {
  return key.startsWith('person:') ? { kind: 'person', email: key.slice('person:'.length) } : { kind: 'oncall' };
}

/** The database cannot do what was asked (disk full, file unwritable, locked): the caller should retry later. */
export class StorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}
