import { afterEach, describe, expect, it } from 'vitest';
import { createDelivery, type Delivery } from '../../src/deliver/worker.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import type { Claim, OutboxKind, OutboxStore } from '../../src/store/store.js';
import { eventually } from '../support/wait.js';

// Another replica's wake-up names the kinds of rows it queued: only the lanes that take them look for work, so
// three replicas do not all run every lane's claim at every commit.

describe('lanes woken by kind', () => {
  let delivery: Delivery | undefined;
  afterEach(async () => {
    await delivery?.stop();
  });

  it('kicks the lanes that take one of the kinds named, and every lane when none is named', async () => {
    const claims: string[] = [];
    const store = {
      async claimDue(claim: Claim) {
        claims.push((claim.kinds ?? []).join('+'));
        return [];
      },
      async nextDueAt() {
        return undefined;
      },
    } as unknown as OutboxStore;
    const metrics = createMetrics(
      {
        hygieneFacts: async () => ({ facts: { events: [], episodes: [], feedbackRecorded: true } }),
        outboxStats: async () => ({ depth: 0, oldestUndeliveredAgeMs: 0 }),
      },
      Date.now,
    );
    const lanes = [
      { name: 'paging', kinds: ['page', 'change'] as OutboxKind[], concurrency: 8 },
      { name: 'dm', kinds: ['dm'] as OutboxKind[], concurrency: 4 },
    ];
    delivery = createDelivery(lanes, {
      store,
      handlers: {},
      log: createLogger('silent'),
      metrics,
      now: Date.now,
      // Never by the clock: only a kick makes a lane look again.
      pollIntervalMs: 3_600_000,
      maxBackoffMs: 1000,
      leaseMs: 30_000,
    });

    delivery.start();
    await eventually(() => claims.length === 2, 'each lane looking once at start');
    claims.length = 0;

    delivery.kick(['dm']);
    await eventually(() => claims.length === 1, 'the DM lane looking');
    delivery.kick(['change']);
    await eventually(() => claims.length === 2, 'the page lane looking');
    expect(claims).toEqual(['dm', 'page+change']);

    delivery.kick();
    await eventually(() => claims.length === 4, 'both lanes looking');
    expect(claims.slice(2).sort()).toEqual(['dm', 'page+change']);
  });
});
