import type { Identity } from '../core/types.js';

// What a CI system tells a job about the change it ships, in its own environment variables. Read only when the
// corresponding flag is absent: flags always win.
//
// GitHub Actions: https://docs.github.com/actions/reference/variables-reference (GITHUB_SHA, GITHUB_ACTOR, …);
// GITHUB_EVENT_PATH is the webhook payload that started the run: `pull_request` (with user, merged_by, number,
// html_url, title) or `push` (head_commit.author {name, email, username}, head_commit.message, head_commit.url).
// GitLab CI: https://docs.gitlab.com/ci/variables/predefined_variables/ (CI_COMMIT_AUTHOR is "Name <email>";
// GITLAB_USER_* is who started the pipeline: on the default branch after a merge, the person who merged).

export interface CiFacts {
  system: 'github' | 'gitlab';
  version?: string;
  environment?: string;
  author?: Identity;
  mergedBy?: Identity;
  commit?: { sha?: string; url?: string; message?: string };
  pullRequest?: { number?: number; url?: string; title?: string };
  /** A stable id for this job's event, so a retried step is recognised as a repeat. */
  idPrefix: string;
}

type Env = Readonly<Record<string, string | undefined>>;

export function ciFacts(env: Env, readFile: (path: string) => string): CiFacts | undefined {
  if (env.GITHUB_ACTIONS === 'true' || (env.GITHUB_SHA && env.GITHUB_REPOSITORY)) return github(env, readFile);
  if (env.GITLAB_CI === 'true' || env.CI_COMMIT_SHA) return gitlab(env);
  return undefined;
}

function github(env: Env, readFile: (path: string) => string): CiFacts {
  const server = (env.GITHUB_SERVER_URL ?? 'https://github.com').replace(/\/+$/, '');
  const repo = env.GITHUB_REPOSITORY ? `${server}/${env.GITHUB_REPOSITORY}` : undefined;
  const sha = env.GITHUB_SHA;
  const facts: CiFacts = {
    system: 'github',
    idPrefix: `gha-${env.GITHUB_RUN_ID ?? 'local'}-${env.GITHUB_RUN_ATTEMPT ?? '1'}`,
  };
  if (sha) {
    facts.version = sha;
    facts.commit = { sha, ...(repo ? { url: `${repo}/commit/${sha}` } : {}) };
  }
  const actor = env.GITHUB_ACTOR ? { login: env.GITHUB_ACTOR } : undefined;
  const event = readEvent(env.GITHUB_EVENT_PATH, readFile);
  const pr = event?.pull_request;
  if (pr && typeof pr === 'object') {
    // A workflow on `pull_request: closed` (merged): the PR names its author and who merged it.
    if (pr.user?.login) facts.author = { login: pr.user.login };
    if (pr.merged_by?.login) facts.mergedBy = { login: pr.merged_by.login };
    facts.pullRequest = pick({ number: numberOr(pr.number), url: str(pr.html_url), title: str(pr.title) });
    const merge = str(pr.merge_commit_sha);
    if (merge && !sha) facts.version = merge;
  } else if (event?.head_commit && typeof event.head_commit === 'object') {
    // A push (the merge landing on the default branch): the commit's author, pushed by the actor.
    const c = event.head_commit;
    facts.author = pick({ email: str(c.author?.email), login: str(c.author?.username), name: str(c.author?.name) });
    const message = str(c.message);
    facts.commit = pick({
      ...facts.commit,
      ...(str(c.url) ? { url: str(c.url) } : {}),
      message: message && firstLine(message),
    });
    const number = message ? prNumberInGitHubMessage(message) : undefined;
    if (number !== undefined) facts.pullRequest = pick({ number, url: repo && `${repo}/pull/${number}` });
    if (actor && actor.login !== facts.author.login) facts.mergedBy = actor;
  }
  if (!facts.author?.email && !facts.author?.login && actor) facts.author = actor;
  return facts;
}

function gitlab(env: Env): CiFacts {
  const project = env.CI_PROJECT_URL?.replace(/\/+$/, '');
  const sha = env.CI_COMMIT_SHA;
  const facts: CiFacts = {
    system: 'gitlab',
    idPrefix: `gitlab-${env.CI_PIPELINE_ID ?? 'local'}-${env.CI_JOB_ID ?? '0'}`,
  };
  if (env.CI_ENVIRONMENT_NAME) facts.environment = env.CI_ENVIRONMENT_NAME;
  const message = env.CI_COMMIT_TITLE ?? (env.CI_COMMIT_MESSAGE ? firstLine(env.CI_COMMIT_MESSAGE) : undefined);
  if (sha) {
    facts.version = sha;
    facts.commit = pick({ sha, url: project && `${project}/-/commit/${sha}`, message });
  }
  const author = parseNameEmail(env.CI_COMMIT_AUTHOR);
  const starter = pick({ email: env.GITLAB_USER_EMAIL, login: env.GITLAB_USER_LOGIN, name: env.GITLAB_USER_NAME });
  if (author) facts.author = author;
  else if (starter.email || starter.login) facts.author = starter;
  if (author && (starter.email || starter.login) && starter.email !== author.email) facts.mergedBy = starter;
  const iid = numberOr(env.CI_MERGE_REQUEST_IID) ?? mergeRequestInGitLabMessage(env.CI_COMMIT_MESSAGE ?? '');
  if (iid !== undefined) {
    facts.pullRequest = pick({
      number: iid,
      url: project && `${project}/-/merge_requests/${iid}`,
      title: env.CI_MERGE_REQUEST_TITLE,
    });
  }
  return facts;
}

/** "Merge pull request #4812 from …" (merge commit) or "Cache cart totals (#4812)" (squash merge). */
export function prNumberInGitHubMessage(message: string): number | undefined {
  const line = firstLine(message);
  const m = /^Merge pull request #(\d+)\b/.exec(line) ?? /\(#(\d+)\)\s*$/.exec(line);
  return m?.[1] ? Number(m[1]) : undefined;
}

/** GitLab's default merge commit message ends with "See merge request group/project!123". */
export function mergeRequestInGitLabMessage(message: string): number | undefined {
  const m = /See merge request \S*!(\d+)/.exec(message);
  return m?.[1] ? Number(m[1]) : undefined;
}

/** "Alice Example <alice@example.com>" → {name, email}. */
export function parseNameEmail(text: string | undefined): Identity | undefined {
  if (!text) return undefined;
  const m = /^\s*(.*?)\s*<([^<>\s]+@[^<>\s]+)>\s*$/.exec(text);
  if (m?.[2]) return pick({ email: m[2], name: m[1] || undefined });
  return text.includes('@') ? { email: text.trim() } : undefined;
}

// biome-ignore lint/suspicious/noExplicitAny: a GitHub webhook payload is untyped JSON, read field by field.
function readEvent(path: string | undefined, readFile: (path: string) => string): Record<string, any> | undefined {
  if (!path) return undefined;
  try {
    return JSON.parse(readFile(path));
  } catch {
    return undefined;
  }
}

function firstLine(text: string): string {
  return text.split('\n')[0]?.trim() ?? '';
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function numberOr(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : Number.NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** Drops the keys whose value is undefined or empty. */
function pick<T extends Record<string, unknown>>(obj: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== '') out[k] = v;
  return out as { [K in keyof T]?: Exclude<T[K], undefined> };
}
