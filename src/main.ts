import type { Server } from 'node:http';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import { bindAddress, type Config, DEFAULT_CONFIG_PATH, loadConfig } from './config/load.js';
import { createLogNotifier, logDmHandler } from './deliver/log-notifier.js';
import type { OutboxHandler } from './deliver/notifier.js';
import { createPagerDutyClient, type PagerDutyClient } from './deliver/pagerduty/client.js';
import { changeEventHandler, createPagerDutyNotifier } from './deliver/pagerduty/notifier.js';
import { createUserDirectory } from './deliver/pagerduty/users.js';
import { createSlackInteractivity } from './deliver/slack/actions.js';
import { createSlackClient } from './deliver/slack/client.js';
import { slackDmHandler } from './deliver/slack/notifier.js';
import { createSlackDirectory } from './deliver/slack/users.js';
import { type Delivery, lanes, OutboxWorker, pageHandler } from './deliver/worker.js';
import { createHttpServer } from './http/server.js';
import { createLogger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createPipeline } from './pipeline.js';
import { openStore } from './store/open.js';
import { describeDatabase } from './store/postgres/connection.js';
import { openSqliteStore } from './store/sqlite/store.js';
import type { OutboxKind, Store } from './store/store.js';
import { createLoginLimiter } from './ui/login-limiter.js';

export interface Service {
  server: Server;
  url: string;
  worker: Delivery;
  stop(): Promise<void>;
}

export interface StartOptions {
  config: Config;
  log: Logger;
  /** The store, opened already (openStore); absent: the SQLite file the config names. */
  store?: Store;
  now?: () => number;
  /** The file the config came from, for the start-up log line. */
  configPath?: string;
}

const LOGIN_SWEEP_MS = 60_000;

/** The composition root: store, metrics, outbox lanes, integrations, pipeline and the express app; not started. */
export function compose({ config, log, now = Date.now, ...opened }: StartOptions) {
  if (!opened.store && config.postgres)
    throw new Error('PostgreSQL opens asynchronously: pass the store openStore() opened');
  const store = opened.store ?? openSqliteStore(config.databasePath);
  const metrics = createMetrics(store, now, {
    services: Object.keys(config.services),
    topServices: config.metrics.topServices,
    refreshIntervalMs: config.metrics.refreshIntervalMs,
    log: log.child({ component: 'metrics' }),
  });
  const pd = config.pagerduty && { config: config.pagerduty, client: createPagerDutyClient(config.pagerduty, now) };
  const lane = (kinds: OutboxKind[], handlers: Partial<Record<OutboxKind, OutboxHandler>>, concurrency: number) =>
    new OutboxWorker({
      store,
      handlers,
      kinds,
      concurrency,
      log: log.child({ component: 'outbox', lane: kinds.join('+') }),
      metrics,
      now,
      pollIntervalMs: config.delivery.pollIntervalMs,
      maxBackoffMs: config.delivery.maxBackoffMs,
      leaseMs: config.delivery.leaseMs,
    });
  const slack = config.slack && createSlack({ config, log, now, store, metrics });
  // Slack has a lane of its own: a slow or failing Slack can never take a slot a page needs.
  const delivery = lanes([
    lane(['page', 'change'], pagerdutyHandlers({ config, log, now, store, metrics, pd }), 8),
    lane(['dm'], { dm: slack?.dm ?? logDmHandler(store, log.child({ component: 'log-notifier' })) }, 4),
  ]);
  const interactivity =
    slack && config.slack
      ? createSlackInteractivity({ ...slack.deps, ...(pd ? { pd } : {}), kick: () => delivery.kick() })
      : undefined;
  const pipeline = createPipeline({ config, store, now, log, metrics, onCommitted: () => delivery.kick() });
  // Work committed by another replica wakes this one's workers too.
  store.onWork((kinds) => delivery.kick(kinds));
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

/** Composes the service, listens, and starts the outbox worker. */
export async function startService(options: StartOptions): Promise<Service> {
  const { config, log } = options;
  const now = options.now ?? Date.now;
  const { store, worker, app, interactivity, logins, metrics } = compose({
    ...options,
    store: options.store ?? (await openStore(config, log)),
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
  await interactivity?.start();
  // A burst of wrong logins is summarised once its window has passed, even if nobody tries to log in after it.
  const sweeper = setInterval(() => logins.sweep(now()), LOGIN_SWEEP_MS);
  sweeper.unref();
  const delivery = {
    pages: config.pagerduty ? 'pagerduty' : 'log',
    dms: config.slack ? `slack (${config.slack.mode})` : 'log',
  };
  if (!config.pagerduty) {
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
        await interactivity?.stop();
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
