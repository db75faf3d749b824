import type { AlertWrite } from '../src/core/plan.js';
import type { AlertGroup, Decision, Deploy } from '../src/core/types.js';
import { openSqliteStore } from '../src/store/sqlite/store.js';

// A week of history written through the real store: deploys of many services and the alert episodes decided
// about them, a third of them attributed to a deploy. What /metrics and /v1/stats summarise; the episodes are
// stored resolved, so the service starts with nothing to deliver.

export interface HistoryShape {
  services: number;
  deploys: number;
  episodes: number;
  /** The end of the week, epoch ms. */
  now: number;
}

const WEEK_MS = 7 * 24 * 3600_000;
const BATCH = 2000;

export async function seedHistory(dbPath: string, shape: HistoryShape): Promise<void> {
  const store = openSqliteStore(dbPath);
  const start = shape.now - WEEK_MS + 3600_000;
  const step = Math.floor((WEEK_MS - 2 * 3600_000) / Math.max(1, shape.deploys));
  const service = (i: number) => `svc-${i % shape.services}`;
  const deployOf = (i: number): Deploy => ({
    id: `hist-${i}`,
    kind: 'deploy',
    service: service(i),
    environment: 'production',
    version: `v${i}`,
    stage: 'full',
    hosts: [],
    at: start + i * step,
    receivedAt: start + i * step,
    changes: [{ author: { email: `dev${i % 500}@example.com`, login: `dev${i % 500}` } }],
  });
  for (let from = 0; from < shape.deploys; from += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, shape.deploys - from) }, (_, k) => deployOf(from + k));
    // Sent in the same turn: the group commit stores the whole batch in one transaction.
    await Promise.all(batch.map((d) => store.saveDeploy(d)));
  }
  const group: Omit<AlertGroup, 'alerts'> = {
    groupKey: '{}:{alertname="History"}',
    receiver: 'changepager',
    externalURL: 'http://alertmanager.example:9093',
    truncatedAlerts: 0,
  };
  for (let from = 0; from < shape.episodes; from += BATCH) {
    const writes: AlertWrite[] = [];
    for (let i = from; i < Math.min(shape.episodes, from + BATCH); i++) {
      const d = deployOf(i % shape.deploys);
      const startsAtMs = d.at + 600_000;
      const attributed = i % 3 === 0;
      const decision: Decision = {
        reason: attributed ? 'author_paged' : 'no_deploy_in_window',
        sentence: 'history',
        service: d.service,
        environment: 'production',
        policy: 'author',
        ...(attributed ? { deployId: d.id } : {}),
        suspects: [],
        targets: [{ kind: 'oncall' }],
        responders: [],
        notify: [],
        wouldPage: [],
      };
      writes.push({
        alert: {
          fingerprint: `h${i.toString(16).padStart(15, '0')}`,
          startsAt: new Date(startsAtMs).toISOString(),
          startsAtMs,
          endsAtMs: startsAtMs + 300_000,
          status: 'resolved',
          labels: { alertname: 'History', service: d.service, env: 'production' },
          annotations: { summary: 'history' },
          generatorURL: '',
        },
        decision,
      });
    }
    await store.recordAlerts(group, writes, shape.now);
  }
  await store.close();
}
