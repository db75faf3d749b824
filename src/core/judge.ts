import { errorFunction, mean, median, wilcoxonRankSum } from 'simple-statistics';
import type { BadDirection, Comparison, MetricUnit } from './comparisons.js';

// The evidence judge: is the new version worse than the old one, metric by metric, the way automated canary
// analysis judges a canary against its baseline? A pure function of the points gathered for each comparison.
//
// Per metric, the two samples are compared with the Mann-Whitney U test (one-sided, in the direction that is
// bad), which asks only whether one side's values tend to be larger than the other's: no assumption that error
// ratios or latencies are normally distributed, and a few spikes cannot dominate it. A difference counts when it
// is significant AND the mean moved by at least the comparison's smallest relative change: with a few hundred
// points the test finds differences too small to matter, and the means are what a person reads in the sentence
// (a ratio of medians would be blind to an error ratio that is zero most of the time and spikes).

/** The outcome of one Mann-Whitney U test of sample `a` against sample `b`. */
export interface MannWhitney {
  /** U of `a`: the pairs (x of a, y of b) with x > y, a tie counting half. */
  u: number;
  /** One-sided p-value that `a` tends to be larger than `b`. */
  pGreater: number;
  /** One-sided p-value that `a` tends to be smaller than `b`. */
  pLess: number;
  /**
   * The effect size that goes with U, the rank-biserial correlation 2U/(n·m) − 1: from −1 (every value of `a`
   * below every value of `b`) through 0 to 1 (every value above). It does not depend on the metric's scale.
   */
  rankBiserial: number;
}

/**
 * Mann-Whitney U with the normal approximation, tie-corrected and with a continuity correction: the same
 * numbers as scipy.stats.mannwhitneyu(a, b, method='asymptotic'). The exact distribution is not used: it would
 * matter only below about 8 points a side, and fewer points than the judge's minimum are never tested. Both
 * samples must be non-empty.
 */
export function mannWhitneyU(a: readonly number[], b: readonly number[]): MannWhitney {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) throw new Error('Mann-Whitney U needs two non-empty samples');
  const n = n1 + n2;
  const u = wilcoxonRankSum(a, b) - (n1 * (n1 + 1)) / 2;
  const meanU = (n1 * n2) / 2;
  const sd = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm([...a, ...b]) / (n * (n - 1))));
  // Every value the same: no evidence either way.
  const pGreater = sd > 0 ? upperTail((u - meanU - 0.5) / sd) : 1;
  const pLess = sd > 0 ? upperTail((n1 * n2 - u - meanU - 0.5) / sd) : 1;
  return { u, pGreater, pLess, rankBiserial: (2 * u) / (n1 * n2) - 1 };
}

/** Σ(t³ − t) over the groups of t equal values: how much ties shrink U's variance. */
function tieTerm(values: number[]): number {
  values.sort((x, y) => x - y);
  let sum = 0;
  for (let i = 0; i < values.length; ) {
    let j = i + 1;
    while (j < values.length && values[j] === values[i]) j++;
    const t = j - i;
    sum += t * t * t - t;
    i = j;
  }
  return sum;
}

/** P(Z > z) for a standard normal Z. */
function upperTail(z: number): number {
  return Math.min(1, Math.max(0, 0.5 * (1 - errorFunction(z / Math.SQRT2))));
}

/** A point of a series: epoch milliseconds and a finite value. */
export type Point = readonly [number, number];

/** What Prometheus returned for one side of a comparison. */
export interface SideSamples {
  points: readonly Point[];
  /** How many series the points came from (a template that does not aggregate returns several: pooled). */
  series: number;
  /** Points that were not numbers (NaN, ±Inf: a ratio of no requests to no requests), left out. */
  dropped: number;
}

/** How a comparison's data came back: fetched, not fetched (and why), or not even askable. */
export type ComparisonOutcome =
  | {
      kind: 'fetched';
      by: 'version' | 'hosts';
      /** How the sentence names each side: a version, or "the canary hosts". */
      newLabel: string;
      oldLabel: string;
      new: SideSamples;
      /** From before the deploy as well: see pickBaseline. */
      old: SideSamples;
    }
  /** Prometheus could not answer: down, slow, refusing, or answering something that is not a query result. */
  | { kind: 'unavailable'; reason: string }
  /** Nothing to ask: the deploy names no previous version, lists no hosts, or the window is empty. */
  | { kind: 'not_comparable'; reason: string };

export interface JudgeInput {
  /** The deploy's (or its rollout stage's) `at`: the new side starts here. Epoch ms. */
  from: number;
  /** The alert's start plus the margin, or now if that is sooner. */
  to: number;
  comparisons: readonly { comparison: Comparison; outcome: ComparisonOutcome }[];
}

export interface JudgeSettings {
  /** Fewer points than this on either side is no_data. */
  minPoints: number;
  /** The significance level: a one-sided p below it is a difference. */
  significance: number;
}

