import type { RequestHandler } from 'express';
import { z } from 'zod';
import { type Config, policyFor } from '../config/load.js';
import { kindOf } from '../core/change.js';
import type { Evidence } from '../core/judge.js';
import { durationMs } from '../core/time.js';
import type { Deploy } from '../core/types.js';
import { type AttributedAlert, judge, type Verdict } from '../core/verdict.js';
import { ApiError } from '../errors.js';
import type { RolloutEvidence } from '../evidence/rollout.js';
import { parseQuery } from '../ingest/validate.js';
import type { ReadStore } from '../store/store.js';
import { metricJson } from './views.js';

// GET /v1/deploys/{id}/verdict?observe=PT30M[&settle=PT1M]: the canary gate (core/verdict.ts says what it judges).

const duration = (what: string) =>
  z.string().refine((s) => durationMs(s) !== undefined, { error: `must be an ISO-8601 duration such as ${what}` });

export const verdictQuery = z.strictObject({
  observe: duration('PT30M')
    .default('PT30M')
    .describe('How long to watch after the latest stage event. At most the service correlation window.'),
  settle: duration('PT1M')
    .default('PT0S')
    .describe('Extra wait after the window before answering healthy, for alerts still on their way.'),
});

/** Longest settle accepted: Alertmanager's default group_interval is 5 min, repeat_interval far longer. */
const MAX_SETTLE_MS = 60 * 60_000;

export function verdictRoute(deps: {
  config: Config;
  store: ReadStore;
  now: () => number;
  /** The metrics of the rollout's latest stage (asks Prometheus); absent without a prometheus section. */
  evidence?: RolloutEvidence;
}): RequestHandler {
  const { config, store, now } = deps;
  return async (req, res) => {
    const id = String(req.params.id);
    const query = parseQuery(verdictQuery, req.query);
    const rollout = await store.rolloutOf(id);
    if (!rollout) throw new ApiError('not_found', `No deploy with id "${id}".`);
    const target = rollout.events.find((d) => d.id === id) as Deploy;
    const policy = policyFor(config, target.service);
    const observeMs = durationMs(query.observe) as number;
    const settleMs = durationMs(query.settle) as number;
    const problems = [];
    // Correlation only attributes alerts that start within the window after a deploy: a longer observation
    // would answer "healthy" about time in which nothing can be attributed to this rollout any more.
    if (observeMs <= 0 || observeMs > policy.windowMs) {
      problems.push({
        path: 'observe',
        message: `must be more than zero and at most ${target.service}'s correlation window (${policy.windowMs / 60_000} min): later alerts are not attributed to the deploy`,
      });
    }
    if (settleMs > MAX_SETTLE_MS) problems.push({ path: 'settle', message: 'must be at most PT1H' });
    if (problems.length > 0) throw new ApiError('invalid_query', undefined, { problems });

    const ids = rollout.events.map((d) => d.id);
    const attributed = await store.episodesAttributedTo(ids);
    const [rolledBack] = await store.rollbacksOf(ids);
    const latest = rollout.events[rollout.events.length - 1] as Deploy;
    // A rolled-back rollout is judged by its rollback: its metrics are not asked.
    const evidence = !rolledBack && deps.evidence ? await deps.evidence(latest, latest.at + observeMs) : undefined;
    const at = now();
    const verdict = judge({
      rollout: rollout.events,
      attributed,
      observeMs,
      settleMs,
      skewMs: policy.skewMs,
      now: at,
      ...(rolledBack ? { rolledBack } : {}),
      ...(evidence ? { evidence } : {}),
    });
    const remaining = Math.max(0, Math.ceil((verdict.window.decidedAt - at) / 1000));
    // A pipeline polling a pending verdict learns when asking again can change the answer.
    if (verdict.state === 'pending') res.set('Retry-After', String(Math.min(Math.max(remaining, 1), 60)));
    res.json(
      verdictJson(id, verdict, rollout, { observe: query.observe, settle: query.settle, remaining, at }, evidence),
    );
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Alerts listed per list of a verdict: a storm attributed to one rollout must not make its answer megabytes.
 * The verdict itself counts them all; GET /v1/alerts/{fingerprint} has each one.
 */
export const ALERTS_SHOWN = 100;

function verdictJson(
  id: string,
  v: Verdict,
  rollout: { events: Deploy[]; supersededBy?: Deploy },
  w: { observe: string; settle: string; remaining: number; at: number },
  evidence: Evidence | undefined,
) {
  const alert = (a: AttributedAlert) => ({
    fingerprint: a.fingerprint,
    alertname: a.labels.alertname ?? null,
    startsAt: a.startsAt,
    endsAt: a.endsAtMs === undefined ? null : iso(a.endsAtMs),
    status: a.status,
    labels: a.labels,
    deployId: a.decision.deployId ?? null,
    reason: a.decision.reason,
    sentence: a.decision.sentence,
  });
  const latest = v.latest;
  return {
    id,
    verdict: v.state,
    sentence: v.sentence,
    service: latest.service,
    environment: latest.environment,
    kind: kindOf(latest),
    version: latest.version,
    window: {
      from: iso(v.window.from),
      to: iso(v.window.to),
      observe: w.observe,
      settle: w.settle,
      decidedInSeconds: w.remaining,
    },
    stage: {
      id: latest.id,
      stage: latest.stage,
      percent: latest.percent ?? null,
      hosts: latest.hosts,
      at: iso(latest.at),
    },
    rollout: rollout.events.map((d) => ({ id: d.id, stage: d.stage, percent: d.percent ?? null, at: iso(d.at) })),
    rolledBack: v.rolledBack
      ? { id: v.rolledBack.rollbackId, version: v.rolledBack.version, at: iso(v.rolledBack.at) }
      : null,
    supersededBy: rollout.supersededBy
      ? { id: rollout.supersededBy.id, version: rollout.supersededBy.version, at: iso(rollout.supersededBy.at) }
      : null,
    alerts: v.counted.slice(0, ALERTS_SHOWN).map(alert),
    alertsNotShown: Math.max(0, v.counted.length - ALERTS_SHOWN),
    notJudged: v.notJudged.slice(0, ALERTS_SHOWN).map(({ alert: a, why }) => ({ ...alert(a), why })),
    notJudgedNotShown: Math.max(0, v.notJudged.length - ALERTS_SHOWN),
    evidence: evidence
      ? {
          verdict: evidence.verdict,
          sentence: evidence.sentence,
          from: iso(evidence.from),
          to: iso(evidence.to),
          metrics: evidence.metrics.map((m) => metricJson(m)),
        }
      : null,
    checkedAt: iso(w.at),
  };
}

export type VerdictJson = ReturnType<typeof verdictJson>;
