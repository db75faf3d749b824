import { describeChange, kindOf } from './change.js';
import { count } from './clip.js';
import { type Directory, findPerson, isBot, isWorkingTime, resolveEmail } from './people.js';
import { runningAt } from './rollback.js';
import { clockUtc, humanGap } from './time.js';
import type { Alert, Decision, Deploy, Identity, LabelNames, ServicePolicy, Suspect, Target } from './types.js';

/** Where an alert comes from, read off its labels. */
export interface AlertLocation {
  service?: string;
  environment: string;
  /** Host names the alert may be claimed by: the instance label without its port, and the host labels. */
  hosts: string[];
}

/** The deploys that can explain an alert, as the store finds them for (service, environment, startsAt). */
export interface DeployCandidates {
  /** `at` in [startsAt − window, startsAt + skew], latest first. */
  inWindow: Deploy[];
  /** The first deploy after startsAt + skew: its existence means the alert started before it. */
  nextAfter?: Deploy;
  /** The last deploy before startsAt − window, so the reason can say how long ago it was. */
  lastBefore?: Deploy;
}

/**
 * The candidates from a store's three lookups around an alert's start: the window's deploys latest first (the
 * later received first at the same `at`), the first after it, and the last before it, kept only when the window
 * is empty (it only says how long ago the last deploy was). One rule for every store adapter.
 */
export function deployCandidates(found: {
  inWindow: Deploy[];
  after: Deploy | undefined;
  before: Deploy | undefined;
}): DeployCandidates {
  const inWindow = [...found.inWindow].sort((a, b) => b.at - a.at || b.receivedAt - a.receivedAt);
  return {
    inWindow,
    ...(found.after ? { nextAfter: found.after } : {}),
    ...(found.before && inWindow.length === 0 ? { lastBefore: found.before } : {}),
  };
}

export const ONCALL: Target = { kind: 'oncall' };

/**
 * The range of deploy times that can explain an alert that started at `startsAtMs`: the policy's window before
 * it, and the clock skew allowed after it. The store finds the deploys in it (and the nearest on either side).
 */
export function deployWindow(startsAtMs: number, policy: Pick<ServicePolicy, 'windowMs' | 'skewMs'>) {
  return { from: startsAtMs - policy.windowMs, to: startsAtMs + policy.skewMs };
}

export function firstLabel(labels: Record<string, string>, names: readonly string[]): string | undefined {
  for (const name of names) {
    const value = labels[name];
    if (value !== undefined && value !== '') return value;
  }
  return undefined;
}

/** Reads service, environment and hosts off an alert's labels, with the label names policy gives. */
export function locateAlert(
  labels: Record<string, string>,
  serviceLabels: readonly string[],
  policyFor: (service: string | undefined) => ServicePolicy,
  defaultEnvironment: string,
): AlertLocation {
  const service = firstLabel(labels, serviceLabels);
  const names: LabelNames = policyFor(service).labels;
  const environment = firstLabel(labels, names.environment) ?? defaultEnvironment;
  const hosts = new Set<string>();
  const instance = labels.instance;
  if (instance) hosts.add(hostOfInstance(instance));
  for (const name of names.host) {
    const value = labels[name];
    if (value) hosts.add(value);
  }
  return service === undefined ? { environment, hosts: [...hosts] } : { service, environment, hosts: [...hosts] };
}

/** "db1:9100" → "db1", "[::1]:9100" → "::1", "10.0.0.7" → "10.0.0.7", "https://shop.example.com/x" → "shop.example.com". */
export function hostOfInstance(instance: string): string {
  // Blackbox probes use the probed URL as the instance.
  const url = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i.exec(instance);
  if (url?.[1]) return hostOfInstance(url[1].replace(/^[^@]*@/, ''));
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(instance);
  if (bracketed?.[1]) return bracketed[1];
  const colons = instance.split(':').length - 1;
  if (colons === 1) return instance.slice(0, instance.lastIndexOf(':'));
  return instance;
}

export interface CorrelateInput {
  alert: Alert;
  location: AlertLocation;
  candidates: DeployCandidates;
  policy: ServicePolicy;
  directory: Directory;
  now: number;
}

/**
 * Decides whom an alert episode pages, and why. Pure: everything it needs is passed in, `now` included.
 * Any doubt ends in paging on-call: that is what would have happened without changepager.
 */
