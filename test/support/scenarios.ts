import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Config, evidenceFor, type PrometheusConfig, parseConfig, policyFor } from '../../src/config/load.js';
import type { Comparison } from '../../src/core/comparisons.js';
import { correlate, locateAlert } from '../../src/core/correlate.js';
import { type Evidence, type EvidenceVerdict, judgeEvidence } from '../../src/core/judge.js';
import type { Alert, ChangeKind, Deploy, Stage } from '../../src/core/types.js';
import { gatherEvidence } from '../../src/evidence/gather.js';
import { createPrometheusClient } from '../../src/evidence/prometheus.js';
import { type Level, startPrometheus, type Traffic, trafficOpenMetrics } from './prometheus.js';

// The labelled scenarios of test/fixtures/evidence/scenarios.json, decided twice: by timing alone (correlate(),
// as changepager decides today) and with evidence (the same decision, then, for a page to a person, the judge's
// verdict on a real Prometheus holding the scenario's series: worse pages the author, same or better pages
// on-call, anything else leaves the page with the author). A page is to the wrong person when it goes to the
// author of a deploy that did not cause the alert, or to on-call when it did.

const FILE = fileURLToPath(new URL('../fixtures/evidence/scenarios.json', import.meta.url));
const MIN = 60_000;
const AUTHOR = 'alice@example.com';

interface TrafficSpec {
  version?: string;
  instances: string[];
  from: number;
  to: number;
  rps?: Level;
  errorRatio?: Level;
  latency?: Level;
}

export interface Scenario {
  name: string;
  culprit: 'deploy' | 'elsewhere';
  story: string;
  deploy: {
    stage: Stage;
    kind?: ChangeKind;
    version?: string;
    previousVersion?: string | null;
    hosts?: string[];
  };
  comparisons?: 'by-host';
  alertMinute: number;
  traffic: TrafficSpec[];
  /** What the judge is expected to say. */
  verdict: EvidenceVerdict;
}

interface ScenarioFile {
  healthy: { rps: number; errorRatio: number; latency: number };
  scenarios: Scenario[];
}

export type Paged = 'author' | 'on-call';

export interface ScenarioResult {
  scenario: Scenario;
  /** Timing alone: what changepager pages today. */
  without: Paged;
  reason: string;
  evidence?: Evidence;
  /** With evidence deciding (a service's `evidence: required`). */
  with: Paged;
  wrongWithout: boolean;
  wrongWith: boolean;
  /** How long gathering took, ms (performance.now): the time a page would wait for its evidence. */
  gatherMs?: number;
}

export function loadScenarios(): ScenarioFile {
  return JSON.parse(readFileSync(FILE, 'utf8')) as ScenarioFile;
}

/** The error ratio and p95 latency, by host, for services whose metrics carry no version label. */
const BY_HOST: Comparison[] = [
  {
    name: 'error ratio',
    query:
      '(sum(rate(http_requests_total{service="{service}", environment="{environment}", status=~"5..", pod=~"{hosts}", pod!~"{not_hosts}"}[2m])) or vector(0))\n' +
      '/ sum(rate(http_requests_total{service="{service}", environment="{environment}", pod=~"{hosts}", pod!~"{not_hosts}"}[2m]))',
    bad: 'increase',
    minChange: 0.5,
    critical: true,
    unit: 'ratio',
  },
  {
    name: 'p95 latency',
    query:
      'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service="{service}", environment="{environment}", pod=~"{hosts}", pod!~"{not_hosts}"}[2m])))',
    bad: 'increase',
    minChange: 0.25,
    critical: true,
    unit: 'seconds',
  },
];

/** Runs every scenario against one Prometheus started in `dir`; stops it before returning. */
export async function runScenarios(dir: string): Promise<ScenarioResult[]> {
  const { healthy, scenarios } = loadScenarios();
  const epoch = Math.floor(Date.now() / (60 * MIN)) * 60 * MIN - 2 * 60 * MIN;
  const serviceOf = (i: number) => `s${String(i + 1).padStart(2, '0')}`;
  const traffic: Traffic[] = scenarios.flatMap((s, i) =>
    s.traffic.map((t) => ({
      ...healthy,
      ...t,
      service: serviceOf(i),
      environment: 'production',
      instances: t.instances.map((h) => `${serviceOf(i)}-${h}`),
    })),
  );
  const prometheus = await startPrometheus({ dir, openMetrics: trafficOpenMetrics(traffic, epoch) });
  try {
    const config = parseConfig(
      `prometheus: { url: "${prometheus.url}" }\ndefaults: { evidence: required }\npeople: [{ email: ${AUTHOR} }]\n`,
      { path: 'scenarios.yaml', env: {} },
    );
    const settings = config.prometheus as PrometheusConfig;
    const client = createPrometheusClient(settings);
    const results: ScenarioResult[] = [];
    for (const [i, scenario] of scenarios.entries()) {
      results.push(await decide(scenario, serviceOf(i), epoch, config, settings, client));
    }
    return results;
  } finally {
    await prometheus.stop();
  }
}

