import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CodeHostFailure } from '../../src/channels/code-host.js';
import { createGitlabApi } from '../../src/channels/gitlab/client.js';
import { type GitlabStub, startGitlabStub } from '../support/gitlab-stub.js';

// The GitLab REST client against a recording stand-in over real HTTP on loopback: which merge requests a
// deployment shipped (author, merger, link), a bundle since the previous deployment, one note created and then
// edited, and every failure classified for the outbox (retry when, or give up).

const NOW = Date.parse('2026-11-26T11:20:00Z');
const PROJECT = 'shop/checkout';
const SHA = (n: number) => `${String(n).repeat(8)}${'0'.repeat(32)}`;

let stub: GitlabStub;
beforeEach(async () => {
  stub = await startGitlabStub();
  stub.addCommits(PROJECT, [
    { id: SHA(1), title: 'Old release', author_name: 'Old', author_email: 'old@example.com' },
    { id: SHA(2), title: 'Cache cart totals', author_name: 'Alice', author_email: 'alice@example.com' },
    { id: SHA(3), title: "Merge branch 'cache' into 'main'", author_name: 'Bob', author_email: 'bob@example.com' },
    { id: SHA(4), title: 'Fix typo on the receipt', author_name: 'Carol', author_email: 'carol@example.com' },
    { id: SHA(5), title: 'Bump the timeout', author_name: 'Dan', author_email: 'dan@example.com' },
  ]);
  stub.addMergeRequest({
    project: PROJECT,
    iid: 4812,
    title: 'Cache cart totals',
    author: { username: 'alice', name: 'Alice' },
    mergeUser: { username: 'bob', name: 'Bob' },
    commits: [SHA(2), SHA(3)],
  });
  stub.addMergeRequest({
    project: PROJECT,
    iid: 4813,
    title: 'Receipt typo',
    author: { username: 'carol', name: 'Carol', public_email: 'carol@example.com' },
    mergeUser: { username: 'bob', name: 'Bob' },
    commits: [SHA(4)],
  });
});
afterEach(async () => {
  await stub.close();
});

const api = (over: { token?: string; timeoutMs?: number; apiUrl?: string; maxCommits?: number } = {}) =>
  createGitlabApi({
    apiUrl: over.apiUrl ?? stub.apiUrl,
    token: over.token ?? stub.token,
    timeoutMs: over.timeoutMs ?? 5000,
    now: () => NOW,
    ...(over.maxCommits ? { maxCommits: over.maxCommits } : {}),
  });

async function failureOf(promise: Promise<unknown>): Promise<CodeHostFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CodeHostFailure);
  return err as CodeHostFailure;
}

describe('the changes a deployment shipped', () => {
  it('one commit: its merged merge request, with its author, its merger and its link', async () => {
    const changes = await api().changesOf(PROJECT, SHA(3), undefined);
    expect(changes).toEqual([
      {
        author: { login: 'alice', name: 'Alice' },
        mergedBy: { login: 'bob', name: 'Bob' },
        commit: { sha: SHA(3), url: `${stub.webUrl}/${PROJECT}/-/commit/${SHA(3)}` },
        pullRequest: {
          number: 4812,
          url: `${stub.webUrl}/${PROJECT}/-/merge_requests/4812`,
          title: 'Cache cart totals',
        },
      },
    ]);
    // The project is named by its URL-encoded path, and the token travels in PRIVATE-TOKEN.
    expect(stub.calls.map((c) => `${c.method} ${c.rawPath}`)).toEqual([
      `GET /projects/shop%2Fcheckout/repository/commits/${SHA(3)}/merge_requests`,
      'GET /projects/shop%2Fcheckout/merge_requests/4812',
    ]);
    expect(stub.calls.every((c) => c.privateToken === stub.token)).toBe(true);
  });

  it('since the previous deployment: every merge request once, and a commit pushed without one by its git author', async () => {
    const changes = await api().changesOf(PROJECT, SHA(5), SHA(1));
    expect(changes.map((c) => [c.pullRequest?.number, c.author, c.mergedBy?.login, c.commit?.message])).toEqual([
      [4812, { login: 'alice', name: 'Alice' }, 'bob', 'Cache cart totals'],
      [4813, { login: 'carol', name: 'Carol', email: 'carol@example.com' }, 'bob', 'Fix typo on the receipt'],
      [undefined, { email: 'dan@example.com', name: 'Dan' }, undefined, 'Bump the timeout'],
    ]);
    expect(stub.callsTo('GET', /\/repository\/compare$/)[0]?.query).toEqual({ from: SHA(1), to: SHA(5) });
    // Merge request 4812 holds two of the commits: it is asked for once.
    expect(stub.callsTo('GET', /\/merge_requests\/4812$/)).toHaveLength(1);
  });

  it('back to an earlier commit than the previous deployment: no change, and no merge request asked for', async () => {
    expect(await api().changesOf(PROJECT, SHA(1), SHA(5))).toEqual([]);
    expect(stub.callsTo('GET', /merge_requests/)).toEqual([]);
  });

  it('a commit also in a merge request still open: only the merged one shipped it', async () => {
    stub.addMergeRequest({
      project: PROJECT,
      iid: 4900,
      title: 'Follow-up built on the cache',
      author: { username: 'erin' },
      state: 'opened',
      commits: [SHA(2), SHA(3)],
    });
    const changes = await api().changesOf(PROJECT, SHA(3), undefined);
    expect(changes.map((c) => c.pullRequest?.number)).toEqual([4812]);
  });

  it('a very long range: only the newest commits are looked up', async () => {
    const changes = await api({ maxCommits: 1 }).changesOf(PROJECT, SHA(5), SHA(1));
    expect(changes.map((c) => c.author.email)).toEqual(['dan@example.com']);
  });
});

