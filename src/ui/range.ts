import { z } from 'zod';
import { canonicalInstant, durationMs } from '../core/time.js';
import type { ProblemDetail } from '../errors.js';
import { checkInput, problemsOf } from '../ingest/validate.js';

/** What the page and GET /v1/timeline show: a time range (epoch ms, both inclusive) and filters. */
export interface TimelineRange {
  from: number;
  to: number;
  /** to − from. */
  spanMs: number;
  /** The range ends at "now" and moves with it: refreshing shows what arrived since. */
  live: boolean;
  /** The range as the query gave it, for links that keep it. */
  query: { range?: string; from?: string; to?: string };
  service?: string;
  environment?: string;
  /**
   * Set when the address named no range: how far back the data was looked for. Such a view is fitted to the
   * data it finds (fitRange), so a burst of the last minutes fills the chart instead of a sliver of it.
   */
  lookbackMs?: number;
}

export const RANGE_PRESETS: readonly { value: string; label: string }[] = [
  { value: 'PT1H', label: 'last hour' },
  { value: 'PT6H', label: 'last 6 hours' },
  { value: 'PT24H', label: 'last 24 hours' },
  { value: 'P3D', label: 'last 3 days' },
  { value: 'P7D', label: 'last 7 days' },
];

const MIN_SPAN_MS = 60_000;
const MAX_SPAN_MS = 31 * 24 * 3600_000;

const instant = z.string().refine((s) => canonicalInstant(s) !== undefined, {
  error: 'must be an RFC 3339 time such as 2026-11-26T11:00:00Z',
});

// What the form's "ending at" field sends: a UTC time without an offset, as the page shows times.
const utcClock = z.string().regex(/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$/, {
  error: 'must be a UTC time such as 2026-11-26 11:00',
});

const duration = z.string().refine(
  (s) => {
    const ms = durationMs(s);
    return ms !== undefined && ms >= MIN_SPAN_MS && ms <= MAX_SPAN_MS;
  },
  { error: 'must be an ISO-8601 duration from PT1M to P31D, such as PT24H' },
);

const optionalText = z
  .string()
  .max(256)
  .transform((s) => s.trim())
  .optional();

export const timelineQuery = z.strictObject({
  range: z
    .union([duration, z.literal('')])
    .optional()
    .describe('How long a range, back from `to`. Empty or absent with from and to: fitted to the data found.'),
  from: instant.optional(),
  to: instant.optional(),
  end: z
    .union([utcClock, z.literal('')])
    .optional()
    .describe("The page form's `to`: a UTC time without an offset, such as 2026-11-26 11:00."),
  service: optionalText,
  env: optionalText,
});

export type ParsedRange = { ok: true; range: TimelineRange } | { ok: false; problems: ProblemDetail[] };

/**
 * Reads the range from a query: `range` (a duration back from `to`), `from` and `to` (RFC 3339), any two of
 * them, or one; `to` defaults to now, which makes the range live. With none of them, the range looks back
 * `defaultRangeMs` and is to be fitted to the data found (fitRange). Every problem is listed.
 */
