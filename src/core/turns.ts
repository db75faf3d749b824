// Delivery order among due outbox rows. Pages go first, and take turns by service: the first due page of every
// service, then the second of each, and so on, so that a storm of pages in one service does not hold up another
// service's page. DMs take turns by episode likewise, so that one alert's many DMs cannot hold up another
// alert's. Every other row is a turn of its own. Pure: the store reads the oldest due rows and their turn keys,
// this orders them, and the store claims from the front.

export interface DueRow {
  /** The outbox kind: 'page', 'dm', 'change', …. */
  kind: string;
  id: number;
  dueAt: number;
  /** What the row takes turns by: a page's service, a DM's episode; undefined for rows that take none. */
  turnKey?: string | number | undefined;
}

/** Whether due rows of this kind take turns (pages by service, DMs by episode); every other row is its own turn. */
export function takesTurns(kind: string): boolean {
  return kind === 'page' || kind === 'dm';
}

/** The rows in claiming order: pages first; within each, by turn; within a turn, the oldest due first. */
export function inTurns<T extends DueRow>(rows: readonly T[]): T[] {
  const oldestFirst = [...rows].sort((a, b) => pagesFirst(a, b) || a.dueAt - b.dueAt || a.id - b.id);
  const taken = new Map<string, number>();
  const turn = new Map<T, number>();
  for (const row of oldestFirst) {
    const key = row.turnKey === undefined ? `row:${row.kind}:${row.id}` : `${row.kind}:${row.turnKey}`;
    const n = (taken.get(key) ?? 0) + 1;
    taken.set(key, n);
    turn.set(row, n);
  }
  // Array.prototype.sort is stable: within a turn the oldest due stay first.
  return oldestFirst.sort((a, b) => pagesFirst(a, b) || (turn.get(a) ?? 0) - (turn.get(b) ?? 0));
}

const pagesFirst = (a: DueRow, b: DueRow) => Number(b.kind === 'page') - Number(a.kind === 'page');
