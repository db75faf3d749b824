import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { amPayload, TOKEN } from '../support/harness.js';
import { type PagerDutyStub, startPagerDutyStub } from '../support/pagerduty-stub.js';
import { type ServiceProcess, startServiceProcess } from '../support/process.js';
import { eventually } from '../support/wait.js';

// test/process/crash.test.ts kills changepager once. This goes on the way Alertmanager does: it keeps re-sending
// every notification that did not get a 2xx, while changepager is SIGKILLed three times, in the middle of
// accepting and in the middle of delivering (PagerDuty answers slowly, so deliveries are in flight at each kill).
// In the end every notification is accepted and each group is paged exactly once.

const CA_FILE = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
const GROUPS = 120;
const KILLS = 3;

describe('changepager SIGKILLed again and again while Alertmanager keeps retrying', () => {
  let dir: string;
  let stub: PagerDutyStub;
  let service: ServiceProcess | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'changepager-kills-'));
    stub = await startPagerDutyStub({ https: true });
    writeFileSync(
      join(dir, 'changepager.yaml'),
      [
        `database: { path: ${JSON.stringify(join(dir, 'changepager.db'))} }`,
        'delivery: { poll_interval: PT0.2S, max_backoff: PT1S }',
        `pagerduty: { events_url: ${stub.url}, ca_file: ${JSON.stringify(CA_FILE)}, request_timeout: PT2S }`,
        'defaults: { pagerduty: { routing_key_env: PD_KEY } }',
      ].join('\n'),
    );
  });
  afterEach(async () => {
    await service?.kill();
    service = undefined;
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async () => {
    service = await startServiceProcess({
      CHANGEPAGER_CONFIG: join(dir, 'changepager.yaml'),
      CHANGEPAGER_TOKEN: TOKEN,
      PD_KEY: 'kill-test-routing-key-00000000000',
    });
    return service;
  };
  const send = (url: string, g: number) =>
    fetch(`${url}/v1/alertmanager`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(
        amPayload(
          [0, 1, 2].map((i) => ({
            fingerprint: `${g.toString(16).padStart(8, '0')}0000000${i}`,
            startsAt: '2026-11-26T11:09:00Z',
            labels: { alertname: `Kill${g}`, instance: `host-${g}-${i}:9100` },
          })),
          `{}:{alertname="Kill${g}"}`,
        ),
      ),
    });

  // Four process starts alone take 10 to 20 s on a busy machine: the waits inside bound this test, not the default.
  it('pages each of 120 groups exactly once across three kills, everything eventually accepted', {
    timeout: 120_000,
  }, async () => {
    stub.delay('events', 150, { times: Number.POSITIVE_INFINITY });
    const accepted = new Set<number>();
    let attempts = 0;
    let refusedOrCut = 0;
    for (let cycle = 0; cycle <= KILLS; cycle++) {
      const svc = await start();
      const pending = () => Array.from({ length: GROUPS }, (_, g) => g).filter((g) => !accepted.has(g));
      const queue = pending();
      // Four senders, as Alertmanager flushes groups in parallel; a kill cuts them off mid-request.
      const sender = async () => {
        for (let g = queue.shift(); g !== undefined; g = queue.shift()) {
          attempts++;
          try {
            if ((await send(svc.url, g)).status === 200) accepted.add(g);
            else refusedOrCut++;
          } catch {
            refusedOrCut++;
            return;
          }
        }
      };
      const senders = Promise.all([sender(), sender(), sender(), sender()]);
      if (cycle < KILLS) {
        const target = Math.min(GROUPS, accepted.size + 25);
        await eventually(() => accepted.size >= target || queue.length === 0, 'accepting', 20_000);
        await svc.kill();
      }
      await senders;
    }
    expect(accepted.size).toBe(GROUPS);

    await eventually(() => stub.alerts().length >= GROUPS, `${GROUPS} PagerDuty alerts`, 60_000);
    await new Promise((r) => setTimeout(r, 2000)); // room for a duplicate to show up
    const alerts = stub.alerts();
    expect(alerts).toHaveLength(GROUPS);
    expect(alerts.filter((a) => a.incidentsOpened !== 1)).toEqual([]);
    const names = new Set(alerts.map((a) => /Kill\d+/.exec(a.payload?.summary ?? '')?.[0]));
    expect(names.size).toBe(GROUPS);
    expect(alerts.every((a) => a.payload?.summary?.startsWith('[FIRING:3]'))).toBe(true);
    console.info(
      `kills: ${KILLS}, requests ${attempts} (${refusedOrCut} cut off), ${GROUPS} groups of 3 alerts accepted, ` +
        `${stub.requestsTo('events').length} trigger requests, ${alerts.length} PagerDuty alerts opened once each`,
    );
  });
});
