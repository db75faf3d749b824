import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { OutboxItem, Store } from '../store/store.js';
import type { DeliveryResult, PageNotifier } from './notifier.js';

export interface WorkerOptions {
  store: Store;
  notifier: PageNotifier;
  log: Logger;
  metrics: Metrics;
  now: () => number;
  /** How often to look for due rows when nothing kicks the worker. */
  pollIntervalMs: number;
  /** Upper bound of the retry backoff. */
  maxBackoffMs: number;
  /** Deliveries in flight at once. */
  concurrency?: number;
  /** Random source for jitter; injected so tests can pin it. */
  random?: () => number;
}

/**
 * Drains the outbox. Rows are retired only after the attempt is recorded, so a crash at any point means the
 * row is delivered again after restart; the page's dedup key makes that second delivery harmless.
 */
export class OutboxWorker {
  private readonly inFlight = new Set<number>();
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

  /** Runs one pass over the due rows and waits for them: for tests and the drain at shutdown. */
  async drain(): Promise<void> {
    const due = await this.opts.store.dueOutbox(this.opts.now(), 1000);
    await Promise.all(due.filter((i) => !this.inFlight.has(i.id)).map((i) => this.deliver(i)));
  }

  private async run(): Promise<void> {
    const pending = new Set<Promise<void>>();
    const limit = this.opts.concurrency ?? 8;
    while (this.running) {
      try {
        const free = limit - this.inFlight.size;
        const due = free > 0 ? await this.opts.store.dueOutbox(this.opts.now(), free + this.inFlight.size) : [];
        for (const item of due.filter((i) => !this.inFlight.has(i.id)).slice(0, free)) {
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
      const next = await this.opts.store.nextDueAt();
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

  private async deliver(item: OutboxItem): Promise<void> {
    const { store, notifier, log, metrics, now } = this.opts;
    this.inFlight.add(item.id);
    const started = now();
    try {
      const result = await this.attempt(item);
      const attempt = {
        at: started,
        channel: notifier.channel,
        outcome: result.ok ? 'delivered' : result.retry ? 'retry' : 'failed',
        detail: result.detail,
        durationMs: now() - started,
      } as const;
      metrics.deliveryAttempts.inc({ channel: notifier.channel, outcome: attempt.outcome });
      if (!result.ok && result.retry) {
        const retryAt = now() + this.backoff(item.attempts, result.retryAfterMs);
        log.warn(
          {
            outbox: item.id,
            kind: item.kind,
            ref: item.ref,
            attempt: item.attempts + 1,
            detail: result.detail,
            retryAt,
          },
          'delivery failed; will retry',
        );
        await store.recordAttempt(item, attempt, { retryAt });
        return;
      }
      if (!result.ok)
        log.error(
          { outbox: item.id, kind: item.kind, ref: item.ref, detail: result.detail },
          'delivery failed permanently',
        );
      else metrics.timeToDeliver.observe({ channel: notifier.channel }, (now() - item.createdAt) / 1000);
      await store.recordAttempt(item, attempt, result.ok && result.delivered ? { delivered: result.delivered } : {});
    } catch (err) {
      // Recording failed (the database is unwritable): the row stays and is tried again by a later pass.
      log.error({ err, outbox: item.id }, 'outbox: cannot record a delivery attempt');
    } finally {
      this.inFlight.delete(item.id);
    }
  }

  private async attempt(item: OutboxItem): Promise<DeliveryResult> {
    try {
      const page = await this.opts.store.pageWithMembers(item.ref);
      if (!page) return { ok: false, retry: false, detail: `page ${item.ref} does not exist` };
      return await this.opts.notifier.deliver(page);
    } catch (err) {
      // A bug or an unexpected throw in a notifier must not lose the page: treat it as retryable.
      return { ok: false, retry: true, detail: `unexpected error: ${(err as Error).message}` };
    }
  }

  /** Exponential backoff from 1 s, doubled per attempt, capped, with full jitter; a server's hint wins if longer. */
  private backoff(attempts: number, retryAfterMs = 0): number {
    const random = this.opts.random ?? Math.random;
    const ceiling = Math.min(this.opts.maxBackoffMs, 1000 * 2 ** Math.min(attempts, 20));
    const jittered = ceiling / 2 + (random() * ceiling) / 2;
    return Math.max(jittered, Math.min(retryAfterMs, this.opts.maxBackoffMs * 10));
  }
}
