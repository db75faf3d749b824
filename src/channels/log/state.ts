import type { AlertStatus } from '../../core/types.js';

// What the log channel records in a page's or a DM's `delivered` record (opaque JSON of strings to the store).

/** A page: the last action logged for it. */
export interface LogPageState {
  logged: 'trigger' | 'resolve';
}

/** A DM: the alert status last logged for it. The key is Slack's too, so a DM logged is not logged again. */
export interface LogDmState {
  shows?: AlertStatus;
}

export function logPageStatePatch(state: LogPageState): Record<string, string> {
  return { log: state.logged };
}

/** A DM's state from its stored record: whatever else the record holds is another channel's. */
export function readLogDmState(stored: Readonly<Record<string, unknown>>): LogDmState {
  const shows = stored.state;
  return shows === 'firing' || shows === 'resolved' ? { shows } : {};
}

export function logDmStatePatch(state: LogDmState): Record<string, string> {
  return state.shows ? { state: state.shows } : {};
}
