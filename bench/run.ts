// `npm run bench`: how fast changepager is, measured with the service in its own process and the load generator
// (autocannon, bench/load.mjs) in another. Prints a table and writes the figures to bench/results/*.json.
//
//   BENCH_QUICK=1    shorter phases (a smoke run of the bench itself: the numbers mean little)
//   BENCH_PROFILE=1  also run the ingest phase under `node --cpu-prof` and print where the time goes
//   BENCH_DEPLOYS=n  deploys stored for the correlation phase (default 1,000,000)
//   BENCH_DIST=1     run the service as installed, `node dist/cli.js serve` (after `npm run build`), not via tsx
//   BENCH_NODE_ARGS  more flags for the service's node process, after the ones `npm start` passes, e.g. "--optimize-for-size"
//   BENCH_STORM=n    notifications of 100 new alerts each in the storm phase (default 200: 20,000 alerts)
//   BENCH_ONLY=a,b   only these phases: ingest, timeToPage, timeToPageStorm, storm, correlation, tokenTiming,
//                    scrape, cluster
//   CHANGEPAGER_TEST_POSTGRES_URL  the PostgreSQL the cluster phase makes its databases on (default: the local one)
//
// Phases: (1) ingest throughput and latency of POST /v1/alertmanager (commit before answer) beside a bare
// express 5 endpoint that only parses the same JSON; (2) time from receipt to the PagerDuty stand-in getting the
// page at a steady 50 alerts/s; (3) a storm of 20,000 alerts in 200 notifications; (4) the cost of a decision
// with a million deploys stored; (5) the token comparison's timing for wrong-first vs wrong-last characters;
// (6) ingest p99 while /metrics is scraped by 20 connections, against ingest alone, with a week of history
// stored (80,000 episodes, 40,000 deploys, 30,000 services); (7) phases 1 to 3 again on PostgreSQL, with one
// replica and with three (the load spread over them), and their ratios to SQLite.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { Request, Response } from 'express';
import { parseConfig } from '../src/config/load.js';
import type { AlertGroup } from '../src/core/types.js';
import { bearerAuth } from '../src/http/auth.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { createPipeline } from '../src/pipeline.js';
import { openSqliteStore } from '../src/store/sqlite/store.js';
import { designDeploy } from '../test/support/harness.js';
import { type PagerDutyStub, startPagerDutyStub } from '../test/support/pagerduty-stub.js';
import { createTestDatabase, queryDatabase } from '../test/support/postgres.js';
import { seedHistory } from './history.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CA_FILE = join(ROOT, 'test/fixtures/tls/localhost.crt');
const QUICK = process.env.BENCH_QUICK === '1';
const PROFILE = process.env.BENCH_PROFILE === '1';
const DEPLOYS = Number(process.env.BENCH_DEPLOYS ?? 1_000_000);
const STORM_NOTIFICATIONS = Number(process.env.BENCH_STORM ?? 200);
const TOKEN = 'bench-token-4d3c2b1a09f8e7d6c5b4a392';
const ROUTING_KEY = 'bench-routing-key-0000000000000000';
const ONLY = process.env.BENCH_ONLY?.split(',').map((p) => p.trim());
const TARGETS = {
  ingestRatio: 0.6,
  repeatRatio: 0.9,
  timeToPageP99Ms: 10,
  timeToPageInStormP99Ms: 20,
  stormPeakRssMb: 150,
  stormDrainSeconds: 30,
  correlationMedianMs: 0.1,
  scrapeP99Ratio: 2,
  /** Three replicas on PostgreSQL take new alerts at least as fast as one SQLite instance. */
  clusterIngestRatio: 1,
  /** Time to page p99 on PostgreSQL at most twice SQLite's. */
  postgresTimeToPageRatio: 2,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}
const stats = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? 0,
  };
};
const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ----- processes ----------------------------------------------------------------------------------------------

interface Proc {
  child: ChildProcess;
  url: string;
  output: () => string;
  peakRssMb(): number;
  /** CPU time (user + system) the process has used so far, ms: less noisy than req/s on a shared machine. */
  cpuMs(): number;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts a Node process (through tsx) listening on PORT and waits until `ready` answers. */
async function startNode(script: string, env: Record<string, string>, opts: { nodeArgs?: string[]; ready: string }) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [
      ...(opts.nodeArgs ?? []),
      ...(script.endsWith('.ts') ? ['--import', 'tsx'] : []),
      script,
      ...(/cli\.[jt]s$/.test(script) ? ['serve'] : []),
    ],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const keep = (c: Buffer) => {
    out = (out + c.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${script} exited:\n${out}`);
    try {
      const res = await fetch(`${url}${opts.ready}`, { method: opts.ready === '/healthz' ? 'GET' : 'POST' });
      if (res.status < 500) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${script} did not start:\n${out}`);
    await sleep(100);
  }
  const proc: Proc = {
    child,
    url,
    output: () => out,
    peakRssMb() {
      // VmHWM: the peak resident set size of the process over its life.
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
    },
    cpuMs() {
      // Fields 14 and 15 of /proc/<pid>/stat (utime, stime), in clock ticks of 10 ms (USER_HZ on Linux); the
      // command name (field 2) may hold spaces, so count from after its closing parenthesis.
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) * 10;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return proc;
}

/** The node flags `npm start` and the image start the service with, so that the bench measures it as it ships. */
const SERVE_NODE_FLAGS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start as string)
  .split(' ')
  .filter((word) => word.startsWith('--'));

function startChangepager(
  dir: string,
  yaml: string,
  nodeArgs: string[] = [...SERVE_NODE_FLAGS, ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)],
) {
  const file = join(dir, 'changepager.yaml');
  writeFileSync(file, `database: { path: ${JSON.stringify(join(dir, 'changepager.db'))} }\n${yaml}`);
  return startNode(
    process.env.BENCH_DIST === '1' ? 'dist/cli.js' : 'src/cli.ts',
    { CHANGEPAGER_CONFIG: file, CHANGEPAGER_TOKEN: TOKEN, PD_KEY: ROUTING_KEY },
    { nodeArgs, ready: '/healthz' },
  );
}

