import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerHygieneGauges } from './http/stats.js';
import type { Store } from './store/store.js';

/** The service's Prometheus metrics, on a registry of its own so each app (and each test) has a fresh set. */
export function createMetrics(store: Store, now: () => number) {
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
  registerHygieneGauges(registry, store, now);
  new Gauge({
    name: 'changepager_outbox_depth',
    help: 'Deliveries waiting in the outbox.',
    registers: [registry],
    async collect() {
      this.set((await store.outboxStats(now())).depth);
    },
  });
  new Gauge({
    name: 'changepager_outbox_oldest_age_seconds',
    help: 'How long the oldest waiting delivery has been due.',
    registers: [registry],
    async collect() {
      this.set((await store.outboxStats(now())).oldestDueAgeMs / 1000);
    },
  });
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
