import { z } from 'zod';
import type { PolicyMode, ReasonCode } from '../core/types.js';
import { ERRORS, type ErrorCode } from '../errors.js';

// What the HTTP API answers, as zod schemas: the response half of the OpenAPI document (http/openapi.ts). The
// request half is the very schemas that validate requests (ingest/, the query schemas). Responses are built by
// http/views.ts and friends; test/openapi checks every answer of a real service against these, and they are
// strict (additionalProperties: false), so a field added to a view without being described here fails a test.

const instant = z.iso.datetime().describe('RFC 3339, UTC.');
const episodeInstant = z.iso.datetime().describe("Alertmanager's startsAt in canonical UTC form, nanoseconds kept.");

const REASONS = [
  'author_paged',
  'author_and_oncall_paged',
  'author_notified',
  'shadow',
  'author_outside_working_hours',
  'ambiguous_bundle',
  'changes_unknown',
  'no_deploy_in_window',
  'alert_started_before_deploy',
  'canary_host_mismatch',
  'no_service_label',
  'no_person_for_author',
  'policy_off',
  'correlation_error',
  'resolved_before_seen',
] as const satisfies readonly ReasonCode[];
const POLICIES = ['author', 'author+oncall', 'notify', 'shadow', 'off'] as const satisfies readonly PolicyMode[];
// A reason code or policy added to core/types.ts without being listed here stops the build.
const everyReason: Exclude<ReasonCode, (typeof REASONS)[number]> extends never ? true : never = true;
const everyPolicy: Exclude<PolicyMode, (typeof POLICIES)[number]> extends never ? true : never = true;
void everyReason;
void everyPolicy;

export const identitySchema = z.object({
  email: z.string().optional(),
  login: z.string().optional(),
  name: z.string().optional(),
});

const changeSchema = z.object({
  author: identitySchema,
  mergedBy: identitySchema.optional(),
  commit: z
    .object({ sha: z.string().optional(), url: z.string().optional(), message: z.string().optional() })
    .optional(),
  pullRequest: z
    .object({ number: z.number().int().optional(), url: z.string().optional(), title: z.string().optional() })
    .optional(),
});

const flagValue = z.union([z.boolean(), z.string(), z.number()]);

export const deploySchema = z
  .object({
    id: z.string(),
    kind: z.enum(['deploy', 'flag', 'config']),
    service: z.string(),
    environment: z.string(),
    version: z.string(),
    previousVersion: z.string().nullable(),
    stage: z.enum(['canary', 'partial', 'full']),
    percent: z.number().nullable(),
    hosts: z.array(z.string()),
    at: instant,
    receivedAt: instant,
    changes: z.array(changeSchema),
    flag: z.object({ key: z.string(), from: flagValue.optional(), to: flagValue }).nullable(),
    config: z.object({ key: z.string().optional(), description: z.string().optional() }).nullable(),
    codeHost: z
      .object({
        host: z.enum(['github', 'gitlab']),
        repository: z.string(),
        sha: z.string(),
        previousSha: z.string().optional(),
        deploymentId: z.string(),
        hostEnvironment: z.string().optional(),
        deliveryId: z.string(),
        compareUrl: z.string().optional(),
        url: z.string().optional(),
        changes: z.enum(['pending', 'found', 'unavailable']),
        detail: z.string().optional(),
      })
      .nullable()
      .describe(
        "For a deploy reported by a code host's webhook: where it came from, and whether its changes are still being looked up (pending), were found, or stay unknown (unavailable, with why in detail).",
      ),
  })
  .describe('A stored change event: a deploy, a flag flip or a config change.');

const targetSchema = z.union([
  z.object({ kind: z.literal('oncall') }),
  z.object({ kind: z.literal('person'), email: z.string() }),
]);

export const decisionSchema = z.object({
  reason: z.enum(REASONS),
  sentence: z.string(),
  service: z.string().nullable(),
  environment: z.string(),
  policy: z.enum(POLICIES),
  deployId: z.string().nullable(),
  suspects: z.array(
    z.object({ role: z.enum(['author', 'merger']), identity: identitySchema, email: z.string().optional() }),
  ),
  targets: z.array(targetSchema),
  responders: z.array(z.string()),
  notify: z.array(z.string()),
  wouldPage: z.array(targetSchema),
});

const decidedSchema = z.object({
  fingerprint: z.string(),
  startsAt: episodeInstant,
  status: z.enum(['firing', 'resolved']),
  alertname: z.string().nullable(),
  decision: decisionSchema,
});

const labels = z.record(z.string(), z.string());

const next = z
  .string()
  .nullable()
  .describe('The path and query of the next page (the same query with a cursor), or null on the last page.');

