// Long jobs (a notification of thousands of alerts, a week of statistics) run in slices with a turn of the event
// loop between them. The database calls are synchronous, so without the turn nothing else (a health probe,
// another Alertmanager) would be answered until the whole job is done.

/** Items handled per slice: a few tens of milliseconds of work for alerts. */
export const SLICE_SIZE = 500;

/** Resolves on the next turn of the event loop, after the I/O that is waiting has been handled. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** `items` in consecutive slices of at most `size`, each with the index of its first item. */
export function* slicesOf<T>(items: readonly T[], size = SLICE_SIZE): Generator<{ offset: number; items: T[] }> {
  for (let offset = 0; offset < items.length; offset += size) {
    yield { offset, items: items.slice(offset, offset + size) };
  }
}
