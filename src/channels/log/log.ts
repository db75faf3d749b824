import type { Logger } from 'pino';
import { clip } from '../../core/clip.js';
import type { DeliveryResult, OutboxHandler, PageNotifier } from '../../deliver/notifier.js';
import type { OutboxStore, PageWithMembers } from '../../store/store.js';
import { logDmStatePatch, logPageStatePatch, readLogDmState } from './state.js';

/** A page's log record lists this many alerts and counts the rest: a group can hold thousands. */
const ALERTS_LOGGED = 50;
const SENTENCE_MAX = 1500;

/**
 * The embedded default when no PagerDuty credentials are configured: each page is written to the log as a
 * structured record, so the whole flow runs and can be watched before anything real is paged.
 */
export function createLogNotifier(log: Logger): PageNotifier {
  return {
    channel: 'log',
    async deliver({ page, members }: PageWithMembers): Promise<DeliveryResult> {
      const action = page.status === 'open' ? 'trigger' : 'resolve';
      log.info(
        {
          event: 'page',
          action,
          target: page.target.kind === 'person' ? page.target.email : 'oncall',
          service: page.service,
          environment: page.environment,
          groupKey: page.groupKey,
          dedupKey: page.dedupKey,
          alerts: members.slice(0, ALERTS_LOGGED).map((m) => ({
            fingerprint: m.fingerprint,
            status: m.status,
            alertname: m.labels.alertname === undefined ? undefined : clip(m.labels.alertname, SENTENCE_MAX),
            reason: m.decision.reason,
            sentence: clip(m.decision.sentence, SENTENCE_MAX),
          })),
          ...(members.length > ALERTS_LOGGED ? { alertsNotShown: members.length - ALERTS_LOGGED } : {}),
        },
        `${action} page for ${page.target.kind === 'person' ? page.target.email : 'on-call'}`,
      );
      return { ok: true, detail: `${action} logged`, delivered: logPageStatePatch({ logged: action }) };
    },
  };
}

/** DMs in the embedded default: who would be told what, written to the log. */
export function logDmHandler(store: Pick<OutboxStore, 'dmWithContext'>, log: Logger): OutboxHandler {
  return {
    channel: 'log',
    async handle(ref) {
      const ctx = await store.dmWithContext(Number(ref), 0);
      if (!ctx) return { ok: false, retry: false, detail: `DM ${ref} does not exist` };
      if (readLogDmState(ctx.dm.delivered).shows === ctx.episode.status)
        return { ok: true, detail: 'DM is up to date' };
      log.info(
        {
          event: 'dm',
          to: ctx.dm.email,
          fingerprint: ctx.episode.fingerprint,
          status: ctx.episode.status,
          reason: ctx.episode.decision.reason,
          deploy: ctx.dm.deployId,
        },
        `DM to ${ctx.dm.email}: ${clip(ctx.episode.decision.sentence, SENTENCE_MAX)}`,
      );
      return { ok: true, detail: 'DM logged', delivered: logDmStatePatch({ shows: ctx.episode.status }) };
    },
  };
}
