// The one place that turns an HTTP exchange into "delivered", "try again" or "give up", as Alertmanager's
// notify/util.go Retrier does: 2xx ok, 429 and 5xx retry, any other 4xx permanent, and a network error or a
// timeout retry (the request may not have arrived; the receiver's dedup key makes a second one harmless).

export type HttpOutcome<T> =
  | { ok: true; status: number; data: T }
  | {
      ok: false;
      retry: boolean;
      /** The HTTP status, when there was a response. */
      status?: number;
      /** Short and safe to log and store: never carries a token. */
      detail: string;
      /** The server's own "come back after" hint, from Retry-After or ratelimit-reset. */
      retryAfterMs?: number;
      /** The parsed error body, for callers that look at a vendor error code. */
      data?: unknown;
    };

/** A short label for metrics: timeout, network, http_429, http_5xx, http_4xx. */
export function failureReason(outcome: { status?: number; detail: string }): string {
  if (outcome.status === undefined) return outcome.detail.startsWith('timeout') ? 'timeout' : 'network';
  if (outcome.status === 429) return 'http_429';
  return outcome.status >= 500 ? 'http_5xx' : 'http_4xx';
}

/** A failure's "come back after" hint, as a delivery result carries it. */
export function retryHint(res: HttpOutcome<unknown>): { retryAfterMs?: number } {
  return !res.ok && res.retryAfterMs !== undefined ? { retryAfterMs: res.retryAfterMs } : {};
}

export function classifyResponse<T>(
  status: number,
  data: unknown,
  headers: { get(name: string): string | null },
  now: number,
): HttpOutcome<T> {
  if (status >= 200 && status < 300) return { ok: true, status, data: data as T };
  const retry = status === 429 || status >= 500;
  const outcome: HttpOutcome<T> = { ok: false, retry, status, detail: `HTTP ${status}${errorText(data)}`, data };
  const hint = retryAfterMs(headers, now);
  if (retry && hint !== undefined) outcome.retryAfterMs = hint;
  return outcome;
}

export function classifyError<T>(err: unknown, timeoutMs: number): HttpOutcome<T> {
  const name = (err as { name?: string }).name;
  const type = (err as { type?: string }).type;
  if (name === 'AbortError' || name === 'TimeoutError' || type === 'request-timeout') {
    return { ok: false, retry: true, detail: `timeout: no answer within ${timeoutMs} ms` };
  }
  const message = err instanceof Error ? err.message : 'unreadable response';
  return { ok: false, retry: true, detail: `network: ${message.slice(0, 200)}` };
}

/**
 * Retry-After (seconds or an HTTP date, RFC 9110) or PagerDuty's ratelimit-reset (seconds until the window
 * resets, https://developer.pagerduty.com/docs/rest-api-rate-limits).
 */
export function retryAfterMs(headers: { get(name: string): string | null }, now: number): number | undefined {
  const reset = headers.get('ratelimit-reset');
  if (reset !== null && /^\d+(\.\d+)?$/.test(reset.trim())) return Number(reset) * 1000;
  const after = headers.get('retry-after');
  if (after === null) return undefined;
  if (/^\d+$/.test(after.trim())) return Number(after) * 1000;
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** PagerDuty's error shapes: Events {status, message, errors[]}, REST {error: {message, code, errors[]}}. */
function errorText(data: unknown): string {
  if (!data || typeof data !== 'object') return '';
  const d = data as {
    message?: unknown;
    errors?: unknown;
    error?: { message?: unknown; code?: unknown; errors?: unknown };
  };
  const parts = [
    d.error?.code,
    d.error?.message ?? d.message,
    ...(Array.isArray(d.error?.errors) ? d.error.errors : []),
    ...(Array.isArray(d.errors) ? d.errors : []),
  ].filter((p) => typeof p === 'string' || typeof p === 'number');
  return parts.length > 0 ? `: ${parts.join('; ').slice(0, 300)}` : '';
}
