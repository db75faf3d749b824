import { describeChange, kindOf } from '../../core/change.js';
import { clip, more, truncate } from '../../core/clip.js';
import { hostOfInstance } from '../../core/correlate.js';
import { clockUtc } from '../../core/time.js';
import type { Change, Deploy, Identity } from '../../core/types.js';
import type { EpisodeRecord, PageWithMembers, RolledBack } from '../../store/store.js';
import type { ChangeBody, EventBody } from './client.js';

// Pure builders of what PagerDuty receives for a page. The mapping of labels and annotations follows
// Alertmanager's own PagerDuty integration (notify/pagerduty/pagerduty.go and its default templates): a
// "[FIRING:n] group" summary, severity from the severity label, links from generatorURL and runbook_url.
//
// Everything from an alert or a deploy event is bounded: a label can be a megabyte, a deploy can carry a thousand
// changes, and PagerDuty refuses an event over 512 KB. An event is built as generously as fits in the size it is
// given, and what is left out is said (alerts_not_shown, "… and 940 more changes", "(12,345 more characters)").

/** PagerDuty's limit on an Events API body, in bytes of JSON. */
export const EVENT_MAX_BYTES = 512_000;
const SUMMARY_MAX = 1024; // Events API v2 limit
const TITLE_MAX = 255;
/** source, component, group, class: short names in PagerDuty's incident view. */
const FIELD_MAX = 255;
/** A longer URL is left out rather than cut: half a URL leads nowhere. */
const URL_MAX = 2048;
/** The incident body and its notes: what a person reads on a phone, well under anything PagerDuty takes. */
const TEXT_MAX = 24_000;
const TEXT_REASONS = 10;
const TEXT_ALERTS = 50;
const TEXT_CHANGES = 20;
const TEXT_VALUE_MAX = 512;
const SENTENCE_MAX = 1024;

/** How much of a page an event shows, from generous to sparse: the first step that fits is sent. */
interface Detail {
  alerts: number;
  changes: number;
  reasons: number;
  /** Labels, and annotations, shown per alert. */
  entries: number;
  valueChars: number;
}
const DETAIL: readonly Detail[] = [
  { alerts: 50, changes: 20, reasons: 10, entries: 40, valueChars: 1024 },
  { alerts: 20, changes: 10, reasons: 5, entries: 20, valueChars: 256 },
  { alerts: 5, changes: 3, reasons: 2, entries: 10, valueChars: 64 },
  { alerts: 0, changes: 0, reasons: 1, entries: 0, valueChars: 64 },
];

export interface PageContext extends PageWithMembers {
  /** The deploys the members' decisions name, by id. */
  deploys: ReadonlyMap<string, Deploy>;
  /** The filled compare link of the page's deploy, when the service has a template. */
  compareUrl?: string;
}

export interface EventOptions {
  /** Why a person's page went to on-call instead. */
  fallbackReason?: string;
  /** The size the event must fit, in bytes of JSON; PagerDuty's limit when absent. */
  maxBytes?: number;
  /** Where people reach changepager (config external_url), for links back to it. */
  externalUrl?: string;
}

/** The trigger event of a page, as complete as fits in `maxBytes`; the minimal form when nothing else does. */
export function eventTrigger(ctx: PageContext, routingKey: string, opts: EventOptions = {}): EventBody {
  const maxBytes = opts.maxBytes ?? EVENT_MAX_BYTES;
  for (const detail of DETAIL) {
    const body = trigger(ctx, routingKey, opts, detail);
    if (jsonBytes(body) <= maxBytes) return body;
  }
  return eventMinimal(ctx, routingKey, { ...opts, why: 'the full page did not fit in the size PagerDuty accepts' });
}

/**
 * The smallest trigger that still reaches on-call, for when PagerDuty refused the full one: summary, source,
 * severity and dedup key, with links back to changepager where everything else is, and a line saying why.
 */
export function eventMinimal(
  ctx: PageWithMembers,
  routingKey: string,
  opts: { externalUrl?: string; why?: string } = {},
): EventBody {
  const { body } = triggerHead(ctx, routingKey, opts.externalUrl);
  if (opts.why && body.payload) {
    const where = opts.externalUrl ? 'changepager (linked here)' : 'changepager (GET /v1/alerts/{fingerprint})';
    body.payload.custom_details = {
      note: truncate(`A short form of the page: ${opts.why}. The alerts and the deploy are in ${where}.`, 1024),
    };
  }
  return body;
}

