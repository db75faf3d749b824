import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { AttemptOutcome, AttemptRecord, ClaimedItem, OutboxKind, OutboxStore } from '../store/store.js';
import type { DeliveryResult, OutboxHandler } from './notifier.js';

/**
 * A lane of the outbox: the kinds of row one worker takes, and how many it delivers at once. Each lane has its
 * own worker, so a slow or failing receiver can only take the slots of its own lane.
 */
export interface Lane {
  name: string;
  kinds: readonly OutboxKind[];
  concurrency: number;
}

export interface WorkerOptions {
  store: OutboxStore;
  lane: Lane;
  /** Who delivers each kind of row; a kind with none is retried until one does. */
  handlers: Partial<Record<OutboxKind, OutboxHandler>>;
  log: Logger;
  metrics: Metrics;
  now: () => number;
  /** How often to look for due rows when nothing kicks the worker. */
  pollIntervalMs: number;
  /** Upper bound of the retry backoff. */
  maxBackoffMs: number;
  /**
   * How long a claimed row is this worker's: longer than one delivery attempt takes. A worker that dies (or hangs
   * past it) loses its rows to the next claim; deliveries are idempotent, so a takeover never pages twice.
   */
  leaseMs: number;
  /** Random source for jitter; injected so tests can pin it. */
  random?: () => number;
}

/** What the rest of the service sees of delivery: one worker, or several lanes driven together. */
export interface Delivery {
  start(): void;
  /** Delivers now what is due: every lane, or the lanes that take one of these kinds. */
  kick(kinds?: readonly OutboxKind[]): void;
  stop(): Promise<void>;
  drain(): Promise<void>;
}

/** One worker per lane, started, kicked, stopped and drained as one. */
export function createDelivery(lanes: readonly Lane[], options: Omit<WorkerOptions, 'lane'>): Delivery {
  const workers = lanes.map(
    (lane) => new OutboxWorker({ ...options, lane, log: options.log.child({ component: 'outbox', lane: lane.name }) }),
  );
  return {
    start: () => {
      for (const w of workers) w.start();
    },
    kick: (kinds) => {
      for (const w of workers) if (!kinds || w.takesAny(kinds)) w.kick();
    },
    stop: async () => {
      await Promise.all(workers.map((w) => w.stop()));
    },
    drain: async () => {
      await Promise.all(workers.map((w) => w.drain()));
    },
  };
}

/**
 * Drains the outbox. Rows are retired only after the attempt is recorded, so a crash at any point means the
 * row is delivered again after restart; the page's dedup key makes that second delivery harmless.
 */
export class OutboxWorker implements Delivery {
  private readonly inFlight = new Set<number>();
  /** Names this worker's claims, unique across replicas and restarts. */
  private readonly owner = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  private running = false;
  private wake: (() => void) | undefined;
  private kicked = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly opts: WorkerOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Whether this worker takes rows of one of these kinds. */
  takesAny(kinds: readonly OutboxKind[]): boolean {
    return kinds.some((k) => this.opts.lane.kinds.includes(k));
  }

  /** Called after a commit that enqueued work: deliver now instead of at the next poll. */
  kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  /** Stops taking new rows and waits for the deliveries in flight. */
  async stop(): Promise<void> {
    this.running = false;
    this.kick();
    await this.loop;
  }

  /** Runs one pass over the due rows and waits for them (tests drive delivery with it). */
  async drain(): Promise<void> {
    await Promise.all((await this.claim(1000)).map((i) => this.deliver(i)));
  }

  private claim(limit: number): Promise<ClaimedItem[]> {
    const { store, now, leaseMs, lane } = this.opts;
    return store.claimDue({ owner: this.owner, now: now(), limit, leaseMs, kinds: lane.kinds });
  }

  private async run(): Promise<void> {
    const pending = new Set<Promise<void>>();
    const limit = this.opts.lane.concurrency;
    while (this.running) {
      try {
        const free = limit - this.inFlight.size;
        for (const item of free > 0 ? await this.claim(free) : []) {
          const p = this.deliver(item).finally(() => {
            pending.delete(p);
            this.kick();
          });
          pending.add(p);
        }
      } catch (err) {
        this.opts.log.error({ err }, 'outbox: cannot read due rows; will try again');
      }
      await this.sleep();
    }
    await Promise.all(pending);
  }

