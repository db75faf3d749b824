import { IANAZone } from 'luxon';
import { z } from 'zod';
import type { Channel } from '../channels/channel.js';
import { CHANNELS } from '../channels/registry.js';
import { templateProblems } from '../core/promql-template.js';
import { durationMs } from '../core/time.js';
import { baseUrl, isoDuration, positiveDuration, timerDuration } from './fields.js';

// The YAML config as written by people: snake_case keys as in Alertmanager's and Prometheus' own files.
// Every object is strict, so a misspelt key is an error with its path instead of a setting silently ignored.

/** Each channel's section (`pagerduty:`, `slack:`), from the registry: optional, the channel is off without it. */
const channelSections = sectionsOf((c) => c.config?.section);

/** Each channel's per-service settings (`defaults.pagerduty`, `services.<name>.pagerduty`), when it has any. */
const channelRoutes = sectionsOf((c) => c.config?.route);

function sectionsOf(schemaOf: (channel: Channel) => z.ZodType | undefined): Record<string, z.ZodOptional> {
  return Object.fromEntries(
    CHANNELS.flatMap((c: Channel) => {
      const schema = schemaOf(c);
      return schema ? [[c.name, schema.optional()]] : [];
    }),
  );
}

/** A PostgreSQL connection URL. Its text is never repeated in a message: it may carry a password. */
export function postgresUrlProblem(url: string): string | undefined {
  if (!URL.canParse(url)) return 'must be a URL such as postgres://changepager@db.example:5432/changepager';
  const u = new URL(url);
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return 'must start with postgres:// or postgresql://';
  if (!u.hostname) return 'must name a host';
  if (u.pathname.length <= 1) return 'must name a database (postgres://host:5432/changepager)';
  return undefined;
}

const postgresUrl = z.string().superRefine((url, ctx) => {
  const problem = postgresUrlProblem(url);
  if (problem) ctx.addIssue({ code: 'custom', input: '', message: problem });
  else if (new URL(url).password) {
    ctx.addIssue({
      code: 'custom',
      input: '',
      message: 'must not carry a password: use url_env, url_file or PGPASSWORD',
    });
  }
});

/** A proxy whose X-Forwarded-For is believed: an address, a CIDR range, or one of express's named ranges. */
const proxyAddress = z.union(
  [z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6(), z.enum(['loopback', 'linklocal', 'uniquelocal'])],
  { error: 'must be an IP address, a CIDR range such as 10.0.0.0/8, or loopback, linklocal or uniquelocal' },
);

const clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, { error: 'must be a 24-hour time such as 09:00' });

const weekday = z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);

const timezone = z
  .string()
  .refine((s) => IANAZone.isValidZone(s), { error: 'must be an IANA timezone such as Europe/Berlin' });

const labelList = z.array(z.string().min(1)).min(1);

const policyMode = z.enum(['author', 'author+oncall', 'notify', 'shadow', 'off']);

/** A URL template; {service} {environment} {old} {new} {from} {to} are filled in (see core/links.ts). */
const urlTemplate = z
  .string()
  .regex(/^https?:\/\//, { error: 'must be an http(s) URL template' })
  .refine((s) => !/\{(?!service\}|environment\}|old\}|new\}|from\}|to\})[^}]*\}/.test(s), {
    error: 'only {service} {environment} {old} {new} {from} {to} can be filled in',
  });

/**
 * The most people one alert's decision DMs (the authors of a bundled deploy, say): the rest are counted in its
 * sentence instead, so one deploy of thousands of changes cannot flood Slack or the database.
 */
const maxDms = z.number().int().min(1).max(100);

/** Whether evidence from Prometheus is gathered for a service's decisions, and whether it may change them. */
const evidenceMode = z.enum(['required', 'advisory', 'off']);

