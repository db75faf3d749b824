import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Identity } from '../../core/types.js';
import type { ProblemDetail } from '../../errors.js';
import { checkInput, problemsOf } from '../../ingest/validate.js';
import type { DeploymentEvent } from '../code-host.js';

// GitLab's webhook, from the headers to a DeploymentEvent. GitLab signs nothing: the hook's secret token comes
// back as is in X-Gitlab-Token, so the check is a comparison, made in constant time. Only Deployment events
// matter here; the payload's field names are those of GitLab's own example
// (https://docs.gitlab.com/user/project/integrations/webhook_events/#deployment-events, kept in
// test/fixtures/gitlab/).

/** The X-Gitlab-Event value of a deployment event. */
export const DEPLOYMENT_HOOK = 'Deployment Hook';

/**
 * Whether the token sent is the one configured, in time that does not depend on where they differ: both are
 * hashed first, so the comparison is of two equal lengths and says nothing of the token's length either.
 */
export function tokenMatches(configured: string, sent: string | undefined): boolean {
  if (sent === undefined || configured === '') return false;
  const a = createHash('sha256').update(configured, 'utf8').digest();
  const b = createHash('sha256').update(sent, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** GitLab writes `2021-04-28 21:50:00 +0200` (Ruby's default); RFC 3339 is accepted too. */
const GITLAB_TIME = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)\s*(Z|UTC|[+-]\d{2}:?\d{2})$/;

/** Epoch milliseconds of a GitLab time, or undefined when it is not one. */
export function parseGitlabTime(text: string): number | undefined {
  const m = GITLAB_TIME.exec(text.trim());
  if (!m) return undefined;
  const [, date, time, zone = 'Z'] = m;
  const offset =
    zone === 'UTC' || zone === 'Z' ? 'Z' : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const ms = Date.parse(`${date}T${time}${offset}`);
  return Number.isNaN(ms) ? undefined : ms;
}

const nullableString = z.string().nullish();

const gitlabUser = z.object({
  username: nullableString,
  name: nullableString,
  email: nullableString,
});

/** The fields of a Deployment event that changepager reads; every other field is ignored. */
export const gitlabDeploymentPayload = z
  .object({
    object_kind: z.literal('deployment'),
    status: z.string().min(1),
    status_changed_at: z
      .string()
      .refine((s) => parseGitlabTime(s) !== undefined, {
        error: 'must be a time such as "2021-04-28 21:50:00 +0200" or RFC 3339',
      })
      .nullish(),
    deployment_id: z.number().int().nonnegative().nullish(),
    deployable_id: z.number().int().nonnegative().nullish(),
    deployable_url: nullableString,
    environment: z.string().min(1),
    environment_external_url: nullableString,
    project: z.object({ path_with_namespace: z.string().min(1), web_url: nullableString }),
    short_sha: z.string().regex(/^[0-9a-f]{4,64}$/i, { error: 'must be a hexadecimal commit id' }),
    commit_url: nullableString,
    commit_title: nullableString,
    ref: nullableString,
    user: gitlabUser.nullish(),
  })
  .refine((p) => p.deployment_id != null || p.deployable_id != null, {
    path: ['deployment_id'],
    error: 'a deployment_id (or deployable_id) is required',
    // Checked even when other fields are wrong too, so that one answer lists every problem.
    when: (payload) => typeof payload.value === 'object' && payload.value !== null,
  });

export type GitlabDeploymentPayload = z.output<typeof gitlabDeploymentPayload>;

/** What one webhook request comes to: refused, not for us, malformed, or a deployment. */
export type GitlabHookResult =
  | { kind: 'unauthorized'; reason: string }
  | { kind: 'ignored'; reason: string }
  | { kind: 'invalid'; problems: ProblemDetail[] }
  | { kind: 'deployment'; event: DeploymentEvent; title?: string };

export interface GitlabHookRequest {
  /** Header lookup, case-insensitive as in express' `req.get`. */
  header(name: string): string | undefined;
  /** The parsed JSON body (undefined when it was not JSON). */
  body: unknown;
}

/**
 * Reads one GitLab webhook request: the token first (before anything of the body is looked at), then the event
 * kind (anything but a Deployment event is acknowledged and ignored), then the payload, every problem listed.
 */
export function readGitlabHook(request: GitlabHookRequest, webhookToken: string, receivedAt: number): GitlabHookResult {
  const sent = request.header('x-gitlab-token');
  if (!tokenMatches(webhookToken, sent)) {
    return {
      kind: 'unauthorized',
      reason: sent === undefined ? 'it sent no X-Gitlab-Token header' : 'its X-Gitlab-Token is not the configured one',
    };
  }
  const event = request.header('x-gitlab-event');
  if (event === undefined) {
    return { kind: 'invalid', problems: [{ path: 'headers.x-gitlab-event', message: 'the header is missing' }] };
  }
  if (event !== DEPLOYMENT_HOOK) return { kind: 'ignored', reason: `${event} is not a deployment event` };
  const parsed = checkInput(gitlabDeploymentPayload, request.body);
  if (!parsed.success) return { kind: 'invalid', problems: problemsOf(parsed.error) };
  const payload = parsed.data;
  const deliveryId =
    request.header('idempotency-key') ??
    request.header('x-gitlab-event-uuid') ??
    // GitLab before 14.8 sends no delivery id; a deployment reports each status once.
    `deployment-${deploymentIdOf(payload)}-${payload.status}`;
  return {
    kind: 'deployment',
    event: toDeploymentEvent(payload, deliveryId, receivedAt),
    title: payload.commit_title ?? undefined,
  };
}

function deploymentIdOf(p: GitlabDeploymentPayload): string {
  return p.deployment_id != null ? String(p.deployment_id) : `job-${p.deployable_id}`;
}

/** The full SHA is only in `commit_url` (`…/-/commit/<sha>`); `short_sha` is what is left when it is not. */
export function shaOf(p: Pick<GitlabDeploymentPayload, 'short_sha' | 'commit_url'>): string {
  const last = p.commit_url?.split(/[?#]/)[0]?.split('/').pop() ?? '';
  const full = /^[0-9a-f]{40}$|^[0-9a-f]{64}$/i.test(last) ? last.toLowerCase() : '';
  const short = p.short_sha.toLowerCase();
  return full.startsWith(short) ? full : short;
}

const STATES: Readonly<Record<string, DeploymentEvent['state']>> = { success: 'success', running: 'in_progress' };

/** The payload as the host-neutral event; `at` is GitLab's status time, or when it arrived if GitLab sent none. */
export function toDeploymentEvent(p: GitlabDeploymentPayload, deliveryId: string, receivedAt: number): DeploymentEvent {
  const event: DeploymentEvent = {
    host: 'gitlab',
    deliveryId,
    repository: p.project.path_with_namespace,
    environment: p.environment,
    sha: shaOf(p),
    state: STATES[p.status] ?? 'other',
    deploymentId: deploymentIdOf(p),
    at: (p.status_changed_at ? parseGitlabTime(p.status_changed_at) : undefined) ?? receivedAt,
  };
  if (p.ref) event.ref = p.ref;
  const url = p.deployable_url ?? p.environment_external_url;
  if (url) event.url = url;
  const deployer = identityOf(p.user);
  if (deployer) event.deployer = deployer;
  return event;
}

/**
 * A GitLab user as an Identity: the username is the login; an email only when it is one (GitLab writes
 * `[REDACTED]` for a user without a public email).
 */
export function identityOf(
  user:
    | { username?: string | null; name?: string | null; email?: string | null; public_email?: string | null }
    | null
    | undefined,
): Identity | undefined {
  if (!user) return undefined;
  const identity: Identity = {};
  if (user.username) identity.login = user.username;
  if (user.name) identity.name = user.name;
  const email = user.public_email || user.email;
  if (email && /^[^@\s]+@[^@\s]+$/.test(email)) identity.email = email;
  return identity.login || identity.email ? identity : undefined;
}
