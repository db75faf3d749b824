import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Express } from 'express';
import request from 'supertest';
import { type Composed, compose } from '../../src/compose.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';

export const TOKEN = 'test-token-0123456789abcdef';

/** A settable clock: tests move time instead of waiting for it. */
export function fakeClock(iso: string) {
  let t = Date.parse(iso);
  return {
    now: () => t,
    set(next: string) {
      t = Date.parse(next);
    },
    advance(ms: number) {
      t += ms;
    },
  };
}

export interface Harness extends Composed {
  dir: string;
  dbPath: string;
  logs: string[];
  close(): Promise<void>;
}

/**
 * The whole service in-process on a real SQLite file in a fresh temp directory, with the YAML given (merged
 * over nothing: it is the whole config file) and CHANGEPAGER_TOKEN set to TOKEN unless env says otherwise.
 */
export function createHarness(
  opts: { yaml?: string; env?: Record<string, string | undefined>; now?: () => number; dir?: string } = {},
): Harness {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'changepager-test-'));
  const dbPath = join(dir, 'changepager.db');
  const yaml = `database: { path: ${JSON.stringify(dbPath)} }\n${opts.yaml ?? ''}`;
  const config = parseConfig(yaml, { path: 'test.yaml', env: { CHANGEPAGER_TOKEN: TOKEN, ...opts.env } });
  const logs: string[] = [];
  const log = createLogger('debug', { write: (line: string) => logs.push(line) });
  const composed = compose({
    config,
    log,
    ...(opts.now ? { now: opts.now } : {}),
  });
  return {
    ...composed,
    dir,
    dbPath,
    logs,
    async close() {
      await composed.worker.stop();
      await composed.metrics.stop();
      await composed.store.close();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A captured Alertmanager 0.25 request body from test/fixtures. */
export function fixture(name: string): Record<string, unknown> {
  const captured = JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8'));
  return captured.body;
}

/** The deploy event of the API docs (docs/api.md), with overrides. */
export function designDeploy(overrides: Record<string, unknown> = {}) {
  return {
    id: 'gha-run-8812731',
    service: 'checkout',
    environment: 'production',
    version: '2026.11.26-3f2a9c1',
    previousVersion: '2026.11.25-77b0e12',
    stage: 'full',
    at: '2026-11-26T11:02:00Z',
    changes: [
      {
        author: { email: 'alice@example.com', login: 'alice', name: 'Alice' },
        mergedBy: { email: 'bob@example.com', login: 'bob' },
        commit: { sha: '3f2a9c1e', url: 'https://git.example.com/shop/commit/3f2a9c1e', message: 'Cache cart totals' },
        pullRequest: { number: 4812, url: 'https://git.example.com/shop/pull/4812', title: 'Cache cart totals' },
      },
    ],
    ...overrides,
  };
}

/** An Alertmanager v4 notification with one alert per entry. */
export function amPayload(
  alerts: {
    fingerprint: string;
    startsAt: string;
    status?: 'firing' | 'resolved';
    endsAt?: string;
    labels?: Record<string, string>;
  }[],
  groupKey = '{}:{alertname="HighErrorRate"}',
) {
  const firing = alerts.some((a) => (a.status ?? 'firing') === 'firing');
  return {
    receiver: 'changepager',
    status: firing ? 'firing' : 'resolved',
    alerts: alerts.map((a) => ({
      status: a.status ?? 'firing',
      labels: {
        alertname: 'HighErrorRate',
        service: 'checkout',
        env: 'production',
        instance: 'checkout-7f9c-abcde:8080',
        ...a.labels,
      },
      annotations: { summary: 'Checkout error rate above 5%', runbook_url: 'https://runbooks.example/checkout' },
      startsAt: a.startsAt,
      endsAt: a.endsAt ?? '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus.local/graph?g0.expr=rate',
      fingerprint: a.fingerprint,
    })),
    groupLabels: { alertname: 'HighErrorRate' },
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://am.example:9093',
    version: '4',
    groupKey,
    truncatedAlerts: 0,
  };
}

/** post/get against an app with the test token: the client every HTTP test file wants. */
export function apiClient(app: () => Express) {
  const auth = { Authorization: `Bearer ${TOKEN}` };
  return {
    post: (path: string, body: unknown) =>
      request(app())
        .post(path)
        .set(auth)
        .send(body as object),
    get: (path: string) => request(app()).get(path).set(auth),
  };
}
