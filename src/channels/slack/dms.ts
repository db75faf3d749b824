import type { Logger } from 'pino';
import type { Config } from '../../config/load.js';
import { policyFor } from '../../config/policy.js';
import { compareLink } from '../../core/links.js';
import type { DeliveryResult, OutboxHandler } from '../../deliver/notifier.js';
import type { Metrics } from '../../metrics.js';
import type { IngestStore, OutboxStore, PeopleStore, ReadStore } from '../../store/store.js';
import type { PagingPort } from '../channel.js';
import { classifySlackError, type SlackClient } from './client.js';
import type { SlackConfig } from './config.js';
import { type DmView, dmMessage } from './messages.js';
import { dmStatePatch, readDmState } from './state.js';
import type { SlackDirectory } from './users.js';

/** How long a DM waits for the first DM of its thread to be posted before it starts a thread of its own. */
const THREAD_ROOT_WAIT_MS = 30_000;

export interface SlackDeps {
  config: Config;
  slack: SlackConfig;
  // recordNotMine: the DM's "Not my change" button (actions.ts) records the feedback through the same deps.
  store: OutboxStore &
    Pick<ReadStore, 'getDeploy'> &
    Pick<PeopleStore, 'recordUnmapped'> &
    Pick<IngestStore, 'recordNotMine'>;
  client: SlackClient;
  directory: SlackDirectory;
  /** The channel that delivers pages: the DM links to the page and acknowledges it through it. */
  paging: PagingPort;
  metrics: Metrics;
  log: Logger;
  now: () => number;
}

/** The DM with everything it shows: the deploy, the filled compare link, the link to the page. */
export async function loadDmView(
  deps: Pick<SlackDeps, 'config' | 'store' | 'now' | 'paging'>,
  dmId: number,
  threadWindowMs: number,
) {
  const ctx = await deps.store.dmWithContext(dmId, threadWindowMs);
  if (!ctx) return undefined;
  const view: DmView = { ...ctx };
  // The page that reached this person, else any page of the episode.
  const mine = ctx.pages.find((p) => p.target.kind === 'person' && p.target.email === ctx.dm.email);
  const pageUrl = (mine && deps.paging.linkOf(mine)) ?? ctx.pages.map((p) => deps.paging.linkOf(p)).find(Boolean);
  if (pageUrl) view.pageUrl = pageUrl;
  const deployId = ctx.episode.decision.deployId;
  const deploy = deployId === undefined ? undefined : await deps.store.getDeploy(deployId);
  if (deploy) {
    view.deploy = deploy;
    const template = policyFor(deps.config, ctx.episode.decision.service).compareUrl;
    if (template) view.compareUrl = compareLink(template, deploy, deps.now());
  }
  return view;
}

/**
 * Delivers DM rows: posts the DM (threaded under the first DM about the same deploy within the thread window),
 * and updates it once the alert resolves. Runs in its own outbox lane, so nothing here can hold up a page.
 */
export function slackDmHandler(deps: SlackDeps): OutboxHandler {
  const { slack, client, directory, now } = deps;
  const failed = (e: unknown): DeliveryResult => {
    const f = classifySlackError(e);
    deps.metrics.deliveryFailures.inc({ channel: 'slack', reason: f.retry ? 'transient' : 'permanent' });
    return f.retryAfterMs === undefined
      ? { ok: false, retry: f.retry, detail: f.detail }
      : { ok: false, retry: f.retry, detail: f.detail, retryAfterMs: f.retryAfterMs };
  };

  return {
    channel: 'slack',
    async handle(ref) {
      const view = await loadDmView(deps, Number(ref), slack.threadWindowMs);
      if (!view) return { ok: false, retry: false, detail: `DM ${ref} does not exist` };
      const done = readDmState(view.dm.delivered);
      const status = view.episode.status;
      const message = dmMessage(view);
      // Evidence can arrive after the DM went out (the budget ran out first): the DM is updated to show it.
      const evidence = view.episode.decision.evidence?.verdict;

      const rolledBack = view.rolledBack?.rollbackId;
      if (done.ts && done.channel) {
        if (done.shows === status && done.rolledBack === rolledBack && done.evidence === evidence) {
          return { ok: true, detail: 'DM is up to date' };
        }
        try {
          await client.chat.update({ channel: done.channel, ts: done.ts, text: message.text, blocks: message.blocks });
        } catch (e) {
          return failed(e);
        }
        const shown = `${status}${rolledBack ? ', rolled back' : ''}${evidence === undefined ? '' : `, evidence ${evidence}`}`;
        return {
          ok: true,
          detail: `DM updated: ${shown}`,
          delivered: dmStatePatch({ shows: status, evidence, ...(rolledBack ? { rolledBack } : {}) }),
        };
      }

      const user = await directory.slackUser(view.dm.email);
      if (!user.found) {
        if (!user.retry) {
          deps.metrics.unmappedPeople.inc({ reason: 'no_slack_user' });
          await deps.store.recordUnmapped(view.dm.email, 'no_slack_user', now());
          return { ok: false, retry: false, detail: user.detail, delivered: dmStatePatch({ failed: user.detail }) };
        }
        return {
          ok: false,
          retry: true,
          detail: user.detail,
          ...(user.retryAfterMs ? { retryAfterMs: user.retryAfterMs } : {}),
        };
      }

      const root = view.threadRoot && readDmState(view.threadRoot.delivered);
      if (root && !root.ts && !root.failed && now() - view.dm.createdAt < THREAD_ROOT_WAIT_MS) {
        // The first DM about this deploy is not out yet: wait for it so this one lands in its thread.
        return { ok: false, retry: true, detail: 'waiting for the first DM of its thread', retryAfterMs: 1000 };
      }
      const thread = root?.ts && root.channel ? { channel: root.channel, thread_ts: root.ts } : undefined;
      try {
        const res = await client.chat.postMessage({
          channel: thread?.channel ?? user.userId,
          ...(thread ? { thread_ts: thread.thread_ts } : {}),
          text: message.text,
          blocks: message.blocks,
          unfurl_links: false,
        });
        if (!res.channel || !res.ts) return { ok: false, retry: true, detail: 'Slack answered without channel and ts' };
        deps.log.info({ dm: view.dm.id, email: view.dm.email, threaded: Boolean(thread) }, 'DM posted');
        return {
          ok: true,
          detail: `DM posted to ${user.userId}${thread ? ' in thread' : ''}`,
          delivered: dmStatePatch({
            channel: res.channel,
            ts: res.ts,
            shows: status,
            ...(rolledBack ? { rolledBack } : {}),
            evidence,
            user: user.userId,
            ...(thread ? { threadTs: thread.thread_ts } : {}),
          }),
        };
      } catch (e) {
        return failed(e);
      }
    },
  };
}
