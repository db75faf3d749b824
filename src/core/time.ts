import { DateTime, Duration } from 'luxon';

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
  const [, wholeSeconds, fraction = '', offset] = m;
  const base = DateTime.fromISO(`${wholeSeconds}${offset === 'z' ? 'Z' : offset}`, { setZone: true });
  if (!base.isValid) return undefined;
  const utc = base.toUTC();
  const nanos = fraction.padEnd(9, '0');
  const seconds = utc.toMillis();
  return {
    iso: `${utc.toFormat("yyyy-MM-dd'T'HH:mm:ss")}.${nanos}Z`,
    ms: seconds + Number(nanos.slice(0, 3)),
  };
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
  return `${DateTime.fromMillis(ms, { zone: 'utc' }).toFormat('HH:mm')} UTC`;
}
