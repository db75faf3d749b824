import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CodeHostFailure } from '../../src/channels/code-host.js';
import { createGithubClient, failure } from '../../src/channels/github/client.js';
import { type GithubStub, startGithubStub } from '../support/github-stub.js';

// How GitHub's answers become "try again (when)" or "give up", over real requests to the stand-in.

const NOW = Date.parse('2026-11-26T11:00:00Z');

describe('the GitHub client against the stand-in', () => {
  let gh: GithubStub;
  beforeEach(async () => {
    gh = await startGithubStub();
    gh.repositories['acme/checkout'] = { commits: [], pulls: [] };
  });
  afterEach(async () => {
    await gh.close();
  });
  const client = () =>
    createGithubClient({ apiUrl: gh.apiUrl, token: 'ghp_secret_token_value', timeoutMs: 2000, now: () => NOW });
  const commentError = async () => {
    try {
      await client().createComment({ repository: 'acme/checkout', number: 1 }, 'x');
    } catch (err) {
      return err as CodeHostFailure;
    }
    throw new Error('no failure');
  };

  it.each<{ intent: string; status: number; headers?: Record<string, string>; retryable: boolean; waitMs?: number }>([
    { intent: 'a 502 is retried with the backoff', status: 502, retryable: true },
    {
      intent: 'a secondary rate limit (403 with retry-after) waits as long as it says',
      status: 403,
      headers: { 'retry-after': '60' },
      retryable: true,
      waitMs: 60_000,
    },
    {
      intent: 'a primary rate limit (403, none remaining) waits until x-ratelimit-reset',
      status: 403,
      headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(NOW / 1000 + 300) },
      retryable: true,
      waitMs: 300_000,
    },
    { intent: 'a 429 is retried', status: 429, headers: { 'retry-after': '5' }, retryable: true, waitMs: 5_000 },
    { intent: 'a 403 without a rate limit (no permission) is final', status: 403, retryable: false },
    { intent: 'a 404 is final', status: 404, retryable: false },
    { intent: 'a 422 is final', status: 422, retryable: false },
  ])('$intent', async ({ status, headers, retryable, waitMs }) => {
    gh.fail({ status, ...(headers ? { headers } : {}) });
    const err = await commentError();
    expect(err).toBeInstanceOf(CodeHostFailure);
    expect(err.retryable).toBe(retryable);
    expect(err.retryAfterMs).toBe(waitMs);
    expect(err.message).toContain(`HTTP ${status}`);
  });

  it('retries when nothing answers, and names no token in what it reports', async () => {
    await gh.close();
    const err = await commentError();
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/network error|timeout/);
    expect(err.message).not.toContain('ghp_secret_token_value');
    gh = await startGithubStub();
  });
});

describe('failure', () => {
  it('treats an error without a status as a network failure worth retrying', () => {
    expect(failure('x', new Error('socket hang up'), NOW)).toMatchObject({
      retryable: true,
      message: 'x: network error',
    });
  });
});
