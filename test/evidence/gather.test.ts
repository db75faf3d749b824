import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrometheusConfig, parseConfig } from '../../src/config/load.js';
import { BUILT_IN_COMPARISONS, type Comparison } from '../../src/core/comparisons.js';
import { judgeEvidence } from '../../src/core/judge.js';
import type { Deploy } from '../../src/core/types.js';
import { gatherEvidence } from '../../src/evidence/gather.js';
import { createPrometheusClient, type PrometheusClient } from '../../src/evidence/prometheus.js';
import {
  type Prometheus,
  prometheusInstalled,
  startHangingServer,
  startPrometheus,
  type Traffic,
  trafficOpenMetrics,
} from '../support/prometheus.js';

// Gathering evidence from a real Prometheus (Debian's 2.42), backfilled with series written here, with the
// built-in comparisons and the shipped defaults, then judged: what a paged engineer would be told.

const installed = prometheusInstalled();
const MIN = 60_000;
/** Three hours before the current hour: the backfilled data is in the past, and always at the same offsets. */
const EPOCH = Math.floor(Date.now() / (60 * MIN)) * 60 * MIN - 3 * 60 * MIN;
const at = (minute: number) => EPOCH + minute * MIN;

const healthy = { rps: 20, errorRatio: 0.003, latency: 0.08 };
const traffic = (t: Partial<Traffic> & Pick<Traffic, 'service' | 'instances' | 'from' | 'to'>): Traffic => ({
  environment: 'production',
  ...healthy,
  ...t,
});

const TRAFFIC: Traffic[] = [
  // checkout: a canary of v2 on one of four instances fails 8 % of its requests.
  traffic({ service: 'checkout', version: 'v1', instances: ['checkout-1'], from: -60, to: 0 }),
  traffic({
    service: 'checkout',
    version: 'v1',
    instances: ['checkout-2', 'checkout-3', 'checkout-4'],
    from: -60,
    to: 30,
  }),
  traffic({ service: 'checkout', version: 'v2', instances: ['checkout-1'], from: 0, to: 30, errorRatio: 0.08 }),
  // search: a canary exactly as good as the version it replaces.
  traffic({ service: 'search', version: 'v1', instances: ['search-1'], from: -60, to: 0 }),
  traffic({ service: 'search', version: 'v1', instances: ['search-2', 'search-3'], from: -60, to: 30 }),
  traffic({ service: 'search', version: 'v2', instances: ['search-1'], from: 0, to: 30 }),
  // cart: no version label; the canary host cart-2 fails 10 % from the deploy on.
  traffic({ service: 'cart', instances: ['cart-1', 'cart-3', 'cart-4'], from: -60, to: 30, errorRatio: 0.005 }),
  traffic({
    service: 'cart',
    instances: ['cart-2'],
    from: -60,
    to: 30,
    errorRatio: [
      [-60, 0.005],
      [0, 0.1],
    ],
  }),
  // billing: every instance replaced at once; v2 fails 6 %.
  traffic({ service: 'billing', version: 'v1', instances: ['billing-1', 'billing-2'], from: -60, to: 0 }),
  traffic({
    service: 'billing',
    version: 'v2',
    instances: ['billing-1', 'billing-2'],
    from: 0,
    to: 30,
    errorRatio: 0.06,
  }),
  // ledger: a canary judged one minute after its deploy.
  traffic({ service: 'ledger', version: 'v1', instances: ['ledger-1', 'ledger-2'], from: -60, to: 30 }),
  traffic({ service: 'ledger', version: 'v2', instances: ['ledger-3'], from: 0, to: 30 }),
  // we"ird.svc: label values that would break a query or widen a regex if they were not escaped; 1x2 is a decoy
  // that a regex 1.2 would also match.
  traffic({ service: 'we"ird.svc', version: '1.1', instances: ['w-1'], from: -60, to: 30 }),
  traffic({ service: 'we"ird.svc', version: '1.2', instances: ['w-2'], from: 0, to: 30 }),
  traffic({ service: 'we"ird.svc', version: '1x2', instances: ['w-3'], from: 0, to: 30, errorRatio: 0.5 }),
];

const ERROR_RATIO_BY_HOSTS: Comparison = {
  name: 'error ratio',
  query:
    '(sum(rate(http_requests_total{service="{service}", status=~"5..", pod=~"{hosts}", pod!~"{not_hosts}"}[2m])) or vector(0))\n' +
    '/ sum(rate(http_requests_total{service="{service}", pod=~"{hosts}", pod!~"{not_hosts}"}[2m]))',
  bad: 'increase',
  minChange: 0.5,
  critical: true,
  unit: 'ratio',
};