export type MetricClass = 'worse' | 'same' | 'better' | 'no_data' | 'unavailable';
export type EvidenceVerdict = 'worse' | 'same' | 'better' | 'no_data' | 'unavailable';

export interface SideSummary {
  label: string;
  points: number;
  mean: number;
  median: number;
}

export interface MetricResult {
  name: string;
  critical: boolean;
  bad: BadDirection;
  unit: MetricUnit;
  class: MetricClass;
  /** The numbers in a sentence, or why there are none. */
  sentence: string;
  new?: SideSummary;
  old?: SideSummary;
  /** The old side's points: running beside the new version, or (when too few did) before the deploy. */
  baseline?: 'concurrent' | 'before';
  /** Change of the mean in the bad direction, relative to the old mean: 0.5 is half as bad again, −0.2 better. */
  change?: number;
  /** One-sided p-value in the bad direction, and in the good one. */
  pWorse?: number;
  pBetter?: number;
  /** U of the new side against the old, and its rank-biserial correlation (positive: new values larger). */
  u?: number;
  rankBiserial?: number;
}

export interface Evidence {
  verdict: EvidenceVerdict;
  /** What a paged engineer reads: the numbers behind the verdict, or why there are none. */
  sentence: string;
  metrics: MetricResult[];
  from: number;
  to: number;
}

/**
 * The overall verdict: `worse` when a critical metric is worse; `same` (or `better`, when one is better) when
 * nothing is worse and every critical metric (every metric, if none is critical) had enough data; otherwise
 * `unavailable` when Prometheus could not be asked, else `no_data`. A non-critical metric that is worse cannot
 * convict a deploy, and it keeps the deploy from being cleared: no_data, saying so.
 */
export function judgeEvidence(input: JudgeInput, settings: JudgeSettings): Evidence {
  const metrics = input.comparisons.map(({ comparison, outcome }) =>
    judgeComparison(comparison, outcome, input, settings),
  );
  const { from, to } = input;
  const result = (verdict: EvidenceVerdict, sentence: string): Evidence => ({ verdict, sentence, metrics, from, to });
  const sentences = (list: MetricResult[]) => joinSentences(list, input);

  if (metrics.length === 0) return result('no_data', 'no comparisons are configured for this service');
  const worse = metrics.filter((m) => m.class === 'worse');
  const criticalWorse = worse.filter((m) => m.critical);
  if (criticalWorse.length > 0) return result('worse', sentences(criticalWorse));
  if (worse.length > 0) {
    return result(
      'no_data',
      `worse, but not critical, so it neither convicts nor clears the deploy: ${sentences(worse)}`,
    );
  }
  const critical = metrics.filter((m) => m.critical);
  const considered = critical.length > 0 ? critical : metrics;
  const missing = considered.filter((m) => m.class === 'no_data' || m.class === 'unavailable');
  if (missing.length > 0) {
    const unavailable = missing.some((m) => m.class === 'unavailable');
    return result(unavailable ? 'unavailable' : 'no_data', `evidence unavailable: ${sentences(missing)}`);
  }
  const judged = metrics.filter((m) => m.class === 'same' || m.class === 'better');
  return result(judged.some((m) => m.class === 'better') ? 'better' : 'same', sentences(judged));
}

/** One metric's class, with its numbers. Exported for its table tests. */
export function judgeComparison(
  comparison: Comparison,
  outcome: ComparisonOutcome,
  window: { from: number; to: number },
  settings: JudgeSettings,
): MetricResult {
  const base = { name: comparison.name, critical: comparison.critical, bad: comparison.bad, unit: comparison.unit };
  if (outcome.kind === 'unavailable') {
    return { ...base, class: 'unavailable', sentence: `${comparison.name}: ${outcome.reason}` };
  }
  if (outcome.kind === 'not_comparable') {
    return { ...base, class: 'no_data', sentence: `${comparison.name}: ${outcome.reason}` };
  }

  const fresh = valuesIn(outcome.new.points, window.from, window.to);
  const baseline = pickBaseline(outcome.old.points, window, settings.minPoints);
  if (fresh.length < settings.minPoints || baseline.values.length < settings.minPoints) {
    return {
      ...base,
      class: 'no_data',
      sentence:
        `${comparison.name}: too few points (${fresh.length} on ${outcome.newLabel}, ${baseline.values.length} on ` +
        `${outcome.oldLabel}; at least ${settings.minPoints} each)`,
    };
  }

  const test = mannWhitneyU(fresh, baseline.values);
  const increase = comparison.bad === 'increase';
  const pWorse = increase ? test.pGreater : test.pLess;
  const pBetter = increase ? test.pLess : test.pGreater;
  const newSide = summary(outcome.newLabel, fresh);
  const oldSide = summary(outcome.oldLabel, baseline.values);
  const change = relativeChange(newSide.mean, oldSide.mean, comparison.bad);
  const cls: MetricClass =
    pWorse < settings.significance && change >= comparison.minChange
      ? 'worse'
      : pBetter < settings.significance && -change >= comparison.minChange
        ? 'better'
        : 'same';
  const judged = { ...base, class: cls, new: newSide, old: oldSide, baseline: baseline.kind, pWorse, pBetter };
  return {
    ...base,
    class: cls,
    sentence: metricSentence(judged, window, true),
    new: newSide,
    old: oldSide,
    baseline: baseline.kind,
    change,
    pWorse,
    pBetter,
    u: test.u,
    rankBiserial: test.rankBiserial,
  };
}

