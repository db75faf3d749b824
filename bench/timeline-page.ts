// `npx tsx bench/timeline-page.ts`: what big deploys cost the timeline page. Stores ten deploys of about 1.8 MB
// each (thousands of changes, as a monorepo release sends) and an alert attributed to each, then asks for the
// page and for GET /v1/timeline: bytes, server time per view, and how long five views at once hold the event
// loop (while it is held, no alert can be accepted). The service runs in this process, listening on loopback.
//
//   BENCH_DEPLOYS=n        deploys stored (default 10)
//   BENCH_DEPLOY_BYTES=n   JSON size of each (default 1,800,000)

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { startService } from '../src/main.js';
import { amPayload } from '../test/support/harness.js';

const DEPLOYS = Number(process.env.BENCH_DEPLOYS ?? 10);
const DEPLOY_BYTES = Number(process.env.BENCH_DEPLOY_BYTES ?? 1_800_000);
const TOKEN = 'bench-token-timeline-0123456789abcdef';
const NOW = Date.parse('2026-11-26T12:00:00Z');

/** A deploy whose JSON is about `bytes` long: one change after another until it is. */
export function bigDeploy(i: number, bytes: number) {
  const changes: unknown[] = [];
  let size = 0;
  for (let n = 0; size < bytes; n++) {
    const sha = `${i.toString(16).padStart(2, '0')}${n.toString(16).padStart(6, '0')}`.padEnd(40, 'a');
    const change = {
      author: { email: 'alice@example.com', login: 'alice', name: 'Alice' },
      mergedBy: { email: 'bob@example.com', login: 'bob' },
      commit: {
        sha,
        url: `https://git.example.com/shop/commit/${sha}`,
        message: `Change ${n} of release ${i}: ${'adjust the cart totals cache and its invalidation '.repeat(8)}`,
      },
      pullRequest: { number: 10_000 + n, url: `https://git.example.com/shop/pull/${10_000 + n}`, title: `PR ${n}` },
    };
    size += JSON.stringify(change).length + 1;
    changes.push(change);
  }
  return {
    id: `release-${i}`,
    service: 'checkout',
    version: `2026.11.26-${String(i).padStart(7, '0')}`,
    at: new Date(NOW - (DEPLOYS - i) * 20 * 60_000).toISOString(),
    changes,
  };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'changepager-bench-timeline-'));
  const yaml = `database: { path: ${JSON.stringify(join(dir, 'db.sqlite'))} }\nlisten: { host: 127.0.0.1, port: 0 }\n`;
  const config = parseConfig(yaml, { path: 'bench.yaml', env: { CHANGEPAGER_TOKEN: TOKEN } });
  const service = await startService({ config, log: createLogger('silent'), now: () => NOW });
  const auth = { Authorization: `Bearer ${TOKEN}` };
  try {
    for (let i = 0; i < DEPLOYS; i++) {
      const body = JSON.stringify(bigDeploy(i, DEPLOY_BYTES));
      const res = await fetch(`${service.url}/v1/deploys`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body,
      });
      if (res.status !== 201) throw new Error(`deploy ${i}: ${res.status} ${await res.text()}`);
      const startsAt = new Date(NOW - (DEPLOYS - i) * 20 * 60_000 + 5 * 60_000).toISOString();
      const alert = amPayload([{ fingerprint: `beef${String(i).padStart(12, '0')}`, startsAt }], `{}:{n="${i}"}`);
      const am = await fetch(`${service.url}/v1/alertmanager`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify(alert),
      });
      if (am.status !== 200) throw new Error(`alert ${i}: ${am.status} ${await am.text()}`);
    }

    const view = async (path: string) => {
      const started = performance.now();
      const res = await fetch(`${service.url}${path}`, { headers: auth });
      const bytes = (await res.arrayBuffer()).byteLength;
      if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
      return { bytes, ms: performance.now() - started };
    };
    const report: Record<string, unknown> = { deploys: DEPLOYS, deployBytes: DEPLOY_BYTES };
    for (const [name, path] of [
      ['page (default range)', '/'],
      ['page (last 24 hours)', '/?range=PT24H'],
      ['GET /v1/timeline (last 24 hours)', '/v1/timeline?range=PT24H'],
    ] as const) {
      await view(path); // warm
      const runs = [];
      for (let k = 0; k < 5; k++) runs.push(await view(path));
      const ms = runs.map((r) => r.ms).sort((a, b) => a - b);
      report[name] = { bytes: runs[0]?.bytes, medianMs: Math.round(ms[2] as number) };
    }
    // Five people open the page at once: how long is the event loop held (nothing else is served meanwhile)?
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const started = performance.now();
    await Promise.all(Array.from({ length: 5 }, () => view('/?range=PT24H')));
    delay.disable();
    report['five views at once'] = {
      totalMs: Math.round(performance.now() - started),
      longestEventLoopBlockMs: Math.round(delay.max / 1e6),
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await service.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
