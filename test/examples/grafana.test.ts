import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { BUILT_IN_COMPARISONS } from '../../src/core/comparisons.js';
import { COMPARE_LEAD_MS, compareLink } from '../../src/core/links.js';
import type { Deploy } from '../../src/core/types.js';
import { createPrometheusClient } from '../../src/evidence/prometheus.js';
import { type Prometheus, prometheusInstalled, startPrometheus, trafficOpenMetrics } from '../support/prometheus.js';
import { readExample } from './support.js';

// examples/grafana: a dashboard of the built-in comparisons, old version beside new, and the compare_url that
// opens it for a deploy. The URL's var- names must be the dashboard's variables, the panels must be the
// built-in comparisons, and the URL filled for a deploy must make the panels show that deploy's two versions.

interface Target {
  refId: string;
  expr: string;
  legendFormat?: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
  definition?: string;
  datasource?: { type: string; uid: string };
}
interface Dashboard {
  id: null;
  uid: string;
  title: string;
  schemaVersion: number;
  time: { from: string; to: string };
  templating: { list: Variable[] };
  panels: Panel[];
}

const dashboard = JSON.parse(readExample('grafana/changepager-compare.json')) as Dashboard;
const configYaml = readExample('grafana/changepager.yaml');
const compareUrl = (parseConfig(configYaml, { path: 'changepager.yaml', env: {} }).defaults.compareUrl ?? '') as string;
const variables = dashboard.templating.list;
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own variable syntax, not a template literal
const PICKED = { type: 'prometheus', uid: '${datasource}' };
const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, target: t })));

describe('examples/grafana/changepager-compare.json', () => {
  it('is a dashboard Grafana imports: a uid, a title, a schema version, no id', () => {
    expect(dashboard.id).toBeNull();
    expect(dashboard.uid).toMatch(/^[A-Za-z0-9_-]{8,40}$/);
    expect(dashboard.title).not.toBe('');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
  });

  it('lays out its panels on the 24-column grid without overlaps, each with its own id', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const { gridPos: g, title } of dashboard.panels) {
      expect(g.x + g.w, title).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`), `${title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
    }
  });

  it('asks the Prometheus data source the user picks, with queries that name their series', () => {
    expect(variables.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const { panel, target } of queries) {
      expect(target.datasource, panel.title).toEqual(PICKED);
      expect(target.refId, panel.title).toMatch(/^[A-Z]$/);
    }
    for (const v of variables.filter((v) => v.type === 'query')) {
      expect(v.datasource, v.name).toEqual(PICKED);
    }
  });

  it('uses only variables it defines', () => {
    const defined = new Set(variables.map((v) => v.name));
    const texts = [
      ...queries.map((q) => q.target.expr),
      ...queries.map((q) => q.target.legendFormat ?? ''),
      ...variables.map((v) => (typeof v.query === 'string' ? v.query : v.query.query)),
    ];
    const used = new Set(texts.flatMap((t) => [...t.matchAll(/\$\{?(\w+)/g)].map((m) => m[1] ?? '')));
    expect([...used].filter((name) => !defined.has(name))).toEqual([]);
  });

  it.each(BUILT_IN_COMPARISONS.map((c) => [c.name, c] as const))(
    'shows the built-in comparison %s, the new version beside the old one',
    (_name, comparison) => {
      const asGrafana = (version: string) =>
        comparison.query
          .replaceAll('{service}', '$service')
          .replaceAll('{environment}', '$environment')
          .replaceAll('{version}', version);
      const squash = (s: string) => s.replace(/\s+/g, ' ').trim();
      const panels = dashboard.panels.filter((p) => p.title.startsWith(comparison.name) && p.targets);
      expect(panels.length).toBeGreaterThan(0);
      for (const panel of panels) {
        const exprs = (panel.targets ?? []).map((t) => squash(t.expr));
        expect(exprs, panel.title).toEqual([squash(asGrafana('$new')), squash(asGrafana('$old'))]);
      }
    },
  );

  it('its queries are PromQL once Grafana has put the values in', () => {
    for (const { target } of queries) {
      const filled = target.expr.replace(/\$(\w+)/g, 'x');
      let broken = false;
      parser.parse(filled).iterate({
        enter(node) {
          if (node.type.isError) broken = true;
        },
      });
      expect(broken, target.expr).toBe(false);
    }
  });
});

