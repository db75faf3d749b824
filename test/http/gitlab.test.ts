import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { blocksUnder } from '../docs/markdown.js';
import { type GitlabStub, startGitlabStub } from '../support/gitlab-stub.js';
import { amPayload, createHarness, fakeClock, type Harness, TOKEN } from '../support/harness.js';
import { type PagerDutyStub, startPagerDutyStub } from '../support/pagerduty-stub.js';

// GitLab wired in whole, over HTTP with the real SQLite store: a Deployment webhook becomes a deploy whose merge
// request (author, merger, link) the outbox then finds through the REST API stand-in; an alert pages the author
// and writes one note on the merge request, which the resolve edits; a GitLab that answers 502 delays the note,
// never the page; a replayed webhook changes nothing.

const CA_FILE = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
const HOOK_SECRET = 'gitlab-hook-secret-5b1d';
const GITLAB_TOKEN = 'glpat-http-test-token';
const PROJECT = 'shop/checkout';
const OLD = `0dd${'0'.repeat(37)}`;
const SHA = `3f2a9c1e${'7'.repeat(32)}`;
const auth = { Authorization: `Bearer ${TOKEN}` };

/** GitLab's documented Deployment event, moved to this project, commit and time. */
function deploymentEvent(overrides: Record<string, unknown> = {}) {
  const example = JSON.parse(
    readFileSync(new URL('../fixtures/gitlab/deployment-success.json', import.meta.url), 'utf8'),
  ) as Record<string, unknown>;
  return {
    ...example,
    deployment_id: 101,
    environment: 'production',
    status_changed_at: '2026-11-26 12:02:00 +0100',
    project: { ...(example.project as object), path_with_namespace: PROJECT },
    short_sha: SHA.slice(0, 8),
    commit_url: `https://gitlab.example.com/${PROJECT}/-/commit/${SHA}`,
    user: { id: 7, name: 'Deploy Bot', username: 'deploy-bot', email: '[REDACTED]' },
    ...overrides,
  };
}

