import { kindOf, subjectOf } from './change.js';
import type { EvidenceEffect } from './evidence-route.js';
import type { EvidenceVerdict } from './judge.js';
import type { ChangeKind, Deploy, ReasonCode } from './types.js';

// Deploy hygiene: the numbers a team looks at to see whether the feedback loop works. Pure: the store hands over
// the change events and decided alert episodes of a period, a page at a time, and HygieneTally counts them per
// service without ever holding the whole period.

/** A change event, reduced to what the numbers need. */
export interface ChangeFact {
  id: string;
  service: string;
  environment: string;
  kind: ChangeKind;
  /** What the rollout is of (core/change.ts subjectOf). */
  subject: string;
  version: string;
  at: number;
  receivedAt: number;
  /** How many changes (PRs or commits) it carried. */
  changeCount: number;
  /** Its lead time for changes (leadTimeMs), when its changes carry commit or merge times. */
  leadMs?: number;
  /** For a rollback: the ids of the change events it undid. */
  rollbackOf?: string[];
}

/** A decided alert episode, reduced to what the numbers need. */
export interface DecidedEpisode {
  service?: string;
  startsAtMs: number;
  /** The change event the decision named, its kind, and when that event shipped. */
  deployId?: string;
  deployKind?: ChangeKind;
  deployAt?: number;
  /** "Not my change" was said about this decision. */
  notMine: boolean;
  /** The decision's reason: evidence that cleared the deploy (`deploy_exonerated`) does not count against it. */
  reason?: ReasonCode;
  /** When it resolved; absent while it fires. */
  endsAtMs?: number;
  /** The decision (as it stands, after any evidence) pages a person. */
  pagedPerson?: boolean;
  /** The evidence judged for it, and what it did to the decision. */
  evidence?: { verdict: EvidenceVerdict; effect: EvidenceEffect };
}

/** One page of facts. */
export interface HygieneFacts {
  /** Change events with `at` in the period. Across pages they come in (at, receivedAt, id) order. */
  events: ChangeFact[];
  /** Episodes that started in the period, any order. */
  episodes: DecidedEpisode[];
  /** False when this store keeps no feedback at all: the notMyChange counts are then 0 by construction. */
  feedbackRecorded: boolean;
}

export interface ServiceHygiene {
  service: string;
  /** Rollouts of code: a version's stage events count once. */
  deploys: number;
  flagChanges: number;
  configChanges: number;
  /** Every stage event, whatever its kind. */
  stageEvents: number;
  /** Deploys that carried exactly one change (one PR or commit): the healthy case. */
  singleChangeDeploys: number;
  /** singleChangeDeploys / deploys; null without deploys. */
  singleChangeShare: number | null;
  /** Alert episodes of the service that started in the period. */
  alerts: number;
  /** Of those, the ones whose decision named a change event (a deploy, flag or config change). */
  attributedAlerts: number;
  attributedByKind: Record<ChangeKind, number>;
  /**
   * Over the change events with alerts attributed: the median time from the event to the first alert
   * attributed to it, in seconds; null when none.
   */
  medianSecondsToFirstAlert: number | null;
  /** Decisions someone answered "not my change" to. */
  notMyChange: number;
  // The four keys (docs/api.md, "The four keys"). Rollbacks are deploys too, but not changes: they are counted
  // apart and left out of `deploys` and everything computed from it.
  /** Rollouts of code that were rollbacks. */
  rollbacks: number;
  /** deploys per day of the period; null when the period is not known. */
  deploymentsPerDay: number | null;
  /** The median over deploys of their lead time for changes, in seconds; null when no change carried a time. */
  leadTimeSeconds: number | null;
  /** Deploys followed by an attributed alert or a rollback. */
  failedDeploys: number;
  /** failedDeploys / deploys; null without deploys. */
  changeFailureRate: number | null;
  /**
   * The median over failed deploys of the time from their first attributed alert to its resolve or the rollback,
   * whichever came first, in seconds; null when none has been restored.
   */
  timeToRestoreSeconds: number | null;
}

