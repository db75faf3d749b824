import { describe, expect, it } from 'vitest';
import { createPeopleDirectory, type VendorAnswer } from '../../src/channels/people.js';
import type { Person } from '../../src/core/types.js';
import { fakeClock } from '../support/harness.js';

// The one people directory every channel finds a person's user with (PagerDuty's, Slack's): the people section
// first, else the vendor's lookup; an answer, found or not, is kept for the TTL; a failure is not kept.

const HOUR = 3_600_000;
const ALICE: Person = {
  email: 'alice@example.com',
  emails: ['a@old.example.com'],
  logins: [],
  pagerdutyUserId: 'PALICE',
};

function directory(answers: Record<string, VendorAnswer>) {
  const clock = fakeClock('2026-11-26T11:20:00Z');
  const asked: string[] = [];
  const userOf = createPeopleDirectory({
    vendor: 'PagerDuty',
    configuredId: (p) => p.pagerdutyUserId,
    people: [ALICE],
    ttlMs: HOUR,
    now: clock.now,
    async lookup(email) {
      asked.push(email);
      return answers[email.toLowerCase()] ?? { found: false };
    },
  });
  return { userOf, asked, clock };
}

describe('the people directory', () => {
  it.each([
    ['a person of the people section with an id: no lookup', 'alice@example.com', { found: true, userId: 'PALICE' }, 0],
    ['…by any of their emails', 'a@old.example.com', { found: true, userId: 'PALICE' }, 0],
    ['anyone else: the vendor finds them', 'bob@example.com', { found: true, userId: 'PBOB' }, 1],
    [
      'nobody at the vendor: said so, for good',
      'dave@example.com',
      { found: false, retry: false, detail: 'no PagerDuty user has the email dave@example.com' },
      1,
    ],
    [
      'a lookup that failed and may pass: retried, with the server’s hint',
      'carol@example.com',
      { found: false, retry: true, detail: 'PagerDuty user lookup failed: HTTP 429', retryAfterMs: 30_000 },
      1,
    ],
    [
      'a lookup refused for good (a revoked token): not retried',
      'erin@example.com',
      { found: false, retry: false, detail: 'PagerDuty user lookup failed: HTTP 401' },
      1,
    ],
  ])('%s', async (_intent, email, expected, lookups) => {
    const { userOf, asked } = directory({
      'bob@example.com': { found: true, userId: 'PBOB' },
      'carol@example.com': {
        failed: true,
        retry: true,
        detail: 'PagerDuty user lookup failed: HTTP 429',
        retryAfterMs: 30_000,
      },
      'erin@example.com': { failed: true, retry: false, detail: 'PagerDuty user lookup failed: HTTP 401' },
    });
    expect(await userOf(email)).toEqual(expected);
    expect(asked).toHaveLength(lookups);
  });

  it('keeps an answer for the TTL, whatever the case of the email, then asks again', async () => {
    const { userOf, asked, clock } = directory({ 'bob@example.com': { found: true, userId: 'PBOB' } });
    await userOf('bob@example.com');
    expect(await userOf('Bob@Example.com')).toEqual({ found: true, userId: 'PBOB' });
    expect(asked).toEqual(['bob@example.com']);
    clock.advance(HOUR);
    await userOf('bob@example.com');
    expect(asked).toEqual(['bob@example.com', 'bob@example.com']);
  });

  it('keeps a miss too, and says it was kept', async () => {
    const { userOf, asked } = directory({});
    await userOf('dave@example.com');
    expect(await userOf('dave@example.com')).toEqual({
      found: false,
      retry: false,
      detail: 'no PagerDuty user has the email dave@example.com (cached)',
    });
    expect(asked).toHaveLength(1);
  });

  it('does not keep a failure: the next delivery asks again, and finds the person once the vendor answers', async () => {
    const answers: Record<string, VendorAnswer> = {
      'bob@example.com': { failed: true, retry: true, detail: 'PagerDuty user lookup failed: timeout' },
    };
    const { userOf, asked } = directory(answers);
    expect((await userOf('bob@example.com')).found).toBe(false);
    answers['bob@example.com'] = { found: true, userId: 'PBOB' };
    expect(await userOf('bob@example.com')).toEqual({ found: true, userId: 'PBOB' });
    expect(asked).toHaveLength(2);
  });
});
