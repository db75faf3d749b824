import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { amPayload, createHarness, designDeploy, type Harness, TOKEN } from '../support/harness.js';
import { type Ext4Mount, mountExt4, mountTmpfs, probeStorageFaults, type TmpfsMount } from '../support/mounts.js';
import { type PagerDutyStub, startPagerDutyStub } from '../support/pagerduty-stub.js';
import { eventually } from '../support/wait.js';

// "2xx means durable" under real storage faults (test/support/mounts.ts explains the mechanisms): while the
// database cannot be written, every write request gets 503 storage_unavailable, so Alertmanager sends it again;
// nothing of a refused request is stored; once the fault clears, the retry is stored whole, exactly once.

const probe = probeStorageFaults();
if (!probe.tmpfs || !probe.ext4) console.warn(`storage fault tests skipped in part: ${probe.why.join('; ')}`);

const auth = { Authorization: `Bearer ${TOKEN}` };
const TABLES = ['deploys', 'episodes', 'decisions', 'pages', 'page_members', 'outbox', 'deliveries'] as const;
type Counts = Record<(typeof TABLES)[number], number>;

/** Row counts read through a second, read-only connection: what is on disk, not what the service believes. */
function counts(dbPath: string): Counts {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const out = {} as Counts;
    for (const t of TABLES) out[t] = (db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n;
    return out;
  } finally {
    db.close();
  }
}

function integrity(dbPath: string): string {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return db.pragma('integrity_check', { simple: true }) as string;
  } finally {
    db.close();
  }
}

/** A storm group: `n` new alerts in one notification, each its own episode. */
const group = (g: number, n = 2) =>
  amPayload(
    Array.from({ length: n }, (_, i) => ({
      fingerprint: `${g.toString(16).padStart(8, '0')}${i.toString(16).padStart(8, '0')}`,
      startsAt: '2026-11-26T11:09:00Z',
      labels: { alertname: `Disk${g}`, instance: `host-${g}-${i}:9100` },
    })),
    `{}:{alertname="Disk${g}"}`,
  );

describe.skipIf(!probe.tmpfs)('a full disk (the database on a 32 MiB tmpfs, filled to ENOSPC)', () => {
  let disk: TmpfsMount;
  let h: Harness | undefined;

  beforeEach(() => {
    // Room for the WAL to grow to its checkpoint size (1,000 pages) when the disk is not full.
    disk = mountTmpfs(32 * 1024 * 1024);
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
    disk?.unmount();
  });

  const post = (path: string, body: object) => {
    if (!h) throw new Error('no service');
    return request(h.app).post(path).set(auth).send(body);
  };

  it('answers 503 storage_unavailable to every write, stores none of it, and takes the retries once there is room', async () => {
    h = createHarness({ dir: disk.dir });
    expect((await post('/v1/deploys', designDeploy({ id: 'before-the-fault' }))).status).toBe(201);
    expect((await post('/v1/alertmanager', group(0))).status).toBe(200);
    const before = counts(h.dbPath);

    expect(disk.fill()).toBeLessThan(8192);
    const refused: number[] = [];
    for (let g = 1; g <= 50; g++) refused.push((await post('/v1/alertmanager', group(g))).status);
    const deploy = await post('/v1/deploys', designDeploy({ id: 'during-the-fault' }));
    const resolve = await post(
      '/v1/alertmanager',
      amPayload([{ fingerprint: '0000000000000000', startsAt: '2026-11-26T11:09:00Z', status: 'resolved' }]),
    );

    expect(new Set(refused)).toEqual(new Set([503]));
    expect(deploy.status).toBe(503);
    expect(deploy.body).toMatchObject({ error: 'storage_unavailable' });
    expect(resolve.status).toBe(503);
    expect(counts(h.dbPath)).toEqual(before);
    expect((await request(h.app).get('/healthz')).status).toBe(200);
    expect((await request(h.app).get('/readyz')).status).toBe(503); // out of rotation: it cannot take an alert

    disk.free(); // the operator makes room; Alertmanager sends everything again
    for (let g = 1; g <= 50; g++) expect((await post('/v1/alertmanager', group(g))).status).toBe(200);
    expect((await post('/v1/deploys', designDeploy({ id: 'during-the-fault' }))).status).toBe(201);
    expect((await post('/v1/alertmanager', group(1))).body).toMatchObject({ newEpisodes: 0, repeats: 2 });

    const after = counts(h.dbPath);
    expect(after.episodes - before.episodes).toBe(100);
    expect(after.decisions - before.decisions).toBe(100);
    expect(after.pages - before.pages).toBe(50);
    expect(after.deploys - before.deploys).toBe(1);
    expect(integrity(h.dbPath)).toBe('ok');
    expect((await request(h.app).get('/readyz')).status).toBe(200);
  });

  it('delivers a page accepted before the disk filled exactly once, though its delivery could not be recorded', async () => {
    const stub: PagerDutyStub = await startPagerDutyStub({ https: true });
    try {
      const ca = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
      h = createHarness({
        dir: disk.dir,
        yaml: [
          'delivery: { poll_interval: PT0.1S, max_backoff: PT0.5S }',
          `pagerduty: { events_url: ${stub.url}, ca_file: ${JSON.stringify(ca)}, request_timeout: PT1S }`,
          'defaults: { pagerduty: { routing_key_env: PD_KEY } }',
        ].join('\n'),
        env: { PD_KEY: 'storage-fault-routing-key-000000' },
      });
      for (let g = 0; g < 5; g++) expect((await post('/v1/alertmanager', group(g))).status).toBe(200);
      disk.fill();
      h.worker.start(); // PagerDuty accepts each page, but the attempt cannot be written down
      await stub.waitFor((reqs) => reqs.filter((r) => r.route === 'events').length >= 5);
      await new Promise((r) => setTimeout(r, 300));
      disk.free();
      await eventually(() => counts(h?.dbPath ?? '').outbox === 0, 'the outbox to drain', 10_000);

      expect(stub.alerts().map((a) => a.incidentsOpened)).toEqual([1, 1, 1, 1, 1]);
      const history = (await request(h.app).get('/v1/alerts/0000000000000000').set(auth)).body.episodes[0];
      expect(history.pages[0].delivered).toMatchObject({ via: 'events', state: 'triggered' });
    } finally {
      await h?.worker.stop();
      await stub.close();
    }
  });
});