/** One metric compared between the new version and the old one (see core/comparisons.ts). */
const comparison = z.strictObject({
  name: z.string().min(1),
  /** A PromQL template, checked with Prometheus' grammar: every problem is reported at this path. */
  query: z
    .string()
    .min(1)
    .check(
      z.superRefine((query, ctx) => {
        for (const problem of templateProblems(query)) ctx.addIssue({ code: 'custom', input: query, message: problem });
      }),
    ),
  bad: z.enum(['increase', 'decrease']).default('increase'),
  /** The smallest change of the mean that counts, relative to the old side's: 0.5 is half as much again. */
  min_change: z.number().min(0).max(100).default(0.1),
  critical: z.boolean().default(false),
  unit: z.enum(['ratio', 'seconds', 'none']).default('none'),
});

/** A service's comparisons: a handful, each named once (the name is how a page and a DM refer to it). */
const comparisons = z
  .array(comparison)
  .max(20)
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((c, i) => {
      if (seen.has(c.name)) {
        ctx.addIssue({ code: 'custom', input: c.name, path: [i, 'name'], message: `"${c.name}" is named twice` });
      }
      seen.add(c.name);
    });
  });

const serviceOverride = z.strictObject({
  window: isoDuration.optional(),
  skew: isoDuration.optional(),
  policy: policyMode.optional(),
  include_merger: z.boolean().optional(),
  max_dms: maxDms.optional(),
  compare_url: urlTemplate.optional(),
  evidence: evidenceMode.optional(),
  comparisons: comparisons.optional(),
  ...channelRoutes,
  // The service label itself cannot be per service: it is what finds the service.
  labels: z.strictObject({ environment: labelList.optional(), host: labelList.optional() }).optional(),
});

const defaults = z.strictObject({
  window: isoDuration.default('PT1H'),
  skew: isoDuration.default('PT2M'),
  policy: policyMode.default('author'),
  include_merger: z.boolean().default(true),
  max_dms: maxDms.default(20),
  compare_url: urlTemplate.optional(),
  /** Unset: advisory when a prometheus section is there to ask, else off. */
  evidence: evidenceMode.optional(),
  /** Unset: the built-in comparisons (core/comparisons.ts). */
  comparisons: comparisons.optional(),
  ...channelRoutes,
  labels: z
    .strictObject({
      service: labelList.default(['service', 'app', 'job']),
      environment: labelList.default(['env', 'environment']),
      host: labelList.default(['pod', 'host']),
    })
    .prefault({}),
});

const email = z.email().transform((s) => s.toLowerCase());

const person = z.strictObject({
  email,
  name: z.string().optional(),
  emails: z.array(email).default([]),
  logins: z
    .array(
      z
        .string()
        .min(1)
        .transform((s) => s.toLowerCase()),
    )
    .default([]),
  pagerduty_user_id: z.string().min(1).optional(),
  slack_user_id: z.string().min(1).optional(),
  timezone: timezone.optional(),
  working_hours: z
    .strictObject({
      days: z.array(weekday).min(1).default(['mon', 'tue', 'wed', 'thu', 'fri']),
      start: clock,
      end: clock,
    })
    .optional(),
});

/** A secret is named by the environment variable or the file that holds it, never written in the YAML. */
/** read: GET routes and the timeline page only (dashboards); write (the default): everything. */
const tokenRole = z.enum(['read', 'write']).optional();

const secretRef = z.union(
  [
    z.strictObject({ name: z.string().min(1), token_env: z.string().min(1), role: tokenRole }),
    z.strictObject({ name: z.string().min(1), token_file: z.string().min(1), role: tokenRole }),
  ],
  { error: 'each token needs a name and one of token_env or token_file (secrets never go in this file)' },
);

/**
 * Where evidence comes from: a Prometheus (or anything with its HTTP query API: Thanos, Mimir, VictoriaMetrics).
 * Credentials, like every secret, come from the environment or a file.
 */