describe('GitLab: deployments from its webhook, the note on the merge request', () => {
  let gitlab: GitlabStub;
  let pd: PagerDutyStub;
  let h: Harness;
  const clock = fakeClock('2026-11-26T11:02:30Z');

  beforeEach(async () => {
    clock.set('2026-11-26T11:02:30Z');
    gitlab = await startGitlabStub({ token: GITLAB_TOKEN });
    gitlab.addCommits(PROJECT, [
      { id: OLD, title: 'Last week', author_name: 'Old', author_email: 'old@example.com' },
      { id: SHA, title: 'Cache cart totals', author_name: 'Alice', author_email: 'alice@users.noreply.gitlab.com' },
    ]);
    gitlab.addMergeRequest({
      project: PROJECT,
      iid: 4812,
      title: 'Cache cart totals',
      author: { username: 'alice', name: 'Alice' },
      mergeUser: { username: 'bob', name: 'Bob' },
      commits: [SHA],
    });
    pd = await startPagerDutyStub({ https: true });
    pd.users = [
      { id: 'PALICE', email: 'alice@example.com', name: 'Alice' },
      { id: 'PBOB', email: 'bob@example.com', name: 'Bob' },
    ];
    h = createHarness({
      now: clock.now,
      yaml: `
delivery: { max_backoff: PT1M }
pagerduty:
  events_url: ${pd.url}
  api_url: ${pd.url}
  api_token_env: PD_TOKEN
  from: changepager@example.com
  ca_file: ${JSON.stringify(CA_FILE)}
  request_timeout: PT2S
defaults:
  pagerduty: { service_id: PDEFAULT, routing_key_env: PD_KEY }
gitlab:
  api_url: ${gitlab.apiUrl}
  token_env: GITLAB_TOKEN
  webhook_secret_env: GITLAB_HOOK_SECRET
  repositories:
    ${PROJECT}:
      service: checkout
      environments: { production: production }
people:
  - { email: alice@example.com, logins: [alice], pagerduty_user_id: PALICE }
  - { email: bob@example.com, logins: [bob], pagerduty_user_id: PBOB }
`,
      env: {
        PD_TOKEN: 'pd-token-gitlab',
        PD_KEY: 'gitlab-test-routing-key-00000000',
        GITLAB_TOKEN,
        GITLAB_HOOK_SECRET: HOOK_SECRET,
      },
    });
  });
  afterEach(async () => {
    await h.close();
    await gitlab.close();
    await pd.close();
  });

  const hook = (body: object = deploymentEvent(), headers: Record<string, string> = {}) =>
    request(h.app)
      .post('/v1/hooks/gitlab')
      .set({
        'X-Gitlab-Token': HOOK_SECRET,
        'X-Gitlab-Event': 'Deployment Hook',
        'X-Gitlab-Event-UUID': 'ev-0001',
        ...headers,
      })
      .send(body);
  const alert = (status: 'firing' | 'resolved') =>
    request(h.app)
      .post('/v1/alertmanager')
      .set(auth)
      .send(
        amPayload([
          {
            fingerprint: 'a1a1a1a1a1a1a1a1',
            startsAt: '2026-11-26T11:09:00Z',
            status,
            ...(status === 'resolved' ? { endsAt: '2026-11-26T11:21:00Z' } : {}),
          },
        ]),
      );
  /** Delivery passes until the outbox is empty, moving the clock to each next due row (a comment waits for its link). */
  async function deliverAll() {
    for (let i = 0; i < 10; i++) {
      await h.worker.drain();
      const stats = await h.store.outboxStats(clock.now());
      if (stats.depth === 0) return;
      clock.advance(10_000);
    }
    throw new Error('the outbox did not drain');
  }
  const deploy = async () => (await request(h.app).get('/v1/deploys/gitlab-deployment-101').set(auth)).body;

  it('a deployment becomes a deploy of its merge request: author, merger and link', async () => {
    const res = await hook();
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ status: 'stored', deploy: 'gitlab-deployment-101' });
    expect((await deploy()).changes).toEqual([]);

    await h.worker.drain();
    const stored = await deploy();
    expect(stored).toMatchObject({
      service: 'checkout',
      environment: 'production',
      version: SHA,
      at: '2026-11-26T11:02:00.000Z',
    });
    expect(stored.changes).toEqual([
      {
        author: { login: 'alice', name: 'Alice' },
        mergedBy: { login: 'bob', name: 'Bob' },
        commit: { sha: SHA, url: `${gitlab.webUrl}/${PROJECT}/-/commit/${SHA}` },
        pullRequest: {
          number: 4812,
          url: `${gitlab.webUrl}/${PROJECT}/-/merge_requests/4812`,
          title: 'Cache cart totals',
        },
      },
    ]);
    // Every API request carried the token, and only as PRIVATE-TOKEN.
    expect(gitlab.calls.length).toBeGreaterThan(0);
    expect(gitlab.calls.every((c) => c.privateToken === GITLAB_TOKEN)).toBe(true);
  });

  it("the next deployment: the merge requests since the previous one's commit, and GitLab's compare link", async () => {
    const first = deploymentEvent({
      deployment_id: 100,
      status_changed_at: '2026-11-25 09:00:00 +0000',
      short_sha: OLD.slice(0, 8),
      commit_url: `https://gitlab.example.com/${PROJECT}/-/commit/${OLD}`,
    });
    expect((await hook(first, { 'X-Gitlab-Event-UUID': 'ev-0000' })).status).toBe(201);
    await h.worker.drain();
    expect((await hook()).status).toBe(201);
    await h.worker.drain();

    const stored = await deploy();
    expect(stored.previousVersion).toBe(OLD);
    expect(stored.codeHost).toMatchObject({
      previousSha: OLD,
      changes: 'found',
      compareUrl: `${gitlab.apiUrl.replace(/\/api\/v4$/, '')}/${PROJECT}/-/compare/${OLD}...${SHA}`,
    });
    expect(stored.changes.map((c: { pullRequest?: { number: number } }) => c.pullRequest?.number)).toEqual([4812]);
    expect(gitlab.callsTo('GET', /\/repository\/compare$/).map((c) => c.query)).toEqual([{ from: OLD, to: SHA }]);
  });

  it("the first deployment changepager sees: its changes start at the environment's previous one in GitLab", async () => {
    gitlab.deployments.push({ project: PROJECT, id: 90, environment: 'production', sha: OLD, status: 'success' });
    expect((await hook()).status).toBe(201);
    await h.worker.drain();

    const stored = await deploy();
    expect(stored.codeHost).toMatchObject({ previousSha: OLD, changes: 'found' });
    expect(stored.changes.map((c: { pullRequest?: { number: number } }) => c.pullRequest?.number)).toEqual([4812]);
    expect(gitlab.callsTo('GET', /\/repository\/compare$/).map((c) => c.query)).toEqual([{ from: OLD, to: SHA }]);
  });

  it('an alert pages the author and writes one note on the merge request; the resolve edits that note', async () => {
    await hook();
    await h.worker.drain();
    clock.set('2026-11-26T11:09:30Z');
    expect((await alert('firing')).status).toBe(200);
    await deliverAll();

    expect(pd.incidents().map((i) => i.assignments[0]?.assignee.id)).toEqual(['PALICE']);
    expect(gitlab.notes).toHaveLength(1);
    const note = gitlab.notes[0];
    expect(note).toMatchObject({ project: PROJECT, iid: 4812, edits: 0 });
    expect(note?.body).toContain('fired in `checkout` (`production`) at 11:09 UTC');
    expect(note?.body).toContain('Paged: `alice@example.com` ([incident](');
    expect(note?.body).toContain('Status: Firing.');

    clock.set('2026-11-26T11:21:30Z');
    expect((await alert('resolved')).status).toBe(200);
    await deliverAll();
    expect(gitlab.notes).toHaveLength(1);
    expect(gitlab.notes[0]?.edits).toBe(1);
    expect(gitlab.notes[0]?.body).toContain('Resolved at 11:21 UTC');
    expect(gitlab.callsTo('POST', /\/notes$/)).toHaveLength(1);
  });

  it('GitLab answering 502: the page goes out on time, the note once GitLab is back', async () => {
    await hook();
    await h.worker.drain();
    gitlab.fail({ status: 502, path: /\/notes$/, times: 1 });
    clock.set('2026-11-26T11:09:30Z');
    await alert('firing');
    await h.worker.drain();
    // The page is delivered in the first pass, whatever GitLab does.
    expect(pd.incidents()).toHaveLength(1);
    // The note waits for the incident's link, then meets the 502.
    for (let i = 0; i < 5 && gitlab.callsTo('POST', /\/notes$/).length === 0; i++) {
      clock.advance(10_000);
      await h.worker.drain();
    }
    expect(gitlab.callsTo('POST', /\/notes$/)).toHaveLength(1);
    expect(gitlab.notes).toEqual([]);

    clock.advance(2 * 60_000);
    await h.worker.drain();
    expect(gitlab.notes).toHaveLength(1);
    expect(gitlab.callsTo('POST', /\/notes$/)).toHaveLength(2);
    expect(pd.incidents()).toHaveLength(1);
  });

  it('GitLab answering 502 while the changes are looked up: asked again later, and then found', async () => {
    gitlab.fail({ status: 502, times: 1 });
    await hook();
    await h.worker.drain();
    expect((await deploy()).changes).toEqual([]);

    clock.advance(2 * 60_000);
    await h.worker.drain();
    expect((await deploy()).changes.map((c: { pullRequest?: { number: number } }) => c.pullRequest?.number)).toEqual([
      4812,
    ]);
  });

  it('a replayed webhook, and the next status of the same deployment, change nothing', async () => {
    expect((await hook()).status).toBe(201);
    await h.worker.drain();
    const calls = gitlab.calls.length;
    const before = await deploy();

    const replay = await hook();
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual({ status: 'repeat', deploy: 'gitlab-deployment-101' });
    const again = await hook(deploymentEvent(), { 'X-Gitlab-Event-UUID': 'ev-0002', 'Idempotency-Key': 'idem-2' });
    expect(again.status).toBe(200);
    await h.worker.drain();

    expect(gitlab.calls).toHaveLength(calls);
    expect(await deploy()).toEqual(before);
    const list = await request(h.app).get('/v1/deploys?service=checkout').set(auth);
    expect(list.body.deploys.map((d: { id: string }) => d.id)).toEqual(['gitlab-deployment-101']);
  });

  it('an alert before the merge request is known pages on-call, says why, and writes no note', async () => {
    await hook();
    clock.set('2026-11-26T11:09:30Z');
    await alert('firing');
    const decision = (await request(h.app).get('/v1/alerts/a1a1a1a1a1a1a1a1').set(auth)).body.episodes[0].decision;
    expect(decision).toMatchObject({ reason: 'changes_unknown', deployId: 'gitlab-deployment-101' });
    await deliverAll();
    expect(pd.incidents()).toEqual([]);
    expect(pd.alerts()).toHaveLength(1);
    expect(gitlab.notes).toEqual([]);
    // The merge request was still looked up, for the alerts that come after.
    expect((await deploy()).changes.map((c: { author: { login?: string } }) => c.author.login)).toEqual(['alice']);
  });

  it('a redeploy of the earlier commit is the rollback it is: the alert after it is not alice’s, and no note', async () => {
    const at = (sha: string, id: number, when: string) =>
      deploymentEvent({
        deployment_id: id,
        status_changed_at: when,
        short_sha: sha.slice(0, 8),
        commit_url: `https://gitlab.example.com/${PROJECT}/-/commit/${sha}`,
      });
    await hook(at(OLD, 100, '2026-11-25 09:00:00 +0000'), { 'X-Gitlab-Event-UUID': 'ev-0100' });
    await hook(at(SHA, 101, '2026-11-26 11:02:00 +0000'), { 'X-Gitlab-Event-UUID': 'ev-0101' });
    await deliverAll();
    clock.set('2026-11-26T11:06:00Z');
    await hook(at(OLD, 102, '2026-11-26 11:05:00 +0000'), { 'X-Gitlab-Event-UUID': 'ev-0102' });
    await deliverAll();
    const rollback = (await request(h.app).get('/v1/deploys/gitlab-deployment-102').set(auth)).body;
    expect(rollback.rollback).toEqual({ of: ['gitlab-deployment-101'], explicit: false });
    expect(rollback.changes).toEqual([]);
    expect(rollback.codeHost).toMatchObject({ changes: 'found', detail: expect.stringMatching(/^a rollback/) });
    expect(h.logs.filter((l) => l.includes('stay unknown') || l.includes('delivery failed'))).toEqual([]);

    clock.set('2026-11-26T11:09:30Z');
    await alert('firing');
    const decision = (await request(h.app).get('/v1/alerts/a1a1a1a1a1a1a1a1').set(auth)).body.episodes[0].decision;
    expect(decision).toMatchObject({ reason: 'after_rollback', notify: ['alice@example.com'] });
    await deliverAll();
    expect(pd.incidents()).toEqual([]);
    expect(pd.alerts()).toHaveLength(1);
    expect(gitlab.notes).toEqual([]);
  });

  it('comments off for the service: the author is paged, the merge request gets no note', async () => {
    await h.close();
    h = createHarness({
      now: clock.now,
      yaml: `
gitlab:
  api_url: ${gitlab.apiUrl}
  token_env: GITLAB_TOKEN
  webhook_secret_env: GITLAB_HOOK_SECRET
  repositories: { ${PROJECT}: { service: checkout, environments: { production: production } } }
services:
  checkout: { gitlab: { comments: false } }
people:
  - { email: alice@example.com, logins: [alice] }
`,
      env: { GITLAB_TOKEN, GITLAB_HOOK_SECRET: HOOK_SECRET },
    });
    await hook();
    await h.worker.drain();
    clock.set('2026-11-26T11:09:30Z');
    await alert('firing');
    await deliverAll();
    const decision = (await request(h.app).get('/v1/alerts/a1a1a1a1a1a1a1a1').set(auth)).body.episodes[0].decision;
    expect(decision.targets).toEqual([{ kind: 'person', email: 'alice@example.com' }]);
    expect(gitlab.callsTo('POST', /\/notes$/)).toEqual([]);
  });

  it('a running deployment of an environment mapped as a canary stage is a canary deploy', async () => {
    await h.close();
    h = createHarness({
      now: clock.now,
      yaml: `
gitlab:
  api_url: ${gitlab.apiUrl}
  token_env: GITLAB_TOKEN
  webhook_secret_env: GITLAB_HOOK_SECRET
  repositories:
    ${PROJECT}:
      service: checkout
      environments: { production-canary: { environment: production, stage: canary } }
`,
      env: { GITLAB_TOKEN, GITLAB_HOOK_SECRET: HOOK_SECRET },
    });
    const res = await hook(deploymentEvent({ status: 'running', environment: 'production-canary' }));
    expect(res.status).toBe(201);
    expect(await deploy()).toMatchObject({ environment: 'production', stage: 'canary', version: SHA });
  });

  it.each([
    ['a project that is not configured', { project: { path_with_namespace: 'shop/other' } }],
    ['an environment that is not listed', { environment: 'review/feature-x' }],
    ['a failed deployment', { status: 'failed' }],
    ['a running deployment where the environment has no canary stage', { status: 'running' }],
  ])('%s: 202, and no deploy', async (_intent, overrides) => {
    const res = await hook(deploymentEvent(overrides));
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('ignored');
    expect((await request(h.app).get('/v1/deploys/gitlab-deployment-101').set(auth)).status).toBe(404);
  });

  it('a wrong secret token: 401, nothing stored, GitLab not asked', async () => {
    const res = await hook(deploymentEvent(), { 'X-Gitlab-Token': 'not-the-secret' });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_signature');
    expect(res.body.message).toMatch(/^X-Gitlab-Token is not the secret token configured/);
    expect(res.text).not.toContain('not-the-secret');
    expect((await request(h.app).get('/v1/deploys/gitlab-deployment-101').set(auth)).status).toBe(404);
    await h.worker.drain();
    expect(gitlab.calls).toEqual([]);
  });
});

describe('docs/code-hosts.md', () => {
  it("the GitLab section's config is a config changepager loads", () => {
    const [block] = blocksUnder('docs/code-hosts.md', '## GitLab', 'yaml');
    expect(block).toBeDefined();
    const yaml = block?.code ?? '';
    const env = Object.fromEntries([...yaml.matchAll(/_env: (\w+)/g)].map((m) => [m[1], `secret-${m[1]}`]));
    const config = parseConfig(yaml, { path: 'snippet.yaml', env });
    expect(config.gitlab?.repositories).toEqual({
      'shop/checkout': {
        service: 'checkout',
        environments: {
          production: { environment: 'production' },
          'production-canary': { environment: 'production', stage: 'canary' },
        },
      },
    });
  });
});
