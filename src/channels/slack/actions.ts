import type { App, BlockAction, Logger as BoltLogger, ButtonAction, ExpressReceiver, LogLevel } from '@slack/bolt';
import type { RequestHandler, Router } from 'express';
import type { Logger } from 'pino';
import { type ClickFacts, type ClickRefusal, type ClickVerdict, mayAcknowledge, mayDisown } from '../../core/clicks.js';
import { ApiError } from '../../errors.js';
import type { PageRecord } from '../../store/store.js';
import { library } from '../library.js';
import { type SlackClient, slackClientOptions } from './client.js';
import { loadDmView, type SlackDeps } from './dms.js';
import { ACTIONS, type DmView, dmMessage } from './messages.js';
import { dmStatePatch, readDmState } from './state.js';

// The DM's buttons, through Bolt. In http mode Bolt's ExpressReceiver is mounted at POST /slack/events in our
// own express app (before any body parser: it verifies the signature over the raw body); in socket mode Bolt
// connects out to Slack instead. Every listener acks first (Slack allows 3 s), then does the work.

/** Slack's replay window (https://api.slack.com/authentication/verifying-requests-from-slack). */
const MAX_SKEW_S = 5 * 60;

/**
 * The largest request body Bolt reads before it can check Slack's signature over it (Bolt's own default is
 * 4 MB). A button click carries the clicked message, a few kilobytes for ours; Slack caps a message's blocks.
 */
export const SLACK_BODY_LIMIT_BYTES = 256 * 1024;

const SIGNATURE = /^v0=[0-9a-f]{64}$/;

export interface InteractivityDeps extends SlackDeps {
  /** Wakes the outbox after "not my change" enqueued an on-call page. */
  kick: () => void;
}