const prometheus = z
  .strictObject({
    url: baseUrl,
    bearer_token_env: z.string().min(1).optional(),
    bearer_token_file: z.string().min(1).optional(),
    basic_auth: z
      .strictObject({
        username: z.string().min(1),
        password_env: z.string().min(1).optional(),
        password_file: z.string().min(1).optional(),
      })
      .refine((b) => !(b.password_env && b.password_file), { error: 'set password_env or password_file, not both' })
      .refine((b) => b.password_env || b.password_file, { error: 'set password_env or password_file' })
      .optional(),
    /** One query_range request at most this long, even for evidence that arrives after the page went out. */
    request_timeout: timerDuration.default('PT10S'),
    /** A page for a person waits at most this long after the alert was received for its evidence. */
    budget: timerDuration.default('PT3S'),
    /** The compared window ends this long after the alert started (or now, if that is sooner). */
    margin: isoDuration.default('PT1M'),
    /** Fewer points than this on either side is no_data: too little to judge. */
    min_points: z.number().int().min(3).max(5_000).default(10),
    /** A one-sided Mann-Whitney p below this is a difference. */
    significance: z.number().gt(0).max(0.5).default(0.01),
    /** The shortest step between points: below the scrape interval, points repeat the same sample. */
    min_step: positiveDuration.default('PT15S'),
    /** The most points per side and series: a longer window gets a longer step. */
    max_points: z.number().int().min(10).max(5_000).default(240),
  })
  .refine((p) => !(p.bearer_token_env && p.bearer_token_file), {
    error: 'set bearer_token_env or bearer_token_file, not both',
  })
  .refine((p) => !((p.bearer_token_env || p.bearer_token_file) && p.basic_auth), {
    error: 'set a bearer token or basic_auth, not both: each is an Authorization header',
  })
  .refine((p) => p.min_points <= p.max_points, {
    path: ['min_points'],
    error: 'must not be more than max_points, or no comparison could ever have enough points',
  });

