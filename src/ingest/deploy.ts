import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { derivedVersion } from '../core/change.js';
import type { RollbackClaim } from '../core/rollback.js';
import { canonicalInstant } from '../core/time.js';
import type { Change, Deploy, Identity } from '../core/types.js';
import { rfc3339 } from './validate.js';

// The change event contract (docs/api.md): a deploy (the default kind), a feature flag flip or a config change.
// Unknown fields are ignored so that deploy systems can send more.

const link = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

const identity = z
  .looseObject({
    email: z.email().optional(),
    login: z.string().min(1).optional(),
    name: z.string().optional(),
  })
  .refine((p) => p.email !== undefined || p.login !== undefined, { error: 'needs an email or a login' });

const change = z.looseObject({
  author: identity,
  mergedBy: identity.optional(),
  commit: z
    .looseObject({ sha: z.string().optional(), url: link.optional(), message: z.string().optional() })
    .optional(),
  pullRequest: z
    .looseObject({ number: z.number().int().positive().optional(), url: link.optional(), title: z.string().optional() })
    .optional(),
  committedAt: rfc3339.optional().describe('When the change was committed: lead time for changes starts here.'),
  mergedAt: rfc3339.optional().describe('When it was merged: lead time starts here when committedAt is absent.'),
});

// Fields every change event has, whatever its kind.
const common = {
  id: z
    .string()
    .min(1)
    .max(256)
    // The id is a segment of its URL (/v1/deploys/{id}); "." and ".." there would name another path.
    .regex(/[^.]/, { error: 'must not be only dots: "." and ".." cannot be one segment of a URL path' })
    .optional()
    .describe(
      'Idempotency key: the same id again answers 200 and changes nothing. 1 to 256 characters of any kind, ' +
        'except only dots. Generated when absent.',
    ),
  service: z.string().min(1),
  environment: z.string().min(1).optional().describe('Defaults to the configured default_environment.'),
  previousVersion: z.string().min(1).optional(),
  stage: z
    .enum(['canary', 'partial', 'full'])
    .default('full')
    .describe('Each stage event of a rollout (same service, environment and version) restarts its window.'),
  percent: z.number().min(0).max(100).optional(),
  hosts: z
    .array(z.string().min(1))
    .default([])
    .describe('When set, the event claims only alerts from these hosts (a canary).'),
  at: rfc3339.optional().describe('When it shipped; defaults to the time received.'),
};

const changes = z.array(change).min(1, { error: 'needs at least one change' });
// A deploy may ship no change of its own: a rollback, a redeploy of the same version, a config-only restart.
const deployChanges = z
  .array(change)
  .default([])
  .describe('What shipped. Empty (or absent) for a rollback, a redeploy or a restart: nobody to attribute it to.');
const flagValue = z.union([z.boolean(), z.string(), z.number()]);

const deployVariant = z.looseObject({
  kind: z.literal('deploy').optional().describe('deploy (the default), flag or config.'),
  ...common,
  version: z.string().min(1),
  changes: deployChanges,
  rollbackOf: z
    .string()
    .min(1)
    .max(256)
    .optional()
    .describe('This deploy rolls back the deploy with this id (of the same service and environment).'),
  rollback: z
    .boolean()
    .optional()
    .describe('This deploy is a rollback (to `version`); changepager finds what it undid.'),
});

/** A flag or config change names its author either as `author` (the usual case) or as `changes`. */
function oneAuthorField(e: { changes?: unknown; author?: unknown }, ctx: z.core.$RefinementCtx): void {
  if (e.changes !== undefined && e.author !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['author'], message: 'give either author or changes, not both' });
  } else if (e.changes === undefined && e.author === undefined) {
    ctx.addIssue({ code: 'custom', path: ['author'], message: 'needs the person who made the change (author)' });
  }
}

// `when` makes the author check run even when other fields failed, so one answer lists every problem.
const always = { when: () => true };

const flagVariant = z
  .looseObject({
    kind: z.literal('flag'),
    ...common,
    version: z.string().min(1).optional().describe('Defaults to flag:<key>=<to>.'),
    flag: z.looseObject({ key: z.string().min(1), from: flagValue.optional(), to: flagValue }),
    author: identity.optional().describe('Who flipped the flag.'),
    changes: changes.optional(),
  })
  .check(z.superRefine(oneAuthorField, always));