async function decide(
  scenario: Scenario,
  service: string,
  epoch: number,
  config: Config,
  settings: PrometheusConfig,
  client: ReturnType<typeof createPrometheusClient>,
): Promise<ScenarioResult> {
  const d = scenario.deploy;
  const hosts = (d.hosts ?? []).map((h) => `${service}-${h}`);
  const deploy: Deploy = {
    id: `${service}-deploy`,
    ...(d.kind ? { kind: d.kind } : {}),
    ...(d.kind === 'config' ? { config: { key: 'db.pool_size' } } : {}),
    service,
    environment: 'production',
    version: d.version ?? 'v2',
    ...(d.previousVersion === null ? {} : { previousVersion: d.previousVersion ?? 'v1' }),
    stage: d.stage,
    hosts,
    at: epoch,
    receivedAt: epoch,
    changes: [{ author: { email: AUTHOR } }],
  };
  // The alert comes from an instance the deploy claims: a canary host when it lists hosts.
  const instance = hosts[0] ?? `${service}-${scenario.traffic[scenario.traffic.length - 1]?.instances[0]}`;
  const startsAtMs = epoch + scenario.alertMinute * MIN;
  const alert: Alert = {
    fingerprint: `${service}-alert`,
    startsAt: new Date(startsAtMs).toISOString(),
    startsAtMs,
    status: 'firing',
    labels: { alertname: 'ServiceUnhealthy', service, env: 'production', instance: `${instance}:8080` },
    annotations: {},
    generatorURL: 'http://prometheus.local/graph',
  };
  // Received 30 s after it started (Alertmanager's group_wait).
  const now = startsAtMs + 30_000;
  const policy = policyFor(config, service);
  const location = locateAlert(
    alert.labels,
    config.serviceLabels,
    (s) => policyFor(config, s),
    config.defaultEnvironment,
  );
  const decision = correlate({
    alert,
    location,
    candidates: { inWindow: [deploy] },
    policy,
    directory: config.directory,
    now,
  });
  const without: Paged = decision.targets.some((t) => t.kind === 'person') ? 'author' : 'on-call';
  const wrong = (paged: Paged) => (scenario.culprit === 'deploy' ? paged !== 'author' : paged === 'author');
  const base = { scenario, without, reason: decision.reason, wrongWithout: wrong(without) };
  if (without !== 'author') return { ...base, with: without, wrongWith: wrong(without) };

  const comparisons = scenario.comparisons === 'by-host' ? BY_HOST : evidenceFor(config, service).comparisons;
  const started = performance.now();
  const input = await gatherEvidence({
    deploy,
    alertStartsAtMs: startsAtMs,
    comparisons,
    client,
    settings,
    now,
    deadlineMs: settings.budgetMs,
  });
  const gatherMs = performance.now() - started;
  const evidence = judgeEvidence(input, settings);
  const paged: Paged = evidence.verdict === 'same' || evidence.verdict === 'better' ? 'on-call' : 'author';
  return { ...base, evidence, with: paged, wrongWith: wrong(paged), gatherMs };
}

/** Wrong-person pages without and with evidence, in all and by what really caused the alert. */
export function tally(results: readonly ScenarioResult[]) {
  const count = (pick: (r: ScenarioResult) => boolean) => results.filter(pick).length;
  return {
    scenarios: results.length,
    deployAtFault: count((r) => r.scenario.culprit === 'deploy'),
    deployInnocent: count((r) => r.scenario.culprit === 'elsewhere'),
    wrongWithout: count((r) => r.wrongWithout),
    wrongWith: count((r) => r.wrongWith),
    innocentAuthorPagedWithout: count((r) => r.scenario.culprit === 'elsewhere' && r.without === 'author'),
    innocentAuthorPagedWith: count((r) => r.scenario.culprit === 'elsewhere' && r.with === 'author'),
    guiltyAuthorMissedWithout: count((r) => r.scenario.culprit === 'deploy' && r.without !== 'author'),
    guiltyAuthorMissedWith: count((r) => r.scenario.culprit === 'deploy' && r.with !== 'author'),
  };
}

export const SCENARIO_FILE = join('test', 'fixtures', 'evidence', 'scenarios.json');
