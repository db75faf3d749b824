import { pageHandler } from '../../deliver/notifier.js';
import type { Channel } from '../channel.js';
import { createLogNotifier, logDmHandler } from './log.js';

/**
 * The embedded default, on without any config: pages and DMs are written to the log, so the whole flow runs and
 * can be watched before anything real is paged. It delivers what no other channel that is on delivers.
 */
export const log: Channel<'log', undefined> = {
  name: 'log',
  delivers: ['page', 'dm'],
  create: ({ store, log }) => ({
    handlers: { page: pageHandler(store, createLogNotifier(log)), dm: logDmHandler(store, log) },
    paging: {
      // Nobody was paged anywhere an acknowledgement could reach: the DM records who acknowledged, and that is all.
      acknowledge: async () => ({ ok: true, detail: 'pages go to the log: acknowledgement recorded only' }),
      linkOf: () => undefined,
    },
  }),
};
