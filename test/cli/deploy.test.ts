import { createServer } from 'node:net';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mergeRequestInGitLabMessage, parseNameEmail, prNumberInGitHubMessage } from '../../src/cli/ci-env.js';
import { runDeploy } from '../../src/cli/deploy.js';
import { TOKEN } from '../support/harness.js';
import { cliIo, listeningService } from './support.js';

// `changepager deploy` run in-process against a real listening service: what it sends is what gets stored.

const GITHUB_PUSH = {
  GITHUB_ACTIONS: 'true',
  GITHUB_SHA: '3f2a9c1e5b7d4a2c9e8f1a0b3c4d5e6f7a8b9c0d',
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_REPOSITORY: 'shop/checkout',
  GITHUB_RUN_ID: '8812731',
  GITHUB_RUN_ATTEMPT: '1',
  GITHUB_ACTOR: 'bob',
  GITHUB_EVENT_NAME: 'push',
  GITHUB_EVENT_PATH: '/github/workflow/event.json',
};
const PUSH_EVENT = {
  ref: 'refs/heads/main',
  head_commit: {
    id: GITHUB_PUSH.GITHUB_SHA,
    message: 'Cache cart totals (#4812)\n\nCo-authored-by: …',
    url: `https://github.com/shop/checkout/commit/${GITHUB_PUSH.GITHUB_SHA}`,
    author: { name: 'Alice', email: 'alice@example.com', username: 'alice' },
  },
  pusher: { name: 'bob' },
};
const GITLAB_MERGE = {
  GITLAB_CI: 'true',
  CI_COMMIT_SHA: '77b0e12a9c3d4e5f60718293a4b5c6d7e8f90123',
  CI_COMMIT_AUTHOR: 'Alice Example <alice@example.com>',
  CI_COMMIT_TITLE: "Merge branch 'cart-cache' into 'main'",
  CI_COMMIT_MESSAGE:
    "Merge branch 'cart-cache' into 'main'\n\nCache cart totals\n\nSee merge request shop/checkout!4812",
  CI_PROJECT_URL: 'https://gitlab.example.com/shop/checkout',
  CI_PIPELINE_ID: '99001',
  CI_JOB_ID: '5550123',
  CI_ENVIRONMENT_NAME: 'production',
  GITLAB_USER_EMAIL: 'bob@example.com',
  GITLAB_USER_LOGIN: 'bob',
  GITLAB_USER_NAME: 'Bob',
};

