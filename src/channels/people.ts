import { findPerson } from '../core/people.js';
import type { Person } from '../core/types.js';

// Who a person is at a vendor (their PagerDuty user, their Slack user), found by email the same way for every
// channel: the people section first, else the vendor's own lookup, each answer cached for a while. A miss is an
// answer too ("no such user") and is cached like a hit; a failure is not, so the next delivery asks again.

/** What a vendor's lookup by email answered. */
export type VendorAnswer =
  | { found: true; userId: string }
  /** The vendor has no user with this email. */
  | { found: false }
  /** The lookup itself failed: a timeout, a 5xx, a revoked token. */
  | { failed: true; retry: boolean; detail: string; retryAfterMs?: number };

export type PersonLookup =
  | { found: true; userId: string }
  | { found: false; retry: false; detail: string }
  | { found: false; retry: true; detail: string; retryAfterMs?: number };

export interface PeopleDirectoryOptions {
  /** The vendor's name, as a miss is told: "no PagerDuty user has the email …". */
  vendor: string;
  /** The person's user id at this vendor, when the people section gives one. */
  configuredId: (person: Person) => string | undefined;
  /** The vendor's own lookup by email. */
  lookup: (email: string) => Promise<VendorAnswer>;
  people: readonly Person[];
  /** How long an answer, found or not, is kept. */
  ttlMs: number;
  now: () => number;
}

/** A person's user at one vendor, by email: the people section, else the vendor's lookup, cached. */
export type PeopleDirectory = (email: string) => Promise<PersonLookup>;

export function createPeopleDirectory(opts: PeopleDirectoryOptions): PeopleDirectory {
  const cache = new Map<string, { userId: string | undefined; until: number }>();
  const miss = (email: string) => `no ${opts.vendor} user has the email ${email}`;

  return async function userOf(email) {
    const person = findPerson({ email }, opts.people);
    const configured = person && opts.configuredId(person);
    if (configured) return { found: true, userId: configured };
    const key = email.toLowerCase();
    const hit = cache.get(key);
    if (hit && hit.until > opts.now()) {
      return hit.userId
        ? { found: true, userId: hit.userId }
        : { found: false, retry: false, detail: `${miss(email)} (cached)` };
    }
    const answer = await opts.lookup(email);
    if ('failed' in answer) {
      if (!answer.retry) return { found: false, retry: false, detail: answer.detail };
      return answer.retryAfterMs === undefined
        ? { found: false, retry: true, detail: answer.detail }
        : { found: false, retry: true, detail: answer.detail, retryAfterMs: answer.retryAfterMs };
    }
    const userId = answer.found ? answer.userId : undefined;
    cache.set(key, { userId, until: opts.now() + opts.ttlMs });
    return userId ? { found: true, userId } : { found: false, retry: false, detail: miss(email) };
  };
}
