import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import type { ApiToken } from '../config/load.js';
import { ApiError } from '../errors.js';
import type { SessionStore } from '../store/store.js';
import type { DeniedLog } from './denied-log.js';
import { readSession, SESSION_COOKIES } from './session.js';

/** Who made a request: the configured token's name and what it may do. */
export interface Caller {
  name: string;
  role: 'read' | 'write';
  via: 'bearer' | 'session' | 'open';
}

/** Methods that change nothing: a read token may use them, and so may a login cookie. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

const OPEN: Caller = { name: 'open', role: 'write', via: 'open' };

export interface TokenCheck {
  /** No token configured: everything is open (main.ts then listens on loopback only). */
  readonly open: boolean;
  /** The token in an `Authorization: Bearer` header. */
  bearer(header: string | undefined): Caller | undefined;
  /** A token typed into the login form; `secret` is what a session is signed with. */
  token(offered: string): (Caller & { secret: string }) | undefined;
  /**
   * A session cookie value: a stored, unexpired session (not logged out) whose MAC is that of the configured
   * token that opened it.
   */
  session(value: string | undefined, now: number): Promise<Caller | undefined>;
}

/** Where sessions are looked up: the store, so a logout counts on every instance and across restarts. */
export type SessionLookup = Pick<SessionStore, 'getSession'>;

/**
 * Token comparison. Tokens are compared as SHA-256 digests with timingSafeEqual, and every configured token is
 * compared on every request, so neither the length nor the position of a match shows in the timing. Without
 * `sessions`, no cookie is accepted.
 */
export function tokenCheck(tokens: readonly ApiToken[], sessions?: SessionLookup): TokenCheck {
  const known = tokens.map((t) => ({
    name: t.name,
    role: t.role ?? 'write',
    secret: t.secret,
    digest: sha256(t.secret),
  }));
  const match = (offered: string | undefined) => {
    const digest = sha256(offered ?? '');
    let found: (typeof known)[number] | undefined;
    for (const k of known) if (timingSafeEqual(k.digest, digest) && offered !== undefined) found = k;
    return found;
  };
  return {
    open: known.length === 0,
    bearer(header) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
      const k = match(m?.[1]);
      return k && { name: k.name, role: k.role, via: 'bearer' };
    },
    token(offered) {
      const k = match(offered.trim() || undefined);
      return k && { name: k.name, role: k.role, via: 'session', secret: k.secret };
    },
    async session(value, now) {
      const offered = readSession(value);
      const stored = offered && (await sessions?.getSession(offered.idHash, now));
      if (!offered || !stored) return undefined;
      // Every key is tried, so which one matched does not show in the timing.
      let k: (typeof known)[number] | undefined;
      for (const key of known) if (offered.signedBy(key.secret)) k = key;
      return k && k.name === stored.tokenName ? { name: k.name, role: k.role, via: 'session' } : undefined;
    },
  };
}

/**
 * Who is calling: the bearer header when there is one (a wrong header is not rescued by a cookie), else, for
 * GET and HEAD only, the timeline page's login cookie. A cookie never authorises a POST, so a page on another
 * site cannot make a logged-in browser change anything (SameSite=Strict is the second line of defence).
 */
export async function callerOf(check: TokenCheck, req: Request, now: number): Promise<Caller | undefined> {
  if (check.open) return OPEN;
  const header = req.get('authorization');
  if (header !== undefined) return check.bearer(header);
  if (!SAFE_METHODS.has(req.method)) return undefined;
  return check.session(cookieValue(req, SESSION_COOKIES), now);
}

/**
 * Authentication for /v1: a bearer token (or, on GET, the login cookie); 401 without one, 403 when a read-only
 * token tries to change something. With no token configured the service only listens on loopback (see main.ts)
 * and this lets everything through.
 */
export function bearerAuth(
  tokens: readonly ApiToken[],
  opts: { now?: () => number; sessions?: SessionLookup; denied?: DeniedLog } = {},
): RequestHandler {
  const check = tokenCheck(tokens, opts.sessions);
  const now = opts.now ?? Date.now;
  return async (req, res, next) => {
    const caller = await callerOf(check, req, now());
    if (!caller) {
      opts.denied?.(req, { status: 401, reason: missing(req) });
      res.set('WWW-Authenticate', 'Bearer realm="changepager"');
      return next(new ApiError('unauthorized'));
    }
    if (caller.role === 'read' && !SAFE_METHODS.has(req.method)) {
      opts.denied?.(req, {
        status: 403,
        reason: 'a read-only token tried to change something',
        tokenName: caller.name,
      });
      return next(readOnly(caller.name));
    }
    res.locals.tokenName = caller.name;
    res.locals.caller = caller;
    next();
  };
}

/** The 403 of a read-only token, which names it: its holder may not know which configured token it is. */
export function readOnly(tokenName: string): ApiError {
  return new ApiError('forbidden', `The token "${tokenName}" is read-only: it may read (GET) but not change anything.`);
}

/** Why a request without a caller is refused, for the log: what it sent, never the token itself. */
function missing(req: Request): string {
  if (req.get('authorization') !== undefined) return 'its Authorization header holds no configured token';
  if (SAFE_METHODS.has(req.method) && cookieValue(req, SESSION_COOKIES) !== undefined) {
    return 'its login session has expired or was ended';
  }
  return 'it sent no token';
}

/**
 * GET /metrics with metrics.token set: only `Authorization: Bearer <that token>` (Prometheus sends it with
 * `authorization:` in its scrape config), compared like API tokens. Without one the route stays open.
 */
export function metricsAuth(token: string | undefined): RequestHandler {
  if (token === undefined) return (_req, _res, next) => next();
  const check = tokenCheck([{ name: 'metrics', secret: token }]);
  return (req, res, next) => {
    if (check.bearer(req.get('authorization'))) return next();
    res.set('WWW-Authenticate', 'Bearer realm="changepager metrics"');
    next(new ApiError('unauthorized', 'The metrics token is required: Authorization: Bearer <metrics token>.'));
  };
}

/** The value of the first of `names` present in the Cookie header (no cookie-parser: this is all we read). */
export function cookieValue(req: Request, names: readonly string[]): string | undefined {
  const header = req.get('cookie');
  if (!header) return undefined;
  const jar = new Map<string, string>();
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (!jar.has(name)) jar.set(name, part.slice(eq + 1).trim());
  }
  for (const name of names) {
    const value = jar.get(name);
    if (value !== undefined) return value;
  }
  return undefined;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