export const alertHistorySchema = z.object({
  fingerprint: z.string(),
  episodes: z.array(
    z.object({
      startsAt: episodeInstant,
      endsAt: instant.nullable(),
      status: z.enum(['firing', 'resolved']),
      labels,
      annotations: labels,
      generatorURL: z.string(),
      groupKey: z.string(),
      receiver: z.string(),
      externalURL: z.string(),
      firstSeenAt: instant,
      lastSeenAt: instant,
      decision: decisionSchema.extend({
        decidedAt: instant,
        feedback: z
          .object({ kind: z.enum(['not_my_change']), by: z.string(), at: instant })
          .nullable()
          .describe('What the person named said about it (Slack: Not my change).'),
      }),
      pages: z.array(
        z.object({
          id: z.number().int(),
          target: targetSchema,
          service: z.string(),
          status: z.enum(['open', 'resolved']),
          dedupKey: z.string(),
          openedAt: instant,
          resolvedAt: instant.nullable(),
          delivered: z.record(z.string(), z.string()),
        }),
      ),
      deliveries: z.array(
        z.object({
          page: z.number().int().describe('The pages[].id this attempt delivered.'),
          attempt: z.number().int(),
          at: instant,
          channel: z.string(),
          outcome: z.enum(['delivered', 'retry', 'failed']),
          detail: z.string(),
          durationMs: z.number(),
        }),
      ),
      deliveriesNotShown: z
        .number()
        .int()
        .describe('Earlier delivery attempts left out: each page shows its latest `deliveries`.'),
    }),
  ),
  next,
});

const verdictAlert = z.object({
  fingerprint: z.string(),
  alertname: z.string().nullable(),
  startsAt: episodeInstant,
  endsAt: instant.nullable(),
  status: z.enum(['firing', 'resolved']),
  labels,
  deployId: z.string().nullable().describe('The stage event the alert was attributed to.'),
  reason: z.enum(REASONS),
  sentence: z.string(),
});

export const verdictSchema = z.object({
  id: z.string().describe('The id asked about; the verdict is that of its whole rollout.'),
  verdict: z.enum(['pending', 'healthy', 'failing']),
  sentence: z.string(),
  service: z.string(),
  environment: z.string(),
  kind: z.enum(['deploy', 'flag', 'config']),
  version: z.string(),
  window: z.object({
    from: instant.describe("The latest stage event's at: every stage restarts the window."),
    to: instant,
    observe: z.string(),
    settle: z.string(),
    decidedInSeconds: z.number().int().describe('Until the verdict can turn healthy; 0 once decided.'),
  }),
  stage: z.object({
    id: z.string(),
    stage: z.enum(['canary', 'partial', 'full']),
    percent: z.number().nullable(),
    hosts: z.array(z.string()),
    at: instant,
  }),
  rollout: z.array(
    z.object({
      id: z.string(),
      stage: z.enum(['canary', 'partial', 'full']),
      percent: z.number().nullable(),
      at: instant,
    }),
  ),
  supersededBy: z.object({ id: z.string(), version: z.string(), at: instant }).nullable(),
  alerts: z.array(verdictAlert).describe('The alerts that make it fail: the first 100.'),
  alertsNotShown: z.number().int().describe('Alerts that make it fail beyond the first 100.'),
  notJudged: z
    .array(verdictAlert.extend({ why: z.enum(['resolved_before_window', 'started_after_window']) }))
    .describe('The first 100.'),
  notJudgedNotShown: z.number().int(),
  checkedAt: instant,
});

export const statsSchema = z.object({
  since: instant,
  until: instant,
  environment: z.string().nullable(),
  feedbackRecorded: z.boolean().describe('False when this changepager keeps no "not my change" feedback at all.'),
  services: z.array(
    z.object({
      service: z.string(),
      deploys: z.number().int().describe('Rollouts of code: stage events of one version count once.'),
      flagChanges: z.number().int(),
      configChanges: z.number().int(),
      stageEvents: z.number().int(),
      singleChangeDeploys: z.number().int(),
      singleChangeShare: z.number().nullable(),
      alerts: z.number().int(),
      attributedAlerts: z.number().int(),
      attributedByKind: z.object({ deploy: z.number().int(), flag: z.number().int(), config: z.number().int() }),
      medianSecondsToFirstAlert: z.number().nullable(),
      notMyChange: z.number().int(),
    }),
  ),
  next,
});

export const flaggerResultSchema = z.object({
  result: z.enum(['recorded', 'repeat', 'ignored']),
  reason: z.string().nullable(),
  deploy: deploySchema.nullable(),
});

const decisionsShown = {
  decisions: z.array(decidedSchema).describe('At most 1000, in the order of the alerts.'),
  decisionsNotShown: z
    .number()
    .int()
    .describe('Decisions beyond the first 1000, left out of this answer; GET /v1/alerts/{fingerprint} has each.'),
};

