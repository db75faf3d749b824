import { describeChange, kindOf } from '../../core/change.js';
import { hostOfInstance } from '../../core/correlate.js';
import { clockUtc } from '../../core/time.js';
import type { Deploy } from '../../core/types.js';
import type { EpisodeRecord, PageWithMembers } from '../../store/store.js';
import type { EventBody } from './client.js';

// Pure builders of what PagerDuty receives for a page. The mapping of labels and annotations follows
// Alertmanager's own PagerDuty integration (notify/pagerduty/pagerduty.go and its default templates): a
// "[FIRING:n] group" summary, severity from the severity label, links from generatorURL and runbook_url.

const SUMMARY_MAX = 1024; // Events API v2 limit
const TITLE_MAX = 255;
const DETAILS_ALERTS_MAX = 50; // keeps an event well under the 512 KB payload limit even for huge groups

export interface PageContext extends PageWithMembers {
  /** The deploys the members' decisions name, by id. */
  deploys: ReadonlyMap<string, Deploy>;
  /** The filled compare link of the page's deploy, when the service has a template. */
  compareUrl?: string;
}

export function eventTrigger(ctx: PageContext, routingKey: string, fallbackReason?: string): EventBody {
  const firing = ctx.members.filter((m) => m.status === 'firing');
  const shown = firing.length > 0 ? firing : ctx.members;
  const first = shown[0];
  const deploy = pageDeploy(ctx);
  const body: EventBody = {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: ctx.page.dedupKey,
    payload: {
      summary: truncate(headline(ctx), SUMMARY_MAX),
      source: source(shown, ctx.page.service),
      severity: severity(shown),
      component: common(shown, 'component') ?? ctx.page.service ?? 'unknown',
      group: common(shown, 'group') ?? common(shown, 'team') ?? ctx.page.environment,
      class: common(shown, 'class') ?? common(shown, 'alertname') ?? 'alert',
      custom_details: {
        why: unique(ctx.members.map((m) => m.decision.sentence)),
        ...(fallbackReason ? { fallback_reason: fallbackReason } : {}),
        page: {
          target: ctx.page.target.kind === 'person' ? ctx.page.target.email : 'on-call',
          service: ctx.page.service,
          environment: ctx.page.environment,
          group_key: ctx.page.groupKey,
        },
        num_firing: firing.length,
        num_resolved: ctx.members.length - firing.length,
        alerts: ctx.members.slice(0, DETAILS_ALERTS_MAX).map(alertDetails),
        ...(ctx.members.length > DETAILS_ALERTS_MAX
          ? { alerts_not_shown: ctx.members.length - DETAILS_ALERTS_MAX }
          : {}),
        ...(deploy ? { deploy: deployDetails(deploy) } : {}),
      },
    },
    links: links(ctx, first, deploy),
    client: 'changepager',
  };
  if (first?.startsAtMs !== undefined && body.payload)
    body.payload.timestamp = new Date(first.startsAtMs).toISOString();
  return body;
}

export function eventResolve(ctx: PageWithMembers, routingKey: string): EventBody {
  return { routing_key: routingKey, event_action: 'resolve', dedup_key: ctx.page.dedupKey };
}

/** POST /incidents body: an incident on the service, assigned to one user, deduplicated by the page's key. */
export function incidentCreate(ctx: PageContext, serviceId: string, userId: string): Record<string, unknown> {
  return {
    type: 'incident',
    title: truncate(headline(ctx), TITLE_MAX),
    service: { id: serviceId, type: 'service_reference' },
    urgency: 'high',
    incident_key: ctx.page.dedupKey,
    assignments: [{ assignee: { id: userId, type: 'user_reference' } }],
    body: { type: 'incident_body', details: incidentDetails(ctx) },
  };
}

/** The incident body: everything the paged author needs to judge their change, as plain text. */
export function incidentDetails(ctx: PageContext): string {
  const lines: string[] = [];
  lines.push(...unique(ctx.members.map((m) => m.decision.sentence)), '', 'Alerts:');
  for (const m of ctx.members.slice(0, DETAILS_ALERTS_MAX)) lines.push(...alertLines(m));
  const deploy = pageDeploy(ctx);
  if (deploy) {
    lines.push('', ...deployLines(deploy));
    if (ctx.compareUrl) lines.push(`Compare old and new, side by side (GO HERE): ${ctx.compareUrl}`);
  }
  return lines.join('\n');
}

/** A note for alerts that joined an open incident. */
export function joinedNote(joined: readonly EpisodeRecord[]): string {
  return [`${joined.length} more alert(s) joined this page:`, ...joined.flatMap(alertLines)].join('\n');
}

function headline(ctx: PageWithMembers): string {
  const firing = ctx.members.filter((m) => m.status === 'firing').length;
  const names = unique(ctx.members.map((m) => m.labels.alertname ?? 'alert'));
  const summary = ctx.members.map((m) => m.annotations.summary).find((s) => s);
  const where = ctx.page.service ? ` on ${ctx.page.service}` : '';
  return `[FIRING:${firing}] ${names.join(', ')}${where}${summary ? `: ${summary}` : ''}`;
}

function pageDeploy(ctx: PageContext): Deploy | undefined {
  const id = ctx.members.map((m) => m.decision.deployId).find((d) => d !== undefined);
  return id === undefined ? undefined : ctx.deploys.get(id);
}

