import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { conditionWaiters } from './wait.js';

/**
 * A GitHub REST API stand-in on 127.0.0.1, for `github.api_url`: the few endpoints changepager calls (a commit,
 * a compare, the pull requests of a commit, a pull request, creating and editing an issue comment), answered from
 * the repositories it is given, every call recorded. It can be told to fail the next calls with a status and
 * headers: a 502, a secondary rate limit (403 with retry-after), a primary one (x-ratelimit-remaining: 0).
 */
export interface GithubCall {
  method: string;
  path: string;
  body: unknown;
  authorization: string | undefined;
  at: number;
}

export interface StubCommit {
  sha: string;
  author: { login: string; email?: string; name?: string };
  message: string;
}

export interface StubPull {
  number: number;
  title: string;
  user: string;
  mergedBy?: string;
  /** The commits on it; the merge commit is listed too when it is one of the deployed commits. */
  commits: string[];
  merged?: boolean;
}

export interface StubDeployment {
  id: number;
  sha: string;
  environment: string;
  /** Its statuses, oldest first. */
  states: string[];
}

export interface StubRepository {
  /** Oldest first: a compare base...head lists the commits after base up to head. */
  commits: StubCommit[];
  pulls: StubPull[];
  /** Oldest first, as the deployments API lists them newest first. */
  deployments?: StubDeployment[];
}

export interface StubComment {
  id: number;
  repository: string;
  issue: number;
  body: string;
  edits: number;
}

type Fault = { status: number; headers: Record<string, string>; times: number; match?: RegExp };

