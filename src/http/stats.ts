import type { RequestHandler } from 'express';
import { Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import { hygiene, type ServiceHygiene } from '../core/stats.js';
import { canonicalInstant, durationMs } from '../core/time.js';
import { ApiError } from '../errors.js';
import { parseQuery } from '../ingest/validate.js';
import type { Store } from '../store/store.js';

// GET /v1/stats: deploy hygiene per service over a period (core/stats.ts), and the same numbers over the last
// seven days as Prometheus gauges.

const instantOrDuration = z.string().refine((s) => canonicalInstant(s) !== undefined || durationMs(s) !== undefined, {
  error: 'must be an RFC 3339 time or an ISO-8601 duration back from now, such as P7D',
});

export const statsQuery = z.strictObject({
  since: instantOrDuration
    .default('P7D')
    .describe('Start of the period: an RFC 3339 time or a duration back from now.'),
  until: z.iso.datetime({ offset: true }).optional().describe('End of the period (exclusive); defaults to now.'),
  service: z.string().min(1).optional(),
  environment: z.string().min(1).optional(),
});

export function statsRoute(deps: { store: Store; now: () => number }): RequestHandler {
  return async (req, res) => {
    const q = parseQuery(statsQuery, req.query);
    const now = deps.now();
    const until = q.until === undefined ? now : (canonicalInstant(q.until)?.ms ?? now);
    const since = canonicalInstant(q.since)?.ms ?? until - (durationMs(q.since) as number);
    if (since >= until) {
      throw new ApiError('invalid_query', undefined, {
        problems: [{ path: 'since', message: 'must be before until' }],
      });
    }
    const facts = await deps.store.hygieneFacts({
      since,
      until,
      ...(q.service === undefined ? {} : { service: q.service }),
      ...(q.environment === undefined ? {} : { environment: q.environment }),
    });
    res.json({
      since: new Date(since).toISOString(),
      until: new Date(until).toISOString(),
      environment: q.environment ?? null,
      feedbackRecorded: facts.feedbackRecorded,
      services: hygiene(facts),
    });
  };
}

/** The period the hygiene gauges cover. */
export const HYGIENE_GAUGE_PERIOD_MS = 7 * 24 * 3600_000;

/**
 * Hygiene gauges per service over the last seven days, computed at scrape time from the store (no state to
 * lose on restart). The first gauge collected computes the numbers; the others reuse them within that scrape.
 */
export function registerHygieneGauges(registry: Registry, store: Store, now: () => number): void {
  let current: Promise<ServiceHygiene[]> = Promise.resolve([]);
  const gauge = (name: string, help: string, value: (s: ServiceHygiene) => number | null, compute = false) =>
    new Gauge({
      name,
      help,
      labelNames: ['service'] as const,
      registers: [registry],
      async collect() {
        if (compute) {
          const until = now();
          current = store.hygieneFacts({ since: until - HYGIENE_GAUGE_PERIOD_MS, until }).then(hygiene);
        }
        this.reset();
        for (const s of await current) {
          const v = value(s);
          if (v !== null) this.set({ service: s.service }, v);
        }
      },
    });
  gauge('changepager_hygiene_deploys', 'Deploys (rollouts of code) in the last 7 days.', (s) => s.deploys, true);
  gauge(
    'changepager_hygiene_single_change_ratio',
    'Share of the last 7 days of deploys that carried exactly one change.',
    (s) => s.singleChangeShare,
  );
  gauge(
    'changepager_hygiene_attributed_alerts',
    'Alerts in the last 7 days attributed to a deploy, flag or config change.',
    (s) => s.attributedAlerts,
  );
  gauge(
    'changepager_hygiene_first_alert_median_seconds',
    'Median time from a change to the first alert attributed to it, over the last 7 days.',
    (s) => s.medianSecondsToFirstAlert,
  );
  gauge(
    'changepager_hygiene_not_my_change',
    'Decisions in the last 7 days answered "not my change".',
    (s) => s.notMyChange,
  );
}
