import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCAL_URL } from '../../src/cli/io.js';
import {
  bindAddress,
  type Config,
  ConfigError,
  DEFAULT_CONFIG_PATH,
  evidenceFor,
  loadConfig,
  parseConfig,
  policyFor,
} from '../../src/config/load.js';
import { BUILT_IN_COMPARISONS } from '../../src/core/comparisons.js';

// Config is validated whole at start-up, unknown keys rejected, each problem reported with its path, then frozen
// (after Alertmanager's config/config.go and its config/testdata good and bad files).

const SHIPPED = fileURLToPath(new URL('../../config/changepager.yaml', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/config/', import.meta.url));

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;

const tmp = mkdtempSync(join(tmpdir(), 'changepager-config-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function parse(yaml: string, env: Record<string, string | undefined> = {}): Config {
  return parseConfig(yaml, { path: 'test.yaml', env });
}

/** The ConfigError a call throws; fails the test when it throws nothing or something else. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

/** The path each problem is reported at: the text before the first ": ". */
const pathsOf = (e: ConfigError) => e.problems.map((p) => p.slice(0, p.indexOf(': ')));

describe('the shipped config/changepager.yaml', () => {
  it('loads without any environment', () => {
    const config = loadConfig({ path: SHIPPED, env: {} });
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(config.tokens).toEqual([]);
    expect(config.defaults).toEqual({
      windowMs: HOUR,
      skewMs: 2 * MIN,
      mode: 'author',
      includeMerger: true,
      maxDms: 20,
      labels: { service: ['service', 'app', 'job'], environment: ['env', 'environment'], host: ['pod', 'host'] },
    });
    expect(config.directory.bots).toEqual(['dependabot', 'renovate']);
  });

  it('is the embedded default, named by its place in the package rather than the working directory', () => {
    expect(DEFAULT_CONFIG_PATH).toBe(SHIPPED);
  });

  it('listens where the pipeline commands look when given no --url', () => {
    const { host, port } = loadConfig({ path: SHIPPED, env: {} }).listen;
    expect(LOCAL_URL).toBe(`http://${host}:${port}`);
  });

  it('says what the built-in defaults are: it loads to the same config as an empty file', () => {
    expect(loadConfig({ path: SHIPPED, env: {} })).toEqual(parse(''));
  });
});

describe('defaults', () => {
  const empty = parse('');
  it.each([
    { intent: 'listens on loopback only', get: (c: Config) => c.listen, value: { host: '127.0.0.1', port: 8080 } },
    { intent: 'database under ./data', get: (c: Config) => c.databasePath, value: './data/changepager.db' },
    { intent: 'environment production', get: (c: Config) => c.defaultEnvironment, value: 'production' },
    { intent: 'body limit 5 MiB', get: (c: Config) => c.bodyLimitBytes, value: 5 * 1024 * 1024 },
    { intent: 'no API token', get: (c: Config) => c.tokens, value: [] },
    {
      intent: 'service labels service, app, job',
      get: (c: Config) => c.serviceLabels,
      value: ['service', 'app', 'job'],
    },
    { intent: 'window 1 h', get: (c: Config) => c.defaults.windowMs, value: HOUR },
    { intent: 'skew 2 min', get: (c: Config) => c.defaults.skewMs, value: 2 * MIN },
    { intent: 'policy author', get: (c: Config) => c.defaults.mode, value: 'author' },
    { intent: 'merger included', get: (c: Config) => c.defaults.includeMerger, value: true },
    {
      intent: 'environment labels env, environment',
      get: (c: Config) => c.defaults.labels.environment,
      value: ['env', 'environment'],
    },
    { intent: 'host labels pod, host', get: (c: Config) => c.defaults.labels.host, value: ['pod', 'host'] },
    { intent: 'no per-service sections', get: (c: Config) => c.services, value: {} },
    { intent: 'no people', get: (c: Config) => c.directory.people, value: [] },
    { intent: 'bots dependabot and renovate', get: (c: Config) => c.directory.bots, value: ['dependabot', 'renovate'] },
    { intent: 'at most 20 DMs per decision', get: (c: Config) => c.defaults.maxDms, value: 20 },
    { intent: 'no external URL: pages carry no links back', get: (c: Config) => c.externalUrl, value: undefined },
    {
      intent: 'login form: 10 wrong tokens per client per 15 min',
      get: (c: Config) => c.loginLimit,
      value: { maxFailures: 10, windowMs: 15 * MIN },
    },
    { intent: 'no trusted proxy: the client is the connection', get: (c: Config) => c.trustedProxies, value: [] },
    {
      intent: 'a refused request is logged once per client and route per minute',
      get: (c: Config) => c.deniedLogIntervalMs,
      value: MIN,
    },
    {
      intent: 'delivery polls every second, backs off up to a minute, holds a claimed row 30 s',
      get: (c: Config) => c.delivery,
      value: { pollIntervalMs: SEC, maxBackoffMs: MIN, leaseMs: 30 * SEC },
    },
    {
      intent: 'the timeline looks back 6 h, shows up to 500 items, 10 changes and 200 characters of a text',
      get: (c: Config) => c.timeline,
      value: { defaultRangeMs: 6 * HOUR, maxItems: 500, maxChanges: 10, maxTextChars: 200 },
    },
    {
      intent: 'at most 1000 connections; headers in 10 s, the request in 30 s; keep-alive 65 s; socket idle 2 min',
      get: (c: Config) => c.http,
      value: {
        maxConnections: 1000,
        headersTimeoutMs: 10 * SEC,
        requestTimeoutMs: 30 * SEC,
        keepAliveTimeoutMs: 65 * SEC,
        socketTimeoutMs: 2 * MIN,
      },
    },
    {
      intent: 'metrics open, gauges refreshed every 30 s, 100 busiest services with series of their own',
      get: (c: Config) => c.metrics,
      value: { refreshIntervalMs: 30 * SEC, topServices: 100 },
    },
  ])('an empty file: $intent', ({ get, value }) => {
    expect(get(empty)).toEqual(value);
  });

  it('trusted proxies and the login limit are read as written', () => {
    const config = parse(
      'http: { trusted_proxies: [loopback, 10.0.0.0/8, "fd00::/8", 192.0.2.1] }\n' +
        'auth: { login_limit: { max_failures: 5, window: PT1H } }\n',
    );
    expect(config.trustedProxies).toEqual(['loopback', '10.0.0.0/8', 'fd00::/8', '192.0.2.1']);
    expect(config.loginLimit).toEqual({ maxFailures: 5, windowMs: HOUR });
  });

  it('http: the connection limits are read in milliseconds', () => {
    const config = parse(
      'http: { max_connections: 50, headers_timeout: PT5S, request_timeout: PT1M, keep_alive_timeout: PT75S, socket_timeout: PT5M }\n',
    );
    expect(config.http).toEqual({
      maxConnections: 50,
      headersTimeoutMs: 5 * SEC,
      requestTimeoutMs: MIN,
      keepAliveTimeoutMs: 75 * SEC,
      socketTimeoutMs: 5 * MIN,
    });
  });

  it('metrics: a token from the environment or a file, the refresh interval and the series bound', () => {
    const fromEnv = parse('metrics: { token_env: M_TOKEN, refresh_interval: PT1M, top_services: 20 }\n', {
      M_TOKEN: 'm-secret',
    });
    expect(fromEnv.metrics).toEqual({ token: 'm-secret', refreshIntervalMs: MIN, topServices: 20 });
    const file = join(tmp, 'metrics-token');
    writeFileSync(file, 'file-secret\n');
    expect(parse(`metrics: { token_file: ${file} }\n`).metrics.token).toBe('file-secret');
  });

  it('a partly written section keeps the defaults of the keys it leaves out', () => {
    const config = parse('defaults:\n  window: PT30M\n  labels:\n    host: [node]\n');
    expect(config.defaults).toEqual({
      windowMs: 30 * MIN,
      skewMs: 2 * MIN,
      mode: 'author',
      includeMerger: true,
      maxDms: 20,
      labels: { service: ['service', 'app', 'job'], environment: ['env', 'environment'], host: ['node'] },
    });
  });

  it('timeline: each limit can be set, and the ones left out keep their defaults', () => {
    const config = parse('timeline: { default_range: PT1H, max_changes: 3 }\n');
    expect(config.timeline).toEqual({ defaultRangeMs: HOUR, maxItems: 500, maxChanges: 3, maxTextChars: 200 });
  });

  it.each([
    ['a range the page cannot show', 'timeline: { default_range: P40D }', 'timeline.default_range'],
    ['a range that is no duration', 'timeline: { default_range: 6h }', 'timeline.default_range'],
    ['no items at all', 'timeline: { max_items: 0 }', 'timeline.max_items'],
    ['a fraction of a change', 'timeline: { max_changes: 2.5 }', 'timeline.max_changes'],
    ['texts too short to read', 'timeline: { max_text_chars: 5 }', 'timeline.max_text_chars'],
    ['a misspelt key', 'timeline: { max_item: 50 }', 'timeline'],
  ])('timeline: %s is a problem at its path', (_intent, yaml, path) => {
    expect(pathsOf(configError(() => parse(yaml)))).toEqual([path]);
  });

  it('people: emails and logins lower-cased, working hours in minutes, weekdays by default', () => {
    const config = parse(
      [
        'people:',
        '  - email: Alice@Example.com',
        '    emails: [ALICE@users.example.com]',
        '    logins: [Alice]',
        '    timezone: Asia/Tokyo',
        '    working_hours: { start: "09:30", end: "18:00" }',
      ].join('\n'),
    );
    expect(config.directory.people).toEqual([
      {
        email: 'alice@example.com',
        emails: ['alice@users.example.com'],
        logins: ['alice'],
        timezone: 'Asia/Tokyo',
        workingHours: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], startMinute: 9 * 60 + 30, endMinute: 18 * 60 },
      },
    ]);
  });

  it('bots are lower-cased', () => {
    expect(parse('bots: [Dependabot, Snyk-Bot]').directory.bots).toEqual(['dependabot', 'snyk-bot']);
  });
});

describe('per-service overrides', () => {
  const config = parse(
    [
      'defaults:',
      '  window: PT45M',
      '  skew: PT5M',
      '  policy: author+oncall',
      '  include_merger: false',
      '  max_dms: 5',
      '  labels: { environment: [env], host: [pod, node] }',
      'services:',
      '  checkout:',
      '    window: PT30M',
      '    policy: notify',
      '    labels: { host: [container] }',
      '  payments: {}',
    ].join('\n'),
  );

  it('a service inherits every default it does not override', () => {
    expect(config.services.checkout).toEqual({
      windowMs: 30 * MIN,
      skewMs: 5 * MIN,
      mode: 'notify',
      includeMerger: false,
      maxDms: 5,
      labels: { service: ['service', 'app', 'job'], environment: ['env'], host: ['container'] },
    });
  });

  it('a service may set its own DM cap', () => {
    expect(parse('services:\n  checkout:\n    max_dms: 3\n').services.checkout?.maxDms).toBe(3);
  });

  it('an empty service section is the defaults', () => {
    expect(config.services.payments).toEqual(config.defaults);
  });

  it.each([
    { intent: 'a configured service gets its own section', service: 'checkout', windowMs: 30 * MIN, mode: 'notify' },
    { intent: 'an unknown service gets the defaults', service: 'search', windowMs: 45 * MIN, mode: 'author+oncall' },
    { intent: 'no service gets the defaults', service: undefined, windowMs: 45 * MIN, mode: 'author+oncall' },
  ])('policyFor: $intent', ({ service, windowMs, mode }) => {
    const p = policyFor(config, service);
    expect(p.windowMs).toBe(windowMs);
    expect(p.mode).toBe(mode);
  });

  it('the service label cannot be set per service (it is what finds the service)', () => {
    const e = configError(() => parse('services:\n  checkout:\n    labels: { service: [app] }\n'));
    expect(e.problems).toEqual(['services.checkout.labels: Unrecognized key: "service"']);
  });
});

describe('problems are all reported, each with its path', () => {
  const yaml = [
    'listen: { host: 127.0.0.1 }',
    'retention: P30D',
    'defaults:',
    '  window: 1h',
    'services:',
    '  checkout:',
    '    windw: PT30M',
    'people:',
    '  - email: alice@example.com',
    '    timezone: Mars/Olympus_Mons',
    '    working_hours: { start: "9am", end: "18:00" }',
  ].join('\n');

  it.each([
    { intent: 'an unknown key at the top level', path: '(top level)', says: '"retention"' },
    { intent: 'an unknown key under services.checkout', path: 'services.checkout', says: '"windw"' },
    { intent: 'a duration that is not ISO-8601', path: 'defaults.window', says: 'ISO-8601 duration' },
    { intent: 'a timezone that does not exist', path: 'people.0.timezone', says: 'IANA timezone' },
    { intent: 'a working-hours clock that is not HH:MM', path: 'people.0.working_hours.start', says: '24-hour time' },
  ])('$intent', ({ path, says }) => {
    const e = configError(() => parse(yaml));
    const problem = e.problems.find((p) => p.startsWith(`${path}: `));
    expect(problem).toBeDefined();
    expect(problem).toContain(says);
  });

  it('lists every problem and nothing else, and the message repeats each one', () => {
    const e = configError(() => parse(yaml));
    expect(pathsOf(e).sort()).toEqual(
      [
        '(top level)',
        'defaults.window',
        'people.0.timezone',
        'people.0.working_hours.start',
        'services.checkout',
      ].sort(),
    );
    expect(e.name).toBe('ConfigError');
    expect(e.file).toBe('test.yaml');
    expect(e.message).toMatch(/^test\.yaml: 5 problem\(s\)\n/);
    for (const p of e.problems) expect(e.message).toContain(`  - ${p}`);
  });

  it.each([
    { intent: 'a YAML syntax error', yaml: 'listen: {host: 127.0.0.1\n', says: /^YAML: / },
    { intent: 'a key written twice', yaml: 'bots: [a]\nbots: [b]\n', says: /^YAML: .*unique/ },
    { intent: 'a document that is not a mapping', yaml: 'just some text\n', says: /^\(top level\): .*expected object/ },
    { intent: 'a list where a mapping belongs', yaml: 'services: [checkout]\n', says: /^services: / },
    {
      intent: 'a policy that does not exist',
      yaml: 'defaults: { policy: page-everyone }\n',
      says: /^defaults\.policy: /,
    },
    {
      intent: 'a weekday that does not exist',
      yaml: 'people: [{ email: a@example.com, working_hours: { days: [funday], start: "09:00", end: "17:00" } }]\n',
      says: /^people\.0\.working_hours\.days\.0: /,
    },
    {
      intent: 'hour 24 is not a clock time',
      yaml: 'people: [{ email: a@example.com, working_hours: { start: "09:00", end: "24:00" } }]\n',
      says: /^people\.0\.working_hours\.end: /,
    },
    { intent: 'a port out of range in the file', yaml: 'listen: { port: 80800 }\n', says: /^listen\.port: / },
    { intent: 'a person without a valid email', yaml: 'people: [{ email: alice }]\n', says: /^people\.0\.email: / },
    { intent: 'a DM cap of 0', yaml: 'defaults: { max_dms: 0 }\n', says: /^defaults\.max_dms: .*>=1/ },
    {
      intent: 'a DM cap over 100 for one service',
      yaml: 'services: { checkout: { max_dms: 10000 } }\n',
      says: /^services\.checkout\.max_dms: .*<=100/,
    },
    {
      intent: 'a DM cap that is not a whole number',
      yaml: 'defaults: { max_dms: 2.5 }\n',
      says: /^defaults\.max_dms: /,
    },
    {
      intent: 'an external URL that is not http(s)',
      yaml: 'external_url: ftp://changepager.example.com\n',
      says: /^external_url: must be an http\(s\) base URL/,
    },
    { intent: 'an external URL that is not a URL', yaml: 'external_url: changepager\n', says: /^external_url: / },
    {
      intent: 'a trusted proxy that is a host name, not an address',
      yaml: 'http: { trusted_proxies: [10.0.0.0/8, proxy.example] }\n',
      says: /^http\.trusted_proxies\.1: must be an IP address, a CIDR range/,
    },
    {
      intent: 'a login limit that allows no login at all',
      yaml: 'auth: { login_limit: { max_failures: 0 } }\n',
      says: /^auth\.login_limit\.max_failures: /,
    },
    {
      intent: 'a refusal log interval of zero (a line per refusal)',
      yaml: 'auth: { denied_log_interval: PT0S }\n',
      says: /^auth\.denied_log_interval: must be longer than zero/,
    },
    {
      intent: 'a login limit window of zero',
      yaml: 'auth: { login_limit: { window: PT0S } }\n',
      says: /^auth\.login_limit\.window: must be longer than zero/,
    },
    {
      intent: 'no connection cap',
      yaml: 'http: { max_connections: 0 }\n',
      says: /^http\.max_connections: /,
    },
    {
      intent: 'a zero timeout (Node would read it as "never")',
      yaml: 'http: { keep_alive_timeout: PT0S }\n',
      says: /^http\.keep_alive_timeout: must be longer than zero/,
    },
    {
      intent: 'a timeout that is not a duration, reported once',
      yaml: 'http: { socket_timeout: 2m }\n',
      says: /^http\.socket_timeout: must be an ISO-8601 duration/,
    },
    {
      intent: 'a metrics token named twice',
      yaml: 'metrics: { token_env: A, token_file: /b }\n',
      says: /^metrics: set token_env or token_file, not both/,
    },
    {
      intent: 'a negative series bound',
      yaml: 'metrics: { top_services: -1 }\n',
      says: /^metrics\.top_services: /,
    },
    {
      intent: 'a metrics token variable that is not set, named without a secret',
      yaml: 'metrics: { token_env: NOT_SET_ANYWHERE }\n',
      says: /^metrics\.token_env: environment variable NOT_SET_ANYWHERE is not set or empty$/,
    },
    {
      intent: 'headers allowed longer than the whole request',
      yaml: 'http: { headers_timeout: PT1M, request_timeout: PT30S }\n',
      says: /^http\.headers_timeout: must not be longer than request_timeout/,
    },
  ])('rejected: $intent', ({ yaml: text, says }) => {
    const e = configError(() => parse(text));
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(says);
  });
});

describe('the PagerDuty section', () => {
  const yaml = (extra = '') =>
    `pagerduty:\n  api_token_env: PD_TOKEN\n  from: changepager@example.com\n${extra}defaults:\n  pagerduty: { routing_key_env: PD_KEY }\n`;
  const env = { PD_TOKEN: 'pd-token', PD_KEY: 'pd-key' };

  it("builds every event to fit PagerDuty's 512 KB unless told a smaller size", () => {
    expect(parse(yaml(), env).pagerduty?.maxEventBytes).toBe(512_000);
    expect(parse(yaml('  max_event_bytes: 65536\n'), env).pagerduty?.maxEventBytes).toBe(65_536);
  });

  it.each([
    ['more than PagerDuty takes', 600_000, /<=512000/],
    ['too small for the minimal form of a page', 1000, />=16384/],
    ['not a whole number of bytes', 20_000.5, /int/],
  ])('rejects a max_event_bytes %s, at its path', (_intent, value, says) => {
    const e = configError(() => parse(yaml(`  max_event_bytes: ${value}\n`), env));
    expect(e.problems).toEqual([expect.stringMatching(/^pagerduty\.max_event_bytes: /)]);
    expect(e.problems[0]).toMatch(says);
  });
});

describe('API tokens', () => {
  const AM_SECRET = 'am-secret-4f1c9e0b7d2a';
  const ENV_SECRET = 'env-secret-9a8b7c6d5e4f';

  it('a token_env whose variable is missing is a problem naming the variable, never a secret', () => {
    const yaml = [
      'auth:',
      '  tokens:',
      '    - { name: alertmanager, token_env: CP_AM_TOKEN }',
      '    - { name: deployer, token_env: CP_DEPLOY_TOKEN }',
    ].join('\n');
    const e = configError(() => parse(yaml, { CP_AM_TOKEN: AM_SECRET, CHANGEPAGER_TOKEN: ENV_SECRET }));
    expect(e.problems).toEqual(['auth.tokens.1.token_env: environment variable CP_DEPLOY_TOKEN is not set or empty']);
    const everything = `${e.message}\n${JSON.stringify(e.problems)}\n${String(e.stack)}`;
    expect(everything).not.toContain(AM_SECRET);
    expect(everything).not.toContain(ENV_SECRET);
  });

  it('an empty variable counts as missing', () => {
    const e = configError(() => parse('auth: { tokens: [{ name: am, token_env: CP_AM_TOKEN }] }', { CP_AM_TOKEN: '' }));
    expect(e.problems).toEqual(['auth.tokens.0.token_env: environment variable CP_AM_TOKEN is not set or empty']);
  });

  it('a secret written into the file itself is rejected without being echoed', () => {
    const e = configError(() => parse('auth: { tokens: [{ name: inline, token: s3cr3t-in-yaml }] }'));
    expect(pathsOf(e)).toEqual(['auth.tokens.0']);
    expect(e.message).not.toContain('s3cr3t-in-yaml');
  });

  it('token_env and token_file are read, CHANGEPAGER_TOKEN comes first', () => {
    const file = join(tmp, 'deployer-token');
    writeFileSync(file, 'file-secret-0123\n');
    const config = parse(
      `auth:\n  tokens:\n    - { name: alertmanager, token_env: CP_AM_TOKEN }\n    - { name: deployer, token_file: ${JSON.stringify(file)} }\n`,
      { CP_AM_TOKEN: AM_SECRET, CHANGEPAGER_TOKEN: ENV_SECRET },
    );
    expect(config.tokens).toEqual([
      { name: 'CHANGEPAGER_TOKEN', secret: ENV_SECRET },
      { name: 'alertmanager', secret: AM_SECRET },
      { name: 'deployer', secret: 'file-secret-0123' },
    ]);
  });

  it.each([
    {
      intent: 'CHANGEPAGER_TOKEN alone adds one token',
      env: { CHANGEPAGER_TOKEN: ENV_SECRET },
      tokens: [{ name: 'CHANGEPAGER_TOKEN', secret: ENV_SECRET }],
    },
    { intent: 'an empty CHANGEPAGER_TOKEN adds none', env: { CHANGEPAGER_TOKEN: '' }, tokens: [] },
    { intent: 'no CHANGEPAGER_TOKEN, no token', env: {}, tokens: [] },
  ])('$intent', ({ env, tokens }) => {
    expect(parse('', env).tokens).toEqual(tokens);
  });

  it('a token_file that does not exist is a problem with its path and the error code', () => {
    const missing = join(tmp, 'no-such-token');
    const e = configError(() =>
      parse(`auth: { tokens: [{ name: deployer, token_file: ${JSON.stringify(missing)} }] }`),
    );
    expect(e.problems).toEqual([`auth.tokens.0.token_file: cannot read ${missing}: ENOENT`]);
  });

  it('an empty token_file is a problem', () => {
    const empty = join(tmp, 'empty-token');
    writeFileSync(empty, '  \n');
    const e = configError(() => parse(`auth: { tokens: [{ name: deployer, token_file: ${JSON.stringify(empty)} }] }`));
    expect(e.problems).toEqual([`auth.tokens.0.token_file: ${empty} is empty`]);
  });
});

describe('values the PagerDuty and Slack clients cannot use are rejected at load, with path and reason', () => {
  const CA = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
  const KEY = fileURLToPath(new URL('../fixtures/tls/localhost.key', import.meta.url));
  const env = { PD_KEY: 'routing-key', PD_TOKEN: 'pd-token', SLACK_BOT: 'xoxb-1', SLACK_SIGNING: 'signing' };
  const pagerduty = (lines: string) => `defaults: { pagerduty: { routing_key_env: PD_KEY } }\npagerduty:\n${lines}`;
  const slack = (lines: string) => `slack:\n  bot_token_env: SLACK_BOT\n  signing_secret_env: SLACK_SIGNING\n${lines}`;

  it.each([
    {
      intent: 'events_url with a path, which the events client would drop',
      yaml: pagerduty('  events_url: https://proxy.example/pagerduty\n'),
      path: 'pagerduty.events_url',
      says: 'no path',
    },
    {
      intent: 'events_url carrying credentials',
      yaml: pagerduty('  events_url: https://user:pw@events.example\n'),
      path: 'pagerduty.events_url',
      says: 'credentials',
    },
    {
      intent: 'api_url with a query, which every REST path would be appended to',
      yaml: pagerduty('  api_url: https://api.example/?region=eu\n'),
      path: 'pagerduty.api_url',
      says: 'query',
    },
    {
      intent: 'api_url carrying credentials',
      yaml: pagerduty('  api_url: https://user:pw@api.example\n'),
      path: 'pagerduty.api_url',
      says: 'credentials',
    },
    {
      intent: 'an API token without from, so no incident can ever be created',
      yaml: pagerduty('  api_token_env: PD_TOKEN\n'),
      path: 'pagerduty.from',
      says: 'From user',
    },
    {
      intent: 'a PagerDuty request_timeout of zero, which aborts every request at once',
      yaml: pagerduty('  request_timeout: PT0S\n'),
      path: 'pagerduty.request_timeout',
      says: 'longer than zero',
    },
    {
      intent: 'a PagerDuty request_timeout longer than a Node.js timer, which fires after 1 ms',
      yaml: pagerduty('  request_timeout: P30D\n'),
      path: 'pagerduty.request_timeout',
      says: 'at most P24D',
    },
    {
      intent: 'a ca_file with no certificate in it (Node would fail every handshake)',
      yaml: pagerduty(`  ca_file: ${JSON.stringify(KEY)}\n`),
      path: 'pagerduty.ca_file',
      says: 'holds no PEM certificate',
    },
    {
      intent: 'a Slack api_url with a fragment',
      yaml: slack('  api_url: https://slack.example/api/#x\n'),
      path: 'slack.api_url',
      says: 'fragment',
    },
    {
      intent: 'a Slack api_url carrying credentials',
      yaml: slack('  api_url: https://user:pw@slack.example/api/\n'),
      path: 'slack.api_url',
      says: 'credentials',
    },
    {
      intent: 'a Slack request_timeout of zero, which the Slack client takes as no timeout at all',
      yaml: slack('  request_timeout: PT0S\n'),
      path: 'slack.request_timeout',
      says: 'longer than zero',
    },
    {
      intent: 'a delivery poll_interval of zero, a busy loop',
      yaml: 'delivery: { poll_interval: PT0S }\n',
      path: 'delivery.poll_interval',
      says: 'longer than zero',
    },
  ])('$intent', ({ yaml, path, says }) => {
    const e = configError(() => parse(yaml, env));
    expect(pathsOf(e)).toEqual([path]);
    expect(e.problems[0]).toContain(says);
  });

  it('a ca_file whose certificate is damaged', () => {
    const file = join(tmp, 'damaged-ca.pem');
    writeFileSync(file, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
    const e = configError(() => parse(pagerduty(`  ca_file: ${JSON.stringify(file)}\n`), env));
    expect(e.problems).toEqual([
      `pagerduty.ca_file: ${file} has a certificate that cannot be read (number 1 in the file)`,
    ]);
  });

  it('accepts a plain-http REST base URL with a path (a stand-in or a proxy) next to https events and a CA', () => {
    const config = parse(
      pagerduty(
        [
          '  events_url: https://events.eu.pagerduty.com/',
          '  api_url: http://127.0.0.1:8080/pagerduty/',
          '  api_token_env: PD_TOKEN',
          '  from: changepager@example.com',
          `  ca_file: ${JSON.stringify(CA)}`,
          '  request_timeout: P24D',
          '',
        ].join('\n'),
      ),
      env,
    );
    expect(config.pagerduty).toMatchObject({
      eventsHost: 'events.eu.pagerduty.com',
      apiUrl: 'http://127.0.0.1:8080/pagerduty',
      timeoutMs: 24 * 24 * HOUR,
    });
    expect(config.pagerduty?.ca).toContain('BEGIN CERTIFICATE');
  });

  it('changepager check-config exits 1 naming the path and the reason', () => {
    const file = join(tmp, 'unusable.yaml');
    writeFileSync(file, pagerduty('  events_url: https://proxy.example/pagerduty\n'));
    const out = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'check-config', file], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: { PATH: process.env.PATH ?? '', PD_KEY: 'routing-key' },
      encoding: 'utf8',
    });
    expect(out.status).toBe(1);
    expect(out.stderr).toContain('pagerduty.events_url: must be https://host[:port] with no path');
  });
});