type Derived =
  | 'service'
  | 'singleChangeShare'
  | 'medianSecondsToFirstAlert'
  | 'deploymentsPerDay'
  | 'leadTimeSeconds'
  | 'failedDeploys'
  | 'changeFailureRate'
  | 'timeToRestoreSeconds';
type Counts = Omit<ServiceHygiene, Derived>;

/** What the four keys need to know of one rollout of code (a deploy that is no rollback). */
interface RolloutRecord {
  service: string;
  leadMs?: number;
  failed: boolean;
  /** The earliest rollback that undid it. */
  rollbackAt?: number;
  /** Its first attributed alert that started before the rollback. */
  first?: { startsAtMs: number; endsAtMs?: number };
}

const DAY_MS = 24 * 3600_000;

/**
 * A deploy's lead time for changes: the median, over its changes that say when they were committed (else
 * merged), of the time from then to the deploy; undefined when none says.
 */
export function leadTimeMs(d: Pick<Deploy, 'at' | 'changes'>): number | undefined {
  const leads: number[] = [];
  for (const c of d.changes) {
    const since = c.committedAt ?? c.mergedAt;
    const ms = since === undefined ? Number.NaN : Date.parse(since);
    if (Number.isFinite(ms)) leads.push(Math.max(0, d.at - ms));
  }
  return leads.length === 0 ? undefined : median(leads);
}

const zero = (): Counts => ({
  deploys: 0,
  flagChanges: 0,
  configChanges: 0,
  stageEvents: 0,
  singleChangeDeploys: 0,
  alerts: 0,
  attributedAlerts: 0,
  attributedByKind: { deploy: 0, flag: 0, config: 0 },
  notMyChange: 0,
  rollbacks: 0,
});

/** Counts pages of facts per service; the result is the same however the facts were cut into pages. */
export class HygieneTally {
  private readonly counts = new Map<string, Counts>();
  private readonly rollouts = new RolloutTracker();
  /** Per change event with an alert attributed: its service and the gap to its first alert. */
  private readonly firstAlert = new Map<string, { service: string; gapMs: number }>();
  /** Per code event: the first event of its rollout, which names the rollout in `codeRollouts`. */
  private readonly rolloutOf = new Map<string, string>();
  private readonly currentRollout = new Map<string, string>();
  private readonly codeRollouts = new Map<string, RolloutRecord>();
  feedbackRecorded = false;

  /** `periodMs`: how long the period counted is, for the deploys per day. */
  constructor(private readonly periodMs?: number) {}

  add(page: HygieneFacts): void {
    this.feedbackRecorded ||= page.feedbackRecorded;
    for (const e of page.events) {
      const c = this.of(e.service);
      c.stageEvents++;
      const starts = this.rollouts.starts(e);
      if (e.kind === 'deploy') this.trackCode(e, starts);
      if (!starts) continue;
      if (e.kind === 'flag') c.flagChanges++;
      else if (e.kind === 'config') c.configChanges++;
      else if (e.rollbackOf) c.rollbacks++;
      else {
        c.deploys++;
        if (e.changeCount === 1) c.singleChangeDeploys++;
      }
    }
    for (const ep of page.episodes) {
      if (ep.service === undefined) continue;
      const c = this.of(ep.service);
      c.alerts++;
      if (ep.notMine) c.notMyChange++;
      // An alert whose deploy the evidence cleared paged on-call as if there were no deploy: it fails no deploy.
      if (ep.deployId === undefined || ep.reason === 'deploy_exonerated') continue;
      this.trackAlert(ep, ep.deployId);
      c.attributedAlerts++;
      c.attributedByKind[ep.deployKind ?? 'deploy']++;
      if (ep.deployAt === undefined) continue;
      const gapMs = Math.max(0, ep.startsAtMs - ep.deployAt);
      const seen = this.firstAlert.get(ep.deployId);
      if (!seen || gapMs < seen.gapMs) this.firstAlert.set(ep.deployId, { service: ep.service, gapMs });
    }
  }

