import type { Target } from './types.js';

// Where the paging of one alert stands: for each page it is on, whether the page reached its channel, is being
// retried (and why), failed for good, or waits for its first attempt. A pure function of what the store keeps
// of the page's delivery attempts and of its outbox row.

export type DeliveryState = 'queued' | 'retrying' | 'delivered' | 'failed';

/** What the store keeps of one page's delivery. */
export interface PageAttempts {
  target: Target;
  /** The page's latest delivery attempt; `attempt` counts within the outbox row that made it. */
  latest?: { outcome: 'delivered' | 'retry' | 'failed'; detail: string; at: number; attempt: number; channel: string };
  /** When an attempt last delivered the page. */
  deliveredAt?: number;
  /** A delivery of the page still waits in the outbox: due at `dueAt`. */
  waiting?: { dueAt: number };
}

export interface PageDelivery {
  target: Target;
  state: DeliveryState;
  /** The latest attempt: when, through which channel, its number, and what went wrong when it did not deliver. */
  attempt?: { at: number; channel: string; number: number; error?: string };
  deliveredAt?: number;
  /** When the next attempt is due, while one waits. */
  nextAt?: number;
}

export interface AlertDelivery {
  /** The state of the page that is worst off; `none` when the alert is on no page (it resolved before one opened). */
  state: DeliveryState | 'none';
  pages: PageDelivery[];
}

export function pageDelivery(p: PageAttempts): PageDelivery {
  const { latest, waiting } = p;
  // A row waits after a retryable failure, and also when the page changed again (a resolve, a new member) and its
  // next delivery was queued: only the first is retrying.
  const state: DeliveryState =
    latest?.outcome === 'retry'
      ? 'retrying'
      : waiting
        ? 'queued'
        : latest?.outcome === 'failed'
          ? 'failed'
          : latest?.outcome === 'delivered'
            ? 'delivered'
            : 'queued';
  const out: PageDelivery = { target: p.target, state };
  if (latest) {
    out.attempt = { at: latest.at, channel: latest.channel, number: latest.attempt };
    if (latest.outcome !== 'delivered') out.attempt.error = latest.detail;
  }
  if (p.deliveredAt !== undefined) out.deliveredAt = p.deliveredAt;
  if (waiting) out.nextAt = waiting.dueAt;
  return out;
}

/** Worst first: what someone looking at an alert needs to know about before anything else. */
const SEVERITY: readonly DeliveryState[] = ['failed', 'retrying', 'queued', 'delivered'];

export function alertDelivery(pages: readonly PageAttempts[]): AlertDelivery {
  const delivered = pages.map(pageDelivery);
  const worst = SEVERITY.find((s) => delivered.some((p) => p.state === s));
  return { state: worst ?? 'none', pages: delivered };
}