/** Where a phase sends its load: one SQLite instance, or replicas on one PostgreSQL database. */
type Setup = 'sqlite' | 'postgres-1' | 'postgres-3';

interface Target {
  setup: Setup;
  urls: string[];
  stop(): Promise<void>;
  /** The highest peak RSS among the processes, MB. */
  peakRssMb(): number;
  /** Episodes stored, and episodes on a page recorded as triggered: read from the database after the run. */
  stored(): Promise<{ episodes: number; delivered: number }>;
}

async function startTarget(setup: Setup, dir: string, yaml: string): Promise<Target> {
  if (setup === 'sqlite') {
    const svc = await startChangepager(dir, yaml);
    const dbPath = join(dir, 'changepager.db');
    return {
      setup,
      urls: [svc.url],
      stop: () => svc.stop(),
      peakRssMb: () => svc.peakRssMb(),
      async stored() {
        const db = new Database(dbPath, { readonly: true });
        const one = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
        const result = {
          episodes: one('SELECT COUNT(*) AS n FROM episodes'),
          delivered: one(`SELECT COUNT(DISTINCT m.episode_id) AS n FROM page_members m JOIN pages p ON p.id = m.page_id
            WHERE json_extract(p.delivered, '$.state') = 'triggered'`),
        };
        db.close();
        return result;
      },
    };
  }
  const replicas = setup === 'postgres-3' ? 3 : 1;
  const db = await createTestDatabase('cp_bench');
  const file = join(dir, 'changepager.yaml');
  writeFileSync(file, `database: { url_env: CHANGEPAGER_DATABASE_URL }\n${yaml}`);
  const env = {
    CHANGEPAGER_CONFIG: file,
    CHANGEPAGER_TOKEN: TOKEN,
    PD_KEY: ROUTING_KEY,
    CHANGEPAGER_DATABASE_URL: db.url,
  };
  // One after the other: the first migrates, the others find the schema ready.
  const procs: Proc[] = [];
  for (let i = 0; i < replicas; i++)
    procs.push(await startNode('src/cli.ts', env, { nodeArgs: SERVE_NODE_FLAGS, ready: '/healthz' }));
  let peak = 0;
  return {
    setup,
    urls: procs.map((p) => p.url),
    async stop() {
      peak = Math.max(peak, ...procs.map((p) => p.peakRssMb()));
      await Promise.all(procs.map((p) => p.stop()));
      await db.drop();
    },
    peakRssMb: () => Math.max(peak, ...procs.filter((p) => p.child.exitCode === null).map((p) => p.peakRssMb())),
    async stored() {
      const [row] = await queryDatabase<{ episodes: number; delivered: number }>(
        db.url,
        `SELECT (SELECT count(*)::int FROM episodes) AS episodes,
          (SELECT count(DISTINCT m.episode_id)::int FROM page_members m JOIN pages p ON p.id = m.page_id
            WHERE p.delivered::json ->> 'state' = 'triggered') AS delivered`,
      );
      return row as { episodes: number; delivered: number };
    },
  };
}

/**
 * Runs one load against every URL of a target at once, its connections (or its `amount` of requests) split
 * evenly, and sums what they report: rates and counts add up; the latency is the worst of the generators' own
 * percentiles (autocannon does not hand out its samples), so a percentile here is an upper bound.
 */
async function loadAll(target: Target, options: Record<string, unknown>): Promise<LoadResult> {
  const n = target.urls.length;
  const split = (total: number, i: number) => Math.floor(total / n) + (i < total % n ? 1 : 0);
  const runs = await Promise.all(
    target.urls.map((url, i) =>
      load({
        ...options,
        url: `${url}${options.path as string}`,
        connections: split((options.connections as number | undefined) ?? 10, i),
        ...(options.amount === undefined ? {} : { amount: split(options.amount as number, i) }),
        // Each generator its own fingerprints and groups.
        prefix: ((options.prefix as number | undefined) ?? 0) * 16 + i,
        groupOffset: i * 1_000_000,
      }),
    ),
  );
  const sum = (f: (r: LoadResult) => number) => runs.reduce((t, r) => t + f(r), 0);
  const max = (f: (r: LoadResult) => number) => Math.max(...runs.map(f));
  return {
    requestsPerSecond: sum((r) => r.requestsPerSecond),
    totalRequests: sum((r) => r.totalRequests),
    latencyMs: {
      p50: max((r) => r.latencyMs.p50),
      p90: max((r) => r.latencyMs.p90),
      p99: max((r) => r.latencyMs.p99),
      max: max((r) => r.latencyMs.max),
      mean:
        sum((r) => r.latencyMs.mean * r.totalRequests) /
        Math.max(
          1,
          sum((r) => r.totalRequests),
        ),
    },
    ok2xx: sum((r) => r.ok2xx),
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    durationSeconds: max((r) => r.durationSeconds),
    bodyBytes: runs[0]?.bodyBytes ?? 0,
    responseBytes: sum((r) => r.responseBytes),
  };
}

interface LoadResult {
  requestsPerSecond: number;
  totalRequests: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationSeconds: number;
  bodyBytes: number;
  responseBytes: number;
}

/** Runs bench/load.mjs (autocannon) as its own process. */
function load(options: Record<string, unknown>): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bench/load.mjs', JSON.stringify(options)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`load generator exited ${code}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').pop() as string));
    });
  });
}

// ----- phase 1: ingest --------------------------------------------------------------------------------------------

