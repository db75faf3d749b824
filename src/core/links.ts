import type { Deploy } from './types.js';

/** How far before the deploy the compared time range starts, so the graph shows the old version too. */
export const COMPARE_LEAD_MS = 15 * 60_000;

/**
 * Fills a per-service compare URL template ("GO HERE"): {service} {environment} {old} {new} are the deploy's,
 * {from} and {to} are epoch milliseconds (Grafana's convention) from shortly before the deploy to `now`.
 * Example: https://grafana.example.com/d/svc?var-service={service}&var-old={old}&var-new={new}&from={from}&to={to}
 */
export function compareLink(template: string, deploy: Deploy, now: number): string {
  const values: Record<string, string> = {
    service: deploy.service,
    environment: deploy.environment,
    old: deploy.previousVersion ?? '',
    new: deploy.version,
    from: String(deploy.at - COMPARE_LEAD_MS),
    to: String(Math.max(now, deploy.at)),
  };
  return template.replace(/\{(service|environment|old|new|from|to)\}/g, (_m, key: string) =>
    encodeURIComponent(values[key] ?? ''),
  );
}
