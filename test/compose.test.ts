import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import type { Channel } from '../src/channels/channel.js';
import { log as logChannel } from '../src/channels/log/index.js';
import type { EventBody, PagerDutyClient } from '../src/channels/pagerduty/client.js';
import { createPagerDuty, pagerduty } from '../src/channels/pagerduty/index.js';
import { type Composed, compose } from '../src/compose.js';
import { parseConfig } from '../src/config/load.js';
import { pageHandler } from '../src/deliver/notifier.js';
import { createLogger } from '../src/log.js';
import { openSqliteStore } from '../src/store/sqlite/store.js';
import type { PageWithMembers } from '../src/store/store.js';
import { amPayload, fakeClock, TOKEN } from './support/harness.js';

// compose() with fakes in place of the parts a test replaces: the store, the channels, a channel's client.

const clock = fakeClock('2026-11-26T11:20:00Z');
const auth = { Authorization: `Bearer ${TOKEN}` };
const fire = (c: Composed) =>
  request(c.app)
    .post('/v1/alertmanager')
    .set(auth)
    .send(amPayload([{ fingerprint: 'a000000000000001', startsAt: '2026-11-26T11:09:00Z' }]));

describe('compose', () => {
  let dir: string;
  let composed: Composed | undefined;
  const config = (yaml = '') => {
    dir = mkdtempSync(join(tmpdir(), 'changepager-compose-'));
    return parseConfig(`database: { path: ${JSON.stringify(join(dir, 'never.db'))} }\n${yaml}`, {
      path: 'test.yaml',
      env: { CHANGEPAGER_TOKEN: TOKEN, PD_KEY: 'routing-key-0001' },
    });
  };
  const build = (yaml: string, overrides: Partial<Parameters<typeof compose>[0]>) => {
    composed = compose({
      config: config(yaml),
      log: createLogger('silent'),
      now: clock.now,
      store: openSqliteStore(':memory:'),
      ...overrides,
    });
    return composed;
  };
  afterEach(async () => {
    await composed?.worker.stop();
    await composed?.store.close();
    composed = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('uses the store it is given, and never opens the database the config names', async () => {
    const c = build('', {});
    expect((await fire(c)).status).toBe(200);
    expect(await c.store.alertHistory('a000000000000001')).toHaveLength(1);
    expect(existsSync(join(dir, 'never.db'))).toBe(false);
  });

  it('delivers through the channels it is given instead of the registry’s', async () => {
    const paged: PageWithMembers[] = [];
    const recorder: Channel<'recorder', undefined> = {
      name: 'recorder',
      delivers: ['page'],
      create: ({ store }) => ({
        handlers: {
          page: pageHandler(store, {
            channel: 'recorder',
            async deliver(page) {
              paged.push(page);
              return { ok: true, detail: 'recorded' };
            },
          }),
        },
      }),
    };
    const c = build('', { channels: [recorder, logChannel] });
    await fire(c);
    await c.worker.drain();
    expect(paged.map((p) => [p.page.target, p.members.length])).toEqual([[{ kind: 'oncall' }, 1]]);
    const [episode] = await c.store.alertHistory('a000000000000001');
    expect(episode?.deliveries.map((d) => [d.channel, d.detail])).toEqual([['recorder', 'recorded']]);
  });

  it('runs a real channel over a fake client', async () => {
    const events: EventBody[] = [];
    const client = {
      async sendEvent(body: EventBody) {
        events.push(body);
        return { ok: true as const, status: 202, data: {} };
      },
    } as unknown as PagerDutyClient;
    const overPagerDuty: typeof pagerduty = { ...pagerduty, create: (deps) => createPagerDuty({ ...deps, client }) };
    const c = build('pagerduty: {}\ndefaults: { pagerduty: { routing_key_env: PD_KEY } }\n', {
      channels: [overPagerDuty, logChannel],
    });
    await fire(c);
    await c.worker.drain();
    expect(events.map((e) => [e.event_action, e.routing_key])).toEqual([['trigger', 'routing-key-0001']]);
  });
});
