import { kindOf } from '../core/change.js';
import type { DecisionEvidence } from '../core/evidence-route.js';
import type { MetricResult, SideSummary } from '../core/judge.js';
import type { Decision, Deploy } from '../core/types.js';
import type { DecidedAlert } from '../pipeline.js';
import type { EpisodeHistory } from '../store/store.js';

// Domain → JSON for responses. Times are RFC 3339 strings; nothing here carries a secret.

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function deployJson(d: Deploy) {
  return {
    id: d.id,
    kind: kindOf(d),
    service: d.service,
    environment: d.environment,
    version: d.version,
    previousVersion: d.previousVersion ?? null,
    stage: d.stage,
    percent: d.percent ?? null,
    hosts: d.hosts,
    at: iso(d.at),
    receivedAt: iso(d.receivedAt),
    changes: d.changes,
    flag: d.flag ?? null,
    config: d.config ?? null,
    rollback: d.rollback ?? null,
    codeHost: d.source ?? null,
  };
}

export function decisionJson(d: Decision) {
  return {
    reason: d.reason,
    sentence: d.sentence,
    service: d.service ?? null,
    environment: d.environment,
    policy: d.policy,
    deployId: d.deployId ?? null,
    suspects: d.suspects,
    targets: d.targets,
    responders: d.responders,
    notify: d.notify,
    wouldPage: d.wouldPage,
  };
}

export function decidedJson({ alert, decision }: DecidedAlert) {
  return {
    fingerprint: alert.fingerprint,
    startsAt: alert.startsAt,
    status: alert.status,
    alertname: alert.labels.alertname ?? null,
    decision: decisionJson(decision),
  };
}

/** One episode of GET /v1/alerts/{fingerprint}, with its pages and its latest delivery attempts. */
export function episodeJson({ episode: e, pages, deliveries, deliveriesNotShown }: EpisodeHistory) {
  return {
    startsAt: e.startsAt,
    endsAt: iso(e.endsAtMs),
    status: e.status,
    labels: e.labels,
    annotations: e.annotations,
    generatorURL: e.generatorURL,
    groupKey: e.groupKey,
    receiver: e.receiver,
    externalURL: e.externalURL,
    firstSeenAt: iso(e.firstSeenAt),
    lastSeenAt: iso(e.lastSeenAt),
    decision: {
      ...decisionJson(e.decision),
      decidedAt: iso(e.decision.decidedAt),
      feedback: e.decision.feedback ? { ...e.decision.feedback, at: iso(e.decision.feedback.at) } : null,
      evidence: e.decision.evidence ? evidenceJson(e.decision.evidence) : null,
    },
    pages: pages.map((p) => ({
      id: p.id,
      target: p.target,
      service: p.service,
      status: p.status,
      dedupKey: p.dedupKey,
      openedAt: iso(p.openedAt),
      resolvedAt: iso(p.resolvedAt),
      delivered: p.delivered,
    })),
    deliveries: deliveries.map((d) => ({
      // The outbox names its subject as text; the page is the number pages[].id shows.
      page: Number(d.ref),
      attempt: d.attempt,
      at: iso(d.at),
      channel: d.channel,
      outcome: d.outcome,
      detail: d.detail,
      durationMs: d.durationMs,
    })),
    deliveriesNotShown,
  };
}

/** A decision's evidence as the API shows it: the verdict, what it changed, and each metric's numbers. */
export function evidenceJson(ev: DecisionEvidence) {
  return {
    verdict: ev.verdict,
    sentence: ev.sentence,
    mode: ev.mode,
    effect: ev.effect,
    late: ev.late,
    judgedAt: iso(ev.at),
    from: iso(ev.from),
    to: iso(ev.to),
    metrics: ev.metrics.map(metricJson),
  };
}

const finite = (n: number | undefined) => (n === undefined || n === null || !Number.isFinite(n) ? null : n);
const side = (x: SideSummary | undefined) =>
  x ? { label: x.label, points: x.points, mean: finite(x.mean), median: finite(x.median) } : null;

/** One metric of the evidence as the API shows it: its class, sentence and numbers (unbounded ones null). */
export function metricJson(m: MetricResult) {
  return {
    name: m.name,
    class: m.class,
    critical: m.critical,
    sentence: m.sentence,
    new: side(m.new),
    old: side(m.old),
    baseline: m.baseline ?? null,
    change: finite(m.change),
    pWorse: finite(m.pWorse),
    pBetter: finite(m.pBetter),
  };
}
