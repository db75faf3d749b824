import type { RequestHandler } from 'express';
import { PrecisionTally, type ServicePrecision } from '../core/precision.js';
import { parseQuery } from '../ingest/validate.js';
import { nextTurn } from '../slices.js';
import type { HygieneCursor, HygieneQuery, TimelineStore } from '../store/store.js';
import { encodeCursor, nextLink, pageOf } from './pages.js';
import { periodOf, statsQuery } from './stats.js';

// GET /v1/precision: per service over a period, how the decisions that named a person fared (core/precision.ts):
// paged, disowned ("Not my change"), confirmed or cleared by the evidence, and where evidence and people
// disagreed. The same query as GET /v1/stats.

export const precisionQuery = statsQuery;

export function precisionRoute(deps: { store: TimelineStore; now: () => number }): RequestHandler {
  return async (req, res) => {
    const q = parseQuery(precisionQuery, req.query);
    const { since, until } = periodOf(q, deps.now());
    const services = await tallyPrecision(deps.store, {
      since,
      until,
      ...(q.service === undefined ? {} : { service: q.service }),
      ...(q.environment === undefined ? {} : { environment: q.environment }),
    });
    const after = q.cursor?.[0];
    const from = after === undefined ? 0 : services.findIndex((s) => s.service.localeCompare(after) > 0);
    const { items, last } = pageOf(from < 0 ? [] : services.slice(from), q.limit, (s) => s);
    res.json({
      since: new Date(since).toISOString(),
      until: new Date(until).toISOString(),
      environment: q.environment ?? null,
      services: items,
      next: last ? nextLink(req, encodeCursor([last.service])) : null,
    });
  };
}

/** The precision of a period, from the store's hygiene facts a page at a time (a turn of the loop between). */
export async function tallyPrecision(
  store: Pick<TimelineStore, 'hygieneFacts'>,
  q: HygieneQuery,
): Promise<ServicePrecision[]> {
  const tally = new PrecisionTally();
  let cursor: HygieneCursor | undefined;
  do {
    const page = await store.hygieneFacts(q, cursor);
    tally.add(page.facts.episodes);
    cursor = page.next;
    await nextTurn();
  } while (cursor);
  return tally.services();
}
