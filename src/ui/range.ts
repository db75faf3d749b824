import { z } from 'zod';
import { canonicalInstant, durationMs } from '../core/time.js';
import type { ProblemDetail } from '../errors.js';
import { problemsOf } from '../ingest/validate.js';

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
}

export const DEFAULT_RANGE = 'PT24H';
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

// What a browser sends from <input type="datetime-local"> when the page script did not turn it into `to`:
// no offset, so it is read as UTC (the form says so when the script is off).
const localClock = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/, {
  error: 'must be a time such as 2026-11-26T11:00',
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
  range: duration.optional(),
  from: instant.optional(),
  to: instant.optional(),
  end: z.union([localClock, z.literal('')]).optional(),
  service: optionalText,
  env: optionalText,
});

export type ParsedRange = { ok: true; range: TimelineRange } | { ok: false; problems: ProblemDetail[] };

/**
 * Reads the range from a query: `range` (a duration back from `to`), `from` and `to` (RFC 3339), any two of
 * them, or one; `to` defaults to now, which makes the range live. Every problem is listed.
 */
export function parseRange(query: unknown, now: number, serviceFromPath?: string): ParsedRange {
  const parsed = timelineQuery.safeParse(query);
  if (!parsed.success) return { ok: false, problems: problemsOf(parsed.error) };
  const q = parsed.data;
  const problems: ProblemDetail[] = [];
  const endText = q.end ? `${q.end.length === 16 ? `${q.end}:00` : q.end}Z` : undefined;
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
    from = to - (spanMs ?? (durationMs(DEFAULT_RANGE) as number));
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
  const service = serviceFromPath ?? (q.service || undefined);
  if (service !== undefined) range.service = service;
  if (q.env) range.environment = q.env;
  return { ok: true, range };
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