export function eventResolve(ctx: PageWithMembers, routingKey: string): EventBody {
  return { routing_key: routingKey, event_action: 'resolve', dedup_key: ctx.page.dedupKey };
}

/** POST /incidents body: an incident on the service, assigned to one user, deduplicated by the page's key. */
export function incidentCreate(
  ctx: PageContext,
  serviceId: string,
  userId: string,
  externalUrl?: string,
): Record<string, unknown> {
  return {
    type: 'incident',
    title: truncate(headline(ctx), TITLE_MAX),
    service: { id: serviceId, type: 'service_reference' },
    urgency: 'high',
    incident_key: ctx.page.dedupKey,
    assignments: [{ assignee: { id: userId, type: 'user_reference' } }],
    body: { type: 'incident_body', details: incidentDetails(ctx, externalUrl) },
  };
}

/** The incident body: everything the paged author needs to judge their change, as plain text, bounded. */
export function incidentDetails(ctx: PageContext, externalUrl?: string): string {
  const lines: string[] = [];
  const reasons = unique(ctx.members.map((m) => m.decision.sentence));
  lines.push(...shownAndMore(reasons, TEXT_REASONS, 'reasons', (r) => [clip(r, SENTENCE_MAX)]), '', 'Alerts:');
  lines.push(...shownAndMore(ctx.members, TEXT_ALERTS, 'alerts', alertLines));
  const deploy = pageDeploy(ctx);
  if (deploy) {
    lines.push('', ...deployLines(deploy));
    if (ctx.compareUrl && ctx.compareUrl.length <= URL_MAX)
      lines.push(`Compare old and new, side by side (GO HERE): ${ctx.compareUrl}`);
  }
  const back = changepagerLinks(ctx, externalUrl);
  if (back.length > 0) lines.push('', ...back.map((l) => `${l.text}: ${l.href}`));
  return fitLines(lines, TEXT_MAX);
}

/** A note for alerts that joined an open incident, bounded like the incident body. */
export function joinedNote(joined: readonly EpisodeRecord[]): string {
  return fitLines(
    [`${joined.length} more alert(s) joined this page:`, ...shownAndMore(joined, TEXT_ALERTS, 'alerts', alertLines)],
    TEXT_MAX,
  );
}

/** A note saying the deploy an incident is about was rolled back: the change no longer runs. */
export function rollbackNote(rollbacks: readonly RolledBack[]): string {
  const lines = rollbacks.map(
    (r) =>
      `Rolled back to ${clip(r.version, 200)} at ${clockUtc(r.at)} by deploy ${clip(r.rollbackId, 256)}: deploy ${clip(r.deployId, 256)}, which this incident is about, no longer runs.`,
  );
  return fitLines(lines, TEXT_MAX);
}

/** The evidence of alerts judged after their incident was created: the verdict and the numbers, per alert. */
export function evidenceNote(members: readonly EpisodeRecord[]): string {
  const lines = members.flatMap((m) => {
    const ev = m.decision.evidence;
    if (!ev) return [];
    const name = m.labels.alertname ?? m.fingerprint;
    return [`${name}: ${ev.verdict}: ${ev.sentence}`];
  });
  return fitLines(['Evidence judged after this page went out (it re-routes nobody):', ...lines], TEXT_MAX);
}

/** A deploy as a PagerDuty change event, as complete as fits in `maxBytes`. */
export function changeEvent(deploy: Deploy, routingKey: string, maxBytes = EVENT_MAX_BYTES): ChangeBody {
  for (const detail of DETAIL) {
    const body = changeBody(deploy, routingKey, detail);
    if (jsonBytes(body) <= maxBytes) return body;
  }
  const body = changeBody(deploy, routingKey, { alerts: 0, changes: 0, reasons: 0, entries: 0, valueChars: 64 });
  return { ...body, payload: { ...body.payload, custom_details: { deploy_id: deploy.id } }, links: [] };
}

/**
 * What every trigger of a page carries, the minimal one included: the dedup key, summary, source and severity,
 * and the links back to changepager.
 */
function triggerHead(ctx: PageWithMembers, routingKey: string, externalUrl: string | undefined) {
  const shown = shownMembers(ctx);
  const body: EventBody = {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: ctx.page.dedupKey,
    payload: {
      summary: truncate(headline(ctx), SUMMARY_MAX),
      source: truncate(source(shown, ctx.page.service), FIELD_MAX),
      severity: severity(shown),
    },
    links: changepagerLinks(ctx, externalUrl),
    client: 'changepager',
    ...(externalUrl ? { client_url: externalUrl } : {}),
  };
  return { body, shown };
}

