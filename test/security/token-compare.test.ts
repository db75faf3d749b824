import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { beforeEach, describe, expect, it, vi } from 'vitest';

// "The comparison takes the same time" is checked by construction, not by a stopwatch (timings in tests are
// flaky and prove little): the offered token is hashed to a fixed-length SHA-256 digest and compared with
// crypto.timingSafeEqual against EVERY configured token, whatever the offered token's length, content or
// position of the match. The benchmark (npm run bench) measures the residual difference and reports it.

const spy = vi.hoisted(() => ({ calls: [] as [Buffer, Buffer][] }));
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  const timingSafeEqual = (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
    spy.calls.push([
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    ]);
    return actual.timingSafeEqual(a, b);
  };
  return { ...actual, default: { ...actual, timingSafeEqual }, timingSafeEqual };
});

const { bearerAuth } = await import('../../src/http/auth.js');

const TOKENS = [
  { name: 'alertmanager', secret: 'am-7d0c4f1e9b2a6c3d8e5f0a1b2c3d4e5f' },
  { name: 'ci', secret: 'ci-0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d' },
  { name: 'short', secret: 'x1' },
];
const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** Runs the middleware on a bare request carrying `authorization`; resolves with what it passed to next(). */
async function authenticate(authorization: string): Promise<{ error: unknown }> {
  const req = {
    method: 'POST',
    get: (name: string) => (name.toLowerCase() === 'authorization' ? authorization : undefined),
  } as unknown as Request;
  const res = { locals: {}, set: () => res } as unknown as Response;
  let error: unknown = 'next not called';
  await bearerAuth(TOKENS)(req, res, (err?: unknown) => {
    error = err;
  });
  return { error };
}

const first = TOKENS[0]?.secret ?? '';
describe('bearer token comparison', () => {
  beforeEach(() => {
    spy.calls.length = 0;
  });

  it.each([
    ['the first configured token', first, true],
    ['the last configured token', 'x1', true],
    ['a token wrong in its first character', `b${first.slice(1)}`, false],
    ['a token wrong in its last character', `${first.slice(0, -1)}0`, false],
    ['a prefix of a token', first.slice(0, 10), false],
    ['a token with one character more', `${first}0`, false],
    ['a one-character token', 'a', false],
    ['a 10,000-character token', 'a'.repeat(10_000), false],
  ])('compares %s as a 32-byte digest against every configured token', async (_intent, offered, accepted) => {
    const { error } = await authenticate(`Bearer ${offered}`);
    expect(error === undefined).toBe(accepted);
    expect(spy.calls).toHaveLength(TOKENS.length);
    for (const [a, b] of spy.calls) {
      expect(a.length).toBe(32);
      expect(b.length).toBe(32);
    }
    // The digest of what was offered is what each stored digest is compared with.
    const offeredDigest = sha256(offered);
    for (const [a, b] of spy.calls) expect(a.equals(offeredDigest) || b.equals(offeredDigest)).toBe(true);
    const stored = spy.calls.map(([a, b]) => (a.equals(offeredDigest) ? b : a).toString('hex')).sort();
    expect(stored).toEqual(TOKENS.map((t) => sha256(t.secret).toString('hex')).sort());
  });

  it.each([
    ['no scheme', first],
    ['the Basic scheme', `Basic ${first}`],
    ['an empty bearer', 'Bearer '],
  ])('still compares against every token for a header with %s, and refuses it', async (_intent, header) => {
    const { error } = await authenticate(header);
    expect((error as { code?: string }).code).toBe('unauthorized');
    expect(spy.calls).toHaveLength(TOKENS.length);
  });
});
