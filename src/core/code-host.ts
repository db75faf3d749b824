import { createHash } from 'node:crypto';
import { clockUtc, humanGap } from './time.js';
import type { CodeHostName, CodeHostSource, Deploy, Stage } from './types.js';

// The rules of code hosts (GitHub, GitLab), whatever the host: which webhook deployments become deploys and with
// what, and what to do about the comment on the pull or merge request of a paged change. Pure: the channels in
// src/channels/ parse and verify the webhooks, ask the hosts' APIs and write the comments.

/** Where a repository's deployments go in changepager: its service, and its environments by the host's name. */
export interface RepositoryRoute {
  service: string;
  environments: Readonly<Record<string, EnvironmentRoute>>;
}

/** A host environment's changepager environment; a stage other than full makes `in_progress` a deploy (a canary). */
export interface EnvironmentRoute {
  environment: string;
  stage?: Stage;
}

/** What a webhook said about a deployment, as the hosts' parsers report it (channels/code-host.ts DeploymentEvent). */
export interface ReportedDeployment {
  host: CodeHostName;
  deliveryId: string;
  repository: string;
  environment: string;
  sha: string;
  state: 'success' | 'in_progress' | 'other';
  deploymentId: string;
  at: number;
  url?: string;
}

export interface HookPlace {
  service: string;
  environment: string;
  stage: Stage;
}

/** Where a reported deployment lands, or why it is not a deploy changepager records (said in a log line). */
export function placeOf(
  event: ReportedDeployment,
  repositories: Readonly<Record<string, RepositoryRoute>>,
): HookPlace | { ignored: string } {
  const route = repositories[event.repository];
  if (!route) return { ignored: `repository ${event.repository} is not configured under ${event.host}.repositories` };
  const env = route.environments[event.environment];
  if (!env) {
    return {
      ignored: `environment ${event.environment} of ${event.repository} is not listed under ${event.host}.repositories.${event.repository}.environments`,
    };
  }
  const stage = env.stage ?? 'full';
  if (event.state === 'success') return { service: route.service, environment: env.environment, stage };
  if (event.state === 'in_progress' && stage !== 'full') {
    return { service: route.service, environment: env.environment, stage };
  }
  return {
    ignored:
      event.state === 'in_progress'
        ? `an in_progress deployment of ${event.environment} is a deploy only where the environment has a stage (a canary)`
        : `deployment state is neither success nor in_progress`,
  };
}

/** A deploy's id from its host deployment: every status of one deployment, and every replay, lands on the same row. */
export function hookDeployId(host: CodeHostName, deploymentId: string): string {
  return `${host}-deployment-${deploymentId}`;
}

/**
 * The deploy a webhook reports, stored at once with what the webhook says: the commit as the version, the previous
 * deploy's version, and no changes yet (the host's API is asked for them afterwards). `previous` is the latest
 * deploy of the same service and environment stored before it.
 */
export function deployFromHook(
  event: ReportedDeployment,
  place: HookPlace,
  previous: Deploy | undefined,
  receivedAt: number,
  compareUrl?: (base: string, head: string) => string,
): Deploy {
  const previousSha =
    previous?.source?.host === event.host && previous.source.repository === event.repository
      ? previous.source.sha
      : undefined;
  const source: CodeHostSource = {
    host: event.host,
    repository: event.repository,
    sha: event.sha,
    deploymentId: event.deploymentId,
    hostEnvironment: event.environment,
    deliveryId: event.deliveryId,
    changes: 'pending',
  };
  if (previousSha !== undefined) {
    source.previousSha = previousSha;
    if (compareUrl && previousSha !== event.sha) source.compareUrl = compareUrl(previousSha, event.sha);
  }
  if (event.url !== undefined) source.url = event.url;
  const deploy: Deploy = {
    id: hookDeployId(event.host, event.deploymentId),
    kind: 'deploy',
    service: place.service,
    environment: place.environment,
    version: event.sha,
    stage: place.stage,
    hosts: [],
    at: event.at,
    receivedAt,
    changes: [],
    source,
  };
  if (previous) deploy.previousVersion = previous.version;
  return deploy;
}

/**
 * Why a code host's deploy ships no change of its own, or undefined when it may ship some. A rollback (the version
 * ran before, or the sender said so) only takes changes away; and when the host's compare from the previous
 * deploy's commit names no commit (`found` is 0 with a `previousSha`), the deploy went back to an earlier commit or
 * deployed the same one again. Either way its changes are known to be none, which is not the host failing to say:
 * the alerts after it are decided by what it undid or redeployed (core/rollback.ts).
 */
export function withoutChanges(
  deploy: Pick<Deploy, 'rollback'>,
  source: Pick<CodeHostSource, 'sha' | 'previousSha'>,
  found?: number,
): string | undefined {
  const short = (sha: string) => sha.slice(0, 12);
  if (deploy.rollback) return `a rollback to ${short(source.sha)}: it ships no change of its own`;
  if (found === 0 && source.previousSha !== undefined && source.previousSha !== source.sha) {
    return `no commit since ${short(source.previousSha)}: a redeploy of an earlier commit ships no change of its own`;
  }
  return undefined;
}

