import type { Logger } from 'pino';
import { createApp } from './app.js';
import { type Config, pagerdutyFor } from './config/load.js';
import { createLogNotifier, logDmHandler } from './deliver/log-notifier.js';
import type { OutboxHandler } from './deliver/notifier.js';
import { createPagerDutyClient, type PagerDutyClient } from './deliver/pagerduty/client.js';
import { changeEventHandler, createPagerDutyNotifier } from './deliver/pagerduty/notifier.js';
import { createUserDirectory } from './deliver/pagerduty/users.js';
import { createSlackInteractivity } from './deliver/slack/actions.js';
import { createSlackClient } from './deliver/slack/client.js';
import { slackDmHandler } from './deliver/slack/notifier.js';
import { createSlackDirectory } from './deliver/slack/users.js';
import { createDelivery, pageHandler } from './deliver/worker.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createPipeline } from './pipeline.js';
import { openSqliteStore } from './store/sqlite/store.js';
import type { OutboxKind, Store } from './store/store.js';
import { createLoginLimiter } from './ui/login-limiter.js';

export interface ComposeOptions {
  config: Config;
  log: Logger;
  now?: () => number;
  /** The store to use instead of the database the config names: tests pass SQLite in memory, or a fake. */
  store?: Store;
  /** The worker's random source for backoff jitter: tests pin it. */
  random?: () => number;
}

/**
 * The composition root: store, metrics, outbox lanes, channels, pipeline and the express app, built but not
 * started (main.ts starts them). Tests call it with fakes in place of the parts they replace.
 */
export function compose({ config, log, now = Date.now, ...overrides }: ComposeOptions) {
  const store = overrides.store ?? openSqliteStore(config.databasePath);
  const metrics = createMetrics(store, now, {
    services: Object.keys(config.services),
    topServices: config.metrics.topServices,
    refreshIntervalMs: config.metrics.refreshIntervalMs,
    log: log.child({ component: 'metrics' }),
  });
  const pd = config.pagerduty && { config: config.pagerduty, client: createPagerDutyClient(config.pagerduty, now) };
  const slack = config.slack && createSlack({ config, log, now, store, metrics });
  // Slack has a lane of its own: a slow or failing Slack can never take a slot a page needs.
  const delivery = createDelivery(
    [
      { name: 'page+change', kinds: ['page', 'change'], concurrency: 8 },
      { name: 'dm', kinds: ['dm'], concurrency: 4 },
    ],
    {
      store,
      handlers: {
        ...pagerdutyHandlers({ config, log, now, store, metrics, pd }),
        dm: slack?.dm ?? logDmHandler(store, log.child({ component: 'log-notifier' })),
      },
      log,
      metrics,
      now,
      pollIntervalMs: config.delivery.pollIntervalMs,
      maxBackoffMs: config.delivery.maxBackoffMs,
      leaseMs: config.delivery.leaseMs,
      ...(overrides.random ? { random: overrides.random } : {}),
    },
  );
  const interactivity =
    slack && config.slack
      ? createSlackInteractivity({ ...slack.deps, ...(pd ? { pd } : {}), kick: () => delivery.kick() })
      : undefined;
  const pipeline = createPipeline({
    config,
    store,
    now,
    log,
    metrics,
    sendsChangeEvent: (deploy) =>
      Boolean(pd?.config.changeEvents && pagerdutyFor(pd.config, deploy.service).routingKey),
    onCommitted: () => delivery.kick(),
  });
  const logins = createLoginLimiter(config.loginLimit, log.child({ component: 'login' }));
  const app = createApp({
    config,
    store,
    pipeline,
    metrics,
    log,
    now,
    logins,
    ...(interactivity?.router ? { slackRouter: interactivity.router } : {}),
  });
  return { store, metrics, worker: delivery, pipeline, app, interactivity, logins };
}

interface Parts {
  config: Config;
  log: Logger;
  now: () => number;
  store: Store;
  metrics: Metrics;
}

/** PagerDuty when it is configured, else the log: the embedded default that needs no credentials. */
function pagerdutyHandlers(
  parts: Parts & { pd: { config: NonNullable<Config['pagerduty']>; client: PagerDutyClient } | undefined },
): Partial<Record<OutboxKind, OutboxHandler>> {
  const { config, log, now, store, metrics, pd } = parts;
  if (!pd) return { page: pageHandler(store, createLogNotifier(log.child({ component: 'log-notifier' }))) };
  const users = createUserDirectory({
    client: pd.client,
    people: config.directory.people,
    ttlMs: pd.config.userCacheTtlMs,
    now,
  });
  const getDeploy = (id: string) => store.getDeploy(id);
  const notifier = createPagerDutyNotifier({
    config,
    pd: pd.config,
    client: pd.client,
    users,
    getDeploy,
    recordUnmapped: (who, reason) => store.recordUnmapped(who, reason, now()),
    metrics,
    log: log.child({ component: 'pagerduty' }),
    now,
  });
  return {
    page: pageHandler(store, notifier),
    change: changeEventHandler({ pd: pd.config, client: pd.client, getDeploy }),
  };
}

function createSlack(parts: Parts) {
  const slack = parts.config.slack;
  if (!slack) return undefined;
  const client = createSlackClient(slack);
  const directory = createSlackDirectory({
    client,
    people: parts.config.directory.people,
    ttlMs: slack.userCacheTtlMs,
    now: parts.now,
  });
  const deps = { ...parts, slack, client, directory, log: parts.log.child({ component: 'slack' }) };
  return { deps, dm: slackDmHandler(deps) };
}

export type Composed = ReturnType<typeof compose>;
