import type { Deploy } from '../../core/types.js';
import { retryHint } from '../../deliver/http-outcome.js';
import type { OutboxHandler } from '../../deliver/notifier.js';
import type { PagerDutyClient } from './client.js';
import { type PagerDutyConfig, pagerdutyFor } from './config.js';
import { changeEvent } from './payload.js';

/** Sends each new deploy to PagerDuty as a change event, so its "recent changes" shows it next to incidents. */
export function changeEventHandler(deps: {
  pd: PagerDutyConfig;
  client: PagerDutyClient;
  getDeploy: (id: string) => Promise<Deploy | undefined>;
}): OutboxHandler {
  return {
    channel: 'pagerduty-change',
    async handle(ref) {
      const deploy = await deps.getDeploy(ref);
      if (!deploy) return { ok: false, retry: false, detail: `deploy ${ref} does not exist` };
      const routingKey = pagerdutyFor(deps.pd, deploy.service).routingKey;
      if (!routingKey) return { ok: true, detail: 'no routing key for this service: no change event' };
      const res = await deps.client.sendChange(changeEvent(deploy, routingKey, deps.pd.maxEventBytes));
      if (res.ok) return { ok: true, detail: 'change event accepted' };
      return { ok: false, retry: res.retry, detail: `change event: ${res.detail}`, ...retryHint(res) };
    },
  };
}
