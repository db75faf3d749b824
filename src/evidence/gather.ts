import type { Comparison } from '../core/comparisons.js';
import { type ComparisonPlan, type PlanSettings, planEvidence } from '../core/evidence-plan.js';
import type { ComparisonOutcome, JudgeInput, SideSamples } from '../core/judge.js';
import type { Deploy } from '../core/types.js';
import { type PrometheusClient, type QueryResult, spoken } from './prometheus.js';

// Gathering the evidence for one alert: plan the queries (core/evidence-plan.ts), ask Prometheus for both sides
// of every comparison at once, and hand the judge (core/judge.ts) what came back, or why nothing did, per
// comparison. It never throws and never waits past its deadline: a page must not be held up by evidence.

export interface GatherInput {
  /** The deploy (or rollout stage) the alert is attributed to. */
  deploy: Deploy;
  alertStartsAtMs: number;
  comparisons: readonly Comparison[];
  client: PrometheusClient;
  settings: PlanSettings;
  now: number;
  /** How long gathering may take in all, from now: what is left of the budget. */
  deadlineMs: number;
  /** Ends gathering early (the service is stopping, say). */
  signal?: AbortSignal;
}

export async function gatherEvidence(input: GatherInput): Promise<JudgeInput> {
  const { client, deadlineMs } = input;
  if (deadlineMs <= 0) return unavailable(input, 'no time was left for evidence: the budget had run out');
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(new Error(`no answer from Prometheus within the ${spoken(deadlineMs)} left for evidence`)),
    deadlineMs,
  );
  timer.unref();
  const signal = input.signal ? AbortSignal.any([input.signal, deadline.signal]) : deadline.signal;
  try {
    const plan = planEvidence(input);
    const comparisons = await Promise.all(
      plan.comparisons.map(async (p) => ({ comparison: p.comparison, outcome: await fetchBoth(p, client, signal) })),
    );
    return { from: plan.from, to: plan.to, comparisons };
  } catch (err) {
    // A bug must cost the evidence, not the page.
    return unavailable(input, `evidence could not be gathered: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    clearTimeout(timer);
  }
}

function unavailable(input: GatherInput, reason: string): JudgeInput {
  return {
    from: input.deploy.at,
    to: input.now,
    comparisons: input.comparisons.map((comparison) => ({ comparison, outcome: { kind: 'unavailable', reason } })),
  };
}

async function fetchBoth(
  plan: ComparisonPlan,
  client: PrometheusClient,
  signal: AbortSignal,
): Promise<ComparisonOutcome> {
  if (plan.kind === 'not_comparable') return { kind: 'not_comparable', reason: plan.reason };
  const [fresh, old] = await Promise.all([client.queryRange(plan.new, signal), client.queryRange(plan.old, signal)]);
  if (!fresh.ok) return { kind: 'unavailable', reason: fresh.reason };
  if (!old.ok) return { kind: 'unavailable', reason: old.reason };
  return {
    kind: 'fetched',
    by: plan.by,
    newLabel: plan.newLabel,
    oldLabel: plan.oldLabel,
    new: pooled(fresh),
    old: pooled(old),
  };
}

/** Every series' points as one sample: a template that does not aggregate still gives the judge its values. */
function pooled(result: Extract<QueryResult, { ok: true }>): SideSamples {
  return {
    points: result.series.flatMap((s) => s.points),
    series: result.series.length,
    dropped: result.series.reduce((sum, s) => sum + s.dropped, 0),
  };
}