describe('evidence from Prometheus', () => {
  const PROM = 'prometheus:\n  url: http://prometheus.example:9090/\n';
  const errorRatio = [
    '      - name: error ratio',
    '        query: sum(rate(http_requests_total{job="{service}", version="{version}", code=~"5.."}[5m]))',
    '        bad: increase',
    '        min_change: 1',
    '        critical: true',
    '        unit: ratio',
  ];

  it('without a prometheus section nothing is gathered, and the built-in comparisons stand ready', () => {
    const config = parse('');
    expect(config.prometheus).toBeUndefined();
    expect(config.evidence.defaults).toEqual({ mode: 'off', comparisons: BUILT_IN_COMPARISONS });
  });

  it('with one, evidence is advisory by default, with these settings', () => {
    const config = parse(PROM);
    expect(config.prometheus).toEqual({
      url: 'http://prometheus.example:9090',
      requestTimeoutMs: 10 * SEC,
      budgetMs: 3 * SEC,
      marginMs: MIN,
      minPoints: 10,
      significance: 0.01,
      minStepMs: 15 * SEC,
      maxPoints: 240,
    });
    expect(config.evidence.defaults.mode).toBe('advisory');
    expect(config.evidence.defaults.comparisons.map((c) => c.name)).toEqual(['error ratio', 'p95 latency']);
  });

  it('every setting can be changed', () => {
    const config = parse(
      `${PROM}  request_timeout: PT5S\n  budget: PT2S\n  margin: PT30S\n  min_points: 20\n  significance: 0.05\n  min_step: PT1M\n  max_points: 100\n`,
    );
    expect(config.prometheus).toMatchObject({
      requestTimeoutMs: 5 * SEC,
      budgetMs: 2 * SEC,
      marginMs: 30 * SEC,
      minPoints: 20,
      significance: 0.05,
      minStepMs: MIN,
      maxPoints: 100,
    });
  });

  it('a bearer token from the environment or a file, or basic auth, never from the file itself', () => {
    expect(parse(`${PROM}  bearer_token_env: PROM_TOKEN\n`, { PROM_TOKEN: 'p-secret' }).prometheus?.auth).toEqual({
      kind: 'bearer',
      token: 'p-secret',
    });
    const file = join(tmp, 'prometheus-token');
    writeFileSync(file, 'file-secret\n');
    expect(parse(`${PROM}  bearer_token_file: ${file}\n`).prometheus?.auth).toEqual({
      kind: 'bearer',
      token: 'file-secret',
    });
    const basic = parse(`${PROM}  basic_auth: { username: changepager, password_env: PROM_PW }\n`, { PROM_PW: 'pw' });
    expect(basic.prometheus?.auth).toEqual({ kind: 'basic', username: 'changepager', password: 'pw' });
  });

  it('each service has its own setting and list, or the defaults’', () => {
    const config = parse(
      [
        PROM,
        'defaults:',
        '  evidence: required',
        'services:',
        '  checkout:',
        '    evidence: advisory',
        '    comparisons:',
        ...errorRatio,
        '  search:',
        '    evidence: "off"',
        '  payments: {}',
      ].join('\n'),
    );
    expect(evidenceFor(config, 'checkout')).toEqual({
      mode: 'advisory',
      comparisons: [
        {
          name: 'error ratio',
          query: 'sum(rate(http_requests_total{job="{service}", version="{version}", code=~"5.."}[5m]))',
          bad: 'increase',
          minChange: 1,
          critical: true,
          unit: 'ratio',
        },
      ],
    });
    expect(evidenceFor(config, 'search')).toEqual({ mode: 'off', comparisons: BUILT_IN_COMPARISONS });
    expect(evidenceFor(config, 'payments')).toEqual({ mode: 'required', comparisons: BUILT_IN_COMPARISONS });
    expect(evidenceFor(config, 'unknown')).toBe(config.evidence.defaults);
    expect(evidenceFor(config, 'constructor')).toBe(config.evidence.defaults);
  });

  it('a comparison leaves out what it does not need: increase, 10 %, not critical, a plain number', () => {
    const config = parse(
      `${PROM}defaults:\n  comparisons:\n    - { name: queue depth, query: 'max(q{version="{version}"})' }\n`,
    );
    expect(config.evidence.defaults.comparisons).toEqual([
      {
        name: 'queue depth',
        query: 'max(q{version="{version}"})',
        bad: 'increase',
        minChange: 0.1,
        critical: false,
        unit: 'none',
      },
    ]);
  });

  it('an empty list turns the comparisons off for a service', () => {
    expect(evidenceFor(parse(`${PROM}services:\n  checkout: { comparisons: [] }\n`), 'checkout').comparisons).toEqual(
      [],
    );
  });

  it.each([
    {
      intent: 'a misspelt placeholder in a template',
      yaml: `${PROM}defaults:\n  comparisons:\n    - { name: e, query: 'x{version="{version}", job="{servce}"}' }\n`,
      path: 'defaults.comparisons.0.query',
      says: 'unknown placeholder {servce}',
    },
    {
      intent: 'a template that is not PromQL, in a service',
      yaml: `${PROM}services:\n  checkout:\n    comparisons:\n      - { name: e, query: 'sum(rate(x{version="{version}"}[5m])' }\n`,
      path: 'services.checkout.comparisons.0.query',
      says: 'is not valid PromQL: line 1, column 37, at the end',
    },
    {
      intent: 'a template that cannot tell the versions apart',
      yaml: `${PROM}defaults:\n  comparisons:\n    - { name: e, query: 'sum(rate(x{job="{service}"}[5m]))' }\n`,
      path: 'defaults.comparisons.0.query',
      says: 'needs {version}, or {hosts} and {not_hosts}',
    },
    {
      intent: 'two comparisons with the same name',
      yaml: `${PROM}defaults:\n  comparisons:\n    - { name: e, query: 'x{version="{version}"}' }\n    - { name: e, query: 'y{version="{version}"}' }\n`,
      path: 'defaults.comparisons.1.name',
      says: '"e" is named twice',
    },
    {
      intent: 'a direction that is neither increase nor decrease',
      yaml: `${PROM}defaults:\n  comparisons:\n    - { name: e, query: 'x{version="{version}"}', bad: up }\n`,
      path: 'defaults.comparisons.0.bad',
      says: 'increase',
    },
    {
      intent: 'a negative smallest change',
      yaml: `${PROM}defaults:\n  comparisons:\n    - { name: e, query: 'x{version="{version}"}', min_change: -0.5 }\n`,
      path: 'defaults.comparisons.0.min_change',
      says: '>=0',
    },
    {
      intent: 'a comparison without a query',
      yaml: `${PROM}defaults:\n  comparisons:\n    - { name: e }\n`,
      path: 'defaults.comparisons.0.query',
      says: 'expected string',
    },
    {
      intent: 'more than 20 comparisons',
      yaml: `${PROM}defaults:\n  comparisons:\n${Array.from({ length: 21 }, (_, i) => `    - { name: m${i}, query: 'x{version="{version}"}' }`).join('\n')}\n`,
      path: 'defaults.comparisons',
      says: '<=20',
    },
    {
      intent: 'an evidence setting that does not exist',
      yaml: `${PROM}defaults: { evidence: always }\n`,
      path: 'defaults.evidence',
      says: 'required',
    },
    {
      intent: 'evidence required with no prometheus section to ask',
      yaml: 'services:\n  checkout: { evidence: required }\n',
      path: 'services.checkout.evidence',
      says: 'required needs a prometheus section to ask for evidence',
    },
    {
      intent: 'advisory evidence by default with no prometheus section',
      yaml: 'defaults: { evidence: advisory }\n',
      path: 'defaults.evidence',
      says: 'advisory needs a prometheus section',
    },
    {
      intent: 'a prometheus section without a url',
      yaml: 'prometheus: { budget: PT3S }\n',
      path: 'prometheus.url',
      says: 'http(s)',
    },
    {
      intent: 'a url carrying credentials',
      yaml: 'prometheus: { url: "http://user:pw@prometheus:9090" }\n',
      path: 'prometheus.url',
      says: 'must not carry credentials',
    },
    {
      intent: 'a bearer token named twice',
      yaml: `${PROM}  bearer_token_env: A\n  bearer_token_file: /b\n`,
      path: 'prometheus',
      says: 'set bearer_token_env or bearer_token_file, not both',
    },
    {
      intent: 'a bearer token and basic auth (both are an Authorization header)',
      yaml: `${PROM}  bearer_token_env: A\n  basic_auth: { username: u, password_env: B }\n`,
      path: 'prometheus',
      says: 'not both',
    },
    {
      intent: 'basic auth without a password',
      yaml: `${PROM}  basic_auth: { username: u }\n`,
      path: 'prometheus.basic_auth',
      says: 'set password_env or password_file',
    },
    {
      intent: 'a bearer token variable that is not set',
      yaml: `${PROM}  bearer_token_env: NOT_SET_ANYWHERE\n`,
      path: 'prometheus.bearer_token_env',
      says: 'environment variable NOT_SET_ANYWHERE is not set or empty',
    },
    {
      intent: 'a budget of zero',
      yaml: `${PROM}  budget: PT0S\n`,
      path: 'prometheus.budget',
      says: 'longer than zero',
    },
    {
      intent: 'a request timeout longer than a Node.js timer',
      yaml: `${PROM}  request_timeout: P30D\n`,
      path: 'prometheus.request_timeout',
      says: 'at most P24D',
    },
    { intent: 'a significance of 0', yaml: `${PROM}  significance: 0\n`, path: 'prometheus.significance', says: '>0' },
    {
      intent: 'a significance over 0.5',
      yaml: `${PROM}  significance: 0.9\n`,
      path: 'prometheus.significance',
      says: '<=0.5',
    },
    {
      intent: 'too small a minimum of points',
      yaml: `${PROM}  min_points: 2\n`,
      path: 'prometheus.min_points',
      says: '>=3',
    },
    {
      intent: 'a minimum of points above the most points a side can have',
      yaml: `${PROM}  min_points: 300\n`,
      path: 'prometheus.min_points',
      says: 'must not be more than max_points',
    },
    {
      intent: 'a step of zero',
      yaml: `${PROM}  min_step: PT0S\n`,
      path: 'prometheus.min_step',
      says: 'longer than zero',
    },
  ])('rejected: $intent', ({ yaml, path, says }) => {
    const e = configError(() => parse(yaml));
    expect(pathsOf(e)).toEqual([path]);
    expect(e.problems[0]).toContain(says);
  });

  it('every problem of every template is listed at once', () => {
    const e = configError(() =>
      parse(
        `${PROM}defaults:\n  comparisons:\n    - { name: a, query: 'x{version="{vrsion}"}' }\n    - { name: b, query: 'rate(x{version="{version}"}' }\n`,
      ),
    );
    expect(pathsOf(e)).toEqual([
      'defaults.comparisons.0.query',
      'defaults.comparisons.0.query',
      'defaults.comparisons.1.query',
    ]);
  });

  const cli = (file: string) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'check-config', file], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: { PATH: process.env.PATH ?? '' },
      encoding: 'utf8',
    });

  it('changepager check-config names a broken template by its path, and says the templates were checked', () => {
    const bad = join(tmp, 'bad-template.yaml');
    writeFileSync(
      bad,
      `${PROM}services:\n  checkout:\n    comparisons:\n      - { name: e, query: 'x{version="{verion}"}' }\n`,
    );
    const refused = cli(bad);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('services.checkout.comparisons.0.query: unknown placeholder {verion}');

    const good = join(tmp, 'good-template.yaml');
    writeFileSync(
      good,
      `${PROM}services:\n  checkout:\n    comparisons:\n${errorRatio.map((l) => l.slice(2)).join('\n')}\n`,
    );
    const accepted = cli(good);
    expect(accepted.stderr).toBe('');
    expect(accepted.stdout).toBe(
      `${good}: OK (1 services, 0 people, 0 tokens; evidence from http://prometheus.example:9090, 3 PromQL templates checked)\n`,
    );
    expect(accepted.status).toBe(0);
  });
});

