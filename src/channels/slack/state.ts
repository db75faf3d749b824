import type { AlertStatus } from '../../core/types.js';

// What Slack has been told of a DM, as its deliveries (and the DM's buttons) recorded it in the DM's `delivered`
// record. The store keeps that record as opaque JSON of strings; this file is the one place that knows its keys.

export interface DmState {
  /** Where the message is: its conversation and timestamp, Slack's address for it. */
  channel?: string;
  ts?: string;
  /** The Slack user it was sent to. */
  user?: string;
  /** The thread it was posted in: under the first DM about the same deploy. */
  threadTs?: string;
  /** The alert's status the message shows. */
  shows?: AlertStatus;
  /** The rollback of the deploy the message shows, by the rollback deploy's id. */
  rolledBack?: string;
  /** The verdict of the deploy's evidence the message shows, once it shows one. */
  evidence?: string;
  /** Why it will never be sent (the person has no Slack user). */
  failed?: string;
  /** Who acknowledged from it (a Slack user id), and when. */
  ackedBy?: string;
  ackedAt?: number;
}

/** The stored key of each field (the record predates this type). */
const KEYS = {
  channel: 'channel',
  ts: 'ts',
  user: 'user',
  threadTs: 'thread_ts',
  shows: 'state',
  rolledBack: 'rolled_back',
  evidence: 'evidence',
  failed: 'failed',
  ackedBy: 'acked_by',
  ackedAt: 'acked_at',
} as const satisfies Record<keyof DmState, string>;

/** A DM's state from its stored record; a key it does not know is ignored, a value it cannot read is absent. */
export function readDmState(stored: Readonly<Record<string, unknown>>): DmState {
  const text = (field: keyof DmState) => {
    const v = stored[KEYS[field]];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const state: DmState = {};
  for (const field of ['channel', 'ts', 'user', 'threadTs', 'evidence', 'failed', 'ackedBy', 'rolledBack'] as const) {
    const v = text(field);
    if (v !== undefined) state[field] = v;
  }
  const shows = text('shows');
  if (shows === 'firing' || shows === 'resolved') state.shows = shows;
  const at = stored[KEYS.ackedAt];
  const ackedAt = typeof at === 'number' ? at : typeof at === 'string' && at !== '' ? Number(at) : Number.NaN;
  if (Number.isFinite(ackedAt)) state.ackedAt = ackedAt;
  return state;
}

/** The stored form of a change to a DM's state: merged into what is stored, key by key. */
export function dmStatePatch(patch: Partial<DmState>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, value] of Object.entries(patch) as [keyof DmState, unknown][]) {
    if (value !== undefined) out[KEYS[field]] = String(value);
  }
  return out;
}
