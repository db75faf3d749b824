import { kindOf, subjectOf } from './change.js';
import type { ChangeKind, Deploy } from './types.js';

// Deploy hygiene: the numbers a team looks at to see whether the feedback loop works. Pure: the store hands over
// the change events and decided alert episodes of a period, this counts them per service.

/** A decided alert episode, reduced to what the numbers need. */
export interface DecidedEpisode {
  service?: string;
  startsAtMs: number;
  /** The change event the decision named, and when that event shipped. */
  deployId?: string;
  deployAt?: number;
  /** "Not my change" was said about this decision. */
  notMine: boolean;
}

export interface HygieneFacts {
  /** Change events with `at` in the period, any order. */
  events: Deploy[];
  /** Episodes that started in the period. */
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
}

export function hygiene(facts: HygieneFacts): ServiceHygiene[] {
  const rows = new Map<string, ServiceHygiene>();
  const row = (service: string) => {
    let r = rows.get(service);
    if (!r) {
      r = {
        service,
        deploys: 0,
        flagChanges: 0,
        configChanges: 0,
        stageEvents: 0,
        singleChangeDeploys: 0,
        singleChangeShare: null,
        alerts: 0,
        attributedAlerts: 0,
        attributedByKind: { deploy: 0, flag: 0, config: 0 },
        medianSecondsToFirstAlert: null,
        notMyChange: 0,
      };
      rows.set(service, r);
    }
    return r;
  };

  const kinds = new Map(facts.events.map((e) => [e.id, kindOf(e)]));
  for (const first of rolloutStarts(facts.events)) {
    const r = row(first.service);
    const kind = kindOf(first);
    if (kind === 'flag') r.flagChanges++;
    else if (kind === 'config') r.configChanges++;
    else {
      r.deploys++;
      if (first.changes.length === 1) r.singleChangeDeploys++;
    }
  }
  for (const e of facts.events) row(e.service).stageEvents++;

  const firstAlert = new Map<string, { service: string; gapMs: number }>();
  for (const ep of facts.episodes) {
    if (ep.service === undefined) continue;
    const r = row(ep.service);
    r.alerts++;
    if (ep.notMine) r.notMyChange++;
    if (ep.deployId === undefined) continue;
    r.attributedAlerts++;
    r.attributedByKind[kinds.get(ep.deployId) ?? 'deploy']++;
    if (ep.deployAt === undefined) continue;
    const gapMs = Math.max(0, ep.startsAtMs - ep.deployAt);
    const seen = firstAlert.get(ep.deployId);
    if (!seen || gapMs < seen.gapMs) firstAlert.set(ep.deployId, { service: ep.service, gapMs });
  }
  const gaps = new Map<string, number[]>();
  for (const { service, gapMs } of firstAlert.values()) gaps.set(service, [...(gaps.get(service) ?? []), gapMs]);

  for (const r of rows.values()) {
    r.singleChangeShare = r.deploys === 0 ? null : round(r.singleChangeDeploys / r.deploys, 4);
    const g = gaps.get(r.service);
    r.medianSecondsToFirstAlert = g ? Math.round(median(g) / 1000) : null;
  }
  return [...rows.values()].sort((a, b) => a.service.localeCompare(b.service));
}

/**
 * The first stage event of each rollout among `events`: per (service, environment, kind, subject) in time
 * order, an event starts a rollout when its version differs from the previous event's.
 */
export function rolloutStarts(events: readonly Deploy[]): Deploy[] {
  const sorted = [...events].sort((a, b) => a.at - b.at || a.receivedAt - b.receivedAt || a.id.localeCompare(b.id));
  const lastVersion = new Map<string, string>();
  const starts: Deploy[] = [];
  for (const e of sorted) {
    const key = JSON.stringify([e.service, e.environment, kindOf(e), subjectOf(e)]);
    if (lastVersion.get(key) !== e.version) starts.push(e);
    lastVersion.set(key, e.version);
  }
  return starts;
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