export function correlate(input: CorrelateInput): Decision {
  const { alert, location, candidates, policy } = input;
  const base = {
    environment: location.environment,
    policy: policy.mode,
    suspects: [],
    responders: [],
    notify: [],
    wouldPage: [],
  };
  const started = clockUtc(alert.startsAtMs);

  if (alert.status === 'resolved') {
    return {
      ...base,
      ...(location.service === undefined ? {} : { service: location.service }),
      ...resolvedBeforeSeen(alert, started),
    };
  }
  if (location.service === undefined) {
    return {
      ...base,
      reason: 'no_service_label',
      sentence: `The alert has none of the labels that name a service, so changepager cannot tell what changed; paging on-call.`,
      targets: [ONCALL],
    };
  }
  const service = location.service;
  const where = { ...base, service };
  if (policy.mode === 'off') {
    return {
      ...where,
      reason: 'policy_off',
      sentence: `changepager is off for ${service}; paging on-call.`,
      targets: [ONCALL],
    };
  }

  const running = runningAt(candidates.inWindow, alert.startsAtMs, (d) => claims(d, location.hosts));
  if (running.kind === 'after_rollback') {
    return { ...where, ...afterRollback(input, service, running.rollback, running.undone, started) };
  }
  if (running.kind === 'no_changes') {
    const d = running.deploy;
    return {
      ...where,
      deployId: d.id,
      reason: 'deploy_without_changes',
      sentence: `${service} ${describeChange(d)} at ${clockUtc(d.at)} named no change (a restart or a configuration-only deploy), so there is nobody whose change it is; the alert started at ${started}, ${gapPhrase(alert.startsAtMs - d.at)}; paging on-call.`,
      targets: [ONCALL],
    };
  }
  if (running.kind === 'none') {
    return { ...where, ...unattributed(input, service, started), targets: [ONCALL] };
  }
  const claimed = running.deploy;
  const undone = running.rolledBackBy;

  const facts = (by: string) =>
    `${service} ${describeChange(claimed)}${by} at ${clockUtc(claimed.at)}; the alert started at ${started}, ${gapPhrase(alert.startsAtMs - claimed.at)}${claimed.hosts.length > 0 ? `, on canary host ${matchedHost(claimed, location.hosts)}` : ''}${undone ? ` (it was rolled back to ${undone.version} at ${clockUtc(undone.at)}, after the alert started)` : ''}`;
  const attributed = { ...where, deployId: claimed.id };

  if (claimed.changes.length === 0) {
    // A code host's webhook stores the deploy at once; what it shipped comes from the host's API afterwards. An
    // alert decided before then cannot name an author, and is not decided again once the changes are known.
    return {
      ...attributed,
      reason: 'changes_unknown',
      sentence: `${facts('')}. ${claimed.source?.changes === 'unavailable' ? `The code host could not say which changes that deploy shipped${claimed.source.detail ? ` (${claimed.source.detail})` : ''}` : 'The code host has not said yet which changes that deploy shipped'}, so changepager cannot tell whose change it is; paging on-call.`,
      targets: [ONCALL],
    };
  }

  if (claimed.changes.length > 1) {
    // A deploy may bundle thousands of changes: the decision names (and DMs) at most maxDms of their authors and
    // counts the rest, so that neither Slack nor the stored decision grows with the bundle.
    const authors = distinctAuthors(claimed, input.directory);
    const named = authors.slice(0, policy.maxDms);
    const rest = authors.length - named.length;
    const names = `${named.map(nameOf).join(', ')}${rest > 0 ? `, … and ${count(rest)} more` : ''}`;
    return {
      ...attributed,
      reason: 'ambiguous_bundle',
      sentence: `${facts('')}. That deploy bundled ${count(claimed.changes.length)} changes (${names}), so it is not clear whose change it is; paging on-call and telling ${rest > 0 ? `the ${named.length} authors named` : 'every author'}.`,
      suspects: named,
      targets: [ONCALL],
      notify: unique(named.map((s) => s.email)),
    };
  }

  return { ...attributed, ...ownerDecision(input, claimed, facts) };
}

type Attribution = Pick<
  Decision,
  'reason' | 'sentence' | 'suspects' | 'targets' | 'responders' | 'notify' | 'wouldPage'
>;

