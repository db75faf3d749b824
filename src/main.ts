import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import { type Config, DEFAULT_CONFIG_PATH, loadConfig } from './config/load.js';
import { createLogNotifier } from './deliver/log-notifier.js';
import type { PageNotifier } from './deliver/notifier.js';
import { OutboxWorker } from './deliver/worker.js';
import { createLogger } from './log.js';
import { createMetrics } from './metrics.js';
import { createPipeline } from './pipeline.js';
import { openSqliteStore } from './store/sqlite.js';

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
    notifier: notifier ?? createLogNotifier(log.child({ component: 'log-notifier' })),
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
  log.info({ url, database: config.databasePath, delivery: notifier?.channel ?? 'log' }, 'changepager listening');

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
