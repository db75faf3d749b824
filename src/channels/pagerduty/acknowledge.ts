import type { PageRecord } from '../../store/store.js';
import type { PagingPort } from '../channel.js';
import type { PagerDutyClient } from './client.js';
import { type PagerDutyConfig, pagerdutyFor } from './config.js';
import { readPageState } from './state.js';

/** What other channels may do with a page PagerDuty delivered: acknowledge it, link to its incident. */
export function pagerdutyPaging(pd: PagerDutyConfig, client: PagerDutyClient): PagingPort {
  return {
    /** The incident, as the person acknowledging it (From: their email); else the Events API alert. */
    async acknowledge(page: PageRecord, actorEmail: string | undefined) {
      const told = readPageState(page.delivered);
      const incident = told.incident;
      if (incident) {
        const res = await client.updateIncident(
          incident,
          { type: 'incident_reference', status: 'acknowledged' },
          actorEmail,
        );
        return res.ok ? { ok: true, detail: `incident ${incident} acknowledged` } : { ok: false, detail: res.detail };
      }
      const routingKey = pagerdutyFor(pd, page.service).routingKey;
      if (!routingKey || told.state !== 'triggered')
        return { ok: false, detail: 'the page has not reached PagerDuty yet' };
      const res = await client.sendEvent({
        routing_key: routingKey,
        event_action: 'acknowledge',
        dedup_key: page.dedupKey,
      });
      return res.ok ? { ok: true, detail: 'alert acknowledged' } : { ok: false, detail: res.detail };
    },
    linkOf: (page) => readPageState(page.delivered).url,
  };
}