function deploy(patch: Partial<Deploy>): Deploy {
  return {
    id: `${patch.service}-v2`,
    service: 'checkout',
    environment: 'production',
    version: 'v2',
    previousVersion: 'v1',
    stage: 'canary',
    hosts: [],
    at: at(0),
    receivedAt: at(0),
    changes: [{ author: { email: 'alice@example.com' } }],
    ...patch,
  };
}

/** The shipped defaults, as a config with only a prometheus section resolves them. */
function settingsFor(url: string): PrometheusConfig {
  const config = parseConfig(`prometheus: { url: "${url}" }\n`, { path: 'test.yaml', env: {} });
  if (!config.prometheus) throw new Error('no prometheus config');
  return config.prometheus;
}

async function judged(
  settings: PrometheusConfig,
  client: PrometheusClient,
  o: { deploy: Deploy; alertMinute: number; comparisons?: readonly Comparison[]; deadlineMs?: number },
) {
  const input = await gatherEvidence({
    deploy: o.deploy,
    alertStartsAtMs: at(o.alertMinute),
    comparisons: o.comparisons ?? BUILT_IN_COMPARISONS,
    client,
    settings,
    // Received 30 s after the alert started: the window ends at the alert's start plus the margin, or now.
    now: at(o.alertMinute) + 90_000,
    deadlineMs: o.deadlineMs ?? 10_000,
  });
  return { input, evidence: judgeEvidence(input, settings) };
}

describe.skipIf(!installed)(
  `gathering from a real Prometheus${installed ? '' : ' (skipped: prometheus not installed)'}`,
  () => {
    let dir: string;
    let prometheus: Prometheus;
    let settings: PrometheusConfig;
    let client: PrometheusClient;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'changepager-prometheus-'));
      prometheus = await startPrometheus({ dir, openMetrics: trafficOpenMetrics(TRAFFIC, EPOCH) });
      settings = settingsFor(prometheus.url);
      client = createPrometheusClient(settings);
    }, 60_000);
    afterAll(async () => {
      await prometheus?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('a new version that fails far more often: worse, with the numbers', async () => {
      const { evidence } = await judged(settings, client, { deploy: deploy({ service: 'checkout' }), alertMinute: 6 });
      expect(evidence.verdict).toBe('worse');
      expect(evidence.sentence).toMatch(
        /^error ratio [78]\.\d % on v2 vs 0\.3 % on v1 over the 7 minutes since the deploy \(Mann-Whitney p < 0\.001\)$/,
      );
      const [errors, latency] = evidence.metrics;
      expect(errors).toMatchObject({ class: 'worse', baseline: 'concurrent' });
      expect(errors?.new?.points).toBeGreaterThanOrEqual(settings.minPoints);
      expect(latency?.class).toBe('same');
    });

    it('a new version as good as the old: same, both metrics judged', async () => {
      const { evidence } = await judged(settings, client, { deploy: deploy({ service: 'search' }), alertMinute: 6 });
      expect(evidence.metrics.map((m) => m.class)).toEqual(['same', 'same']);
      expect(evidence.verdict).toBe('same');
      expect(evidence.sentence).toMatch(
        /^error ratio 0\.3 % on v2 vs 0\.3 % on v1 over the 7 minutes since the deploy/,
      );
    });

    it('a canary told apart by host, for metrics without a version label: worse', async () => {
      const { evidence } = await judged(settings, client, {
        deploy: deploy({ service: 'cart', hosts: ['cart-2'], previousVersion: undefined }),
        alertMinute: 8,
        comparisons: [ERROR_RATIO_BY_HOSTS],
      });
      expect(evidence.verdict).toBe('worse');
      expect(evidence.sentence).toMatch(
        /^error ratio (9|10|11)\.\d % on cart-2 vs 0\.5 % on the other hosts over the 9 minutes/,
      );
    });

    it('a deploy that replaced every instance: compared with the old version before the deploy', async () => {
      const { evidence } = await judged(settings, client, {
        deploy: deploy({ service: 'billing', stage: 'full' }),
        alertMinute: 6,
      });
      expect(evidence.verdict).toBe('worse');
      expect(evidence.metrics[0]).toMatchObject({ class: 'worse', baseline: 'before' });
      expect(evidence.sentence).toContain('over the 7 minutes since the deploy, against the 7 minutes before it');
    });

    it('too little time since the deploy: no_data, naming the minimum', async () => {
      const { evidence } = await judged(settings, client, { deploy: deploy({ service: 'ledger' }), alertMinute: 1 });
      expect(evidence.verdict).toBe('no_data');
      expect(evidence.sentence).toMatch(
        /^evidence unavailable: error ratio: too few points \(\d on v2, \d+ on v1; at least 10 each\); p95 latency: too few points/,
      );
    });

    it('label values with quotes and regex metacharacters select their own series and no other', async () => {
      const byRegex: Comparison = {
        ...ERROR_RATIO_BY_HOSTS,
        query:
          '(sum(rate(http_requests_total{service="{service}", version=~"{version}", status=~"5.."}[2m])) or vector(0))\n' +
          '/ sum(rate(http_requests_total{service="{service}", version=~"{version}"}[2m]))',
      };
      const { input, evidence } = await judged(settings, client, {
        deploy: deploy({ service: 'we"ird.svc', version: '1.2', previousVersion: '1.1' }),
        alertMinute: 6,
        comparisons: [byRegex],
      });
      const outcome = input.comparisons[0]?.outcome;
      expect(outcome?.kind).toBe('fetched');
      // One series per side: the 1x2 decoy (failing half its requests) is not pooled into 1.2.
      if (outcome?.kind === 'fetched') expect([outcome.new.series, outcome.old.series]).toEqual([1, 1]);
      expect(evidence.verdict).toBe('same');
    });

    it('a query Prometheus refuses (types are not checked offline): unavailable, in Prometheus’ words', async () => {
      const untyped: Comparison = { ...ERROR_RATIO_BY_HOSTS, query: 'rate(http_requests_total{version="{version}"})' };
      const { evidence } = await judged(settings, client, {
        deploy: deploy({ service: 'checkout' }),
        alertMinute: 6,
        comparisons: [untyped],
      });
      expect(evidence.verdict).toBe('unavailable');
      expect(evidence.sentence).toMatch(
        /^evidence unavailable: error ratio: Prometheus answered HTTP 400: bad_data: .*expected type range vector in call to function "rate"/,
      );
    });
  },
);

