import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { OTHER, type ServiceHygiene, seriesLabels } from './core/stats.js';
import { HYGIENE_GAUGE_PERIOD_MS, tallyHygiene } from './http/stats.js';
import type { OutboxStats, OutboxStore, TimelineStore } from './store/store.js';

export interface MetricsOptions {
  /** Services that always keep series of their own: those named in the config. */
  services: readonly string[];
  /** Other services with series of their own: the busiest this many. */
  topServices: number;
  /** How often the gauges read from the database are computed. */
  refreshIntervalMs: number;
  log?: Logger;
}

/** What the gauges read from the database show: computed off the scrape, every refreshIntervalMs. */
interface Snapshot {
  hygiene: ServiceHygiene[];
  outbox: OutboxStats;
  serviceLabel: (service: string) => string;
  refreshedAt?: number;
}

/**
 * The service's Prometheus metrics, on a registry of its own so each app (and each test) has a fresh set.
 *
 * A scrape never reads the database: the hygiene numbers (a week of deploys and alerts) and the outbox gauges
 * are computed by refresh(), on a timer (start/stop), a page of rows at a time between which other requests
 * run; the gauges show the last result. Per-service series are bounded: the configured services and the
 * busiest topServices keep their own, every other service is summed into service="other".
 */
export function createMetrics(
  store: Pick<TimelineStore, 'hygieneFacts'> & Pick<OutboxStore, 'outboxStats'>,
  now: () => number,
  options: Partial<MetricsOptions> = {},
) {
  const keep = new Set(options.services ?? []);
  const topServices = options.topServices ?? 100;
  const refreshIntervalMs = options.refreshIntervalMs ?? 30_000;
  let snapshot: Snapshot = {
    hygiene: [],
    outbox: { depth: 0, oldestUndeliveredAgeMs: 0 },
    serviceLabel: (service) => (keep.has(service) ? service : OTHER),
  };
  const registry = new Registry();
  const m = {
    registry,
    httpRequests: new Histogram({
      name: 'changepager_http_request_duration_seconds',
      help: 'HTTP requests by route and status code.',
      labelNames: ['method', 'route', 'code'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    alertsReceived: new Counter({
      name: 'changepager_alerts_received_total',
      help: 'Alerts received from Alertmanager, by what they were to the store.',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    decisions: new Counter({
      name: 'changepager_decisions_total',
      help: 'Decisions made for new alert episodes, by reason code.',
      labelNames: ['reason', 'policy'] as const,
      registers: [registry],
    }),
    evidence: new Counter({
      name: 'changepager_evidence_total',
      help: "Evidence judged for decisions that paged a person, by the judge's verdict and what it did to the decision.",
      labelNames: ['verdict', 'effect'] as const,
      registers: [registry],
    }),
    deploysReceived: new Counter({
      name: 'changepager_deploys_received_total',
      help: 'Deploy events received, by whether they were new.',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    deliveryAttempts: new Counter({
      name: 'changepager_delivery_attempts_total',
      help: 'Delivery attempts by channel and outcome (delivered, retry, failed).',
      labelNames: ['channel', 'outcome'] as const,
      registers: [registry],
    }),
    pages: new Counter({
      name: 'changepager_pages_total',
      help: 'PagerDuty page actions by route (author incident, on-call event, fallback to on-call) and action.',
      labelNames: ['route', 'action'] as const,
      registers: [registry],
    }),
    deliveryFailures: new Counter({
      name: 'changepager_delivery_failures_total',
      help: 'Failed delivery requests by channel and reason (timeout, network, http_429, http_5xx, http_4xx).',
      labelNames: ['channel', 'reason'] as const,
      registers: [registry],
    }),
    unmappedPeople: new Counter({
      name: 'changepager_unmapped_people_total',
      help: 'Times a page could not go to a person by name: no email, or no PagerDuty user for it.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    feedback: new Counter({
      name: 'changepager_feedback_total',
      help: 'Feedback from the people told about a decision, by kind (not_my_change).',
      labelNames: ['kind', 'service'] as const,
      registers: [registry],
    }),
    logins: new Counter({
      name: 'changepager_logins_total',
      help: 'Timeline logins by result: ok, wrong_token, or limited (refused with 429 after too many wrong tokens).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    connectionsRefused: new Counter({
      name: 'changepager_http_connections_refused_total',
      help: 'Connections closed on arrival because http.max_connections were open.',
      registers: [registry],
    }),
    timeToDeliver: new Histogram({
      name: 'changepager_time_to_deliver_seconds',
      help: 'From the outbox row being written (the alert accepted) to the receiver acknowledging delivery.',
      labelNames: ['channel'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
  };
  const hygieneGauge = (name: string, help: string, value: (s: ServiceHygiene) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['service'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of snapshot.hygiene) {
          const v = value(s);
          if (v !== null) this.set({ service: s.service }, v);
        }
      },
    });
  hygieneGauge('changepager_hygiene_deploys', 'Deploys (rollouts of code) in the last 7 days.', (s) => s.deploys);
  hygieneGauge(
    'changepager_hygiene_single_change_ratio',
    'Share of the last 7 days of deploys that carried exactly one change.',
    (s) => s.singleChangeShare,
  );
  hygieneGauge(
    'changepager_hygiene_attributed_alerts',
    'Alerts in the last 7 days attributed to a deploy, flag or config change.',
    (s) => s.attributedAlerts,
  );
  hygieneGauge(
    'changepager_hygiene_first_alert_median_seconds',
    'Median time from a change to the first alert attributed to it, over the last 7 days.',
    (s) => s.medianSecondsToFirstAlert,
  );
  hygieneGauge(
    'changepager_hygiene_not_my_change',
    'Decisions in the last 7 days answered "not my change".',
    (s) => s.notMyChange,
  );
  // The four keys over the same 7 days and the same bounded service labels (docs/api.md, "The four keys").
  hygieneGauge(
    'changepager_deployment_frequency_per_day',
    'Deployment frequency: deploys (rollouts of code, rollbacks apart) per day over the last 7 days.',
    (s) => s.deploymentsPerDay,
  );
  hygieneGauge(
    'changepager_lead_time_seconds',
    'Lead time for changes: median over the last 7 days of deploys of their changes’ commit (or merge) to deploy.',
    (s) => s.leadTimeSeconds,
  );
  hygieneGauge(
    'changepager_change_failure_ratio',
    'Change failure rate: share of the last 7 days of deploys followed by an attributed alert or a rollback.',
    (s) => s.changeFailureRate,
  );
  hygieneGauge(
    'changepager_time_to_restore_seconds',
    'Time to restore: median over failed deploys of the last 7 days from their first alert to its resolve or the rollback.',
    (s) => s.timeToRestoreSeconds,
  );
  hygieneGauge('changepager_rollbacks', 'Rollbacks in the last 7 days.', (s) => s.rollbacks);
  new Gauge({
    name: 'changepager_outbox_depth',
    help: 'Deliveries waiting in the outbox.',
    registers: [registry],
    collect() {
      this.set(snapshot.outbox.depth);
    },
  });
  new Gauge({
    name: 'changepager_outbox_oldest_age_seconds',
    help: 'How long the oldest undelivered row has waited since it was enqueued, retries included.',
    registers: [registry],
    collect() {
      this.set(snapshot.outbox.oldestUndeliveredAgeMs / 1000);
    },
  });
  // Whether the last refresh could read the database: with several replicas on PostgreSQL, the one signal of a
  // database gone that does not depend on a request failing.
  let databaseUp: number | undefined;
  new Gauge({
    name: 'changepager_database_up',
    help: 'Whether the last refresh of the database gauges could read the database: 1 yes, 0 no.',
    registers: [registry],
    collect() {
      if (databaseUp !== undefined) this.set(databaseUp);
    },
  });
  new Gauge({
    name: 'changepager_metrics_refreshed_timestamp_seconds',
    help: 'When the hygiene and outbox gauges were last computed (Unix time; 0 before the first time).',
    registers: [registry],
    collect() {
      if (snapshot.refreshedAt !== undefined) this.set(snapshot.refreshedAt / 1000);
    },
  });

  let refreshing: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let rendering: Promise<string> | undefined;

  async function computeSnapshot(): Promise<void> {
    const until = now();
    const tally = await tallyHygiene(store, { since: until - HYGIENE_GAUGE_PERIOD_MS, until });
    const serviceLabel = seriesLabels(tally.volumes(), keep, topServices);
    const outbox = await store.outboxStats(now());
    snapshot = { hygiene: tally.services(serviceLabel), outbox, serviceLabel, refreshedAt: now() };
  }

  return {
    ...m,
    /** Computes the gauges read from the database; concurrent calls share one computation. */
    refresh(): Promise<void> {
      refreshing ??= computeSnapshot()
        .then(() => {
          databaseUp = 1;
        })
        .catch((err) => {
          databaseUp = 0;
          options.log?.error({ err }, 'metrics: cannot compute the gauges; they keep their last values');
        })
        .finally(() => {
          refreshing = undefined;
        });
      return refreshing;
    },
    /** Refreshes now and every refreshIntervalMs, until stop(). */
    start() {
      if (timer) return;
      void this.refresh();
      timer = setInterval(() => void this.refresh(), refreshIntervalMs);
      timer.unref();
    },
    /** Stops the timer and waits for a refresh under way, so the store can be closed after it. */
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await refreshing;
    },
    /**
     * The text of a scrape. Scrapes that arrive in the same turn of the event loop share one rendering, made
     * after they have all been read: many scrapers at once cost one rendering, and none gets older numbers.
     */
    render(): Promise<string> {
      rendering ??= new Promise<string>((resolve, reject) => {
        setImmediate(() => {
          rendering = undefined;
          registry.metrics().then(resolve, reject);
        });
      });
      return rendering;
    },
    /** The label a service gets in per-service series: its name, or "other" (see seriesLabels). */
    serviceLabel(service: string): string {
      return snapshot.serviceLabel(service);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