async function ingest(work: string) {
  const duration = QUICK ? 3 : 10;
  const connections = 10;
  log(`ingest: bare express 5 for ${duration} s`);
  const bare = await startNode('bench/bare-express.ts', {}, { ready: '/v1/alertmanager' });
  await load({ url: `${bare.url}/v1/alertmanager`, mode: 'unique', duration: 1, connections }); // warm-up
  const bareCpu = bare.cpuMs();
  const bareResult = await load({ url: `${bare.url}/v1/alertmanager`, mode: 'unique', duration, connections });
  const cpuUs: Record<string, number> = { bare: ((bare.cpuMs() - bareCpu) * 1000) / bareResult.totalRequests };
  await bare.stop();

  const results: Record<string, LoadResult> = {};
  for (const mode of ['unique', 'repeat'] as const) {
    log(`ingest: changepager, ${mode} alerts, for ${duration} s`);
    const dir = mkdtempSync(join(work, `ingest-${mode}-`));
    const svc = await startChangepager(dir, '');
    await load({ url: `${svc.url}/v1/alertmanager`, token: TOKEN, mode, duration: 1, connections, prefix: 1 });
    const cpuBefore = svc.cpuMs();
    results[mode] = await load({
      url: `${svc.url}/v1/alertmanager`,
      token: TOKEN,
      mode,
      duration,
      connections,
      prefix: 2,
    });
    cpuUs[mode] = ((svc.cpuMs() - cpuBefore) * 1000) / (results[mode] as LoadResult).totalRequests;
    await svc.stop();
  }
  const unique = results.unique as LoadResult;
  return {
    connections,
    durationSeconds: duration,
    bare: bareResult,
    changepager: unique,
    changepagerRepeats: results.repeat as LoadResult,
    ratio: unique.requestsPerSecond / bareResult.requestsPerSecond,
    ratioRepeats: (results.repeat as LoadResult).requestsPerSecond / bareResult.requestsPerSecond,
    /** CPU time of the service process per request, µs: bare express, a new alert, a repeat. */
    cpuUsPerRequest: { bare: cpuUs.bare ?? 0, unique: cpuUs.unique ?? 0, repeat: cpuUs.repeat ?? 0 },
  };
}

/** New alerts, one per request, on a target: the same load as the ingest phase, spread over its replicas. */
async function ingestOn(work: string, setup: Setup) {
  const duration = QUICK ? 3 : 10;
  log(`ingest on ${setup}: a new alert per request for ${duration} s`);
  const target = await startTarget(setup, mkdtempSync(join(work, `ingest-${setup}-`)), '');
  const options = { path: '/v1/alertmanager', token: TOKEN, mode: 'unique', connections: 10 };
  await loadAll(target, { ...options, duration: 1, prefix: 1 });
  const result = await loadAll(target, { ...options, duration, prefix: 2 });
  await target.stop();
  return result;
}

/** Runs the ingest load under --cpu-prof and sums self time per function. */
async function profileIngest(work: string) {
  const dir = mkdtempSync(join(work, 'profile-'));
  const profDir = join(dir, 'prof');
  mkdirSync(profDir);
  const svc = await startChangepager(dir, '', [...SERVE_NODE_FLAGS, '--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  await load({
    url: `${svc.url}/v1/alertmanager`,
    token: TOKEN,
    mode: 'unique',
    duration: QUICK ? 3 : 8,
    connections: 10,
  });
  await svc.stop();
  // One profile per thread: CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile, thread 0 being the event loop.
  // The database thread is another; run from the sources, tsx's module loader adds threads of its own (idle).
  return readdirSync(profDir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((file) => ({ file, thread: Number(file.split('.')[4]) }))
    .sort((a, b) => a.thread - b.thread)
    .map(({ file, thread }) => ({
      thread: thread === 0 ? 'the event loop' : `thread ${thread}`,
      ...summariseProfile(join(profDir, file)),
    }));
}

/** Self time of a .cpuprofile by function (top 15) and by where the code lives (top 12). */
function summariseProfile(path: string) {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
    samples: number[];
    timeDeltas: number[];
  };
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    total += us;
    const where = node.callFrame.url.replace(/^.*\/(node_modules\/[^/]+|src)\//, '$1/').replace(/^file:\/\//, '');
    const name =
      `${node.callFrame.functionName || '(anonymous)'} ${where ? `${where}:${node.callFrame.lineNumber + 1}` : ''}`.trim();
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  }
  // The same time by where the code lives: our src/ by file, each package, Node's internals, GC and idle.
  const byArea = new Map<string, number>();
  for (const node of profile.nodes) {
    const url = node.callFrame.url;
    const fn = node.callFrame.functionName;
    const area = url.includes('/node_modules/')
      ? `node_modules/${/\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1]}`
      : url.includes('/src/')
        ? `src/${url.split('/src/')[1]}`
        : url.startsWith('node:')
          ? 'node internals'
          : fn.startsWith('(')
            ? fn
            : 'native (no script)';
    byArea.set(area, (byArea.get(area) ?? 0) + (selfUs.get(node.id) ?? 0));
  }
  const areas = [...byArea]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([name, us]) => ({ name, selfMs: round(us / 1000, 1), percent: round((100 * us) / total, 1) }));
  const top = [...byFunction]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([name, us]) => ({ name, selfMs: round(us / 1000, 1), percent: round((100 * us) / total, 1) }));
  return { top, areas, totalMs: round(total / 1000, 0) };
}

// ----- phase 2: time to page at a steady rate -------------------------------------------------------------------

function pagerdutyYaml(stub: PagerDutyStub) {
  return [
    'delivery: { poll_interval: PT1S, max_backoff: PT5S }',
    `pagerduty: { events_url: ${stub.url}, ca_file: ${JSON.stringify(CA_FILE)}, request_timeout: PT5S }`,
    'defaults: { pagerduty: { routing_key_env: PD_KEY } }',
  ].join('\n');
}

/**
 * With `storm`, a storm of new alerts in other groups (STORM_NOTIFICATIONS of 100, 10 connections, as fast as
 * they are answered) is sent at the same time, and only the steady alerts sent while it lasted are measured.
 */
