import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';

// GitLab's webhook token comes back as is (no signature), so the check is a comparison; it must take the same
// time whatever the token sent. Checked by construction, as for the bearer tokens: both sides are hashed to
// 32-byte SHA-256 digests and compared with crypto.timingSafeEqual, whatever the length of what was sent.

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

const { tokenMatches } = await import('../../src/channels/gitlab/webhook.js');

const CONFIGURED = 'gl-hook-secret-7f3a9c1e';
const sha256 = (s: string) => createHash('sha256').update(s).digest();

describe('the X-Gitlab-Token comparison', () => {
  beforeEach(() => {
    spy.calls.length = 0;
  });

  it.each([
    ['the configured token', CONFIGURED, true],
    ['a token wrong in its first character', `x${CONFIGURED.slice(1)}`, false],
    ['a token wrong in its last character', `${CONFIGURED.slice(0, -1)}0`, false],
    ['a prefix of it', CONFIGURED.slice(0, 6), false],
    ['a one-character token', 'a', false],
    ['a 10,000-character token', 'a'.repeat(10_000), false],
  ])('%s: one constant-time comparison of two SHA-256 digests', (_intent, sent, expected) => {
    expect(tokenMatches(CONFIGURED, sent)).toBe(expected);
    expect(spy.calls).toEqual([[sha256(CONFIGURED), sha256(sent)]]);
  });
});
