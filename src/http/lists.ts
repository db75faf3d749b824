import type { RequestHandler } from 'express';
import { z } from 'zod';
import { canonicalInstant, durationMs } from '../core/time.js';
import { ApiError } from '../errors.js';
import { parseQuery } from '../ingest/validate.js';
import type { PeopleStore, ReadStore } from '../store/store.js';
import { cursorParam, encodeCursor, nextLink, pageOf } from './pages.js';
import { deployJson, episodeJson } from './views.js';

// The paged lists of the API (pages.ts): GET /v1/deploys, GET /v1/alerts/{fingerprint} and
// GET /v1/people/unmapped. A cursor holds the sort key of the last item shown, so a page is one index seek
// however deep into the list it is.

const since = z.string().refine((s) => canonicalInstant(s) !== undefined || durationMs(s) !== undefined, {
  error: 'must be an RFC 3339 time or an ISO-8601 duration back from now, such as PT24H',
});

export const deployQuery = z.strictObject({
  service: z.string().min(1).optional(),
  environment: z.string().min(1).optional(),
  since: since.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: cursorParam(z.tuple([z.number().int(), z.number().int(), z.string()])),
});

export const historyQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20).describe('Episodes per page, newest first.'),
  deliveries: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(100)
    .describe('Delivery attempts shown per page of each episode: the latest ones.'),
  cursor: cursorParam(z.tuple([z.number().int(), z.number().int()])),
});

export const unmappedQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: cursorParam(z.tuple([z.number().int(), z.number().int(), z.string(), z.string()])),
});

export function deploysRoute(deps: { store: ReadStore; now: () => number }): RequestHandler {
  return async (req, res) => {
    const q = parseQuery(deployQuery, req.query);
    const before = q.cursor;
    const rows = await deps.store.listDeploys({
      ...(q.service === undefined ? {} : { service: q.service }),
      ...(q.environment === undefined ? {} : { environment: q.environment }),
      ...(q.since === undefined ? {} : { since: sinceMs(q.since, deps.now()) }),
      ...(before ? { before: { at: before[0], receivedAt: before[1], id: before[2] } } : {}),
      limit: q.limit + 1,
    });
    const { items, last } = pageOf(rows, q.limit, deployJson);
    res.json({ deploys: items, next: last ? nextLink(req, encodeCursor([last.at, last.receivedAt, last.id])) : null });
  };
}

export function alertRoute(deps: { store: ReadStore }): RequestHandler {
  return async (req, res) => {
    const fingerprint = String(req.params.fingerprint);
    const q = parseQuery(historyQuery, req.query);
    const before = q.cursor;
    const history = await deps.store.alertHistory(fingerprint, {
      limit: q.limit + 1,
      deliveriesPerPage: q.deliveries,
      ...(before ? { before: { startsAtMs: before[0], id: before[1] } } : {}),
    });
    if (history.length === 0 && !before) throw new ApiError('not_found', `No alert with fingerprint "${fingerprint}".`);
    const { items, last } = pageOf(history, q.limit, episodeJson);
    const cursor = last && encodeCursor([last.episode.startsAtMs, last.episode.id]);
    res.json({ fingerprint, episodes: items, next: cursor ? nextLink(req, cursor) : null });
  };
}

export function unmappedRoute(deps: { store: PeopleStore }): RequestHandler {
  return async (req, res) => {
    const q = parseQuery(unmappedQuery, req.query);
    const after = q.cursor;
    const rows = await deps.store.listUnmapped({
      limit: q.limit + 1,
      ...(after ? { after: { count: after[0], lastSeenAt: after[1], who: after[2], reason: after[3] } } : {}),
    });
    const { items, last } = pageOf(rows, q.limit, (p) => ({
      who: p.who,
      reason: p.reason,
      count: p.count,
      firstSeenAt: new Date(p.firstSeenAt).toISOString(),
      lastSeenAt: new Date(p.lastSeenAt).toISOString(),
    }));
    const cursor = last && encodeCursor([last.count, last.lastSeenAt, last.who, last.reason]);
    res.json({ people: items, next: cursor ? nextLink(req, cursor) : null });
  };
}

function sinceMs(text: string, now: number): number {
  return canonicalInstant(text)?.ms ?? now - (durationMs(text) as number);
}
