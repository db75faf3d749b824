import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import type { Directory } from '../core/people.js';
import { durationMs } from '../core/time.js';
import type { LabelNames, Person, ServicePolicy, WorkingHours } from '../core/types.js';
import { type ConfigFile, configFileSchema, postgresUrlProblem } from './schema.js';

/**
 * The embedded default, found from this module rather than the working directory, so `changepager serve` starts
 * from any folder: this file is src/config/load.ts under tsx and dist/config/load.js when built, two levels below
 * the package root either way.
 */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../config/changepager.yaml', import.meta.url));

export interface ApiToken {
  name: string;
  secret: string;
  /** Absent means write. A read token may GET (and see the timeline page) but gets 403 on POST routes. */
  role?: 'read' | 'write';
}

/** The timeline page's login: how long a session lasts and when its cookie is marked Secure. */
export interface SessionConfig {
  ttlMs: number;
  cookieSecure: 'auto' | 'always' | 'never';
}

/** The login form's rate limit: wrong tokens per client address per window. */
export interface LoginLimitConfig {
  maxFailures: number;
  windowMs: number;
}

/** Where one service's pages go in PagerDuty. */
export interface PagerDutyRoute {
  /** PagerDuty service on which incidents for a person are created (REST). */
  serviceId?: string;
  /** Events API v2 integration key: the service's normal on-call. */
  routingKey?: string;
}

export interface PagerDutyConfig {
  /** host[:port] of the Events API: the client always speaks https to it. */
  eventsHost: string;
  apiUrl: string;
  apiToken?: string;
  from?: string;
  /** PEM text of extra CAs to trust. */
  ca?: string;
  timeoutMs: number;
  fallbackAfterMs: number;
  userCacheTtlMs: number;
  changeEvents: boolean;
  /** The size, in bytes of JSON, every Events API body is built to fit. */
  maxEventBytes: number;
  defaults: PagerDutyRoute;
  services: Readonly<Record<string, PagerDutyRoute>>;
}

export interface SlackConfig {
  mode: 'http' | 'socket';
  botToken: string;
  signingSecret?: string;
  appToken?: string;
  apiUrl: string;
  botId?: string;
  botUserId?: string;
  timeoutMs: number;
  userCacheTtlMs: number;
  threadWindowMs: number;
}

/** What the timeline page and GET /v1/timeline show at most, and how far back they look by default. */
export interface TimelineConfig {
  defaultRangeMs: number;
  maxItems: number;
  maxChanges: number;
  maxTextChars: number;
}

/** How the HTTP server guards its connections (Node's http.Server settings of the same names). */
export interface HttpServerConfig {
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  socketTimeoutMs: number;
}

/** GET /metrics: its optional token, and how the gauges computed from the database are kept. */
export interface MetricsConfig {
  token?: string;
  refreshIntervalMs: number;
  /** Per-service series beyond the configured services; the rest are summed as service="other". */
  topServices: number;
}

/** PostgreSQL, for a cluster of replicas; the URL may carry a password and is never logged. */
export interface PostgresConfig {
  url: string;
  poolSize: number;
  connectTimeoutMs: number;
}

/** The validated, resolved, frozen configuration the service runs on. */
export interface Config {
  listen: { host: string; port: number };
  /** The SQLite file; not used when `postgres` is set. */
  databasePath: string;
  /** Set by database.url, url_env or url_file: the replicas share this PostgreSQL database. */
  postgres?: PostgresConfig;
  defaultEnvironment: string;
  bodyLimitBytes: number;
  /** Proxies whose X-Forwarded-For names the client (express's trust proxy); empty trusts none. */
  trustedProxies: readonly string[];
  http: HttpServerConfig;
  tokens: readonly ApiToken[];
  /** CHANGEPAGER_ALLOW_OPEN=1: serve /v1 without a token on the configured address, not only on loopback. */
  allowOpen: boolean;
  session: SessionConfig;
  loginLimit: LoginLimitConfig;
  /** A refused request is logged once per client address and route per this many ms. */
  deniedLogIntervalMs: number;
  serviceLabels: readonly string[];
  defaults: ServicePolicy;
  services: Readonly<Record<string, ServicePolicy>>;
  directory: Directory;
  delivery: { pollIntervalMs: number; maxBackoffMs: number; leaseMs: number };
  /** The base URL people reach changepager at, without a trailing slash; absent: pages carry no links back. */
  externalUrl?: string;
  timeline: TimelineConfig;
  metrics: MetricsConfig;
  /** Absent: pages are written to the log (the embedded default). */
  pagerduty?: PagerDutyConfig;
  /** Absent: DMs are written to the log. */
  slack?: SlackConfig;
}