describe("the environment's previous deployment, from GitLab's own list", () => {
  beforeEach(() => {
    stub.deployments.push(
      { project: PROJECT, id: 40, environment: 'production', sha: SHA(1), status: 'success' },
      { project: PROJECT, id: 41, environment: 'production', sha: SHA(2), status: 'failed' },
      { project: PROJECT, id: 42, environment: 'staging', sha: SHA(3), status: 'success' },
      { project: PROJECT, id: 44, environment: 'production', sha: SHA(5), status: 'success' },
    );
  });

  it.each([
    ['the latest successful one before it, of the same environment', 'production', '43', SHA(1)],
    ['none before the first', 'production', '40', undefined],
    ['another environment has its own', 'staging', '43', SHA(3)],
  ])('%s', async (_intent, environment, deploymentId, sha) => {
    await expect(api().previousDeployment?.(PROJECT, environment, deploymentId)).resolves.toBe(sha);
  });

  it('asks for the successful ones of the environment, newest first', async () => {
    await api().previousDeployment?.(PROJECT, 'production', '43');
    expect(stub.callsTo('GET', /\/deployments$/).map((c) => c.query)).toEqual([
      { environment: 'production', status: 'success', order_by: 'id', sort: 'desc', per_page: '20' },
    ]);
  });

  it('a deployment known only by its job (GitLab before 14): nothing asked, nothing known', async () => {
    await expect(api().previousDeployment?.(PROJECT, 'production', 'job-796')).resolves.toBeUndefined();
    expect(stub.calls).toEqual([]);
  });
});

describe("GitLab's documented answers", () => {
  const fixture = (name: string) => readFileSync(new URL(`../fixtures/gitlab/${name}`, import.meta.url), 'utf8');

  it('the list of a commit and the merge request itself read into a change with author, merger and link', async () => {
    const answers: Record<string, string> = {
      '/merge_requests': fixture('commit-merge-requests.json'),
      '/merge_requests/1': fixture('merge-request.json'),
    };
    const fake: typeof fetch = async (input) => {
      const url = String(input);
      const key = Object.keys(answers).find((k) => url.endsWith(k));
      return new Response(key ? answers[key] : '{"message":"404 Not found"}', { status: key ? 200 : 404 });
    };
    const client = createGitlabApi({
      apiUrl: 'https://gitlab.example.com/api/v4',
      token: 't',
      timeoutMs: 1000,
      now: () => NOW,
      fetch: fake,
    });
    const changes = await client.changesOf(
      'my-group/my-project',
      'af5b13261899fb2c0db30abdd0af8b07cb44fdc5',
      undefined,
    );
    expect(changes).toEqual([
      {
        author: { login: 'admin', name: 'Administrator' },
        mergedBy: { login: 'DouweM', name: 'Douwe Maan' },
        mergedAt: '2018-09-07T11:16:17.520Z',
        commit: {
          sha: 'af5b13261899fb2c0db30abdd0af8b07cb44fdc5',
          url: 'http://gitlab.example.com/my-group/my-project/-/commit/af5b13261899fb2c0db30abdd0af8b07cb44fdc5',
        },
        pullRequest: {
          number: 1,
          url: 'http://gitlab.example.com/my-group/my-project/merge_requests/1',
          title: 'test1',
        },
      },
    ]);
  });

  it('the compare example and the note example parse', async () => {
    const fake: typeof fetch = async (input, init) => {
      const url = String(input);
      if (url.includes('/repository/compare')) return new Response(fixture('compare.json'));
      if (url.endsWith('/merge_requests')) return new Response('[]');
      if (url.includes('/repository/commits/'))
        return new Response(JSON.stringify(JSON.parse(fixture('compare.json')).commit));
      if (url.endsWith('/notes') && init?.method === 'POST')
        return new Response(fixture('merge-request-note.json'), { status: 201 });
      return new Response('{"message":"404 Not found"}', { status: 404 });
    };
    const client = createGitlabApi({
      apiUrl: 'https://gitlab.example.com/api/v4',
      token: 't',
      timeoutMs: 1000,
      now: () => NOW,
      fetch: fake,
    });
    const changes = await client.changesOf('janedoe/gitlab-foss', '0b4bc9a4', 'ae73cb07');
    expect(changes).toEqual([
      {
        author: { email: 'user@example.com', name: 'Example User' },
        commit: { sha: '12d65c8dd2b2676fa3ac47d955accc085a37a9c1', message: 'JS fix' },
      },
    ]);
    await expect(client.createComment({ repository: 'my-group/my-project', number: 2 }, 'hi')).resolves.toEqual({
      id: '301',
    });
  });
});

