import { describeChange } from './change.js';
import { hostOfInstance } from './correlate.js';
import type { EvidenceVerdict } from './judge.js';
import { clockUtc, humanGap } from './time.js';
import type { AlertStatus, Deploy } from './types.js';

// The canary gate: is this rollout healthy? A pure function of the rollout's stage events, the alert episodes
// whose decisions named one of them, and `now`.
//
// The window judged starts at the LATEST stage event of the rollout (each stage restarts it: docs/semantics.md)
// and lasts `observe`. Whichever stage event's id is asked about, the answer is the rollout's: a pipeline that
// polls the canary's id after promoting to 10 % sees the 10 % window.
//
// Where the service has comparisons and a Prometheus to ask, the metrics judge the rollout too, with the same
// comparison as before a page: `worse` fails it even before any alert fires, and `healthy` needs the window over
// AND the evidence `same` or `better`; without a verdict on the metrics (no data yet, Prometheus unavailable) it
// stays pending, saying why.

export type VerdictState = 'pending' | 'healthy' | 'failing' | 'rolled_back';

/** The rollback that undid a rollout: the earliest one of any of its events. */
/** A rollback deploy: its id, its time and the version it went back to. */
export interface RollbackFact {
  rollbackId: string;
  at: number;
  version: string;
}

/** An alert episode attributed to a change event: what the store keeps of it that the gate needs. */
export interface AttributedAlert {
  fingerprint: string;
  startsAt: string;
  startsAtMs: number;
  endsAtMs?: number;
  status: AlertStatus;
  labels: Record<string, string>;
  decision: { deployId?: string; reason: string; sentence: string };
}

/** Why an attributed alert does not count against this window. */
export type NotJudged = 'resolved_before_window' | 'started_after_window' | 'started_after_rollback';

export interface VerdictInput {
  /** The stage events of one rollout, oldest first (store.rolloutOf). */
  rollout: readonly Deploy[];
  /** Episodes whose decision names any of the rollout's events. */
  attributed: readonly AttributedAlert[];
  observeMs: number;
  /** Extra wait after the window before `healthy`, for alerts still on their way (group_wait, group_interval). */
  settleMs: number;
  /** The service's clock skew allowance: correlation accepts alerts that start this long before a deploy. */
  skewMs: number;
  now: number;
  /** Set when a rollback undid the rollout: the answer is then final, whatever the window says. */
  rolledBack?: RollbackFact;
  /** The metrics of the new version against the old over the window so far; absent where none are compared. */
  evidence?: { verdict: EvidenceVerdict; sentence: string };
}

export interface Verdict {
  state: VerdictState;
  sentence: string;
  /** The stage event whose `at` opened the window. */
  latest: Deploy;
  rolledBack?: RollbackFact;
  window: { from: number; to: number; decidedAt: number };
  /** Alerts that make the rollout fail: started in the window, or still firing from an earlier stage. */
  counted: AttributedAlert[];
  notJudged: { alert: AttributedAlert; why: NotJudged }[];
}

export function judge(input: VerdictInput): Verdict {
  const { rollout, observeMs, settleMs, skewMs, now } = input;
  const latest = rollout[rollout.length - 1];
  if (!latest) throw new Error('a rollout has at least one event');
  const from = latest.at;
  const to = from + observeMs;
  const decidedAt = to + settleMs;
  const ids = new Set(rollout.map((d) => d.id));

  const counted: AttributedAlert[] = [];
  const notJudged: Verdict['notJudged'] = [];
  const rolledBack = input.rolledBack;
  for (const alert of [...input.attributed].sort((a, b) => a.startsAtMs - b.startsAtMs)) {
    if (alert.decision.deployId === undefined || !ids.has(alert.decision.deployId)) continue;
    // Started after the rollback: the change no longer ran (correlation paged on-call, after_rollback).
    if (rolledBack && alert.startsAtMs >= rolledBack.at) notJudged.push({ alert, why: 'started_after_rollback' });
    else if (alert.startsAtMs > to) notJudged.push({ alert, why: 'started_after_window' });
    // Correlation lets an alert start up to the skew before a deploy; the window honours the same allowance.
    else if (alert.startsAtMs >= from - skewMs) counted.push(alert);
    // From an earlier stage: it counts while it still fires, since promoting over a burning canary is the
    // mistake the gate exists to stop; once resolved, the promotion was a decision someone made.
    else if (alert.status === 'firing') counted.push(alert);
    else notJudged.push({ alert, why: 'resolved_before_window' });
  }

  // A rollback is final, whatever the window or the metrics say.
  const evidence = rolledBack ? undefined : input.evidence;
  const metricsWorse = evidence?.verdict === 'worse';
  const metricsClear = !evidence || evidence.verdict === 'same' || evidence.verdict === 'better';
  const state: VerdictState = rolledBack
    ? 'rolled_back'
    : counted.length > 0 || metricsWorse
      ? 'failing'
      : now < decidedAt || !metricsClear
        ? 'pending'
        : 'healthy';
  const said = sentence(state, latest, counted, { from, to, decidedAt }, now, { metricsWorse, rolledBack });
  return {
    state,
    sentence: evidence ? `${said} ${evidenceWords(evidence, state, now >= decidedAt)}` : said,
    latest,
    ...(rolledBack ? { rolledBack } : {}),
    window: { from, to, decidedAt },
    counted,
    notJudged,
  };
}