describe("the channels' sections", () => {
  // healthcheck and check-config read the whole config, every channel's section included, through the channel
  // registry: they must not load the channels' client libraries to do so (the healthcheck runs every 30 s).
  it('are read without loading Bolt, pdjs or express', () => {
    const script = `
      import { createRequire } from 'node:module';
      const { parseConfig } = await import('./src/config/load.ts');
      const config = parseConfig(
        'pagerduty: {}\\ndefaults: { pagerduty: { routing_key_env: K } }\\nslack: { bot_token_env: B, signing_secret_env: S }\\n',
        { path: 'x.yaml', env: { K: 'key', B: 'xoxb', S: 'signing' } },
      );
      const loaded = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify({
        channels: Object.keys(config).filter((k) => k === 'pagerduty' || k === 'slack'),
        libraries: ['@slack/bolt', '@pagerduty/pdjs', 'express'].filter((l) => loaded.some((f) => f.includes(\`/node_modules/\${l}/\`))),
      }));`;
    const out = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      encoding: 'utf8',
    });
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout)).toEqual({ channels: ['pagerduty', 'slack'], libraries: [] });
  });
});

describe('HOST and PORT', () => {
  const yaml = 'listen: { host: 127.0.0.1, port: 9095 }';
  it.each([
    { intent: 'neither set: the file decides', env: {}, listen: { host: '127.0.0.1', port: 9095 } },
    { intent: 'HOST overrides the host', env: { HOST: '0.0.0.0' }, listen: { host: '0.0.0.0', port: 9095 } },
    { intent: 'PORT overrides the port', env: { PORT: '9090' }, listen: { host: '127.0.0.1', port: 9090 } },
    { intent: 'PORT 0 asks for any free port', env: { PORT: '0' }, listen: { host: '127.0.0.1', port: 0 } },
    { intent: 'both', env: { HOST: '::', PORT: '65535' }, listen: { host: '::', port: 65535 } },
  ])('$intent', ({ env, listen }) => {
    expect(parse(yaml, env).listen).toEqual(listen);
  });

  it.each([
    { intent: 'not a number', port: 'http' },
    { intent: 'above 65535', port: '70000' },
    { intent: 'negative', port: '-1' },
    { intent: 'a fraction', port: '80.5' },
    { intent: 'empty (would silently mean any free port)', port: '' },
    { intent: 'hexadecimal', port: '0x1F90' },
    { intent: 'exponent notation', port: '1e3' },
  ])('an invalid PORT is a problem: $intent', ({ port }) => {
    const e = configError(() => parse(yaml, { PORT: port }));
    expect(e.problems).toEqual([`PORT (environment): "${port}" is not a port number`]);
  });

  it('an invalid PORT and a missing token variable are reported together', () => {
    const e = configError(() => parse('auth: { tokens: [{ name: am, token_env: CP_AM_TOKEN }] }', { PORT: 'http' }));
    expect(pathsOf(e).sort()).toEqual(['PORT (environment)', 'auth.tokens.0.token_env']);
  });
});