async function timeToPage(work: string, setup: Setup = 'sqlite', opts: { storm?: boolean } = {}) {
  const rate = 50;
  const seconds = QUICK ? 5 : 20;
  const total = rate * seconds;
  log(`time to page on ${setup}: ${total} alerts at ${rate}/s`);
  const stub = await startPagerDutyStub({ https: true });
  const svc = await startTarget(setup, mkdtempSync(join(work, `ttp-${setup}-`)), pagerdutyYaml(stub));
  const sentAt = new Map<string, number>();
  const statuses = new Map<number, number>();
  /** How long each notification took to be answered: the ingest part of the time to page. */
  const answerMs: number[] = [];
  const startsAt = new Date(Date.now() - 60_000).toISOString();
  // A second of the same traffic first, not measured: a process just started (its JIT, its database connections
  // and their prepared statements) is not what a page waits for in steady state. Every setup gets the same.
  for (let i = 0; i < rate; i++) {
    const warm = JSON.stringify({
      version: '4',
      groupKey: `{}:{alertname="Warm${i}"}`,
      status: 'firing',
      receiver: 'changepager',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: `Warm${i}`, service: 'checkout', env: 'production', instance: `warm-${i}:9100` },
          annotations: { summary: 'warm-up' },
          startsAt,
          fingerprint: `3a3a${i.toString(16).padStart(12, '0')}`,
        },
      ],
    });
    await fetch(`${svc.urls[i % svc.urls.length]}/v1/alertmanager`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: warm,
    }).then((r) => r.arrayBuffer());
    await sleep(1000 / rate);
  }
  while (stub.requestsTo('events').length < rate) await sleep(50);
  const stormStart = Date.now();
  let stormEnd = Number.POSITIVE_INFINITY;
  const storming = opts.storm
    ? loadAll(svc, {
        path: '/v1/alertmanager',
        token: TOKEN,
        mode: 'storm',
        amount: STORM_NOTIFICATIONS,
        alertsPerRequest: 100,
        connections: 10,
        service: 'search',
      }).then((r) => {
        stormEnd = Date.now();
        return r;
      })
    : undefined;
  const t0 = performance.now() + 100;
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    const name = `Steady${i}`;
    const body = JSON.stringify({
      version: '4',
      groupKey: `{}:{alertname="${name}"}`,
      status: 'firing',
      receiver: 'changepager',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: name, service: 'checkout', env: 'production', instance: `host-${i}:9100` },
          annotations: { summary: 'steady' },
          startsAt,
          fingerprint: `5eed${i.toString(16).padStart(12, '0')}`,
        },
      ],
    });
    const sent = Date.now();
    sentAt.set(name, sent);
    inflight.push(
      // Round robin over the replicas, as a Service in front of them would spread Alertmanager's requests.
      fetch(`${svc.urls[i % svc.urls.length]}/v1/alertmanager`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body,
      }).then(async (r) => {
        await r.arrayBuffer();
        answerMs.push(Date.now() - sent);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }),
    );
  }
  await Promise.all(inflight);
  const stormed = await storming;
  const deadline = Date.now() + 30_000;
  const steadyPaged = () => stub.requestsTo('events').filter((r) => /Steady\d+/.test(JSON.stringify(r.body))).length;
  while (steadyPaged() < total && Date.now() < deadline) await sleep(100);
  const latencies: number[] = [];
  for (const r of stub.requestsTo('events')) {
    const name = /Steady\d+/.exec(JSON.stringify(r.body))?.[0];
    const sent = name && sentAt.get(name);
    if (sent && (!opts.storm || (sent >= stormStart && sent <= stormEnd))) latencies.push(r.at - sent);
  }
  await svc.stop();
  await stub.close();
  return {
    setup,
    rate,
    alerts: total,
    answered: Object.fromEntries(statuses),
    paged: latencies.length,
    latencyMs: stats(latencies),
    answerMs: stats(answerMs),
    ...(stormed ? { storm: { alerts: stormed.ok2xx * 100, seconds: round((stormEnd - stormStart) / 1000) } } : {}),
  };
}

// ----- phase 3: storm -------------------------------------------------------------------------------------------

async function storm(work: string, setup: Setup = 'sqlite') {
  const notifications = QUICK ? 40 : STORM_NOTIFICATIONS;
  const perNotification = 100;
  log(`storm on ${setup}: ${notifications * perNotification} alerts in ${notifications} notifications`);
  const stub = await startPagerDutyStub({ https: true });
  const dir = mkdtempSync(join(work, `storm-${setup}-`));
  const svc = await startTarget(setup, dir, pagerdutyYaml(stub));
  const sent = await loadAll(svc, {
    path: '/v1/alertmanager',
    token: TOKEN,
    mode: 'storm',
    amount: notifications,
    alertsPerRequest: perNotification,
    connections: 10,
    service: 'search',
  });
  const acceptedAt = Date.now();
  // The load generator's own start-to-finish time; its process start-up is not part of the storm.
  const sendStart = acceptedAt - sent.durationSeconds * 1000;
  const accepted = sent.ok2xx * perNotification;
  const deadline = Date.now() + 180_000;
  const depth = async () =>
    ((await (await fetch(`${svc.urls[0]}/readyz`)).json()) as { outbox?: { depth: number } }).outbox?.depth;
  while (Date.now() < deadline) {
    if (stub.alerts().length >= sent.ok2xx && (await depth()) === 0) break;
    await sleep(200);
  }
  const events = stub.requestsTo('events', { accepted: true });
  const drainedAt = Math.max(...events.map((e) => e.at));
  const peakRssMb = svc.peakRssMb();
  // Paged: alerts named in the triggers PagerDuty accepted ("[FIRING:n] …" per page).
  const paged = stub
    .alerts()
    .reduce((n, a) => n + Number(/\[FIRING:(\d+)\]/.exec(a.payload?.summary ?? '')?.[1] ?? 0), 0);
  const duplicates = stub.alerts().filter((a) => a.incidentsOpened > 1).length;
  // Cross-check from the database: every stored alert belongs to a page PagerDuty took.
  const { episodes: stored, delivered } = await svc.stored();
  await svc.stop();
  await stub.close();
  return {
    setup,
    notifications,
    alerts: notifications * perNotification,
    accepted,
    refused: sent.non2xx * perNotification,
    stored,
    paged,
    deliveredPerDatabase: delivered,
    lost: accepted - paged,
    duplicatePages: duplicates,
    sendSeconds: round(sent.durationSeconds),
    ingestLatencyMs: sent.latencyMs,
    /** From the first notification sent to the last page PagerDuty received. */
    drainSeconds: round((drainedAt - sendStart) / 1000),
    peakRssMb: round(peakRssMb, 0),
  };
}

