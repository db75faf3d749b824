import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type GithubStub, startGithubStub } from '../support/github-stub.js';
import { amPayload, createHarness, fakeClock, type Harness, TOKEN } from '../support/harness.js';
import { type PagerDutyStub, startPagerDutyStub } from '../support/pagerduty-stub.js';

// GitHub end to end over HTTP: its deployment_status webhook (recorded examples from @octokit/webhooks-examples,
// signed like GitHub signs them), the REST API behind a recording stand-in, PagerDuty behind its own, the whole
// service in-process on a SQLite file.

const auth = { Authorization: `Bearer ${TOKEN}` };
const SECRET = 'github-webhook-secret-for-tests';
const GH_TOKEN = 'ghp_testtoken0123456789';
const CA_FILE = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
const sha = (c: string) => c.repeat(40);
const BASE = sha('a');
const C1 = sha('b');
const SHA = sha('c');
const C2 = sha('d');
const SHA2 = sha('e');

const examples = JSON.parse(
  readFileSync(createRequire(import.meta.url).resolve('@octokit/webhooks-examples/api.github.com/index.json'), 'utf8'),
) as { name: string; examples: Record<string, unknown>[] }[];
/** The fields of a deployment_status payload the tests change. */
interface DeploymentStatusBody {
  repository: { full_name: string };
  deployment: { sha: string; id: number; environment: string };
  deployment_status: { environment: string; state: string; created_at?: string };
}
const example = <T = Record<string, unknown>>(name: string) =>
  structuredClone(examples.find((e) => e.name === name)?.examples[0]) as T;

/** GitHub's deployment_status example, for this repository, commit and environment. */
function deploymentStatus(o: { sha: string; id: number; at: string; environment?: string; state?: string }) {
  const body = example<DeploymentStatusBody>('deployment_status');
  body.repository.full_name = 'acme/checkout';
  body.deployment.sha = o.sha;
  body.deployment.id = o.id;
  body.deployment.environment = o.environment ?? 'production';
  body.deployment_status.environment = o.environment ?? 'production';
  body.deployment_status.state = o.state ?? 'success';
  body.deployment_status.created_at = o.at;
  return body;
}

function config(pdUrl: string, githubUrl: string, checkout = '{}') {
  return `
pagerduty:
  events_url: ${pdUrl}
  api_url: ${pdUrl}
  api_token_env: PD_TOKEN
  from: changepager@example.com
  ca_file: ${CA_FILE}
  request_timeout: PT1S
github:
  api_url: ${githubUrl}
  web_url: https://github.com
  token_env: GH_TOKEN
  webhook_secret_env: GH_SECRET
  request_timeout: PT1S
  repositories:
    acme/checkout:
      service: checkout
      environments:
        production: production
        production-canary: { environment: production, stage: canary }
    Codertocat/Hello-World:
      service: hello
      environments: { production: production }
defaults:
  policy: author
  pagerduty: { service_id: PDEFAULT, routing_key_env: PD_KEY }
services:
  checkout: ${checkout}
people:
  - email: alice@example.com
    logins: [alice]
    pagerduty_user_id: PALICE
  - email: bob@example.com
    logins: [bob]
`;
}