/** What the metrics say, after the alerts' sentence. */
function evidenceWords(
  evidence: { verdict: EvidenceVerdict; sentence: string },
  state: VerdictState,
  windowOver: boolean,
): string {
  switch (evidence.verdict) {
    case 'worse':
      return `The metrics are worse: ${evidence.sentence}.`;
    case 'same':
    case 'better':
      return `The metrics are ${evidence.verdict === 'same' ? 'no worse' : 'better'}: ${evidence.sentence}.`;
    default:
      return state === 'pending' && windowOver
        ? `Not healthy until the metrics can be judged (${evidence.verdict}): ${evidence.sentence}.`
        : `The metrics cannot be judged yet (${evidence.verdict}): ${evidence.sentence}.`;
  }
}

function sentence(
  state: VerdictState,
  latest: Deploy,
  counted: readonly AttributedAlert[],
  w: { from: number; to: number; decidedAt: number },
  now: number,
  why: { metricsWorse: boolean; rolledBack?: RollbackFact | undefined },
): string {
  const stage =
    latest.stage === 'full'
      ? 'full rollout'
      : `${latest.stage}${latest.percent !== undefined ? ` ${latest.percent}%` : ''}`;
  const what = `${latest.service} ${describeChange(latest)} (${stage}) in ${latest.environment}`;
  if (why.rolledBack) {
    const before =
      counted.length > 0
        ? ` after ${counted.length} alert${counted.length === 1 ? '' : 's'} attributed to it (${counted.slice(0, 3).map(describeAlert).join('; ')}${counted.length > 3 ? `; and ${counted.length - 3} more` : ''})`
        : '';
    return `${what} was rolled back to ${why.rolledBack.version} at ${clockUtc(why.rolledBack.at)} by deploy ${why.rolledBack.rollbackId}${before}.`;
  }
  if (state === 'failing' && counted.length === 0 && why.metricsWorse) {
    return `${what} is failing on its metrics, before any alert was attributed to it.`;
  }
  if (state === 'failing') {
    const shown = counted.slice(0, 3).map(describeAlert).join('; ');
    const more = counted.length > 3 ? `; and ${counted.length - 3} more` : '';
    return `${what} is failing: ${counted.length} alert${counted.length === 1 ? '' : 's'} attributed to it (${shown}${more}).`;
  }
  if (state === 'pending' && now >= w.decidedAt) {
    return `${what}: no alert was attributed to it from ${clockUtc(w.from)} to ${clockUtc(w.to)}.`;
  }
  if (state === 'pending') {
    return `${what}: no alert attributed so far; the window from ${clockUtc(w.from)} to ${clockUtc(w.to)} is decided in ${humanGap(Math.max(0, w.decidedAt - now))}.`;
  }
  return `${what} is healthy: no alert was attributed to it from ${clockUtc(w.from)} to ${clockUtc(w.to)}.`;
}

function describeAlert(a: AttributedAlert): string {
  const name = a.labels.alertname ?? 'alert';
  const host = a.labels.pod ?? a.labels.host ?? (a.labels.instance ? hostOfInstance(a.labels.instance) : undefined);
  return `${name}${host ? ` on ${host}` : ''} since ${clockUtc(a.startsAtMs)}${a.status === 'resolved' ? ', resolved' : ''}`;
}