  /** Which rollout each code event belongs to, and what rollbacks undid. Events come in time order. */
  private trackCode(e: ChangeFact, starts: boolean): void {
    const key = JSON.stringify([e.service, e.environment]);
    if (e.rollbackOf) {
      for (const id of e.rollbackOf) {
        const r = this.codeRollouts.get(this.rolloutOf.get(id) ?? '');
        if (!r) continue;
        r.failed = true;
        if (r.rollbackAt === undefined || e.at < r.rollbackAt) r.rollbackAt = e.at;
      }
      // A rollback's own stage events belong to no rollout the keys count.
      this.currentRollout.set(key, '');
      return;
    }
    if (starts) {
      const record: RolloutRecord = { service: e.service, failed: false };
      if (e.leadMs !== undefined) record.leadMs = e.leadMs;
      this.codeRollouts.set(e.id, record);
      this.currentRollout.set(key, e.id);
    }
    const current = this.currentRollout.get(key);
    if (current) this.rolloutOf.set(e.id, current);
  }

  /** An attributed alert fails its rollout; its first one before any rollback starts the time to restore. */
  private trackAlert(ep: DecidedEpisode, deployId: string): void {
    const r = this.codeRollouts.get(this.rolloutOf.get(deployId) ?? '');
    if (!r) return;
    r.failed = true;
    if (r.rollbackAt !== undefined && ep.startsAtMs >= r.rollbackAt) return;
    if (!r.first || ep.startsAtMs < r.first.startsAtMs) {
      r.first =
        ep.endsAtMs === undefined
          ? { startsAtMs: ep.startsAtMs }
          : { startsAtMs: ep.startsAtMs, endsAtMs: ep.endsAtMs };
    }
  }

  /** Per service, its alerts plus its stage events: how much there is to say about it. */
  volumes(): Map<string, number> {
    return new Map([...this.counts].map(([service, c]) => [service, c.alerts + c.stageEvents]));
  }

  /**
   * The numbers per service, sorted by name. With `labelOf`, services given the same label are one row: counts
   * summed, the share and the median taken over all of them.
   */
  services(labelOf: (service: string) => string = (s) => s): ServiceHygiene[] {
    const rows = new Map<string, Counts>();
    for (const [service, c] of this.counts) {
      const label = labelOf(service);
      rows.set(label, sum(rows.get(label) ?? zero(), c));
    }
    const gaps = new Map<string, number[]>();
    for (const { service, gapMs } of this.firstAlert.values()) {
      const label = labelOf(service);
      const list = gaps.get(label);
      if (list) list.push(gapMs);
      else gaps.set(label, [gapMs]);
    }
    const keys = new Map<string, { leads: number[]; failed: number; restores: number[] }>();
    for (const r of this.codeRollouts.values()) {
      const label = labelOf(r.service);
      let k = keys.get(label);
      if (!k) {
        k = { leads: [], failed: 0, restores: [] };
        keys.set(label, k);
      }
      if (r.leadMs !== undefined) k.leads.push(r.leadMs);
      if (!r.failed) continue;
      k.failed++;
      if (!r.first) continue;
      const end = Math.min(r.first.endsAtMs ?? Number.POSITIVE_INFINITY, r.rollbackAt ?? Number.POSITIVE_INFINITY);
      if (Number.isFinite(end)) k.restores.push(Math.max(0, end - r.first.startsAtMs));
    }
    return [...rows]
      .map(([service, c]): ServiceHygiene => {
        const g = gaps.get(service);
        const k = keys.get(service) ?? { leads: [], failed: 0, restores: [] };
        return {
          service,
          ...c,
          singleChangeShare: c.deploys === 0 ? null : round(c.singleChangeDeploys / c.deploys, 4),
          medianSecondsToFirstAlert: g ? Math.round(median(g) / 1000) : null,
          deploymentsPerDay:
            this.periodMs === undefined || this.periodMs <= 0 ? null : round(c.deploys / (this.periodMs / DAY_MS), 4),
          leadTimeSeconds: k.leads.length > 0 ? Math.round(median(k.leads) / 1000) : null,
          failedDeploys: k.failed,
          changeFailureRate: c.deploys === 0 ? null : round(k.failed / c.deploys, 4),
          timeToRestoreSeconds: k.restores.length > 0 ? Math.round(median(k.restores) / 1000) : null,
        };
      })
      .sort((a, b) => a.service.localeCompare(b.service));
  }

