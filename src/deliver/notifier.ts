import type { AttemptOutcome, OutboxStore, PageWithMembers } from '../store/store.js';

/** A request made earlier in the same attempt (an event PagerDuty refused before a smaller one went out). */
export interface EarlierRequest {
  outcome: AttemptOutcome;
  detail: string;
  at: number;
  durationMs: number;
}

/**
 * What one delivery attempt came to. Like Alertmanager's notify.Notifier (`Notify → (retry bool, err)`), a
 * failure says whether trying again can help; `retryAfterMs` carries a server's own hint (Retry-After).
 */
export type DeliveryResult = (
  | { ok: true }
  | {
      ok: false;
      retry: boolean;
      retryAfterMs?: number;
      /** Retry no later than this (epoch ms), whatever the backoff says: a deadline such as the author fallback. */
      retryBy?: number;
      /** Nothing failed: the delivery waits for another one first (a comment for its page's link). Logged at debug. */
      waiting?: boolean;
    }
) & {
  detail: string;
  /** Delivery state to remember for the next attempt (an incident id, "fell back to on-call"), even on failure. */
  delivered?: Record<string, string>;
  /** Requests this attempt made before the one `detail` describes, oldest first: each is recorded too. */
  earlier?: EarlierRequest[];
};

/** Delivers one kind of outbox row, named by its ref (a page id, a deploy id). */
export interface OutboxHandler {
  readonly channel: string;
  handle(ref: string): Promise<DeliveryResult>;
}

/** Brings one page to the state its members call for: opened (or updated) while any fires, resolved after. */
export interface PageNotifier {
  /** Names the integration in delivery records and metrics. */
  readonly channel: string;
  deliver(page: PageWithMembers): Promise<DeliveryResult>;
}

/** Delivers page rows: loads the page with its members and hands it to the notifier. */
export function pageHandler(store: Pick<OutboxStore, 'pageWithMembers'>, notifier: PageNotifier): OutboxHandler {
  return {
    channel: notifier.channel,
    async handle(ref) {
      const page = await store.pageWithMembers(Number(ref));
      if (!page) return { ok: false, retry: false, detail: `page ${ref} does not exist` };
      return notifier.deliver(page);
    },
  };
}
