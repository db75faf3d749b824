import type { Router } from 'express';
import type { CodeHostName, Deploy, PolicyMode } from '../core/types.js';
import type { OutboxHandler } from '../deliver/notifier.js';
import { commentKind, type OutboxKind } from '../store/store.js';
import type { Channel, ChannelDeps, ChannelParts, PagingPort } from './channel.js';

/** The channels that are on, as the rest of the service uses them. */
export interface Channels {
  /** The handler of each outbox kind: the first channel of the list that is on and delivers it. */
  handlers: Partial<Record<OutboxKind, OutboxHandler>>;
  /** Which channel delivers each kind, as the start-up log line names it. */
  delivery: Partial<Record<OutboxKind, string>>;
  /** Whether a new deploy is to be sent on as a change event: the channel that delivers change rows says. */
  sendsChangeEvent(deploy: Deploy): boolean;
  /**
   * The code host that gets a comment about the pages of an alert attributed to this deploy: the host it came
   * from, when the channel that delivers that host's comments is on and says so for the deploy's service.
   */
  commentHostOf(deploy: Deploy, policy: { mode: PolicyMode }): CodeHostName | undefined;
  /** Routes the channels serve, to mount before any body parser. */
  routers: Router[];
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Creates the channels of `channels` (the registry's, or a test's) that are on and deliver some kind: a channel
 * with a config section is on when the config has it, one without is always on. Each kind goes to the first
 * such channel that delivers it.
 */
export function connectChannels(
  channels: readonly Channel[],
  deps: Omit<ChannelDeps<unknown>, 'settings' | 'paging'>,
): Channels {
  const settingsOf = (c: Channel) => (deps.config as unknown as Record<string, unknown>)[c.name];
  const on = channels.filter((c) => !c.config || settingsOf(c) !== undefined);
  const owners = new Map<OutboxKind, Channel>();
  for (const c of on) for (const kind of c.delivers) if (!owners.has(kind)) owners.set(kind, c);
  const used = on.filter((c) => [...owners.values()].includes(c));
  for (const c of on.filter((c) => c.config && !used.includes(c))) {
    deps.log.warn(
      { channel: c.name },
      'this channel is configured but delivers nothing: channels before it deliver all it could',
    );
  }

  // Every channel gets the paging port when it is created, which may be before the channel that delivers pages.
  let paging: PagingPort | undefined;
  const port: PagingPort = {
    acknowledge: (page, email) =>
      paging ? paging.acknowledge(page, email) : Promise.resolve({ ok: false, detail: 'no channel delivers pages' }),
    linkOf: (page) => paging?.linkOf(page),
  };
  const parts = new Map<Channel, ChannelParts>(
    used.map((c) => [
      c,
      c.create({ ...deps, settings: settingsOf(c), paging: port, log: deps.log.child({ component: c.name }) }),
    ]),
  );
  const partsFor = (kind: OutboxKind) => {
    const owner = owners.get(kind);
    return owner && parts.get(owner);
  };
  paging = partsFor('page')?.paging;

  const handlers: Partial<Record<OutboxKind, OutboxHandler>> = {};
  const delivery: Partial<Record<OutboxKind, string>> = {};
  for (const [kind, c] of owners) {
    const handler = parts.get(c)?.handlers[kind];
    if (handler) handlers[kind] = handler;
    delivery[kind] = parts.get(c)?.describe ?? c.name;
  }
  const changes = partsFor('change');
  return {
    handlers,
    delivery,
    sendsChangeEvent: (deploy) => (changes ? (changes.sendsChangeEvent?.(deploy) ?? true) : false),
    commentHostOf: (deploy, policy) => {
      const host = deploy.source?.host;
      return host && partsFor(commentKind(host))?.commentsOn?.(deploy, policy) ? host : undefined;
    },
    routers: [...parts.values()].flatMap((p) => (p.router ? [p.router] : [])),
    async start() {
      for (const p of parts.values()) await p.start?.();
    },
    async stop() {
      for (const p of parts.values()) await p.stop?.();
    },
  };
}