// ----- phase 4: correlation with a million deploys -------------------------------------------------------------

async function correlation(work: string) {
  const dir = mkdtempSync(join(work, 'corr-'));
  const dbPath = join(dir, 'changepager.db');
  const services = 500;
  const yearMs = 365 * 24 * 3600_000;
  const end = Date.parse('2026-11-26T12:00:00Z');
  log(`correlation: storing ${DEPLOYS.toLocaleString('en')} deploys of ${services} services over a year`);
  const built = performance.now();
  {
    // One deploy through the real store (so every column has the shape the code writes), then copied in SQL.
    const store = openSqliteStore(dbPath);
    await store.saveDeploy({
      id: 'template',
      service: 'svc-0',
      environment: 'production',
      version: 'v0',
      previousVersion: 'v-1',
      stage: 'full',
      hosts: [],
      at: end - yearMs,
      receivedAt: end - yearMs,
      changes: designDeploy().changes,
    } as unknown as Parameters<typeof store.saveDeploy>[0]);
    await store.close();
    const db = new Database(dbPath);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF');
    const columns = (db.prepare('PRAGMA table_info(deploys)').all() as { name: string }[]).map((c) => c.name);
    const computed: Record<string, string> = {
      id: "printf('bench-%d', n.i)",
      service: `printf('svc-%d', n.i % ${services})`,
      version: "printf('v%d', n.i)",
      previous_version: "printf('v%d', n.i - 1)",
      at: `${end - yearMs} + (n.i * ${Math.floor(yearMs / DEPLOYS)})`,
      received_at: `${end - yearMs} + (n.i * ${Math.floor(yearMs / DEPLOYS)})`,
    };
    const select = columns.map((c) => computed[c] ?? `t.${c}`).join(', ');
    db.exec(`
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${DEPLOYS})
      INSERT INTO deploys (${columns.join(', ')}) SELECT ${select} FROM n, (SELECT * FROM deploys WHERE id = 'template') t;
      DELETE FROM deploys WHERE id = 'template';
    `);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
  }
  const buildSeconds = (performance.now() - built) / 1000;
  const dbBytes = statSync(dbPath).size;

  // (a) the decision itself, as the pipeline makes it (store lookup + correlate), timed one alert at a time.
  const config = parseConfig(`database: { path: ${JSON.stringify(dbPath)} }\n`, { path: 'bench.yaml', env: {} });
  const store = openSqliteStore(dbPath);
  const pipeline = createPipeline({
    config,
    store,
    now: () => end,
    log: createLogger('error'),
    metrics: createMetrics(store, () => end),
    sendsChangeEvent: () => false,
    onCommitted: () => {},
  });
  const decisions = QUICK ? 2000 : 20_000;
  const perDecision: number[] = [];
  const reasons = new Map<string, number>();
  let seed = 42;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const alertAt = (i: number) => {
    const startsAtMs = Math.floor(end - random() * yearMs);
    const group: AlertGroup = {
      groupKey: 'bench',
      receiver: 'bench',
      externalURL: '',
      truncatedAlerts: 0,
      alerts: [
        {
          fingerprint: `c0${i.toString(16).padStart(14, '0')}`,
          startsAt: new Date(startsAtMs).toISOString(),
          startsAtMs,
          status: 'firing',
          labels: { alertname: 'Bench', service: `svc-${Math.floor(random() * services)}`, env: 'production' },
          annotations: {},
          generatorURL: '',
        },
      ],
    } as AlertGroup;
    return group;
  };
  for (let i = 0; i < 500; i++) await pipeline.preview(alertAt(i)); // warm-up
  for (let i = 0; i < decisions; i++) {
    const group = alertAt(i);
    const t = process.hrtime.bigint();
    const [d] = await pipeline.preview(group);
    perDecision.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (d) reasons.set(d.decision.reason, (reasons.get(d.decision.reason) ?? 0) + 1);
  }
  await store.close();

  // (b) the same through the service process: POST /v1/preview, one alert per request, HTTP included.
  log('correlation: POST /v1/preview against the service process');
  const svc = await startChangepager(dir, '');
  const http: number[] = [];
  for (let i = 0; i < (QUICK ? 300 : 2000); i++) {
    const g = alertAt(i);
    const body = JSON.stringify({
      version: '4',
      groupKey: 'bench',
      status: 'firing',
      alerts: g.alerts.map((a) => ({
        status: 'firing',
        labels: a.labels,
        startsAt: a.startsAt,
        fingerprint: a.fingerprint,
      })),
    });
    const t = performance.now();
    const res = await fetch(`${svc.url}/v1/preview`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body,
    });
    await res.arrayBuffer();
    http.push(performance.now() - t);
  }
  await svc.stop();
  return {
    deploys: DEPLOYS,
    services,
    buildSeconds: round(buildSeconds, 1),
    databaseMb: round(dbBytes / 1024 / 1024, 0),
    decisions,
    perDecisionMs: stats(perDecision),
    reasons: Object.fromEntries(reasons),
    previewHttpMs: stats(http),
  };
}

// ----- phase 5: token comparison timing ------------------------------------------------------------------------

