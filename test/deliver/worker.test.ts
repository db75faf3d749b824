import { afterEach, describe, expect, it } from 'vitest';
import type { DeliveryResult, OutboxHandler } from '../../src/deliver/notifier.js';
import { createDelivery, type Delivery, type Lane, OutboxWorker } from '../../src/deliver/worker.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import type { AttemptRecord, Claim, ClaimedItem, OutboxItem, OutboxKind, OutboxStore } from '../../src/store/store.js';
import { fakeClock } from '../support/harness.js';

// The outbox worker on its own, over a fake OutboxStore: which rows a lane claims, what it records for each
// outcome, when a failed row is due again, what a lost claim or an unwritable database does, and how many
// deliveries a lane has in flight. The HTTP tests (test/deliver/pagerduty.test.ts, slack.test.ts) drive the
// same worker end to end.

const T0 = '2026-11-26T11:20:00Z';
const PAGING: Lane = { name: 'paging', kinds: ['page', 'change'], concurrency: 8 };
const DMS: Lane = { name: 'dm', kinds: ['dm'], concurrency: 4 };

interface Recorded {
  item: ClaimedItem;
  requests: readonly AttemptRecord[];
  next: { retryAt?: number; delivered?: Record<string, string> };
}

/** An outbox in memory, with the claim rules of the port: due, unclaimed rows of the asked kinds, oldest first. */
function fakeOutbox(now: () => number) {
  let nextId = 1;
  const rows: (OutboxItem & { leaseUntil?: number })[] = [];
  const claims: Claim[] = [];
  const recorded: Recorded[] = [];
  const state = { loseClaims: false, recordFails: false };
  const store: OutboxStore = {
    async claimDue(claim) {
      claims.push(claim);
      const due = rows
        .filter((r) => (claim.kinds ?? []).includes(r.kind) && r.dueAt <= claim.now)
        .filter((r) => r.leaseUntil === undefined || r.leaseUntil <= claim.now)
        .slice(0, claim.limit);
      for (const r of due) r.leaseUntil = claim.now + claim.leaseMs;
      return due.map((r) => ({ ...r, owner: claim.owner, leaseUntil: claim.now + claim.leaseMs }));
    },
    async nextDueAt(kinds) {
      const due = rows.filter((r) => !kinds || kinds.includes(r.kind)).map((r) => r.dueAt);
      return due.length > 0 ? Math.min(...due) : undefined;
    },
    async recordAttempt(item, requests, next) {
      if (state.recordFails) throw new Error('SQLITE_FULL: database or disk is full');
      recorded.push({ item, requests, next });
      if (state.loseClaims) return { recorded: false };
      const i = rows.findIndex((r) => r.id === item.id);
      const row = rows[i];
      if (!row) return { recorded: false };
      if (next.retryAt === undefined) rows.splice(i, 1);
      else Object.assign(row, { dueAt: next.retryAt, attempts: row.attempts + 1, leaseUntil: undefined });
      return { recorded: true };
    },
    pageWithMembers: async () => undefined,
    dmWithContext: async () => undefined,
    updateDm: async () => undefined,
    outboxStats: async () => ({ depth: rows.length, oldestUndeliveredAgeMs: 0 }),
  };
  return {
    store,
    rows,
    claims,
    recorded,
    state,
    enqueue(kind: OutboxKind, ref: string, attempts = 0) {
      rows.push({ id: nextId++, kind, ref, generation: 0, attempts, createdAt: now(), dueAt: now() });
    },
  };
}

/** A handler whose answers the test gives, and which remembers what it was asked to deliver. */
function handler(channel: string, answer: (ref: string) => DeliveryResult | Promise<DeliveryResult>) {
  const refs: string[] = [];
  const h: OutboxHandler = {
    channel,
    async handle(ref) {
      refs.push(ref);
      return answer(ref);
    },
  };
  return { handler: h, refs };
}