function trigger(ctx: PageContext, routingKey: string, opts: EventOptions, detail: Detail): EventBody {
  const firing = ctx.members.filter((m) => m.status === 'firing');
  const { body: head, shown } = triggerHead(ctx, routingKey, opts.externalUrl);
  const first = shown[0];
  const deploy = pageDeploy(ctx);
  const reasons = unique(ctx.members.map((m) => m.decision.sentence));
  const value = (text: string) => clip(text, detail.valueChars);
  const body: EventBody = {
    ...head,
    payload: {
      ...(head.payload as NonNullable<EventBody['payload']>),
      component: truncate(common(shown, 'component') ?? ctx.page.service ?? 'unknown', FIELD_MAX),
      group: truncate(common(shown, 'group') ?? common(shown, 'team') ?? ctx.page.environment, FIELD_MAX),
      class: truncate(common(shown, 'class') ?? common(shown, 'alertname') ?? 'alert', FIELD_MAX),
      custom_details: {
        why: reasons.slice(0, detail.reasons).map((r) => clip(r, SENTENCE_MAX)),
        ...(reasons.length > detail.reasons ? { why_not_shown: reasons.length - detail.reasons } : {}),
        ...(opts.fallbackReason ? { fallback_reason: clip(opts.fallbackReason, SENTENCE_MAX) } : {}),
        page: {
          target: value(ctx.page.target.kind === 'person' ? ctx.page.target.email : 'on-call'),
          service: value(ctx.page.service),
          environment: value(ctx.page.environment),
          group_key: value(ctx.page.groupKey),
        },
        num_firing: firing.length,
        num_resolved: ctx.members.length - firing.length,
        alerts: ctx.members.slice(0, detail.alerts).map((m) => alertDetails(m, detail)),
        ...(ctx.members.length > detail.alerts ? { alerts_not_shown: ctx.members.length - detail.alerts } : {}),
        ...(deploy ? { deploy: deployDetails(deploy, detail) } : {}),
      },
    },
    links: [...links(ctx, first, deploy), ...(head.links ?? [])],
  };
  if (first?.startsAtMs !== undefined && body.payload)
    body.payload.timestamp = new Date(first.startsAtMs).toISOString();
  return body;
}

