// How many wrong tokens one client may type into the login form. Each client address gets a budget of failed
// logins per window, counted from its first failure; once it is spent, every login from that address is refused
// until the window ends. Pure: the caller keeps one FailureBurst per client and passes `now`.

export interface LoginLimit {
  maxFailures: number;
  windowMs: number;
}

/** One client's failed logins in its current window: what the log line about it summarises. */
export interface FailureBurst {
  firstAt: number;
  lastAt: number;
  /** Wrong tokens typed. */
  failures: number;
  /** Attempts refused (429) because the budget was spent. */
  refused: number;
}

/** Whether the burst's window has passed: the client starts afresh, and the burst can be summarised. */
export function burstOver(burst: FailureBurst, now: number, limit: LoginLimit): boolean {
  return now >= burst.firstAt + limit.windowMs;
}

/** May this client try a login now? When not, how long until it may. */
export function loginAllowed(
  burst: FailureBurst | undefined,
  now: number,
  limit: LoginLimit,
): { ok: true } | { ok: false; retryAfterMs: number } {
  if (!burst || burstOver(burst, now, limit) || burst.failures < limit.maxFailures) return { ok: true };
  return { ok: false, retryAfterMs: burst.firstAt + limit.windowMs - now };
}

/** The burst after one more wrong token: a new one when there was none or its window has passed. */
export function withFailure(burst: FailureBurst | undefined, now: number, limit: LoginLimit): FailureBurst {
  if (!burst || burstOver(burst, now, limit)) return { firstAt: now, lastAt: now, failures: 1, refused: 0 };
  return { ...burst, lastAt: now, failures: burst.failures + 1 };
}

/** The burst after one more attempt refused for a spent budget. */
export function withRefusal(burst: FailureBurst, now: number): FailureBurst {
  return { ...burst, lastAt: now, refused: burst.refused + 1 };
}

/**
 * What failed logins are counted by: the IPv4 address, or the /64 of an IPv6 address (one host usually holds a
 * whole /64, so counting single IPv6 addresses would give it 2^64 budgets). An IPv4 address in IPv6 form
 * (::ffff:192.0.2.1, as a dual-stack socket reports it) is the IPv4 address.
 */
export function clientKey(address: string): string {
  const ip = address.replace(/%.*$/, '').toLowerCase(); // an IPv6 zone (fe80::1%eth0) names no other host
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (!ip.includes(':')) return ip;
  const [head = '', tail] = ip.split('::');
  const groups = (part: string | undefined) => (part ? part.split(':') : []);
  const known = [...groups(head), ...groups(tail)];
  // An embedded IPv4 address (::ffff:0:192.0.2.1) fills two groups; only the first four count here anyway.
  const width = known.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const full =
    tail === undefined ? known : [...groups(head), ...Array(Math.max(0, 8 - width)).fill('0'), ...groups(tail)];
  const prefix = full.slice(0, 4).map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? Number.parseInt(g, 16).toString(16) : g));
  return `${prefix.join(':')}::/64`;
}