describe('GitHub: deploys from webhooks, the changes from the API, the comment on the pull request', () => {
  let gh: GithubStub;
  let pd: PagerDutyStub;
  let h: Harness;
  const clock = fakeClock('2026-11-26T11:00:00Z');

  const start = (checkout?: string) => {
    h = createHarness({
      now: clock.now,
      yaml: config(pd.url, gh.apiUrl, checkout),
      env: { PD_TOKEN: 'pd-token', PD_KEY: 'routing-key-0000', GH_TOKEN, GH_SECRET: SECRET },
    });
  };

  const hook = (body: unknown, o: { event?: string; delivery?: string; secret?: string | null; raw?: string } = {}) => {
    const raw = o.raw ?? JSON.stringify(body);
    const req = request(h.app)
      .post('/v1/hooks/github')
      .set('Content-Type', 'application/json')
      .set('X-GitHub-Event', o.event ?? 'deployment_status')
      .set('X-GitHub-Delivery', o.delivery ?? 'delivery-1');
    if (o.secret !== null) {
      req.set(
        'X-Hub-Signature-256',
        `sha256=${createHmac('sha256', o.secret ?? SECRET)
          .update(raw)
          .digest('hex')}`,
      );
    }
    return req.send(raw);
  };

  const settle = async () => {
    for (let i = 0; i < 50; i++) {
      await h.worker.drain();
      const next = await h.store.nextDueAt();
      if (next === undefined || next > clock.now() + 600_000) return;
      clock.set(new Date(Math.max(clock.now() + 1000, next)).toISOString());
    }
  };
  const deployOf = async (id: string) => (await request(h.app).get(`/v1/deploys/${id}`).set(auth)).body;
  const fire = (startsAt: string, status: 'firing' | 'resolved' = 'firing') =>
    request(h.app)
      .post('/v1/alertmanager')
      .set(auth)
      .send(
        amPayload([
          {
            fingerprint: 'a100000000000001',
            startsAt,
            status,
            ...(status === 'resolved' ? { endsAt: '2026-11-26T11:20:00Z' } : {}),
          },
        ]),
      );

  beforeEach(async () => {
    clock.set('2026-11-26T11:00:00Z');
    gh = await startGithubStub();
    gh.repositories['acme/checkout'] = {
      commits: [
        { sha: BASE, author: { login: 'carol' }, message: 'Earlier work' },
        { sha: C1, author: { login: 'alice', email: 'alice@users.noreply.github.com' }, message: 'Cache cart totals' },
        { sha: SHA, author: { login: 'bob' }, message: 'Merge pull request #4812 from acme/cache-totals' },
        { sha: C2, author: { login: 'bob' }, message: 'Retry payments' },
        { sha: SHA2, author: { login: 'alice' }, message: 'Merge pull request #4813' },
      ],
      pulls: [
        { number: 4812, title: 'Cache cart totals', user: 'alice', mergedBy: 'bob', commits: [C1, SHA] },
        { number: 4813, title: 'Retry payments', user: 'bob', mergedBy: 'alice', commits: [C2, SHA2] },
      ],
    };
    pd = await startPagerDutyStub({ https: true });
    pd.users = [{ id: 'PALICE', email: 'alice@example.com', name: 'Alice' }];
    start();
  });
  afterEach(async () => {
    await h.close();
    await gh.close();
    await pd.close();
  });

  describe('the webhook', () => {
    it('answers ping with 200, and ignores events other than deployment_status with 202', async () => {
      const ping = await hook(example('ping'), { event: 'ping' });
      expect(ping.status).toBe(200);
      const push = await hook({ ref: 'refs/heads/main' }, { event: 'push' });
      expect(push.status).toBe(202);
      expect(push.body.reason).toMatch(/not deployment_status/);
    });

    it.each([
      { intent: 'unsigned', secret: null, message: /^No X-Hub-Signature-256 header/ },
      {
        intent: 'signed with another secret',
        secret: 'not-the-secret',
        message: /^X-Hub-Signature-256 does not match the body signed with the configured secret/,
      },
    ])(
      'refuses a request $intent with 401 invalid_signature naming the header, and stores nothing',
      async ({ secret, message }) => {
        const res = await hook(deploymentStatus({ sha: SHA, id: 1, at: '2026-11-26T10:58:00Z' }), { secret });
        expect(res.status).toBe(401);
        expect(res.body.error).toBe('invalid_signature');
        expect(res.body.message).toMatch(message);
        expect(res.text).not.toContain('sha256=');
        expect((await request(h.app).get('/v1/deploys').set(auth)).body.deploys).toEqual([]);
        // Logged as every refusal is: the route and why, never the signature.
        const refused = h.logs
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter((l) => l.event === 'request_refused');
        expect(refused).toMatchObject([{ status: 401, route: '/v1/hooks/github' }]);
        expect(h.logs.join('\n')).not.toContain('sha256=');
      },
    );

    it('refuses an unsigned request before reading its body, however large', async () => {
      const res = await hook(undefined, { secret: null, raw: 'x'.repeat(6 * 1024 * 1024) });
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_signature');
    });

    it('refuses a body changed after signing', async () => {
      const body = deploymentStatus({ sha: SHA, id: 1, at: '2026-11-26T10:58:00Z' });
      const signed = JSON.stringify(body);
      const sig = `sha256=${createHmac('sha256', SECRET).update(signed).digest('hex')}`;
      const res = await request(h.app)
        .post('/v1/hooks/github')
        .set('Content-Type', 'application/json')
        .set('X-GitHub-Event', 'deployment_status')
        .set('X-GitHub-Delivery', 'd')
        .set('X-Hub-Signature-256', sig)
        .send(signed.replace('production', 'staging'));
      expect(res.status).toBe(401);
    });

    it('answers a malformed deployment_status with 400 listing every problem', async () => {
      const body = deploymentStatus({ sha: SHA, id: 1, at: '2026-11-26T10:58:00Z' });
      body.deployment.sha = 'not a sha';
      delete body.deployment_status.created_at;
      const res = await hook(body);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_payload');
      expect(res.body.details.problems.map((p: { path: string }) => p.path).sort()).toEqual([
        'deployment.sha',
        'deployment_status.created_at',
      ]);
      const broken = await hook(undefined, { raw: '{"deployment": ' });
      expect(broken.status).toBe(400);
      expect(broken.body.error).toBe('invalid_json');
    });

    it("stores GitHub's recorded example as a deploy of the service its repository maps to", async () => {
      const res = await hook(example('deployment_status'));
      expect(res.status).toBe(201);
      const deploy = await deployOf(res.body.deploy);
      expect(deploy).toMatchObject({
        id: 'github-deployment-145988746',
        service: 'hello',
        environment: 'production',
        version: 'f95f852bd8fca8fcc58a9a2d6c842781e32a215e',
        stage: 'full',
        at: '2019-05-15T15:20:55.000Z',
        codeHost: { host: 'github', repository: 'Codertocat/Hello-World', deliveryId: 'delivery-1' },
      });
    });

    it('ignores an unmapped repository or environment with 202, and logs why', async () => {
      const other = deploymentStatus({ sha: SHA, id: 2, at: '2026-11-26T10:58:00Z' });
      other.repository.full_name = 'acme/unknown';
      expect((await hook(other)).status).toBe(202);
      const staging = await hook(
        deploymentStatus({ sha: SHA, id: 3, at: '2026-11-26T10:58:00Z', environment: 'staging' }),
      );
      expect(staging.status).toBe(202);
      expect(staging.body.reason).toMatch(/environment staging of acme\/checkout is not listed/);
      expect(h.logs.join('\n')).toContain('repository acme/unknown is not configured under github.repositories');
      expect((await request(h.app).get('/v1/deploys').set(auth)).body.deploys).toEqual([]);
    });

    it('takes in_progress as the canary stage of a canary environment, and not of a full one', async () => {
      const canary = await hook(
        deploymentStatus({
          sha: SHA,
          id: 5,
          at: '2026-11-26T10:58:00Z',
          environment: 'production-canary',
          state: 'in_progress',
        }),
      );
      expect(canary.status).toBe(201);
      expect((await deployOf(canary.body.deploy)).stage).toBe('canary');
      const full = await hook(deploymentStatus({ sha: SHA, id: 6, at: '2026-11-26T10:58:00Z', state: 'in_progress' }), {
        delivery: 'delivery-2',
      });
      expect(full.status).toBe(202);
    });

    it('changes nothing on a replay of a delivery', async () => {
      const body = deploymentStatus({ sha: SHA, id: 7, at: '2026-11-26T10:58:00Z' });
      expect((await hook(body)).status).toBe(201);
      await settle();
      const calls = gh.calls.length;
      const before = await deployOf('github-deployment-7');
      const replay = await hook(body);
      expect(replay.status).toBe(200);
      expect(replay.body.status).toBe('repeat');
      await settle();
      expect(await deployOf('github-deployment-7')).toEqual(before);
      expect(gh.calls.length).toBe(calls);
    });
  });

  describe('the changes', () => {
    it('finds the pull request of the deployed commit, its author and who merged it, with the token', async () => {
      await hook(deploymentStatus({ sha: SHA, id: 10, at: '2026-11-26T10:58:00Z' }));
      expect((await deployOf('github-deployment-10')).codeHost.changes).toBe('pending');
      await settle();
      const deploy = await deployOf('github-deployment-10');
      expect(deploy.changes).toEqual([
        {
          author: { login: 'alice' },
          mergedBy: { login: 'bob' },
          mergedAt: '2026-11-26T10:50:00Z',
          commit: {
            sha: SHA,
            url: `https://github.com/acme/checkout/commit/${SHA}`,
            message: 'Merge pull request #4812 from acme/cache-totals',
          },
          pullRequest: { number: 4812, url: 'https://github.com/acme/checkout/pull/4812', title: 'Cache cart totals' },
        },
      ]);
      expect(deploy.codeHost).toMatchObject({ changes: 'found' });
      // Merged at 10:50, deployed at 10:58: the four keys' lead time for changes.
      const stats = (await request(h.app).get('/v1/stats?service=checkout&since=P1D').set(auth)).body;
      expect(stats.services[0]?.leadTimeSeconds).toBe(480);
      expect(gh.calls.every((c) => c.authorization === `token ${GH_TOKEN}`)).toBe(true);
    });

    it('recognises a bundle: every pull request since the previous deploy is a change, and on-call is paged', async () => {
      await hook(deploymentStatus({ sha: BASE, id: 20, at: '2026-11-26T09:00:00Z' }), { delivery: 'd-20' });
      await settle();
      clock.set('2026-11-26T11:00:00Z');
      await hook(deploymentStatus({ sha: SHA2, id: 21, at: '2026-11-26T10:58:00Z' }), { delivery: 'd-21' });
      await settle();
      const deploy = await deployOf('github-deployment-21');
      expect(deploy.previousVersion).toBe(BASE);
      expect(deploy.codeHost.compareUrl).toBe(`https://github.com/acme/checkout/compare/${BASE}...${SHA2}`);
      expect(deploy.changes.map((c: { pullRequest: { number: number } }) => c.pullRequest.number)).toEqual([
        4812, 4813,
      ]);
      expect((await fire('2026-11-26T11:03:00Z')).status).toBe(200);
      const history = (await request(h.app).get('/v1/alerts/a100000000000001').set(auth)).body;
      expect(history.episodes[0].decision.reason).toBe('ambiguous_bundle');
      await settle();
      expect(gh.comments).toEqual([]);
    });

    it("starts from GitHub's last successful deployment of the environment when changepager stored none", async () => {
      const repo = gh.repositories['acme/checkout'];
      if (repo) {
        repo.deployments = [
          { id: 50, sha: BASE, environment: 'production', states: ['in_progress', 'success'] },
          { id: 51, sha: C1, environment: 'production', states: ['in_progress', 'failure'] },
          { id: 52, sha: C2, environment: 'staging', states: ['success'] },
        ];
      }
      await hook(deploymentStatus({ sha: SHA2, id: 53, at: '2026-11-26T10:58:00Z' }));
      await settle();
      const deploy = await deployOf('github-deployment-53');
      expect(deploy.codeHost.previousSha).toBe(BASE);
      expect(deploy.codeHost.compareUrl).toBe(`https://github.com/acme/checkout/compare/${BASE}...${SHA2}`);
      expect(deploy.changes.map((c: { pullRequest: { number: number } }) => c.pullRequest.number)).toEqual([
        4812, 4813,
      ]);
    });

    it('starts the changes of a full rollout before its canary of the same commit, not at the canary', async () => {
      await hook(deploymentStatus({ sha: BASE, id: 60, at: '2026-11-26T09:00:00Z' }), { delivery: 'd-60' });
      await hook(
        deploymentStatus({
          sha: SHA2,
          id: 61,
          at: '2026-11-26T10:50:00Z',
          environment: 'production-canary',
          state: 'in_progress',
        }),
        { delivery: 'd-61' },
      );
      await hook(deploymentStatus({ sha: SHA2, id: 62, at: '2026-11-26T10:58:00Z' }), { delivery: 'd-62' });
      await settle();
      const full = await deployOf('github-deployment-62');
      expect(full.previousVersion).toBe(BASE);
      expect(full.changes).toHaveLength(2);
    });

    it('stores the deploy at once while GitHub fails, and finds the changes once it answers', async () => {
      gh.fail({ status: 502, times: 2 });
      const res = await hook(deploymentStatus({ sha: SHA, id: 30, at: '2026-11-26T10:58:00Z' }));
      expect(res.status).toBe(201);
      await h.worker.drain();
      expect((await deployOf('github-deployment-30')).codeHost.changes).toBe('pending');
      await settle();
      expect((await deployOf('github-deployment-30')).codeHost.changes).toBe('found');
    });

    it('gives up on a 4xx and says why on the deploy, keeping what the webhook said', async () => {
      gh.fail({ status: 404 });
      await hook(deploymentStatus({ sha: SHA, id: 31, at: '2026-11-26T10:58:00Z' }));
      await settle();
      const deploy = await deployOf('github-deployment-31');
      expect(deploy.version).toBe(SHA);
      expect(deploy.changes).toEqual([]);
      expect(deploy.codeHost).toMatchObject({ changes: 'unavailable', detail: expect.stringContaining('HTTP 404') });
    });

    it('gives up after enrich_within while GitHub keeps failing, and says so on the deploy', async () => {
      gh.fail({ status: 502 });
      await hook(deploymentStatus({ sha: SHA, id: 33, at: '2026-11-26T10:58:00Z' }));
      for (let i = 0; i < 10; i++) {
        await h.worker.drain();
        clock.advance(10 * 60_000);
      }
      await h.worker.drain();
      const deploy = await deployOf('github-deployment-33');
      expect(deploy.codeHost).toMatchObject({
        changes: 'unavailable',
        detail: expect.stringMatching(/HTTP 502; still failing after 60 min$/),
      });
      expect(deploy.changes).toEqual([]);
      const calls = gh.calls.length;
      clock.advance(60 * 60_000);
      await h.worker.drain();
      expect(gh.calls.length).toBe(calls);
    });

    it("takes a redeploy of an earlier commit for the rollback it is: the alert after it is not the change's", async () => {
      await hook(deploymentStatus({ sha: BASE, id: 70, at: '2026-11-26T09:00:00Z' }), { delivery: 'd-70' });
      await settle();
      clock.set('2026-11-26T10:40:00Z');
      await hook(deploymentStatus({ sha: SHA, id: 71, at: '2026-11-26T10:30:00Z' }), { delivery: 'd-71' });
      await settle();
      expect((await deployOf('github-deployment-71')).changes).toHaveLength(1);
      clock.set('2026-11-26T10:52:00Z');
      // The team rolls back by deploying the earlier commit again through GitHub.
      await hook(deploymentStatus({ sha: BASE, id: 72, at: '2026-11-26T10:50:00Z' }), { delivery: 'd-72' });
      await settle();
      const rollback = await deployOf('github-deployment-72');
      expect(rollback.rollback).toEqual({ of: ['github-deployment-71'], explicit: false });
      expect(rollback.changes).toEqual([]);
      expect(rollback.codeHost).toMatchObject({ changes: 'found', detail: expect.stringMatching(/rollback/) });
      expect(h.logs.filter((l) => l.includes('stay unknown') || l.includes('delivery failed'))).toEqual([]);

      clock.set('2026-11-26T10:56:00Z');
      expect((await fire('2026-11-26T10:55:00Z')).status).toBe(200);
      await settle();
      const history = (await request(h.app).get('/v1/alerts/a100000000000001').set(auth)).body;
      expect(history.episodes[0].decision.reason).toBe('after_rollback');
      expect(history.episodes[0].decision.notify).toEqual(['alice@example.com']);
      expect(pd.incidents()).toEqual([]);
      expect(pd.alerts()).toHaveLength(1);
      expect(gh.comments).toEqual([]);
    });

    it('knows a deploy of a commit older than the last one ships no change, without a failed delivery', async () => {
      const repo = gh.repositories['acme/checkout'];
      if (repo) repo.deployments = [{ id: 80, sha: SHA2, environment: 'production', states: ['success'] }];
      await hook(deploymentStatus({ sha: SHA, id: 81, at: '2026-11-26T10:58:00Z' }));
      await settle();
      const deploy = await deployOf('github-deployment-81');
      expect(deploy.rollback).toBeNull();
      expect(deploy.changes).toEqual([]);
      expect(deploy.codeHost).toMatchObject({
        changes: 'found',
        previousSha: SHA2,
        detail: `no commit since ${SHA2.slice(0, 12)}: a redeploy of an earlier commit ships no change of its own`,
      });
      expect(h.logs.filter((l) => l.includes('stay unknown') || l.includes('delivery failed'))).toEqual([]);
      await fire('2026-11-26T11:00:00Z');
      const history = (await request(h.app).get('/v1/alerts/a100000000000001').set(auth)).body;
      expect(history.episodes[0].decision.reason).toBe('deploy_without_changes');
    });

    it('pages on-call for an alert decided before the changes are known', async () => {
      gh.fail({ status: 502 });
      await hook(deploymentStatus({ sha: SHA, id: 32, at: '2026-11-26T10:58:00Z' }));
      await fire('2026-11-26T11:00:00Z');
      const history = (await request(h.app).get('/v1/alerts/a100000000000001').set(auth)).body;
      expect(history.episodes[0].decision.reason).toBe('changes_unknown');
      await h.worker.drain();
      expect(pd.events({ accepted: true }).filter((e) => e.event_action === 'trigger')).toHaveLength(1);
    });
  });

  describe('the comment', () => {
    const deployed = async () => {
      await hook(deploymentStatus({ sha: SHA, id: 40, at: '2026-11-26T10:58:00Z' }));
      await settle();
      clock.set('2026-11-26T11:05:00Z');
    };

    it('pages alice, and writes one comment on her pull request; resolving edits the same comment', async () => {
      await deployed();
      await fire('2026-11-26T11:05:00Z');
      await settle();
      expect(pd.incidents()).toHaveLength(1);
      expect(gh.comments).toHaveLength(1);
      const [comment] = gh.comments;
      expect(comment).toMatchObject({ repository: 'acme/checkout', issue: 4812, edits: 0 });
      expect(comment?.body).toContain('`HighErrorRate` fired in `checkout` (`production`) at 11:05 UTC, 7 min after');
      expect(comment?.body).toContain('- Paged: `alice@example.com` ([incident](');
      expect(comment?.body).toContain(pd.incidents()[0]?.html_url);
      expect(comment?.body).toContain('- Status: Firing.');
      // Waiting for the incident's link is no failure: nothing about it is logged as one.
      expect(h.logs.filter((l) => l.includes('github_comment') && l.includes('delivery failed'))).toEqual([]);

      // Alertmanager repeats the group: nothing new on the pull request.
      await fire('2026-11-26T11:05:00Z');
      await settle();
      expect(gh.comments).toHaveLength(1);
      expect(gh.comments[0]?.edits).toBe(0);

      clock.set('2026-11-26T11:21:00Z');
      await fire('2026-11-26T11:05:00Z', 'resolved');
      await settle();
      expect(gh.comments).toHaveLength(1);
      expect(gh.comments[0]?.edits).toBe(1);
      expect(gh.comments[0]?.body).toContain('- Status: Resolved at 11:21 UTC.');
    });

    it('writes nothing on the pull request of a change rolled back before the alert started', async () => {
      await deployed();
      const [stored] = (await request(h.app).get('/v1/deploys').set(auth)).body.deploys;
      const rollback = await request(h.app).post('/v1/deploys').set(auth).send({
        id: 'rb-1',
        service: 'checkout',
        environment: 'production',
        version: BASE,
        rollbackOf: stored.id,
        at: '2026-11-26T11:01:00Z',
      });
      expect(rollback.status).toBe(201);
      await fire('2026-11-26T11:05:00Z');
      await settle();
      const alert = (await request(h.app).get('/v1/alerts/a100000000000001').set(auth)).body;
      expect(alert.episodes[0].decision.reason).toBe('after_rollback');
      expect(pd.alerts()).toHaveLength(1);
      expect(gh.comments).toEqual([]);
    });

    it('puts the evidence on the pull request when the deploy was compared on its metrics', async () => {
      await deployed();
      await fire('2026-11-26T11:05:00Z');
      const [history] = await h.store.alertHistory('a100000000000001');
      const judged = {
        verdict: 'worse' as const,
        sentence: 'error ratio 8.1 % on the new version vs 0.3 % on the old (Mann-Whitney p < 0.001)',
        metrics: [],
        from: clock.now() - 420_000,
        to: clock.now(),
      };
      await h.store.recordEvidence(history?.episode.id as number, judged, 'advisory', clock.now());
      await settle();
      expect(gh.comments).toHaveLength(1);
      expect(gh.comments[0]?.body).toContain('Evidence:');
      expect(gh.comments[0]?.body).toContain('error ratio 8.1 % on the new version vs 0.3 % on the old');
    });

    it('edits the comment when alice says it is not her change (as the Slack button records it)', async () => {
      await deployed();
      await fire('2026-11-26T11:05:00Z');
      await settle();
      expect(gh.comments).toHaveLength(1);
      const [history] = await h.store.alertHistory('a100000000000001');
      clock.set('2026-11-26T11:08:00Z');
      expect(await h.store.recordNotMine(history?.episode.id ?? 0, 'alice@example.com', clock.now())).toEqual({
        recorded: true,
      });
      await settle();
      expect(gh.comments).toHaveLength(1);
      expect(gh.comments[0]?.edits).toBe(1);
      expect(gh.comments[0]?.body).toContain('`alice@example.com` said this is not their change at 11:08 UTC');
    });

    it('pages on time while GitHub answers 502, and comments once it is back', async () => {
      await deployed();
      gh.fail({ status: 502, match: /comments/ });
      await fire('2026-11-26T11:05:00Z');
      await h.worker.drain();
      expect(pd.incidents()).toHaveLength(1);
      expect(gh.comments).toEqual([]);
      gh.clearFaults();
      await settle();
      expect(gh.comments).toHaveLength(1);
    });

    it('waits as long as a secondary rate limit says before it tries again', async () => {
      await deployed();
      gh.fail({ status: 403, headers: { 'retry-after': '120' }, times: 1, match: /comments/ });
      await fire('2026-11-26T11:05:00Z');
      const commentCalls = () => gh.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/comments'));
      // The comment waits a few seconds for the incident's link, then meets the rate limit.
      for (let i = 0; i < 5 && commentCalls().length === 0; i++) {
        await h.worker.drain();
        if (commentCalls().length === 0) clock.advance(6_000);
      }
      expect(commentCalls()).toHaveLength(1);
      const limitedAt = clock.now();
      expect(await h.store.nextDueAt(['github_comment'])).toBeGreaterThanOrEqual(limitedAt + 120_000);
      await settle();
      expect(commentCalls()).toHaveLength(2);
      expect(gh.comments).toHaveLength(1);
    });

    it('writes nothing for a service whose comments are off', async () => {
      await h.close();
      start('{ github: { comments: false } }');
      await deployed();
      await fire('2026-11-26T11:05:00Z');
      await settle();
      expect(pd.incidents()).toHaveLength(1);
      expect(gh.comments).toEqual([]);
    });
  });
});
