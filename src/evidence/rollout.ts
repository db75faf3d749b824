import { type Config, evidenceFor } from '../config/load.js';
import { kindOf } from '../core/change.js';
import { type Evidence, judgeEvidence } from '../core/judge.js';
import type { Deploy } from '../core/types.js';
import { gatherEvidence } from './gather.js';
import type { PrometheusClient } from './prometheus.js';

// The canary gate's evidence (GET /v1/deploys/{id}/verdict): the same comparisons as before a page, for the
// rollout's latest stage event, over its observation window so far. Undefined where there is nothing to compare:
// no Prometheus, evidence off or no comparisons for the service, a flag or config change (the version label stays),
// or a deploy that names neither a previous version nor canary hosts. Otherwise a verdict, never an exception.

export type RolloutEvidence = (latest: Deploy, windowTo: number) => Promise<Evidence | undefined>;

export function rolloutEvidence(deps: {
  config: Config;
  client: PrometheusClient;
  now: () => number;
}): RolloutEvidence {
  const { config, client, now } = deps;
  return async (latest, windowTo) => {
    const prometheus = config.prometheus;
    if (!prometheus || kindOf(latest) !== 'deploy') return undefined;
    const policy = evidenceFor(config, latest.service);
    if (policy.mode === 'off' || policy.comparisons.length === 0) return undefined;
    const input = await gatherEvidence({
      deploy: latest,
      // The window compared ends with the observation window (or now, if sooner): no margin past it.
      alertStartsAtMs: windowTo,
      comparisons: policy.comparisons,
      client,
      settings: { ...prometheus, marginMs: 0 },
      now: now(),
      // A pipeline polls the gate: no page waits on it, so the request timeout bounds it, not the budget.
      deadlineMs: prometheus.requestTimeoutMs,
    });
    if (input.comparisons.every((c) => c.outcome.kind === 'not_comparable')) return undefined;
    return judgeEvidence(input, prometheus);
  };
}