describe.skipIf(!probe.ext4)('a disk that turns read-only under the service (ext4 error, errors=remount-ro)', () => {
  let disk: Ext4Mount;
  let h: Harness | undefined;

  beforeAll(() => {
    disk = mountExt4(32);
  });
  afterAll(async () => {
    await h?.close();
    disk?.unmount();
  });

  const post = (path: string, body: object) => {
    if (!h) throw new Error('no service');
    return request(h.app).post(path).set(auth).send(body);
  };

  it('answers 503 to writes, keeps serving reads, and after repair and restart has everything it acknowledged', async () => {
    h = createHarness({ dir: disk.dir });
    expect((await post('/v1/deploys', designDeploy({ id: 'before-the-fault' }))).status).toBe(201);
    for (let g = 0; g < 10; g++) expect((await post('/v1/alertmanager', group(g))).status).toBe(200);
    const before = counts(h.dbPath);

    disk.fail();
    expect(disk.readOnly()).toBe(true);
    const refused: number[] = [];
    for (let g = 10; g < 30; g++) refused.push((await post('/v1/alertmanager', group(g))).status);
    const deploy = await post('/v1/deploys', designDeploy({ id: 'during-the-fault' }));
    expect(new Set(refused)).toEqual(new Set([503]));
    expect(deploy.body).toMatchObject({ error: 'storage_unavailable' });
    // Reads still work from what is on disk: the history of what was acknowledged stays visible.
    expect((await request(h.app).get('/v1/deploys/before-the-fault').set(auth)).status).toBe(200);
    expect((await request(h.app).get('/v1/alerts/0000000900000001').set(auth)).status).toBe(200);
    expect((await request(h.app).get('/readyz')).status).toBe(503);

    await h.close();
    h = undefined;
    disk.repair();
    h = createHarness({ dir: disk.dir });
    expect(counts(h.dbPath)).toEqual(before);
    expect(integrity(h.dbPath)).toBe('ok');

    for (let g = 10; g < 30; g++) expect((await post('/v1/alertmanager', group(g))).status).toBe(200);
    expect((await post('/v1/deploys', designDeploy({ id: 'during-the-fault' }))).status).toBe(201);
    const after = counts(h.dbPath);
    expect(after.episodes - before.episodes).toBe(40);
    expect(after.decisions - before.decisions).toBe(40);
    expect(after.pages - before.pages).toBe(20);
    expect(after.deploys - before.deploys).toBe(1);
  });
});