export function parseRange(
  query: unknown,
  now: number,
  opts: { defaultRangeMs: number; service?: string },
): ParsedRange {
  const parsed = checkInput(timelineQuery, query);
  if (!parsed.success) return { ok: false, problems: problemsOf(parsed.error) };
  const q = { ...parsed.data, range: parsed.data.range || undefined };
  const problems: ProblemDetail[] = [];
  const end = q.end?.replace(' ', 'T');
  const endText = end ? `${end.length === 16 ? `${end}:00` : end}Z` : undefined;
  if (q.to !== undefined && endText !== undefined) problems.push({ path: 'end', message: 'give to or end, not both' });
  const toText = q.to ?? endText;
  const given = [q.range, q.from, toText].filter((v) => v !== undefined).length;
  if (given > 2) problems.push({ path: 'range', message: 'give at most two of from, to and range' });

  const toMs = toText === undefined ? undefined : canonicalInstant(toText)?.ms;
  if (toText !== undefined && toMs === undefined) problems.push({ path: 'end', message: 'is not a valid time' });
  const fromMs = q.from === undefined ? undefined : canonicalInstant(q.from)?.ms;
  const spanMs = q.range === undefined ? undefined : durationMs(q.range);

  let from: number;
  let to: number;
  if (fromMs !== undefined && toMs !== undefined) {
    from = fromMs;
    to = toMs;
  } else if (fromMs !== undefined) {
    from = fromMs;
    to = spanMs === undefined ? now : fromMs + spanMs;
  } else {
    to = toMs ?? now;
    from = to - (spanMs ?? opts.defaultRangeMs);
  }
  if (to <= from) problems.push({ path: 'from', message: 'must be before to' });
  else if (to - from > MAX_SPAN_MS) problems.push({ path: 'range', message: 'may span at most 31 days (P31D)' });
  else if (to - from < MIN_SPAN_MS) problems.push({ path: 'range', message: 'must span at least a minute (PT1M)' });
  if (problems.length > 0) return { ok: false, problems };

  const range: TimelineRange = {
    from,
    to,
    spanMs: to - from,
    live: toMs === undefined && !(fromMs !== undefined && spanMs !== undefined),
    query: {
      ...(q.range === undefined ? {} : { range: q.range }),
      ...(q.from === undefined ? {} : { from: q.from }),
      ...(toText === undefined ? {} : { to: new Date(to).toISOString() }),
    },
  };
  if (given === 0) range.lookbackMs = opts.defaultRangeMs;
  const service = opts.service ?? (q.service || undefined);
  if (service !== undefined) range.service = service;
  if (q.env) range.environment = q.env;
  return { ok: true, range };
}

/** A fitted view is never shorter than this: room for a deploy and the hour of alerts after it. */
export const MIN_FIT_MS = 3_600_000;

/**
 * The view of a range that was looked back over (parseRange without a range in the query): it starts just
 * before the oldest deploy or alert start found in it, and spans at least MIN_FIT_MS, so what happened lately
 * fills the chart. An alert firing since before the look-back does not widen it (its bar shows it is cut), and
 * neither does a deploy before it that an alert was attributed to (its line runs off the edge). Without any
 * event in it, the range stays as it was. Any other range is returned as it is.
 */
export function fitRange(range: TimelineRange, eventTimes: readonly number[]): TimelineRange {
  if (range.lookbackMs === undefined) return range;
  let oldest = Number.POSITIVE_INFINITY;
  for (const t of eventTimes) if (t >= range.from && t <= range.to && t < oldest) oldest = t;
  if (oldest === Number.POSITIVE_INFINITY) return range;
  // A twentieth of the view before the oldest event keeps its marker and label clear of the lane names.
  const margin = (range.to - oldest) / 20;
  const start = Math.min(oldest - margin, range.to - MIN_FIT_MS);
  const from = Math.max(range.from, Math.floor(start / 60_000) * 60_000);
  return { ...range, from, spanMs: range.to - from };
}

/** "6 hours", "90 minutes", "3 days": a span in words, for the range picker. */
export function spanText(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
  ];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${name}${ms === size ? '' : 's'}`;
  }
  return `${Math.round(ms / 1000)} seconds`;
}

/** The query string that shows `range` again (for links, the refresh and the JSON endpoint). */
export function rangeSearch(
  range: Pick<TimelineRange, 'query' | 'environment'> & { service?: string | undefined },
  overrides: Record<string, string | undefined> = {},
): string {
  const params = new URLSearchParams();
  const values: Record<string, string | undefined> = {
    range: range.query.range,
    from: range.query.from,
    to: range.query.to,
    service: range.service,
    env: range.environment,
    ...overrides,
  };
  for (const [key, value] of Object.entries(values)) if (value !== undefined && value !== '') params.set(key, value);
  const text = params.toString();
  return text ? `?${text}` : '';
}

/**
 * The address of the page that shows `range`: its service's own page, /services/{name}, when it has a service.
 * A name of only dots cannot be a path segment (every client resolves "/services/.." to "/"), so such a
 * service is shown at /?service={name} instead.
 */
export function pageHref(
  range: Pick<TimelineRange, 'query' | 'environment'> & { service?: string | undefined },
  overrides: Record<string, string | undefined> = {},
): string {
  const service = range.service;
  if (service === undefined || !isPathSegment(service)) return `/${rangeSearch(range, overrides)}`;
  return `/services/${encodeURIComponent(service)}${rangeSearch(range, { ...overrides, service: undefined })}`;
}

/** Whether `name` can be one segment of a URL path: "." and ".." are resolved away by every client. */
export function isPathSegment(name: string): boolean {
  return /[^.]/.test(name);
}
