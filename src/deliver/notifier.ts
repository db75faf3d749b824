import type { PageWithMembers } from '../store/store.js';

/**
 * What one delivery attempt came to. Like Alertmanager's notify.Notifier (`Notify → (retry bool, err)`), a
 * failure says whether trying again can help; `retryAfterMs` carries a server's own hint (Retry-After).
 */
export type DeliveryResult =
  | { ok: true; detail: string; delivered?: Record<string, string> }
  | { ok: false; retry: boolean; detail: string; retryAfterMs?: number };

/** Brings one page to the state its members call for: opened (or updated) while any fires, resolved after. */
export interface PageNotifier {
  /** Names the integration in delivery records and metrics. */
  readonly channel: string;
  deliver(page: PageWithMembers): Promise<DeliveryResult>;
}
