import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { AlertWrite } from '../../src/core/plan.js';
import { createLogger } from '../../src/log.js';
import { type Service, startService } from '../../src/main.js';
import { amPayload, createHarness, designDeploy, fakeClock, type Harness, TOKEN } from '../support/harness.js';
import { eventually } from '../support/wait.js';

// GET /metrics never reads the database: the hygiene and outbox gauges are computed by a refresh (a timer in
// the service), a page of rows at a time, and a scrape shows the last result. Per-service series are bounded,
// and /metrics can be put behind a token of its own.

const auth = { Authorization: `Bearer ${TOKEN}` };
const METRICS_TOKEN = 'metrics-token-5e4d3c2b1a09f8e7';

/** The value of one sample in Prometheus text, or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('GET /metrics', () => {
  let h: Harness | undefined;
  let service: Service | undefined;
  let dir: string | undefined;
  const clock = fakeClock('2026-11-26T12:00:00Z');

  afterEach(async () => {
    await h?.close();
    await service?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    h = undefined;
    service = undefined;
    dir = undefined;
  });

  const scrape = async (harness: Harness) => (await request(harness.app).get('/metrics')).text;

  let fingerprints = 0;
  /** `count` new alerts of `service` in one notification, decided and stored. */
  async function alertsOf(harness: Harness, service: string, count: number) {
    const alerts = Array.from({ length: count }, () => ({
      fingerprint: `f${(fingerprints++).toString(16).padStart(15, '0')}`,
      startsAt: '2026-11-26T11:00:00Z',
      labels: { service },
    }));
    const res = await request(harness.app).post('/v1/alertmanager').set(auth).send(amPayload(alerts));
    expect(res.status).toBe(200);
  }

  it('answers a scrape from the last refresh, without reading the database', async () => {
    h = createHarness({ now: clock.now });
    await alertsOf(h, 'checkout', 3);
    // Stored, but not refreshed yet: the scrape shows nothing of it, and queued deliveries are not counted.
    let text = await scrape(h);
    expect(sample(text, 'changepager_hygiene_deploys{service="checkout"}')).toBeUndefined();
    expect(sample(text, 'changepager_outbox_depth')).toBe(0);
    expect(sample(text, 'changepager_metrics_refreshed_timestamp_seconds')).toBe(0); // never

    await h.metrics.refresh();
    text = await scrape(h);
    expect(sample(text, 'changepager_hygiene_attributed_alerts{service="checkout"}')).toBe(0);
    expect(sample(text, 'changepager_outbox_depth')).toBe(1);
    expect(sample(text, 'changepager_metrics_refreshed_timestamp_seconds')).toBe(clock.now() / 1000);
  });

  it('keeps series for the configured services and the busiest top_services; the rest sum up as "other"', async () => {
    h = createHarness({
      now: clock.now,
      yaml: 'services: { quiet: {} }\nmetrics: { top_services: 2 }\n',
    });
    await request(h.app)
      .post('/v1/deploys')
      .set(auth)
      .send(designDeploy({ id: 'q1', service: 'quiet', at: '2026-11-26T10:00:00Z' }));
    const volumes: [string, number][] = [
      ['busy', 5],
      ['busier', 6],
      ['small-1', 1],
      ['small-2', 2],
      ['small-3', 1],
    ];
    for (const [service, count] of volumes) await alertsOf(h, service, count);
    await h.metrics.refresh();
    const text = await scrape(h);
    const services = [...text.matchAll(/^changepager_hygiene_deploys\{service="([^"]+)"\}/gm)].map((m) => m[1]);
    expect(services.sort()).toEqual(['busier', 'busy', 'other', 'quiet']);
    // "other" is the sum of the three small services: 4 alerts, none attributed.
    expect(sample(text, 'changepager_hygiene_attributed_alerts{service="other"}')).toBe(0);
    expect(sample(text, 'changepager_hygiene_deploys{service="quiet"}')).toBe(1);
    const stats = await request(h.app).get('/v1/stats?since=P1D').set(auth);
    // The API is not folded: every service, by name.
    expect(stats.body.services.map((s: { service: string }) => s.service)).toEqual([
      'busier',
      'busy',
      'quiet',
      'small-1',
      'small-2',
      'small-3',
    ]);
  });

  it('computes a week of thousands of episodes in pages, with turns of the event loop between them', async () => {
    h = createHarness({ now: clock.now });
    const writes: AlertWrite[] = Array.from({ length: 6000 }, (_, i) => ({
      alert: {
        fingerprint: `e${i.toString(16).padStart(15, '0')}`,
        startsAt: '2026-11-25T10:00:00.000Z',
        startsAtMs: Date.parse('2026-11-25T10:00:00Z'),
        endsAtMs: Date.parse('2026-11-25T10:05:00Z'),
        status: 'resolved',
        labels: { service: `svc-${i % 50}` },
        annotations: {},
        generatorURL: '',
      },
      decision: {
        reason: 'no_deploy_in_window',
        sentence: 'seeded',
        service: `svc-${i % 50}`,
        environment: 'production',
        policy: 'author',
        suspects: [],
        targets: [{ kind: 'oncall' }],
        responders: [],
        notify: [],
        wouldPage: [],
      },
    }));
    const group = { groupKey: 'g', receiver: 'r', externalURL: '', truncatedAlerts: 0 };
    await h.store.recordAlerts(group, writes, clock.now());

    let turns = 0;
    let done = false;
    const tick = () => {
      turns++;
      if (!done) setImmediate(tick);
    };
    setImmediate(tick);
    await h.metrics.refresh();
    done = true;
    // 6000 episodes are three pages of 2000 rows at least: the loop turned between them.
    expect(turns).toBeGreaterThanOrEqual(3);
    const text = await scrape(h);
    expect(sample(text, 'changepager_hygiene_attributed_alerts{service="svc-0"}')).toBe(0);
  });

  it('renders once for scrapes that arrive together, and each gets the numbers of that moment', async () => {
    h = createHarness({ now: clock.now });
    const render = vi.spyOn(h.metrics.registry, 'metrics');
    const scrapes = await Promise.all(Array.from({ length: 10 }, () => h?.metrics.render()));
    expect(render).toHaveBeenCalledTimes(1);
    expect(new Set(scrapes).size).toBe(1);
    await alertsOf(h, 'checkout', 1);
    // A later scrape is rendered anew: it counts the alert received since.
    expect(await h.metrics.render()).toContain('changepager_alerts_received_total{result="new"} 1');
    expect(render).toHaveBeenCalledTimes(2);
  });

  it('with metrics.token_env set, answers 401 without that token, even with an API token', async () => {
    h = createHarness({
      now: clock.now,
      yaml: 'metrics: { token_env: METRICS_TOKEN }\n',
      env: { METRICS_TOKEN },
    });
    const app = h.app;
    const get = (authorization?: string) => {
      const req = request(app).get('/metrics');
      return authorization === undefined ? req : req.set('Authorization', authorization);
    };
    for (const header of [undefined, 'Bearer wrong', `Bearer ${TOKEN}`, METRICS_TOKEN]) {
      const res = await get(header);
      expect(res.status, String(header)).toBe(401);
      expect(res.body.error).toBe('unauthorized');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(res.text).not.toContain(METRICS_TOKEN);
    }
    const ok = await get(`Bearer ${METRICS_TOKEN}`);
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('changepager_outbox_depth');
    // The probes stay open.
    expect((await request(app).get('/healthz')).status).toBe(200);
    expect((await request(app).get('/readyz')).status).toBe(200);
  });

  it('the running service refreshes the gauges on its own, every refresh_interval', async () => {
    dir = mkdtempSync(join(tmpdir(), 'changepager-metrics-'));
    const yaml = `database: { path: ${JSON.stringify(join(dir, 'db.sqlite'))} }\nlisten: { port: 0 }\nmetrics: { refresh_interval: PT1S }\n`;
    const config = parseConfig(yaml, { path: 'metrics-test.yaml', env: { CHANGEPAGER_TOKEN: TOKEN } });
    service = await startService({ config, log: createLogger('silent') });
    const url = service.url;
    await fetch(`${url}/v1/alertmanager`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify(amPayload([{ fingerprint: 'aaaa000000000001', startsAt: new Date().toISOString() }])),
    });
    await eventually(
      async () => (await (await fetch(`${url}/metrics`)).text()).includes('changepager_hygiene_deploys'),
      'a refresh that counts the alert',
    );
    await service.stop();
  });
});