function tokenTiming() {
  log('token comparison: wrong first vs wrong last character');
  const secret = 'am-7d0c4f1e9b2a6c3d8e5f0a1b2c3d4e5f';
  const middleware = bearerAuth([
    { name: 'a', secret },
    { name: 'b', secret: 'ci-0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d' },
  ]);
  const variants = {
    wrongFirst: `Bearer x${secret.slice(1)}`,
    wrongLast: `Bearer ${secret.slice(0, -1)}x`,
    right: `Bearer ${secret}`,
  };
  const res = { locals: {}, set: () => res } as unknown as Response;
  const reqs = Object.fromEntries(
    Object.entries(variants).map(([k, header]) => [
      k,
      {
        method: 'POST',
        get: (n: string) => (n.toLowerCase() === 'authorization' ? header : undefined),
      } as unknown as Request,
    ]),
  ) as Record<keyof typeof variants, Request>;
  const rounds = QUICK ? 50 : 200;
  const perRound = 2000;
  const samples: Record<keyof typeof variants, number[]> = { wrongFirst: [], wrongLast: [], right: [] };
  const next = () => {};
  for (let r = 0; r < rounds; r++) {
    // Interleaved, so drift in the machine's load hits every variant alike.
    for (const k of Object.keys(variants) as (keyof typeof variants)[]) {
      const req = reqs[k];
      const t = process.hrtime.bigint();
      for (let i = 0; i < perRound; i++) middleware(req, res, next);
      samples[k].push(Number(process.hrtime.bigint() - t) / perRound);
    }
  }
  const median = (k: keyof typeof variants) => stats(samples[k]).p50;
  return {
    nsPerCheck: {
      wrongFirst: round(median('wrongFirst'), 0),
      wrongLast: round(median('wrongLast'), 0),
      right: round(median('right'), 0),
    },
    wrongLastMinusWrongFirstNs: round(median('wrongLast') - median('wrongFirst'), 0),
  };
}

// ----- phase 6: ingest while /metrics is scraped ------------------------------------------------------------------

async function scrape(work: string) {
  const duration = QUICK ? 3 : 5;
  const rounds = QUICK ? 1 : 3;
  const history = { services: 30_000, deploys: 40_000, episodes: 80_000 };
  const dir = mkdtempSync(join(work, 'scrape-'));
  log(`scrape: storing a week of history (${JSON.stringify(history)})`);
  await seedHistory(join(dir, 'changepager.db'), { ...history, now: Date.now() });
  // The gauges are refreshed every 5 s here, six times as often as by default, so that refreshes fall into
  // both measurements.
  const svc = await startChangepager(dir, 'metrics: { refresh_interval: PT5S }\n');
  let prefix = 1;
  const ingestLoad = (seconds: number) =>
    load({
      url: `${svc.url}/v1/alertmanager`,
      token: TOKEN,
      mode: 'unique',
      duration: seconds,
      connections: 10,
      prefix: prefix++,
    });
  await ingestLoad(1); // warm-up
  // Alone and scraped alternate, so that the load other processes put on the machine hits both alike.
  const idle: LoadResult[] = [];
  const scraped: LoadResult[] = [];
  const scrapes: LoadResult[] = [];
  for (let round = 1; round <= rounds; round++) {
    log(`scrape: round ${round}/${rounds}: ingest alone for ${duration} s, then while 20 connections scrape /metrics`);
    idle.push(await ingestLoad(duration));
    const [ingested, scraping] = await Promise.all([
      ingestLoad(duration),
      load({ url: `${svc.url}/metrics`, mode: 'scrape', duration, connections: 20 }),
    ]);
    scraped.push(ingested);
    scrapes.push(scraping);
  }
  await svc.stop();
  const p99 = (runs: LoadResult[]) => stats(runs.map((r) => r.latencyMs.p99)).p50;
  const rate = (runs: LoadResult[]) => stats(runs.map((r) => r.requestsPerSecond)).p50;
  const totalScrapes = scrapes.reduce((n, r) => n + r.totalRequests, 0);
  return {
    history,
    rounds,
    durationSeconds: duration,
    idle,
    scraped,
    scrapes,
    /** Medians over the rounds. */
    idleP99Ms: p99(idle),
    scrapedP99Ms: p99(scraped),
    idleRequestsPerSecond: rate(idle),
    scrapedRequestsPerSecond: rate(scraped),
    scrapesPerSecond: rate(scrapes),
    scrapeBytes: totalScrapes > 0 ? Math.round(scrapes.reduce((n, r) => n + r.responseBytes, 0) / totalScrapes) : 0,
    p99Ratio: p99(scraped) / p99(idle),
    p99RatioPerRound: scraped.map((r, k) => round(r.latencyMs.p99 / (idle[k] as LoadResult).latencyMs.p99)),
  };
}

// ----- report -----------------------------------------------------------------------------------------------------

// ----- phase 7: the same on PostgreSQL, one replica and three ---------------------------------------------------

type TimeToPage = Awaited<ReturnType<typeof timeToPage>>;
type Storm = Awaited<ReturnType<typeof storm>>;

