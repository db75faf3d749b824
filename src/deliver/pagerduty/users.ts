import { findPerson } from '../../core/people.js';
import type { Person } from '../../core/types.js';
import type { HttpOutcome } from '../http-outcome.js';
import type { PagerDutyClient } from './client.js';

export type UserLookup =
  | { found: true; userId: string; source: 'config' | 'pagerduty' | 'cache' }
  | { found: false; retry: false; detail: string }
  | { found: false; retry: true; detail: string; retryAfterMs?: number };

/**
 * Finds a person's PagerDuty user: the people section first, else GET /users?query=<email> with an exact,
 * case-insensitive match on the returned email (the query is a fuzzy name filter; PagerDuty's own pdpyras
 * filters client-side the same way). Answers, found or not, are cached for `ttlMs`; failures are not.
 */
export function createUserDirectory(opts: {
  client: PagerDutyClient;
  people: readonly Person[];
  ttlMs: number;
  now: () => number;
}) {
  const cache = new Map<string, { userId: string | undefined; until: number }>();

  return async function pagerdutyUser(email: string): Promise<UserLookup> {
    const configured = findPerson({ email }, opts.people)?.pagerdutyUserId;
    if (configured) return { found: true, userId: configured, source: 'config' };
    const key = email.toLowerCase();
    const hit = cache.get(key);
    if (hit && hit.until > opts.now()) {
      return hit.userId
        ? { found: true, userId: hit.userId, source: 'cache' }
        : { found: false, retry: false, detail: `no PagerDuty user has the email ${email} (cached)` };
    }
    const res: HttpOutcome<{ users: { id: string; email: string }[] }> = await opts.client.findUsers(email);
    if (!res.ok) {
      const failure = {
        found: false as const,
        retry: res.retry,
        detail: `PagerDuty user lookup failed: ${res.detail}`,
      };
      return res.retry && res.retryAfterMs !== undefined
        ? { ...failure, retry: true, retryAfterMs: res.retryAfterMs }
        : failure;
    }
    const match = (res.data.users ?? []).find((u) => u.email?.toLowerCase() === key);
    cache.set(key, { userId: match?.id, until: opts.now() + opts.ttlMs });
    return match
      ? { found: true, userId: match.id, source: 'pagerduty' }
      : { found: false, retry: false, detail: `no PagerDuty user has the email ${email}` };
  };
}

export type UserDirectory = ReturnType<typeof createUserDirectory>;
