import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TOKEN } from './harness.js';
import type { PagerDutyStub } from './pagerduty-stub.js';
import { queryDatabase } from './postgres.js';
import { type ServiceProcess, startServiceProcess } from './process.js';

// Replicas of changepager as separate processes on one PostgreSQL database, and a sender that behaves like
// Alertmanager in front of them: notifications spread over the replicas (as a Service in front of them would),
// each one sent again, to the next replica, until it gets a 2xx.

const CA_FILE = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
export const PD_KEY = 'cluster-test-routing-key-000000000';

export interface Cluster {
  /** The running replicas; undefined where one was killed. */
  replicas: (ServiceProcess | undefined)[];
  urls(): string[];
  start(i: number): Promise<ServiceProcess>;
  kill(i: number): Promise<void>;
  close(): Promise<void>;
}

/** Writes a PostgreSQL config into `dir` and starts `n` replicas on it (the URL comes from the environment). */
export async function startCluster(opts: {
  n: number;
  dir: string;
  databaseUrl: string;
  stub: PagerDutyStub;
  extraYaml?: string[];
}): Promise<Cluster> {
  const configPath = join(opts.dir, 'changepager.yaml');
  writeFileSync(
    configPath,
    [
      'database: { url_env: CHANGEPAGER_DATABASE_URL, pool_size: 4, connect_timeout: PT2S }',
      // A short lease, so that a killed replica's rows are taken over within the test's patience.
      'delivery: { poll_interval: PT0.5S, max_backoff: PT1S, lease: PT3S }',
      `pagerduty: { events_url: ${opts.stub.url}, ca_file: ${JSON.stringify(CA_FILE)}, request_timeout: PT2S }`,
      'defaults: { pagerduty: { routing_key_env: PD_KEY } }',
      ...(opts.extraYaml ?? []),
    ].join('\n'),
  );
  const env = {
    CHANGEPAGER_CONFIG: configPath,
    CHANGEPAGER_TOKEN: TOKEN,
    CHANGEPAGER_DATABASE_URL: opts.databaseUrl,
    PD_KEY,
  };
  const replicas: (ServiceProcess | undefined)[] = [];
  const cluster: Cluster = {
    replicas,
    urls: () => replicas.filter((r): r is ServiceProcess => r !== undefined).map((r) => r.url),
    async start(i) {
      const replica = await startServiceProcess(env);
      replicas[i] = replica;
      return replica;
    },
    async kill(i) {
      await replicas[i]?.kill();
      replicas[i] = undefined;
    },
    async close() {
      await Promise.all(replicas.map((r) => r?.kill()));
    },
  };
  await Promise.all(Array.from({ length: opts.n }, (_, i) => cluster.start(i)));
  return cluster;
}

export interface SendStats {
  acknowledged: Set<number>;
  requests: number;
  /** Requests answered with something else than 2xx, or cut off. */
  refused: number;
}

/**
 * Sends each notification until a replica answers 2xx, `concurrency` at a time: the first try to the replica its
 * index picks, each retry to the next one (Alertmanager retries; the Service in front picks any replica).
 * `copies` sends each notification that many times at once, each to a different replica and retried on its own:
 * the HA pair or triple of Alertmanagers. Bounded: gives up on a notification after `deadlineMs`.
 */
export async function sendAll(
  cluster: Cluster,
  bodies: readonly object[],
  opts: { concurrency?: number; copies?: number; deadlineMs?: number; stats?: SendStats } = {},
): Promise<SendStats> {
  const stats = opts.stats ?? { acknowledged: new Set<number>(), requests: 0, refused: 0 };
  const deadline = Date.now() + (opts.deadlineMs ?? 120_000);
  const copies = opts.copies ?? 1;
  const sendOne = async (index: number, copy: number): Promise<boolean> => {
    const body = JSON.stringify(bodies[index]);
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const urls = cluster.urls();
      const url = urls[(index + copy + attempt) % Math.max(1, urls.length)];
      if (url) {
        stats.requests++;
        try {
          const res = await fetch(`${url}/v1/alertmanager`, {
            method: 'POST',
            headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
            body,
            signal: AbortSignal.timeout(10_000),
          });
          await res.arrayBuffer();
          if (res.ok) return true;
        } catch {
          // Cut off (the replica died) or timed out: send again.
        }
        stats.refused++;
      }
      await new Promise((r) => setTimeout(r, 100 + 50 * Math.min(attempt, 10)));
    }
    return false;
  };
  const queue = bodies.map((_, i) => i);
  const worker = async () => {
    for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
      const results = await Promise.all(Array.from({ length: copies }, (_, c) => sendOne(i, c)));
      if (results.every(Boolean)) stats.acknowledged.add(i);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 6 }, worker));
  return stats;
}

/** Row counts in the cluster's database: what was stored, whatever the replicas believe. */
export async function storedCounts(databaseUrl: string) {
  const [row] = await queryDatabase<{ episodes: number; pages: number; outbox: number }>(
    databaseUrl,
    `SELECT (SELECT count(*) FROM episodes)::int AS episodes, (SELECT count(*) FROM pages)::int AS pages,
       (SELECT count(*) FROM outbox)::int AS outbox`,
  );
  return row as { episodes: number; pages: number; outbox: number };
}
