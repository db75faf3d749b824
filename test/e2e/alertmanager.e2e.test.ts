import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { type Service, startService } from '../../src/main.js';
import {
  type Alertmanager,
  amtoolAdd,
  eventually,
  startAlertmanager,
  startWebhookTap,
  type WebhookTap,
} from '../support/alertmanager.js';
import { PD_KEY as CLUSTER_PD_KEY, startCluster } from '../support/cluster.js';
import { type GithubStub, startGithubStub } from '../support/github-stub.js';
import { type GitlabStub, startGitlabStub } from '../support/gitlab-stub.js';
import { TOKEN as CLUSTER_TOKEN } from '../support/harness.js';
import { type PagerDutyStub, startPagerDutyStub } from '../support/pagerduty-stub.js';
import { createTestDatabase } from '../support/postgres.js';
import { type SlackStub, startSlackStub } from '../support/slack-stub.js';

// changepager behind the real Alertmanager 0.25 (Debian's package): alerts fired with amtool, delivered by
// Alertmanager's own webhook notifier with bearer auth, paged to the PagerDuty stand-in, DMs to the Slack one. Each case uses its own
// alertname, so it is its own Alertmanager group and its own page.

const CA_FILE = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
const TOKEN = 'e2e-api-token-5a1f0c9e2b7d4e81';
const CHECKOUT_KEY = 'e2e-checkout-routing-key-00000000';
const DEFAULT_KEY = 'e2e-default-routing-key-000000000';
const GITHUB_TOKEN = 'ghp_e2e_github_token_0123456789';
const GITHUB_SECRET = 'e2e-github-webhook-secret';
const GITLAB_TOKEN = 'glpat-e2e-gitlab-token-0123456789';
const GITLAB_SECRET = 'e2e-gitlab-webhook-secret-token';

