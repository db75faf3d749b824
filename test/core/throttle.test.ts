import { describe, expect, it } from 'vitest';
import { throttle } from '../../src/core/throttle.js';

const MIN = 60_000;
const T0 = Date.parse('2026-11-26T11:00:00Z');

describe('throttle', () => {
  it.each([
    {
      intent: 'the first occurrence of a key writes its line',
      current: undefined,
      now: T0,
      want: { write: true, held: 0, next: { writtenAt: T0, held: 0 } },
    },
    {
      intent: 'another within the interval is held back and counted',
      current: { writtenAt: T0, held: 2 },
      now: T0 + MIN - 1,
      want: { write: false, held: 3, next: { writtenAt: T0, held: 3 } },
    },
    {
      intent: 'the first after the interval writes, saying how many were held back',
      current: { writtenAt: T0, held: 3 },
      now: T0 + MIN,
      want: { write: true, held: 3, next: { writtenAt: T0 + MIN, held: 0 } },
    },
    {
      intent: 'a clock that went backwards holds it back rather than writing twice',
      current: { writtenAt: T0, held: 0 },
      now: T0 - 5000,
      want: { write: false, held: 1, next: { writtenAt: T0, held: 1 } },
    },
  ])('$intent', ({ current, now, want }) => {
    expect(throttle(current, now, MIN)).toEqual(want);
  });
});
