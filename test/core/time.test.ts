import { describe, expect, it } from 'vitest';
import { canonicalInstant, clockUtc, durationMs, humanGap } from '../../src/core/time.js';

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;

describe('canonicalInstant', () => {
  it.each([
    {
      intent: 'nine fractional digits (Alertmanager nanoseconds) are kept',
      text: '2026-11-26T11:09:00.123456789Z',
      iso: '2026-11-26T11:09:00.123456789Z',
      ms: Date.parse('2026-11-26T11:09:00.123Z'),
    },
    {
      intent: 'no fraction is padded to nine zeros',
      text: '2026-11-26T11:09:00Z',
      iso: '2026-11-26T11:09:00.000000000Z',
      ms: Date.parse('2026-11-26T11:09:00Z'),
    },
    {
      intent: 'a short fraction is padded on the right',
      text: '2026-11-26T11:09:00.5Z',
      iso: '2026-11-26T11:09:00.500000000Z',
      ms: Date.parse('2026-11-26T11:09:00.500Z'),
    },
    {
      intent: '+01:00 is normalised to Z',
      text: '2026-11-26T12:09:00.25+01:00',
      iso: '2026-11-26T11:09:00.250000000Z',
      ms: Date.parse('2026-11-26T11:09:00.250Z'),
    },
    {
      intent: 'a negative offset moves the clock forward',
      text: '2026-11-26T00:30:00-05:30',
      iso: '2026-11-26T06:00:00.000000000Z',
      ms: Date.parse('2026-11-26T06:00:00Z'),
    },
    {
      intent: 'an offset can change the date',
      text: '2026-11-26T00:30:00+01:00',
      iso: '2026-11-25T23:30:00.000000000Z',
      ms: Date.parse('2026-11-25T23:30:00Z'),
    },
    {
      intent: 'lower-case t and z are RFC 3339 too',
      text: '2026-11-26t11:09:00z',
      iso: '2026-11-26T11:09:00.000000000Z',
      ms: Date.parse('2026-11-26T11:09:00Z'),
    },
    {
      intent: "Go's zero time (Alertmanager's endsAt while firing) is still an instant",
      text: '0001-01-01T00:00:00Z',
      iso: '0001-01-01T00:00:00.000000000Z',
      ms: Date.parse('0001-01-01T00:00:00Z'),
    },
  ])('$intent', ({ text, iso, ms }) => {
    expect(canonicalInstant(text)).toEqual({ iso, ms });
  });

  it.each([
    { intent: 'Z and +01:00', a: '2026-11-26T11:09:00.123456789Z', b: '2026-11-26T12:09:00.123456789+01:00' },
    { intent: 'three and nine fractional digits', a: '2026-11-26T11:09:00.120Z', b: '2026-11-26T11:09:00.120000000Z' },
    { intent: '-00:00 and Z', a: '2026-11-26T11:09:00-00:00', b: '2026-11-26T11:09:00Z' },
  ])('the same instant spelt two ways gives the same iso: $intent', ({ a, b }) => {
    const left = canonicalInstant(a);
    expect(left).toBeDefined();
    expect(canonicalInstant(b)).toEqual(left);
  });

  it('instants a nanosecond apart stay distinct although their milliseconds are equal', () => {
    const a = canonicalInstant('2026-11-26T11:09:00.123456789Z');
    const b = canonicalInstant('2026-11-26T11:09:00.123456788Z');
    expect(a?.ms).toBe(b?.ms);
    expect(a?.iso).not.toBe(b?.iso);
  });

  it.each([
    { intent: 'empty', text: '' },
    { intent: 'words', text: 'yesterday' },
    { intent: 'a date without a time', text: '2026-11-26' },
    { intent: 'no offset (local time is ambiguous)', text: '2026-11-26T11:09:00' },
    { intent: 'a space instead of T', text: '2026-11-26 11:09:00Z' },
    { intent: 'an offset without a colon', text: '2026-11-26T11:09:00+0100' },
    { intent: 'ten fractional digits', text: '2026-11-26T11:09:00.1234567891Z' },
    { intent: 'a dot without digits', text: '2026-11-26T11:09:00.Z' },
    { intent: 'February 30th', text: '2026-02-30T11:09:00Z' },
    { intent: 'minute 61', text: '2026-11-26T11:61:00Z' },
    { intent: 'surrounding whitespace', text: ' 2026-11-26T11:09:00Z ' },
    { intent: 'epoch milliseconds as text', text: '1795691340000' },
    { intent: 'offset minutes out of range', text: '2026-11-26T11:09:00+01:99' },
    { intent: 'offset hours out of range', text: '2026-11-26T11:09:00+25:00' },
    { intent: 'hour 24', text: '2026-11-26T24:00:00Z' },
  ])('garbage gives undefined: $intent', ({ text }) => {
    expect(canonicalInstant(text)).toBeUndefined();
  });
  it('agrees with Date on every day of four centuries, the leap days, offsets and fractions included', () => {
    // The reference: Date's own parser and formatter, which canonicalInstant counts without.
    const byDate = (text: string) => {
      const m = /^(.{19})(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(text);
      if (!m) throw new Error(text);
      const [, whole = '', fraction = '', offset = ''] = m;
      const local = Date.parse(`${whole}Z`);
      if (Number.isNaN(local) || new Date(local).toISOString().slice(0, 19) !== whole) return undefined;
      const offsetMs =
        offset === 'Z'
          ? 0
          : (offset.startsWith('-') ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4))) * 60_000;
      const nanos = fraction.padEnd(9, '0');
      const seconds = local - offsetMs;
      return {
        iso: `${new Date(seconds).toISOString().slice(0, 19)}.${nanos}Z`,
        ms: seconds + Number(nanos.slice(0, 3)),
      };
    };
    const offsets = ['Z', '+00:00', '+05:30', '-09:45', '+14:00', '-12:00'];
    let checked = 0;
    for (const year of [1, 2, 100, 1600, 1899, 1900, 1969, 1970, 2000, 2024, 2026, 2100, 2400, 9999]) {
      for (let month = 1; month <= 12; month++) {
        for (let day = 1; day <= 31; day++) {
          const date = `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
          const offset = offsets[(year + month + day) % offsets.length] as string;
          const time = `${String((day * 7) % 24).padStart(2, '0')}:${String((month * 13) % 60).padStart(2, '0')}:59`;
          const fraction = day % 3 === 0 ? '' : `.${String(day * 1234567).slice(0, 1 + (day % 9))}`;
          const text = `${date}T${time}${fraction}${offset}`;
          expect(canonicalInstant(text), text).toEqual(byDate(text));
          checked++;
        }
      }
    }
    expect(checked).toBe(14 * 12 * 31);
  });
});

describe('durationMs', () => {
  it.each([
    { text: 'PT1H', ms: HOUR },
    { text: 'PT2M', ms: 2 * MIN },
    { text: 'PT30M', ms: 30 * MIN },
    { text: 'PT1H30M', ms: 90 * MIN },
    { text: 'PT1S', ms: SEC },
    { text: 'PT1.5S', ms: 1500 },
    { text: 'PT0S', ms: 0 },
    { text: 'P1D', ms: 24 * HOUR },
  ])('$text is $ms ms', ({ text, ms }) => {
    expect(durationMs(text)).toBe(ms);
  });

  it.each([
    { intent: 'Go/Prometheus style', text: '1h' },
    { intent: 'a bare number', text: '60' },
    { intent: 'empty', text: '' },
    { intent: 'a negative component', text: 'PT-1M' },
    { intent: 'a negative duration', text: '-PT1M' },
    { intent: 'no T before hours', text: 'P1H' },
    { intent: 'words', text: 'an hour' },
  ])('not a usable duration: $intent ($text)', ({ text }) => {
    expect(durationMs(text)).toBeUndefined();
  });
});

describe('humanGap', () => {
  it.each([
    { intent: 'zero', ms: 0, text: '0 s' },
    { intent: 'seconds under a minute', ms: 40 * SEC, text: '40 s' },
    { intent: 'seconds are rounded', ms: 40 * SEC + 600, text: '41 s' },
    { intent: 'one minute', ms: MIN, text: '1 min' },
    { intent: 'the DESIGN example', ms: 7 * MIN, text: '7 min' },
    { intent: 'minutes are rounded down below the half', ms: 89_999, text: '1 min' },
    { intent: 'minutes are rounded up from the half', ms: 90 * SEC, text: '2 min' },
    { intent: '59 minutes', ms: 59 * MIN, text: '59 min' },
    { intent: 'a whole hour has no minutes part', ms: HOUR, text: '1 h' },
    { intent: 'just under an hour rounds to the hour', ms: HOUR - 1, text: '1 h' },
    { intent: 'hours and minutes', ms: 2 * HOUR + 5 * MIN, text: '2 h 5 min' },
    { intent: 'more than a day is still hours', ms: 26 * HOUR, text: '26 h' },
    { intent: 'just under a minute that rounds up reads as a minute, not 60 s', ms: 59_700, text: '1 min' },
    { intent: 'the sign is dropped (the sentence says before or after)', ms: -7 * MIN, text: '7 min' },
    { intent: 'negative seconds', ms: -40 * SEC, text: '40 s' },
  ])('$intent: $ms ms → "$text"', ({ ms, text }) => {
    expect(humanGap(ms)).toBe(text);
  });
});

describe('clockUtc', () => {
  it.each([
    { iso: '2026-11-26T11:02:00Z', text: '11:02 UTC' },
    { iso: '2026-11-26T12:02:59+01:00', text: '11:02 UTC' },
    { iso: '2026-11-26T00:00:00Z', text: '00:00 UTC' },
    { iso: '2026-11-26T23:59:59.999Z', text: '23:59 UTC' },
  ])('$iso reads "$text"', ({ iso, text }) => {
    expect(clockUtc(Date.parse(iso))).toBe(text);
  });
});
