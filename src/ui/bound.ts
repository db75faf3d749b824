import type { Change, Deploy, FlagValue, Identity, Suspect, Target } from '../core/types.js';
import type { DeploySummary, EpisodeRecord } from '../store/store.js';
import { clip } from './html.js';

// What a view shows of one deploy or one alert is bounded, however large the event it was sent: every received
// text cut to maxTextChars, lists to maxChanges entries (labels and annotations to LABELS_SHOWN), and a URL too
// long for a browser left out (a cut URL is a broken link). Whatever was cut is whole in the full record
// (GET /v1/deploys/{id}, GET /v1/alerts/{fingerprint}), which the view links when it cut something. Pure: it
// copies, and never changes what it is given.

export interface Bounds {
  maxChanges: number;
  maxTextChars: number;
}

/** Longer URLs are left out rather than cut. */
export const MAX_URL_CHARS = 2048;
/** Labels, and annotations, listed per alert: alerts carry a dozen or two. */
export const LABELS_SHOWN = 64;
/** changepager's own sentences quote received texts (a version, emails): they get room for a few of them. */
const PROSE_TEXTS = 4;

export interface Bounded<T> {
  value: T;
  /** Something was cut or left out: the view links the full record. */
  clipped: boolean;
}

/** Cuts texts and lists to the bounds, remembering whether it had to. */
function cutter(bounds: Bounds) {
  let clipped = false;
  const text = (s: string, max = bounds.maxTextChars): string => {
    const out = clip(s, max);
    if (out !== s) clipped = true;
    return out;
  };
  return {
    text,
    prose: (s: string) => text(s, bounds.maxTextChars * PROSE_TEXTS),
    url(s: string | undefined): string | undefined {
      if (s === undefined || s.length <= MAX_URL_CHARS) return s;
      clipped = true;
      return undefined;
    },
    list<T>(items: readonly T[], max = bounds.maxChanges): T[] {
      if (items.length > max) clipped = true;
      return items.slice(0, max);
    },
    /** `flag` is set when something was cut before (in the store, say). */
    note(flag: boolean) {
      if (flag) clipped = true;
    },
    clipped: () => clipped,
  };
}

type Cut = ReturnType<typeof cutter>;

function identity(cut: Cut, p: Identity): Identity {
  const out: Identity = {};
  if (p.email !== undefined) out.email = cut.text(p.email);
  if (p.login !== undefined) out.login = cut.text(p.login);
  if (p.name !== undefined) out.name = cut.text(p.name);
  return out;
}

function change(cut: Cut, c: Change): Change {
  const out: Change = { author: identity(cut, c.author) };
  if (c.mergedBy) out.mergedBy = identity(cut, c.mergedBy);
  if (c.commit) {
    const { sha, url, message } = c.commit;
    const commit: NonNullable<Change['commit']> = {};
    if (sha !== undefined) commit.sha = cut.text(sha);
    const href = cut.url(url);
    if (href !== undefined) commit.url = href;
    if (message !== undefined) commit.message = cut.text(message);
    out.commit = commit;
  }
  if (c.pullRequest) {
    const { number, url, title } = c.pullRequest;
    const pr: NonNullable<Change['pullRequest']> = {};
    if (number !== undefined) pr.number = number;
    const href = cut.url(url);
    if (href !== undefined) pr.url = href;
    if (title !== undefined) pr.title = cut.text(title);
    out.pullRequest = pr;
  }
  if (c.committedAt !== undefined) out.committedAt = c.committedAt;
  if (c.mergedAt !== undefined) out.mergedAt = c.mergedAt;
  return out;
}

const flagValue = (cut: Cut, v: FlagValue): FlagValue => (typeof v === 'string' ? cut.text(v) : v);

