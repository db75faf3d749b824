import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { parseAlertGroup } from '../src/ingest/alertmanager.js';
import { deployEvent, toDeploy } from '../src/ingest/deploy.js';
import { parseBody } from '../src/ingest/validate.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { createPipeline } from '../src/pipeline.js';
import { openSqliteStore } from '../src/store/sqlite/store.js';
import { StorageError, type Store } from '../src/store/store.js';
import { amPayload, designDeploy, fakeClock } from './support/harness.js';

// The pipeline on its own: decide and persist, on SQLite in memory, without HTTP or delivery. What it is given
// (a parsed notification, a deploy) and what it leaves behind (episodes, decisions, outbox rows, wake-ups) are
// what a test looks at; the routes in front of it are tested over HTTP in test/http/.

const NOW = '2026-11-26T11:20:00Z';
const config = parseConfig(
  `
people:
  - email: alice@example.com
    logins: [alice]
`,
  { path: 'test.yaml', env: {} },
);
const deploy = (overrides: Record<string, unknown> = {}) =>
  toDeploy(parseBody(deployEvent, designDeploy(overrides)), { environment: 'production', now: Date.parse(NOW) });
const notification = (n: number, startsAt = '2026-11-26T11:09:00Z', labels: Record<string, string> = {}) =>
  parseAlertGroup(
    amPayload(
      Array.from({ length: n }, (_, i) => ({
        fingerprint: `a${String(i).padStart(15, '0')}`,
        startsAt,
        labels: { instance: `checkout-${i}:8080`, ...labels },
      })),
    ),
  );

