import { findPerson } from '../../core/people.js';
import type { Person } from '../../core/types.js';
import { classifySlackError, type SlackClient, type SlackFailure } from './client.js';

export type SlackUserLookup = { found: true; userId: string } | ({ found: false } & SlackFailure);

/**
 * A person's Slack user: the people section first, else users.lookupByEmail (needs the users:read.email
 * scope), cached for `ttlMs`, misses included; failures are not cached.
 */
export function createSlackDirectory(opts: {
  client: SlackClient;
  people: readonly Person[];
  ttlMs: number;
  now: () => number;
}) {
  const cache = new Map<string, { userId: string | undefined; until: number }>();

  async function slackUser(email: string): Promise<SlackUserLookup> {
    const configured = findPerson({ email }, opts.people)?.slackUserId;
    if (configured) return { found: true, userId: configured };
    const key = email.toLowerCase();
    const hit = cache.get(key);
    if (hit && hit.until > opts.now()) {
      return hit.userId
        ? { found: true, userId: hit.userId }
        : { found: false, retry: false, detail: `no Slack user has the email ${email} (cached)` };
    }
    try {
      const res = await opts.client.users.lookupByEmail({ email });
      const userId = res.user?.id;
      cache.set(key, { userId, until: opts.now() + opts.ttlMs });
      return userId
        ? { found: true, userId }
        : { found: false, retry: false, detail: `no Slack user has the email ${email}` };
    } catch (err) {
      const failure = classifySlackError(err);
      if (failure.detail === 'Slack error: users_not_found') {
        cache.set(key, { userId: undefined, until: opts.now() + opts.ttlMs });
        return { found: false, retry: false, detail: `no Slack user has the email ${email}` };
      }
      return { found: false, ...failure };
    }
  }

  /** The email behind a Slack user id, for acting on their behalf: the people section, else users.info. */
  async function emailOf(userId: string): Promise<string | undefined> {
    const configured = opts.people.find((p) => p.slackUserId === userId);
    if (configured) return configured.email;
    try {
      const res = await opts.client.users.info({ user: userId });
      return res.user?.profile?.email?.toLowerCase();
    } catch {
      return undefined;
    }
  }

  return { slackUser, emailOf };
}

export type SlackDirectory = ReturnType<typeof createSlackDirectory>;
