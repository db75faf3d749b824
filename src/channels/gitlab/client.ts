import { z } from 'zod';
import type { Change, Identity } from '../../core/types.js';
import { classifyError } from '../../deliver/http-outcome.js';
import { type CodeHostApi, CodeHostFailure, type ReviewTarget } from '../code-host.js';
import { identityOf } from './webhook.js';

// GitLab's REST API (v4) as changepager uses it: the merge requests a deployment shipped, with their author and
// merger, and one note on a merge request, written once and then edited. Plain fetch with a deadline on every
// request, the token in PRIVATE-TOKEN and nowhere else (never in a message, a log or a stored detail), no
// retries here: the outbox retries, told by CodeHostFailure whether to and when.
//
// Field names are those of GitLab's documented examples (test/fixtures/gitlab/README.md lists the pages). A
// user in these answers has `username` and `name` but no email (`public_email` is read when an instance sends it),
// so a change's people are known by their GitLab login; the people section of the config maps logins to people.

export interface GitlabApiOptions {
  /** `https://gitlab.com/api/v4`, or a self-managed instance's `https://HOST/api/v4`. */
  apiUrl: string;
  /** A personal, project or group access token with the `api` scope (notes need write access). */
  token: string;
  /** The deadline of each request. */
  timeoutMs: number;
  now: () => number;
  /** The most commits between two deployments whose merge requests are looked up (the newest ones). */
  maxCommits?: number;
  /** Stands in for the global fetch in tests. */
  fetch?: typeof fetch;
}

const DEFAULT_MAX_COMMITS = 100;

const text = z.string().nullish();
const user = z.object({ username: text, name: text, email: text, public_email: text }).nullish();
const commitSchema = z.object({
  id: z.string().min(1),
  title: text,
  author_name: text,
  author_email: text,
  web_url: text,
  committed_date: text,
});
const mergeRequestSchema = z.object({
  iid: z.number().int().positive(),
  title: text,
  state: text,
  web_url: text,
  author: user,
  merge_user: user,
  merged_by: user,
  merged_at: text,
});
const compareSchema = z.object({ commits: z.array(commitSchema) });
const noteSchema = z.object({ id: z.number().int() });
const deploymentSchema = z.object({ id: z.number().int(), sha: z.string().min(1), status: text });

type GitlabCommit = z.output<typeof commitSchema>;
type GitlabMergeRequest = z.output<typeof mergeRequestSchema>;

