import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { Channel } from '../channels/channel.js';
import { CHANNELS, type ChannelSettings } from '../channels/registry.js';
import { BUILT_IN_COMPARISONS, type Comparison, type EvidencePolicy } from '../core/comparisons.js';
import type { Directory } from '../core/people.js';
import { durationMs } from '../core/time.js';
import type { Decision, LabelNames, Person, ServicePolicy, WorkingHours } from '../core/types.js';
import { type ConfigFile, configFileSchema, postgresUrlProblem } from './schema.js';
import { readSecret, type SecretReader, type SecretSources, secretReader } from './secrets.js';

export { DEFAULT_CONFIG_PATH } from './default-path.js';
export { policyFor } from './policy.js';

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

/** How to ask Prometheus for evidence, and how the judge weighs it. */
export interface PrometheusConfig {
  /** The base URL, without a trailing slash: /api/v1/query_range is appended. */
  url: string;
  auth?: { kind: 'bearer'; token: string } | { kind: 'basic'; username: string; password: string };
  requestTimeoutMs: number;
  /** How long after its receipt an alert's page for a person waits for evidence. */
  budgetMs: number;
  /** The window compared ends this long after the alert started. */
  marginMs: number;
  minPoints: number;
  significance: number;
  minStepMs: number;
  maxPoints: number;
}

/** Evidence per service: the defaults, and each configured service's own. */
export interface EvidenceConfig {
  defaults: EvidencePolicy;
  services: Readonly<Record<string, EvidencePolicy>>;
}

/** PostgreSQL, for a cluster of replicas; the URL may carry a password and is never logged. */
export interface PostgresConfig {
  url: string;
  poolSize: number;
  connectTimeoutMs: number;
}

/**
 * The validated, resolved, frozen configuration the service runs on. Each channel's settings are under its name
 * (`pagerduty`, `slack`; channels/registry.ts), absent when its section is: the log then delivers instead.
 */
export interface Config extends ChannelSettings {
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
  /** Absent: no evidence is gathered (every service's evidence is off). */
  prometheus?: PrometheusConfig;
  evidence: EvidenceConfig;
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
  const channels = resolveChannels(file, secretReader(secrets));
  const metricsToken = readSecret(file.metrics, 'token', 'metrics', secrets);
  const prometheus = file.prometheus && resolvePrometheus(file.prometheus, secrets);
  const evidence = resolveEvidence(file, problems);
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
    evidence,
  };
  if (metricsToken) config.metrics.token = metricsToken;
  if (file.external_url) config.externalUrl = file.external_url;
  if (prometheus) config.prometheus = prometheus;
  if (postgres) config.postgres = postgres;
  return deepFreeze(Object.assign(config, channels));
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

/** Each channel's section resolved by the channel itself (channels/registry.ts), under the channel's name. */
function resolveChannels(file: ConfigFile, secrets: SecretReader): Record<string, unknown> {
  const sections = file as unknown as Record<string, unknown>;
  const routes = (within: unknown, name: string) => (within as Record<string, unknown>)[name];
  const resolved: Record<string, unknown> = {};
  for (const channel of CHANNELS as readonly Channel[]) {
    const section = sections[channel.name];
    if (!channel.config || section === undefined) continue;
    const services: Record<string, unknown> = {};
    for (const [service, override] of Object.entries(file.services)) {
      const route = routes(override, channel.name);
      if (route !== undefined) services[service] = route;
    }
    const defaults = routes(file.defaults, channel.name);
    const settings = channel.config.resolve(
      { section, services, ...(defaults === undefined ? {} : { defaults }) },
      secrets,
    );
    if (settings !== undefined) resolved[channel.name] = settings;
  }
  return resolved;
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

function resolvePrometheus(section: NonNullable<ConfigFile['prometheus']>, secrets: SecretSources): PrometheusConfig {
  const prometheus: PrometheusConfig = {
    url: section.url,
    requestTimeoutMs: durationMs(section.request_timeout) as number,
    budgetMs: durationMs(section.budget) as number,
    marginMs: durationMs(section.margin) as number,
    minPoints: section.min_points,
    significance: section.significance,
    minStepMs: durationMs(section.min_step) as number,
    maxPoints: section.max_points,
  };
  const token = readSecret(section, 'bearer_token', 'prometheus', secrets);
  if (token) prometheus.auth = { kind: 'bearer', token };
  if (section.basic_auth) {
    const password = readSecret(section.basic_auth, 'password', 'prometheus.basic_auth', secrets);
    if (password) prometheus.auth = { kind: 'basic', username: section.basic_auth.username, password };
  }
  return prometheus;
}

/**
 * Each service's evidence setting and comparisons: its own, else the defaults', else advisory (when there is a
 * Prometheus to ask) and the built-in comparisons. Asking for evidence with nowhere to get it from is a problem,
 * not a setting quietly ignored.
 */
function resolveEvidence(file: ConfigFile, problems: string[]): EvidenceConfig {
  const fallback = file.prometheus ? 'advisory' : 'off';
  const needsSource = (mode: string | undefined, at: string) => {
    if (!file.prometheus && (mode === 'required' || mode === 'advisory')) {
      problems.push(`${at}: ${mode} needs a prometheus section to ask for evidence`);
    }
  };
  needsSource(file.defaults.evidence, 'defaults.evidence');
  const policy = (
    mode: EvidencePolicy['mode'] | undefined,
    list: ConfigFile['defaults']['comparisons'],
  ): EvidencePolicy => ({
    mode: mode ?? file.defaults.evidence ?? fallback,
    comparisons: (list ?? file.defaults.comparisons)?.map(toComparison) ?? BUILT_IN_COMPARISONS,
  });
  const services: Record<string, EvidencePolicy> = {};
  for (const [name, override] of Object.entries(file.services)) {
    needsSource(override.evidence, `services.${name}.evidence`);
    services[name] = policy(override.evidence, override.comparisons);
  }
  return { defaults: policy(undefined, undefined), services };
}

function toComparison(c: NonNullable<ConfigFile['defaults']['comparisons']>[number]): Comparison {
  return { name: c.name, query: c.query, bad: c.bad, minChange: c.min_change, critical: c.critical, unit: c.unit };
}

/** The evidence setting of a service: its own section, else the defaults. */
export function evidenceFor(config: Config, service: string | undefined): EvidencePolicy {
  return (
    (service !== undefined && Object.hasOwn(config.evidence.services, service) && config.evidence.services[service]) ||
    config.evidence.defaults
  );
}

/**
 * How long a decision's page for a person waits for the evidence on its deploy: the budget, when Prometheus is
 * configured, the service's evidence is not off, and the decision pages a person for a deploy; else undefined.
 */
export function evidenceBudgetFor(
  config: Config,
  decision: Pick<Decision, 'deployId' | 'targets' | 'service'>,
): number | undefined {
  if (!config.prometheus || decision.deployId === undefined) return undefined;
  if (!decision.targets.some((t) => t.kind === 'person')) return undefined;
  if (evidenceFor(config, decision.service).mode === 'off') return undefined;
  return config.prometheus.budgetMs;
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
