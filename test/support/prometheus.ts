import { execFile } from 'node:child_process';
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { errorFunction } from 'simple-statistics';
import { freePort } from './alertmanager.js';
import { startDaemon } from './daemon.js';

// A real Prometheus (Debian's prometheus 2.42) on loopback with data written by the test: deterministic series
// as OpenMetrics, turned into TSDB blocks by `promtool tsdb create-blocks-from openmetrics`, served by a
// Prometheus that scrapes nothing. Plus the generator of those series: HTTP services with a request counter
// (status label) and a duration histogram per instance, whose error ratio and latency the test sets.

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';
export const PROMTOOL_BIN = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool';

const run = promisify(execFile);

export interface Prometheus {
  url: string;
  output: () => string;
  stop(): Promise<void>;
}

/** Backfills `openMetrics` into a fresh data directory under `dir` and starts Prometheus on it; resolves when ready. */
export async function startPrometheus(o: { dir: string; openMetrics: string }): Promise<Prometheus> {
  const data = join(o.dir, 'data');
  mkdirSync(data, { recursive: true });
  const input = join(o.dir, 'series.om.txt');
  writeFileSync(input, o.openMetrics);
  await run(PROMTOOL_BIN, ['tsdb', 'create-blocks-from', 'openmetrics', input, data]);
  const configFile = join(o.dir, 'prometheus.yml');
  writeFileSync(configFile, 'global:\n  scrape_interval: 15s\nscrape_configs: []\n');

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const daemon = await startDaemon(
    'prometheus',
    PROMETHEUS_BIN,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${data}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // The backfilled blocks are hours old: no retention may delete them.
      '--storage.tsdb.retention.time=100y',
      '--log.level=warn',
    ],
    { readyUrl: `${url}/-/ready`, readyWithinMs: 30_000 },
  );
  return { url, ...daemon };
}

export interface HangingServer {
  url: string;
  /** Connections accepted so far, and how many of them the client has closed since. */
  accepted: () => number;
  closedByClient: () => number;
  close(): Promise<void>;
}

/** Accepts connections and reads what is sent, and never answers: a Prometheus stuck in a long query. */
export async function startHangingServer(): Promise<HangingServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  let closedByClient = 0;
  let closing = false;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.resume();
    socket.on('close', () => {
      sockets.delete(socket);
      if (!closing) closedByClient++;
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    accepted: () => accepted,
    closedByClient: () => closedByClient,
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A value that is constant, or steps: [[minute, value], …], each from its minute on (the first from the start). */
export type Level = number | readonly (readonly [number, number])[];

/** Requests served by some instances of one version of a service, from one minute to another. */
export interface Traffic {
  service: string;
  environment: string;
  /** Absent: the series carry no version label (services whose canaries are told apart by host). */
  version?: string;
  instances: readonly string[];
  /** Minutes from the epoch: when these instances start and stop serving. */
  from: number;
  to: number;
  /** Requests per second, per instance. */
  rps: Level;
  errorRatio: Level;
  /** Median request duration, seconds. */
  latency: Level;
}

/** The spacing of samples: a 15 s scrape interval. */
export const SAMPLE_MS = 15_000;
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** The spread of request durations around their median (lognormal σ). */
const SIGMA = 0.6;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  t: number;
}

/**
 * OpenMetrics text for these workloads: `http_requests_total{service, environment, version, instance, pod,
 * status}` and `http_request_duration_seconds` (a histogram), one sample per 15 s. The noise is a fixed
 * pseudo-random sequence per series (seeded by its labels), so the same workload always gives the same series.
 */
export function trafficOpenMetrics(traffic: readonly Traffic[], epochMs: number): string {
  const counters: Sample[][] = [];
  const histograms: Sample[][] = [];
  for (const w of traffic) {
    for (const host of w.instances) {
      const labels: Record<string, string> = {
        service: w.service,
        environment: w.environment,
        ...(w.version === undefined ? {} : { version: w.version }),
        instance: `${host}:8080`,
        pod: host,
      };
      const noise = random(JSON.stringify(labels));
      const ok: Sample[] = [];
      const failed: Sample[] = [];
      const hist: Sample[] = [];
      let okCount = 0;
      let failedCount = 0;
      let count = 0;
      let sum = 0;
      const cumulative = BUCKETS.map(() => 0);
      for (let t = epochMs + w.from * 60_000; t < epochMs + w.to * 60_000; t += SAMPLE_MS) {
        const minute = (t - epochMs) / 60_000;
        const requests = Math.max(0, level(w.rps, minute) * (SAMPLE_MS / 1000) * (1 + 0.2 * (noise() - 0.5)));
        const ratio = Math.min(1, Math.max(0, level(w.errorRatio, minute) * (1 + 0.6 * (noise() - 0.5))));
        const median = level(w.latency, minute) * (1 + 0.2 * (noise() - 0.5));
        failedCount += requests * ratio;
        okCount += requests * (1 - ratio);
        count += requests;
        sum += requests * median * Math.exp((SIGMA * SIGMA) / 2);
        BUCKETS.forEach((le, i) => {
          cumulative[i] = (cumulative[i] ?? 0) + requests * normalCdf(Math.log(le / median) / SIGMA);
        });
        ok.push({ name: 'http_requests_total', labels: { ...labels, status: '200' }, value: okCount, t });
        failed.push({ name: 'http_requests_total', labels: { ...labels, status: '500' }, value: failedCount, t });
        BUCKETS.forEach((le, i) => {
          const name = 'http_request_duration_seconds_bucket';
          hist.push({ name, labels: { ...labels, le: String(le) }, value: cumulative[i] ?? 0, t });
        });
        hist.push({ name: 'http_request_duration_seconds_bucket', labels: { ...labels, le: '+Inf' }, value: count, t });
        hist.push({ name: 'http_request_duration_seconds_count', labels, value: count, t });
        hist.push({ name: 'http_request_duration_seconds_sum', labels, value: sum, t });
      }
      counters.push(ok, failed);
      histograms.push(hist);
    }
  }
  return [
    '# TYPE http_requests counter',
    ...counters.flat().map(line),
    '# TYPE http_request_duration_seconds histogram',
    ...histograms.flat().map(line),
    '# EOF',
    '',
  ].join('\n');
}

function level(l: Level, minute: number): number {
  if (typeof l === 'number') return l;
  let value = l[0]?.[1] ?? 0;
  for (const [from, v] of l) if (minute >= from) value = v;
  return value;
}

function line(s: Sample): string {
  const labels = Object.entries(s.labels)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
  return `${s.name}{${labels}} ${s.value} ${s.t / 1000}`;
}

function normalCdf(z: number): number {
  return 0.5 * (1 + errorFunction(z / Math.SQRT2));
}

/** A deterministic sequence in [0, 1) seeded by a string (mulberry32). */
function random(seed: string): () => number {
  let a = 0;
  for (const c of seed) a = (Math.imul(a, 31) + c.charCodeAt(0)) | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Whether the binaries are here; on CI (CI=true) they must be, as .ci/run installs them. */
export function prometheusInstalled(): boolean {
  const found = [PROMETHEUS_BIN, PROMTOOL_BIN].every((bin) => {
    try {
      accessSync(bin, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!found && process.env.CI)
    throw new Error(`${PROMETHEUS_BIN} or ${PROMTOOL_BIN} is missing: .ci/run installs them`);
  return found;
}
