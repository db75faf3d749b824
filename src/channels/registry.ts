import { CODE_HOSTS } from '../core/types.js';
import type { Lane } from '../deliver/worker.js';
import { commentKind, enrichKind } from '../store/store.js';
import type { Channel } from './channel.js';
import { github } from './github/index.js';
import { gitlab } from './gitlab/index.js';
import { log } from './log/index.js';
import { pagerduty } from './pagerduty/index.js';
import { slack } from './slack/index.js';

// Every delivery channel, one line each. A channel is its folder plus its line here: the config schema takes
// its section from this list, compose() creates it when its section is there, and the worker gets its handlers.

/**
 * In order of precedence: each outbox kind is delivered by the first channel here that is on and delivers it.
 * The log is last, the default that needs no credentials.
 */
export const CHANNELS = [pagerduty, slack, github, gitlab, log] as const;

/**
 * The outbox lanes, one worker each: pages (and PagerDuty's change events) with up to 8 deliveries in flight,
 * DMs with up to 4, evidence (Prometheus queries before a person is paged) with up to 4, the code hosts'
 * enrichments and comments with up to 2. A slow or failing Slack, Prometheus, GitHub or GitLab can never take a
 * slot a page needs.
 */
export const LANES: readonly Lane[] = [
  { name: 'paging', kinds: ['page', 'change'], concurrency: 8 },
  { name: 'dm', kinds: ['dm'], concurrency: 4 },
  { name: 'evidence', kinds: ['evidence'], concurrency: 4 },
  // Each code host has kinds of its own (channels/code-hosts/index.ts).
  { name: 'code_host', kinds: CODE_HOSTS.flatMap((h) => [enrichKind(h), commentKind(h)]), concurrency: 2 },
];

type Registered = (typeof CHANNELS)[number];
type SettingsOf<C> = C extends Channel<string, infer S> ? S : never;

/** The resolved settings of each channel that has a config section, under its name: `config.pagerduty`. */
export type ChannelSettings = {
  readonly [C in Registered as SettingsOf<C> extends undefined ? never : C['name']]?: SettingsOf<C>;
};
