import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { type Service, startService } from '../../src/main.js';
import { type PagerDutyStub, startPagerDutyStub } from '../support/pagerduty-stub.js';
import { type SlackStub, startSlackStub } from '../support/slack-stub.js';
import { eventually } from '../support/wait.js';

// A whole run with distinctive secret values (API tokens from env and from a file, PagerDuty routing keys and
// API token, Slack bot token and signing secret): deploys, alerts, PagerDuty and Slack deliveries with failures
// and fallbacks, wrong tokens, config errors. Then every log line, every API response (status, headers, body),
// every config error, the CLI's output and the database file itself are searched for each secret.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CA_FILE = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
const SECRETS = {
  CHANGEPAGER_TOKEN: 'SeCrEt-env-api-token-61f0c2d9a8b7e6f5',
  CI_TOKEN: 'SeCrEt-ci-api-token-0d9c8b7a6f5e4d3c',
  FILE_TOKEN: 'SeCrEt-file-api-token-a1b2c3d4e5f6a7b8',
  PD_TOKEN: 'SeCrEt-pd-rest-token-9e8d7c6b5a4f3e2d',
  PD_DEFAULT_KEY: 'SeCrEtDefaultRoutingKey00000000aa',
  PD_CHECKOUT_KEY: 'SeCrEtCheckoutRoutingKey0000000bb',
  SLACK_BOT_TOKEN: 'xoxb-SeCrEt-slack-bot-1234567890-abcdef',
  SLACK_SIGNING_SECRET: 'SeCrEt-slack-signing-5f4e3d2c1b0a9f8e',
} as const;
type Env = Record<string, string>;

/** Every form in which a secret could leak verbatim. */
const forms = (s: string) => [s, Buffer.from(s).toString('base64'), encodeURIComponent(s)];

