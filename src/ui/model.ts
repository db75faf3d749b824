import { createHash } from 'node:crypto';
import { describeChange, kindOf } from '../core/change.js';
import { type AlertDelivery, alertDelivery } from '../core/delivery-status.js';
import { type ChangeFact, changeFact, type DecidedEpisode, HygieneTally, type ServiceHygiene } from '../core/stats.js';
import type { ChangeKind, Decision, Deploy, Identity } from '../core/types.js';
import type { DeploySummary, EpisodeRecord, PageDeliveryRecord } from '../store/store.js';
import { type Bounds, boundDeploy, boundEpisode, MAX_URL_CHARS } from './bound.js';
import { clip, safeHref } from './html.js';
import type { TimelineRange } from './range.js';

// The timeline's view model: what the page draws and GET /v1/timeline returns, built from stored deploys and
// episodes, each bounded (bound.ts) so that no single event can make a view large. Pure: the store reads happen
// in routes.ts, `now` is passed in.

/** Who was paged, as the page colours it. */
export type Paged = 'author' | 'oncall' | 'ambiguous' | 'shadow' | 'nobody';

export const PAGED_LABEL: Record<Paged, string> = {
  author: 'author paged',
  oncall: 'on-call paged',
  ambiguous: 'ambiguous: on-call paged',
  shadow: 'shadow: on-call paged',
  nobody: 'nobody paged',
};

export interface Link {
  label: string;
  href: string;
}

export interface TimelineDeploy {
  /** Stable across refreshes and safe in an id attribute: "d" and a digest of the deploy id. */
  key: string;
  /** Bounded: at most the view's number of changes and hosts, texts cut. */
  deploy: Deploy;
  /** How many changes and hosts the stored event has. */
  changeCount: number;
  hostCount: number;
  /** Something was cut: `href` has all of it. */
  clipped: boolean;
  /** GET /v1/deploys/{id}: the whole stored event. */
  href: string;
  /** deploy (the default), flag, config: whatever the stored event says it was. */
  kind: ChangeKind;
  /** "deploy 2026.11.26-3f2a9c1", "flag new-checkout turned on", "config change db.pool". */
  what: string;
  /** False for a deploy before the range that an alert in it was attributed to. */
  inRange: boolean;
  /** Its lead time for changes, over all its changes (the view may show only some). */
  leadMs?: number;
  authors: Identity[];
  links: Link[];
  /** Keys of the alerts in view attributed to this deploy. */
  alerts: string[];
  /** The canary verdict (pending, healthy, failing, rolled_back) when the service can judge one. */
  verdict?: DeployVerdict;
  /** For a rollback: the keys of the deploys it undid that are in view. */
  undid?: string[];
  /** The key of the rollback in view that undid this deploy. */
  rolledBackBy?: string;
}

export interface DeployVerdict {
  status: string;
  detail?: string;
}

export interface TimelineAlert {
  /** Stable across refreshes: "a" and the episode id. */
  key: string;
  /** Bounded: labels, annotations and texts cut. */
  episode: EpisodeRecord;
  /** Something was cut: `href` has all of it. */
  clipped: boolean;
  /** GET /v1/alerts/{fingerprint}: the whole stored alert, its pages and every delivery attempt. */
  href: string;
  /** Whether its pages reached PagerDuty (or the log), are being retried, or failed. */
  delivery: AlertDelivery;
  alertname: string;
  /** The lane: the decision's service, or undefined when the alert had no service label. */
  service: string | undefined;
  paged: Paged;
  /** Who was paged, in words: "alice@example.com", "on-call; told alice@example.com". */
  pagedText: string;
  /** Undefined while firing. */
  endMs: number | undefined;
  deployKey?: string;
  links: Link[];
  /** What a person said about the decision ("not my change"), in words. */
  feedbackText?: string;
}

export interface Lane {
  service: string | undefined;
  name: string;
  deploys: TimelineDeploy[];
  alerts: TimelineAlert[];
  /** The four keys of the service over the range, from the deploys and alerts in view (core/stats.ts). */
  keys?: FourKeys;
}

export type FourKeys = Pick<
  ServiceHygiene,
  'deploys' | 'deploymentsPerDay' | 'leadTimeSeconds' | 'changeFailureRate' | 'timeToRestoreSeconds'
