// `npm run bench:evidence-paging`: what evidence costs the paging path, with a real Prometheus on 127.0.0.1
// (Debian's prometheus and promtool must be installed) and the PagerDuty stand-in. The service runs in this
// process (compose(), its outbox lanes started, the real clock), listening on loopback:
//
// - time to page: from sending an Alertmanager notification (one new alert that pages its author, a group of its
//   own) to the stand-in receiving the author's incident, one alert every 100 ms, with evidence (`required`, the
//   built-in comparisons, the default 3 s budget) and without a `prometheus` section;
// - ingest: new alerts answered per second by POST /v1/alertmanager, 8 requests in flight, with and without.
//
// Prints the figures and writes bench/results/evidence-paging-<time>.json. No assertion: numbers to read.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compose } from '../src/compose.js';
import { parseConfig } from '../src/config/load.js';
import { pageDedupKey } from '../src/core/dedup-key.js';
import { createLogger } from '../src/log.js';
import { amPayload, designDeploy } from '../test/support/harness.js';
import { startPagerDutyStub } from '../test/support/pagerduty-stub.js';
import { startPrometheus, trafficOpenMetrics } from '../test/support/prometheus.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CA_FILE = join(ROOT, 'test/fixtures/tls/localhost.crt');
const TOKEN = 'bench-token-0123456789abcdef';
const MIN = 60_000;
const PAGES = Number(process.env.BENCH_PAGES ?? 100);
const INGEST = Number(process.env.BENCH_INGEST ?? 2000);
const EPOCH = Math.floor(Date.now() / (60 * MIN)) * 60 * MIN - 3 * 60 * MIN;
const iso = (minute: number) => new Date(EPOCH + minute * MIN).toISOString();
const healthy = { environment: 'production', rps: 20, errorRatio: 0.003, latency: 0.08 };

const dir = mkdtempSync(join(tmpdir(), 'changepager-evidence-paging-'));
const prometheus = await startPrometheus({
  dir,
  openMetrics: trafficOpenMetrics(
    [
      { ...healthy, service: 'checkout', version: 'v1', instances: ['c-1', 'c-2'], from: -60, to: 0 },
      { ...healthy, service: 'checkout', version: 'v2', instances: ['c-1', 'c-2'], from: 0, to: 30, errorRatio: 0.08 },
    ],
    EPOCH,
  ),
});
const pd = await startPagerDutyStub({ https: true });
pd.users = [{ id: 'PALICE', email: 'alice@example.com', name: 'Alice' }];

function yaml(withEvidence: boolean, db: string): string {
  return `
database: { path: ${JSON.stringify(db)} }
${withEvidence ? `prometheus: { url: "${prometheus.url}" }` : ''}
pagerduty:
  events_url: ${pd.url}
  api_url: ${pd.url}
  api_token_env: PD_TOKEN
  from: changepager@example.com
  ca_file: ${CA_FILE}
defaults:
  policy: author
  ${withEvidence ? 'evidence: required' : ''}
  pagerduty: { service_id: PDEFAULT, routing_key_env: PD_KEY }
people:
  - { email: alice@example.com, logins: [alice], pagerduty_user_id: PALICE }
`;
}