export interface GithubStub {
  apiUrl: string;
  calls: GithubCall[];
  repositories: Record<string, StubRepository>;
  comments: StubComment[];
  fail(fault: { status: number; headers?: Record<string, string>; times?: number; match?: RegExp }): void;
  clearFaults(): void;
  waitFor(predicate: (stub: GithubStub) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startGithubStub(): Promise<GithubStub> {
  const calls: GithubCall[] = [];
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();
  const waits = conditionWaiters('GitHub stub', () => calls.map((c) => `${c.method} ${c.path}`).join(', '));
  let nextCommentId = 9000;
  const stub: GithubStub = {
    apiUrl: '',
    calls,
    repositories: {},
    comments: [],
    fail: (f) => {
      faults.push({
        status: f.status,
        headers: f.headers ?? {},
        times: f.times ?? Number.POSITIVE_INFINITY,
        ...(f.match ? { match: f.match } : {}),
      });
    },
    clearFaults: () => {
      faults.length = 0;
    },
    waitFor: (predicate, timeoutMs) => waits.waitFor(() => predicate(stub), timeoutMs),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  const commitJson = (repo: string, c: StubCommit) => ({
    sha: c.sha,
    html_url: `https://github.com/${repo}/commit/${c.sha}`,
    author: { login: c.author.login },
    commit: { message: c.message, author: { email: c.author.email ?? null, name: c.author.name ?? null } },
  });
  const pullJson = (repo: string, p: StubPull) => ({
    number: p.number,
    title: p.title,
    html_url: `https://github.com/${repo}/pull/${p.number}`,
    user: { login: p.user },
    merged_at: p.merged === false ? null : '2026-11-26T10:50:00Z',
    merged_by: p.mergedBy ? { login: p.mergedBy } : null,
    merge_commit_sha: p.commits[p.commits.length - 1] ?? null,
  });

  type Answer = { status: number; json: unknown };
  const notFound: Answer = { status: 404, json: { message: 'Not Found' } };
  type Route = [
    string,
    RegExp,
    (m: RegExpExecArray, name: string, repo: StubRepository, body: unknown, query: URLSearchParams) => Answer,
  ];
  const routes: Route[] = [
    [
      'GET',
      /^deployments$/,
      (_m, _name, repo, _body, query) => ({
        status: 200,
        json: [...(repo.deployments ?? [])]
          .reverse()
          .filter((d) => !query.get('environment') || d.environment === query.get('environment'))
          .map((d) => ({ id: d.id, sha: d.sha, environment: d.environment })),
      }),
    ],
    [
      'GET',
      /^deployments\/(\d+)\/statuses$/,
      (m, _name, repo) => {
        const d = repo.deployments?.find((x) => x.id === Number(m[1]));
        return d ? { status: 200, json: [...d.states].reverse().map((state) => ({ state })) } : notFound;
      },
    ],
    [
      'GET',
      /^commits\/([0-9a-f]+)$/,
      (m, name, repo) => {
        const c = repo.commits.find((x) => x.sha === m[1]);
        return c ? { status: 200, json: commitJson(name, c) } : { status: 422, json: { message: 'No commit found' } };
      },
    ],
    [
      'GET',
      /^commits\/([0-9a-f]+)\/pulls$/,
      (m, name, repo) => ({
        status: 200,
        json: repo.pulls.filter((p) => p.commits.includes(m[1] as string)).map((p) => pullJson(name, p)),
      }),
    ],
    [
      'GET',
      /^compare\/([0-9a-f]+)\.\.\.([0-9a-f]+)$/,
      (m, name, repo) => {
        const from = repo.commits.findIndex((c) => c.sha === m[1]);
        const to = repo.commits.findIndex((c) => c.sha === m[2]);
        if (from < 0 || to < 0) return notFound;
        return { status: 200, json: { commits: repo.commits.slice(from + 1, to + 1).map((c) => commitJson(name, c)) } };
      },
    ],
    [
      'GET',
      /^pulls\/(\d+)$/,
      (m, name, repo) => {
        const p = repo.pulls.find((x) => x.number === Number(m[1]));
        return p ? { status: 200, json: pullJson(name, p) } : notFound;
      },
    ],
    [
      'POST',
      /^issues\/(\d+)\/comments$/,
      (m, name, _repo, body) => {
        const c: StubComment = {
          id: nextCommentId++,
          repository: name,
          issue: Number(m[1]),
          body: (body as { body: string }).body,
          edits: 0,
        };
        stub.comments.push(c);
        return { status: 201, json: { id: c.id, body: c.body } };
      },
    ],
    [
      'PATCH',
      /^issues\/comments\/(\d+)$/,
      (m, name, _repo, body) => {
        const c = stub.comments.find((x) => x.id === Number(m[1]) && x.repository === name);
        if (!c) return notFound;
        c.body = (body as { body: string }).body;
        c.edits++;
        return { status: 200, json: { id: c.id, body: c.body } };
      },
    ],
  ];

  function answer(method: string, path: string, body: unknown, query: URLSearchParams): Answer {
    const at = /^\/repos\/([^/]+\/[^/]+)\/(.*)$/.exec(path);
    const name = at ? decodeURIComponent(at[1] as string) : '';
    const repo = stub.repositories[name];
    if (!at || !repo) return notFound;
    for (const [verb, pattern, run] of routes) {
      const m = verb === method ? pattern.exec(at[2] as string) : null;
      if (m) return run(m, name, repo, body, query);
    }
    return notFound;
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '/').split('?')[0] as string;
      const method = req.method ?? 'GET';
      const body = text ? JSON.parse(text) : undefined;
      calls.push({ method, path, body, authorization: req.headers.authorization, at: Date.now() });
      const fault = faults.find((f) => f.times > 0 && (!f.match || f.match.test(`${method} ${path}`)));
      let out: { status: number; json: unknown; headers?: Record<string, string> };
      if (fault) {
        fault.times--;
        out = { status: fault.status, json: { message: `stub fault ${fault.status}` }, headers: fault.headers };
      } else {
        out = answer(method, path, body, new URLSearchParams((req.url ?? '').split('?')[1] ?? ''));
      }
      res.writeHead(out.status, { 'content-type': 'application/json; charset=utf-8', ...(out.headers ?? {}) });
      res.end(JSON.stringify(out.json));
      waits.notify();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return stub;
}