export function boundDeploy(summary: DeploySummary, bounds: Bounds): Bounded<Deploy> {
  const d = summary.deploy;
  const cut = cutter(bounds);
  cut.note(summary.changeCount > d.changes.length || summary.hostCount > d.hosts.length);
  const out: Deploy = {
    id: d.id,
    service: cut.text(d.service),
    environment: cut.text(d.environment),
    version: cut.text(d.version),
    stage: d.stage,
    hosts: cut.list(d.hosts).map((h) => cut.text(h)),
    at: d.at,
    receivedAt: d.receivedAt,
    changes: cut.list(d.changes).map((c) => change(cut, c)),
  };
  if (d.kind !== undefined) out.kind = d.kind;
  if (d.previousVersion !== undefined) out.previousVersion = cut.text(d.previousVersion);
  if (d.percent !== undefined) out.percent = d.percent;
  if (d.rollback) out.rollback = { of: cut.list(d.rollback.of), explicit: d.rollback.explicit };
  if (d.flag) {
    const { key, from, to } = d.flag;
    out.flag = { key: cut.text(key), to: flagValue(cut, to) };
    if (from !== undefined) out.flag.from = flagValue(cut, from);
  }
  if (d.config) {
    out.config = {};
    if (d.config.key !== undefined) out.config.key = cut.text(d.config.key);
    if (d.config.description !== undefined) out.config.description = cut.text(d.config.description);
  }
  return { value: out, clipped: cut.clipped() };
}

function record(cut: Cut, values: Record<string, string>): Record<string, string> {
  const entries = cut.list(Object.entries(values), LABELS_SHOWN);
  return Object.fromEntries(entries.map(([k, v]) => [cut.text(k), cut.text(v)]));
}

function target(cut: Cut, t: Target): Target {
  return t.kind === 'person' ? { kind: 'person', email: cut.text(t.email) } : t;
}

function decision(cut: Cut, d: EpisodeRecord['decision']): EpisodeRecord['decision'] {
  const out: EpisodeRecord['decision'] = {
    reason: d.reason,
    sentence: cut.prose(d.sentence),
    environment: cut.text(d.environment),
    policy: d.policy,
    suspects: cut.list(d.suspects).map((s) => {
      const suspect: Suspect = { role: s.role, identity: identity(cut, s.identity) };
      if (s.email !== undefined) suspect.email = cut.text(s.email);
      return suspect;
    }),
    targets: cut.list(d.targets).map((t) => target(cut, t)),
    responders: cut.list(d.responders).map((r) => cut.text(r)),
    notify: cut.list(d.notify).map((e) => cut.text(e)),
    wouldPage: cut.list(d.wouldPage).map((t) => target(cut, t)),
    decidedAt: d.decidedAt,
  };
  if (d.service !== undefined) out.service = cut.text(d.service);
  if (d.deployId !== undefined) out.deployId = d.deployId;
  if (d.feedback) out.feedback = { ...d.feedback, by: cut.text(d.feedback.by) };
  // Bounded where it was made: a handful of comparisons, a sentence each, at most 60 points a side.
  if (d.evidence) out.evidence = { ...d.evidence, sentence: cut.prose(d.evidence.sentence) };
  return out;
}

export function boundEpisode(e: EpisodeRecord, bounds: Bounds): Bounded<EpisodeRecord> {
  const cut = cutter(bounds);
  const out: EpisodeRecord = {
    id: e.id,
    fingerprint: e.fingerprint,
    startsAt: e.startsAt,
    startsAtMs: e.startsAtMs,
    status: e.status,
    labels: record(cut, e.labels),
    annotations: record(cut, e.annotations),
    generatorURL: cut.url(e.generatorURL) ?? '',
    groupKey: cut.text(e.groupKey),
    receiver: cut.text(e.receiver),
    externalURL: cut.url(e.externalURL) ?? '',
    firstSeenAt: e.firstSeenAt,
    lastSeenAt: e.lastSeenAt,
    decision: decision(cut, e.decision),
  };
  if (e.endsAtMs !== undefined) out.endsAtMs = e.endsAtMs;
  // The name the view goes by, even when the label was not among those listed.
  if (e.labels.alertname !== undefined) out.labels.alertname = cut.text(e.labels.alertname);
  return { value: out, clipped: cut.clipped() };
}