export const alertmanagerResultSchema = z.object({
  accepted: z.number().int(),
  newEpisodes: z.number().int(),
  resolved: z.number().int(),
  repeats: z.number().int(),
  ...decisionsShown,
});

export const previewSchema = z.object({ ...decisionsShown });
export const deployListSchema = z.object({ deploys: z.array(deploySchema), next });

export const unmappedSchema = z.object({
  people: z.array(
    z.object({
      who: z.string(),
      reason: z.string(),
      count: z.number().int(),
      firstSeenAt: instant,
      lastSeenAt: instant,
    }),
  ),
  next,
});

const link = z.object({ label: z.string(), href: z.string() });

export const timelineSchema = z
  .object({
    from: instant,
    to: instant,
    live: z.boolean().describe('The range ends now and moves with it.'),
    fitted: z
      .boolean()
      .describe('No range was asked for: the last timeline.default_range was searched and the range fitted to it.'),
    now: instant,
    revision: z.string().describe('Changes whenever something shown changes; also the weak ETag.'),
    truncated: z.object({ deploys: z.boolean(), alerts: z.boolean() }).describe('The range held more than limit.'),
    limit: z.number().int().describe('At most this many deploys and this many alerts, the latest.'),
    lanes: z.array(
      z.object({ service: z.string().nullable(), deploys: z.array(z.string()), alerts: z.array(z.string()) }),
    ),
    deploys: z.array(
      deploySchema.extend({
        key: z.string(),
        what: z.string(),
        inRange: z.boolean().describe('False for a deploy before the range that an alert in it was attributed to.'),
        alerts: z.array(z.string()).describe('Keys of the alerts attributed to it.'),
        links: z.array(link),
        verdict: z
          .object({ status: z.enum(['pending', 'healthy', 'failing']), detail: z.string().optional() })
          .nullable(),
        changeCount: z.number().int().describe('Changes of the stored event; `changes` lists the first few.'),
        hostCount: z.number().int(),
        clipped: z.boolean().describe("Texts or lists were cut to the view's bounds: href has all of it."),
        href: z.string().describe('GET /v1/deploys/{id}: the whole stored event.'),
      }),
    ),
    alerts: z.array(
      z.object({
        key: z.string(),
        fingerprint: z.string(),
        alertname: z.string(),
        service: z.string().nullable(),
        environment: z.string(),
        status: z.enum(['firing', 'resolved']),
        startsAt: episodeInstant,
        endsAt: instant.nullable(),
        paged: z.enum(['author', 'oncall', 'ambiguous', 'shadow']),
        pagedText: z.string(),
        deployKey: z.string().nullable(),
        labels,
        annotations: labels,
        generatorURL: z.string(),
        links: z.array(link),
        feedback: z.string().nullable(),
        decision: decisionSchema.extend({ decidedAt: instant }),
        delivery: z
          .object({
            state: z
              .enum(['queued', 'retrying', 'delivered', 'failed', 'none'])
              .describe('Of the page worst off; none: on no page.'),
            pages: z.array(
              z.object({
                target: targetSchema,
                state: z.enum(['queued', 'retrying', 'delivered', 'failed']),
                attempts: z.number().int().describe('Attempts of its latest delivery so far.'),
                lastAttemptAt: instant.nullable(),
                channel: z.string().nullable(),
                lastError: z.string().nullable().describe('What the latest attempt failed with.'),
                deliveredAt: instant.nullable(),
                nextAttemptAt: instant.nullable().describe('While a delivery waits.'),
              }),
            ),
          })
          .describe('How its pages were delivered.'),
        clipped: z.boolean().describe('Labels, annotations or texts were cut: href has all of it.'),
        href: z.string().describe('GET /v1/alerts/{fingerprint}: the stored alert, its pages and every attempt.'),
      }),
    ),
  })
  .describe('What the timeline page draws: the deploys and alerts of a time range, per service.');

export const errorSchema = z.object({
  error: z.enum(Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]]),
  message: z.string(),
  details: z
    .looseObject({ problems: z.array(z.object({ path: z.string(), message: z.string() })).optional() })
    .nullable(),
});

export const healthSchema = z.object({ status: z.literal('ok') });
export const readySchema = z.union([
  z.object({
    status: z.literal('ready'),
    outbox: z.object({
      depth: z.number().int(),
      oldestUndeliveredAgeSeconds: z
        .number()
        .describe('How long the oldest undelivered delivery has waited since it was enqueued, retries included.'),
    }),
  }),
  z.object({ status: z.literal('unavailable'), reason: z.string() }),
]);