  private of(service: string): Counts {
    let c = this.counts.get(service);
    if (!c) {
      c = zero();
      this.counts.set(service, c);
    }
    return c;
  }
}

/** The numbers of one page of facts (its events in any order). */
export function hygiene(facts: HygieneFacts): ServiceHygiene[] {
  const tally = new HygieneTally();
  tally.add({ ...facts, events: [...facts.events].sort(byTime) });
  return tally.services();
}

/** The facts of a stored change event. */
export function changeFact(d: Deploy): ChangeFact {
  return {
    id: d.id,
    service: d.service,
    environment: d.environment,
    kind: kindOf(d),
    subject: subjectOf(d),
    version: d.version,
    at: d.at,
    receivedAt: d.receivedAt,
    changeCount: d.changes.length,
    ...(d.rollback ? { rollbackOf: d.rollback.of } : {}),
    ...(leadTimeMs(d) === undefined ? {} : { leadMs: leadTimeMs(d) as number }),
  };
}

/**
 * The first stage event of each rollout among `events`: per (service, environment, kind, subject) in time
 * order, an event starts a rollout when its version differs from the previous event's.
 */
export function rolloutStarts(events: readonly Deploy[]): Deploy[] {
  const tracker = new RolloutTracker();
  return [...events].sort((a, b) => byTime(changeFact(a), changeFact(b))).filter((e) => tracker.starts(changeFact(e)));
}

/**
 * Series of their own for at most `topN` services by volume (ties by name), plus the services in `keep`; every
 * other service is folded into "other". Bounds the label values of per-service metrics whatever the input is.
 */
export function seriesLabels(
  volumes: ReadonlyMap<string, number>,
  keep: ReadonlySet<string>,
  topN: number,
): (service: string) => string {
  const top = new Set(
    [...volumes]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, topN)
      .map(([service]) => service),
  );
  return (service) => (keep.has(service) || top.has(service) ? service : OTHER);
}

/** The label of the services folded together by seriesLabels. */
export const OTHER = 'other';

/** Fed events in time order, says which start a rollout. */
class RolloutTracker {
  private readonly lastVersion = new Map<string, string>();

  starts(e: ChangeFact): boolean {
    const key = JSON.stringify([e.service, e.environment, e.kind, e.subject]);
    const start = this.lastVersion.get(key) !== e.version;
    this.lastVersion.set(key, e.version);
    return start;
  }
}

function byTime(a: ChangeFact, b: ChangeFact): number {
  return a.at - b.at || a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function sum(a: Counts, b: Counts): Counts {
  return {
    deploys: a.deploys + b.deploys,
    flagChanges: a.flagChanges + b.flagChanges,
    configChanges: a.configChanges + b.configChanges,
    stageEvents: a.stageEvents + b.stageEvents,
    singleChangeDeploys: a.singleChangeDeploys + b.singleChangeDeploys,
    alerts: a.alerts + b.alerts,
    attributedAlerts: a.attributedAlerts + b.attributedAlerts,
    attributedByKind: {
      deploy: a.attributedByKind.deploy + b.attributedByKind.deploy,
      flag: a.attributedByKind.flag + b.attributedByKind.flag,
      config: a.attributedByKind.config + b.attributedByKind.config,
    },
    notMyChange: a.notMyChange + b.notMyChange,
    rollbacks: a.rollbacks + b.rollbacks,
  };
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
