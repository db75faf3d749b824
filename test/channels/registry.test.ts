import { describe, expect, it } from 'vitest';
import type { Channel } from '../../src/channels/channel.js';
import { connectChannels } from '../../src/channels/connect.js';
import { CHANNELS, LANES } from '../../src/channels/registry.js';
import { parseConfig } from '../../src/config/load.js';
import { configFileSchema } from '../../src/config/schema.js';
import { deployEvent, toDeploy } from '../../src/ingest/deploy.js';
import { parseBody } from '../../src/ingest/validate.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { openSqliteStore } from '../../src/store/sqlite/store.js';
import type { OutboxKind } from '../../src/store/store.js';
import { designDeploy } from '../support/harness.js';

// The registry of channels: which channel delivers each outbox kind for a given config, which lane each kind
// runs in, and that a channel's config section is the registry's.

const PAGERDUTY = 'pagerduty: {}\ndefaults: { pagerduty: { routing_key_env: PD_KEY } }\n';
const SLACK = 'slack: { bot_token_env: SLACK_BOT, signing_secret_env: SLACK_SIGNING, bot_id: B1, bot_user_id: U1 }\n';
const GITHUB = 'github: { token_env: GH_TOKEN, webhook_secret_env: GH_SECRET }\n';
const GITLAB = 'gitlab: { token_env: GITLAB_TOKEN, webhook_secret_env: GITLAB_HOOK }\n';
const ENV = {
  PD_KEY: 'routing-key',
  SLACK_BOT: 'xoxb-1',
  SLACK_SIGNING: 'signing',
  GH_TOKEN: 't',
  GH_SECRET: 's',
  GITLAB_TOKEN: 'glpat-1',
  GITLAB_HOOK: 'hook-secret',
};

function connect(yaml: string, channels: readonly Channel[] = CHANNELS) {
  const config = parseConfig(yaml, { path: 'test.yaml', env: ENV });
  const store = openSqliteStore(':memory:');
  const logs: string[] = [];
  const log = createLogger('debug', { write: (line: string) => logs.push(line) });
  const now = () => Date.parse('2026-11-26T11:20:00Z');
  const connected = connectChannels(channels, {
    config,
    store,
    metrics: createMetrics(store, now),
    log,
    now,
    kick: () => undefined,
    receiveDeploy: (deploy) => store.saveDeploy(deploy),
  });
  return { connected, logs, close: () => store.close() };
}

describe('the channels', () => {
  it.each([
    ['nothing configured: the log delivers pages and DMs, and no change events', '', { page: 'log', dm: 'log' }],
    [
      'PagerDuty configured: it delivers pages and change events, the log DMs',
      PAGERDUTY,
      { page: 'pagerduty', change: 'pagerduty', dm: 'log' },
    ],
    ['Slack configured: it DMs, the log delivers pages', SLACK, { page: 'log', dm: 'slack (http)' }],
    [
      'both configured: the log delivers nothing',
      PAGERDUTY + SLACK,
      { page: 'pagerduty', change: 'pagerduty', dm: 'slack (http)' },
    ],
    [
      'GitHub configured: it looks up the changes of its deploys and writes its comments, and nothing else',
      GITHUB,
      { page: 'log', dm: 'log', github_enrich: 'github', github_comment: 'github' },
    ],
  ])('%s', async (_intent, yaml, delivery) => {
    const { connected, close } = connect(yaml);
    expect(connected.delivery).toEqual(delivery);
    expect(Object.keys(connected.handlers).sort()).toEqual(Object.keys(delivery).sort());
    await close();
  });

  it('hands the worker a handler for every kind a channel that is on says it delivers', async () => {
    for (const channel of CHANNELS) {
      const { connected, close } = connect(PAGERDUTY + SLACK + GITHUB + GITLAB, [channel]);
      const kinds = channel.delivers.filter((k) => connected.delivery[k]);
      expect(kinds, channel.name).toEqual(channel.delivers);
      expect(Object.keys(connected.handlers).sort(), channel.name).toEqual([...channel.delivers].sort());
      await close();
    }
  });

  it('puts every kind a channel delivers in exactly one lane', () => {
    const kinds = new Set<OutboxKind>(CHANNELS.flatMap((c) => c.delivers));
    for (const kind of kinds) {
      expect(
        LANES.filter((l) => l.kinds.includes(kind)).map((l) => l.name),
        kind,
      ).toHaveLength(1);
    }
  });

  it('sends a deploy on as a change event only through a channel that delivers them, and as it says', async () => {
    const deploy = toDeploy(parseBody(deployEvent, designDeploy()), { environment: 'production', now: 0 });
    const none = connect(SLACK);
    expect(none.connected.sendsChangeEvent(deploy)).toBe(false);
    await none.close();
    const pd = connect(PAGERDUTY);
    expect(pd.connected.sendsChangeEvent(deploy)).toBe(true);
    await pd.close();
    const off = connect(PAGERDUTY.replace('pagerduty: {}', 'pagerduty: { change_events: false }'));
    expect(off.connected.sendsChangeEvent(deploy)).toBe(false);
    await off.close();
  });

  it('warns about a configured channel that delivers nothing, because one before it delivers all it could', async () => {
    const twin: Channel = { ...CHANNELS[0] };
    const { connected, logs, close } = connect(PAGERDUTY, [CHANNELS[0], twin]);
    expect(connected.delivery).toEqual({ page: 'pagerduty', change: 'pagerduty' });
    expect(logs.map((l) => JSON.parse(l))).toContainEqual(
      expect.objectContaining({ level: 40, channel: 'pagerduty', msg: expect.stringMatching(/delivers nothing/) }),
    );
    await close();
  });

  it('takes each channel’s config section, and its per-service settings, from the registry', () => {
    const shape = configFileSchema.shape as Record<string, unknown>;
    for (const channel of CHANNELS) expect(channel.name in shape, channel.name).toBe(Boolean(channel.config));
    expect(() =>
      configFileSchema.parse({ defaults: { pagerduty: { service_id: 'P1' } }, services: { a: { pagerduty: {} } } }),
    ).not.toThrow();
  });
});