describe('changepager deploy', () => {
  let svc: Awaited<ReturnType<typeof listeningService>>;
  beforeEach(async () => {
    svc = await listeningService();
  });
  afterEach(async () => {
    await svc.close();
  });
  const server = () => ({ CHANGEPAGER_URL: svc.url, CHANGEPAGER_TOKEN: TOKEN });
  const stored = async (id: string) =>
    (await request(svc.h.app).get(`/v1/deploys/${id}`).set('Authorization', `Bearer ${TOKEN}`)).body;

  it('posts a deploy from flags alone and prints its id', async () => {
    const run = cliIo({ env: server() });
    const code = await runDeploy(
      [
        ...['--service', 'checkout', '--version', 'v142', '--author', 'alice@example.com', '--merged-by', 'bob'],
        ...[
          '--pr-url',
          'https://git.example.com/shop/pull/4812',
          '--stage',
          'canary',
          '--hosts',
          'h1,h2',
          '--hosts',
          'h3',
        ],
      ],
      run.io,
    );
    expect(code, run.stderr).toBe(0);
    const id = run.stdout.trim();
    expect(id).toMatch(/^cli-[0-9a-f-]{36}$/);
    expect(run.stderr).toContain(`changepager: recorded checkout v142 (canary) as ${id}`);
    expect(await stored(id)).toMatchObject({
      service: 'checkout',
      environment: 'production',
      version: 'v142',
      stage: 'canary',
      hosts: ['h1', 'h2', 'h3'],
      changes: [
        {
          author: { email: 'alice@example.com' },
          mergedBy: { login: 'bob' },
          pullRequest: { url: 'https://git.example.com/shop/pull/4812' },
        },
      ],
    });
  });

  it('sends a rollback without an author: --rollback-of names the deploy, --rollback lets changepager find it', async () => {
    const deploy = (version: string, id: string) =>
      runDeploy(
        ['--service', 'checkout', '--version', version, '--author', 'alice', '--id', id],
        cliIo({ env: server() }).io,
      );
    expect(await deploy('v1', 'd-v1')).toBe(0);
    expect(await deploy('v2', 'd-v2')).toBe(0);

    const named = cliIo({ env: server() });
    const code = await runDeploy(
      ['--service', 'checkout', '--version', 'v1', '--rollback-of', 'd-v2', '--id', 'rb-1'],
      named.io,
    );
    expect(code, named.stderr).toBe(0);
    expect(await stored('rb-1')).toMatchObject({ changes: [], rollback: { of: ['d-v2'], explicit: true } });

    const found = cliIo({ env: server() });
    expect(await runDeploy(['--service', 'checkout', '--version', 'v1', '--rollback', '--dry-run'], found.io)).toBe(0);
    expect(JSON.parse(found.stdout)).toMatchObject({ service: 'checkout', version: 'v1', rollback: true, changes: [] });
  });

  it('reads version, author, merger, commit and PR from a GitHub Actions push', async () => {
    const run = cliIo({
      env: { ...server(), ...GITHUB_PUSH },
      files: { '/github/workflow/event.json': JSON.stringify(PUSH_EVENT) },
    });
    expect(
      await runDeploy(['--service', 'checkout', '--stage', 'canary', '--hosts', 'checkout-7f9c-abcde'], run.io),
    ).toBe(0);
    expect(run.stdout.trim()).toBe('gha-8812731-1-checkout-default-canary');
    expect(await stored('gha-8812731-1-checkout-default-canary')).toMatchObject({
      version: GITHUB_PUSH.GITHUB_SHA,
      changes: [
        {
          author: { email: 'alice@example.com', login: 'alice', name: 'Alice' },
          mergedBy: { login: 'bob' },
          commit: {
            sha: GITHUB_PUSH.GITHUB_SHA,
            url: `https://github.com/shop/checkout/commit/${GITHUB_PUSH.GITHUB_SHA}`,
            message: 'Cache cart totals (#4812)',
          },
          pullRequest: { number: 4812, url: 'https://github.com/shop/checkout/pull/4812' },
        },
      ],
    });
  });

  it('reads the author and merger from a merged pull_request event', async () => {
    const event = {
      action: 'closed',
      pull_request: {
        number: 4812,
        html_url: 'https://github.com/shop/checkout/pull/4812',
        title: 'Cache cart totals',
        merged: true,
        user: { login: 'alice' },
        merged_by: { login: 'bob' },
        merge_commit_sha: 'abc',
      },
    };
    const run = cliIo({
      env: { ...server(), ...GITHUB_PUSH, GITHUB_EVENT_NAME: 'pull_request' },
      files: { '/github/workflow/event.json': JSON.stringify(event) },
    });
    expect(await runDeploy(['--service', 'checkout', '--environment', 'staging'], run.io)).toBe(0);
    expect(await stored(run.stdout.trim())).toMatchObject({
      id: 'gha-8812731-1-checkout-staging-full',
      environment: 'staging',
      changes: [
        {
          author: { login: 'alice' },
          mergedBy: { login: 'bob' },
          pullRequest: { number: 4812, url: 'https://github.com/shop/checkout/pull/4812', title: 'Cache cart totals' },
        },
      ],
    });
  });

  it('falls back to the actor when the run was started by hand (workflow_dispatch, no commit author)', async () => {
    const run = cliIo({
      env: { ...server(), ...GITHUB_PUSH, GITHUB_ACTOR: 'carol' },
      files: { '/github/workflow/event.json': JSON.stringify({ inputs: {} }) },
    });
    expect(await runDeploy(['--service', 'checkout'], run.io)).toBe(0);
    expect((await stored(run.stdout.trim())).changes).toEqual([
      {
        author: { login: 'carol' },
        commit: {
          sha: GITHUB_PUSH.GITHUB_SHA,
          url: `https://github.com/shop/checkout/commit/${GITHUB_PUSH.GITHUB_SHA}`,
        },
      },
    ]);
  });

  it('reads GitLab CI: commit author, the merging user, the merge request and the environment', async () => {
    const run = cliIo({ env: { ...server(), ...GITLAB_MERGE } });
    expect(await runDeploy(['--service', 'checkout', '--stage', 'partial', '--percent', '10'], run.io)).toBe(0);
    expect(run.stdout.trim()).toBe('gitlab-99001-5550123-checkout-production-partial-10');
    expect(await stored(run.stdout.trim())).toMatchObject({
      environment: 'production',
      version: GITLAB_MERGE.CI_COMMIT_SHA,
      stage: 'partial',
      percent: 10,
      changes: [
        {
          author: { email: 'alice@example.com', name: 'Alice Example' },
          mergedBy: { email: 'bob@example.com', login: 'bob', name: 'Bob' },
          commit: {
            sha: GITLAB_MERGE.CI_COMMIT_SHA,
            url: `https://gitlab.example.com/shop/checkout/-/commit/${GITLAB_MERGE.CI_COMMIT_SHA}`,
            message: "Merge branch 'cart-cache' into 'main'",
          },
          pullRequest: { number: 4812, url: 'https://gitlab.example.com/shop/checkout/-/merge_requests/4812' },
        },
      ],
    });
  });

  it('lets flags win over what the CI environment says', async () => {
    const run = cliIo({ env: { ...server(), ...GITLAB_MERGE } });
    const code = await runDeploy(
      [
        '--service',
        'checkout',
        '--version',
        'v7',
        '--author',
        'dave',
        '--pr-url',
        'https://x.example/pr/1',
        '--id',
        'mine',
      ],
      run.io,
    );
    expect(code).toBe(0);
    const d = await stored('mine');
    expect(d).toMatchObject({
      version: 'v7',
      changes: [{ author: { login: 'dave' }, mergedBy: { email: 'bob@example.com' } }],
    });
    expect(d.changes[0].pullRequest).toEqual({ url: 'https://x.example/pr/1' });
  });

  it('posts a flag flip with the flipper as author', async () => {
    const run = cliIo({ env: server() });
    const args = ['--kind', 'flag', '--service', 'checkout', '--flag', 'new-cart', '--from', 'false', '--to', 'true'];
    expect(await runDeploy([...args, '--author', 'carol@example.com', '--id', 'flip-1'], run.io)).toBe(0);
    expect(await stored('flip-1')).toMatchObject({
      kind: 'flag',
      version: 'flag:new-cart=true',
      flag: { key: 'new-cart', from: false, to: true },
      changes: [{ author: { email: 'carol@example.com' } }],
    });
  });

  it('answers a retried step with the stored event: a repeat is not an error', async () => {
    const env = { ...server(), ...GITLAB_MERGE };
    expect(await runDeploy(['--service', 'checkout'], cliIo({ env }).io)).toBe(0);
    const again = cliIo({ env });
    expect(await runDeploy(['--service', 'checkout'], again.io)).toBe(0);
    expect(again.stderr).toContain('changepager: already had checkout');
  });

  it.each([
    ['an author the server cannot accept', ['--author', 'alice@'], '400 invalid_payload', 'changes.0.author.email'],
    ['a wrong token', ['--author', 'alice', '--token', 'wrong'], '401 unauthorized', 'Bearer'],
  ])('exits 1 with the server’s own error for %s', async (_intent, extra, code, detail) => {
    const run = cliIo({ env: server() });
    expect(await runDeploy(['--service', 'checkout', '--version', 'v1', ...extra], run.io)).toBe(1);
    expect(run.stderr).toContain(`changepager deploy: ${code}`);
    expect(run.stderr).toContain(detail);
    expect(run.stdout).toBe('');
  });

  it('retries a network failure with the same id, then succeeds', async () => {
    let calls = 0;
    const flaky: typeof fetch = async (input, init) => {
      calls++;
      if (calls === 1) throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } });
      return fetch(input, init);
    };
    const run = cliIo({ env: server(), fetch: flaky });
    expect(
      await runDeploy(['--service', 'checkout', '--version', 'v1', '--author', 'alice', '--id', 'r1'], run.io),
    ).toBe(0);
    expect(run.stderr).toContain('ECONNRESET; retrying');
    expect(run.sleeps).toEqual([1000]);
    expect((await stored('r1')).version).toBe('v1');
  });

  it('gives up after its retries when nothing listens, saying where it tried', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const run = cliIo({ env: { CHANGEPAGER_URL: closed } });
    expect(
      await runDeploy(['--service', 'checkout', '--version', 'v1', '--author', 'a', '--retries', '2'], run.io),
    ).toBe(1);
    expect(run.stderr.endsWith(`cannot reach ${closed}: ECONNREFUSED\n`), run.stderr).toBe(true);
    expect(run.sleeps).toEqual([1000, 2000]);
  });

  it.each([
    ['no service', ['--version', 'v1', '--author', 'a'], '--service is required'],
    ['no version outside CI', ['--service', 's', '--author', 'a'], '--version is required'],
    ['no author outside CI', ['--service', 's', '--version', 'v1'], '--author is required'],
    [
      'a flag without --to',
      ['--kind', 'flag', '--service', 's', '--author', 'a', '--flag', 'k'],
      '--kind flag needs --flag KEY and --to VALUE',
    ],
    ['an unknown option', ['--servce', 's'], "Unknown option '--servce'"],
    [
      'a bad stage',
      ['--service', 's', '--version', 'v', '--author', 'a', '--stage', 'half'],
      '--stage must be canary, partial or full',
    ],
  ])('exits 2 on a usage error: %s', async (_intent, args, message) => {
    const run = cliIo({ env: server() });
    expect(await runDeploy(args, run.io)).toBe(2);
    expect(run.stderr).toContain(message);
  });

  it('reports every usage problem in one go, a bad address included', async () => {
    const run = cliIo({ env: {} });
    const code = await runDeploy(['--service', 'checkout', '--stage', 'half', '--url', 'changepager:8080'], run.io);
    expect(code).toBe(2);
    expect(run.stderr).toBe(
      [
        'changepager deploy: 4 problems:',
        '  - --stage must be canary, partial or full, not "half"',
        '  - --version is required outside GitHub Actions and GitLab CI',
        '  - --author is required outside GitHub Actions and GitLab CI',
        '  - --url must be an http(s) URL, not "changepager:8080"',
        '(changepager deploy --help lists every option)',
        '',
      ].join('\n'),
    );
    expect(run.stdout).toBe('');
  });

  it('rejects a --retries that is not a small whole number instead of retrying forever', async () => {
    const run = cliIo({ env: server() });
    const args = ['--service', 's', '--version', 'v1', '--author', 'a', '--retries', 'many'];
    expect(await runDeploy(args, run.io)).toBe(2);
    expect(run.stderr).toContain('--retries must be a whole number from 0 to 10, not "many"');
  });

  it('sends to the local default http://127.0.0.1:8080 when neither --url nor CHANGEPAGER_URL is set', async () => {
    const asked: string[] = [];
    // The request is addressed to the default and carried to the test's service on its own port.
    const toService: typeof fetch = (input, init) => {
      asked.push(String(input));
      return fetch(String(input).replace('http://127.0.0.1:8080', svc.url), init);
    };
    const run = cliIo({ env: { CHANGEPAGER_TOKEN: TOKEN }, fetch: toService });
    const args = ['--service', 'checkout', '--version', 'v1', '--author', 'alice@example.com', '--id', 'local-1'];
    expect(await runDeploy(args, run.io), run.stderr).toBe(0);
    expect(asked).toEqual(['http://127.0.0.1:8080/v1/deploys']);
    expect((await stored('local-1')).version).toBe('v1');
  });

  it('says the address was the local default when nothing listens there', async () => {
    const refused: typeof fetch = async () => {
      throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    };
    const run = cliIo({ env: {}, fetch: refused });
    const args = ['--service', 's', '--version', 'v1', '--author', 'a', '--retries', '0'];
    expect(await runDeploy(args, run.io)).toBe(1);
    expect(run.stderr).toBe(
      'changepager deploy: cannot reach http://127.0.0.1:8080: ECONNREFUSED (the local default: set --url or CHANGEPAGER_URL to reach another service)\n',
    );
  });

  it('prints the event without sending it on --dry-run', async () => {
    const dry = cliIo({ env: {} });
    expect(
      await runDeploy(['--service', 's', '--version', 'v1', '--author', 'a', '--id', 'x', '--dry-run'], dry.io),
    ).toBe(0);
    expect(JSON.parse(dry.stdout)).toEqual({
      id: 'x',
      service: 's',
      version: 'v1',
      stage: 'full',
      changes: [{ author: { login: 'a' } }],
    });
  });
});

describe('reading commit messages and authors', () => {
  it.each([
    ['Merge pull request #4812 from alice/cart-cache', 4812],
    ['Cache cart totals (#4812)', 4812],
    ['Cache cart totals (#4812)\n\nbody', 4812],
    ['Fix #12 in the cart', undefined],
  ])('GitHub: %j → PR %s', (message, number) => {
    expect(prNumberInGitHubMessage(message)).toBe(number);
  });
  it.each([
    ['Merge branch x\n\nSee merge request shop/checkout!4812', 4812],
    ['Plain commit', undefined],
  ])('GitLab: %j → MR %s', (message, number) => {
    expect(mergeRequestInGitLabMessage(message)).toBe(number);
  });
  it.each([
    ['Alice Example <alice@example.com>', { name: 'Alice Example', email: 'alice@example.com' }],
    ['<alice@example.com>', { email: 'alice@example.com' }],
    ['alice@example.com', { email: 'alice@example.com' }],
    ['Alice', undefined],
  ])('CI_COMMIT_AUTHOR %j', (text, identity) => {
    expect(parseNameEmail(text)).toEqual(identity);
  });
});

/** A loopback port nothing listens on: bound, then released. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}
