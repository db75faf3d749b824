import { type Config, evidenceBudgetFor, evidenceFor } from '../config/load.js';
import { type DecisionEvidence, evidenceArrived } from '../core/evidence-route.js';
import { judgeEvidence } from '../core/judge.js';
import type { Alert, Decision, Deploy } from '../core/types.js';
import { gatherEvidence } from './gather.js';
import type { PrometheusClient } from './prometheus.js';

// POST /v1/preview with evidence: the decisions a notification would get once their evidence is judged, as if it
// arrived in time. It asks Prometheus (and says so in the answer), stores nothing and pages nobody. Every query
// runs at once within one budget, and only for the first few decisions that would page a person: a preview of a
// large group must not become a load test of Prometheus.

/** At most this many decisions of one preview have their evidence gathered. */
export const PREVIEW_EVIDENCE_MAX = 20;

interface DecidedAlert {
  alert: Alert;
  decision: Decision;
}

export interface PreviewedAlert extends DecidedAlert {
  evidence?: DecisionEvidence;
}

export interface EvidencePreviewDeps {
  config: Config;
  client: PrometheusClient;
  getDeploy: (id: string) => Promise<Deploy | undefined>;
  now: () => number;
}

export async function previewEvidence(
  decided: readonly DecidedAlert[],
  deps: EvidencePreviewDeps,
): Promise<{ decided: PreviewedAlert[]; queried: number }> {
  const { config, client, now } = deps;
  const prometheus = config.prometheus;
  if (!prometheus) return { decided: [...decided], queried: 0 };
  const asked = decided
    .map((d, i) => ({ d, i }))
    .filter(({ d }) => d.alert.status === 'firing' && evidenceBudgetFor(config, d.decision) !== undefined)
    .slice(0, PREVIEW_EVIDENCE_MAX);
  const at = now();
  const judged = await Promise.all(
    asked.map(async ({ d, i }) => {
      const deploy = await deps.getDeploy(d.decision.deployId as string);
      if (!deploy) return { i, item: d };
      const policy = evidenceFor(config, d.decision.service);
      const input = await gatherEvidence({
        deploy,
        alertStartsAtMs: d.alert.startsAtMs,
        comparisons: policy.comparisons,
        client,
        settings: prometheus,
        now: at,
        deadlineMs: prometheus.budgetMs,
      });
      const evidence = judgeEvidence(input, prometheus);
      const mode = policy.mode === 'off' ? 'advisory' : policy.mode;
      const outcome = evidenceArrived({ decision: d.decision, evidence, mode, held: true, now: now() });
      const decision: Decision = { ...d.decision, ...outcome.decision };
      return { i, item: { alert: d.alert, decision, evidence: outcome.evidence } };
    }),
  );
  const out: PreviewedAlert[] = [...decided];
  for (const { i, item } of judged) out[i] = item;
  return { decided: out, queried: asked.length };
}