const configVariant = z
  .looseObject({
    kind: z.literal('config'),
    ...common,
    version: z.string().min(1).optional().describe('Defaults to config:<key>@<at>.'),
    config: z
      .looseObject({ key: z.string().min(1).optional(), description: z.string().min(1).optional() })
      .refine((c) => c.key !== undefined || c.description !== undefined, {
        error: 'needs a key or a description',
      }),
    author: identity.optional().describe('Who changed the configuration.'),
    changes: changes.optional(),
  })
  .check(z.superRefine(oneAuthorField, always));

export const deployEvent = z.discriminatedUnion('kind', [deployVariant, flagVariant, configVariant], {
  error: (iss) => (iss.code === 'invalid_union' ? 'kind must be deploy, flag or config' : undefined),
});

export type DeployEvent = z.output<typeof deployEvent>;

/** What the event said about being a rollback; the pipeline works out what it undid (core/rollback.ts). */
export function rollbackClaim(event: DeployEvent): RollbackClaim | undefined {
  if (event.kind === 'flag' || event.kind === 'config') return undefined;
  if (event.rollbackOf !== undefined) return { of: event.rollbackOf };
  return event.rollback === true ? { flag: true } : undefined;
}

/** Maps a validated change event onto the domain, filling the documented defaults. */
export function toDeploy(event: DeployEvent, defaults: { environment: string; now: number }): Deploy {
  const at = event.at === undefined ? defaults.now : (canonicalInstant(event.at)?.ms ?? defaults.now);
  const deploy: Deploy = {
    // Without an id a retry cannot be recognised; the client is told the id it got.
    id: event.id ?? `dep-${randomUUID()}`,
    kind: event.kind ?? 'deploy',
    service: event.service,
    environment: event.environment ?? defaults.environment,
    version: '',
    stage: event.stage,
    hosts: event.hosts,
    at,
    receivedAt: defaults.now,
    changes: [],
  };
  if (event.kind === 'flag' || event.kind === 'config') {
    if (event.kind === 'flag') deploy.flag = pick(event.flag, ['key', 'from', 'to']) as Deploy['flag'];
    else deploy.config = pick(event.config, ['key', 'description']);
    const derived = derivedVersion({ ...deploy, at });
    deploy.version = event.version ?? derived.version;
    const previous = event.previousVersion ?? (event.version === undefined ? derived.previousVersion : undefined);
    if (previous !== undefined) deploy.previousVersion = previous;
    deploy.changes = event.changes
      ? event.changes.map(toChange)
      : event.author
        ? [{ author: toIdentity(event.author) }]
        : [];
  } else {
    deploy.version = event.version;
    if (event.previousVersion !== undefined) deploy.previousVersion = event.previousVersion;
    deploy.changes = event.changes.map(toChange);
  }
  if (event.percent !== undefined) deploy.percent = event.percent;
  return deploy;
}

function toChange(c: z.output<typeof change>): Change {
  const out: Change = { author: toIdentity(c.author) };
  if (c.mergedBy) out.mergedBy = toIdentity(c.mergedBy);
  if (c.commit) out.commit = pick(c.commit, ['sha', 'url', 'message']);
  if (c.pullRequest) out.pullRequest = pick(c.pullRequest, ['number', 'url', 'title']);
  const committed = c.committedAt === undefined ? undefined : canonicalInstant(c.committedAt);
  if (committed) out.committedAt = new Date(committed.ms).toISOString();
  const merged = c.mergedAt === undefined ? undefined : canonicalInstant(c.mergedAt);
  if (merged) out.mergedAt = new Date(merged.ms).toISOString();
  return out;
}

function toIdentity(p: {
  email?: string | undefined;
  login?: string | undefined;
  name?: string | undefined;
}): Identity {
  return pick(p, ['email', 'login', 'name']);
}

/** Copies the named keys that are set, dropping the unknown fields looseObject let through. */
function pick<T extends object, K extends keyof T>(
  obj: T,
  keys: readonly K[],
): { [P in K]?: Exclude<T[P], undefined> } {
  const out: { [P in K]?: Exclude<T[P], undefined> } = {};
  for (const key of keys) {
    const value = obj[key];
    if (value !== undefined) out[key] = value as Exclude<T[typeof key], undefined>;
  }
  return out;
}
