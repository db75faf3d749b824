import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

// The timeline page's login session. The cookie holds `v1.<expiry>.<nonce>.<mac>`, where mac is an HMAC-SHA256
// keyed with the API token that logged in. So the cookie never carries the token (nor a hash of it an attacker
// could test guesses against without the HMAC's message), the server stores nothing, sessions survive a
// restart, and rotating the token ends every session it signed.

/** `__Host-` needs Secure; browsers reject it otherwise, so plain-http setups get the plain name. */
export const SECURE_SESSION_COOKIE = '__Host-changepager_session';
export const PLAIN_SESSION_COOKIE = 'changepager_session';
export const SESSION_COOKIES: readonly string[] = [SECURE_SESSION_COOKIE, PLAIN_SESSION_COOKIE];

const VERSION = 'v1';

/** A new session value for the token `secret`, valid until `expiresAt` (epoch ms). */
export function signSession(secret: string, expiresAt: number): string {
  const payload = `${VERSION}.${expiresAt.toString(36)}.${randomBytes(16).toString('base64url')}`;
  return `${payload}.${mac(secret, payload)}`;
}

/**
 * The key that signed `value`, when it is well formed, unexpired at `now` and signed by one of `keys`. Every
 * key is tried, so which one matched does not show in the timing.
 */
export function readSession<K extends { secret: string }>(
  value: string | undefined,
  now: number,
  keys: readonly K[],
): K | undefined {
  const m = /^(v1\.([0-9a-z]{1,12})\.[A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(value ?? '');
  if (!m) return undefined;
  const [, payload = '', expiry = '', offered = ''] = m;
  if (Number.parseInt(expiry, 36) <= now) return undefined;
  const given = Buffer.from(offered, 'base64url');
  let found: K | undefined;
  for (const k of keys) {
    if (timingSafeEqual(Buffer.from(mac(k.secret, payload), 'base64url'), given)) found = k;
  }
  return found;
}

function mac(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(`changepager timeline session\n${payload}`).digest('base64url');
}
