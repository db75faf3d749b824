import type { Logger } from 'pino';
import { createApp } from './app.js';
import type { Channel } from './channels/channel.js';
import { connectChannels } from './channels/connect.js';
import { CHANNELS, LANES } from './channels/registry.js';
import type { Config } from './config/load.js';
import { createDelivery } from './deliver/worker.js';
import { createMetrics } from './metrics.js';
import { createPipeline } from './pipeline.js';
import { openSqliteStore } from './store/sqlite/store.js';
import type { Store } from './store/store.js';
import { createLoginLimiter } from './ui/login-limiter.js';

export interface ComposeOptions {
  config: Config;
  log: Logger;
  now?: () => number;
  /** The store to use instead of the database the config names: tests pass SQLite in memory, or a fake. */
  store?: Store;
  /** The channels to wire instead of the registry's: tests pass fakes, or real channels over fake clients. */
  channels?: readonly Channel[];
  /** The worker's random source for backoff jitter: tests pin it. */
  random?: () => number;
}

/**
 * The composition root: store, metrics, channels, outbox lanes, pipeline and the express app, built but not
 * started (main.ts starts them). Tests call it with fakes in place of the parts they replace.
 */
export function compose({ config, log, now = Date.now, ...overrides }: ComposeOptions) {
  if (!overrides.store && config.postgres) {
    throw new Error('PostgreSQL opens asynchronously: pass the store openStore() opened');
  }
  const store = overrides.store ?? openSqliteStore(config.databasePath);
  const metrics = createMetrics(store, now, {
    services: Object.keys(config.services),
    topServices: config.metrics.topServices,
    refreshIntervalMs: config.metrics.refreshIntervalMs,
    log: log.child({ component: 'metrics' }),
  });
  const channels = connectChannels(overrides.channels ?? CHANNELS, {
    config,
    store,
    metrics,
    log,
    now,
    kick: () => delivery.kick(),
    receiveDeploy: (deploy, opts) => pipeline.receiveDeploy(deploy, opts),
  });
  // A lane none of whose kinds a channel delivers (the code hosts', with none configured) would only poll.
  const lanes = LANES.filter((lane) => lane.kinds.some((kind) => channels.handlers[kind]));
  const delivery = createDelivery(lanes, {
    store,
    handlers: channels.handlers,
    log,
    metrics,
    now,
    pollIntervalMs: config.delivery.pollIntervalMs,
    maxBackoffMs: config.delivery.maxBackoffMs,
    leaseMs: config.delivery.leaseMs,
    ...(overrides.random ? { random: overrides.random } : {}),
  });
  const pipeline = createPipeline({
    config,
    store,
    now,
    log,
    metrics,
    sendsChangeEvent: channels.sendsChangeEvent,
    commentHostOf: channels.commentHostOf,
    onCommitted: () => delivery.kick(),
  });
  const logins = createLoginLimiter(config.loginLimit, log.child({ component: 'login' }));
  // Work committed by another replica wakes this one's workers too.
  store.onWork((kinds) => delivery.kick(kinds));
  const app = createApp({ config, store, pipeline, metrics, log, now, logins, channelRouters: channels.routers });
  return { store, metrics, worker: delivery, pipeline, app, channels, logins };
}

export type Composed = ReturnType<typeof compose>;
