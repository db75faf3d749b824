import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Cluster, type SendStats, sendAll, startCluster, storedCounts } from '../support/cluster.js';
import { amPayload } from '../support/harness.js';
import { type PagerDutyStub, startPagerDutyStub } from '../support/pagerduty-stub.js';
import {
  createTestDatabase,
  type PrivatePostgres,
  queryDatabase,
  startPrivatePostgres,
  type TestDatabase,
} from '../support/postgres.js';
import { eventually } from '../support/wait.js';

// Three replicas, as separate processes, on one PostgreSQL database, with a storm of notifications spread over
// them and every unanswered one sent again, as Alertmanager does; PagerDuty (the stand-in) fails for a while
// during each storm. For each fault: every notification is acknowledged in the end, every alert is stored, each
// group opens exactly one PagerDuty incident, and the outbox empties (every page delivered after recovery).

/** Group g: `size` new alerts in one notification, each its own episode; one page per group. */
/** The replicas that exited, each with its exit code or signal and its last log lines: what a failure shows. */
const exitedReplicas = (replicas: Cluster['replicas']) =>
  replicas
    .filter((r) => r !== undefined && (r.child.exitCode !== null || r.child.signalCode !== null))
    .map(
      (r) =>
        `exit ${r?.child.exitCode ?? r?.child.signalCode}: ${r?.output().trim().split('\n').slice(-60).join('\n')}`,
    );

const notification = (g: number, size: number, name = 'Storm') =>
  amPayload(
    Array.from({ length: size }, (_, i) => ({
      fingerprint: `${g.toString(16).padStart(8, '0')}${i.toString(16).padStart(8, '0')}`,
      startsAt: '2026-11-26T11:09:00Z',
      labels: { alertname: `${name}${g}`, instance: `host-${g}-${i}:9100` },
    })),
    `{}:{alertname="${name}${g}"}`,
  );

describe('three replicas on PostgreSQL under faults', () => {
  let dir: string;
  let stub: PagerDutyStub;
  let db: TestDatabase | undefined;
  let cluster: Cluster | undefined;
  let server: PrivatePostgres | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'changepager-cluster-'));
    stub = await startPagerDutyStub({ https: true });
    // Deliveries take a while, so that some are in flight whatever happens.
    stub.delay('events', 100, { times: Number.POSITIVE_INFINITY });
  });
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
    await stub.close();
    await db?.drop();
    db = undefined;
    await server?.stop();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  /** Waits for every page to be delivered, then checks what PagerDuty saw: one incident per group, no more. */
  async function expectPagedOnce(url: string, groups: number, alerts: number, stats: SendStats, label: string) {
    expect(stats.acknowledged.size).toBe(groups);
    await eventually(
      async () => stub.alerts().length >= groups && (await storedCounts(url)).outbox === 0,
      `${groups} PagerDuty alerts and an empty outbox`,
      90_000,
    );
    const stored = await storedCounts(url);
    expect(stored).toEqual({ episodes: alerts, pages: groups, outbox: 0 });
    const seen = stub.alerts();
    expect(seen).toHaveLength(groups);
    expect(seen.filter((a) => a.incidentsOpened !== 1)).toEqual([]);
    expect(seen.every((a) => a.status === 'triggered')).toBe(true);
    const triggers = Math.max(...seen.map((a) => a.triggerCount));
    console.info(
      `${label}: ${stats.acknowledged.size}/${groups} notifications acknowledged (${stats.requests} requests, ` +
        `${stats.refused} refused or cut off), ${stored.episodes} alerts stored, ${seen.length} PagerDuty alerts, ` +
        `incidents per dedup key: 1, trigger events per dedup key: at most ${triggers}, ` +
        `${stub.requestsTo('events').length} event requests in all`,
    );
  }

  it('SIGKILL of one replica while it delivers: its rows are taken over after the lease, nothing lost, nothing paged twice', {
    timeout: 180_000,
  }, async () => {
    db = await createTestDatabase('cp_cluster');
    cluster = await startCluster({ n: 3, dir, databaseUrl: db.url, stub });
    // The start-up line names the database by host and name only.
    expect(cluster.replicas[1]?.listening.database).toBe(`postgres://${new URL(db.url).host}/${db.name}`);
    stub.failFor('events', 3000, { status: 500 });
    const victim = cluster.replicas[0]?.child.pid as number;
    const bodies = Array.from({ length: 150 }, (_, g) => notification(g, 3, 'Kill'));
    const sending = sendAll(cluster, bodies);
    // Kill it while it holds claims: deliveries (or PagerDuty's failures) in flight.
    const claims = async () =>
      (
        await queryDatabase<{ n: number }>(
          db?.url as string,
          'SELECT count(*)::int AS n FROM outbox WHERE owner LIKE $1',
          [`%/${victim}/%`],
        )
      )[0]?.n ?? 0;
    const held = await eventually(claims, 'the victim holding outbox claims', 60_000);
    await cluster.kill(0);
    const stats = await sending;
    console.info(`killed replica pid ${victim} holding ${held} claimed outbox rows`);
    await expectPagedOnce(db.url, 150, 450, stats, 'SIGKILL');
    expect(exitedReplicas(cluster.replicas.slice(1))).toEqual([]);
  });

  it('PostgreSQL restarted mid-storm: 503s meanwhile, no replica exits, every notification stored and paged once', {
    timeout: 180_000,
  }, async () => {
    // A server of this test's own: restarting the shared one would cut the other test files' connections.
    server = await startPrivatePostgres();
    db = await createTestDatabase('cp_restart', server.url);
    cluster = await startCluster({ n: 3, dir, databaseUrl: db.url, stub });
    stub.failFor('events', 3000, { status: 500 });
    const stats: SendStats = { acknowledged: new Set(), requests: 0, refused: 0 };
    const bodies = Array.from({ length: 150 }, (_, g) => notification(g, 3, 'Restart'));
    const sending = sendAll(cluster, bodies, { stats });
    await eventually(() => stats.acknowledged.size >= 40, 'a third of the storm acknowledged', 60_000);
    await server.restart();
    await sending;
    await expectPagedOnce(db.url, 150, 450, stats, 'PostgreSQL restart');
    expect(exitedReplicas(cluster.replicas)).toEqual([]);
    // The restart was felt: requests refused (503) or cut off meanwhile, and sent again.
    expect(stats.refused).toBeGreaterThan(0);
  });

  it('the same 500 notifications sent to all three replicas at once (an HA triple): one episode each, one incident per group', {
    timeout: 180_000,
  }, async () => {
    db = await createTestDatabase('cp_triple');
    cluster = await startCluster({ n: 3, dir, databaseUrl: db.url, stub });
    stub.failFor('events', 3000, { status: 500 });
    const bodies = Array.from({ length: 500 }, (_, g) => notification(g, 2, 'Triple'));
    const stats = await sendAll(cluster, bodies, { copies: 3, concurrency: 4 });
    await expectPagedOnce(db.url, 500, 1000, stats, 'HA triple');
  });
});
