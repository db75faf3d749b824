import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { amPayload, TOKEN } from '../support/harness.js';
import { type PagerDutyStub, startPagerDutyStub } from '../support/pagerduty-stub.js';
import { type ServiceProcess, startServiceProcess } from '../support/process.js';

// The promise of "2xx means durable": whatever got a 2xx is paged exactly once, even if the process is
// SIGKILLed between accepting it and delivering it, or in the middle of a storm.

const CA_FILE = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
const ROUTING_KEY = 'crash-test-routing-key-000000000';

describe('a SIGKILLed changepager', () => {
  let dir: string;
  let stub: PagerDutyStub;
  let service: ServiceProcess | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'changepager-crash-'));
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
      PD_KEY: ROUTING_KEY,
    });
    return service;
  };
  const send = (url: string, groupIndex: number) =>
    fetch(`${url}/v1/alertmanager`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(
        amPayload(
          [0, 1].map((i) => ({
            fingerprint: `${groupIndex.toString(16).padStart(8, '0')}0000000${i}`,
            startsAt: '2026-11-26T11:09:00Z',
            labels: { alertname: `Storm${groupIndex}`, instance: `host-${groupIndex}-${i}:9100` },
          })),
          `{}:{alertname="Storm${groupIndex}"}`,
        ),
      ),
    });
  /** Every PagerDuty alert opened, by dedup key, with how many times each was opened. */
  const opened = () => new Map(stub.alerts().map((a) => [a.dedupKey, a.incidentsOpened]));

  it('delivers each page it accepted exactly once after a kill between the 2xx and the delivery', async () => {
    stub.hang('events', { times: Number.POSITIVE_INFINITY }); // deliveries are in flight when the kill comes
    const first = await start();
    for (let g = 0; g < 5; g++) expect((await send(first.url, g)).status).toBe(200);
    await stub.waitFor((reqs) => reqs.some((r) => r.route === 'events'));
    await first.kill();

    stub.clearFaults();
    stub.dropHanging();
    await start();
    await stub.waitFor(() => opened().size === 5, 15_000);
    await new Promise((r) => setTimeout(r, 1500)); // time for any duplicate to show up
    expect([...opened().values()]).toEqual([1, 1, 1, 1, 1]);
    expect(stub.events({ accepted: true }).filter((e) => e.event_action === 'trigger')).toHaveLength(5);
  });

  it('pages every alert that got a 2xx when killed in the middle of a storm, and none twice', async () => {
    const first = await start();
    const accepted = new Set<number>();
    let next = 0;
    // Four senders in parallel, like Alertmanager flushing many groups; the kill lands while they are busy.
    const sender = async () => {
      while (next < 400) {
        const g = next++;
        try {
          if ((await send(first.url, g)).status === 200) accepted.add(g);
        } catch {
          return; // the connection died with the process: not accepted, Alertmanager would send it again
        }
      }
    };
    const senders = Promise.all([sender(), sender(), sender(), sender()]);
    while (accepted.size < 50) await new Promise((r) => setTimeout(r, 5));
    await first.kill();
    await senders;
    expect(accepted.size).toBeGreaterThanOrEqual(50);

    await start();
    await stub.waitFor(() => opened().size >= accepted.size, 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    const pages = opened();
    // Each accepted group is one page (both of its alerts share it); a request cut off mid-commit may have
    // committed without its 2xx arriving, so a few more pages than 2xx answers is correct, never fewer.
    expect(pages.size).toBeGreaterThanOrEqual(accepted.size);
    expect(pages.size).toBeLessThanOrEqual(accepted.size + 4);
    expect([...pages.values()].every((n) => n === 1)).toBe(true);
    const triggers = stub.events({ accepted: true }).filter((e) => e.event_action === 'trigger');
    const summaries = new Set(triggers.map((t) => t.payload?.summary));
    for (const g of accepted)
      expect(summaries).toContain(`[FIRING:2] Storm${g} on checkout: Checkout error rate above 5%`);
  });
});