describe.skipIf(!installed)('when Prometheus is not there', () => {
  it('stopped: unavailable, saying the connection was refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'changepager-prometheus-'));
    try {
      const prometheus = await startPrometheus({ dir, openMetrics: trafficOpenMetrics(TRAFFIC.slice(0, 3), EPOCH) });
      const settings = settingsFor(prometheus.url);
      await prometheus.stop();
      const { evidence } = await judged(settings, createPrometheusClient(settings), {
        deploy: deploy({ service: 'checkout' }),
        alertMinute: 6,
      });
      expect(evidence.verdict).toBe('unavailable');
      const refused = `cannot reach Prometheus at ${prometheus.url}: connection refused (ECONNREFUSED)`;
      expect(evidence.metrics.map((m) => m.sentence)).toEqual([`error ratio: ${refused}`, `p95 latency: ${refused}`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('when Prometheus hangs', () => {
  it('unavailable once the deadline passes, every request abandoned', async () => {
    const hanging = await startHangingServer();
    try {
      const settings = settingsFor(hanging.url);
      const { evidence } = await judged(settings, createPrometheusClient(settings), {
        deploy: deploy({ service: 'checkout' }),
        alertMinute: 6,
        deadlineMs: 300,
      });
      expect(evidence.verdict).toBe('unavailable');
      expect(evidence.sentence).toBe(
        'evidence unavailable: error ratio: no answer from Prometheus within the 300 ms left for evidence; ' +
          'p95 latency: no answer from Prometheus within the 300 ms left for evidence',
      );
      // Both sides of both comparisons were asked at once, and every one of those requests was closed.
      expect(hanging.accepted()).toBe(4);
      await expect.poll(() => hanging.closedByClient()).toBe(4);
    } finally {
      await hanging.close();
    }
  });

  it('no time left at all: nothing is asked', async () => {
    let asked = 0;
    const counting: PrometheusClient = {
      queryRange: () => {
        asked++;
        return Promise.resolve({ ok: true, series: [] });
      },
    };
    const { evidence } = await judged(settingsFor('http://127.0.0.1:9'), counting, {
      deploy: deploy({ service: 'checkout' }),
      alertMinute: 6,
      deadlineMs: 0,
    });
    expect(asked).toBe(0);
    expect(evidence.metrics[0]?.sentence).toBe('error ratio: no time was left for evidence: the budget had run out');
  });

  it('a client that throws (a bug) costs the evidence, not the caller', async () => {
    const broken: PrometheusClient = {
      queryRange: () => Promise.reject(new Error('boom')),
    };
    const { evidence } = await judged(settingsFor('http://127.0.0.1:9'), broken, {
      deploy: deploy({ service: 'checkout' }),
      alertMinute: 6,
    });
    expect(evidence.verdict).toBe('unavailable');
    expect(evidence.metrics[0]?.sentence).toBe('error ratio: evidence could not be gathered: boom');
  });
});
