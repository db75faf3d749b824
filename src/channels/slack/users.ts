import type { Person } from '../../core/types.js';
import { createPeopleDirectory, type PeopleDirectory } from '../people.js';
import { classifySlackError, type SlackClient } from './client.js';

/** Needs the users:read.email scope; Slack answers users_not_found for an email it does not know. */
export function createSlackDirectory(opts: {
  client: SlackClient;
  people: readonly Person[];
  ttlMs: number;
  now: () => number;
}) {
  const slackUser: PeopleDirectory = createPeopleDirectory({
    vendor: 'Slack',
    configuredId: (person) => person.slackUserId,
    people: opts.people,
    ttlMs: opts.ttlMs,
    now: opts.now,
    async lookup(email) {
      try {
        const userId = (await opts.client.users.lookupByEmail({ email })).user?.id;
        return userId ? { found: true, userId } : { found: false };
      } catch (err) {
        const failure = classifySlackError(err);
        if (failure.detail === 'Slack error: users_not_found') return { found: false };
        return { failed: true, ...failure };
      }
    },
  });

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
