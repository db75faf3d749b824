import type { Octokit } from '@octokit/rest';
import type { Change, Identity } from '../../core/types.js';
import { type CodeHostApi, CodeHostFailure, type ReviewTarget } from '../code-host.js';

// GitHub's REST API behind the code host port, through @octokit/rest without its retry or throttling plugins:
// the outbox retries, so every failure becomes one CodeHostFailure that says whether to try again and when.
// https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api

/** The most commits between two deploys whose pull requests are looked up; a longer range is cut there. */
export const MAX_COMMITS = 100;

/** The most earlier deployments of an environment looked at for the last successful one. */
export const MAX_DEPLOYMENTS = 10;

export interface GithubClientOptions {
  apiUrl: string;
  token: string;
  timeoutMs: number;
  now: () => number;
}

export function createGithubClient(opts: GithubClientOptions): CodeHostApi {
  // ESM only: imported on the first request, so that creating the channel (and reading the config) loads nothing.
  let client: Promise<Octokit> | undefined;
  const octokit = () => {
    client ??= import('@octokit/rest').then(
      ({ Octokit }) =>
        new Octokit({
          auth: opts.token,
          baseUrl: opts.apiUrl,
          userAgent: 'changepager',
          log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
        }),
    );
    return client;
  };
  const request = {
    get signal() {
      return AbortSignal.timeout(opts.timeoutMs);
    },
  };

  async function call<T>(what: string, run: (o: Octokit) => Promise<{ data: T }>): Promise<T> {
    try {
      return (await run(await octokit())).data;
    } catch (err) {
      throw failure(what, err, opts.now());
    }
  }

  const split = (repository: string) => {
    const [owner = '', repo = ''] = repository.split('/');
    return { owner, repo };
  };

  return {
    async changesOf(repository, sha, previousSha) {
      const at = split(repository);
      const commits =
        previousSha !== undefined && previousSha !== sha
          ? (
              await call(`compare ${previousSha.slice(0, 12)}...${sha.slice(0, 12)}`, (o) =>
                o.rest.repos.compareCommitsWithBasehead({
                  ...at,
                  basehead: `${previousSha}...${sha}`,
                  per_page: MAX_COMMITS,
                  request,
                }),
              )
            ).commits.slice(-MAX_COMMITS)
          : [await call(`commit ${sha.slice(0, 12)}`, (o) => o.rest.repos.getCommit({ ...at, ref: sha, request }))];

      const changes: Change[] = [];
      const seen = new Set<number>();
      for (const commit of commits) {
        const pulls = await call(`pull requests of ${commit.sha.slice(0, 12)}`, (o) =>
          o.rest.repos.listPullRequestsAssociatedWithCommit({ ...at, commit_sha: commit.sha, request }),
        );
        const merged = pulls.filter((p) => p.merged_at);
        if (merged.length === 0) {
          // Pushed without a pull request: the commit's author is the change's.
          changes.push({
            author: identity(commit.author?.login, commit.commit.author?.email, commit.commit.author?.name),
            commit: { sha: commit.sha, url: commit.html_url, message: firstLine(commit.commit.message) },
          });
          continue;
        }
        for (const p of merged) {
          if (seen.has(p.number)) continue;
          seen.add(p.number);
          // merged_by is only on the pull request itself.
          const pull = await call(`pull request #${p.number}`, (o) =>
            o.rest.pulls.get({ ...at, pull_number: p.number, request }),
          );
          const change: Change = {
            author: identity(pull.user?.login, undefined, pull.user?.name ?? undefined),
            commit: {
              sha: pull.merge_commit_sha ?? commit.sha,
              url: commit.html_url,
              message: firstLine(commit.commit.message),
            },
            pullRequest: { number: pull.number, url: pull.html_url, title: pull.title },
          };
          if (pull.merged_by?.login) change.mergedBy = identity(pull.merged_by.login);
          changes.push(change);
        }
      }
      return changes;
    },

    async previousDeployment(repository, environment, deploymentId) {
      const at = split(repository);
      // Newest first; a deployment's id grows with its creation, so the earlier ones have smaller ids.
      const deployments = await call(`deployments of ${environment}`, (o) =>
        o.rest.repos.listDeployments({ ...at, environment, per_page: 30, request }),
      );
      const earlier = deployments.filter((d) => d.id < Number(deploymentId)).slice(0, MAX_DEPLOYMENTS);
      for (const d of earlier) {
        const statuses = await call(`statuses of deployment ${d.id}`, (o) =>
          o.rest.repos.listDeploymentStatuses({ ...at, deployment_id: d.id, per_page: 10, request }),
        );
        if (statuses.some((s) => s.state === 'success')) return d.sha;
      }
      return undefined;
    },

    async createComment(target: ReviewTarget, body: string) {
      const created = await call(`comment on #${target.number}`, (o) =>
        o.rest.issues.createComment({ ...split(target.repository), issue_number: target.number, body, request }),
      );
      return { id: String(created.id) };
    },

    async editComment(target: ReviewTarget, commentId: string, body: string) {
      await call(`edit comment ${commentId}`, (o) =>
        o.rest.issues.updateComment({ ...split(target.repository), comment_id: Number(commentId), body, request }),
      );
    },
  };
}

function identity(login?: string | null, email?: string | null, name?: string | null): Identity {
  const who: Identity = {};
  if (login) who.login = login;
  if (email) who.email = email;
  if (name) who.name = name;
  if (!who.login && !who.email) who.name = name ?? 'unknown';
  return who;
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0]?.slice(0, 200) ?? '';
}

/**
 * A failed request as the outbox sees it. 5xx, 429, a timeout or a network error: retry. 403 is GitHub's answer
 * both to a missing permission (final) and to a rate limit (retry): a rate limit says so with retry-after (the
 * secondary limits) or with x-ratelimit-remaining 0 and x-ratelimit-reset (epoch seconds).
 */
export function failure(what: string, err: unknown, now: number): CodeHostFailure {
  const e = err as { status?: unknown; response?: { headers?: Record<string, string | undefined> }; name?: string };
  const status = typeof e.status === 'number' ? e.status : undefined;
  // @octokit/request reports a request that got no answer (refused, reset, aborted) as a 500 without a response.
  if (status === undefined || (status === 500 && !e.response)) {
    const timeout = e.name === 'TimeoutError' || e.name === 'AbortError' || /timeout|aborted/i.test(String(err));
    return new CodeHostFailure(`${what}: ${timeout ? 'timeout' : 'network error'}`, true);
  }
  const headers = e.response?.headers ?? {};
  const retryAfter = Number(headers['retry-after']);
  const reset = Number(headers['x-ratelimit-reset']);
  const limited =
    (status === 403 || status === 429) && (Number.isFinite(retryAfter) || headers['x-ratelimit-remaining'] === '0');
  const waitMs = Number.isFinite(retryAfter)
    ? retryAfter * 1000
    : headers['x-ratelimit-remaining'] === '0' && Number.isFinite(reset)
      ? Math.max(0, reset * 1000 - now)
      : undefined;
  const retryable = status >= 500 || status === 429 || limited;
  const detail = `${what}: HTTP ${status}${limited ? ' (rate limited)' : ''}`;
  return new CodeHostFailure(detail, retryable, retryable ? waitMs : undefined);
}
