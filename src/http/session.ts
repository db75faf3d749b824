import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

// The timeline page's login session. The cookie holds `v2.<id>.<mac>`: a random session id, and an HMAC-SHA256
// of it keyed with the API token that logged in. The database keeps one row per session (the id's SHA-256, the
// token's name, the expiry), so:
// - logging out deletes the row, and the cookie is dead everywhere, whatever a browser kept;
// - sessions survive a restart and work on every instance that shares the database;
// - rotating or removing a token ends every session it opened (the MAC no longer matches a configured token);
// - neither the cookie nor the database holds the token, or a hash of it to test guesses against.

/** `__Host-` needs Secure; browsers reject it otherwise, so plain-http setups get the plain name. */
export const SECURE_SESSION_COOKIE = '__Host-changepager_session';
export const PLAIN_SESSION_COOKIE = 'changepager_session';
export const SESSION_COOKIES: readonly string[] = [SECURE_SESSION_COOKIE, PLAIN_SESSION_COOKIE];

const VERSION = 'v2';

/** A new session for the token `secret`: its id (stored as idHash) and the cookie value. */
export function newSession(secret: string): { idHash: string; value: string } {
  const id = randomBytes(16).toString('base64url');
  const payload = `${VERSION}.${id}`;
  return { idHash: sessionIdHash(id), value: `${payload}.${mac(secret, payload)}` };
}

/** What the database knows a session by: the SHA-256 of its id, so a copy of the database opens no session. */
export function sessionIdHash(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/** A well-formed cookie value's id hash, and a test of its MAC against one token. */
export function readSession(
  value: string | undefined,
): { idHash: string; signedBy: (secret: string) => boolean } | undefined {
  const m = /^(v2\.([A-Za-z0-9_-]{22}))\.([A-Za-z0-9_-]{43})$/.exec(value ?? '');
  if (!m) return undefined;
  const [, payload = '', id = '', offered = ''] = m;
  const given = Buffer.from(offered, 'base64url');
  return {
    idHash: sessionIdHash(id),
    signedBy: (secret) => timingSafeEqual(Buffer.from(mac(secret, payload), 'base64url'), given),
  };
}

function mac(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(`changepager timeline session\n${payload}`).digest('base64url');
}