/** Ingest, time to page and storm on each PostgreSQL setup, beside SQLite's (measured in this run). */
async function cluster(work: string, sqlite: { ingest?: LoadResult; timeToPage?: TimeToPage; storm?: Storm }) {
  const base = {
    ingest: sqlite.ingest ?? (await ingestOn(work, 'sqlite')),
    timeToPage: sqlite.timeToPage ?? (await timeToPage(work, 'sqlite')),
    storm: sqlite.storm ?? (await storm(work, 'sqlite')),
  };
  const on = async (setup: Setup) => ({
    ingest: await ingestOn(work, setup),
    timeToPage: await timeToPage(work, setup),
    storm: await storm(work, setup),
  });
  const one = await on('postgres-1');
  const three = await on('postgres-3');
  const p99 = (t: TimeToPage) => t.latencyMs.p99;
  return {
    sqlite: base,
    postgres1: one,
    postgres3: three,
    ratios: {
      ingestPostgres1: one.ingest.requestsPerSecond / base.ingest.requestsPerSecond,
      ingestPostgres3: three.ingest.requestsPerSecond / base.ingest.requestsPerSecond,
      timeToPageP99Postgres1: p99(one.timeToPage) / p99(base.timeToPage),
      timeToPageP99Postgres3: p99(three.timeToPage) / p99(base.timeToPage),
    },
  };
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'changepager-bench-'));
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGb: round(totalmem() / 1024 ** 3, 0),
    node: process.version,
    loadAverageAtStart: loadavg().map((l) => round(l, 2)),
    quick: QUICK,
  };
  log(`machine: ${JSON.stringify(machine)}`);
  const started = Date.now();
  const phase = async <T>(name: string, run: () => Promise<T> | T): Promise<T | undefined> =>
    !ONLY || ONLY.includes(name) ? run() : undefined;
  try {
    const at = new Date().toISOString();
    const ingested = await phase('ingest', () => ingest(work));
    const paged = await phase('timeToPage', () => timeToPage(work));
    const pagedInStorm = await phase('timeToPageStorm', () => timeToPage(work, 'sqlite', { storm: true }));
    const stormed = await phase('storm', () => storm(work));
    const result = {
      at,
      machine,
      ingest: ingested,
      timeToPage: paged,
      timeToPageStorm: pagedInStorm,
      storm: stormed,
      cluster: await phase('cluster', () =>
        cluster(work, {
          ...(ingested ? { ingest: ingested.changepager } : {}),
          ...(paged ? { timeToPage: paged } : {}),
          ...(stormed ? { storm: stormed } : {}),
        }),
      ),
      correlation: await phase('correlation', () => correlation(work)),
      tokenTiming: await phase('tokenTiming', tokenTiming),
      scrape: await phase('scrape', () => scrape(work)),
      profile: PROFILE ? await profileIngest(work) : undefined,
      loadAverageAtEnd: loadavg().map((l) => round(l, 2)),
      seconds: round((Date.now() - started) / 1000, 0),
    };
    const out = join(ROOT, 'bench/results');
    mkdirSync(out, { recursive: true });
    const file = join(out, `bench-${result.at.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`${table(result)}\nwritten to ${file}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function table(r: {
  machine: { cpu: string; cores: number; node: string; loadAverageAtStart: number[] };
  ingest?: Awaited<ReturnType<typeof ingest>> | undefined;
  timeToPage?: Awaited<ReturnType<typeof timeToPage>> | undefined;
  timeToPageStorm?: Awaited<ReturnType<typeof timeToPage>> | undefined;
  storm?: Awaited<ReturnType<typeof storm>> | undefined;
  correlation?: Awaited<ReturnType<typeof correlation>> | undefined;
  tokenTiming?: ReturnType<typeof tokenTiming> | undefined;
  scrape?: Awaited<ReturnType<typeof scrape>> | undefined;
  profile?: Awaited<ReturnType<typeof profileIngest>> | undefined;
  cluster?: Awaited<ReturnType<typeof cluster>> | undefined;
  loadAverageAtEnd: number[];
}): string {
  const { ingest: i, timeToPage: t, storm: s, correlation: c, tokenTiming: k, scrape: m, cluster: q } = r;
  const ok = (pass: boolean) => (pass ? 'met' : 'MISSED');
  const lat = (l: { p50: number; p99: number }) => `p50 ${round(l.p50)} ms, p99 ${round(l.p99)} ms`;
  const rows: [string, string, string][] = [];
  if (i) {
    rows.push(
      [
        'ingest: bare express 5 (parse only)',
        `${round(i.bare.requestsPerSecond, 0)} req/s; ${lat(i.bare.latencyMs)}`,
        '',
      ],
      [
        'ingest: changepager, new alert per request',
        `${round(i.changepager.requestsPerSecond, 0)} req/s; ${lat(i.changepager.latencyMs)}; non-2xx ${i.changepager.non2xx}`,
        '',
      ],
      [
        'ingest ratio changepager / bare',
        `${round(i.ratio, 3)}`,
        `≥ ${TARGETS.ingestRatio}: ${ok(i.ratio >= TARGETS.ingestRatio)}`,
      ],
      [
        'ingest: changepager, repeated notification',
        `${round(i.changepagerRepeats.requestsPerSecond, 0)} req/s; ${lat(i.changepagerRepeats.latencyMs)}; ratio ${round(i.ratioRepeats, 3)}`,
        `≥ ${TARGETS.repeatRatio}: ${ok(i.ratioRepeats >= TARGETS.repeatRatio)}`,
      ],
      [
        'ingest: CPU time of the service per request (bare / new alert / repeat)',
        `${round(i.cpuUsPerRequest.bare, 0)} µs / ${round(i.cpuUsPerRequest.unique, 0)} µs / ${round(i.cpuUsPerRequest.repeat, 0)} µs; ratios ${round(i.cpuUsPerRequest.bare / i.cpuUsPerRequest.unique, 3)} and ${round(i.cpuUsPerRequest.bare / i.cpuUsPerRequest.repeat, 3)}`,
        '',
      ],
    );
  }
  if (t) {
    rows.push([
      `time to page at ${t.rate} alerts/s (${t.alerts} alerts)`,
      `${lat(t.latencyMs)}, max ${round(t.latencyMs.max)} ms; paged ${t.paged}/${t.alerts}`,
      `p99 ≤ ${TARGETS.timeToPageP99Ms} ms: ${ok(t.latencyMs.p99 <= TARGETS.timeToPageP99Ms)}`,
    ]);
  }
  const ts = r.timeToPageStorm;
  if (ts?.storm) {
    rows.push([
      `time to page at ${ts.rate} alerts/s while a storm of ${ts.storm.alerts} alerts is ingested (${ts.storm.seconds} s)`,
      `${lat(ts.latencyMs)}, max ${round(ts.latencyMs.max)} ms; ${ts.paged} steady alerts sent during the storm`,
      `p99 ≤ ${TARGETS.timeToPageInStormP99Ms} ms: ${ok(ts.latencyMs.p99 <= TARGETS.timeToPageInStormP99Ms)}`,
    ]);
  }
  if (s) {
    rows.push([
      `storm: ${s.alerts} alerts in ${s.notifications} notifications`,
      `accepted ${s.accepted}, paged ${s.paged}, lost ${s.lost}, duplicate pages ${s.duplicatePages}; sent in ${s.sendSeconds} s, drained in ${s.drainSeconds} s; peak RSS ${s.peakRssMb} MB`,
      `lost = 0: ${ok(s.lost === 0 && s.accepted === s.alerts)}; drained ≤ ${TARGETS.stormDrainSeconds} s: ${ok(s.drainSeconds <= TARGETS.stormDrainSeconds)}; RSS ≤ ${TARGETS.stormPeakRssMb} MB: ${ok(s.peakRssMb <= TARGETS.stormPeakRssMb)}`,
    ]);
  }
  if (c) {
    rows.push(
      [
        `correlation, ${c.deploys.toLocaleString('en')} deploys stored (${c.databaseMb} MB)`,
        `per decision p50 ${round(c.perDecisionMs.p50, 3)} ms, p99 ${round(c.perDecisionMs.p99, 3)} ms (${c.decisions} decisions)`,
        `median ≤ ${TARGETS.correlationMedianMs} ms: ${ok(c.perDecisionMs.p50 <= TARGETS.correlationMedianMs)}`,
      ],
      ['correlation through POST /v1/preview (HTTP incl.)', lat(c.previewHttpMs), ''],
    );
  }
  if (k) {
    rows.push([
      'token check: wrong first vs wrong last char',
      `${k.nsPerCheck.wrongFirst} ns vs ${k.nsPerCheck.wrongLast} ns (difference ${k.wrongLastMinusWrongFirstNs} ns); right token ${k.nsPerCheck.right} ns`,
      '',
    ]);
  }
  if (m) {
    rows.push(
      [
        `ingest alone, ${m.history.episodes.toLocaleString('en')} episodes and ${m.history.services.toLocaleString('en')} services stored (median of ${m.rounds} rounds)`,
        `${round(m.idleRequestsPerSecond, 0)} req/s; p99 ${round(m.idleP99Ms)} ms`,
        '',
      ],
      [
        'ingest while 20 connections scrape /metrics',
        `${round(m.scrapedRequestsPerSecond, 0)} req/s; p99 ${round(m.scrapedP99Ms)} ms; ${round(m.scrapesPerSecond, 0)} scrapes/s of ${round(m.scrapeBytes / 1024, 0)} KiB`,
        '',
      ],
      [
        'ingest p99 ratio scraped / alone',
        `${round(m.p99Ratio, 2)} (rounds: ${m.p99RatioPerRound.join(', ')})`,
        `≤ ${TARGETS.scrapeP99Ratio}: ${ok(m.p99Ratio <= TARGETS.scrapeP99Ratio)}`,
      ],
    );
  }
  if (q) {
    const setups = [
      ['SQLite, one instance', q.sqlite],
      ['PostgreSQL, one replica', q.postgres1],
      ['PostgreSQL, three replicas', q.postgres3],
    ] as const;
    for (const [name, x] of setups) {
      rows.push(
        [
          `${name}: ingest, new alert per request`,
          `${round(x.ingest.requestsPerSecond, 0)} req/s; ${lat(x.ingest.latencyMs)}; non-2xx ${x.ingest.non2xx}`,
          '',
        ],
        [
          `${name}: time to page at ${x.timeToPage.rate}/s`,
          `${lat(x.timeToPage.latencyMs)}, max ${round(x.timeToPage.latencyMs.max)} ms; paged ${x.timeToPage.paged}/${x.timeToPage.alerts}; answered ${lat(x.timeToPage.answerMs)}`,
          '',
        ],
        [
          `${name}: storm of ${x.storm.alerts} alerts`,
          `accepted ${x.storm.accepted}, paged ${x.storm.paged}, lost ${x.storm.lost}, duplicate pages ${x.storm.duplicatePages}; drained in ${x.storm.drainSeconds} s`,
          `lost = 0: ${ok(x.storm.lost === 0 && x.storm.accepted === x.storm.alerts)}`,
        ],
      );
    }
    rows.push(
      ['ingest ratio PostgreSQL, one replica / SQLite', `${round(q.ratios.ingestPostgres1, 2)}`, ''],
      [
        'ingest ratio PostgreSQL, three replicas / SQLite',
        `${round(q.ratios.ingestPostgres3, 2)}`,
        `≥ ${TARGETS.clusterIngestRatio}: ${ok(q.ratios.ingestPostgres3 >= TARGETS.clusterIngestRatio)}`,
      ],
      [
        'time to page p99 ratio PostgreSQL, one replica / SQLite',
        `${round(q.ratios.timeToPageP99Postgres1, 2)}`,
        `≤ ${TARGETS.postgresTimeToPageRatio}: ${ok(q.ratios.timeToPageP99Postgres1 <= TARGETS.postgresTimeToPageRatio)}`,
      ],
      [
        'time to page p99 ratio PostgreSQL, three replicas / SQLite',
        `${round(q.ratios.timeToPageP99Postgres3, 2)}`,
        `≤ ${TARGETS.postgresTimeToPageRatio}: ${ok(q.ratios.timeToPageP99Postgres3 <= TARGETS.postgresTimeToPageRatio)}`,
      ],
    );
  }
  const lines = [
    `changepager bench — ${r.machine.cores} × ${r.machine.cpu}, Node ${r.machine.node}, load average ${r.machine.loadAverageAtStart.join(' ')} at start, ${r.loadAverageAtEnd.join(' ')} at end`,
    '',
    '| measure | result | target |',
    '| --- | --- | --- |',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ];
  for (const p of r.profile ?? []) {
    lines.push('', `CPU profile of the ingest phase, ${p.thread} (self time, ${p.totalMs} ms sampled):`, '');
    lines.push('| function | self ms | % |', '| --- | --- | --- |');
    for (const f of p.top) lines.push(`| ${f.name} | ${f.selfMs} | ${f.percent} |`);
    lines.push('', '| where | self ms | % |', '| --- | --- | --- |');
    for (const f of p.areas) lines.push(`| ${f.name} | ${f.selfMs} | ${f.percent} |`);
  }
  return lines.join('\n');
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
