import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { canonicalInstant } from '../core/time.js';
import type { Change, Deploy, Identity } from '../core/types.js';

// The deploy event contract of DESIGN.md. Unknown fields are ignored so that deploy systems can send more.

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
});

export const deployEvent = z.looseObject({
  id: z.string().min(1).max(256).optional(),
  service: z.string().min(1),
  environment: z.string().min(1).optional(),
  version: z.string().min(1),
  previousVersion: z.string().min(1).optional(),
  stage: z.enum(['canary', 'partial', 'full']).default('full'),
  percent: z.number().min(0).max(100).optional(),
  hosts: z.array(z.string().min(1)).default([]),
  at: z.iso.datetime({ offset: true }).optional(),
  changes: z.array(change).min(1, { error: 'needs at least one change' }),
});

export type DeployEvent = z.output<typeof deployEvent>;

/** Maps a validated deploy event onto the domain, filling the documented defaults. */
export function toDeploy(event: DeployEvent, defaults: { environment: string; now: number }): Deploy {
  const deploy: Deploy = {
    // Without an id a retry cannot be recognised; the client is told the id it got.
    id: event.id ?? `dep-${randomUUID()}`,
    service: event.service,
    environment: event.environment ?? defaults.environment,
    version: event.version,
    stage: event.stage,
    hosts: event.hosts,
    at: event.at === undefined ? defaults.now : (canonicalInstant(event.at)?.ms ?? defaults.now),
    receivedAt: defaults.now,
    changes: event.changes.map(toChange),
  };
  if (event.previousVersion !== undefined) deploy.previousVersion = event.previousVersion;
  if (event.percent !== undefined) deploy.percent = event.percent;
  return deploy;
}

function toChange(c: DeployEvent['changes'][number]): Change {
  const out: Change = { author: toIdentity(c.author) };
  if (c.mergedBy) out.mergedBy = toIdentity(c.mergedBy);
  if (c.commit) out.commit = pick(c.commit, ['sha', 'url', 'message']);
  if (c.pullRequest) out.pullRequest = pick(c.pullRequest, ['number', 'url', 'title']);
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
