import { z } from 'zod';
import { canonicalInstant } from '../core/time.js';
import type { Alert, AlertGroup } from '../core/types.js';
import { ApiError } from '../errors.js';
import { nextTurn, slicesOf } from '../slices.js';
import { problemsOf, rfc3339 } from './validate.js';

// Alertmanager's webhook payload, version 4 (notify/webhook/webhook.go, template/template.go). Fields newer
// releases add (notification_reason, routeLabels) are ignored: looseObject keeps the schema forward compatible.

const labelSet = z.record(z.string(), z.string());
// Go encodes time.Time as RFC 3339 with up to nine fractional digits, sometimes with a non-Z offset.
const timestamp = rfc3339;

const wireAlert = z.looseObject({
  status: z.enum(['firing', 'resolved']),
  labels: labelSet,
  annotations: labelSet.default({}),
  startsAt: timestamp,
  endsAt: timestamp.optional(),
  generatorURL: z.string().default(''),
  fingerprint: z.string().regex(/^[0-9a-zA-Z]{1,64}$/, { error: 'must be the alert fingerprint Alertmanager sends' }),
});

export const alertmanagerPayload = z.looseObject({
  version: z.literal('4', { error: 'only Alertmanager webhook payload version "4" is supported' }),
  groupKey: z.string().min(1),
  status: z.enum(['firing', 'resolved']),
  receiver: z.string().default(''),
  externalURL: z.string().default(''),
  truncatedAlerts: z.number().int().min(0).default(0),
  groupLabels: labelSet.optional(),
  commonLabels: labelSet.optional(),
  commonAnnotations: labelSet.optional(),
  alerts: z.array(wireAlert),
});

export type AlertmanagerPayload = z.output<typeof alertmanagerPayload>;

/** The payload with its alerts left unchecked: they are checked in slices (parseAlertGroup). */
const envelope = alertmanagerPayload.extend({ alerts: z.array(z.unknown()) });
const alertSlice = z.array(wireAlert);

/**
 * Validates an Alertmanager payload and maps it onto the domain group, as parseBody(alertmanagerPayload) and
 * toAlertGroup would, but a slice of alerts at a time with a turn of the event loop between slices: a
 * notification of 48,000 alerts must not hold up every other request. Every problem is listed, at its path.
 */
export async function parseAlertGroup(body: unknown): Promise<AlertGroup> {
  const head = envelope.safeParse(body);
  const issues = head.success ? [] : [...head.error.issues];
  const wire = head.success ? head.data.alerts : alertsOf(body);
  const alerts: Alert[] = [];
  for (const slice of slicesOf(wire)) {
    const checked = alertSlice.safeParse(slice.items);
    if (checked.success) alerts.push(...checked.data.map(toAlert));
    else {
      for (const issue of checked.error.issues) {
        issues.push({ ...issue, path: ['alerts', slice.offset + Number(issue.path[0]), ...issue.path.slice(1)] });
      }
    }
    await nextTurn();
  }
  if (!head.success || issues.length > 0) {
    throw new ApiError('invalid_payload', undefined, { problems: problemsOf(new z.ZodError(issues)) });
  }
  return {
    groupKey: head.data.groupKey,
    receiver: head.data.receiver,
    externalURL: head.data.externalURL,
    truncatedAlerts: head.data.truncatedAlerts,
    alerts,
  };
}

/** The alerts of a payload whose other fields are wrong, so that their problems are listed too. */
function alertsOf(body: unknown): unknown[] {
  const alerts = (body as { alerts?: unknown } | null)?.alerts;
  return Array.isArray(alerts) ? alerts : [];
}

/** Maps the validated wire payload onto the domain group. */
export function toAlertGroup(payload: AlertmanagerPayload): AlertGroup {
  return {
    groupKey: payload.groupKey,
    receiver: payload.receiver,
    externalURL: payload.externalURL,
    truncatedAlerts: payload.truncatedAlerts,
    alerts: payload.alerts.map(toAlert),
  };
}

function toAlert(wire: AlertmanagerPayload['alerts'][number]): Alert {
  // The schema checked both timestamps, so canonicalInstant cannot fail here.
  const starts = canonicalInstant(wire.startsAt) as { iso: string; ms: number };
  const alert: Alert = {
    fingerprint: wire.fingerprint,
    startsAt: starts.iso,
    startsAtMs: starts.ms,
    status: wire.status,
    labels: wire.labels,
    annotations: wire.annotations,
    generatorURL: wire.generatorURL,
  };
  // A firing alert's endsAt is Go's zero time, "0001-01-01T00:00:00Z": no end yet.
  const ends = wire.endsAt === undefined ? undefined : canonicalInstant(wire.endsAt);
  if (ends && !ends.iso.startsWith('0001-')) alert.endsAtMs = ends.ms;
  return alert;
}