function ownerDecision(input: CorrelateInput, deploy: Deploy, facts: (by: string) => string): Attribution {
  const { policy, directory, now } = input;
  const change = deploy.changes[0];
  if (!change) throw new Error(`deploy ${deploy.id} has no changes`); // the deploy schema requires one
  const author = suspect('author', change.author, directory);
  const merger = change.mergedBy ? suspect('merger', change.mergedBy, directory) : undefined;
  // A bot's change (dependabot, renovate) belongs to the human who merged it.
  const botAuthored = isBot(change.author, directory.bots);
  const owner = botAuthored ? merger : author;
  const suspects = merger && merger.email !== author.email ? [author, merger] : [author];
  const what = facts(
    botAuthored
      ? ` by ${nameOf(author)}, merged by ${merger ? nameOf(merger) : 'nobody named'}`
      : ` by ${nameOf(author)}`,
  );
  const none = { suspects, responders: [], wouldPage: [] };

  if (!owner?.email) {
    return {
      ...none,
      reason: 'no_person_for_author',
      sentence: `${what}. changepager knows no email or person for ${owner ? nameOf(owner) : 'its owner'}; paging on-call.`,
      targets: [ONCALL],
      notify: unique(suspects.map((s) => s.email)).slice(0, policy.maxDms),
    };
  }
  const who = owner.email;
  const ownerTarget: Target = { kind: 'person', email: who };
  const mergerEmail = policy.includeMerger && merger?.email && merger.email !== who ? merger.email : undefined;
  const notify = unique([who, mergerEmail]).slice(0, policy.maxDms);
  const responders = mergerEmail ? [mergerEmail] : [];

  if (policy.mode === 'notify') {
    return {
      ...none,
      reason: 'author_notified',
      sentence: `${what}. This service's policy is notify: paging on-call and telling ${who}.`,
      targets: [ONCALL],
      notify,
    };
  }
  if (policy.mode === 'shadow') {
    return {
      ...none,
      reason: 'shadow',
      sentence: `${what}. Shadow mode: paging on-call; changepager would have paged ${who}.`,
      targets: [ONCALL],
      notify,
      wouldPage: [ownerTarget],
    };
  }
  if (!isWorkingTime(findPerson({ email: who }, directory.people), now)) {
    return {
      ...none,
      reason: 'author_outside_working_hours',
      sentence: `${what}. It is outside ${who}'s working hours, so on-call is paged and ${who} is told.`,
      targets: [ONCALL],
      notify,
    };
  }
  if (policy.mode === 'author+oncall') {
    return {
      ...none,
      reason: 'author_and_oncall_paged',
      sentence: `${what}. Paging ${who} and on-call.`,
      targets: [ownerTarget, ONCALL],
      responders,
      notify,
    };
  }
  return {
    ...none,
    reason: 'author_paged',
    sentence: `${what}. Paging ${who}.`,
    targets: [ownerTarget],
    responders,
    notify,
  };
}

/**
 * An alert whose first notification says it has already resolved. Alertmanager sends a resolved alert after a
 * firing one, so changepager either missed that firing or saw it under another startsAt (the store resolves that
 * episode with this one). The problem is over: paging or telling anyone now would only wake them. No deploy is
 * named either: this is usually the firing already decided under the other startsAt, and the canary verdict and
 * the hygiene numbers would count it twice.
 */
function resolvedBeforeSeen(alert: Alert, started: string): Pick<Decision, 'reason' | 'sentence' | 'targets'> {
  const ended = alert.endsAtMs === undefined ? '' : ` and ended at ${clockUtc(alert.endsAtMs)}`;
  return {
    reason: 'resolved_before_seen',
    sentence: `changepager first saw this alert when it had already resolved (it started at ${started}${ended}), so it paged nobody and told nobody.`,
    targets: [],
  };
}

/**
 * An alert that started after a rollback: the change it undid was no longer running, so it is not the suspect.
 * On-call is paged, as without changepager, and the authors of the undone change are told (they may still want
 * to know), never paged.
 */
function afterRollback(
  input: CorrelateInput,
  service: string,
  rollback: Deploy,
  undone: readonly Deploy[],
  started: string,
): Pick<Decision, 'reason' | 'sentence' | 'deployId' | 'suspects' | 'targets' | 'notify'> {
  const { alert, policy, directory } = input;
  const withChanges = undone.filter((d) => d.changes.length > 0);
  const owners = withChanges.flatMap((d) => ownersOf(d, directory));
  const suspects = [...new Map(owners.map((s) => [nameOf(s).toLowerCase(), s])).values()].slice(0, policy.maxDms);
  const notify = unique(suspects.map((s) => s.email));
  const ids = rollback.rollback?.of ?? [];
  const what =
    withChanges.length > 0
      ? `, undoing ${withChanges
          .slice(0, 3)
          .map(
            (d) =>
              `${describeChange(d)} by ${unique(ownersOf(d, directory).map(nameOf)).join(', ')} (${clockUtc(d.at)})`,
          )
          .join(', ')}${withChanges.length > 3 ? ` and ${count(withChanges.length - 3)} more` : ''}`
      : ids.length > 0
        ? `, undoing ${ids.length === 1 ? `deploy ${ids[0]}` : `${count(ids.length)} deploys`}`
        : '';
  const told = notify.length > 0 ? ` and telling ${notify.join(', ')}` : '';
  const latest = withChanges[0];
  return {
    reason: 'after_rollback',
    sentence: `${service} was rolled back to ${rollback.version} at ${clockUtc(rollback.at)}${what}; the alert started at ${started}, ${humanGap(alert.startsAtMs - rollback.at)} after the rollback, when the rolled-back change was no longer running; paging on-call${told}.`,
    deployId: latest ? latest.id : rollback.id,
    suspects,
    targets: [ONCALL],
    notify,
  };
}

