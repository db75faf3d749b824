import type { EvidenceMode, MetricUnit } from './comparisons.js';
import { ONCALL } from './correlate.js';
import type { Evidence, JudgeInput, Point } from './judge.js';
import type { Decision } from './types.js';

// What the evidence changes about a decision once it is judged: pure, from the service's evidence mode, the
// verdict, and whether the person's page is still being held back for it. The store executes the outcome in one
// transaction (the decision rewritten, the episode moved to the on-call page, the held pages and DMs made due).
//
// - required, in time: `worse` convicts (the person is paged, with the numbers); `same` or `better` clears the
//   deploy (deploy_exonerated: on-call is paged as if there were no deploy, the author is told); anything else
//   (no data, Prometheus unavailable) leaves the decision as it was and says why;
// - advisory: the evidence is shown, routing never changes;
// - late (the page had already gone out): shown, and added to what was sent; nobody is re-routed any more.

/** What the evidence did to the decision. */
export type EvidenceEffect = 'convicted' | 'exonerated' | 'stands' | 'advisory';

/** Both sides of one comparison as fetched, thinned to a few dozen points: what the timeline page draws. */
export interface EvidenceSeries {
  name: string;
  unit: MetricUnit;
  newLabel: string;
  oldLabel: string;
  new: Point[];
  old: Point[];
}

/** The series of each comparison that was fetched, each side at most `maxPoints` points (every k-th one). */
export function seriesOf(input: JudgeInput, maxPoints = 60): EvidenceSeries[] {
  const thin = (points: readonly Point[]): Point[] => {
    const sorted = [...points].sort((a, b) => a[0] - b[0]);
    const every = Math.max(1, Math.ceil(sorted.length / maxPoints));
    return sorted.filter((_, i) => i % every === 0);
  };
  return input.comparisons.flatMap(({ comparison, outcome }) =>
    outcome.kind === 'fetched'
      ? [
          {
            name: comparison.name,
            unit: comparison.unit,
            newLabel: outcome.newLabel,
            oldLabel: outcome.oldLabel,
            new: thin(outcome.new.points),
            old: thin(outcome.old.points),
          },
        ]
      : [],
  );
}

/** The evidence as stored with a decision: the judge's verdict and numbers, and what they changed. */
export interface DecisionEvidence extends Evidence {
  /** Both sides of each comparison fetched, for a chart; absent when nothing was fetched. */
  series?: EvidenceSeries[];
  mode: EvidenceMode;
  effect: EvidenceEffect;
  /** The person's page had gone out before the evidence arrived: it is added to the page, nothing re-routed. */
  late: boolean;
  /** When it was judged, epoch ms. */
  at: number;
}

export interface EvidenceArrival {
  decision: Pick<Decision, 'reason' | 'sentence' | 'targets' | 'responders' | 'deployId'>;
  evidence: Evidence & { series?: EvidenceSeries[] };
  mode: EvidenceMode;
  /** Whether every page of the episode for a person is still held back for the evidence (nothing went out yet). */
  held: boolean;
  now: number;
}

export interface EvidenceOutcome {
  evidence: DecisionEvidence;
  /** The decision's new reason, sentence, targets and responders. */
  decision: Pick<Decision, 'reason' | 'sentence' | 'targets' | 'responders'>;
  /** Whether the episode leaves the person's held pages for the on-call page of its group. */
  reroute: boolean;
}

export function evidenceEffect(mode: EvidenceMode, verdict: Evidence['verdict'], held: boolean): EvidenceEffect {
  if (mode !== 'required') return 'advisory';
  if (!held) return 'stands';
  if (verdict === 'worse') return 'convicted';
  if (verdict === 'same' || verdict === 'better') return 'exonerated';
  return 'stands';
}

export function evidenceArrived({ decision, evidence, mode, held, now }: EvidenceArrival): EvidenceOutcome {
  const effect = evidenceEffect(mode, evidence.verdict, held);
  const stored: DecisionEvidence = { ...evidence, mode, effect, late: !held, at: now };
  const keep = { reason: decision.reason, targets: decision.targets, responders: decision.responders };
  const said = evidence.sentence;
  switch (effect) {
    case 'convicted':
      return {
        evidence: stored,
        decision: { ...keep, sentence: `${decision.sentence} The metrics agree: ${said}.` },
        reroute: false,
      };
    case 'exonerated':
      return {
        evidence: stored,
        decision: {
          reason: 'deploy_exonerated',
          sentence:
            `The metrics clear ${decision.deployId ?? 'the deploy'}: ${said}; paging on-call as if there were no ` +
            `deploy, and telling the author. (Before the evidence: ${decision.sentence})`,
          targets: [ONCALL],
          responders: [],
        },
        reroute: true,
      };
    case 'advisory':
      return {
        evidence: stored,
        decision: { ...keep, sentence: `${decision.sentence} Evidence (advisory, ${evidence.verdict}): ${said}.` },
        reroute: false,
      };
    case 'stands': {
      const why = !held
        ? `Evidence (${evidence.verdict}, arrived after the page went out, so routing stands): ${said}.`
        : `Evidence ${evidence.verdict === 'unavailable' ? 'unavailable' : `inconclusive (${evidence.verdict})`}, so the decision stands: ${said}.`;
      return { evidence: stored, decision: { ...keep, sentence: `${decision.sentence} ${why}` }, reroute: false };
    }
  }
}