>;

export interface Timeline {
  range: TimelineRange;
  now: number;
  lanes: Lane[];
  deploys: TimelineDeploy[];
  alerts: TimelineAlert[];
  truncated: { deploys: boolean; alerts: boolean };
  /** Changes whenever something shown changes (a new deploy or episode, a resolve, feedback), not with `now`. */
  revision: string;
}

export const NO_SERVICE = '(no service label)';

/**
 * The four keys of one lane, counted as /v1/stats counts them (core/stats.ts), from what the view holds: its
 * deploys in the range and the alerts that started in it. A truncated view counts only what it shows.
 */
function fourKeys(lane: Lane, range: TimelineRange): FourKeys | undefined {
  const tally = new HygieneTally(range.to - range.from);
  const events = lane.deploys
    .filter((d) => d.inRange)
    .map((d): ChangeFact => {
      const { leadMs: _shown, ...fact } = changeFact(d.deploy);
      return d.leadMs === undefined
        ? { ...fact, changeCount: d.changeCount }
        : { ...fact, changeCount: d.changeCount, leadMs: d.leadMs };
    })
    .sort((a, b) => a.at - b.at || a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const byKey = new Map(lane.deploys.map((d) => [d.deploy.id, d]));
  const episodes = lane.alerts
    .filter((a) => a.episode.startsAtMs >= range.from && a.episode.startsAtMs <= range.to)
    .map((a): DecidedEpisode => {
      const e = a.episode;
      const ep: DecidedEpisode = {
        service: lane.service as string,
        startsAtMs: e.startsAtMs,
        notMine: Boolean(e.decision.feedback),
      };
      if (e.status === 'resolved' && e.endsAtMs !== undefined) ep.endsAtMs = e.endsAtMs;
      const deploy = e.decision.deployId === undefined ? undefined : byKey.get(e.decision.deployId);
      if (e.decision.deployId !== undefined) ep.deployId = e.decision.deployId;
      if (deploy) {
        ep.deployKind = deploy.kind;
        ep.deployAt = deploy.deploy.at;
      }
      return ep;
    });
  tally.add({ events, episodes, feedbackRecorded: true });
  const [s] = tally.services();
  if (!s) return undefined;
  const { deploys, deploymentsPerDay, leadTimeSeconds, changeFailureRate, timeToRestoreSeconds } = s;
  return { deploys, deploymentsPerDay, leadTimeSeconds, changeFailureRate, timeToRestoreSeconds };
}

/** Derives who was paged from the stored decision: the reason first, then its targets. */
export function pagedOf(decision: Pick<Decision, 'reason' | 'targets'>): Paged {
  if (decision.reason === 'shadow') return 'shadow';
  // First seen already resolved: the problem was over, nobody was paged or told.
  if (decision.targets.length === 0) return 'nobody';
  if (decision.reason === 'ambiguous_bundle') return 'ambiguous';
  if (decision.targets.some((t) => t.kind === 'person')) return 'author';
  return 'oncall';
}

function pagedText(decision: Decision): string {
  const people = decision.targets.flatMap((t) => (t.kind === 'person' ? [t.email] : []));
  const oncall = decision.targets.some((t) => t.kind === 'oncall');
  const paged = [...people, ...(oncall ? ['on-call'] : [])].join(' and ') || 'nobody';
  const told = decision.notify.filter((e) => !people.includes(e));
  const would = decision.wouldPage.flatMap((t) => (t.kind === 'person' ? [t.email] : ['on-call']));
  const parts = [paged];
  if (would.length > 0) parts.push(`would have paged ${would.join(' and ')}`);
  if (told.length > 0) parts.push(`told ${told.join(', ')}`);
  return parts.join('; ');
}

export function deployKey(id: string): string {
  return `d${createHash('sha256').update(id).digest('hex').slice(0, 16)}`;
}

export function personName(p: Identity | undefined): string {
  if (!p) return 'unknown';
  return p.name ?? p.email ?? p.login ?? 'unknown';
}

/** An http(s) URL short enough to link whole. */
function linkable(url: string | undefined): string | undefined {
  return url !== undefined && url.length <= MAX_URL_CHARS ? safeHref(url) : undefined;
}

function changeLinks(deploy: Deploy): Link[] {
  const links: Link[] = [];
  for (const c of deploy.changes) {
    const pr = safeHref(c.pullRequest?.url);
    if (pr)
      links.push({ label: `PR${c.pullRequest?.number === undefined ? '' : ` #${c.pullRequest.number}`}`, href: pr });
    const commit = safeHref(c.commit?.url);
    if (commit) links.push({ label: `commit${c.commit?.sha ? ` ${c.commit.sha.slice(0, 8)}` : ''}`, href: commit });
  }
  return links;
}

// Annotation names people use for runbooks and dashboards (Prometheus has no standard; these are the common ones).
const RUNBOOK_KEYS = ['runbook_url', 'runbook', 'runbookURL', 'runbook_link'];
const DASHBOARD_KEYS = ['dashboard_url', 'dashboard', 'grafana_url'];

/** Links from the stored alert itself: a runbook URL is longer than a label value the view shows. */
function alertLinks(e: EpisodeRecord, deploy: TimelineDeploy | undefined): Link[] {
  const links: Link[] = [];
  const first = (keys: string[]) => keys.map((k) => linkable(e.annotations[k])).find((u) => u !== undefined);
  const runbook = first(RUNBOOK_KEYS);
  if (runbook) links.push({ label: 'runbook', href: runbook });
  const dashboard = first(DASHBOARD_KEYS);
  if (dashboard) links.push({ label: 'dashboard', href: dashboard });
  const source = linkable(e.generatorURL);
  if (source) links.push({ label: 'source (generatorURL)', href: source });
  const am = linkable(e.externalURL);
  if (am) links.push({ label: 'Alertmanager', href: am });
  if (deploy) links.push(...deploy.links);
  return links;
}

function feedbackText(e: EpisodeRecord): string | undefined {
  const feedback = (e.decision as { feedback?: unknown }).feedback;
  if (typeof feedback !== 'object' || feedback === null) return undefined;
  const f = feedback as { kind?: unknown; by?: unknown; at?: unknown };
  const what = f.kind === 'not_my_change' ? 'not my change' : String(f.kind ?? 'feedback');
  const at = typeof f.at === 'number' ? ` at ${new Date(f.at).toISOString()}` : '';
  return `${typeof f.by === 'string' ? f.by : 'someone'} said: ${what}${at}`;
}

/** An error a notifier recorded can quote the vendor's answer: it is cut like any other text. */
function boundDelivery(d: AlertDelivery, bounds: Bounds): AlertDelivery {
  return {
    state: d.state,
    pages: d.pages.map((p) => {
      if (p.attempt?.error === undefined) return p;
      return { ...p, attempt: { ...p.attempt, error: clip(p.attempt.error, bounds.maxTextChars) } };
    }),
  };
}

export interface TimelineInput {
  range: TimelineRange;
  now: number;
  /** Deploys in the range, plus deploys before it that an episode in it was attributed to. */
  deploys: readonly DeploySummary[];
  episodes: readonly EpisodeRecord[];
  /** The pages of those episodes and their deliveries. */
  deliveries?: readonly PageDeliveryRecord[];
  truncated: { deploys: boolean; alerts: boolean };
  verdicts?: ReadonlyMap<string, DeployVerdict>;
  bounds: Bounds;
}

export function buildTimeline(input: TimelineInput): Timeline {
  const { range, now, bounds } = input;
  const byId = new Map<string, TimelineDeploy>();
  const summaries = [...input.deploys].sort(
    (a, b) => a.deploy.at - b.deploy.at || a.deploy.receivedAt - b.deploy.receivedAt,
  );
  for (const summary of summaries) {
    if (byId.has(summary.deploy.id)) continue;
    const { value: d, clipped } = boundDeploy(summary, bounds);
    const td: TimelineDeploy = {
      key: deployKey(d.id),
      deploy: d,
      changeCount: summary.changeCount,
      hostCount: summary.hostCount,
      clipped,
      href: `/v1/deploys/${encodeURIComponent(d.id)}`,
      kind: kindOf(d),
      what: describeChange(d),
      inRange: d.at >= range.from && d.at <= range.to,
      authors: d.changes.map((c) => c.author),
      links: changeLinks(d),
      alerts: [],
    };
    const verdict = input.verdicts?.get(d.id);
    if (verdict) td.verdict = verdict;
    if (summary.leadMs !== undefined) td.leadMs = summary.leadMs;
    byId.set(d.id, td);
  }

  // Rollbacks and what they undid, among the deploys in view: the page draws an arc from one to the other.
  for (const td of byId.values()) {
    const of = td.deploy.rollback?.of;
    if (!of) continue;
    td.undid = [];
    for (const id of of) {
      const undone = byId.get(id);
      if (!undone) continue;
      td.undid.push(undone.key);
      undone.rolledBackBy ??= td.key;
    }
  }

  const pagesOf = new Map<number, PageDeliveryRecord[]>();
  for (const p of input.deliveries ?? []) {
    const pages = pagesOf.get(p.episodeId) ?? [];
    pages.push(p);
    pagesOf.set(p.episodeId, pages);
  }
  const alerts = [...input.episodes]
    .sort((a, b) => a.startsAtMs - b.startsAtMs || a.id - b.id)
    .map((stored): TimelineAlert => {
      const { value: e, clipped } = boundEpisode(stored, bounds);
      const deploy = e.decision.deployId === undefined ? undefined : byId.get(e.decision.deployId);
      const alert: TimelineAlert = {
        key: `a${e.id}`,
        episode: e,
        clipped,
        href: `/v1/alerts/${encodeURIComponent(e.fingerprint)}`,
        delivery: boundDelivery(alertDelivery(pagesOf.get(e.id) ?? []), bounds),
        alertname: e.labels.alertname ?? e.fingerprint,
        service: e.decision.service,
        paged: pagedOf(e.decision),
        pagedText: pagedText(e.decision),
        endMs: e.status === 'resolved' ? (e.endsAtMs ?? e.lastSeenAt) : undefined,
        links: alertLinks(stored, deploy),
      };
      if (deploy) {
        alert.deployKey = deploy.key;
        deploy.alerts.push(alert.key);
      }
      const feedback = feedbackText(e);
      if (feedback) alert.feedbackText = feedback;
      return alert;
    });
  const deploys = [...byId.values()];

  const lanes = new Map<string, Lane>();
  const laneOf = (service: string | undefined) => {
    // Keyed apart from names: a service may well be called "(no service label)".
    const id = service === undefined ? 'none' : `service:${service}`;
    let lane = lanes.get(id);
    if (!lane) {
      lane = { service, name: service ?? NO_SERVICE, deploys: [], alerts: [] };
      lanes.set(id, lane);
    }
    return lane;
  };
  for (const d of deploys) laneOf(d.deploy.service).deploys.push(d);
  for (const a of alerts) laneOf(a.service).alerts.push(a);
  for (const lane of lanes.values()) {
    if (lane.service !== undefined) lane.keys = fourKeys(lane, range);
  }
  const sorted = [...lanes.values()].sort((a, b) =>
    a.service === undefined ? 1 : b.service === undefined ? -1 : a.service.localeCompare(b.service),
  );

  return {
    range,
    now,
    lanes: sorted,
    deploys,
    alerts,
    truncated: input.truncated,
    revision: revisionOf(deploys, alerts, input.truncated),
  };
}

function revisionOf(deploys: TimelineDeploy[], alerts: TimelineAlert[], truncated: Timeline['truncated']): string {
  const hash = createHash('sha256');
  for (const d of deploys) hash.update(`d|${d.deploy.id}|${d.deploy.receivedAt}|${d.verdict?.status ?? ''}\n`);
  for (const a of alerts) {
    const e = a.episode;
    hash.update(`a|${e.id}|${e.status}|${e.endsAtMs ?? ''}|${a.feedbackText ?? ''}\n`);
    for (const p of a.delivery.pages) hash.update(`p|${p.state}|${p.attempt?.number ?? ''}|${p.attempt?.at ?? ''}\n`);
  }
  hash.update(`t|${truncated.deploys}|${truncated.alerts}`);
  return hash.digest('hex').slice(0, 20);
}