describe('the pipeline', () => {
  const clock = fakeClock(NOW);
  let store: Store;
  let kicks: number;
  /** The kinds of outbox rows each wake-up named. */
  let woken: (readonly string[] | undefined)[];
  let changeEventsFor: Set<string>;
  let logs: string[];

  /** The pipeline over `over`, the in-memory store with some of its methods replaced. */
  function pipeline(over: Partial<Store> = {}) {
    logs = [];
    return createPipeline({
      config,
      store: Object.assign(Object.create(store), over) as Store,
      now: clock.now,
      log: createLogger('debug', { write: (line: string) => logs.push(line) }),
      metrics: createMetrics(store, clock.now),
      sendsChangeEvent: (d) => changeEventsFor.has(d.service),
      onCommitted: (kinds) => {
        kicks++;
        woken.push(kinds);
      },
    });
  }

  beforeEach(() => {
    clock.set(NOW);
    store = openSqliteStore(':memory:');
    kicks = 0;
    woken = [];
    changeEventsFor = new Set();
  });
  afterEach(async () => {
    await store.close();
  });

  it('pages on-call for an alert no deploy explains, stores it with an outbox row, and wakes delivery', async () => {
    const result = await pipeline().receiveAlerts(await notification(1));
    expect(result).toMatchObject({ newEpisodes: 1, repeats: 0, pagesTouched: 1 });
    expect(result.decided.map((d) => [d.decision.reason, d.decision.targets])).toEqual([
      ['no_deploy_in_window', [{ kind: 'oncall' }]],
    ]);
    expect(woken).toEqual([['page']]); // the paging lane only: nothing else was queued
    const [episode] = await store.alertHistory('a000000000000000');
    expect(episode?.pages.map((p) => [p.target, p.status])).toEqual([[{ kind: 'oncall' }, 'open']]);
    expect(await store.nextDueAt(['page'])).toBe(clock.now());
  });

  it('pages the author of the deploy before the alert', async () => {
    const p = pipeline();
    await p.receiveDeploy(deploy());
    const result = await p.receiveAlerts(await notification(1));
    expect(result.decided[0]?.decision).toMatchObject({
      reason: 'author_paged',
      deployId: 'gha-run-8812731',
      targets: [{ kind: 'person', email: 'alice@example.com' }],
    });
  });

  it("looks up a notification's deploys in one store call, and decides each alert on its own service's", async () => {
    const lookups: number[] = [];
    const p = pipeline({
      findDeployCandidates: (queries) => {
        lookups.push(queries.length);
        return store.findDeployCandidates(queries);
      },
    });
    await p.receiveDeploy(deploy());
    const alert = (i: number, service: string) => ({
      fingerprint: `b${String(i).padStart(15, '0')}`,
      startsAt: '2026-11-26T11:09:00Z',
      labels: { service, instance: `${service}-${i}:8080` },
    });
    const group = await parseAlertGroup(amPayload([alert(0, 'checkout'), alert(1, 'search'), alert(2, 'checkout')]));
    const result = await p.receiveAlerts(group);
    expect(lookups).toEqual([3]);
    expect(result.decided.map((d) => [d.alert.labels.service, d.decision.reason, d.decision.deployId])).toEqual([
      ['checkout', 'author_paged', 'gha-run-8812731'],
      ['search', 'no_deploy_in_window', undefined],
      ['checkout', 'author_paged', 'gha-run-8812731'],
    ]);
  });

  it('decides an episode once: the same notification again is a repeat that decides and pages nothing', async () => {
    const p = pipeline();
    await p.receiveAlerts(await notification(1));
    const again = await p.receiveAlerts(await notification(1));
    expect(again).toMatchObject({ newEpisodes: 0, repeats: 1, pagesTouched: 0, decided: [] });
    expect((await store.alertHistory('a000000000000000')).map((e) => e.pages.length)).toEqual([1]);
  });

  it('stores nothing for repeats seen within the minute, and refreshes their last sight after it', async () => {
    let writes = 0;
    const p = pipeline({
      recordAlerts: (...args) => {
        writes++;
        return store.recordAlerts(...args);
      },
    });
    await p.receiveAlerts(await notification(3));
    kicks = 0;
    clock.advance(30_000);
    expect(await p.receiveAlerts(await notification(3))).toMatchObject({ newEpisodes: 0, repeats: 3 });
    expect({ writes, kicks }).toEqual({ writes: 1, kicks: 0 });
    clock.advance(30_000);
    await p.receiveAlerts(await notification(3));
    expect(writes).toBe(2);
    expect(kicks).toBe(0); // refreshing when they were last seen queues no delivery, so it wakes no lane
    expect((await store.alertHistory('a000000000000000'))[0]?.episode.lastSeenAt).toBe(clock.now());
  });

  it('stores a large notification a slice at a time, each its own commit, and reports it as one', async () => {
    const result = await pipeline().receiveAlerts(await notification(1200));
    expect(result.newEpisodes).toBe(1200);
    expect(result.decided).toHaveLength(1200);
    expect(kicks).toBe(3);
  });

  it('pages on-call, saying why, when correlation itself fails', async () => {
    const failing = pipeline({
      findDeployCandidates: async () => {
        throw new TypeError('cannot read the deploy');
      },
    });
    const result = await failing.receiveAlerts(await notification(2));
    expect(result.decided.map((d) => d.decision.reason)).toEqual(['correlation_error', 'correlation_error']);
    expect(result.decided[0]?.decision).toMatchObject({
      reason: 'correlation_error',
      service: 'checkout',
      targets: [{ kind: 'oncall' }],
    });
    expect(result.decided[0]?.decision.sentence).toContain('cannot read the deploy');
    expect(logs.map((l) => JSON.parse(l).msg)).toContain('correlation failed; paging on-call');
    expect(await store.nextDueAt(['page'])).toBeDefined();
  });

  it('still pages on-call when what correlation threw is not an Error', async () => {
    const failing = pipeline({
      findDeployCandidates: async () => {
        throw undefined;
      },
    });
    const result = await failing.receiveAlerts(await notification(1));
    expect(result.decided[0]?.decision).toMatchObject({ reason: 'correlation_error', targets: [{ kind: 'oncall' }] });
    expect(result.decided[0]?.decision.sentence).toContain('could not correlate this alert (undefined)');
    expect(await store.nextDueAt(['page'])).toBeDefined();
  });

  it('fails the notification, storing nothing, when the database cannot be read: Alertmanager sends it again', async () => {
    const failing = pipeline({
      findDeployCandidates: async () => {
        throw new StorageError('database is locked');
      },
    });
    await expect(failing.receiveAlerts(await notification(1))).rejects.toThrow('database is locked');
    expect(await store.alertHistory('a000000000000000')).toEqual([]);
    expect(kicks).toBe(0);
  });

  it('previews the decisions of a notification without storing anything or waking delivery', async () => {
    const decided = await pipeline().preview(await notification(2));
    expect(decided.map((d) => d.decision.reason)).toEqual(['no_deploy_in_window', 'no_deploy_in_window']);
    expect(await store.alertHistory('a000000000000000')).toEqual([]);
    expect(await store.nextDueAt()).toBeUndefined();
    expect(kicks).toBe(0);
  });

  it('enqueues a change event for a new deploy only when a channel sends one, and wakes delivery only then', async () => {
    const p = pipeline();
    expect((await p.receiveDeploy(deploy({ id: 'search-1', service: 'search' }))).created).toBe(true);
    expect(await store.nextDueAt(['change'])).toBeUndefined();
    expect(kicks).toBe(0);

    changeEventsFor.add('checkout');
    expect((await p.receiveDeploy(deploy())).created).toBe(true);
    expect(await store.nextDueAt(['change'])).toBe(clock.now());
    expect(kicks).toBe(1);

    expect((await p.receiveDeploy(deploy())).created).toBe(false);
    expect(kicks).toBe(1);
  });

  it('counts an author changepager cannot reach by name, once per decision', async () => {
    const p = pipeline();
    await p.receiveDeploy(deploy({ changes: [{ author: { login: 'zed' } }] }));
    const result = await p.receiveAlerts(await notification(1));
    expect(result.decided[0]?.decision.reason).toBe('no_person_for_author');
    expect(await store.listUnmapped()).toEqual([expect.objectContaining({ who: 'zed', reason: 'no_email', count: 1 })]);
  });
});
