import type { Request } from 'express';
import type { Logger } from 'pino';
import { type Throttle, throttle } from '../core/throttle.js';

// Refused requests (401 and 403) at warn, so that a wrong token in Alertmanager's or a pipeline's config shows in
// the log, not only in a metric. A misconfigured sender retries for ever, so there is one line per client address
// and route per interval; `suppressed` counts the refusals of that key since its last line. Never the token itself: only the name of
// the configured token it matched, when it matched a read-only one.

/** Keys not refused again within this many intervals are forgotten. */
const KEEP_INTERVALS = 2;

export interface Refusal {
  status: 401 | 403;
  /** Why, in words: no token, a token that matches none, a read-only token on a route that writes. */
  reason: string;
  /** The configured token's name (a read-only token that tried to write). */
  tokenName?: string;
}

export type DeniedLog = (req: Request, refusal: Refusal) => void;

export function createDeniedLog(log: Logger, intervalMs: number, now: () => number): DeniedLog {
  const keys = new Map<string, Throttle>();
  let sweptAt = Number.NEGATIVE_INFINITY;

  return (req, refusal) => {
    const at = now();
    if (at - sweptAt >= intervalMs) {
      sweptAt = at;
      for (const [key, t] of keys) if (at - t.writtenAt >= KEEP_INTERVALS * intervalMs) keys.delete(key);
    }
    // Inside a route, the route's pattern; a path that matches none is one key, whatever the path.
    const route = req.route ? `${req.baseUrl}${req.route.path}` : 'unmatched';
    const client = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const key = `${client} ${route}`;
    const { write, held, next } = throttle(keys.get(key), at, intervalMs);
    keys.set(key, next);
    if (!write) return;
    log.warn(
      {
        event: 'request_refused',
        status: refusal.status,
        route,
        ...(route === 'unmatched' ? { path: req.path.slice(0, 200) } : {}),
        method: req.method,
        client,
        reason: refusal.reason,
        ...(refusal.tokenName === undefined ? {} : { tokenName: refusal.tokenName }),
        ...(held > 0 ? { suppressed: held } : {}),
      },
      `refused ${req.method} ${route} from ${client}: ${refusal.reason}`,
    );
  };
}
