import type { Person } from '../../core/types.js';
import { createPeopleDirectory, type PeopleDirectory } from '../people.js';
import type { PagerDutyClient } from './client.js';

/**
 * A person's PagerDuty user: the people section first, else GET /users?query=<email> with an exact,
 * case-insensitive match on the returned email (the query is a fuzzy name filter; PagerDuty's own pdpyras
 * filters client-side the same way).
 */
export function createUserDirectory(opts: {
  client: PagerDutyClient;
  people: readonly Person[];
  ttlMs: number;
  now: () => number;
}): PeopleDirectory {
  return createPeopleDirectory({
    vendor: 'PagerDuty',
    configuredId: (person) => person.pagerdutyUserId,
    people: opts.people,
    ttlMs: opts.ttlMs,
    now: opts.now,
    async lookup(email) {
      const res = await opts.client.findUsers(email);
      if (!res.ok) {
        const detail = `PagerDuty user lookup failed: ${res.detail}`;
        return res.retryAfterMs === undefined
          ? { failed: true, retry: res.retry, detail }
          : { failed: true, retry: res.retry, detail, retryAfterMs: res.retryAfterMs };
      }
      const match = (res.data.users ?? []).find((u) => u.email?.toLowerCase() === email.toLowerCase());
      return match ? { found: true, userId: match.id } : { found: false };
    },
  });
}