function changeBody(deploy: Deploy, routingKey: string, detail: Detail): ChangeBody {
  const value = (text: string) => clip(text, detail.valueChars);
  const change = deploy.changes.length === 1 ? deploy.changes[0] : undefined;
  const authors = unique(deploy.changes.map((c) => c.author.email ?? c.author.login));
  const who =
    authors.length <= 3
      ? authors.join(', ')
      : `${authors.slice(0, 3).join(', ')} ${more(authors.length - 3, 'authors')}`;
  const what =
    kindOf(deploy) === 'deploy'
      ? `${deploy.service} ${deploy.version} deployed to ${deploy.environment} (${deploy.stage}) by ${who}`
      : `${deploy.service} ${describeChange(deploy)} in ${deploy.environment} (${deploy.stage}) by ${who}`;
  const out: { href: string; text: string }[] = [];
  const add = (href: string | undefined, text: string) => {
    if (href && href.length <= URL_MAX) out.push({ href, text });
  };
  add(change?.pullRequest?.url, `Pull request${change?.pullRequest?.number ? ` #${change.pullRequest.number}` : ''}`);
  add(change?.commit?.url, 'Commit');
  const details = deployDetails(deploy, detail);
  return {
    routing_key: routingKey,
    payload: {
      summary: truncate(what, SUMMARY_MAX),
      source: 'changepager',
      timestamp: new Date(deploy.at).toISOString(),
      custom_details: {
        deploy_id: deploy.id,
        kind: details.kind,
        ...(details.flag ? { flag: details.flag } : {}),
        ...(details.config ? { config: details.config } : {}),
        version: details.version,
        previous_version: details.previous_version,
        stage: deploy.stage,
        hosts: deploy.hosts.slice(0, detail.changes).map(value),
        ...(deploy.hosts.length > detail.changes ? { hosts_not_shown: deploy.hosts.length - detail.changes } : {}),
        changes: details.changes,
        ...(details.changes_not_shown ? { changes_not_shown: details.changes_not_shown } : {}),
      },
    },
    links: out,
  };
}

function headline(ctx: PageWithMembers): string {
  const firing = ctx.members.filter((m) => m.status === 'firing').length;
  // Each part is cut early: the summary is truncated to 1,024 characters anyway, and a label can be a megabyte.
  const names = unique(ctx.members.map((m) => truncate(m.labels.alertname ?? 'alert', SUMMARY_MAX))).slice(0, 20);
  const summary = ctx.members.map((m) => m.annotations.summary).find((s) => s);
  const where = ctx.page.service ? ` on ${truncate(ctx.page.service, SUMMARY_MAX)}` : '';
  return `[FIRING:${firing}] ${truncate(names.join(', '), SUMMARY_MAX)}${where}${summary ? `: ${truncate(summary, SUMMARY_MAX)}` : ''}`;
}

/** The members a page is about: the firing ones, or all once none fires. */
function shownMembers(ctx: PageWithMembers): EpisodeRecord[] {
  const firing = ctx.members.filter((m) => m.status === 'firing');
  return firing.length > 0 ? firing : ctx.members;
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
  ).map((h) => truncate(h, FIELD_MAX));
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
    if (href && isLink(href) && !out.some((l) => l.href === href)) out.push({ href, text });
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

/** Links to the page's first alert and its service's timeline in changepager, when its address is configured. */
function changepagerLinks(ctx: PageWithMembers, externalUrl: string | undefined) {
  const first = shownMembers(ctx)[0];
  if (!externalUrl || !first) return [];
  const service = ctx.page.service;
  return [
    {
      href: `${externalUrl}/v1/alerts/${encodeURIComponent(first.fingerprint)}`,
      text: 'This alert in changepager: decision, pages and deliveries',
    },
    ...(service
      ? [{ href: `${externalUrl}/services/${encodeURIComponent(service)}`, text: 'Timeline in changepager' }]
      : []),
  ].filter((l) => isLink(l.href));
}

function isLink(href: string): boolean {
  return href.length <= URL_MAX && /^https?:\/\//i.test(href);
}

function alertDetails(m: EpisodeRecord, detail: Detail) {
  const labels = entries(m.labels, detail);
  const annotations = entries(m.annotations, detail);
  return {
    status: m.status,
    starts_at: m.startsAt,
    labels: labels.shown,
    ...(labels.notShown > 0 ? { labels_not_shown: labels.notShown } : {}),
    annotations: annotations.shown,
    ...(annotations.notShown > 0 ? { annotations_not_shown: annotations.notShown } : {}),
    reason: m.decision.reason,
  };
}

/** The first `detail.entries` of a label set, names and values clipped, and how many were left out. */
function entries(record: Record<string, string>, detail: Detail) {
  const all = Object.entries(record);
  const shown: Record<string, string> = {};
  for (const [name, value] of all.slice(0, detail.entries)) {
    shown[clip(name, detail.valueChars)] = clip(value, detail.valueChars);
  }
  return { shown, notShown: all.length - Math.min(all.length, detail.entries) };
}

function deployDetails(d: Deploy, detail: Detail) {
  const value = (text: string) => clip(text, detail.valueChars);
  const flagValue = (v: string | number | boolean) => (typeof v === 'string' ? value(v) : v);
  return {
    id: d.id,
    kind: kindOf(d),
    ...(d.flag
      ? {
          flag: {
            key: value(d.flag.key),
            ...(d.flag.from === undefined ? {} : { from: flagValue(d.flag.from) }),
            to: flagValue(d.flag.to),
          },
        }
      : {}),
    ...(d.config
      ? {
          config: {
            ...(d.config.key === undefined ? {} : { key: value(d.config.key) }),
            ...(d.config.description === undefined ? {} : { description: value(d.config.description) }),
          },
        }
      : {}),
    service: value(d.service),
    environment: value(d.environment),
    version: value(d.version),
    previous_version: d.previousVersion === undefined ? null : value(d.previousVersion),
    stage: d.stage,
    percent: d.percent ?? null,
    at: new Date(d.at).toISOString(),
    changes: d.changes.slice(0, detail.changes).map((c) => changeDetails(c, value)),
    ...(d.changes.length > detail.changes ? { changes_not_shown: d.changes.length - detail.changes } : {}),
  };
}

/** A change with only the fields changepager knows, each clipped: deploy systems may send more. */
function changeDetails(c: Change, value: (text: string) => string) {
  const person = (p: Identity) => ({
    ...(p.email === undefined ? {} : { email: value(p.email) }),
    ...(p.login === undefined ? {} : { login: value(p.login) }),
    ...(p.name === undefined ? {} : { name: value(p.name) }),
  });
  const url = (u: string | undefined) => (u !== undefined && u.length <= URL_MAX ? { url: u } : {});
  return {
    author: person(c.author),
    ...(c.mergedBy ? { mergedBy: person(c.mergedBy) } : {}),
    ...(c.commit
      ? {
          commit: {
            ...(c.commit.sha === undefined ? {} : { sha: value(c.commit.sha) }),
            ...url(c.commit.url),
            ...(c.commit.message === undefined ? {} : { message: value(c.commit.message) }),
          },
        }
      : {}),
    ...(c.pullRequest
      ? {
          pullRequest: {
            ...(c.pullRequest.number === undefined ? {} : { number: c.pullRequest.number }),
            ...url(c.pullRequest.url),
            ...(c.pullRequest.title === undefined ? {} : { title: value(c.pullRequest.title) }),
          },
        }
      : {}),
  };
}

function alertLines(m: EpisodeRecord): string[] {
  const value = (text: string) => clip(text, TEXT_VALUE_MAX);
  const sev = m.labels.severity ? ` (${value(m.labels.severity)})` : '';
  const where = m.labels.instance ?? m.labels.pod ?? m.labels.host;
  const lines = [
    `- ${value(m.labels.alertname ?? 'alert')}${sev}${where ? ` on ${value(where)}` : ''}: ${value(m.annotations.summary ?? m.annotations.description ?? '')} (started ${clockUtc(m.startsAtMs)}${m.status === 'resolved' ? ', resolved' : ''})`,
  ];
  const runbook = m.annotations.runbook_url;
  if (runbook && runbook.length <= URL_MAX) lines.push(`  Runbook: ${runbook}`);
  if (m.generatorURL && m.generatorURL.length <= URL_MAX) lines.push(`  Prometheus: ${m.generatorURL}`);
  return lines;
}

function deployLines(d: Deploy): string[] {
  const value = (text: string) => clip(text, TEXT_VALUE_MAX);
  const stage = d.stage === 'full' ? 'full rollout' : `${d.stage}${d.percent !== undefined ? ` ${d.percent}%` : ''}`;
  // A flag flip or config change reads as what it is ("flag new-checkout turned on"), not as a version.
  const what =
    kindOf(d) === 'deploy'
      ? `Deploy: ${value(d.service)} ${value(d.version)}${d.previousVersion ? ` (was ${value(d.previousVersion)})` : ''} to ${value(d.environment)}`
      : `Change: ${value(d.service)} ${value(describeChange(d))} in ${value(d.environment)}`;
  const changeLines = (c: Change) => {
    const who = c.author.email ?? c.author.login ?? c.author.name ?? 'unknown';
    const merged = c.mergedBy ? `, merged by ${value(c.mergedBy.email ?? c.mergedBy.login ?? '')}` : '';
    const lines = [`Change by ${value(who)}${merged}`];
    if (c.pullRequest?.url && c.pullRequest.url.length <= URL_MAX)
      lines.push(`  Pull request: ${value(c.pullRequest.title ?? '')} ${c.pullRequest.url}`);
    if (c.commit?.url && c.commit.url.length <= URL_MAX)
      lines.push(`  Commit: ${value(c.commit.message ?? c.commit.sha ?? '')} ${c.commit.url}`);
    return lines;
  };
  return [
    `${what}, ${stage}, at ${clockUtc(d.at)} (id ${d.id})`,
    ...shownAndMore(d.changes, TEXT_CHANGES, 'changes', changeLines),
  ];
}

/** The lines of the first `max` items, then "… and 940 more changes" when there are more. */
function shownAndMore<T>(items: readonly T[], max: number, what: string, toLines: (item: T) => string[]): string[] {
  const lines = items.slice(0, max).flatMap(toLines);
  if (items.length > max) lines.push(more(items.length - max, what));
  return lines;
}

/** Whole lines up to `max` characters in all; what does not fit is counted in a last line. */
function fitLines(lines: readonly string[], max: number): string {
  const kept: string[] = [];
  let size = 0;
  for (const [i, line] of lines.entries()) {
    if (size + line.length + 1 > max - 40) {
      kept.push(more(lines.length - i, 'lines'));
      break;
    }
    kept.push(line);
    size += line.length + 1;
  }
  return kept.join('\n');
}

/** The size of a request body as sent: UTF-8 bytes of its JSON. */
function jsonBytes(body: unknown): number {
  return Buffer.byteLength(JSON.stringify(body), 'utf8');
}

function unique(values: readonly (string | undefined)[]): string[] {
  return [...new Set(values.filter((v): v is string => v !== undefined && v !== ''))];
}
