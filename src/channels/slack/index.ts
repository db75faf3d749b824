import type { Channel, ChannelDeps, ChannelParts } from '../channel.js';
import { createSlackInteractivity } from './actions.js';
import { createSlackClient, type SlackClient } from './client.js';
import { type SlackConfig, slackConfig } from './config.js';
import { slackDmHandler } from './dms.js';
import { createSlackDirectory } from './users.js';

/** DMs the people a decision names, with buttons (acknowledge, not my change), in a lane of their own. */
export const slack: Channel<'slack', SlackConfig> = {
  name: 'slack',
  delivers: ['dm'],
  config: slackConfig,
  create: (deps) => createSlack({ ...deps, client: createSlackClient(deps.settings) }),
};

/** The channel over a given Web API client: tests pass a fake one. */
export function createSlack(deps: ChannelDeps<SlackConfig> & { client: SlackClient }): ChannelParts {
  const { settings, client, config, now } = deps;
  const directory = createSlackDirectory({
    client,
    people: config.directory.people,
    ttlMs: settings.userCacheTtlMs,
    now,
  });
  const slackDeps = { ...deps, slack: settings, directory };
  const interactivity = createSlackInteractivity(slackDeps);
  return {
    handlers: { dm: slackDmHandler(slackDeps) },
    ...(interactivity.router ? { router: interactivity.router } : {}),
    describe: `slack (${settings.mode})`,
    start: interactivity.start,
    stop: interactivity.stop,
  };
}
