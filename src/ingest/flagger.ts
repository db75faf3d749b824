import { z } from 'zod';
import type { Deploy, Stage } from '../core/types.js';

// Flagger (https://flagger.app) progressive delivery, mapped onto changepager's rollout stages.
//
// Flagger's webhooks cannot carry a body of our choosing: an `event` webhook POSTs
// {name, namespace, phase, checksum, metadata: {eventMessage, eventType, timestamp, ...the webhook's own metadata}}
// for every Kubernetes event the canary emits (pkg/controller/webhook.go CallEventWebhook). Nor does Flagger know
// who wrote the change, so a stage event copies the author, version and changes of the deploy event the
// pipeline (CI, Argo CD) sent when it applied the new version, and restarts its window:
//
//   "New revision detected! Scaling up …"        → canary, 0 %  (canary pods start, no traffic yet)
//   "Starting canary analysis for …"              → canary, 0 %  (the same stage: answered as a repeat)
//   "Advance <name>.<ns> canary weight N"         → partial, N %
//   "Copying … template spec to <name>-primary…"  → full, 100 % (promotion: the new spec goes to the primary)
//   "Rolling back <name>.<ns> failed checks …"    → a rollback of that deploy (core/rollback.ts): traffic goes
//                                                   back to the primary, which runs the previous version
//
// Everything else (iterations of blue/green, "Routing all traffic to primary", warnings) is answered 200 and
// ignored: Flagger only logs what a webhook answers.

export const flaggerPayload = z.looseObject({
  name: z.string().min(1).describe('The Canary resource name.'),
  namespace: z.string().min(1),
  phase: z.string().optional().describe('Initialized, Waiting, Progressing, Promoting, Finalising, Succeeded, Failed…'),
  checksum: z.string().optional().describe('Hash of the canary spec being rolled out: one rollout, one checksum.'),
  metadata: z
    .record(z.string(), z.string())
    .optional()
    .describe(
      'eventMessage, eventType and timestamp (Unix ms) from Flagger; service, environment, version and token from the webhook spec.',
    ),
});

export type FlaggerPayload = z.output<typeof flaggerPayload>;

export type FlaggerStage = { stage: Stage; percent: number } | { rollback: true } | { ignored: string };

/** Which rollout stage a Flagger event stands for, read off its message. */
export function flaggerStage(payload: FlaggerPayload): FlaggerStage {
  const message = payload.metadata?.eventMessage;
  if (message === undefined) {
    return { ignored: 'not an event webhook (no metadata.eventMessage): configure changepager as type: event' };
  }
  if (/^New revision detected!/.test(message) || /^Starting canary analysis for /.test(message)) {
    return { stage: 'canary', percent: 0 };
  }
  const advance = /^Advance \S+ canary weight (\d+)\s*$/.exec(message);
  if (advance?.[1]) return { stage: 'partial', percent: Math.min(100, Number(advance[1])) };
  if (/^Copying \S+ template spec to /.test(message)) return { stage: 'full', percent: 100 };
  // pkg/controller/scheduler.go: "Rolling back %s.%s failed checks threshold reached %v" (and "progress
  // deadline exceeded" for a canary that never became ready).
  if (/^Rolling back \S+ /.test(message)) return { rollback: true };
  return { ignored: `not a rollout stage: "${message.slice(0, 200)}"` };
}

/** The service and environment a canary belongs to: from the webhook's metadata, else the canary's name. */
export function flaggerTarget(payload: FlaggerPayload, defaultEnvironment: string) {
  return {
    service: payload.metadata?.service || payload.name,
    environment: payload.metadata?.environment || defaultEnvironment,
    version: payload.metadata?.version || undefined,
  };
}

/**
 * The stage event: the pipeline's deploy event (`source`) with Flagger's stage and time. Its id is stable for
 * a (canary, revision, stage, weight), so Flagger repeating an event changes nothing.
 */
export function flaggerDeploy(
  payload: FlaggerPayload,
  stage: { stage: Stage; percent: number } | { rollback: true },
  source: Deploy,
  now: number,
): Deploy {
  const timestamp = Number(payload.metadata?.timestamp);
  // Flagger sends epoch milliseconds; anything else (a fraction, 1e20) is not a time we can store.
  const at = Number.isSafeInteger(timestamp) && timestamp > 0 && timestamp < now + 86_400_000 ? timestamp : now;
  const revision = payload.checksum || source.version;
  if ('rollback' in stage) {
    // The primary never left the previous version: that is what runs again, and nobody's change shipped.
    const rollback: Deploy = {
      id: `flagger-${payload.namespace}-${payload.name}-${revision}-rollback`.slice(0, 256),
      kind: 'deploy',
      service: source.service,
      environment: source.environment,
      version: source.previousVersion ?? `${source.version} (rolled back)`,
      previousVersion: source.version,
      stage: 'full',
      percent: 100,
      hosts: [],
      at,
      receivedAt: now,
      changes: [],
    };
    return rollback;
  }
  const id = `flagger-${payload.namespace}-${payload.name}-${revision}-${stage.stage}-${stage.percent}`.slice(0, 256);
  const deploy: Deploy = {
    id,
    kind: 'deploy',
    service: source.service,
    environment: source.environment,
    version: source.version,
    stage: stage.stage,
    percent: stage.percent,
    // Flagger's canary pods are named by Kubernetes; the stage claims every alert of the service.
    hosts: [],
    at,
    receivedAt: now,
    changes: source.changes,
  };
  if (source.previousVersion !== undefined) deploy.previousVersion = source.previousVersion;
  return deploy;
}