describe('without an API token: loopback, a start-up error, or open by choice', () => {
  const DOCKER = fileURLToPath(new URL('../../config/docker.yaml', import.meta.url));
  const docker = (env: Record<string, string | undefined>) => loadConfig({ path: DOCKER, env });

  it("the image's config refuses to load without a token, saying how to set one", () => {
    const e = configError(() => docker({}));
    expect(e.problems).toEqual([
      'auth.require_token: no API token is configured. Set CHANGEPAGER_TOKEN (e.g. docker run -e ' +
        'CHANGEPAGER_TOKEN="$(openssl rand -hex 32)" …) or list tokens in auth.tokens of your own config; ' +
        'for a lab that needs no token, CHANGEPAGER_ALLOW_OPEN=1 serves /v1 to anyone who can reach it',
    ]);
  });

  it.each([
    { intent: 'CHANGEPAGER_TOKEN', env: { CHANGEPAGER_TOKEN: 't0123456789' } },
    { intent: 'CHANGEPAGER_ALLOW_OPEN=1', env: { CHANGEPAGER_ALLOW_OPEN: '1' } },
    { intent: 'CHANGEPAGER_ALLOW_OPEN=true', env: { CHANGEPAGER_ALLOW_OPEN: 'true' } },
  ])("the image's config loads with $intent", ({ env }) => {
    expect(docker(env).listen).toEqual({ host: '0.0.0.0', port: 8080 });
  });

  it('a token from auth.tokens satisfies require_token too', () => {
    const config = parse('auth: { require_token: true, tokens: [{ name: am, token_env: AM_TOKEN }] }', {
      AM_TOKEN: 'am-secret-0123',
    });
    expect(config.tokens.map((t) => t.name)).toEqual(['am']);
  });

  it('a token_env that is missing is reported as itself, not also as "no token"', () => {
    const e = configError(() => parse('auth: { require_token: true, tokens: [{ name: am, token_env: AM_TOKEN }] }'));
    expect(pathsOf(e)).toEqual(['auth.tokens.0.token_env']);
  });

  it.each([{ value: 'yes' }, { value: 'on' }, { value: '2' }])(
    'CHANGEPAGER_ALLOW_OPEN=$value is a problem rather than a guess',
    ({ value }) => {
      const e = configError(() => parse('', { CHANGEPAGER_ALLOW_OPEN: value }));
      expect(e.problems).toEqual([`CHANGEPAGER_ALLOW_OPEN (environment): "${value}" must be 1 or 0`]);
    },
  );

  it.each([
    {
      intent: 'a token guards /v1: the configured host',
      yaml: 'listen: { host: 0.0.0.0 }',
      env: { CHANGEPAGER_TOKEN: 't0123456789' },
      bind: { host: '0.0.0.0', access: 'token' },
    },
    {
      intent: 'no token on loopback: open to this machine only',
      yaml: 'listen: { host: 127.0.0.1 }',
      env: {},
      bind: { host: '127.0.0.1', access: 'this-machine' },
    },
    {
      intent: 'no token on ::1: open to this machine only',
      yaml: 'listen: { host: "::1" }',
      env: {},
      bind: { host: '::1', access: 'this-machine' },
    },
    {
      intent: 'no token beyond loopback: narrowed to 127.0.0.1',
      yaml: 'listen: { host: 0.0.0.0 }',
      env: {},
      bind: { host: '127.0.0.1', access: 'this-machine', narrowedFrom: '0.0.0.0' },
    },
    {
      intent: 'HOST beyond loopback without a token: narrowed too',
      yaml: '',
      env: { HOST: '0.0.0.0' },
      bind: { host: '127.0.0.1', access: 'this-machine', narrowedFrom: '0.0.0.0' },
    },
    {
      intent: 'CHANGEPAGER_ALLOW_OPEN=1: the configured host, open to anyone',
      yaml: 'listen: { host: 0.0.0.0 }',
      env: { CHANGEPAGER_ALLOW_OPEN: '1' },
      bind: { host: '0.0.0.0', access: 'anyone' },
    },
    {
      intent: 'CHANGEPAGER_ALLOW_OPEN=0 is the default',
      yaml: 'listen: { host: 0.0.0.0 }',
      env: { CHANGEPAGER_ALLOW_OPEN: '0' },
      bind: { host: '127.0.0.1', access: 'this-machine', narrowedFrom: '0.0.0.0' },
    },
  ])('bind: $intent', ({ yaml, env, bind }) => {
    expect(bindAddress(parse(yaml, env))).toEqual(bind);
  });
});

