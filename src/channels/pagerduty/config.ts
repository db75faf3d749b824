import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { appendablePath, baseUrl, isoDuration, timerDuration } from '../../config/fields.js';
import type { SecretReader } from '../../config/secrets.js';
import { durationMs } from '../../core/time.js';
import { channelConfig } from '../channel.js';

// The `pagerduty:` section, and the per-service routes under `defaults.pagerduty` and
// `services.<name>.pagerduty`. Without the section, pages are written to the log (the embedded default).

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

/**
 * Where a service's pages go in PagerDuty: the Events API v2 routing key of its integration (on-call pages) and
 * the PagerDuty service id on which incidents for a person are created. The key is a secret: env or file only.
 */
const route = z
  .strictObject({
    service_id: z.string().min(1).optional(),
    routing_key_env: z.string().min(1).optional(),
    routing_key_file: z.string().min(1).optional(),
  })
  .refine((p) => !(p.routing_key_env && p.routing_key_file), {
    error: 'set routing_key_env or routing_key_file, not both',
  });

/** @pagerduty/pdjs posts events to https://<host>/v2/enqueue: only the scheme's host (and port) is used. */
const eventsUrl = z
  .url({ protocol: /^https$/, error: 'must be an https URL (the PagerDuty client sends events over https only)' })
  .check(z.superRefine(appendablePath))
  .refine((u) => !URL.canParse(u) || new URL(u).pathname === '/', {
    error: 'must be https://host[:port] with no path: the PagerDuty client always posts to /v2/enqueue on that host',
  });

const section = z
  .strictObject({
    // @pagerduty/pdjs sends events over https only, to a host; the REST API may be any base URL.
    events_url: eventsUrl.default('https://events.pagerduty.com'),
    api_url: baseUrl.default('https://api.pagerduty.com'),
    api_token_env: z.string().min(1).optional(),
    api_token_file: z.string().min(1).optional(),
    /** The PagerDuty user (email) recorded as acting on incidents: REST requires a From header. */
    from: z.email().optional(),
    /** Extra CA certificates (PEM) to trust, for a TLS-intercepting proxy or a staging stand-in. */
    ca_file: z.string().min(1).optional(),
    request_timeout: timerDuration.default('PT10S'),
    author_fallback_after: isoDuration.default('PT60S'),
    user_cache_ttl: isoDuration.default('PT1H'),
    change_events: z.boolean().default(true),
    /**
     * The size every event is built to fit, as the JSON sent: PagerDuty refuses events over 512 KB. Lower it for
     * a proxy in between with a smaller limit; the floor leaves room for the minimal form of a page.
     */
    max_event_bytes: z.number().int().min(16_384).max(512_000).default(512_000),
  })
  .refine((p) => !(p.api_token_env && p.api_token_file), { error: 'set api_token_env or api_token_file, not both' })
  .refine((p) => !(p.api_token_env || p.api_token_file) || p.from, {
    path: ['from'],
    error:
      'is needed with an API token: PagerDuty refuses to create or change an incident without a From user, so no ' +
      'author could ever be paged',
  });

export const pagerdutyConfig = channelConfig({
  section,
  route,
  resolve({ section, defaults, services }, secrets): PagerDutyConfig {
    const resolveRoute = (p: z.output<typeof route>, at: string): PagerDutyRoute => {
      const r: PagerDutyRoute = {};
      if (p.service_id) r.serviceId = p.service_id;
      const key = secrets.secret(p, 'routing_key', at);
      if (key) r.routingKey = key;
      return r;
    };
    const defaultRoute = defaults ? resolveRoute(defaults, 'defaults.pagerduty') : {};
    if (!defaultRoute.routingKey && !defaults?.routing_key_env && !defaults?.routing_key_file) {
      // Every alert must be able to reach someone: on-call through the Events API is the floor.
      secrets.problem(
        'defaults.pagerduty: set routing_key_env or routing_key_file: on-call pages need a default routing key',
      );
    }
    const routes: Record<string, PagerDutyRoute> = {};
    for (const [name, svc] of Object.entries(services)) routes[name] = resolveRoute(svc, `services.${name}.pagerduty`);
    const pd: PagerDutyConfig = {
      eventsHost: new URL(section.events_url).host,
      apiUrl: section.api_url,
      timeoutMs: durationMs(section.request_timeout) as number,
      fallbackAfterMs: durationMs(section.author_fallback_after) as number,
      userCacheTtlMs: durationMs(section.user_cache_ttl) as number,
      changeEvents: section.change_events,
      maxEventBytes: section.max_event_bytes,
      defaults: defaultRoute,
      services: routes,
    };
    const token = secrets.secret(section, 'api_token', 'pagerduty');
    if (token) pd.apiToken = token;
    if (section.from) pd.from = section.from;
    if (section.ca_file) {
      const ca = readCa(section.ca_file, secrets);
      if (ca) pd.ca = ca;
    }
    return pd;
  },
});

/** The PagerDuty route of a service: its own keys over the defaults. */
export function pagerdutyFor(pd: PagerDutyConfig, service: string): PagerDutyRoute {
  return { ...pd.defaults, ...(Object.hasOwn(pd.services, service) ? pd.services[service] : {}) };
}

function readCa(file: string, secrets: SecretReader): string | undefined {
  try {
    const ca = secrets.readFile(file);
    const problem = pemProblem(ca);
    if (problem) secrets.problem(`pagerduty.ca_file: ${file} ${problem}`);
    return ca;
  } catch (err) {
    secrets.problem(`pagerduty.ca_file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    return undefined;
  }
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
