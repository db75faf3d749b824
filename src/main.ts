import type { Server } from 'node:http';
import { resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { type ComposeOptions, compose } from './compose.js';
import { bindAddress, DEFAULT_CONFIG_PATH, loadConfig } from './config/load.js';
import type { Delivery } from './deliver/worker.js';
import { createHttpServer } from './http/server.js';
import { createLogger } from './log.js';
import { openStore } from './store/open.js';
import { describeDatabase } from './store/postgres/connection.js';

// Starting and stopping: compose.ts builds the service, this file listens, starts the workers, and stops them
// all in order on SIGTERM.

export interface Service {
  server: Server;
  url: string;
  worker: Delivery;
  stop(): Promise<void>;
}

export interface StartOptions extends ComposeOptions {
  /** The file the config came from, for the start-up log line. */
  configPath?: string;
}

const LOGIN_SWEEP_MS = 60_000;

/**
 * How far past what survived its last full collection V8 lets the old generation grow: 30 %, where its own
 * rule allows up to four times. A storm's garbage (a notification's alerts, alive while they wait for the
 * database thread) outlives the young generation and dies in the old one; by V8's rule the heap of a
 * 100,000-alert storm reached 140 MB around 40 MB of live objects. Set when the service starts rather than on
 * the command line because it is V8's own flag, not a documented Node option: a Node whose V8 drops it prints
 * a line and carries on here, where on the command line it would refuse to start.
 */
const HEAP_GROWING_PERCENT = 30;

/** Composes the service, listens, and starts the outbox worker. */
export async function startService(options: StartOptions): Promise<Service> {
  const { configPath, ...composeOptions } = options;
  const { config, log } = options;
  const now = options.now ?? Date.now;
  const { store, worker, app, channels, logins, metrics } = compose({
    ...composeOptions,
    store: composeOptions.store ?? (await openStore(config, log)),
  });
  const { host, access, narrowedFrom } = bindAddress(config);
  if (narrowedFrom) {
    log.warn(
      { configured: narrowedFrom },
      'no API token is configured (CHANGEPAGER_TOKEN or auth.tokens): listening on 127.0.0.1 only',
    );
  } else if (access === 'anyone') {
    log.warn({ host }, 'CHANGEPAGER_ALLOW_OPEN and no API token: /v1 is open to anyone who can reach this address');
  } else if (access === 'this-machine') {
    log.warn('no API token is configured (CHANGEPAGER_TOKEN or auth.tokens): /v1 is open to anyone on this machine');
  }

  const http = createHttpServer(app, { http: config.http, metrics, log, now });
  const server = http.server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.listen.port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  worker.start();
  metrics.start();
  await channels.start();
  // A burst of wrong logins is summarised once its window has passed, even if nobody tries to log in after it.
  const sweeper = setInterval(() => logins.sweep(now()), LOGIN_SWEEP_MS);
  sweeper.unref();
  // Who delivers pages and who DMs, as operators read it in this line: "pagerduty", "slack (http)", "log".
  const delivery = { pages: channels.delivery.page, dms: channels.delivery.dm };
  if (delivery.pages === 'log') {
    // The embedded default: fine for trying it out, a silent pager in production. Say so loudly.
    log.warn('no pagerduty section in the config: pages are written to this log only, and nobody is paged');
  }
  // A relative database.path is relative to the working directory (as Prometheus' data/ is): the log line
  // names the file it became, so nobody has to guess where ./data went.
  const database = config.postgres
    ? describeDatabase(config.postgres.url)
    : config.databasePath === ':memory:'
      ? ':memory:'
      : resolve(config.databasePath);
  log.info(
    { url, ...(options.configPath ? { config: options.configPath } : {}), database, delivery },
    'changepager listening',
  );

  let stopping: Promise<void> | undefined;
  return {
    server,
    url,
    worker,
    stop() {
      stopping ??= (async () => {
        clearInterval(sweeper);
        await http.close();
        await channels.stop();
        await worker.stop();
        await metrics.stop();
        await store.close();
      })();
      return stopping;
    },
  };
}

/** `npm start`: load the config named by CHANGEPAGER_CONFIG (or the default) and run until SIGTERM/SIGINT. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  const log = createLogger(env.LOG_LEVEL ?? 'info');
  const configPath = env.CHANGEPAGER_CONFIG || DEFAULT_CONFIG_PATH;
  const config = loadConfig({ path: configPath, env });
  const service = await startService({ config, log, configPath: resolve(configPath) });
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
