import type { Logger } from 'pino';
import type { PageWithMembers } from '../store/store.js';
import type { DeliveryResult, PageNotifier } from './notifier.js';

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
          alerts: members.map((m) => ({
            fingerprint: m.fingerprint,
            status: m.status,
            alertname: m.labels.alertname,
            reason: m.decision.reason,
            sentence: m.decision.sentence,
          })),
        },
        `${action} page for ${page.target.kind === 'person' ? page.target.email : 'on-call'}`,
      );
      return { ok: true, detail: `${action} logged`, delivered: { log: action } };
    },
  };
}