describe('secrets never appear in logs or API output', () => {
  let dir: string;
  let pd: PagerDutyStub;
  let slack: SlackStub;
  let service: Service | undefined;
  const logs: string[] = [];
  const outputs: string[] = [];
  const configErrors: string[] = [];
  let env: Env;
  let yaml: string;

  /** A request as a client would make it; the whole answer (status, headers, body) is kept for the search. */
  async function call(method: string, path: string, token: string | undefined, body?: unknown) {
    const res = await fetch(`${service?.url}${path}`, {
      method,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    outputs.push(`${method} ${path} → ${res.status}\n${JSON.stringify([...res.headers])}\n${text}`);
    return { status: res.status, text };
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'changepager-secrets-'));
    writeFileSync(join(dir, 'token'), `${SECRETS.FILE_TOKEN}\n`);
    pd = await startPagerDutyStub({ https: true });
    pd.users = [{ id: 'PALICE', email: 'alice@example.com', name: 'Alice' }];
    slack = await startSlackStub();
    slack.users = [{ id: 'UALICE', email: 'alice@example.com' }];
    env = { ...SECRETS };
    yaml = `
database: { path: ${JSON.stringify(join(dir, 'changepager.db'))} }
listen: { host: 127.0.0.1, port: 0 }
auth:
  tokens:
    - { name: ci, token_env: CI_TOKEN }
    - { name: file, token_file: ${JSON.stringify(join(dir, 'token'))} }
delivery: { poll_interval: PT0.1S, max_backoff: PT0.5S }
pagerduty:
  events_url: ${pd.url}
  api_url: ${pd.url}
  api_token_env: PD_TOKEN
  from: changepager@example.com
  ca_file: ${JSON.stringify(CA_FILE)}
  request_timeout: PT0.5S
  author_fallback_after: PT2S
slack:
  mode: http
  bot_token_env: SLACK_BOT_TOKEN
  signing_secret_env: SLACK_SIGNING_SECRET
  api_url: ${slack.apiUrl}
  bot_id: B0CHANGEPAGER
  bot_user_id: U0CHANGEPAGER
  request_timeout: PT0.5S
defaults:
  pagerduty: { service_id: PDEFAULT, routing_key_env: PD_DEFAULT_KEY }
services:
  checkout:
    pagerduty: { service_id: PCHECKOUT, routing_key_env: PD_CHECKOUT_KEY }
people:
  - { email: alice@example.com, pagerduty_user_id: PALICE }
`;
    const config = parseConfig(yaml, { path: 'secrets.yaml', env });
    service = await startService({ config, log: createLogger('trace', { write: (l: string) => logs.push(l) }) });
  });

  afterAll(async () => {
    await service?.stop();
    await pd?.close();
    await slack?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs deploys, alerts, failing deliveries and wrong tokens, then finds no secret anywhere', async () => {
    const ago = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
    const deploy = (id: string, author: string, token: string) =>
      call('POST', '/v1/deploys', token, {
        id,
        service: id.startsWith('checkout') ? 'checkout' : 'cart',
        version: `v-${id}`,
        at: ago(5),
        changes: [{ author: { email: author }, commit: { url: 'https://git.example.com/c/1' } }],
      });
    expect((await deploy('checkout-1', 'alice@example.com', SECRETS.CHANGEPAGER_TOKEN)).status).toBe(201);
    expect((await deploy('cart-1', 'dave@example.com', SECRETS.CI_TOKEN)).status).toBe(201);

    // Wrong tokens, some of them other secrets: refused, and not echoed or logged.
    for (const wrong of [SECRETS.PD_DEFAULT_KEY, SECRETS.SLACK_BOT_TOKEN, `${SECRETS.CI_TOKEN.slice(0, -1)}x`]) {
      expect((await call('GET', '/v1/deploys', wrong)).status).toBe(401);
    }

    // PagerDuty and Slack fail in several ways before they work.
    pd.failNext('incidents.create', { status: 500, times: 2 });
    pd.failNext('events', { status: 429, times: 4, headers: { 'ratelimit-reset': '1' } });
    pd.failNext('events', { status: 400, times: 1 });
    pd.hang('change', { times: 1 });
    slack.fail({ status: 500, times: 2 });

    const alert = (fp: string, service: string, status: 'firing' | 'resolved' = 'firing') =>
      call('POST', '/v1/alertmanager', SECRETS.FILE_TOKEN, {
        version: '4',
        groupKey: `{}:{alertname="Secret${service}"}`,
        status,
        receiver: 'changepager',
        alerts: [
          {
            status,
            labels: { alertname: `Secret${service}`, service, instance: `${service}-1:8080` },
            annotations: { summary: `${service} is down` },
            startsAt: ago(1),
            ...(status === 'resolved' ? { endsAt: new Date().toISOString() } : {}),
            fingerprint: fp,
          },
        ],
      });
    for (const [fp, svc] of [
      ['5ec0000000000001', 'checkout'],
      ['5ec0000000000002', 'cart'],
      ['5ec0000000000003', 'search'],
    ] as const) {
      expect((await alert(fp, svc)).status).toBe(200);
    }
    await eventually(
      async () => JSON.parse((await call('GET', '/readyz', undefined)).text).outbox?.depth === 0,
      'delivery',
      20_000,
    );
    expect((await alert('5ec0000000000003', 'search', 'resolved')).status).toBe(200);
    await eventually(
      async () => JSON.parse((await call('GET', '/readyz', undefined)).text).outbox?.depth === 0,
      'resolve',
      20_000,
    );
    expect(pd.requestsTo('events').length + pd.requestsTo('incidents.create').length).toBeGreaterThan(3);

    // Read back everything the API offers about this run.
    for (const path of [
      '/v1/deploys',
      '/v1/deploys/checkout-1',
      '/v1/deploys/cart-1',
      '/v1/deploys/checkout-1/verdict',
      '/v1/alerts/5ec0000000000001',
      '/v1/alerts/5ec0000000000002',
      '/v1/alerts/5ec0000000000003',
      '/v1/people/unmapped',
      '/v1/stats',
      '/metrics',
      '/readyz',
      '/healthz',
      '/v1/nope',
    ]) {
      await call('GET', path, SECRETS.CHANGEPAGER_TOKEN);
    }
    await service?.stop();
    service = undefined;

    const haystacks: [string, string][] = [
      ['log', logs.join('\n')],
      ['API output', outputs.join('\n')],
      ['database', ['changepager.db', 'changepager.db-wal'].map((f) => readIfThere(join(dir, f))).join('')],
    ];
    expect(logs.length).toBeGreaterThan(20);
    for (const [where, text] of haystacks) {
      for (const [name, secret] of Object.entries(SECRETS)) {
        for (const form of forms(secret)) expect(text.includes(form), `${name} found in the ${where}`).toBe(false);
      }
    }
  });

  it.each<[string, (y: string) => string, Env]>([
    ['an unknown key next to the secrets', (y) => y.replace('listen:', 'listne: {}\nlisten:'), {}],
    [
      'a token written into the YAML by mistake',
      (y) => y.replace('token_env: CI_TOKEN', `token: ${SECRETS.CI_TOKEN}`),
      {},
    ],
    [
      'a routing key written into the YAML by mistake',
      (y) => y.replace('routing_key_env: PD_DEFAULT_KEY', `routing_key: ${SECRETS.PD_DEFAULT_KEY}`),
      {},
    ],
    ['a token file that cannot be read', (y) => y.replace(/token_file: "[^"]+"/, 'token_file: /nonexistent/token'), {}],
    ['a secret variable that is not set', (y) => y, { PD_TOKEN: '' }],
    ['a bad PORT next to the secrets', (y) => y, { PORT: SECRETS.PD_TOKEN }],
  ])('keeps secrets out of the config error for %s', (_intent, edit, overrides) => {
    let message = '';
    try {
      parseConfig(edit(yaml), { path: 'secrets.yaml', env: { ...env, ...overrides } });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).not.toBe('');
    configErrors.push(message);
    for (const secret of Object.values(SECRETS)) {
      if (overrides.PORT === secret) continue; // a value given as PORT is not a secret to changepager
      expect(message).not.toContain(secret);
    }
  });

  it('keeps secrets out of `changepager check-config` output for a broken file', () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, yaml.replace('token_env: CI_TOKEN', `token: ${SECRETS.CI_TOKEN}`).replace('listen:', 'lisen:'));
    const out = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'check-config', file], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(out.status).toBe(1);
    const text = `${out.stdout}${out.stderr}`;
    expect(text).toContain('problem');
    for (const secret of Object.values(SECRETS)) expect(text).not.toContain(secret);
  });
});

function readIfThere(path: string): string {
  return existsSync(path) ? readFileSync(path).toString('latin1') : '';
}