export function createGitlabApi(options: GitlabApiOptions): CodeHostApi {
  const base = options.apiUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  const maxCommits = options.maxCommits ?? DEFAULT_MAX_COMMITS;

  /** One request; `what` names it in failures (no query string, no token). */
  async function call<S extends z.ZodType>(
    schema: S,
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    what: string,
    body?: unknown,
  ): Promise<z.output<S>> {
    let res: Response;
    try {
      res = await doFetch(`${base}${path}`, {
        method,
        headers: {
          'PRIVATE-TOKEN': options.token,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        // A redirect would carry the token to wherever it points: report it instead of following it.
        redirect: 'manual',
        signal: AbortSignal.timeout(options.timeoutMs),
      });
    } catch (err) {
      const outcome = classifyError(err, options.timeoutMs);
      throw new CodeHostFailure(`GitLab ${what}: ${outcome.ok ? 'failed' : outcome.detail}`, true);
    }
    const raw = await res.text().catch(() => '');
    if (res.status >= 300 && res.status < 400) {
      throw new CodeHostFailure(
        `GitLab ${what}: HTTP ${res.status} redirect; set gitlab.api_url to the address it points to`,
        false,
      );
    }
    if (!res.ok) throw failure(what, res.status, raw, res.headers, options.now());
    let json: unknown;
    try {
      json = raw === '' ? undefined : JSON.parse(raw);
    } catch {
      throw new CodeHostFailure(`GitLab ${what}: HTTP ${res.status} with a body that is not JSON`, false);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      const where = first ? `${first.path.join('.') || 'body'}: ${first.message}` : 'unexpected';
      throw new CodeHostFailure(`GitLab ${what}: unexpected answer (${where})`, false);
    }
    return parsed.data;
  }

  const project = (repository: string) => `/projects/${encodeURIComponent(repository)}`;
  const sha = (s: string) => encodeURIComponent(s);

  async function commitsBetween(repository: string, head: string, previous: string | undefined) {
    if (previous === undefined || previous === head) return [{ id: head }];
    const compare = await call(
      compareSchema,
      'GET',
      `${project(repository)}/repository/compare?from=${sha(previous)}&to=${sha(head)}`,
      'compare',
    );
    // The compare lists the commits from the merge base to the head: none when the head is an ancestor of the
    // previous deployment (a redeploy of an earlier commit, a rollback), which ships no change of its own.
    const commits: Partial<GitlabCommit>[] = compare.commits;
    return commits.slice(-maxCommits);
  }

  return {
    async changesOf(repository, head, previous) {
      const commits = await commitsBetween(repository, head, previous);
      const changes: Change[] = [];
      const seen = new Set<number>();
      for (const commit of commits) {
        const id = commit.id ?? head;
        const listed = await call(
          z.array(mergeRequestSchema),
          'GET',
          `${project(repository)}/repository/commits/${sha(id)}/merge_requests`,
          'merge requests of a commit',
        );
        // A commit is in every merge request whose branch contains it: the merged ones are what shipped it.
        const merged = listed.filter((mr) => mr.state === 'merged');
        const mrs = merged.length > 0 ? merged : listed;
        if (mrs.length === 0) {
          const change = await commitChange(repository, commit);
          if (change) changes.push(change);
          continue;
        }
        for (const mr of mrs) {
          if (seen.has(mr.iid)) continue;
          seen.add(mr.iid);
          // The list leaves out who merged; the merge request itself says (merge_user, formerly merged_by).
          const full = await call(
            mergeRequestSchema,
            'GET',
            `${project(repository)}/merge_requests/${mr.iid}`,
            'merge request',
          );
          const change = mergeRequestChange(full, commit, id);
          if (change) changes.push(change);
        }
      }
      return changes;
    },

    async previousDeployment(repository, environment, deploymentId) {
      const before = Number(deploymentId);
      if (!Number.isSafeInteger(before)) return undefined; // a deployment known only by its job (GitLab before 14)
      // The environment's successful deployments, newest first: deployment ids grow with their creation.
      // https://docs.gitlab.com/api/deployments/#list-project-deployments
      const query = `environment=${encodeURIComponent(environment)}&status=success&order_by=id&sort=desc&per_page=20`;
      const deployments = await call(
        z.array(deploymentSchema),
        'GET',
        `${project(repository)}/deployments?${query}`,
        `deployments of ${environment}`,
      );
      return deployments.find((d) => d.id < before && (d.status ?? 'success') === 'success')?.sha;
    },

    async createComment(target: ReviewTarget, body: string) {
      const note = await call(
        noteSchema,
        'POST',
        `${project(target.repository)}/merge_requests/${target.number}/notes`,
        'create note',
        { body },
      );
      return { id: String(note.id) };
    },

    async editComment(target: ReviewTarget, commentId: string, body: string) {
      await call(
        noteSchema,
        'PUT',
        `${project(target.repository)}/merge_requests/${target.number}/notes/${encodeURIComponent(commentId)}`,
        'edit note',
        { body },
      );
    },
  };

  /** A commit that came in no merge request (pushed straight to the branch): its git author is the author. */
  async function commitChange(repository: string, known: Partial<GitlabCommit>): Promise<Change | undefined> {
    const id = known.id ?? '';
    const commit =
      known.author_email || known.author_name
        ? known
        : await call(commitSchema, 'GET', `${project(repository)}/repository/commits/${sha(id)}`, 'commit');
    const author: Identity = {};
    if (commit.author_email) author.email = commit.author_email;
    if (commit.author_name) author.name = commit.author_name;
    if (!author.email) return undefined;
    const change: Change = { author, commit: { sha: id } };
    if (commit.web_url && change.commit) change.commit.url = commit.web_url;
    if (commit.title && change.commit) change.commit.message = commit.title;
    if (commit.committed_date) change.committedAt = commit.committed_date;
    return change;
  }
}

function mergeRequestChange(mr: GitlabMergeRequest, commit: Partial<GitlabCommit>, id: string): Change | undefined {
  const author = identityOf(mr.author) ?? commitAuthor(commit);
  if (!author) return undefined;
  const change: Change = { author, commit: { sha: id }, pullRequest: { number: mr.iid } };
  const mergedBy = identityOf(mr.merge_user ?? mr.merged_by);
  if (mergedBy) change.mergedBy = mergedBy;
  if (mr.merged_at) change.mergedAt = mr.merged_at;
  const commitUrl = commit.web_url ?? projectUrlOf(mr.web_url)?.concat(`/-/commit/${id}`);
  if (change.commit && commitUrl) change.commit.url = commitUrl;
  if (change.commit && commit.title) change.commit.message = commit.title;
  if (change.pullRequest && mr.web_url) change.pullRequest.url = mr.web_url;
  if (change.pullRequest && mr.title) change.pullRequest.title = mr.title;
  return change;
}

function commitAuthor(commit: Partial<GitlabCommit>): Identity | undefined {
  if (!commit.author_email) return undefined;
  return commit.author_name ? { email: commit.author_email, name: commit.author_name } : { email: commit.author_email };
}

/** `https://host/group/project/-/merge_requests/12` (or, before GitLab 12, without the `/-`) → the project's URL. */
function projectUrlOf(mergeRequestUrl: string | null | undefined): string | undefined {
  const m = mergeRequestUrl ? /^(.*?)(?:\/-)?\/merge_requests\/\d+\/?$/.exec(mergeRequestUrl) : null;
  return m?.[1];
}

/**
 * An error answer as a CodeHostFailure: 429 and 5xx are worth retrying (after Retry-After, or GitLab's
 * RateLimit-Reset, a Unix time in seconds: https://docs.gitlab.com/administration/settings/user_and_ip_rate_limits/);
 * 401, 403, 404 and every other 4xx are facts about the token or the request that a retry will not change.
 */
export function failure(
  what: string,
  status: number,
  raw: string,
  headers: { get(name: string): string | null },
  now: number,
): CodeHostFailure {
  const retryable = status === 429 || status >= 500;
  const message = `GitLab ${what}: HTTP ${status}${gitlabMessage(raw)}`;
  return new CodeHostFailure(message, retryable, retryable ? gitlabRetryAfterMs(headers, now) : undefined);
}

export function gitlabRetryAfterMs(headers: { get(name: string): string | null }, now: number): number | undefined {
  const after = headers.get('retry-after')?.trim();
  if (after) {
    if (/^\d+$/.test(after)) return Number(after) * 1000;
    const date = Date.parse(after);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  const reset = headers.get('ratelimit-reset')?.trim();
  if (reset && /^\d+$/.test(reset)) return Math.max(0, Number(reset) * 1000 - now);
  return undefined;
}

/** GitLab's error bodies: `{"message": "404 Not found"}`, `{"message": {"note": ["is too long"]}}`, `{"error": …}`. */
function gitlabMessage(raw: string): string {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return '';
  }
  if (!data || typeof data !== 'object') return '';
  const d = data as { message?: unknown; error?: unknown; error_description?: unknown };
  const said = d.message ?? d.error_description ?? d.error;
  if (said === undefined) return '';
  const text = typeof said === 'string' ? said : JSON.stringify(said);
  return `: ${text.slice(0, 200)}`;
}