describe('changepager behind the real Alertmanager 0.25', () => {
  let dir: string;
  let stub: PagerDutyStub;
  let slack: SlackStub;
  let github: GithubStub;
  let gitlab: GitlabStub;
  let service: Service;
  let tap: WebhookTap;
  let am: Alertmanager;
  const logs: string[] = [];
  /** Processes and servers a single test started; stopped after it even when it fails. */
  const extra: { stop(): Promise<void> }[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'changepager-e2e-'));
    stub = await startPagerDutyStub({ https: true });
    stub.users = [
      { id: 'PALICE', email: 'alice@example.com', name: 'Alice' },
      { id: 'PBOB', email: 'bob@example.com', name: 'Bob' },
    ];
    slack = await startSlackStub();
    slack.users = [{ id: 'UBOB', email: 'bob@example.com' }];
    github = await startGithubStub();
    gitlab = await startGitlabStub({ token: GITLAB_TOKEN });
    const yaml = `
database: { path: ${JSON.stringify(join(dir, 'changepager.db'))} }
listen: { host: 127.0.0.1, port: 0 }
delivery: { poll_interval: PT0.2S, max_backoff: PT1S }
pagerduty:
  events_url: ${stub.url}
  api_url: ${stub.url}
  api_token_env: PD_TOKEN
  from: changepager@example.com
  ca_file: ${JSON.stringify(CA_FILE)}
  request_timeout: PT2S
slack:
  bot_token_env: SLACK_BOT_TOKEN
  signing_secret_env: SLACK_SIGNING_SECRET
  api_url: ${slack.apiUrl}
  bot_id: B0E2E
  bot_user_id: U0E2E
  request_timeout: PT2S
github:
  api_url: ${github.apiUrl}
  web_url: https://github.com
  token_env: GITHUB_TOKEN
  webhook_secret_env: GITHUB_WEBHOOK_SECRET
  request_timeout: PT2S
  repositories:
    acme/cart: { service: cart, environments: { production: production } }
gitlab:
  api_url: ${gitlab.apiUrl}
  token_env: GITLAB_TOKEN
  webhook_secret_env: GITLAB_WEBHOOK_SECRET
  request_timeout: PT2S
  repositories:
    shop/basket: { service: basket, environments: { production: production } }
defaults:
  pagerduty: { service_id: PDEFAULT, routing_key_env: PD_DEFAULT_KEY }
services:
  checkout:
    pagerduty: { service_id: PCHECKOUT, routing_key_env: PD_CHECKOUT_KEY }
people:
  - email: alice@example.com
    logins: [alice]
    pagerduty_user_id: PALICE
    slack_user_id: UALICE
`;
    const config = parseConfig(yaml, {
      path: 'e2e.yaml',
      env: {
        CHANGEPAGER_TOKEN: TOKEN,
        PD_TOKEN: 'e2e-pd-api-token',
        PD_CHECKOUT_KEY: CHECKOUT_KEY,
        PD_DEFAULT_KEY: DEFAULT_KEY,
        SLACK_BOT_TOKEN: 'xoxb-e2e-bot-token',
        SLACK_SIGNING_SECRET: 'e2e-slack-signing-secret',
        GITHUB_TOKEN,
        GITHUB_WEBHOOK_SECRET: GITHUB_SECRET,
        GITLAB_TOKEN,
        GITLAB_WEBHOOK_SECRET: GITLAB_SECRET,
      },
    });
    service = await startService({ config, log: createLogger('info', { write: (l: string) => logs.push(l) }) });
    tap = await startWebhookTap(service.url);
    am = await startAlertmanager({ webhookUrl: `${tap.url}/v1/alertmanager`, token: TOKEN, dir, name: 'am-main' });
  });

  afterEach(async () => {
    await Promise.allSettled(extra.splice(0).map((p) => p.stop()));
  });

  afterAll(async () => {
    await Promise.allSettled([am?.stop(), tap?.close()]);
    await service?.stop();
    await stub?.close();
    await slack?.close();
    await github?.close();
    await gitlab?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${service.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...init.headers },
    });
  const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
  /** Accepted Events API triggers whose page is about this alertname. */
  const triggersFor = (alertname: string) =>
    stub
      .events({ accepted: true })
      .filter((e) => e.event_action === 'trigger' && JSON.stringify(e.payload ?? {}).includes(alertname));
  const webhooksFor = (t: WebhookTap, alertname: string) =>
    t.requests.filter((r) => r.body.groupKey?.includes(`alertname="${alertname}"`));
  const labels = (alertname: string, service: string) => ({
    alertname,
    service,
    env: 'production',
    instance: `${service}-7f9c-abcde:8080`,
    severity: 'critical',
  });

  const dmsTo = (user: string, alertname: string) =>
    slack
      .callsTo('chat.postMessage')
      .filter((c) => c.args.channel === user && JSON.stringify(c.args).includes(alertname));

  it("pages the deploy's author: one PagerDuty incident assigned to alice, and DMs her and the merger", async () => {
    const deploy = await api('/v1/deploys', {
      method: 'POST',
      body: JSON.stringify({
        id: 'e2e-deploy-1',
        service: 'checkout',
        environment: 'production',
        version: 'v142',
        previousVersion: 'v141',
        at: minutesAgo(5),
        changes: [{ author: { email: 'alice@example.com', login: 'alice' }, mergedBy: { email: 'bob@example.com' } }],
      }),
    });
    expect(deploy.status).toBe(201);

    await amtoolAdd(am, {
      labels: labels('E2eAuthorPaged', 'checkout'),
      annotations: { summary: 'Checkout error rate above 5%' },
      start: minutesAgo(1),
    });

    const create = await eventually(
      () => stub.incidentCreates().find((c) => JSON.stringify(c).includes('E2eAuthorPaged')),
      'an incident for E2eAuthorPaged',
    );
    expect(create.incident?.assignments).toEqual([{ assignee: { id: 'PALICE', type: 'user_reference' } }]);
    expect(create.incident?.service).toEqual({ id: 'PCHECKOUT', type: 'service_reference' });
    expect(triggersFor('E2eAuthorPaged')).toEqual([]);

    const webhook = await eventually(
      () => webhooksFor(tap, 'E2eAuthorPaged').find((w) => w.status !== 0),
      'the answered webhook for E2eAuthorPaged',
    );
    expect(webhook?.status).toBe(200);
    const fingerprint = webhook?.body.alerts?.[0]?.fingerprint;
    const history = (await (await api(`/v1/alerts/${fingerprint}`)).json()) as { episodes: { decision: unknown }[] };
    expect(history.episodes[0]?.decision).toMatchObject({ reason: 'author_paged', deployId: 'e2e-deploy-1' });

    // Slack: alice (slack_user_id in config) and bob (found by his email) each get one DM about it.
    await eventually(() => dmsTo('UALICE', 'E2eAuthorPaged').length > 0, 'the DM to alice');
    await eventually(() => dmsTo('UBOB', 'E2eAuthorPaged').length > 0, 'the DM to bob');
    expect(dmsTo('UALICE', 'E2eAuthorPaged')).toHaveLength(1);
    expect(dmsTo('UBOB', 'E2eAuthorPaged')).toHaveLength(1);
    expect(slack.callsTo('users.lookupByEmail').map((c) => c.args.email)).toEqual(['bob@example.com']);
  });

  it('deploy, alert, rollback, second alert: alice paged once, on-call for the second (after_rollback), alice told of both', async () => {
    const post = (body: unknown) => api('/v1/deploys', { method: 'POST', body: JSON.stringify(body) });
    const deploy = {
      id: 'e2e-cart-v2',
      service: 'cart',
      environment: 'production',
      version: 'v2',
      previousVersion: 'v1',
      at: minutesAgo(20),
      changes: [{ author: { email: 'alice@example.com', login: 'alice' } }],
    };
    expect((await post(deploy)).status).toBe(201);
    await amtoolAdd(am, { labels: labels('E2eBeforeRollback', 'cart'), start: minutesAgo(15) });
    const incident = await eventually(
      () => stub.incidentCreates().find((c) => JSON.stringify(c).includes('E2eBeforeRollback')),
      'an incident for alice about E2eBeforeRollback',
    );
    expect(incident.incident?.assignments).toEqual([{ assignee: { id: 'PALICE', type: 'user_reference' } }]);

    const rollback = { id: 'e2e-cart-rb', service: 'cart', environment: 'production', version: 'v1' };
    const recorded = await post({ ...rollback, rollbackOf: 'e2e-cart-v2', at: minutesAgo(10) });
    expect(recorded.status).toBe(201);
    // The straddling alert's incident is told.
    const note = await eventually(
      () => stub.requestsTo('notes').find((n) => JSON.stringify(n.body).includes('Rolled back to v1')),
      'a rollback note on the incident',
    );
    expect(JSON.stringify(note.body)).toContain('by deploy e2e-cart-rb');

    await amtoolAdd(am, { labels: labels('E2eAfterRollback', 'cart'), start: minutesAgo(5) });
    const [trigger] = await eventually(() => {
      const t = triggersFor('E2eAfterRollback');
      return t.length > 0 && t;
    }, 'an on-call trigger for E2eAfterRollback');
    expect(trigger?.routing_key).toBe(DEFAULT_KEY);
    const webhook = await eventually(
      () => webhooksFor(tap, 'E2eAfterRollback').find((w) => w.status !== 0),
      'the answered webhook for E2eAfterRollback',
    );
    const fingerprint = webhook?.body.alerts?.[0]?.fingerprint;
    const history = (await (await api(`/v1/alerts/${fingerprint}`)).json()) as { episodes: { decision: unknown }[] };
    expect(history.episodes[0]?.decision).toMatchObject({
      reason: 'after_rollback',
      targets: [{ kind: 'oncall' }],
      notify: ['alice@example.com'],
    });
    // alice: paged once (the first alert's incident), told of both in Slack.
    expect(stub.incidentCreates().filter((c) => JSON.stringify(c).includes('E2eAfterRollback'))).toEqual([]);
    expect(dmsTo('UALICE', 'E2eBeforeRollback')).toHaveLength(1);
    // The second DM is about the same deploy: it goes in the first one's thread.
    const second = await eventually(
      () => slack.callsTo('chat.postMessage').find((c) => JSON.stringify(c.args).includes('E2eAfterRollback')),
      'the DM to alice about the second alert',
    );
    expect(second.args.thread_ts).toBeDefined();
    expect(JSON.stringify(second.args.blocks)).toContain('Your change had been rolled back before this alert started');
    const verdict = (await (await api('/v1/deploys/e2e-cart-v2/verdict?observe=PT30M')).json()) as { verdict: string };
    expect(verdict.verdict).toBe('rolled_back');
  });

  it('pages on-call through the Events API when no deploy preceded the alert', async () => {
    await amtoolAdd(am, { labels: labels('E2eNoDeploy', 'search'), start: minutesAgo(1) });
    const [trigger] = await eventually(() => {
      const t = triggersFor('E2eNoDeploy');
      return t.length > 0 && t;
    }, 'an on-call trigger for E2eNoDeploy');
    expect(trigger?.routing_key).toBe(DEFAULT_KEY);
    expect(trigger?.payload?.summary).toBe('[FIRING:1] E2eNoDeploy on search');
    expect(stub.incidentCreates().filter((c) => JSON.stringify(c).includes('E2eNoDeploy'))).toEqual([]);
    expect(slack.calls.filter((c) => JSON.stringify(c.args).includes('E2eNoDeploy'))).toEqual([]); // nobody to tell
  });

  it('resolves the PagerDuty alert when Alertmanager sends the resolve', async () => {
    const start = minutesAgo(2);
    await amtoolAdd(am, { labels: labels('E2eResolve', 'search'), start });
    const [trigger] = await eventually(() => {
      const t = triggersFor('E2eResolve');
      return t.length > 0 && t;
    }, 'the trigger for E2eResolve');

    // Re-adding the same labels with an end in the past is how a Prometheus resolves it.
    await amtoolAdd(am, {
      labels: labels('E2eResolve', 'search'),
      start,
      end: new Date(Date.now() - 1000).toISOString(),
    });
    // A resolve event carries only the dedup key: it is matched to the trigger by that.
    const forPage = () => stub.events({ accepted: true }).filter((e) => e.dedup_key === trigger?.dedup_key);
    await eventually(() => forPage().some((e) => e.event_action === 'resolve'), 'the resolve event for E2eResolve');
    expect(forPage().map((e) => e.event_action)).toEqual(['trigger', 'resolve']);
    expect(stub.alertState(DEFAULT_KEY, trigger?.dedup_key ?? '')?.status).toBe('resolved');
    expect(webhooksFor(tap, 'E2eResolve').map((r) => r.body.status)).toEqual(['firing', 'resolved']);
  });

  it('pages once when two Alertmanagers that do not cluster both send the alert (the HA duplicate)', async () => {
    const haTap = await startWebhookTap(service.url);
    extra.push({ stop: () => haTap.close() });
    const pair = await Promise.all(
      ['am-ha-1', 'am-ha-2'].map((name) =>
        startAlertmanager({ webhookUrl: `${haTap.url}/v1/alertmanager`, token: TOKEN, dir, name }),
      ),
    );
    extra.push(...pair);
    // Prometheus sends every alert to every instance, with the same startsAt.
    const start = minutesAgo(1);
    await Promise.all(pair.map((a) => amtoolAdd(a, { labels: labels('E2eHaDuplicate', 'search'), start })));

    const webhooks = await eventually(() => {
      const w = webhooksFor(haTap, 'E2eHaDuplicate');
      // Both recorded and both answered: the tap records a request before changepager's answer comes back.
      return w.length >= 2 && w.every((x) => x.status !== 0) && w;
    }, 'a webhook from each Alertmanager, answered');
    expect(new Set(webhooks.map((w) => w.body.externalURL))).toEqual(new Set(pair.map((a) => a.url)));
    expect(webhooks.map((w) => w.status)).toEqual([200, 200]);
    await eventually(() => triggersFor('E2eHaDuplicate').length > 0, 'the trigger for E2eHaDuplicate');
    await new Promise((r) => setTimeout(r, 2000)); // room for a second page, were there one
    expect(triggersFor('E2eHaDuplicate')).toHaveLength(1);
    const alert = stub.alertState(DEFAULT_KEY, triggersFor('E2eHaDuplicate')[0]?.dedup_key ?? '');
    expect(alert?.incidentsOpened).toBe(1);
    const history = (await (await api(`/v1/alerts/${webhooks[0]?.body.alerts?.[0]?.fingerprint}`)).json()) as {
      episodes: unknown[];
    };
    expect(history.episodes).toHaveLength(1);
  });

  it('two Alertmanagers that do not cluster, each sending to its own replica on one PostgreSQL: one incident, resolved once', async () => {
    const db = await createTestDatabase('cp_e2e');
    const cluster = await startCluster({ n: 2, dir: mkdtempSync(join(dir, 'cluster-')), databaseUrl: db.url, stub });
    extra.push({
      async stop() {
        await cluster.close();
        await db.drop();
      },
    });
    const pair = await Promise.all(
      cluster
        .urls()
        .map((url, i) =>
          startAlertmanager({ webhookUrl: `${url}/v1/alertmanager`, token: CLUSTER_TOKEN, dir, name: `am-pg-${i}` }),
        ),
    );
    extra.push(...pair);
    const start = minutesAgo(1);
    const alert = labels('E2eClusterHa', 'search');
    await Promise.all(pair.map((a) => amtoolAdd(a, { labels: alert, start })));
    const [trigger] = await eventually(() => {
      const t = triggersFor('E2eClusterHa');
      return t.length > 0 && t;
    }, 'the trigger for E2eClusterHa');
    expect(trigger?.routing_key).toBe(CLUSTER_PD_KEY);

    const end = new Date(Date.now() - 1000).toISOString();
    await Promise.all(pair.map((a) => amtoolAdd(a, { labels: alert, start, end })));
    const forPage = () => stub.events({ accepted: true }).filter((e) => e.dedup_key === trigger?.dedup_key);
    await eventually(() => forPage().some((e) => e.event_action === 'resolve'), 'the resolve event for E2eClusterHa');
    await new Promise((r) => setTimeout(r, 2000)); // room for a second trigger or resolve, were there one
    expect(forPage().map((e) => e.event_action)).toEqual(['trigger', 'resolve']);
    const state = stub.alertState(CLUSTER_PD_KEY, trigger?.dedup_key ?? '');
    expect(state).toMatchObject({ incidentsOpened: 1, status: 'resolved' });
    // Each Alertmanager sent the firing and the resolve to its own replica.
    for (const a of pair) expect(a.output()).not.toContain('Notify for alerts failed');
  });

  it("ends in exactly one page when Alertmanager retries after changepager's 503", async () => {
    const flaky = await startWebhookTap(service.url);
    extra.push({ stop: () => flaky.close() });
    flaky.failNext(1);
    const amRetry = await startAlertmanager({
      webhookUrl: `${flaky.url}/v1/alertmanager`,
      token: TOKEN,
      dir,
      name: 'am-retry',
    });
    extra.push(amRetry);
    await amtoolAdd(amRetry, { labels: labels('E2eRetryAfter503', 'search'), start: minutesAgo(1) });

    await eventually(() => triggersFor('E2eRetryAfter503').length > 0, 'the trigger for E2eRetryAfter503', 30_000);
    const statuses = webhooksFor(flaky, 'E2eRetryAfter503').map((r) => r.status);
    expect(statuses[0]).toBe(503);
    expect(statuses.slice(1)).toContain(200);
    await new Promise((r) => setTimeout(r, 2000));
    expect(triggersFor('E2eRetryAfter503')).toHaveLength(1);
    expect(amRetry.output()).toMatch(
      /Notify attempt failed, will retry later|Notify for alerts failed|unexpected status code 503/,
    );
  });

  it("takes a deploy from GitHub's signed webhook, pages alice for an alert after it, DMs her, and comments on her pull request", async () => {
    const [base, merge] = ['1'.repeat(40), '2'.repeat(40)];
    github.repositories['acme/cart'] = {
      commits: [
        { sha: base, author: { login: 'carol' }, message: 'Earlier' },
        { sha: merge, author: { login: 'alice' }, message: 'Merge pull request #77' },
      ],
      pulls: [{ number: 77, title: 'Cache cart totals', user: 'alice', mergedBy: 'bob', commits: [merge] }],
    };
    const body = JSON.stringify({
      deployment_status: { state: 'success', created_at: minutesAgo(5), environment: 'production' },
      deployment: { id: 9_000_001, sha: merge, ref: 'main', environment: 'production', creator: { login: 'ci' } },
      repository: { full_name: 'acme/cart' },
    });
    const hooked = await fetch(`${service.url}/v1/hooks/github`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'deployment_status',
        'x-github-delivery': 'e2e-delivery-1',
        'x-hub-signature-256': `sha256=${createHmac('sha256', GITHUB_SECRET).update(body).digest('hex')}`,
      },
      body,
    });
    expect(hooked.status).toBe(201);
    await eventually(async () => {
      const d = (await (await api('/v1/deploys/github-deployment-9000001')).json()) as {
        codeHost: { changes: string };
      };
      return d.codeHost.changes === 'found';
    }, 'the pull request of the GitHub deploy');

    await amtoolAdd(am, {
      labels: labels('E2eGithubDeploy', 'cart'),
      annotations: { summary: 'Cart errors above 5%' },
      start: minutesAgo(1),
    });
    const create = await eventually(
      () => stub.incidentCreates().find((c) => JSON.stringify(c).includes('E2eGithubDeploy')),
      'an incident for E2eGithubDeploy',
    );
    expect(create.incident?.assignments).toEqual([{ assignee: { id: 'PALICE', type: 'user_reference' } }]);
    await eventually(() => dmsTo('UALICE', 'E2eGithubDeploy').length > 0, 'the DM to alice');
    const comment = await eventually(
      () => github.comments.find((c) => c.body.includes('E2eGithubDeploy')),
      'the PR comment',
    );
    expect(comment).toMatchObject({ repository: 'acme/cart', issue: 77 });
    expect(comment?.body).toContain('- Paged: `alice@example.com` ([incident](');
    expect(github.calls.every((c) => c.authorization === `token ${GITHUB_TOKEN}`)).toBe(true);
  });

  it("takes a deploy from GitLab's Deployment webhook, pages alice for an alert after it, and notes it on her merge request", async () => {
    const [base, merge] = ['3'.repeat(40), '4'.repeat(40)];
    gitlab.addCommits('shop/basket', [
      { id: base, title: 'Earlier', author_name: 'Carol', author_email: 'carol@example.com' },
      {
        id: merge,
        title: "Merge branch 'totals' into 'main'",
        author_name: 'Alice',
        author_email: 'alice@example.com',
      },
    ]);
    gitlab.addMergeRequest({
      project: 'shop/basket',
      iid: 12,
      title: 'Basket totals',
      author: { username: 'alice', name: 'Alice' },
      mergeUser: { username: 'bob', name: 'Bob' },
      commits: [merge],
    });
    const hooked = await fetch(`${service.url}/v1/hooks/gitlab`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-gitlab-event': 'Deployment Hook',
        'x-gitlab-token': GITLAB_SECRET,
        'x-gitlab-event-uuid': 'e2e-gitlab-event-1',
      },
      body: JSON.stringify({
        object_kind: 'deployment',
        status: 'success',
        status_changed_at: minutesAgo(5),
        deployment_id: 7001,
        environment: 'production',
        project: { path_with_namespace: 'shop/basket' },
        short_sha: merge.slice(0, 8),
        commit_url: `https://gitlab.example.com/shop/basket/-/commit/${merge}`,
        user: { username: 'ci', name: 'CI' },
      }),
    });
    expect(hooked.status).toBe(201);
    await eventually(async () => {
      const d = (await (await api('/v1/deploys/gitlab-deployment-7001')).json()) as { codeHost: { changes: string } };
      return d.codeHost.changes === 'found';
    }, 'the merge request of the GitLab deploy');

    await amtoolAdd(am, {
      labels: labels('E2eGitlabDeploy', 'basket'),
      annotations: { summary: 'Basket errors above 5%' },
      start: minutesAgo(1),
    });
    const create = await eventually(
      () => stub.incidentCreates().find((c) => JSON.stringify(c).includes('E2eGitlabDeploy')),
      'an incident for E2eGitlabDeploy',
    );
    expect(create.incident?.assignments).toEqual([{ assignee: { id: 'PALICE', type: 'user_reference' } }]);
    const note = await eventually(
      () => gitlab.notes.find((n) => n.body.includes('E2eGitlabDeploy')),
      'the note on the merge request',
    );
    expect(note).toMatchObject({ project: 'shop/basket', iid: 12 });
    expect(note?.body).toContain('- Paged: `alice@example.com` ([incident](');
    expect(gitlab.calls.every((c) => c.privateToken === GITLAB_TOKEN)).toBe(true);
  });

  it('kept the API token, routing keys and Slack secrets out of the log of the whole run', () => {
    const text = logs.join('\n');
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of [
      TOKEN,
      CHECKOUT_KEY,
      DEFAULT_KEY,
      'e2e-pd-api-token',
      'xoxb-e2e-bot-token',
      'e2e-slack-signing-secret',
      GITHUB_TOKEN,
      GITHUB_SECRET,
      GITLAB_TOKEN,
      GITLAB_SECRET,
    ]) {
      expect(text).not.toContain(secret);
    }
  });
});
