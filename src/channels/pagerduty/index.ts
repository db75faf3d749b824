import { pageHandler } from '../../deliver/notifier.js';
import type { Channel, ChannelDeps, ChannelParts } from '../channel.js';
import { pagerdutyPaging } from './acknowledge.js';
import { changeEventHandler } from './change-events.js';
import { createPagerDutyClient, type PagerDutyClient } from './client.js';
import { type PagerDutyConfig, pagerdutyConfig, pagerdutyFor } from './config.js';
import { createPagerDutyNotifier } from './pages.js';
import { createUserDirectory } from './users.js';

/** Pages through PagerDuty: a person's as an incident assigned to them, on-call's through the Events API. */
export const pagerduty: Channel<'pagerduty', PagerDutyConfig> = {
  name: 'pagerduty',
  delivers: ['page', 'change'],
  config: pagerdutyConfig,
  create: (deps) => createPagerDuty({ ...deps, client: createPagerDutyClient(deps.settings, deps.now) }),
};

/** The channel over a given client: tests pass a fake one. */
export function createPagerDuty(deps: ChannelDeps<PagerDutyConfig> & { client: PagerDutyClient }): ChannelParts {
  const { settings: pd, client, config, store, now } = deps;
  const users = createUserDirectory({ client, people: config.directory.people, ttlMs: pd.userCacheTtlMs, now });
  const getDeploy = (id: string) => store.getDeploy(id);
  const notifier = createPagerDutyNotifier({
    config,
    pd,
    client,
    users,
    getDeploy,
    recordUnmapped: (who, reason) => store.recordUnmapped(who, reason, now()),
    metrics: deps.metrics,
    log: deps.log,
    now,
  });
  return {
    handlers: { page: pageHandler(store, notifier), change: changeEventHandler({ pd, client, getDeploy }) },
    paging: pagerdutyPaging(pd, client),
    sendsChangeEvent: (deploy) => pd.changeEvents && Boolean(pagerdutyFor(pd, deploy.service).routingKey),
  };
}
