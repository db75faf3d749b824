import { Duration } from 'luxon';

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt]([01]\d|2[0-3]):([0-5]\d):([0-5]\d)(?:\.(\d{1,9}))?([Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

const DAY_MS = 86_400_000;

/**
 * The canonical UTC spelling of an RFC 3339 instant, with all nine fractional digits: the same instant always
 * gives the same string whatever offset or precision it was written with. Alertmanager's startsAt carries
 * nanoseconds, and (fingerprint, startsAt) is an episode's identity, so milliseconds are not enough.
 * Returns undefined for text that is not RFC 3339.
 */
export function canonicalInstant(text: string): { iso: string; ms: number } | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [, y = '', mo = '', d = '', hh = '', mm = '', ss = '', fraction = '', offset = 'Z'] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  // Counted here, not with Date.parse and toISOString: this runs four times for every alert received (checked,
  // then mapped, for startsAt and endsAt), and Date's parser and formatter were most of its cost.
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  const offsetMs = offset === 'Z' || offset === 'z' ? 0 : offsetMinutes(offset) * 60_000;
  const seconds =
    daysFromCivil(year, month, day) * DAY_MS + (Number(hh) * 3600 + Number(mm) * 60 + Number(ss)) * 1000 - offsetMs;
  const nanos = fraction.padEnd(9, '0');
  // Without an offset the written date and time are already UTC's; only the separators' case can differ.
  const wholeSeconds =
    offsetMs === 0 ? `${y}-${mo}-${d}T${hh}:${mm}:${ss}` : new Date(seconds).toISOString().slice(0, 19);
  return { iso: `${wholeSeconds}.${nanos}Z`, ms: seconds + Number(nanos.slice(0, 3)) };
}

/** Days from 1970-01-01 to a proleptic Gregorian date, any year (Howard Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** "+05:30" → 330, "-01:00" → -60. */
function offsetMinutes(offset: string): number {
  const sign = offset.startsWith('-') ? -1 : 1;
  return sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
}

/** Parses an ISO-8601 duration such as PT1H into milliseconds; undefined when it is not one or is negative. */
export function durationMs(text: string): number | undefined {
  const d = Duration.fromISO(text);
  if (!d.isValid) return undefined;
  const ms = d.toMillis();
  return ms >= 0 ? ms : undefined;
}

/** "7 min", "2 h 5 min", "40 s": how far apart two instants are, for reason sentences. */
export function humanGap(ms: number): string {
  const abs = Math.abs(ms);
  if (Math.round(abs / 1000) < 60) return `${Math.round(abs / 1000)} s`;
  const minutes = Math.round(abs / 60_000);
  if (minutes < 60) return `${minutes} min`;
  const h = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest === 0 ? `${h} h` : `${h} h ${rest} min`;
}

/** "11:02 UTC" for an instant today-ish; sentences are read next to a timestamp, so the clock time suffices. */
export function clockUtc(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 16)} UTC`;
}