/** A config that cannot be used, with every problem found, each prefixed by its path in the file. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file}: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  path: string;
  env: Readonly<Record<string, string | undefined>>;
  readFile?: (path: string) => string;
}

/**
 * Reads, validates and resolves a config file, then freezes it. Environment: CHANGEPAGER_TOKEN adds an API
 * token, HOST and PORT override the listen address. Throws ConfigError listing every problem.
 */
export function loadConfig({ path, env, readFile = (p) => readFileSync(p, 'utf8') }: LoadOptions): Config {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new ConfigError(path, [`cannot read the file: ${(err as Error).message}`]);
  }
  return parseConfig(text, { path, env, readFile });
}

export function parseConfig(
  text: string,
  { path, env, readFile = (p) => readFileSync(p, 'utf8') }: LoadOptions,
): Config {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      path,
      doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`),
    );
  }
  const problems: string[] = [];
  if (env.PORT !== undefined && !(/^\d{1,5}$/.test(env.PORT) && Number(env.PORT) <= 65535)) {
    problems.push(`PORT (environment): "${env.PORT}" is not a port number`);
  }
  const parsed = configFileSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    // Secrets are read only from a well-formed file; the structural problems come first, all of them.
    throw new ConfigError(path, [
      ...parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(top level)'}: ${i.message}`),
      ...problems,
    ]);
  }
  const file = parsed.data;
  const secrets = { env, readFile, problems };
  const tokens = resolveTokens(file, secrets);
  const pd = file.pagerduty && resolvePagerDuty(file, secrets);
  const slack = file.slack && resolveSlack(file.slack, secrets);
  const metricsToken = readSecret(file.metrics, 'token', 'metrics', secrets);
  const postgres = resolvePostgres(file.database, secrets);
  const port = env.PORT === undefined ? file.listen.port : Number(env.PORT);
  const allowOpen = allowOpenFrom(env, problems);
  if (file.auth.require_token && !allowOpen && file.auth.tokens.length === 0 && !env.CHANGEPAGER_TOKEN) {
    problems.push(
      'auth.require_token: no API token is configured. Set CHANGEPAGER_TOKEN (e.g. docker run -e ' +
        'CHANGEPAGER_TOKEN="$(openssl rand -hex 32)" …) or list tokens in auth.tokens of your own config; ' +
        'for a lab that needs no token, CHANGEPAGER_ALLOW_OPEN=1 serves /v1 to anyone who can reach it',
    );
  }
  if (problems.length > 0) throw new ConfigError(path, problems);

  const defaults = toPolicy(file.defaults, file.defaults.labels);
  const services: Record<string, ServicePolicy> = {};
  for (const [name, override] of Object.entries(file.services)) {
    services[name] = toPolicy(
      {
        window: override.window ?? file.defaults.window,
        skew: override.skew ?? file.defaults.skew,
        policy: override.policy ?? file.defaults.policy,
        include_merger: override.include_merger ?? file.defaults.include_merger,
        max_dms: override.max_dms ?? file.defaults.max_dms,
        compare_url: override.compare_url ?? file.defaults.compare_url,
      },
      { ...file.defaults.labels, ...override.labels },
    );
  }

  const config: Config = {
    listen: { host: env.HOST || file.listen.host, port },
    databasePath: file.database.path,
    defaultEnvironment: file.default_environment,
    bodyLimitBytes: file.http.body_limit_bytes,
    trustedProxies: file.http.trusted_proxies,
    http: {
      maxConnections: file.http.max_connections,
      headersTimeoutMs: durationMs(file.http.headers_timeout) as number,
      requestTimeoutMs: durationMs(file.http.request_timeout) as number,
      keepAliveTimeoutMs: durationMs(file.http.keep_alive_timeout) as number,
      socketTimeoutMs: durationMs(file.http.socket_timeout) as number,
    },
    tokens,
    allowOpen,
    session: { ttlMs: durationMs(file.auth.session_ttl) as number, cookieSecure: file.auth.cookie_secure },
    loginLimit: {
      maxFailures: file.auth.login_limit.max_failures,
      windowMs: durationMs(file.auth.login_limit.window) as number,
    },
    deniedLogIntervalMs: durationMs(file.auth.denied_log_interval) as number,
    serviceLabels: file.defaults.labels.service,
    defaults,
    services,
    directory: { people: file.people.map(toPerson), bots: file.bots },
    delivery: {
      pollIntervalMs: durationMs(file.delivery.poll_interval) as number,
      maxBackoffMs: durationMs(file.delivery.max_backoff) as number,
      leaseMs: durationMs(file.delivery.lease) as number,
    },
    timeline: {
      defaultRangeMs: durationMs(file.timeline.default_range) as number,
      maxItems: file.timeline.max_items,
      maxChanges: file.timeline.max_changes,
      maxTextChars: file.timeline.max_text_chars,
    },
    metrics: {
      refreshIntervalMs: durationMs(file.metrics.refresh_interval) as number,
      topServices: file.metrics.top_services,
    },
  };
  if (metricsToken) config.metrics.token = metricsToken;
  if (file.external_url) config.externalUrl = file.external_url;
  if (pd) config.pagerduty = pd;
  if (slack) config.slack = slack;
  if (postgres) config.postgres = postgres;
  return deepFreeze(config);
}