/** What to do about the comment on a change's pull or merge request, given what was written so far. */
export type CommentStep =
  | { do: 'create'; body: string; digest: string }
  | { do: 'edit'; id: string; body: string; digest: string }
  | { do: 'nothing'; why: string };

/** What a host has been told of a page so far: its comment's id and a digest of the text it holds. */
export interface CommentTold {
  id?: string;
  digest?: string;
}

/**
 * The next step for one page's comment: none when the page names no single pull request or comments are off;
 * written once, then edited only when its text changes (the page resolved, someone said "not my change").
 */
export function nextCommentStep(subject: { body: string } | { none: string }, told: CommentTold): CommentStep {
  if ('none' in subject) return { do: 'nothing', why: subject.none };
  const digest = commentDigest(subject.body);
  if (told.id === undefined) return { do: 'create', body: subject.body, digest };
  if (told.digest === digest) return { do: 'nothing', why: 'the comment already says this' };
  return { do: 'edit', id: told.id, body: subject.body, digest };
}

export function commentDigest(body: string): string {
  return createHash('sha256').update(body).digest('hex').slice(0, 16);
}

/** What a comment says about one page. */
export interface CommentFacts {
  /** The alert names of the page's alerts, in order of first firing. */
  alertnames: string[];
  summary?: string;
  service: string;
  environment: string;
  startsAtMs: number;
  deploy: Pick<Deploy, 'at' | 'version' | 'stage'>;
  /** Who was paged: a person's email, or on-call. */
  paged: { kind: 'person'; email: string } | { kind: 'oncall' };
  resolvedAt?: number;
  notMine?: { by: string; at: number };
  incidentUrl?: string;
  /** The host's compare page, previous deploy to this one. */
  compareUrl?: string;
  /** The service's own comparison (dashboard) link, from its compare_url template. */
  dashboardUrl?: string;
  /** Lines of evidence (a judge's verdict per metric), when there are some. */
  evidence?: string[];
}

/**
 * The comment's Markdown. Everything that comes from an alert or a person (alert names, labels, the summary,
 * emails) sits in a code span, where GitHub and GitLab neither mention (@team) nor link nor format; links come
 * only from changepager's own URLs, percent-encoded where Markdown would end them.
 */
export function commentBody(f: CommentFacts): string {
  const names = f.alertnames.length > 0 ? f.alertnames.map(code).join(', ') : code('(unnamed alert)');
  const status = f.resolvedAt !== undefined ? `Resolved at ${clockUtc(f.resolvedAt)}.` : 'Firing.';
  const lines = [
    `**changepager**: ${names} fired in ${code(f.service)} (${code(f.environment)}) at ${clockUtc(f.startsAtMs)}, ${after(f.startsAtMs - f.deploy.at)} the deploy of ${code(short(f.deploy.version))} (${f.deploy.stage}) at ${clockUtc(f.deploy.at)}.`,
    '',
  ];
  if (f.summary) lines.push(`> ${code(f.summary)}`, '');
  lines.push(
    `- Paged: ${f.paged.kind === 'person' ? code(f.paged.email) : 'on-call'}${f.incidentUrl ? ` ([incident](${safeUrl(f.incidentUrl)}))` : ''}`,
    `- Status: ${status}`,
  );
  if (f.notMine)
    lines.push(
      `- ${code(f.notMine.by)} said this is not their change at ${clockUtc(f.notMine.at)}; on-call was paged.`,
    );
  if (f.compareUrl) lines.push(`- [Changes in this deploy](${safeUrl(f.compareUrl)})`);
  if (f.dashboardUrl) lines.push(`- [Compare old and new version](${safeUrl(f.dashboardUrl)})`);
  if (f.evidence && f.evidence.length > 0) {
    lines.push('', 'Evidence:', ...f.evidence.map((e) => `- ${code(e)}`));
  }
  lines.push(
    '',
    '<sub>Written by changepager because this change was deployed shortly before the alert; edited when it resolves.</sub>',
  );
  return lines.join('\n');
}

/** Untrusted text as a Markdown code span: one line, fenced by more backticks than it holds in a row. */
export function code(text: string): string {
  const line = text.replace(/[\r\n]+/g, ' ').slice(0, 300);
  const longest = Math.max(0, ...(line.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = line.startsWith('`') || line.endsWith('`') || longest > 0 ? ' ' : '';
  return `${fence}${pad}${line}${pad}${fence}`;
}

/** A URL inside Markdown's link parentheses: nothing in it can end the link or start another. */
export function safeUrl(url: string): string {
  return url.replace(/[\s()<>[\]`]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

function after(ms: number): string {
  if (Math.abs(ms) < 1000) return 'at the time of';
  return ms >= 0 ? `${humanGap(ms)} after` : `${humanGap(ms)} before`;
}

function short(version: string): string {
  return /^[0-9a-f]{40}$/.test(version) ? version.slice(0, 12) : version;
}
