import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../../src/deliver/worker.js';

// The retry delay of a failed delivery: exponential, capped, with equal jitter (half the ceiling fixed, half
// random), and a server's Retry-After honoured when longer.

const MAX = 60_000;

describe('the delay before a failed delivery is tried again', () => {
  it.each<[string, number, number, number | undefined, number]>([
    ['the first retry waits at least half a second, with the random half at its lowest', 0, 0, undefined, 500],
    ['the first retry waits at most a second, with the random half at its highest', 0, 1, undefined, 1000],
    ['each failure doubles the ceiling: the fourth retry waits between 4 and 8 s', 3, 0.5, undefined, 6000],
    ['the ceiling stops at the configured cap', 12, 0, undefined, MAX / 2],
    ['a very long run of failures stays within the cap', 1000, 1, undefined, MAX],
    ["a server's Retry-After wins when it is longer", 0, 0, 30_000, 30_000],
    ["a server's Retry-After shorter than the backoff does not shorten it", 5, 0, 1000, 16_000],
    ["a server's Retry-After is honoured up to ten times the cap", 0, 0, 24 * 3600_000, MAX * 10],
  ])('%s', (_intent, attempts, random, retryAfterMs, expected) => {
    expect(retryDelayMs(attempts, MAX, () => random, retryAfterMs)).toBe(expected);
  });
});
