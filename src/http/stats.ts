import type { RequestHandler } from 'express';
import { z } from 'zod';
import { HygieneTally } from '../core/stats.js';
import { canonicalInstant, durationMs } from '../core/time.js';
import { ApiError } from '../errors.js';
import { parseQuery } from '../ingest/validate.js';
import { nextTurn } from '../slices.js';
import type { HygieneCursor, HygieneQuery, TimelineStore } from '../store/store.js';
import { cursorParam, encodeCursor, nextLink, pageOf } from './pages.js';

// GET /v1/stats: deploy hygiene per service over a period (core/stats.ts). The same numbers over the last seven
// days are Prometheus gauges (metrics.ts), counted by the same tallyHygiene.

const instantOrDuration = z.string().refine((s) => canonicalInstant(s) !== undefined || durationMs(s) !== undefined, {
  error: 'must be an RFC 3339 time or an ISO-8601 duration back from now, such as P7D',
});

export const statsQuery = z.strictObject({
  since: instantOrDuration
    .default('P7D')
    .describe('Start of the period: an RFC 3339 time or a duration back from now.'),
  until: z.iso.datetime({ offset: true }).optional().describe('End of the period (exclusive); defaults to now.'),
  service: z.string().min(1).optional(),
  environment: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(1000).describe('Services per page, by name.'),
  cursor: cursorParam(z.tuple([z.string()])),
});

/** The period a stats or precision query names: `since` an instant or a duration back from `until` (now). */
export function periodOf(
  q: { since: string; until?: string | undefined },
  now: number,
): { since: number; until: number } {
  const until = q.until === undefined ? now : (canonicalInstant(q.until)?.ms ?? now);
  const since = canonicalInstant(q.since)?.ms ?? until - (durationMs(q.since) as number);
  if (since >= until) {
    throw new ApiError('invalid_query', undefined, { problems: [{ path: 'since', message: 'must be before until' }] });
  }
  return { since, until };
}

export function statsRoute(deps: { store: TimelineStore; now: () => number }): RequestHandler {
  return async (req, res) => {
    const q = parseQuery(statsQuery, req.query);
    const { since, until } = periodOf(q, deps.now());
    const after = q.cursor?.[0];
    const tally = await tallyHygiene(deps.store, {
      since,
      until,
      ...(q.service === undefined ? {} : { service: q.service }),
      ...(q.environment === undefined ? {} : { environment: q.environment }),
    });
    const services = tally.services();
    const from = after === undefined ? 0 : services.findIndex((s) => s.service.localeCompare(after) > 0);
    const rest = from < 0 ? [] : services.slice(from);
    const { items, last } = pageOf(rest, q.limit, (s) => s);
    res.json({
      since: new Date(since).toISOString(),
      until: new Date(until).toISOString(),
      environment: q.environment ?? null,
      feedbackRecorded: tally.feedbackRecorded,
      services: items,
      next: last ? nextLink(req, encodeCursor([last.service])) : null,
    });
  };
}

/**
 * Counts the hygiene facts of a period a page at a time, with a turn of the event loop between pages: a week
 * of a busy installation is tens of thousands of rows, and every other request must go on meanwhile.
 */
export async function tallyHygiene(store: Pick<TimelineStore, 'hygieneFacts'>, q: HygieneQuery): Promise<HygieneTally> {
  const tally = new HygieneTally(q.until - q.since);
  let cursor: HygieneCursor | undefined;
  do {
    const page = await store.hygieneFacts(q, cursor);
    tally.add(page.facts);
    cursor = page.next;
    await nextTurn();
  } while (cursor);
  return tally;
}

/** The period the hygiene gauges cover. */
export const HYGIENE_GAUGE_PERIOD_MS = 7 * 24 * 3600_000;