describe('examples/grafana/changepager.yaml: the compare_url', () => {
  const url = new URL(compareUrl.replace(/[{}]/g, ''));

  it('is accepted as defaults.compare_url', () => {
    expect(compareUrl).toMatch(/^https:\/\/grafana\.example\.com\/d\/changepager-compare\//);
  });

  it('opens the dashboard by its uid', () => {
    expect(url.pathname.split('/')[2]).toBe(dashboard.uid);
  });

  it("sets exactly the dashboard's variables (the data source keeps Grafana's default)", () => {
    const set = [...new URL(compareUrl).searchParams.keys()].filter((k) => k.startsWith('var-')).map((k) => k.slice(4));
    const offered = variables.filter((v) => v.type !== 'datasource').map((v) => v.name);
    expect(set.sort()).toEqual(offered.sort());
  });

  it('fills each variable with the deploy’s value and the time range from before the deploy to now', () => {
    const deploy: Deploy = {
      id: 'd1',
      service: 'checkout',
      environment: 'production',
      version: '2026.11.26-3f2a9c1',
      previousVersion: '2026.11.25-77b0e12',
      stage: 'canary',
      hosts: [],
      at: Date.parse('2026-11-26T11:02:00Z'),
      receivedAt: Date.parse('2026-11-26T11:02:00Z'),
      changes: [],
    };
    const now = Date.parse('2026-11-26T11:09:00Z');
    const params = new URL(compareLink(compareUrl, deploy, now)).searchParams;
    expect(Object.fromEntries(params)).toEqual({
      'var-service': 'checkout',
      'var-environment': 'production',
      'var-old': '2026.11.25-77b0e12',
      'var-new': '2026.11.26-3f2a9c1',
      from: String(deploy.at - COMPARE_LEAD_MS),
      to: String(now),
    });
  });
});

const installed = prometheusInstalled();

describe.skipIf(!installed)('the dashboard opened by the compare_url, against a real Prometheus', () => {
  const MIN = 60_000;
  const epoch = Math.floor(Date.now() / (60 * MIN)) * 60 * MIN - 2 * 60 * MIN;
  let dir: string;
  let prometheus: Prometheus;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'changepager-grafana-'));
    const base = { service: 'checkout', environment: 'production', rps: 10, errorRatio: 0.01, latency: 0.1 };
    prometheus = await startPrometheus({
      dir,
      openMetrics: trafficOpenMetrics(
        [
          { ...base, version: 'v1', instances: ['c-1', 'c-2'], from: -30, to: 20 },
          { ...base, version: 'v2', instances: ['c-3'], from: 0, to: 20, errorRatio: 0.05 },
        ],
        epoch,
      ),
    });
  }, 60_000);
  afterAll(async () => {
    await prometheus?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every panel query finds its version’s series in the linked time range', async () => {
    const deploy = { service: 'checkout', environment: 'production', version: 'v2', previousVersion: 'v1' };
    const link = new URL(
      compareLink(
        compareUrl,
        { ...deploy, id: 'd', stage: 'canary', hosts: [], at: epoch, receivedAt: epoch, changes: [] },
        epoch + 15 * MIN,
      ),
    );
    const value = (name: string) => link.searchParams.get(`var-${name}`) ?? '';
    const client = createPrometheusClient({ url: prometheus.url, requestTimeoutMs: 10_000 });
    for (const { panel, target } of queries) {
      const query = target.expr.replace(/\$(\w+)/g, (_m, name: string) => value(name));
      const result = await client.queryRange({
        query,
        start: Number(link.searchParams.get('from')),
        end: Number(link.searchParams.get('to')),
        stepMs: 30_000,
      });
      expect(result.ok, `${panel.title} ${target.refId}: ${result.ok ? '' : result.reason}`).toBe(true);
      if (result.ok)
        expect(result.series.flatMap((s) => s.points).length, `${panel.title} ${target.refId}`).toBeGreaterThan(10);
    }
  });
});