/** A promise the test settles: a delivery that takes as long as the test says. */
function gate() {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** Lets the worker's loop run until `check` holds (turns of the event loop, not time). */
async function until(check: () => boolean, what: string) {
  for (let i = 0; i < 10_000; i++) {
    if (check()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

describe('the outbox worker', () => {
  const clock = fakeClock(T0);
  let logs: string[] = [];
  const running: Delivery[] = [];

  function setup(lane: Lane, handlers: Partial<Record<OutboxKind, OutboxHandler>>, random = () => 0) {
    clock.set(T0);
    logs = [];
    const outbox = fakeOutbox(clock.now);
    const log = createLogger('debug', { write: (line: string) => logs.push(line) });
    const metrics = createMetrics(outbox.store as never, clock.now);
    const worker = new OutboxWorker({
      store: outbox.store,
      lane,
      handlers,
      log,
      metrics,
      now: clock.now,
      pollIntervalMs: 3_600_000,
      maxBackoffMs: 60_000,
      leaseMs: 30_000,
      random,
    });
    running.push(worker);
    return { outbox, worker, metrics };
  }
  const logged = (level: number) =>
    logs.map((l) => JSON.parse(l)).filter((l: { level: number }) => l.level === level) as Record<string, unknown>[];

  afterEach(async () => {
    await Promise.all(running.splice(0).map((w) => w.stop()));
  });

  it("claims only its lane's kinds, for itself, for the configured lease", async () => {
    const dm = handler('slack', () => ({ ok: true, detail: 'DM posted' }));
    const { outbox, worker } = setup(DMS, { dm: dm.handler });
    outbox.enqueue('page', '1');
    outbox.enqueue('dm', '7');
    await worker.drain();
    expect(dm.refs).toEqual(['7']);
    expect(outbox.claims).toEqual([
      expect.objectContaining({ kinds: ['dm'], leaseMs: 30_000, now: clock.now(), owner: expect.any(String) }),
    ]);
    expect(outbox.rows.map((r) => r.kind)).toEqual(['page']);
  });

  it('records a delivery under its handler’s channel, with the state it reports, and retires the row', async () => {
    const page = handler('pagerduty', () => ({
      ok: true,
      detail: 'incident P1 created',
      delivered: { incident: 'P1' },
    }));
    const { outbox, worker } = setup(PAGING, { page: page.handler });
    outbox.enqueue('page', '1');
    await worker.drain();
    expect(outbox.recorded).toEqual([
      {
        item: expect.objectContaining({ kind: 'page', ref: '1' }),
        requests: [
          { at: clock.now(), channel: 'pagerduty', outcome: 'delivered', detail: 'incident P1 created', durationMs: 0 },
        ],
        next: { delivered: { incident: 'P1' } },
      },
    ]);
    expect(outbox.rows).toEqual([]);
  });

  it('records each request of an attempt, the earlier ones first, with the last starting when they ended', async () => {
    const at = Date.parse(T0);
    const page = handler('pagerduty', () => ({
      ok: true,
      detail: 'minimal trigger event accepted',
      earlier: [{ outcome: 'failed', detail: 'trigger event refused: HTTP 400', at, durationMs: 40 }],
    }));
    const { outbox, worker } = setup(PAGING, { page: page.handler });
    outbox.enqueue('page', '1');
    await worker.drain();
    expect(outbox.recorded[0]?.requests.map((r) => [r.outcome, r.detail, r.at])).toEqual([
      ['failed', 'trigger event refused: HTTP 400', at],
      ['delivered', 'minimal trigger event accepted', at + 40],
    ]);
  });

  describe('when a delivery fails', () => {
    it.each<[string, Partial<DeliveryResult>, () => number, number]>([
      ['a first retry waits half a second with the random half at its lowest', {}, () => 0, 500],
      ['…and a second with the random half at its highest', {}, () => 1, 1000],
      ["a server's Retry-After wins when longer", { retryAfterMs: 30_000 }, () => 0, 30_000],
      ['a deadline sooner than the backoff brings the retry forward', { retryBy: Date.parse(T0) + 200 }, () => 1, 200],
      ['a deadline already past makes the row due at once', { retryBy: Date.parse(T0) - 5_000 }, () => 1, 0],
    ])('%s', async (_intent, extra, random, delayMs) => {
      const page = handler('pagerduty', () => ({ ok: false, retry: true, detail: 'HTTP 503', ...extra }));
      const { outbox, worker } = setup(PAGING, { page: page.handler }, random);
      outbox.enqueue('page', '1');
      await worker.drain();
      expect(outbox.recorded[0]?.requests[0]?.outcome).toBe('retry');
      expect(outbox.recorded[0]?.next.retryAt).toBe(clock.now() + delayMs);
      expect(outbox.rows).toEqual([expect.objectContaining({ dueAt: clock.now() + delayMs, attempts: 1 })]);
      expect(logged(40)).toEqual([expect.objectContaining({ msg: 'delivery failed; will retry', detail: 'HTTP 503' })]);
    });

    it('doubles the backoff with each failure of the same row, up to the cap', async () => {
      const page = handler('pagerduty', () => ({ ok: false, retry: true, detail: 'HTTP 503' }));
      const { outbox, worker } = setup(PAGING, { page: page.handler }, () => 1);
      outbox.enqueue('page', '1', 3);
      await worker.drain();
      expect(outbox.recorded[0]?.next.retryAt).toBe(clock.now() + 8_000);
      outbox.rows.splice(0);
      outbox.enqueue('page', '2', 30);
      await worker.drain();
      expect(outbox.recorded[1]?.next.retryAt).toBe(clock.now() + 60_000);
    });

    it('gives up on a final failure: recorded as failed, retired, logged at error', async () => {
      const page = handler('pagerduty', () => ({ ok: false, retry: false, detail: 'HTTP 400: invalid routing key' }));
      const { outbox, worker } = setup(PAGING, { page: page.handler });
      outbox.enqueue('page', '1');
      await worker.drain();
      expect(outbox.recorded[0]?.requests[0]).toMatchObject({
        outcome: 'failed',
        detail: 'HTTP 400: invalid routing key',
      });
      expect(outbox.recorded[0]?.next).toEqual({});
      expect(outbox.rows).toEqual([]);
      expect(logged(50)).toEqual([expect.objectContaining({ msg: 'delivery failed permanently', ref: '1' })]);
    });

    it('retries a row whose handler threw: a bug must not lose a page', async () => {
      const page = handler('pagerduty', () => {
        throw new Error('cannot read properties of undefined');
      });
      const { outbox, worker } = setup(PAGING, { page: page.handler });
      outbox.enqueue('page', '1');
      await worker.drain();
      expect(outbox.recorded[0]?.requests[0]).toMatchObject({
        outcome: 'retry',
        detail: 'unexpected error: cannot read properties of undefined',
      });
      expect(outbox.rows).toHaveLength(1);
    });

    it('retries a row whose handler threw something that is not an Error', async () => {
      const page = handler('pagerduty', () => {
        throw null;
      });
      const { outbox, worker } = setup(PAGING, { page: page.handler });
      outbox.enqueue('page', '1');
      await worker.drain();
      expect(outbox.recorded[0]?.requests[0]).toMatchObject({ outcome: 'retry', detail: 'unexpected error: null' });
      expect(outbox.rows).toHaveLength(1);
    });

    it('keeps a row no channel delivers any more due, saying so, instead of dropping it', async () => {
      const { outbox, worker } = setup(PAGING, {});
      outbox.enqueue('change', 'deploy-1');
      await worker.drain();
      expect(outbox.recorded[0]?.requests[0]).toMatchObject({
        channel: 'change',
        outcome: 'retry',
        detail: 'no integration delivers change rows now',
      });
      expect(outbox.rows).toHaveLength(1);
    });
  });

  it('warns, and applies nothing, when its claim was lost to another worker meanwhile', async () => {
    const page = handler('pagerduty', () => ({ ok: true, detail: 'trigger event accepted' }));
    const { outbox, worker } = setup(PAGING, { page: page.handler });
    outbox.state.loseClaims = true;
    outbox.enqueue('page', '1');
    await worker.drain();
    expect(outbox.recorded).toHaveLength(1);
    expect(logged(40)).toEqual([
      expect.objectContaining({ msg: 'outbox: the claim on this row was lost meanwhile; outcome not applied' }),
    ]);
    expect(outbox.rows).toHaveLength(1);
  });

  it('logs, and keeps the row claimed, when the attempt cannot be recorded (a full disk)', async () => {
    const page = handler('pagerduty', () => ({ ok: true, detail: 'trigger event accepted' }));
    const { outbox, worker } = setup(PAGING, { page: page.handler });
    outbox.state.recordFails = true;
    outbox.enqueue('page', '1');
    await worker.drain();
    expect(logged(50)).toEqual([expect.objectContaining({ msg: 'outbox: cannot record a delivery attempt' })]);
    // Claimed until its lease ends: not taken again before then, taken again after.
    outbox.state.recordFails = false;
    await worker.drain();
    expect(page.refs).toEqual(['1']);
    clock.advance(30_000);
    await worker.drain();
    expect(page.refs).toEqual(['1', '1']);
    expect(outbox.rows).toEqual([]);
  });

  it('counts attempts by channel and outcome', async () => {
    const page = handler('pagerduty', (ref) =>
      ref === '1' ? { ok: true, detail: 'ok' } : { ok: false, retry: true, detail: 'HTTP 503' },
    );
    const { outbox, worker, metrics } = setup(PAGING, { page: page.handler });
    outbox.enqueue('page', '1');
    outbox.enqueue('page', '2');
    await worker.drain();
    const text = await metrics.render();
    expect(text).toContain('changepager_delivery_attempts_total{channel="pagerduty",outcome="delivered"} 1');
    expect(text).toContain('changepager_delivery_attempts_total{channel="pagerduty",outcome="retry"} 1');
  });

  it("never has more deliveries in flight than its lane's concurrency, and takes the next as one ends", async () => {
    const gates = new Map<string, ReturnType<typeof gate>>();
    let inFlight = 0;
    let most = 0;
    const dm = handler('slack', async (ref) => {
      inFlight++;
      most = Math.max(most, inFlight);
      const g = gate();
      gates.set(ref, g);
      await g.opened;
      inFlight--;
      return { ok: true, detail: 'DM posted' };
    });
    const { outbox, worker } = setup({ ...DMS, concurrency: 2 }, { dm: dm.handler });
    for (const ref of ['1', '2', '3', '4', '5']) outbox.enqueue('dm', ref);
    worker.start();
    await until(() => dm.refs.length === 2, 'two DMs in flight');
    expect(outbox.claims.map((c) => c.limit)).toEqual([2]);
    gates.get('1')?.open();
    await until(() => dm.refs.length === 3, 'a third DM once the first is done');
    for (const ref of ['2', '3', '4', '5']) {
      await until(() => gates.has(ref), `DM ${ref} in flight`);
      gates.get(ref)?.open();
    }
    await until(() => outbox.rows.length === 0, 'every DM delivered');
    expect(most).toBe(2);
    expect(dm.refs).toEqual(['1', '2', '3', '4', '5']);
  });

  it('finishes the deliveries in flight before stop() resolves', async () => {
    const g = gate();
    const page = handler('pagerduty', async () => {
      await g.opened;
      return { ok: true, detail: 'trigger event accepted' };
    });
    const { outbox, worker } = setup(PAGING, { page: page.handler });
    outbox.enqueue('page', '1');
    worker.start();
    await until(() => page.refs.length === 1, 'the page in flight');
    let stopped = false;
    const stopping = worker.stop().then(() => {
      stopped = true;
    });
    await until(() => outbox.claims.length >= 1, 'the loop to notice');
    expect(stopped).toBe(false);
    g.open();
    await stopping;
    expect(outbox.recorded).toHaveLength(1);
  });
});

describe('lanes', () => {
  it('deliver pages while every DM slot hangs on a receiver that does not answer', async () => {
    const clock = fakeClock(T0);
    const outbox = fakeOutbox(clock.now);
    const hung = gate();
    const dm = handler('slack', async () => {
      await hung.opened;
      return { ok: true, detail: 'DM posted' };
    });
    const page = handler('pagerduty', () => ({ ok: true, detail: 'trigger event accepted' }));
    const delivery = createDelivery([PAGING, { ...DMS, concurrency: 1 }], {
      store: outbox.store,
      handlers: { page: page.handler, dm: dm.handler },
      log: createLogger('silent'),
      metrics: createMetrics(outbox.store as never, clock.now),
      now: clock.now,
      pollIntervalMs: 3_600_000,
      maxBackoffMs: 60_000,
      leaseMs: 30_000,
    });
    for (const ref of ['1', '2']) outbox.enqueue('dm', ref);
    delivery.start();
    try {
      await until(() => dm.refs.length === 1, 'the DM lane full');
      for (const ref of ['10', '11', '12']) outbox.enqueue('page', ref);
      delivery.kick();
      await until(() => page.refs.length === 3, 'every page delivered');
      expect(dm.refs).toEqual(['1']);
      expect(outbox.rows.map((r) => r.kind)).toEqual(['dm', 'dm']);
    } finally {
      hung.open();
      await delivery.stop();
    }
    expect(outbox.rows).toEqual([expect.objectContaining({ kind: 'dm', ref: '2' })]);
  });
});
