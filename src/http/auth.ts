import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { ApiToken } from '../config/load.js';
import { ApiError } from '../errors.js';

/**
 * Bearer-token authentication. Tokens are compared as SHA-256 digests with timingSafeEqual, and every configured
 * token is compared on every request, so neither the length nor the position of a match shows in the timing.
 * With no token configured the service only listens on loopback (see main.ts) and this lets everything through.
 */
export function bearerAuth(tokens: readonly ApiToken[]): RequestHandler {
  const digests = tokens.map((t) => ({ name: t.name, digest: sha256(t.secret) }));
  return (req, res, next) => {
    if (digests.length === 0) return next();
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const offered = sha256(match?.[1] ?? '');
    let who: string | undefined;
    for (const d of digests) if (timingSafeEqual(d.digest, offered) && match) who = d.name;
    if (who === undefined) {
      res.set('WWW-Authenticate', 'Bearer realm="changepager"');
      return next(new ApiError('unauthorized'));
    }
    res.locals.tokenName = who;
    next();
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