const SEVERITIES = {
  critical: 'critical',
  page: 'critical',
  high: 'error',
  error: 'error',
  warning: 'warning',
  warn: 'warning',
  medium: 'warning',
  info: 'info',
  low: 'info',
  none: 'info',
} as const;
const RANK = ['info', 'warning', 'error', 'critical'] as const;

/** The most severe mapped severity among the alerts; "error" when none says (Alertmanager's default). */
function severity(members: readonly EpisodeRecord[]): 'critical' | 'error' | 'warning' | 'info' {
  let best = -1;
  for (const m of members) {
    const mapped = SEVERITIES[(m.labels.severity ?? '').toLowerCase() as keyof typeof SEVERITIES];
    if (mapped) best = Math.max(best, RANK.indexOf(mapped));
  }
  return best < 0 ? 'error' : (RANK[best] as (typeof RANK)[number]);
}

function source(members: readonly EpisodeRecord[], service: string): string {
  const hosts = unique(
    members.map((m) => m.labels.pod ?? m.labels.host ?? (m.labels.instance && hostOfInstance(m.labels.instance))),
  );
  if (hosts.length === 0) return service || 'changepager';
  return hosts.length <= 3 ? hosts.join(', ') : `${hosts.slice(0, 3).join(', ')} and ${hosts.length - 3} more`;
}

function common(members: readonly EpisodeRecord[], label: string): string | undefined {
  const values = unique(members.map((m) => m.labels[label]));
  return values.length === 1 ? values[0] : undefined;
}

function links(ctx: PageContext, first: EpisodeRecord | undefined, deploy: Deploy | undefined) {
  const out: { href: string; text: string }[] = [];
  const add = (href: string | undefined, text: string) => {
    if (href && /^https?:\/\//i.test(href) && !out.some((l) => l.href === href)) out.push({ href, text });
  };
  add(ctx.compareUrl, 'Compare old and new version (GO HERE)');
  const change = deploy?.changes.length === 1 ? deploy.changes[0] : undefined;
  add(change?.pullRequest?.url, `Pull request${change?.pullRequest?.number ? ` #${change.pullRequest.number}` : ''}`);
  add(change?.commit?.url, 'Commit');
  add(first?.annotations.runbook_url, 'Runbook');
  add(first?.generatorURL, 'Prometheus query');
  add(first?.externalURL, 'Alertmanager');
  return out;
}

function alertDetails(m: EpisodeRecord) {
  return {
    status: m.status,
    starts_at: m.startsAt,
    labels: m.labels,
    annotations: m.annotations,
    reason: m.decision.reason,
  };
}

function deployDetails(d: Deploy) {
  return {
    id: d.id,
    kind: kindOf(d),
    ...(d.flag ? { flag: d.flag } : {}),
    ...(d.config ? { config: d.config } : {}),
    service: d.service,
    environment: d.environment,
    version: d.version,
    previous_version: d.previousVersion ?? null,
    stage: d.stage,
    percent: d.percent ?? null,
    at: new Date(d.at).toISOString(),
    changes: d.changes,
  };
}

function alertLines(m: EpisodeRecord): string[] {
  const sev = m.labels.severity ? ` (${m.labels.severity})` : '';
  const where = m.labels.instance ?? m.labels.pod ?? m.labels.host;
  const lines = [
    `- ${m.labels.alertname ?? 'alert'}${sev}${where ? ` on ${where}` : ''}: ${m.annotations.summary ?? m.annotations.description ?? ''} (started ${clockUtc(m.startsAtMs)}${m.status === 'resolved' ? ', resolved' : ''})`,
  ];
  if (m.annotations.runbook_url) lines.push(`  Runbook: ${m.annotations.runbook_url}`);
  if (m.generatorURL) lines.push(`  Prometheus: ${m.generatorURL}`);
  return lines;
}

function deployLines(d: Deploy): string[] {
  const stage = d.stage === 'full' ? 'full rollout' : `${d.stage}${d.percent !== undefined ? ` ${d.percent}%` : ''}`;
  // A flag flip or config change reads as what it is ("flag new-checkout turned on"), not as a version.
  const what =
    kindOf(d) === 'deploy'
      ? `Deploy: ${d.service} ${d.version}${d.previousVersion ? ` (was ${d.previousVersion})` : ''} to ${d.environment}`
      : `Change: ${d.service} ${describeChange(d)} in ${d.environment}`;
  const lines = [`${what}, ${stage}, at ${clockUtc(d.at)} (id ${d.id})`];
  for (const c of d.changes) {
    const who = c.author.email ?? c.author.login ?? c.author.name ?? 'unknown';
    const merged = c.mergedBy ? `, merged by ${c.mergedBy.email ?? c.mergedBy.login}` : '';
    lines.push(`Change by ${who}${merged}`);
    if (c.pullRequest?.url) lines.push(`  Pull request: ${c.pullRequest.title ?? ''} ${c.pullRequest.url}`);
    if (c.commit?.url) lines.push(`  Commit: ${c.commit.message ?? c.commit.sha ?? ''} ${c.commit.url}`);
  }
  return lines;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function unique(values: readonly (string | undefined)[]): string[] {
  return [...new Set(values.filter((v): v is string => v !== undefined && v !== ''))];
}
