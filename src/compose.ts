import type { Logger } from 'pino';
import { createApp } from './app.js';
import type { Channel } from './channels/channel.js';
import { connectChannels } from './channels/connect.js';
import { CHANNELS, LANES } from './channels/registry.js';
import type { Config } from './config/load.js';
import { createDelivery } from './deliver/worker.js';
import { evidenceHandler } from './evidence/handler.js';
import { previewEvidence } from './evidence/preview.js';
import { createPrometheusClient } from './evidence/prometheus.js';
import { rolloutEvidence } from './evidence/rollout.js';
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
  // Evidence is no channel: it tells nobody anything, it only judges a deploy before its author's page goes out.
  const prometheus = config.prometheus && createPrometheusClient(config.prometheus);
  // Registered even without a prometheus section: evidence rows queued before a restart that removed it are
  // retired (their pages went at the budget anyway) instead of waiting in the outbox for ever.
  const evidence = evidenceHandler({
    config,
    store,
    ...(prometheus ? { client: prometheus } : {}),
    now,
    log: log.child({ component: 'evidence' }),
    metrics,
    kick: () => delivery.kick(),
  });
  const handlers = { ...channels.handlers, evidence };
  // A lane none of whose kinds is delivered (the code hosts' with none configured) would only poll.
  const lanes = LANES.filter((lane) => lane.kinds.some((kind) => handlers[kind]));
  const delivery = createDelivery(lanes, {
    store,
    handlers,
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
    onCommitted: (kinds) => delivery.kick(kinds),
  });
  const logins = createLoginLimiter(config.loginLimit, log.child({ component: 'login' }));
  // Work committed by another replica wakes this one's workers too.
  store.onWork((kinds) => delivery.kick(kinds));
  const app = createApp({
    config,
    store,
    pipeline,
    metrics,
    log,
    now,
    logins,
    channelRouters: channels.routers,
    ...(prometheus
      ? {
          previewEvidence: (decided) =>
            previewEvidence(decided, { config, client: prometheus, getDeploy: (id) => store.getDeploy(id), now }),
          rolloutEvidence: rolloutEvidence({ config, client: prometheus, now }),
        }
      : {}),
  });
  return { store, metrics, worker: delivery, pipeline, app, channels, logins };
}

export type Composed = ReturnType<typeof compose>;