/**
 * The old side's points: those beside the new version since the deploy when there are enough (side by side is
 * the fair comparison: both versions see the same traffic and the same dependencies), else those from before
 * the deploy (a deploy that replaced every instance at once leaves no old version running beside the new one).
 */
function pickBaseline(
  points: readonly Point[],
  window: { from: number; to: number },
  minPoints: number,
): { kind: 'concurrent' | 'before'; values: number[] } {
  const concurrent = valuesIn(points, window.from, window.to);
  if (concurrent.length >= minPoints) return { kind: 'concurrent', values: concurrent };
  const before = valuesIn(points, window.from - (window.to - window.from), window.from - 1);
  return before.length > concurrent.length
    ? { kind: 'before', values: before }
    : { kind: 'concurrent', values: concurrent };
}

function valuesIn(points: readonly Point[], from: number, to: number): number[] {
  return points.filter(([t]) => t >= from && t <= to).map(([, v]) => v);
}

function summary(label: string, values: number[]): SideSummary {
  return { label, points: values.length, mean: mean(values), median: median(values) };
}

/** How much worse the new mean is than the old one, relative to it; ±Infinity from an old mean of 0. */
export function relativeChange(newMean: number, oldMean: number, bad: BadDirection): number {
  const delta = bad === 'increase' ? newMean - oldMean : oldMean - newMean;
  if (oldMean === 0) return delta === 0 ? 0 : delta > 0 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  return delta / Math.abs(oldMean);
}

type Judged = Pick<MetricResult, 'name' | 'unit' | 'class' | 'pWorse' | 'pBetter' | 'baseline'> & {
  new: SideSummary;
  old: SideSummary;
};

/**
 * In full: "error ratio 8.1 % on 2026.11.26-3f2a9c1 vs 0.3 % on 2026.11.25-77b0e12 over the 7 minutes since the
 * deploy (Mann-Whitney p < 0.001)". Short, after another metric of the same sides and window: "p95 latency
 * 410 ms vs 120 ms (p < 0.001)".
 */
function metricSentence(m: Judged, window: { from: number; to: number }, full: boolean): string {
  const p = formatP((m.class === 'better' ? m.pBetter : m.pWorse) ?? 1);
  const values = (side: SideSummary) => formatValue(side.mean, m.unit) + (full ? ` on ${side.label}` : '');
  if (!full) return `${m.name} ${values(m.new)} vs ${values(m.old)} (${p})`;
  const span = spanWords(window.to - window.from);
  const when =
    m.baseline === 'before'
      ? ` over the ${span} since the deploy, against the ${span} before it`
      : ` over the ${span} since the deploy`;
  return `${m.name} ${values(m.new)} vs ${values(m.old)}${when} (Mann-Whitney ${p})`;
}

/** The metrics' sentences in one: after the first with numbers, others of the same sides say only their numbers. */
function joinSentences(list: readonly MetricResult[], window: { from: number; to: number }): string {
  let first: MetricResult | undefined;
  return list
    .map((m) => {
      if (!m.new || !m.old) return m.sentence;
      const same =
        first?.new?.label === m.new.label && first.old?.label === m.old.label && first.baseline === m.baseline;
      if (!first) first = m;
      return same ? metricSentence({ ...m, new: m.new, old: m.old }, window, false) : m.sentence;
    })
    .join('; ');
}

/** "7 minutes", "1 minute", "45 seconds". */
function spanWords(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes >= 1) return minutes === 1 ? '1 minute' : `${minutes} minutes`;
  const seconds = Math.round(ms / 1000);
  return seconds === 1 ? '1 second' : `${seconds} seconds`;
}

export function formatP(p: number): string {
  if (p < 0.001) return 'p < 0.001';
  return p > 0.999 ? 'p > 0.999' : `p = ${p.toFixed(3)}`;
}

/** A metric's value as people read it: 8.1 %, 0.042 %, 120 ms, 1.4 s, 37.2. */
export function formatValue(value: number, unit: MetricUnit): string {
  const short = (v: number) => (v === 0 ? '0' : Math.abs(v) >= 0.1 ? v.toFixed(1) : v.toPrecision(2));
  switch (unit) {
    case 'ratio':
      return `${short(value * 100)} %`;
    case 'seconds': {
      if (Math.abs(value) >= 1) return `${Math.abs(value) >= 10 ? Math.round(value) : value.toFixed(1)} s`;
      const ms = value * 1000;
      return `${Math.abs(ms) >= 10 ? Math.round(ms) : short(ms)} ms`;
    }
    default:
      return String(Number(value.toPrecision(3)));
  }
}