describe('the returned config is frozen, all the way down', () => {
  const config = parse(
    [
      'services:',
      '  checkout: { policy: notify }',
      'people:',
      '  - email: alice@example.com',
      '    logins: [alice]',
      '    working_hours: { start: "09:00", end: "18:00" }',
    ].join('\n'),
    { CHANGEPAGER_TOKEN: 'frozen-secret' },
  );

  it.each([
    { what: 'the config', value: config },
    { what: 'listen', value: config.listen },
    { what: 'tokens', value: config.tokens },
    { what: 'a token', value: config.tokens[0] },
    { what: 'serviceLabels', value: config.serviceLabels },
    { what: 'defaults', value: config.defaults },
    { what: 'defaults.labels.host', value: config.defaults.labels.host },
    { what: 'services', value: config.services },
    { what: 'services.checkout.labels.environment', value: config.services.checkout?.labels.environment },
    { what: 'directory.people', value: config.directory.people },
    { what: 'a person', value: config.directory.people[0] },
    { what: 'a person’s working days', value: config.directory.people[0]?.workingHours?.days },
    { what: 'directory.bots', value: config.directory.bots },
    { what: 'delivery', value: config.delivery },
    { what: 'evidence.defaults.comparisons', value: config.evidence.defaults.comparisons },
    { what: 'a comparison', value: config.evidence.services.checkout?.comparisons[0] },
  ])('$what', ({ value }) => {
    expect(value).toBeDefined();
    expect(Object.isFrozen(value)).toBe(true);
  });

  it('a write throws instead of silently changing the running config', () => {
    expect(() => {
      (config.listen as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => (config.directory.bots as string[]).push('evil')).toThrow(TypeError);
    expect(config.listen.port).toBe(8080);
  });
});

describe('example files (test/fixtures/config)', () => {
  it('good.yaml loads with every section applied', () => {
    const config = loadConfig({ path: join(FIXTURES, 'good.yaml'), env: { CP_ALERTMANAGER_TOKEN: 'am-token' } });
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 9095 });
    expect(config.defaultEnvironment).toBe('prod-eu');
    expect(config.bodyLimitBytes).toBe(1024 * 1024);
    expect(config.tokens).toEqual([{ name: 'alertmanager', secret: 'am-token' }]);
    expect(config.serviceLabels).toEqual(['service', 'app']);
    expect(config.defaults).toMatchObject({
      windowMs: 45 * MIN,
      skewMs: 3 * MIN,
      mode: 'author+oncall',
      includeMerger: false,
    });
    expect(config.services.checkout).toMatchObject({
      windowMs: 30 * MIN,
      skewMs: 3 * MIN,
      mode: 'notify',
      includeMerger: false,
    });
    expect(config.services.payments).toMatchObject({ mode: 'shadow', includeMerger: true });
    expect(config.services.payments?.labels).toEqual({
      service: ['service', 'app'],
      environment: ['stage'],
      host: ['pod', 'host', 'node'],
    });
    expect(config.services['legacy-billing']?.mode).toBe('off');
    expect(config.directory.people.map((p) => p.email)).toEqual([
      'alice@example.com',
      'bob@example.com',
      'carol@example.com',
    ]);
    expect(config.directory.people[0]).toMatchObject({
      logins: ['alice', 'alice-gh'],
      pagerdutyUserId: 'PABC123',
      slackUserId: 'U0123ABCD',
      timezone: 'Asia/Tokyo',
    });
    expect(config.directory.people[1]?.workingHours).toEqual({
      days: ['mon', 'tue', 'wed', 'thu', 'fri'],
      startMinute: 22 * 60,
      endMinute: 6 * 60,
    });
    expect(config.directory.bots).toEqual(['dependabot', 'renovate', 'snyk-bot']);
    expect(config.delivery).toEqual({ pollIntervalMs: 2 * SEC, maxBackoffMs: 5 * MIN, leaseMs: 30 * SEC });
    expect(config.externalUrl).toBe('https://changepager.example.com/cp');
    expect(config.defaults.maxDms).toBe(10);
    expect(config.services.checkout?.maxDms).toBe(5);
    expect(config.services.payments?.maxDms).toBe(10);
  });

  it('good.yaml without its token variable is rejected, naming the variable', () => {
    const e = configError(() => loadConfig({ path: join(FIXTURES, 'good.yaml'), env: {} }));
    expect(e.problems).toEqual([
      'auth.tokens.0.token_env: environment variable CP_ALERTMANAGER_TOKEN is not set or empty',
    ]);
  });

  it('bad.yaml is rejected with every one of its problems, at its path', () => {
    const path = join(FIXTURES, 'bad.yaml');
    const e = configError(() => loadConfig({ path, env: {} }));
    expect(e.file).toBe(path);
    expect(pathsOf(e).sort()).toEqual(
      [
        '(top level)',
        'auth.tokens.0',
        'defaults.policy',
        'defaults.window',
        'listen.port',
        'people.0.email',
        'people.0.timezone',
        'people.0.working_hours.start',
        'people.1.working_hours.days.1',
        'people.1.working_hours.end',
        'services.checkout',
        'services.checkout.include_merger',
        'services.checkout.max_dms',
        'external_url',
      ].sort(),
    );
    expect(e.problems).toContain('(top level): Unrecognized key: "retention"');
    expect(e.problems).toContain('services.checkout: Unrecognized key: "windw"');
    expect(e.message).not.toContain('s3cr3t-inline-value');
  });

  it('a file that cannot be read is a ConfigError, not a crash', () => {
    const path = join(FIXTURES, 'does-not-exist.yaml');
    const e = configError(() => loadConfig({ path, env: {} }));
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(/^cannot read the file: .*ENOENT/);
  });

  it('loadConfig reads through an injected readFile', () => {
    const files: Record<string, string> = { '/etc/cp.yaml': 'default_environment: staging\n' };
    const config = loadConfig({
      path: '/etc/cp.yaml',
      env: {},
      readFile: (p) => {
        const text = files[p];
        if (text === undefined) throw new Error(`ENOENT: ${p}`);
        return text;
      },
    });
    expect(config.defaultEnvironment).toBe('staging');
  });
});