  private async sleep(): Promise<void> {
    if (this.kicked) {
      this.kicked = false;
      return;
    }
    let delay = this.opts.pollIntervalMs;
    try {
      const next = await this.opts.store.nextDueAt(this.opts.lane.kinds);
      // A row due now is in flight or waiting for a free slot; a finishing delivery kicks the loop, so only a
      // row due later shortens the wait.
      if (next !== undefined && next > this.opts.now()) delay = Math.min(delay, next - this.opts.now());
    } catch {
      // The poll interval will do; the loop logs store failures.
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.wake?.(), delay);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        this.kicked = false;
        resolve();
      };
      if (this.kicked) this.wake();
    });
  }

  private async deliver(item: ClaimedItem): Promise<void> {
    const { store, log, metrics, now } = this.opts;
    const handler = this.opts.handlers[item.kind];
    const channel = handler?.channel ?? item.kind;
    this.inFlight.add(item.id);
    const started = now();
    try {
      const result = await this.attempt(item, handler);
      const outcome: AttemptOutcome = result.ok ? 'delivered' : result.retry ? 'retry' : 'failed';
      // One record per request: an event PagerDuty refused, then the smaller one that reached on-call.
      const earlier: AttemptRecord[] = (result.earlier ?? []).map((r) => ({ ...r, channel }));
      const last = earlier[earlier.length - 1];
      const at = last ? last.at + last.durationMs : started;
      const requests = [...earlier, { at, channel, outcome, detail: result.detail, durationMs: now() - at }];
      metrics.deliveryAttempts.inc({ channel, outcome });
      const delivered = result.delivered ? { delivered: result.delivered } : {};
      const where = {
        outbox: item.id,
        kind: item.kind,
        ref: item.ref,
        attempt: item.attempts + 1,
        detail: result.detail,
      };
      if (!result.ok && result.retry) {
        let retryAt = Math.ceil(now() + this.backoff(item.attempts, result.retryAfterMs));
        if (result.retryBy !== undefined) retryAt = Math.min(retryAt, Math.max(result.retryBy, now()));
        if (result.waiting)
          log.debug({ ...where, retryAt: new Date(retryAt).toISOString() }, 'delivery waits; will retry');
        else log.warn({ ...where, retryAt: new Date(retryAt).toISOString() }, 'delivery failed; will retry');
        this.lost(await store.recordAttempt(item, requests, { retryAt, ...delivered }), where);
        return;
      }
      if (result.ok) metrics.timeToDeliver.observe({ channel }, (now() - item.createdAt) / 1000);
      else log.error(where, 'delivery failed permanently');
      this.lost(await store.recordAttempt(item, requests, delivered), where);
    } catch (err) {
      // Recording failed (the database is unwritable): the claim stays until its lease ends, which holds the row
      // back instead of sending it again in a loop; then it is tried again.
      log.error({ err, outbox: item.id }, 'outbox: cannot record a delivery attempt');
    } finally {
      this.inFlight.delete(item.id);
    }
  }

  /** A claim that expired under a slow attempt: another worker holds the row now, and its outcome stands. */
  private lost(result: { recorded: boolean }, where: Record<string, unknown>): void {
    if (!result.recorded)
      this.opts.log.warn(where, 'outbox: the claim on this row was lost meanwhile; outcome not applied');
  }

  private async attempt(item: ClaimedItem, handler: OutboxHandler | undefined): Promise<DeliveryResult> {
    // A row nobody can deliver now (its integration was configured off) stays visible instead of vanishing.
    if (!handler) return { ok: false, retry: true, detail: `no integration delivers ${item.kind} rows now` };
    try {
      return await handler.handle(item.ref);
    } catch (err) {
      // A bug or an unexpected throw in a notifier must not lose the page: treat it as retryable.
      return {
        ok: false,
        retry: true,
        detail: `unexpected error: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
  }

  private backoff(attempts: number, retryAfterMs?: number): number {
    return retryDelayMs(attempts, this.opts.maxBackoffMs, this.opts.random ?? Math.random, retryAfterMs);
  }
}

/**
 * How long to wait before the next try of a row that failed `attempts` times before this failure: exponential
 * from 1 s, doubled per attempt and capped at maxBackoffMs, with equal jitter: half the ceiling plus a random
 * half. The fixed half means a receiver that is down is never retried at once; the random half spreads rows that
 * failed together. A server's own hint (Retry-After) wins when it is longer, up to ten times the cap.
 */
export function retryDelayMs(attempts: number, maxBackoffMs: number, random: () => number, retryAfterMs = 0): number {
  const ceiling = Math.min(maxBackoffMs, 1000 * 2 ** Math.min(attempts, 20));
  const jittered = ceiling / 2 + (random() * ceiling) / 2;
  return Math.max(jittered, Math.min(retryAfterMs, maxBackoffMs * 10));
}
