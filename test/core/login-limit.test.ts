import { describe, expect, it } from 'vitest';
import { clientKey, type FailureBurst, loginAllowed, withFailure, withRefusal } from '../../src/core/login-limit.js';

const MIN = 60_000;
const LIMIT = { maxFailures: 3, windowMs: 15 * MIN };
const T0 = Date.parse('2026-11-26T11:00:00Z');
const burst = (failures: number, refused = 0, firstAt = T0): FailureBurst => ({
  firstAt,
  lastAt: firstAt + MIN,
  failures,
  refused,
});

describe('loginAllowed', () => {
  it.each([
    { intent: 'a client with no failures may try', b: undefined, now: T0, ok: true },
    { intent: 'a client under its budget may try', b: burst(2), now: T0 + MIN, ok: true },
    { intent: 'a client that spent its budget waits until its window ends', b: burst(3), now: T0 + 5 * MIN, ok: false },
    { intent: 'refusals do not end the wait early', b: burst(3, 500), now: T0 + 14 * MIN, ok: false },
    { intent: 'once the window has passed it may try again', b: burst(3, 500), now: T0 + 15 * MIN, ok: true },
  ])('$intent', ({ b, now, ok }) => {
    expect(loginAllowed(b, now, LIMIT).ok).toBe(ok);
  });

  it('says how long until the window ends', () => {
    expect(loginAllowed(burst(3), T0 + 5 * MIN, LIMIT)).toEqual({ ok: false, retryAfterMs: 10 * MIN });
  });
});

describe('withFailure and withRefusal', () => {
  it.each([
    {
      intent: 'the first failure opens a burst',
      b: undefined,
      now: T0,
      want: { firstAt: T0, lastAt: T0, failures: 1, refused: 0 },
    },
    {
      intent: 'a failure inside the window counts in the same burst',
      b: burst(1),
      now: T0 + 2 * MIN,
      want: { firstAt: T0, lastAt: T0 + 2 * MIN, failures: 2, refused: 0 },
    },
    {
      intent: 'a failure after the window opens a new burst',
      b: burst(3, 7),
      now: T0 + 20 * MIN,
      want: { firstAt: T0 + 20 * MIN, lastAt: T0 + 20 * MIN, failures: 1, refused: 0 },
    },
  ])('$intent', ({ b, now, want }) => {
    expect(withFailure(b, now, LIMIT)).toEqual(want);
  });

  it('a refusal is counted and moves the end of the burst', () => {
    expect(withRefusal(burst(3), T0 + 4 * MIN)).toEqual({ firstAt: T0, lastAt: T0 + 4 * MIN, failures: 3, refused: 1 });
  });
});

describe('clientKey', () => {
  it.each([
    { intent: 'an IPv4 address is itself', address: '203.0.113.7', key: '203.0.113.7' },
    { intent: 'an IPv4 address in IPv6 form is the IPv4 address', address: '::ffff:203.0.113.7', key: '203.0.113.7' },
    { intent: 'an IPv6 address counts by its /64', address: '2001:db8:1:2:aaaa::1', key: '2001:db8:1:2::/64' },
    {
      intent: 'another address of the same /64 is the same client',
      address: '2001:db8:1:2:ffff:0:0:9',
      key: '2001:db8:1:2::/64',
    },
    { intent: 'zeros compressed into the /64 are spelt out', address: '2001:db8::5', key: '2001:db8:0:0::/64' },
    {
      intent: 'leading zeros and case do not make another client',
      address: '2001:0DB8:0001:0002::1',
      key: '2001:db8:1:2::/64',
    },
    { intent: 'loopback', address: '::1', key: '0:0:0:0::/64' },
    { intent: 'a zone index names no other host', address: 'fe80::1%eth0', key: 'fe80:0:0:0::/64' },
  ])('$intent', ({ address, key }) => {
    expect(clientKey(address)).toBe(key);
  });
});