/** Whose changes a deploy carries: each change's author, or its merger for a bot's change. */
function ownersOf(deploy: Deploy, directory: Directory): Suspect[] {
  return deploy.changes.flatMap((c) => {
    if (isBot(c.author, directory.bots)) return c.mergedBy ? [suspect('merger', c.mergedBy, directory)] : [];
    return [suspect('author', c.author, directory)];
  });
}

function unattributed(input: CorrelateInput, service: string, started: string): Pick<Decision, 'reason' | 'sentence'> {
  const { candidates, alert, location, policy } = input;
  const env = location.environment;
  // A rollback stamped after the alert started (within the clock skew): the alert started before it.
  const laterRollback = candidates.inWindow.filter((d) => d.rollback && d.at > alert.startsAtMs).at(-1);
  const canaries = candidates.inWindow.filter((d) => !claims(d, location.hosts));
  if (canaries.length > 0 && !laterRollback) {
    const canary = canaries[0] as Deploy;
    const hosts = location.hosts.length > 0 ? location.hosts.join(', ') : 'no host label';
    return {
      reason: 'canary_host_mismatch',
      sentence: `${service} ${describeChange(canary)} at ${clockUtc(canary.at)} went only to ${canary.hosts.join(', ')}, and the alert (started ${started}) comes from ${hosts}; paging on-call.`,
    };
  }
  const upcoming = laterRollback ?? candidates.nextAfter;
  if (upcoming) {
    const next = upcoming;
    return {
      reason: 'alert_started_before_deploy',
      sentence: `The alert started at ${started}, ${humanGap(next.at - alert.startsAtMs)} before ${service} ${describeChange(next)} at ${clockUtc(next.at)}, so that ${kindOf(next) === 'deploy' ? 'deploy' : 'change'} did not cause it; paging on-call.`,
    };
  }
  const last = candidates.lastBefore;
  const previously = last ? ` (the last was ${last.version}, ${humanGap(alert.startsAtMs - last.at)} before)` : '';
  return {
    reason: 'no_deploy_in_window',
    sentence: `No ${service} deploy to ${env} in the ${humanGap(policy.windowMs)} before the alert started at ${started}${previously}; paging on-call.`,
  };
}

function claims(deploy: Deploy, alertHosts: readonly string[]): boolean {
  return deploy.hosts.length === 0 || alertHosts.some((h) => deploy.hosts.includes(h));
}

function matchedHost(deploy: Deploy, alertHosts: readonly string[]): string {
  return alertHosts.find((h) => deploy.hosts.includes(h)) ?? '';
}

function gapPhrase(ms: number): string {
  if (Math.abs(ms) < 1000) return 'at the same time';
  return ms >= 0 ? `${humanGap(ms)} later` : `${humanGap(ms)} earlier (within the clock skew allowed)`;
}

/** The authors of a deploy's changes, each person once, in the order of their first change. */
function distinctAuthors(deploy: Deploy, directory: Directory): Suspect[] {
  const identities = new Map<string, Identity>();
  for (const { author } of deploy.changes) {
    const key = JSON.stringify([author.email?.toLowerCase(), author.login?.toLowerCase(), author.name]);
    if (!identities.has(key)) identities.set(key, author);
  }
  const people = new Map<string, Suspect>();
  for (const identity of identities.values()) {
    const s = suspect('author', identity, directory);
    const key = nameOf(s).toLowerCase();
    if (!people.has(key)) people.set(key, s);
  }
  return [...people.values()];
}

function suspect(role: Suspect['role'], identity: Identity, directory: Directory): Suspect {
  const email = resolveEmail(identity, directory);
  return email === undefined ? { role, identity } : { role, identity, email };
}

function nameOf(s: Suspect): string {
  return s.email ?? s.identity.email ?? s.identity.login ?? s.identity.name ?? 'unknown';
}

function unique(emails: readonly (string | undefined)[]): string[] {
  return [...new Set(emails.filter((e): e is string => e !== undefined))];
}
