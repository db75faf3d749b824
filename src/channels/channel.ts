import type { Router } from 'express';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Config } from '../config/load.js';
import type { SecretReader } from '../config/secrets.js';
import type { Deploy, PolicyMode } from '../core/types.js';
import type { OutboxHandler } from '../deliver/notifier.js';
import type { Metrics } from '../metrics.js';
import type { IngestStore, OutboxKind, OutboxStore, PageRecord, PeopleStore, ReadStore } from '../store/store.js';

// The one shape of a delivery channel (the log, PagerDuty, Slack): a folder under src/channels/ whose index.ts
// exports one Channel, listed in registry.ts. The config schema takes each channel's section from the registry,
// compose() creates the channels that are on, and the outbox worker gets their handlers by outbox kind: the
// worker knows lanes and kinds, never a channel.

/** What a channel reads and writes in the store. */
export type ChannelStore = OutboxStore &
  Pick<ReadStore, 'getDeploy'> &
  Pick<PeopleStore, 'recordUnmapped'> &
  Pick<IngestStore, 'recordNotMine' | 'enrichDeploy' | 'deploysBefore'>;

/** What the channel that delivers pages lets other channels do with a page: Slack's buttons use it. */
export interface PagingPort {
  /** Acknowledges the page where it was delivered, on behalf of the person with this email when known. */
  acknowledge(page: PageRecord, actorEmail: string | undefined): Promise<{ ok: boolean; detail: string }>;
  /** Where a person can open the page (its incident), once it has such a place. */
  linkOf(page: PageRecord): string | undefined;
}

export interface ChannelDeps<Settings> {
  /** The channel's own section of the config, resolved (secrets read, durations in ms). */
  settings: Settings;
  /** The whole config: policies (compare links), the people section, external_url. */
  config: Config;
  store: ChannelStore;
  metrics: Metrics;
  log: Logger;
  now: () => number;
  /** The channel that delivers pages, for acting on one. */
  paging: PagingPort;
  /** Wakes the outbox after the channel enqueued work outside a delivery ("not my change"). */
  kick: () => void;
  /**
   * Stores a deploy a channel received (a code host's webhook) the way POST /v1/deploys does, change event
   * included, with outbox rows of these kinds for it in the same transaction. `history`: the deploys before it
   * (store.deploysBefore, ROLLBACK_HISTORY of them), when the channel has read them already.
   */
  receiveDeploy: (
    deploy: Deploy,
    opts?: { enqueue?: readonly OutboxKind[]; history?: readonly Deploy[] },
  ) => Promise<{ created: boolean; deploy: Deploy }>;
}

/** What a created channel runs. */
export interface ChannelParts {
  /** One handler per outbox kind the channel delivers. */
  handlers: Partial<Record<OutboxKind, OutboxHandler>>;
  /** Given by the channel that delivers pages. */
  paging?: PagingPort;
  /** Given by a channel that delivers `change` rows: whether this new deploy becomes one. */
  sendsChangeEvent?(deploy: Deploy): boolean;
  /** Given by a code host's channel: whether the pages of an alert attributed to this deploy get a comment. */
  commentsOn?(deploy: Deploy, policy: { mode: PolicyMode }): boolean;
  /** Routes it serves (Slack's /slack/events), mounted on the app before any body parser. */
  router?: Router;
  /** How the start-up log line names it, when more than its name says: "slack (socket)". */
  describe?: string;
  /** Connects out (Slack's socket mode), after the service listens; stop() disconnects. */
  start?(): Promise<void>;
  stop?(): Promise<void>;
}

/** A channel's section of the config file, and how it resolves into the settings the channel runs on. */
export interface ChannelConfig<Settings> {
  /** The top-level section named after the channel (`pagerduty:`); the channel is off without it. */
  section: z.ZodType;
  /** Its per-service settings, at `defaults.<name>` and `services.<service>.<name>`, when it has any. */
  route?: z.ZodType;
  /**
   * The parsed section and routes into settings: secrets read through `secrets`, which records each problem
   * with its path. Undefined when a problem leaves nothing to run on (the problem is recorded).
   */
  resolve(parsed: ParsedSection, secrets: SecretReader): Settings | undefined;
}

export interface ParsedSection {
  section: unknown;
  defaults?: unknown;
  /** The routes of the services that have one. */
  services: Readonly<Record<string, unknown>>;
}

export interface Channel<Name extends string = string, Settings = unknown> {
  /** Names its config section (and its settings in Config) and its log component. */
  readonly name: Name;
  /** The outbox kinds it can deliver: each kind goes to the first channel of the registry that is on. */
  readonly delivers: readonly OutboxKind[];
  /** Its section of the config; a channel without one is always on (the log). */
  readonly config?: ChannelConfig<Settings>;
  create(deps: ChannelDeps<Settings>): ChannelParts;
}

/** A channel's config, typed from its own schemas inside, erased to ChannelConfig outside. */
export function channelConfig<Section extends z.ZodType, Settings, Route extends z.ZodType = z.ZodNever>(config: {
  section: Section;
  route?: Route;
  resolve(
    parsed: {
      section: z.output<Section>;
      defaults?: z.output<Route>;
      services: Readonly<Record<string, z.output<Route>>>;
    },
    secrets: SecretReader,
  ): Settings | undefined;
}): ChannelConfig<Settings> {
  // The config loader hands each channel what its own schemas parsed (config/load.ts).
  return config as ChannelConfig<Settings>;
}