export const configFileSchema = z.strictObject({
  listen: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
    })
    .prefault({}),
  database: z
    .strictObject({
      /** SQLite, the embedded default: one instance on one file. Used when no url is set. */
      path: z.string().min(1).default('./data/changepager.db'),
      /**
       * PostgreSQL, for several replicas on one database: postgres://user@host:5432/db. Without a password: it
       * comes from url_env or url_file (a whole URL), or from PGPASSWORD, never from this file.
       */
      url: postgresUrl.optional(),
      url_env: z.string().min(1).optional(),
      url_file: z.string().min(1).optional(),
      /** Connections each replica keeps to PostgreSQL at most. */
      pool_size: z.number().int().min(2).max(1000).default(10),
      /** How long a request waits for a PostgreSQL connection before it fails with 503 (Alertmanager sends again). */
      connect_timeout: timerDuration.default('PT5S'),
    })
    .refine((d) => [d.url, d.url_env, d.url_file].filter((v) => v !== undefined).length <= 1, {
      error: 'set one of url, url_env or url_file',
    })
    .prefault({}),
  /**
   * Where people reach changepager (behind a proxy, say), as Alertmanager's --web.external-url: pages link back
   * to an alert's history and its service's timeline there. Without it, pages carry no such links.
   */
  external_url: baseUrl.optional(),
  default_environment: z.string().min(1).default('production'),
  http: z
    .strictObject({
      body_limit_bytes: z
        .number()
        .int()
        .positive()
        .default(5 * 1024 * 1024),
      /**
       * Reverse proxies in front of changepager: from them (and only them) X-Forwarded-For names the client, for
       * the login limit and the logs. Empty: the client is the address of the connection.
       */
      trusted_proxies: z.array(proxyAddress).default([]),
      /** Open connections at most; more are closed as they arrive, so idle sockets cannot exhaust descriptors. */
      max_connections: z.number().int().positive().default(1000),
      /** A client must have sent its request headers this long after connecting (or after its last request). */
      headers_timeout: positiveDuration.default('PT10S'),
      /** ...and its whole request, body included. Processing time does not count. */
      request_timeout: positiveDuration.default('PT30S'),
      /** An idle kept-alive connection is closed after this; longer than a proxy's usual 60 s idle timeout. */
      keep_alive_timeout: positiveDuration.default('PT65S'),
      /** A connection on which nothing moves in either direction (a client that stopped reading) is closed. */
      socket_timeout: positiveDuration.default('PT2M'),
    })
    .refine((h) => (durationMs(h.headers_timeout) ?? 0) <= (durationMs(h.request_timeout) ?? Infinity), {
      error: 'must not be longer than request_timeout (the headers are part of the request)',
      path: ['headers_timeout'],
    })
    .prefault({}),
  auth: z
    .strictObject({
      tokens: z.array(secretRef).default([]),
      /**
       * Refuse to start without an API token instead of falling back to loopback: where the fallback would leave
       * the service running but unreachable (a container image), a start-up error is the honest answer.
       */
      require_token: z.boolean().default(false),
      /** How long a timeline-page login lasts before the form asks for the token again. */
      session_ttl: isoDuration.default('PT12H'),
      /** Secure flag of the login cookie: auto sets it when the request came over https (X-Forwarded-Proto too). */
      cookie_secure: z.enum(['auto', 'always', 'never']).default('auto'),
      /** A refused request (401, 403) is logged at warn once per client address and route per this interval. */
      denied_log_interval: positiveDuration.default('PT1M'),
      /** Wrong tokens one client may type into the login form per window; then its logins get 429 until it ends. */
      login_limit: z
        .strictObject({
          max_failures: z.number().int().positive().default(10),
          window: positiveDuration.default('PT15M'),
        })
        .prefault({}),
    })
    .prefault({}),
  defaults: defaults.prefault({}),
  services: z.record(z.string().min(1), serviceOverride).default({}),
  people: z.array(person).default([]),
  prometheus: prometheus.optional(),
  ...channelSections,
  bots: z
    .array(
      z
        .string()
        .min(1)
        .transform((s) => s.toLowerCase()),
    )
    .default(['dependabot', 'renovate']),
  metrics: z
    .strictObject({
      /** When set, GET /metrics answers only `Authorization: Bearer <token>` (a Prometheus `authorization:`). */
      token_env: z.string().min(1).optional(),
      token_file: z.string().min(1).optional(),
      /** How often the gauges read from the database (hygiene, outbox) are computed; scrapes only read them. */
      refresh_interval: positiveDuration.default('PT30S'),
      /** Per-service series: the services in `services`, plus this many with the most alerts and changes. */
      top_services: z.number().int().min(0).default(100),
    })
    .refine((m) => !(m.token_env && m.token_file), { error: 'set token_env or token_file, not both' })
    .prefault({}),
  delivery: z
    .strictObject({
      poll_interval: timerDuration.default('PT1S'),
      max_backoff: isoDuration.default('PT1M'),
      /**
       * How long a worker holds a claimed outbox row: longer than one delivery attempt takes. A replica that dies
       * mid-delivery loses its rows to another one after this.
       */
      lease: timerDuration.default('PT30S'),
    })
    .prefault({}),
  /** The timeline page (GET /) and GET /v1/timeline. */
  timeline: z
    .strictObject({
      /** Looked back over when the address names no range; the view is then fitted to the data found. */
      default_range: isoDuration
        .refine((s) => within(durationMs(s), 60_000, 31 * 24 * 3_600_000), { error: 'must be from PT1M to P31D' })
        .default('PT6H'),
      /** Deploys, and alerts, per view: the latest; a range with more says so. */
      max_items: z.number().int().min(1).max(10_000).default(500),
      /** Changes and hosts listed per deploy; the rest are in GET /v1/deploys/{id}. */
      max_changes: z.number().int().min(1).max(1_000).default(10),
      /** Characters of any one text shown (a title, a message, a label value); the rest are in the full record. */
      max_text_chars: z.number().int().min(40).max(100_000).default(200),
    })
    .prefault({}),
});

function within(value: number | undefined, min: number, max: number): boolean {
  return value === undefined || (value >= min && value <= max);
}

export type ConfigFile = z.output<typeof configFileSchema>;
