// What a service's evidence is made of: the metrics compared between the new version and the old one (or the
// canary hosts and the others) before a person is paged, and the two comparisons every service gets by default.

/** required: the evidence can change whom to page; advisory: it is shown, routing stays; off: not gathered. */
export type EvidenceMode = 'required' | 'advisory' | 'off';

/** Which way a metric moves when the new version is worse. */
export type BadDirection = 'increase' | 'decrease';

/** How a metric's values read in a sentence: ratio as a percentage, seconds as ms or s, none as a number. */
export type MetricUnit = 'ratio' | 'seconds' | 'none';

export interface Comparison {
  /** What people call the metric: "error ratio". Unique within a service's list. */
  name: string;
  /** A PromQL template (core/promql-template.ts), run once per side. */
  query: string;
  bad: BadDirection;
  /**
   * The smallest change of the mean, relative to the old side's, that counts (0.5: half as much again). A
   * difference that is significant but smaller than this is `same`.
   */
  minChange: number;
  /** Only a critical metric that is worse convicts a deploy. */
  critical: boolean;
  unit: MetricUnit;
}

export interface EvidencePolicy {
  mode: EvidenceMode;
  comparisons: readonly Comparison[];
}

/**
 * The two metric conventions most services already export, each labelled with service, environment and
 * version: an HTTP request counter with a status label (the ratio of 5xx answers), and a request duration
 * histogram (its 95th percentile). `or vector(0)` makes a version that served no error read 0 rather than
 * nothing; a version that served nothing at all still reads nothing (no points, not a perfect score). The 2m
 * rate window needs two scrapes in it, which Prometheus' default one-minute scrape interval gives.
 */
export const BUILT_IN_COMPARISONS: readonly Comparison[] = [
  {
    name: 'error ratio',
    query: [
      '(sum(rate(http_requests_total{service="{service}", environment="{environment}", version="{version}", status=~"5.."}[2m])) or vector(0))',
      '/',
      'sum(rate(http_requests_total{service="{service}", environment="{environment}", version="{version}"}[2m]))',
    ].join('\n'),
    bad: 'increase',
    minChange: 0.5,
    critical: true,
    unit: 'ratio',
  },
  {
    name: 'p95 latency',
    query:
      'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service="{service}", environment="{environment}", version="{version}"}[2m])))',
    bad: 'increase',
    minChange: 0.25,
    critical: true,
    unit: 'seconds',
  },
];