/** CHANGEPAGER_ALLOW_OPEN: 1 or true to allow, 0, false or unset not to; anything else is a problem. */
function allowOpenFrom(env: LoadOptions['env'], problems: string[]): boolean {
  const value = env.CHANGEPAGER_ALLOW_OPEN;
  if (value === undefined || value === '' || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  problems.push(`CHANGEPAGER_ALLOW_OPEN (environment): "${value}" must be 1 or 0`);
  return false;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Where the service binds, and who may use /v1 there: token holders, anyone on this machine, or anyone. */
export interface Bind {
  host: string;
  access: 'token' | 'this-machine' | 'anyone';
  /** The configured host, when it was replaced by 127.0.0.1 because no token is configured. */
  narrowedFrom?: string;
}

/**
 * Without an API token /v1 answers anyone, so the service keeps to loopback unless CHANGEPAGER_ALLOW_OPEN says
 * otherwise. Both `serve` and `healthcheck` ask this, so the healthcheck knows where the service really is.
 */
export function bindAddress(config: Config): Bind {
  const { host } = config.listen;
  if (config.tokens.length > 0) return { host, access: 'token' };
  if (LOOPBACK.has(host)) return { host, access: 'this-machine' };
  if (config.allowOpen) return { host, access: 'anyone' };
  return { host: '127.0.0.1', access: 'this-machine', narrowedFrom: host };
}

/** The PagerDuty route of a service: its own keys over the defaults. */
export function pagerdutyFor(pd: PagerDutyConfig, service: string): PagerDutyRoute {
  return { ...pd.defaults, ...(Object.hasOwn(pd.services, service) ? pd.services[service] : {}) };
}

interface SecretSources {
  env: LoadOptions['env'];
  readFile: (path: string) => string;
  problems: string[];
}

/** Reads the secret named by `<name>_env` or `<name>_file` in `obj`; records a problem when it cannot. */
function readSecret(
  obj: object,
  name: string,
  at: string,
  { env, readFile, problems }: SecretSources,
): string | undefined {
  const fields = obj as Record<string, string | undefined>;
  const fromEnv = fields[`${name}_env`];
  const fromFile = fields[`${name}_file`];
  if (fromEnv !== undefined) {
    const value = env[fromEnv];
    if (!value) problems.push(`${at}.${name}_env: environment variable ${fromEnv} is not set or empty`);
    return value || undefined;
  }
  if (fromFile !== undefined) {
    try {
      const value = readFile(fromFile).trim();
      if (!value) problems.push(`${at}.${name}_file: ${fromFile} is empty`);
      return value || undefined;
    } catch (err) {
      problems.push(`${at}.${name}_file: cannot read ${fromFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  return undefined;
}

/**
 * The PostgreSQL URL from database.url, or from the variable or file it names (where a password may be). A URL
 * read from a secret is checked like one in the file; no problem message repeats it.
 */
function resolvePostgres(section: ConfigFile['database'], secrets: SecretSources): PostgresConfig | undefined {
  const url = section.url ?? readSecret(section, 'url', 'database', secrets);
  if (url === undefined) return undefined;
  if (section.url === undefined) {
    const problem = postgresUrlProblem(url);
    const [key, source] = section.url_env !== undefined ? ['url_env', section.url_env] : ['url_file', section.url_file];
    if (problem) secrets.problems.push(`database.${key}: the URL in ${source} ${problem}`);
  }
  return { url, poolSize: section.pool_size, connectTimeoutMs: durationMs(section.connect_timeout) as number };
}

function resolveSlack(section: NonNullable<ConfigFile['slack']>, secrets: SecretSources): SlackConfig | undefined {
  const botToken = readSecret(section, 'bot_token', 'slack', secrets);
  const signingSecret = readSecret(section, 'signing_secret', 'slack', secrets);
  const appToken = readSecret(section, 'app_token', 'slack', secrets);
  if (!botToken) return undefined; // readSecret recorded the problem
  const slack: SlackConfig = {
    mode: section.mode,
    botToken,
    apiUrl: section.api_url.endsWith('/') ? section.api_url : `${section.api_url}/`,
    timeoutMs: durationMs(section.request_timeout) as number,
    userCacheTtlMs: durationMs(section.user_cache_ttl) as number,
    threadWindowMs: durationMs(section.thread_window) as number,
  };
  if (signingSecret) slack.signingSecret = signingSecret;
  if (appToken) slack.appToken = appToken;
  if (section.bot_id) slack.botId = section.bot_id;
  if (section.bot_user_id) slack.botUserId = section.bot_user_id;
  return slack;
}

function resolvePagerDuty(file: ConfigFile, secrets: SecretSources): PagerDutyConfig | undefined {
  const section = file.pagerduty;
  if (!section) return undefined;
  const route = (p: NonNullable<ConfigFile['defaults']['pagerduty']>, at: string): PagerDutyRoute => {
    const r: PagerDutyRoute = {};
    if (p.service_id) r.serviceId = p.service_id;
    const key = readSecret(p, 'routing_key', at, secrets);
    if (key) r.routingKey = key;
    return r;
  };
  const defaults = file.defaults.pagerduty ? route(file.defaults.pagerduty, 'defaults.pagerduty') : {};
  if (!defaults.routingKey && !file.defaults.pagerduty?.routing_key_env && !file.defaults.pagerduty?.routing_key_file) {
    // Every alert must be able to reach someone: on-call through the Events API is the floor.
    secrets.problems.push(
      'defaults.pagerduty: set routing_key_env or routing_key_file: on-call pages need a default routing key',
    );
  }
  const services: Record<string, PagerDutyRoute> = {};
  for (const [name, svc] of Object.entries(file.services)) {
    if (svc.pagerduty) services[name] = route(svc.pagerduty, `services.${name}.pagerduty`);
  }
  const pd: PagerDutyConfig = {
    eventsHost: new URL(section.events_url).host,
    apiUrl: section.api_url,
    timeoutMs: durationMs(section.request_timeout) as number,
    fallbackAfterMs: durationMs(section.author_fallback_after) as number,
    userCacheTtlMs: durationMs(section.user_cache_ttl) as number,
    changeEvents: section.change_events,
    maxEventBytes: section.max_event_bytes,
    defaults,
    services,
  };
  const token = readSecret(section, 'api_token', 'pagerduty', secrets);
  if (token) pd.apiToken = token;
  if (section.from) pd.from = section.from;
  if (section.ca_file) {
    try {
      pd.ca = secrets.readFile(section.ca_file);
      const problem = pemProblem(pd.ca);
      if (problem) secrets.problems.push(`pagerduty.ca_file: ${section.ca_file} ${problem}`);
    } catch (err) {
      secrets.problems.push(
        `pagerduty.ca_file: cannot read ${section.ca_file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  }
  return pd;
}

/**
 * Why a CA file cannot be trusted, if it cannot. Node takes any text as `ca` without a word and then fails every
 * TLS handshake, so each PEM certificate in it is parsed here.
 */
function pemProblem(text: string): string | undefined {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)';
  const bad = blocks.findIndex((pem) => {
    try {
      new X509Certificate(pem);
      return false;
    } catch {
      return true;
    }
  });
  return bad < 0 ? undefined : `has a certificate that cannot be read (number ${bad + 1} in the file)`;
}

/** The policy for a service: its own section, else the defaults. */
export function policyFor(config: Config, service: string | undefined): ServicePolicy {
  // hasOwn: a service label such as "constructor" must not find Object.prototype's member.
  return (
    (service !== undefined && Object.hasOwn(config.services, service) && config.services[service]) || config.defaults
  );
}

function resolveTokens(file: ConfigFile, secrets: SecretSources): ApiToken[] {
  const tokens: ApiToken[] = [];
  if (secrets.env.CHANGEPAGER_TOKEN) tokens.push({ name: 'CHANGEPAGER_TOKEN', secret: secrets.env.CHANGEPAGER_TOKEN });
  file.auth.tokens.forEach((ref, i) => {
    const secret = readSecret(ref, 'token', `auth.tokens.${i}`, secrets);
    if (secret) tokens.push({ name: ref.name, secret, ...(ref.role === 'read' ? { role: 'read' as const } : {}) });
  });
  return tokens;
}

function toPolicy(
  p: {
    window: string;
    skew: string;
    policy: ServicePolicy['mode'];
    include_merger: boolean;
    max_dms: number;
    compare_url?: string | undefined;
  },
  labels: LabelNames,
): ServicePolicy {
  const policy: ServicePolicy = {
    // Validated by the schema, so these are numbers.
    windowMs: durationMs(p.window) as number,
    skewMs: durationMs(p.skew) as number,
    mode: p.policy,
    includeMerger: p.include_merger,
    maxDms: p.max_dms,
    labels: { service: labels.service, environment: labels.environment, host: labels.host },
  };
  if (p.compare_url !== undefined) policy.compareUrl = p.compare_url;
  return policy;
}

function toPerson(p: ConfigFile['people'][number]): Person {
  const person: Person = { email: p.email, emails: p.emails, logins: p.logins };
  if (p.name !== undefined) person.name = p.name;
  if (p.pagerduty_user_id !== undefined) person.pagerdutyUserId = p.pagerduty_user_id;
  if (p.slack_user_id !== undefined) person.slackUserId = p.slack_user_id;
  if (p.timezone !== undefined) person.timezone = p.timezone;
  if (p.working_hours !== undefined) person.workingHours = toHours(p.working_hours);
  return person;
}

function toHours(h: { days: WorkingHours['days']; start: string; end: string }): WorkingHours {
  const minutes = (clock: string) => Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5));
  return { days: h.days, startMinute: minutes(h.start), endMinute: minutes(h.end) };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