describe('database: SQLite by path, or PostgreSQL by URL', () => {
  it('uses the SQLite file unless a PostgreSQL URL is set', () => {
    expect(parse('').postgres).toBeUndefined();
  });

  it.each([
    {
      intent: 'a URL in the file, with the pool and connection defaults',
      yaml: 'database: { url: "postgres://changepager@db.example:5432/changepager" }',
      env: {},
      value: { url: 'postgres://changepager@db.example:5432/changepager', poolSize: 10, connectTimeoutMs: 5 * SEC },
    },
    {
      intent: 'a whole URL, password included, from the variable url_env names',
      yaml: 'database: { url_env: DB_URL, pool_size: 4, connect_timeout: PT2S }',
      env: { DB_URL: 'postgresql://cp:s3cret@10.0.0.5/cp' },
      value: { url: 'postgresql://cp:s3cret@10.0.0.5/cp', poolSize: 4, connectTimeoutMs: 2 * SEC },
    },
  ])('$intent', ({ yaml, env, value }) => {
    expect(parse(yaml, env).postgres).toEqual(value);
  });

  it('reads the URL from url_file, trimmed', () => {
    const file = join(tmp, 'database-url');
    writeFileSync(file, 'postgres://cp:pw@db:5432/cp\n');
    expect(parse(`database: { url_file: ${JSON.stringify(file)} }`).postgres?.url).toBe('postgres://cp:pw@db:5432/cp');
  });

  it.each([
    {
      intent: 'a password in the file itself',
      yaml: 'database: { url: "postgres://cp:hunter2@db/cp" }',
      says: 'password',
    },
    { intent: 'another scheme', yaml: 'database: { url: "mysql://db/cp" }', says: 'postgres://' },
    { intent: 'no database named', yaml: 'database: { url: "postgres://db:5432" }', says: 'must name a database' },
    { intent: 'not a URL', yaml: 'database: { url: "db.example" }', says: 'must be a URL' },
    {
      intent: 'two sources at once',
      yaml: 'database: { url: "postgres://db/cp", url_env: DB_URL }',
      says: 'one of url, url_env or url_file',
    },
    { intent: 'a pool of one connection', yaml: 'database: { url: "postgres://db/cp", pool_size: 1 }', says: '>=2' },
  ])('refuses $intent, at database', ({ yaml, says }) => {
    const e = configError(() => parse(yaml, { DB_URL: 'postgres://db/cp' }));
    expect(e.problems.some((p) => p.startsWith('database') && p.includes(says))).toBe(true);
    expect(e.message).not.toContain('hunter2');
  });

  it('checks a URL from the environment without repeating it, password and all', () => {
    const e = configError(() => parse('database: { url_env: DB_URL }', { DB_URL: 'https://cp:hunter2@db/cp' }));
    expect(e.problems).toEqual(['database.url_env: the URL in DB_URL must start with postgres:// or postgresql://']);
    expect(e.message).not.toContain('hunter2');
  });

  it('names the variable when url_env points at nothing', () => {
    const e = configError(() => parse('database: { url_env: DB_URL }'));
    expect(e.problems).toEqual(['database.url_env: environment variable DB_URL is not set or empty']);
  });
});