async function service(withEvidence: boolean, name: string, lanes = true) {
  const config = parseConfig(yaml(withEvidence, join(dir, `${name}.db`)), {
    path: 'bench.yaml',
    env: { CHANGEPAGER_TOKEN: TOKEN, PD_TOKEN: 'pd', PD_KEY: 'checkout-routing-key-000000000000' },
  });
  const c = compose({ config, log: createLogger('warn') });
  if (lanes) c.worker.start();
  const server = await new Promise<Server>((resolve) => {
    const s = c.app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const post = (path: string, body: unknown) =>
    fetch(`${url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const res = await post(
    '/v1/deploys',
    designDeploy({ id: `bench-${name}`, service: 'checkout', version: 'v2', previousVersion: 'v1', at: iso(0) }),
  );
  if (res.status !== 201) throw new Error(`deploy: ${res.status}`);
  return {
    post,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await c.worker.stop();
      await c.metrics.stop();
      await c.store.close();
    },
  };
}

const fp = (run: string, i: number) =>
  (Buffer.from(run).toString('hex') + i.toString(16).padStart(8, '0')).slice(-16).padStart(16, '0');

/** Time from sending each alert to the stand-in getting its author's incident, ms. */
async function timeToPage(withEvidence: boolean, run: string): Promise<number[]> {
  const svc = await service(withEvidence, run);
  const sent = new Map<string, number>();
  try {
    for (let i = 0; i < PAGES; i++) {
      const groupKey = `{}:{run="${run}",i="${i}"}`;
      const payload = amPayload([{ fingerprint: fp(run, i), startsAt: iso(7) }], groupKey);
      const started = Date.now();
      const res = await svc.post('/v1/alertmanager', payload);
      if (res.status !== 200) throw new Error(`alert: ${res.status}`);
      sent.set(groupKey, started);
      await new Promise((r) => setTimeout(r, 100));
    }
    // The incident of each alert's page, by its key: the page's dedup key.
    const keyOf = (groupKey: string) =>
      pageDedupKey({ groupKey, service: 'checkout', target: 'person:alice@example.com', seq: 1 });
    const keys = new Set([...sent.keys()].map(keyOf));
    const created = (reqs: readonly { route: string; body: unknown; at: number }[]) =>
      reqs.filter(
        (r) =>
          r.route === 'incidents.create' &&
          keys.has((r.body as { incident?: { incident_key?: string } }).incident?.incident_key ?? ''),
      );
    await pd.waitFor((reqs) => created(reqs).length >= PAGES, 60_000);
    const at = new Map(
      created(pd.requestsTo('incidents.create')).map((r) => [
        (r.body as { incident?: { incident_key?: string } }).incident?.incident_key,
        r.at,
      ]),
    );
    return [...sent].map(([groupKey, started]) => (at.get(keyOf(groupKey)) ?? Number.NaN) - started);
  } finally {
    await svc.close();
  }
}

/**
 * New alerts per second answered by POST /v1/alertmanager, 8 in flight. Without `lanes`, nothing is delivered
 * meanwhile: the request path alone, which is all that evidence could slow down in ingest itself.
 */
async function ingest(withEvidence: boolean, run: string, lanes: boolean): Promise<number> {
  const svc = await service(withEvidence, run, lanes);
  try {
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < INGEST) {
          const i = next++;
          const payload = amPayload([{ fingerprint: fp(run, i), startsAt: iso(7) }], `{}:{run="${run}",i="${i}"}`);
          const res = await svc.post('/v1/alertmanager', payload);
          if (res.status !== 200) throw new Error(`alert: ${res.status}`);
        }
      }),
    );
    return INGEST / ((performance.now() - started) / 1000);
  } finally {
    await svc.close();
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].filter(Number.isFinite).sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? Number.NaN;
};

try {
  const load = loadavg()[0]?.toFixed(1);
  const withEv = await timeToPage(true, 'tpe');
  const without = await timeToPage(false, 'tpn');
  // Alternated, twice each, so that a change in the machine's load does not land on one side only.
  const ingestRuns = {
    with: [] as number[],
    without: [] as number[],
    withLanes: [] as number[],
    withoutLanes: [] as number[],
  };
  for (const round of [1, 2]) {
    ingestRuns.without.push(await ingest(false, `in${round}`, false));
    ingestRuns.with.push(await ingest(true, `ie${round}`, false));
    ingestRuns.withoutLanes.push(await ingest(false, `ln${round}`, true));
    ingestRuns.withLanes.push(await ingest(true, `le${round}`, true));
  }
  const best = (xs: number[]) => Math.round(Math.max(...xs));
  const summary = {
    at: new Date().toISOString(),
    loadAverageAtStart: load,
    pages: PAGES,
    timeToPageMs: {
      withEvidence: { p50: pct(withEv, 0.5), p99: pct(withEv, 0.99), max: pct(withEv, 1) },
      withoutEvidence: { p50: pct(without, 0.5), p99: pct(without, 0.99), max: pct(without, 1) },
    },
    ingestAlertsPerSecond: {
      requestPathOnly: { withEvidence: best(ingestRuns.with), withoutEvidence: best(ingestRuns.without) },
      withDeliveryRunning: { withEvidence: best(ingestRuns.withLanes), withoutEvidence: best(ingestRuns.withoutLanes) },
      runs: ingestRuns,
    },
  };
  console.log(JSON.stringify(summary, null, 2));
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(
    join(ROOT, `bench/results/evidence-paging-${summary.at.replace(/[:.]/g, '-')}.json`),
    `${JSON.stringify(summary, null, 2)}\n`,
  );
} finally {
  await pd.close();
  await prometheus.stop();
  rmSync(dir, { recursive: true, force: true });
}
