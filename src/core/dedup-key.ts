import { createHash } from 'node:crypto';

/**
 * The PagerDuty dedup key (Events API `dedup_key`, REST `incident_key`) of a page. Derived only from what names
 * the page, never from the notification that delivered it, so Alertmanager repeats, HA duplicates and our own
 * retries all land on the same PagerDuty alert. Hashed because group keys can exceed PagerDuty's 255 characters.
 */
export function pageDedupKey(page: { groupKey: string; service: string; target: string; seq: number }): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([page.groupKey, page.service, page.target, page.seq]))
    .digest('hex');
  return `changepager-${digest.slice(0, 40)}`;
}
