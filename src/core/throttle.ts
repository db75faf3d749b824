// "Once per interval" for log lines that a client can cause at any rate. Pure: the caller keeps one Throttle per
// key (a client and a route, say) and passes `now`.

export interface Throttle {
  /** When a line was last written for the key. */
  writtenAt: number;
  /** Occurrences since then that wrote no line. */
  held: number;
}

/**
 * One more occurrence: `write` when the key has had no line for `intervalMs`, with `held` the occurrences that
 * wrote none since the last line, so the line can say how many it stands for.
 */
export function throttle(
  current: Throttle | undefined,
  now: number,
  intervalMs: number,
): { write: boolean; held: number; next: Throttle } {
  if (!current || now - current.writtenAt >= intervalMs) {
    return { write: true, held: current?.held ?? 0, next: { writtenAt: now, held: 0 } };
  }
  return { write: false, held: current.held + 1, next: { writtenAt: current.writtenAt, held: current.held + 1 } };
}
