import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors.js';
import { decisionSchema } from '../../src/http/api-schemas.js';
import { createHttpServer } from '../../src/http/server.js';
import { createMetrics } from '../../src/metrics.js';
import { openSqliteStore } from '../../src/store/sqlite/store.js';
import { ROOT } from './markdown.js';

// The reference tables of docs/ are checked against the registries they describe: every error code with its
// status (src/errors.ts), every reason code of a decision, every metric the service exports.

const page = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** The first two cells of each table row whose first cell is one name in backticks. */
function rows(file: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of page(file).matchAll(/^\| `([^`]+)` +\| ([^|]*)\|/gm)) out.set(m[1] ?? '', (m[2] ?? '').trim());
  return out;
}

describe('docs/api.md', () => {
  it('has a row for every error code, with its status', () => {
    const documented = rows('docs/api.md');
    const wrong = Object.entries(ERRORS)
      .filter(([code, { status }]) => documented.get(code) !== String(status))
      .map(([code, { status }]) => `${code} ${status}: documented ${documented.get(code) ?? 'nowhere'}`);
    expect(wrong).toEqual([]);
  });
});

describe('docs/semantics.md', () => {
  it('has a row for every reason code', () => {
    const documented = rows('docs/semantics.md');
    expect(decisionSchema.shape.reason.options.filter((r) => !documented.has(r))).toEqual([]);
  });
});

describe('docs/operations.md', () => {
  const store = openSqliteStore(':memory:');
  afterAll(() => store.close());

  it('lists every metric the service exports', async () => {
    const metrics = createMetrics(store, Date.now);
    // The connection gauge is registered by the HTTP server, on the same registry.
    const http = createHttpServer(() => undefined, {
      http: {
        maxConnections: 1,
        headersTimeoutMs: 1000,
        requestTimeoutMs: 1000,
        keepAliveTimeoutMs: 1000,
        socketTimeoutMs: 1000,
      },
      metrics,
      log: pino({ level: 'silent' }),
      now: Date.now,
    });
    await http.close();
    const names = metrics.registry.getMetricsAsArray().map((m) => m.name);
    expect(names.length).toBeGreaterThan(15);
    const documented = rows('docs/operations.md');
    expect(names.filter((n) => !documented.has(n))).toEqual([]);
  });
});