export interface SlackInteractivity {
  /** http mode: the router to mount at the app's root. */
  router?: Router;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createSlackInteractivity(deps: InteractivityDeps): SlackInteractivity {
  const { slack, log } = deps;
  const bolt = library<typeof import('@slack/bolt')>('@slack/bolt');
  const logger = boltLogger(log, bolt.LogLevel.INFO);
  const common = {
    token: slack.botToken,
    logger,
    logLevel: bolt.LogLevel.INFO,
    clientOptions: slackClientOptions(slack),
  };
  const ids = slack.botId && slack.botUserId ? { botId: slack.botId, botUserId: slack.botUserId } : {};
  let receiver: ExpressReceiver | undefined;
  let app: App;
  if (slack.mode === 'socket') {
    app = new bolt.App({ ...common, ...ids, appToken: slack.appToken as string, socketMode: true });
  } else {
    receiver = new bolt.ExpressReceiver({
      signingSecret: slack.signingSecret as string,
      endpoints: '/slack/events',
      processBeforeResponse: false,
      logger,
      bodyLimit: SLACK_BODY_LIMIT_BYTES,
    });
    app = new bolt.App({ ...common, ...ids, receiver });
  }
  registerListeners(app, deps);
  app.error(async (err) => {
    log.error({ err: { message: err.message, code: err.code } }, 'slack: a listener failed');
  });

  if (!receiver)
    return { start: () => app.start().then(() => undefined), stop: () => app.stop().then(() => undefined) };
  // Bolt rejects stale timestamps but accepts any future one; a replay window is two-sided, so check first. And
  // a request without a signature is refused before Bolt reads its body.
  const router = library<typeof import('express')>('express').Router();
  router.post('/slack/events', requestGuard(deps.now));
  router.use(receiver.router);
  return { router, start: async () => undefined, stop: async () => undefined };
}

function requestGuard(now: () => number): RequestHandler {
  return (req, _res, next) => {
    const ts = Number(req.get('x-slack-request-timestamp'));
    if (!Number.isFinite(ts) || Math.abs(now() / 1000 - ts) > MAX_SKEW_S) {
      return next(new ApiError('unauthorized', 'The Slack request timestamp is missing or more than 5 minutes off.'));
    }
    if (!SIGNATURE.test(req.get('x-slack-signature') ?? '')) {
      return next(new ApiError('unauthorized', 'The Slack request signature (X-Slack-Signature: v0=…) is missing.'));
    }
    next();
  };
}

function registerListeners(app: App, deps: InteractivityDeps) {
  const { store, slack, now, log } = deps;

  async function ephemeral(client: SlackClient, body: BlockAction, text: string) {
    const channel = body.channel?.id ?? body.container?.channel_id;
    if (!channel) return;
    await client.chat.postEphemeral({ channel, user: body.user.id, text }).catch((err: Error) => {
      log.warn({ err: { message: err.message } }, 'slack: cannot answer a click');
    });
  }

  /** Redraws the DM from the store, so its buttons and status line say what is true now. */
  async function redraw(client: SlackClient, view: DmView) {
    const fresh = await loadDmView(deps, view.dm.id, slack.threadWindowMs);
    const { channel, ts } = readDmState(view.dm.delivered);
    if (!fresh || !channel || !ts) return;
    const message = dmMessage(fresh);
    await client.chat.update({ channel, ts, text: message.text, blocks: message.blocks });
  }

  /** The clicked DM, or a polite answer when it is unknown or its alert is over. */
  async function clicked(body: BlockAction<ButtonAction>, client: SlackClient): Promise<DmView | undefined> {
    const dmId = Number(body.actions[0]?.value);
    const view = Number.isInteger(dmId) ? await loadDmView(deps, dmId, slack.threadWindowMs) : undefined;
    if (!view) {
      await ephemeral(
        client,
        body,
        'changepager no longer knows this message, so there is nothing to do. Sorry about that.',
      );
      return undefined;
    }
    if (view.episode.status === 'resolved') {
      await ephemeral(client, body, 'This alert has already resolved, so there is nothing left to do.');
      return undefined;
    }
    return view;
  }

  /** Says no, politely and to the clicker only, when `verdict` refuses the click; true when it did. */
  async function refused(client: SlackClient, body: BlockAction, view: DmView, verdict: ClickVerdict) {
    if (verdict.ok) return false;
    log.warn({ dm: view.dm.id, clicker: body.user.id, refusal: verdict.refusal }, 'slack: refused a click');
    await ephemeral(client, body, REFUSALS[verdict.refusal]);
    return true;
  }

  app.action<BlockAction<ButtonAction>>(ACTIONS.ack, async ({ ack, body, client }) => {
    await ack();
    const view = await clicked(body, client);
    if (!view) return;
    const email = await deps.directory.emailOf(body.user.id);
    if (await refused(client, body, view, mayAcknowledge(clickFacts(body, email, view)))) return;
    if (readDmState(view.dm.delivered).ackedBy) {
      await ephemeral(client, body, 'This alert is already acknowledged.');
      return;
    }
    const result = await acknowledge(view, email, deps);
    if (!result.ok) {
      await ephemeral(
        client,
        body,
        `Could not acknowledge it in PagerDuty (${result.detail}). Please open the incident in PagerDuty.`,
      );
      return;
    }
    await store.updateDm(view.dm.id, dmStatePatch({ ackedBy: body.user.id, ackedAt: now() }));
    log.info({ dm: view.dm.id, by: email ?? body.user.id, detail: result.detail }, 'acknowledged from Slack');
    await redraw(client, view);
  });

  app.action<BlockAction<ButtonAction>>(ACTIONS.notMine, async ({ ack, body, client }) => {
    await ack();
    const view = await clicked(body, client);
    if (!view) return;
    const email = await deps.directory.emailOf(body.user.id);
    if (await refused(client, body, view, mayDisown(clickFacts(body, email, view)))) return;
    let recorded: boolean;
    try {
      ({ recorded } = await store.recordNotMine(view.episode.id, email ?? body.user.id, now()));
    } catch (err) {
      // The click was acked already: the person must hear that on-call was NOT paged.
      log.error({ err, dm: view.dm.id }, '"not my change" could not be recorded');
      await ephemeral(client, body, 'changepager could not page on-call just now. Please page them yourself.');
      return;
    }
    deps.kick();
    if (!recorded) {
      await ephemeral(client, body, 'Already noted: on-call has been paged for this alert.');
      return;
    }
    // The service comes from an alert's labels: bounded like every per-service series (metrics.ts).
    deps.metrics.feedback.inc({
      kind: 'not_my_change',
      service: deps.metrics.serviceLabel(view.episode.decision.service ?? ''),
    });
    log.info(
      { dm: view.dm.id, episode: view.episode.id, by: email ?? body.user.id },
      '"not my change": paging on-call',
    );
    await redraw(client, view);
  });

  // A link button still sends a block_actions event; it only needs its ack.
  app.action(ACTIONS.open, async ({ ack }) => {
    await ack();
  });

  // Anything else (an old message's button, a button from another app version): answer, never leave it hanging.
  const known = new RegExp(`^(?!(${Object.values(ACTIONS).join('|')})$)`);
  app.action<BlockAction<ButtonAction>>({ action_id: known }, async ({ ack, body, client }) => {
    await ack();
    await ephemeral(
      client,
      body,
      'changepager does not know this button (it may be from an older message). Nothing was done.',
    );
  });
}

/** What the click rules (core/clicks.ts) judge by. */
function clickFacts(body: BlockAction, clickerEmail: string | undefined, view: DmView): ClickFacts {
  const d = view.episode.decision;
  const named = [
    ...d.notify,
    ...d.suspects.flatMap((s) => [s.email, s.identity.email].filter((e): e is string => e !== undefined)),
  ];
  const posted = readDmState(view.dm.delivered);
  const recipient = posted.ts ? posted.user : undefined;
  return {
    clicker: body.user.id,
    named,
    ...(clickerEmail === undefined ? {} : { clickerEmail }),
    ...(recipient === undefined ? {} : { recipient }),
  };
}

/** What the clicker reads when a click is refused; nothing was changed. */
const REFUSALS: Record<ClickRefusal, string> = {
  not_posted: 'changepager has not finished sending this message, so it cannot act on it yet. Nothing was done.',
  not_recipient: 'Only the person this message was sent to can acknowledge from it. Nothing was done.',
  not_named: 'Only a person changepager named for this alert can say it is not their change. Nothing was done.',
  unknown_clicker:
    'changepager could not tell who you are (no email for your Slack user), so it did nothing. Please use PagerDuty.',
};

/** Acknowledges the page that reached this person, where it was paged; never someone else's. */
async function acknowledge(
  view: DmView,
  email: string | undefined,
  deps: InteractivityDeps,
): Promise<{ ok: boolean; detail: string }> {
  const page: PageRecord | undefined = view.pages.find(
    (p) => p.status === 'open' && p.target.kind === 'person' && p.target.email === view.dm.email,
  );
  if (!page) return { ok: false, detail: 'this alert did not page you, so there is nothing of yours to acknowledge' };
  return deps.paging.acknowledge(page, email);
}

/** Bolt's logger interface over pino. */
function boltLogger(log: Logger, initial: LogLevel): BoltLogger {
  const child = log.child({ component: 'slack' });
  let level = initial;
  const text = (msg: unknown[]) =>
    msg.map((m) => (typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m))).join(' ');
  return {
    debug: (...msg) => child.debug(text(msg)),
    info: (...msg) => child.info(text(msg)),
    warn: (...msg) => child.warn(text(msg)),
    error: (...msg) => child.error(text(msg)),
    setLevel: (l) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}
