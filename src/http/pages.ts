import type { Request } from 'express';
import { z } from 'zod';

// List answers come in pages: at most `limit` items, and fewer when they are large, so that no answer is much
// larger than PAGE_BUDGET_BYTES however big the stored records are. `next` is the link to the following page
// (the same query with a `cursor` that says where this page stopped), or null on the last page.

/** A page stops growing once its items pass this size in JSON; it always holds at least one item. */
export const PAGE_BUDGET_BYTES = 1024 * 1024;

/**
 * The `cursor` query parameter of a paged list, decoded into the sort key it holds (checked against `key`), so
 * that a cursor that is not one of this list's is reported with the query's other problems.
 */
export function cursorParam<S extends z.ZodType>(key: S) {
  return z
    .string()
    .min(1)
    .max(2048)
    .transform((text, ctx) => {
      const parsed = key.safeParse(decode(text));
      if (parsed.success) return parsed.data as z.output<S>;
      ctx.addIssue({ code: 'custom', message: 'is not a cursor from the next link of this list' });
      return z.NEVER;
    })
    .optional()
    .describe('Where the previous page stopped: take it from that page’s `next` link, never build it.');
}

/** A cursor names the sort key of the last item of a page; it is opaque to clients. */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

function decode(cursor: string): unknown {
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString());
  } catch {
    return undefined;
  }
}

/**
 * The page among `rows`, which the store read with `limit + 1` so that one more row says the list goes on:
 * at most `limit` items, fewer when PAGE_BUDGET_BYTES is reached. `last` is the row the next page starts after.
 */
export function pageOf<T, J>(
  rows: readonly T[],
  limit: number,
  toJson: (row: T) => J,
): { items: J[]; last: T | undefined } {
  const items: J[] = [];
  let bytes = 0;
  let last: T | undefined;
  for (const row of rows.slice(0, limit)) {
    const json = toJson(row);
    bytes += JSON.stringify(json).length;
    if (items.length > 0 && bytes > PAGE_BUDGET_BYTES) break;
    items.push(json);
    last = row;
  }
  return { items, last: rows.length > items.length ? last : undefined };
}

/** The link to the page after this one: the request's own path and query, with `cursor` set. */
export function nextLink(req: Request, cursor: string): string {
  const url = new URL(req.originalUrl, 'http://changepager.invalid');
  url.searchParams.set('cursor', cursor);
  return `${url.pathname}${url.search}`;
}
