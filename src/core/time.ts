import { Duration } from 'luxon';

const RFC3339 =
  /^(\d{4}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d)(?:\.(\d{1,9}))?(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/i;

/**
 * The canonical UTC spelling of an RFC 3339 instant, with all nine fractional digits: the same instant always
 * gives the same string whatever offset or precision it was written with. Alertmanager's startsAt carries
 * nanoseconds, and (fingerprint, startsAt) is an episode's identity, so milliseconds are not enough.
 * Returns undefined for text that is not RFC 3339.
 */
export function canonicalInstant(text: string): { iso: string; ms: number } | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [, written = '', fraction = '', offset = 'Z'] = m;
  const wholeSeconds = written.toUpperCase(); // RFC 3339 allows a lower-case t
  // Date.parse, not luxon: this runs for every alert received, and luxon's parser was 7 % of ingest CPU.
  // Date.parse rolls 30 February over into March, so the date must survive the round trip.
  const local = Date.parse(`${wholeSeconds}Z`);
  if (Number.isNaN(local) || new Date(local).toISOString().slice(0, 19) !== wholeSeconds) return undefined;
  const offsetMs = offset.toUpperCase() === 'Z' ? 0 : offsetMinutes(offset) * 60_000;
  const seconds = local - offsetMs;
  const nanos = fraction.padEnd(9, '0');
  return {
    iso: `${new Date(seconds).toISOString().slice(0, 19)}.${nanos}Z`,
    ms: seconds + Number(nanos.slice(0, 3)),
  };
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
