import { kindOf, subjectOf } from '../core/change.js';
import { parseTargetKey } from '../core/plan.js';
import { leadTimeMs } from '../core/stats.js';
import type { AlertStatus, ChangeKind, Decision, Deploy, PolicyMode, ReasonCode, Stage } from '../core/types.js';
import type {
  DeliveryRecord,
  DeploySummary,
  DmRecord,
  EpisodeRecord,
  OutboxItem,
  OutboxKind,
  PageRecord,
  PageStatus,
  RolledBack,
} from './store.js';

// Rows to records and back, for every adapter: both keep the same columns, JSON as text and times as epoch
// milliseconds (a PostgreSQL adapter reads its bigints as numbers), so one mapping serves both and they cannot
// drift apart.

export type Row = Record<string, unknown>;

export function deployRow(d: Deploy) {
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
    rollback: d.rollback ? JSON.stringify(d.rollback) : null,
    lead_ms: leadTimeMs(d) ?? null,
    source: d.source ? JSON.stringify(d.source) : null,
  };
}

export function toDeploy(r: Row): Deploy {
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
  if (r.rollback) d.rollback = JSON.parse(r.rollback as string);
  if (r.source) d.source = JSON.parse(r.source as string);
  return d;
}

export function toEpisode(r: Row): EpisodeRecord {
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
  if (typeof r.evidence === 'string') decision.evidence = JSON.parse(r.evidence);
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

export function toDm(r: Row): DmRecord {
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

export function toPage(r: Row): PageRecord {
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

export function toDelivery(r: Row): DeliveryRecord {
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

export function toSummary(r: Row): DeploySummary {
  const summary: DeploySummary = {
    deploy: toDeploy(r),
    changeCount: r.change_count as number,
    hostCount: r.host_count as number,
  };
  if (r.lead_ms !== null && r.lead_ms !== undefined) summary.leadMs = Number(r.lead_ms);
  return summary;
}

export function decisionRow(episodeId: number, d: Decision, decidedAt: number) {
  return {
    episode_id: episodeId,
    reason: d.reason,
    sentence: d.sentence,
    service: d.service ?? null,
    environment: d.environment,
    policy: d.policy,
    deploy_id: d.deployId ?? null,
    suspects: JSON.stringify(d.suspects),
    targets: JSON.stringify(d.targets),
    responders: JSON.stringify(d.responders),
    notify: JSON.stringify(d.notify),
    would_page: JSON.stringify(d.wouldPage),
    decided_at: decidedAt,
  };
}

export function toOutboxItem(r: Row): OutboxItem {
  return {
    id: r.id as number,
    kind: r.kind as OutboxKind,
    ref: r.ref as string,
    generation: r.generation as number,
    attempts: r.attempts as number,
    createdAt: r.created_at as number,
    dueAt: r.due_at as number,
  };
}

export function toRolledBack(r: Row): RolledBack {
  return {
    deployId: r.deploy_id as string,
    rollbackId: r.rollback_id as string,
    at: r.at as number,
    version: r.version as string,
  };
}

/** What the four keys read of a deploy row (core/stats.ts ChangeFact): its lead time, and what it rolled back. */
export function codeFacts(r: Row): { leadMs?: number; rollbackOf?: string[] } {
  const out: { leadMs?: number; rollbackOf?: string[] } = {};
  if (r.lead_ms !== null && r.lead_ms !== undefined) out.leadMs = Number(r.lead_ms);
  if (typeof r.rollback === 'string') out.rollbackOf = (JSON.parse(r.rollback) as { of: string[] }).of;
  return out;
}
