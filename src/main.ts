import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import { type Config, DEFAULT_CONFIG_PATH, loadConfig } from './config/load.js';
import { createLogNotifier } from './deliver/log-notifier.js';
import type { OutboxHandler, PageNotifier } from './deliver/notifier.js';
import { createPagerDutyClient } from './deliver/pagerduty/client.js';
import { changeEventHandler, createPagerDutyNotifier } from './deliver/pagerduty/notifier.js';
import { createUserDirectory } from './deliver/pagerduty/users.js';
import { OutboxWorker, pageHandler } from './deliver/worker.js';
import { createLogger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createPipeline } from './pipeline.js';
import { openSqliteStore } from './store/sqlite.js';
import type { OutboxKind, Store } from './store/store.js';

export interface Service {
  server: Server;
  url: string;
  worker: OutboxWorker;
  stop(): Promise<void>;
}

export interface StartOptions {
  config: Config;
  log: Logger;
  now?: () => number;
  notifier?: PageNotifier;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** The composition root: store, metrics, outbox worker, pipeline and the express app, wired but not started. */
export function compose({ config, log, now = Date.now, notifier }: StartOptions) {
  const store = openSqliteStore(config.databasePath);
  const metrics = createMetrics(store, now);
  const worker = new OutboxWorker({
    store,
    handlers: deliveryHandlers({ config, log, now, store, metrics, notifier }),
    log: log.child({ component: 'outbox' }),
    metrics,
    now,
    pollIntervalMs: config.delivery.pollIntervalMs,
    maxBackoffMs: config.delivery.maxBackoffMs,
  });
  const pipeline = createPipeline({ config, store, now, log, metrics, onCommitted: () => worker.kick() });
  const app = createApp({ config, store, pipeline, metrics, log, now });
  return { store, metrics, worker, pipeline, app };
}

/** PagerDuty when it is configured, else the log: the embedded default that needs no credentials. */
function deliveryHandlers(deps: {
  config: Config;
  log: Logger;
  now: () => number;
  store: Store;
  metrics: Metrics;
  notifier?: PageNotifier | undefined;
}): Partial<Record<OutboxKind, OutboxHandler>> {
  const { config, log, now, store, metrics } = deps;
  const pd = config.pagerduty;
  if (deps.notifier) return { page: pageHandler(store, deps.notifier) };
  if (!pd) return { page: pageHandler(store, createLogNotifier(log.child({ component: 'log-notifier' }))) };
  const client = createPagerDutyClient(pd, now);
  const users = createUserDirectory({ client, people: config.directory.people, ttlMs: pd.userCacheTtlMs, now });
  const getDeploy = (id: string) => store.getDeploy(id);
  const notifier = createPagerDutyNotifier({
    config,
    pd,
    client,
    users,
    getDeploy,
    recordUnmapped: (who, reason) => store.recordUnmapped(who, reason, now()),
    metrics,
    log: log.child({ component: 'pagerduty' }),
    now,
  });
  return { page: pageHandler(store, notifier), change: changeEventHandler({ pd, client, getDeploy }) };
}

export type Composed = ReturnType<typeof compose>;

/** Composes the service, listens, and starts the outbox worker. */
export async function startService(options: StartOptions): Promise<Service> {
  const { config, log, notifier } = options;
  const { store, worker, app } = compose(options);
  let host = config.listen.host;
  if (config.tokens.length === 0 && !LOOPBACK.has(host)) {
    log.warn(
      { configured: host },
      'no API token is configured (CHANGEPAGER_TOKEN or auth.tokens): listening on 127.0.0.1 only',
    );
    host = '127.0.0.1';
  } else if (config.tokens.length === 0) {
    log.warn('no API token is configured (CHANGEPAGER_TOKEN or auth.tokens): /v1 is open to anyone on this machine');
  }

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.listen.port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.listen.port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  worker.start();
  const delivery = notifier?.channel ?? (config.pagerduty ? 'pagerduty' : 'log');
  log.info({ url, database: config.databasePath, delivery }, 'changepager listening');

  let stopping: Promise<void> | undefined;
  return {
    server,
    url,
    worker,
    stop() {
      stopping ??= (async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await worker.stop();
        await store.close();
      })();
      return stopping;
    },
  };
}

/** `npm start`: load the config named by CHANGEPAGER_CONFIG (or the default) and run until SIGTERM/SIGINT. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = createLogger(env.LOG_LEVEL ?? 'info');
  const config = loadConfig({ path: env.CHANGEPAGER_CONFIG ?? DEFAULT_CONFIG_PATH, env });
  const service = await startService({ config, log });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      log.info({ signal }, 'shutting down: finishing requests and deliveries in flight');
      service.stop().then(
        () => process.exit(0),
        (err) => {
          log.error({ err }, 'unclean shutdown');
          process.exit(1);
        },
      );
    });
  }
}
