// What PagerDuty has been told of a page, as its deliveries recorded it in the page's `delivered` record. The
// store keeps that record as opaque JSON of strings (and GET /v1/alerts/{fingerprint} shows it as is); this file
// is the one place that knows its keys: readPageState reads them, pageStatePatch writes them.

export interface PageState {
  /** How the page reaches PagerDuty: an incident assigned to a person (REST), or the Events API (on-call, a fallback). */
  via?: 'incident' | 'events';
  /** The incident's id, once it exists. */
  incident?: string;
  /** The incident's address in PagerDuty. */
  url?: string;
  /** The PagerDuty user the incident is assigned to. */
  user?: string;
  /** What PagerDuty last accepted for it. */
  state?: 'triggered' | 'resolved';
  /** How many of the page's alerts PagerDuty has been told of. */
  members: number;
  /** How many rollbacks of the page's deploys the incident has been told of (a note each time). */
  rollbacks?: number;
  /** Why a person's page went to on-call instead. */
  fallback?: string;
  /** PagerDuty refused the full event, and the minimal form went out instead. */
  form?: 'minimal';
  /**
   * A request that may have reached PagerDuty went unanswered (a timeout) or was refused as a duplicate: the
   * incident or alert may exist there, and a resolve must look for it.
   */
  attempted: boolean;
  /** Who was asked to respond too, or why nobody could be. */
  responders?: string;
  /** The alerts (episode ids) whose evidence, judged after the incident was created, was added to it as a note. */
  evidenceNoted?: number[];
}

/**
 * A page's state from its stored record. Tolerant of anything an older (or newer) version stored: a key it does
 * not know is ignored, a value it cannot read counts as absent, and an empty record is a page never attempted.
 */
export function readPageState(stored: Readonly<Record<string, unknown>>): PageState {
  const text = (key: string) => {
    const v = stored[key];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const state: PageState = { members: count(stored.members), attempted: flag(stored.attempted) };
  const rollbacks = count(stored.rollbacks);
  if (rollbacks > 0) state.rollbacks = rollbacks;
  const noted = ids(stored.evidenceNoted);
  if (noted.length > 0) state.evidenceNoted = noted;
  const via = text('via');
  if (via === 'incident' || via === 'events') state.via = via;
  const status = text('state');
  if (status === 'triggered' || status === 'resolved') state.state = status;
  if (text('form') === 'minimal') state.form = 'minimal';
  for (const key of ['incident', 'url', 'user', 'fallback', 'responders'] as const) {
    const v = text(key);
    if (v !== undefined) state[key] = v;
  }
  return state;
}

/** The stored form of a change to a page's state: merged into what is stored, key by key. */
export function pageStatePatch(patch: Partial<PageState>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    // A boolean is stored as 'true' or '' (which reads back as false): a patch cannot remove a key.
    out[key] = typeof value === 'boolean' ? (value ? 'true' : '') : String(value);
  }
  return out;
}

function count(value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isInteger(n) && n > 0 ? n : 0;
}

/** "3,7" (as pageStatePatch stores a list) → [3, 7]; anything unreadable is left out. */
function ids(value: unknown): number[] {
  if (typeof value !== 'string' || value === '') return [];
  return value
    .split(',')
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

function flag(value: unknown): boolean {
  return value === true || value === 'true';
}
