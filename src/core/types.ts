// Domain types. Wire formats (Alertmanager JSON, deploy JSON, YAML config) are mapped onto these at the edges
// (src/ingest, src/config); nothing in src/core knows about HTTP, SQL or zod.

export type Stage = 'canary' | 'partial' | 'full';

/** Someone named in a change: the author or the merger. At least one of email and login is set. */
export interface Identity {
  email?: string;
  login?: string;
  name?: string;
}

export interface Change {
  author: Identity;
  mergedBy?: Identity;
  commit?: { sha?: string; url?: string; message?: string };
  pullRequest?: { number?: number; url?: string; title?: string };
}

/** What changed: a new version of the code, a feature flag flipped, or a configuration change. */
export type ChangeKind = 'deploy' | 'flag' | 'config';

/** A flag value as flag systems report it. */
export type FlagValue = boolean | string | number;

/** A feature flag flip: `from` is absent for a flag that did not exist before. */
export interface FlagChange {
  key: string;
  from?: FlagValue;
  to: FlagValue;
}

/** A configuration change: at least one of key and description is set. */
export interface ConfigChange {
  key?: string;
  description?: string;
}

/** The code hosts whose webhooks changepager reads (src/channels/github, src/channels/gitlab). */
export const CODE_HOSTS = ['github', 'gitlab'] as const;
export type CodeHostName = (typeof CODE_HOSTS)[number];

/**
 * Where a deploy reported by a code host's webhook came from, and how far changepager got in finding what it
 * shipped: the webhook names only a commit, the changes (pull or merge requests, authors, mergers) come from the
 * host's API afterwards.
 */
export interface CodeHostSource {
  host: CodeHostName;
  repository: string;
  /** The deployed commit. */
  sha: string;
  /** The commit of the previous deploy of the same repository to the same environment, when changepager has one. */
  previousSha?: string;
  deploymentId: string;
  /** The host's name of the environment deployed to (changepager's is the deploy's `environment`). */
  hostEnvironment?: string;
  /** The webhook delivery that reported it. */
  deliveryId: string;
  /** The host's page comparing the previous deploy's commit with this one. */
  compareUrl?: string;
  /** A link to the deployment on the host. */
  url?: string;
  /** pending: only what the webhook said is known; found: changes are the host's; unavailable: it never said. */
  changes: 'pending' | 'found' | 'unavailable';
  /** Why the changes are unavailable, or what finding them came to. */
  detail?: string;
}

export interface Deploy {
  id: string;
  /** Absent means 'deploy' (events stored before kinds existed, and deploys built in tests). */
  kind?: ChangeKind;
  /** Set when kind is 'flag'. */
  flag?: FlagChange;
  /** Set when kind is 'config'. */
  config?: ConfigChange;
  service: string;
  environment: string;
  /**
   * The version that shipped. Flags and config changes need not send one: ingest derives `flag:<key>=<to>`
   * (so the stages of one flag rollout share it, as a deploy's stages share theirs) and `config:<key>@<at>`
   * (each config change its own rollout, unless the sender gives its stages one version).
   */
  version: string;
  previousVersion?: string;
  stage: Stage;
  percent?: number;
  /** Empty: the deploy claims every instance of the service. Otherwise only alerts from these hosts. */
  hosts: string[];
  /** Epoch milliseconds. */
  at: number;
  receivedAt: number;
  changes: Change[];
  /** Set for a deploy reported by a code host's webhook. */
  source?: CodeHostSource;
}

export type AlertStatus = 'firing' | 'resolved';

/** One alert as Alertmanager reported it, with the group it arrived in. */
export interface Alert {
  fingerprint: string;
  /** Canonical UTC form of Alertmanager's startsAt, nanoseconds kept: with the fingerprint it names an episode. */
  startsAt: string;
  startsAtMs: number;
  /** Epoch ms; undefined while firing (Alertmanager sends Go's zero time then). */
  endsAtMs?: number;
  status: AlertStatus;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  generatorURL: string;
}

export interface AlertGroup {
  groupKey: string;
  receiver: string;
  externalURL: string;
  truncatedAlerts: number;
  alerts: Alert[];
}

export type PolicyMode = 'author' | 'author+oncall' | 'notify' | 'shadow' | 'off';

export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

export interface WorkingHours {
  days: Weekday[];
  /** Minutes after local midnight; end may be smaller than start for hours that span midnight. */
  startMinute: number;
  endMinute: number;
}

export interface Person {
  /** The primary email: how pages and DMs name this person. */
  email: string;
  name?: string;
  /** Other emails this person commits with. */
  emails: string[];
  logins: string[];
  pagerdutyUserId?: string;
  slackUserId?: string;
  timezone?: string;
  workingHours?: WorkingHours;
}

export interface LabelNames {
  service: string[];
  environment: string[];
  /** Labels holding a bare host or pod name; the instance label is also read, without its port. */
  host: string[];
}

export interface ServicePolicy {
  /** Milliseconds before the alert's start in which a deploy is a suspect. */
  windowMs: number;
  /** Milliseconds after the alert's start a deploy may still be stamped, for clocks that disagree. */
  skewMs: number;
  mode: PolicyMode;
  includeMerger: boolean;
  /** The most people one decision DMs; the rest are counted in its sentence, not messaged. */
  maxDms: number;
  labels: LabelNames;
  /** URL template of the side-by-side comparison of old and new version (core/links.ts fills it). */
  compareUrl?: string;
}

/** Who receives a page. On-call is the service's normal PagerDuty route; a person is paged directly. */
export type Target = { kind: 'oncall' } | { kind: 'person'; email: string };

/** A person changepager has named for a decision, with the role they played in the change. */
export interface Suspect {
  role: 'author' | 'merger';
  identity: Identity;
  /** The configured person this identity resolved to, when there is one. */
  email?: string;
}

export type ReasonCode =
  | 'author_paged'
  | 'author_and_oncall_paged'
  | 'author_notified'
  | 'shadow'
  | 'author_outside_working_hours'
  | 'ambiguous_bundle'
  | 'changes_unknown'
  | 'no_deploy_in_window'
  | 'alert_started_before_deploy'
  | 'canary_host_mismatch'
  | 'no_service_label'
  | 'no_person_for_author'
  | 'policy_off'
  | 'correlation_error'
  | 'resolved_before_seen';

/** What changepager decided for one alert episode, and why. Pure data: see core/correlate.ts. */
export interface Decision {
  reason: ReasonCode;
  /** One sentence a paged engineer understands. */
  sentence: string;
  service?: string;
  environment: string;
  policy: PolicyMode;
  deployId?: string;
  suspects: Suspect[];
  /** Pages to open or join. Never empty for a firing alert: on-call is the floor. Empty for one first seen resolved. */
  targets: Target[];
  /** Emails of people added as responders to the owner's page (the merger, when policy includes them). */
  responders: string[];
  /** Emails of people to DM about it (authors, merger), whether or not they are paged. */
  notify: string[];
  /** In shadow mode: whom changepager would have paged. */
  wouldPage: Target[];
  /**
   * The code host whose pull or merge request gets a comment about the pages this decision opens (set by the
   * pipeline from the deploy and the channels that are on; kept on the page, not with the decision).
   */
  comment?: CodeHostName;
}