describe('the note on a merge request', () => {
  it('is created once, then edited in place', async () => {
    const target = { repository: PROJECT, number: 4812 };
    const { id } = await api().createComment(target, 'changepager: checkout alerted 7 min after this shipped');
    await api().editComment(target, id, 'changepager: resolved after 12 min');
    expect(stub.notes).toEqual([
      { project: PROJECT, iid: 4812, id: Number(id), body: 'changepager: resolved after 12 min', edits: 1 },
    ]);
    expect(stub.calls.map((c) => [c.method, c.path, c.body])).toEqual([
      [
        'POST',
        `/projects/${PROJECT}/merge_requests/4812/notes`,
        { body: 'changepager: checkout alerted 7 min after this shipped' },
      ],
      ['PUT', `/projects/${PROJECT}/merge_requests/4812/notes/${id}`, { body: 'changepager: resolved after 12 min' }],
    ]);
  });

  it('editing a note that is gone is final (404)', async () => {
    const failure = await failureOf(api().editComment({ repository: PROJECT, number: 4812 }, '12345', 'x'));
    expect([failure.retryable, failure.message]).toEqual([false, 'GitLab edit note: HTTP 404: 404 Note Not Found']);
  });
});

describe('failures, classified for the outbox', () => {
  const target = { repository: PROJECT, number: 4812 };

  it('a 502 is worth retrying', async () => {
    stub.fail({ status: 502, times: 1 });
    const failure = await failureOf(api().createComment(target, 'x'));
    expect([failure.retryable, failure.retryAfterMs, failure.message]).toEqual([
      true,
      undefined,
      'GitLab create note: HTTP 502: 502 stub fault',
    ]);
    expect(stub.notes).toEqual([]);
  });

  it('a 429 with Retry-After: retry after that long', async () => {
    stub.fail({ status: 429, headers: { 'Retry-After': '30' }, body: { message: 'Retry later' }, times: 1 });
    const failure = await failureOf(api().changesOf(PROJECT, SHA(3), undefined));
    expect([failure.retryable, failure.retryAfterMs]).toEqual([true, 30_000]);
  });

  it('a 429 with only RateLimit-Reset (a Unix time): retry when the window resets', async () => {
    stub.fail({ status: 429, headers: { 'RateLimit-Reset': String(NOW / 1000 + 45) }, times: 1 });
    const failure = await failureOf(api().changesOf(PROJECT, SHA(3), undefined));
    expect([failure.retryable, failure.retryAfterMs]).toEqual([true, 45_000]);
  });

  it.each([
    ['401: a wrong or revoked token', 401],
    ['403: a token without access to the project', 403],
    ['404: no such project or merge request', 404],
    ['422: a request GitLab will not take', 422],
  ])('%s is final', async (_intent, status) => {
    stub.fail({ status, times: 1 });
    const failure = await failureOf(api().createComment(target, 'x'));
    expect(failure.retryable).toBe(false);
  });

  it('the token never appears in a failure', async () => {
    const failure = await failureOf(api({ token: 'glpat-SECRET-never-shown' }).createComment(target, 'x'));
    expect(failure.message).toBe('GitLab create note: HTTP 401: 401 Unauthorized');
    expect(failure.message).not.toContain('SECRET');
  });

  it('no answer within the deadline is worth retrying', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer(() => {});
    silent.on('connection', (s: Socket) => sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const apiUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/api/v4`;
      const failure = await failureOf(api({ apiUrl, timeoutMs: 200 }).createComment(target, 'x'));
      expect([failure.retryable, failure.message]).toEqual([
        true,
        'GitLab create note: timeout: no answer within 200 ms',
      ]);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('nothing listening is worth retrying', async () => {
    const closed = await startGitlabStub();
    const apiUrl = closed.apiUrl;
    await closed.close();
    const failure = await failureOf(api({ apiUrl }).createComment(target, 'x'));
    expect(failure.retryable).toBe(true);
  });

  it('a redirect is reported, not followed with the token', async () => {
    stub.fail({ status: 301, headers: { location: 'https://elsewhere.example.com/api/v4' }, times: 1 });
    const failure = await failureOf(api().createComment(target, 'x'));
    expect([failure.retryable, failure.message]).toEqual([
      false,
      'GitLab create note: HTTP 301 redirect; set gitlab.api_url to the address it points to',
    ]);
    expect(stub.calls).toHaveLength(1);
  });

  it('an answer of the wrong shape is final, and says where', async () => {
    const fake: typeof fetch = async () => new Response('{"id": "not a number"}', { status: 201 });
    const client = createGitlabApi({
      apiUrl: 'https://gitlab.example.com/api/v4',
      token: 't',
      timeoutMs: 1000,
      now: () => NOW,
      fetch: fake,
    });
    const failure = await failureOf(client.createComment(target, 'x'));
    expect(failure.retryable).toBe(false);
    expect(failure.message).toMatch(/^GitLab create note: unexpected answer \(id: /);
  });
});
