import type { Logger } from 'pino';
import {
  burstOver,
  clientKey,
  type FailureBurst,
  type LoginLimit,
  loginAllowed,
  withFailure,
  withRefusal,
} from '../core/login-limit.js';

// The login form's rate limit (core/login-limit.ts decides), kept in memory: each instance counts the failures
// it sees. Failed logins are not logged one by one (a guessing script makes thousands a second): each client's
// burst is logged once, as one summary line, when its window has passed.

/** Beyond this many clients with a burst under way, the oldest burst is summarised and forgotten early. */
const MAX_CLIENTS = 10_000;
const SWEEP_EVERY_MS = 1000;

export interface LoginLimiter {
  /** Before the token is checked: undefined when the client may try, else the ms until it may. */
  refusal(address: string, now: number): number | undefined;
  /** After a wrong token. */
  failed(address: string, now: number): void;
  /** Logs and forgets the bursts whose window has passed (also done, at most once a second, on every login). */
  sweep(now: number): void;
}

export function createLoginLimiter(limit: LoginLimit, log: Logger): LoginLimiter {
  const bursts = new Map<string, FailureBurst>();
  let sweptAt = Number.NEGATIVE_INFINITY;

  const summarise = (client: string, b: FailureBurst) => {
    const line = {
      event: 'login_failures',
      client,
      failures: b.failures,
      refused: b.refused,
      from: new Date(b.firstAt).toISOString(),
      to: new Date(b.lastAt).toISOString(),
      seconds: Math.round((b.lastAt - b.firstAt) / 1000),
    };
    const spent = b.failures >= limit.maxFailures;
    const text = spent
      ? 'timeline login: wrong tokens from one client, which was refused once it had used up its attempts'
      : 'timeline login: wrong tokens from one client';
    if (spent) log.warn(line, text);
    else log.info(line, text);
  };

  function sweep(now: number) {
    sweptAt = now;
    for (const [client, b] of bursts) {
      if (!burstOver(b, now, limit)) continue;
      summarise(client, b);
      bursts.delete(client);
    }
  }

  const sweepIfDue = (now: number) => {
    if (now - sweptAt >= SWEEP_EVERY_MS) sweep(now);
  };

  return {
    refusal(address, now) {
      sweepIfDue(now);
      const client = clientKey(address);
      const burst = bursts.get(client);
      const verdict = loginAllowed(burst, now, limit);
      if (verdict.ok || !burst) return undefined;
      bursts.set(client, withRefusal(burst, now));
      return verdict.retryAfterMs;
    },
    failed(address, now) {
      sweepIfDue(now);
      const client = clientKey(address);
      const burst = bursts.get(client);
      if (burst && burstOver(burst, now, limit)) summarise(client, burst);
      bursts.delete(client); // re-inserted last: the map stays ordered by latest failure
      bursts.set(client, withFailure(burst, now, limit));
      if (bursts.size > MAX_CLIENTS) {
        const [oldest, b] = bursts.entries().next().value as [string, FailureBurst];
        summarise(oldest, b);
        bursts.delete(oldest);
      }
    },
    sweep,
  };
}
