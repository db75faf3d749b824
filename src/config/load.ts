import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { Directory } from '../core/people.js';
import { durationMs } from '../core/time.js';
import type { LabelNames, Person, ServicePolicy, WorkingHours } from '../core/types.js';
import { type ConfigFile, configFileSchema } from './schema.js';

export const DEFAULT_CONFIG_PATH = 'config/changepager.yaml';

export interface ApiToken {
  name: string;
  secret: string;
}

/** The validated, resolved, frozen configuration the service runs on. */
export interface Config {
  listen: { host: string; port: number };
  databasePath: string;
  defaultEnvironment: string;
  bodyLimitBytes: number;
  tokens: readonly ApiToken[];
  serviceLabels: readonly string[];
  defaults: ServicePolicy;
  services: Readonly<Record<string, ServicePolicy>>;
  directory: Directory;
  delivery: { pollIntervalMs: number; maxBackoffMs: number };
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
  const parsed = configFileSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    throw new ConfigError(
      path,
      parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(top level)'}: ${i.message}`),
    );
  }
  const problems: string[] = [];
  const file = parsed.data;
  const tokens = resolveTokens(file, env, readFile, problems);
  const port = env.PORT === undefined ? file.listen.port : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    problems.push(`PORT (environment): "${env.PORT}" is not a port number`);
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
      },
      { ...file.defaults.labels, ...override.labels },
    );
  }

  return deepFreeze({
    listen: { host: env.HOST ?? file.listen.host, port },
    databasePath: file.database.path,
    defaultEnvironment: file.default_environment,
    bodyLimitBytes: file.http.body_limit_bytes,
    tokens,
    serviceLabels: file.defaults.labels.service,
    defaults,
    services,
    directory: { people: file.people.map(toPerson), bots: file.bots },
    delivery: {
      pollIntervalMs: durationMs(file.delivery.poll_interval) as number,
      maxBackoffMs: durationMs(file.delivery.max_backoff) as number,
    },
  });
}

/** The policy for a service: its own section, else the defaults. */
export function policyFor(config: Config, service: string | undefined): ServicePolicy {
  return (service !== undefined && config.services[service]) || config.defaults;
}

function resolveTokens(
  file: ConfigFile,
  env: LoadOptions['env'],
  readFile: (path: string) => string,
  problems: string[],
): ApiToken[] {
  const tokens: ApiToken[] = [];
  if (env.CHANGEPAGER_TOKEN) tokens.push({ name: 'CHANGEPAGER_TOKEN', secret: env.CHANGEPAGER_TOKEN });
  file.auth.tokens.forEach((ref, i) => {
    const at = `auth.tokens.${i}`;
    if ('token_env' in ref) {
      const value = env[ref.token_env];
      if (!value) problems.push(`${at}.token_env: environment variable ${ref.token_env} is not set or empty`);
      else tokens.push({ name: ref.name, secret: value });
      return;
    }
    try {
      const value = readFile(ref.token_file).trim();
      if (!value) problems.push(`${at}.token_file: ${ref.token_file} is empty`);
      else tokens.push({ name: ref.name, secret: value });
    } catch (err) {
      problems.push(
        `${at}.token_file: cannot read ${ref.token_file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  });
  return tokens;
}

function toPolicy(
  p: { window: string; skew: string; policy: ServicePolicy['mode']; include_merger: boolean },
  labels: LabelNames,
): ServicePolicy {
  return {
    // Validated by the schema, so these are numbers.
    windowMs: durationMs(p.window) as number,
    skewMs: durationMs(p.skew) as number,
    mode: p.policy,
    includeMerger: p.include_merger,
    labels: { service: labels.service, environment: labels.environment, host: labels.host },
  };
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
