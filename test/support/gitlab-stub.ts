import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { conditionWaiters } from './wait.js';

/**
 * A GitLab REST API (v4) stand-in on 127.0.0.1: projects with a commit history and merge requests, the
 * endpoints changepager calls answered in the shapes of GitLab's documented examples (test/fixtures/gitlab/),
 * every request recorded, and faults on demand (a 502, a 429 with Retry-After). Point `gitlab.api_url` at
 * `stub.apiUrl`. Like GitLab it answers 401 to a wrong PRIVATE-TOKEN and 404 to what it does not know.
 */
export interface GitlabCall {
  method: string;
  /** The path after /api/v4, each segment decoded: `/projects/shop/checkout/merge_requests/7/notes`. */
  path: string;
  /** The path as sent, still encoded: `/projects/shop%2Fcheckout/…`. */
  rawPath: string;
  query: Record<string, string>;
  body: unknown;
  privateToken: string | undefined;
}

export interface StubUser {
  username: string;
  name?: string;
  public_email?: string;
}

export interface StubCommit {
  id: string;
  title?: string;
  author_name?: string;
  author_email?: string;
}

export interface StubMergeRequest {
  project: string;
  iid: number;
  title: string;
  author: StubUser;
  mergeUser?: StubUser;
  /** Default `merged`. */
  state?: 'merged' | 'opened' | 'closed';
  /** The commits it contains (its own and its merge commit). */
  commits: string[];
}

export interface StubDeployment {
  project: string;
  id: number;
  environment: string;
  sha: string;
  status: 'created' | 'running' | 'success' | 'failed' | 'canceled';
}

export interface StubNote {
  project: string;
  iid: number;
  id: number;
  body: string;
  edits: number;
}

type Fault = { status: number; body?: unknown; headers?: Record<string, string>; times: number; path?: RegExp };

export interface GitlabStub {
  /** `http://127.0.0.1:<port>/api/v4` */
  apiUrl: string;
  /** The web address projects live under, in the links it answers. */
  webUrl: string;
  /** The PRIVATE-TOKEN it accepts. */
  token: string;
  calls: GitlabCall[];
  notes: StubNote[];
  /** The projects' deployments, as GET /projects/:id/deployments lists them. */
  deployments: StubDeployment[];
  /** Calls whose method matches and whose decoded path matches. */
  callsTo(method: string, path: RegExp): GitlabCall[];
  /** Appends commits to a project's history, oldest first. */
  addCommits(project: string, commits: StubCommit[]): void;
  addMergeRequest(mr: StubMergeRequest): void;
  /** Fail the next `times` requests (those whose decoded path matches `path`, when given). */
  fail(fault: {
    status: number;
    body?: unknown;
    headers?: Record<string, string>;
    times?: number;
    path?: RegExp;
  }): void;
  clearFaults(): void;
  waitFor(predicate: (calls: GitlabCall[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startGitlabStub(options: { token?: string } = {}): Promise<GitlabStub> {
  const calls: GitlabCall[] = [];
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();
  const waits = conditionWaiters('GitLab stub', () => calls.map((c) => `${c.method} ${c.path}`).join(', '));
  const history = new Map<string, StubCommit[]>();
  const mergeRequests: StubMergeRequest[] = [];
  let nextNoteId = 300;
  const webUrl = 'https://gitlab.example.com';

  const stub: GitlabStub = {
    apiUrl: '',
    webUrl,
    token: options.token ?? 'glpat-stub-token',
    calls,
    notes: [],
    deployments: [],
    callsTo: (method, path) => calls.filter((c) => c.method === method && path.test(c.path)),
    addCommits: (project, commits) => {
      history.set(project, [...(history.get(project) ?? []), ...commits]);
    },
    addMergeRequest: (mr) => {
      mergeRequests.push(mr);
    },
    fail: (f) => {
      faults.push({ ...f, times: f.times ?? Number.POSITIVE_INFINITY });
    },
    clearFaults: () => {
      faults.length = 0;
    },
    waitFor: (predicate, timeoutMs) => waits.waitFor(() => predicate(calls), timeoutMs),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  const user = (u: StubUser, id: number) => ({
    id,
    username: u.username,
    name: u.name ?? u.username,
    state: 'active',
    avatar_url: null,
    web_url: `${webUrl}/${u.username}`,
    ...(u.public_email ? { public_email: u.public_email } : {}),
  });
  const commitJson = (project: string, c: StubCommit) => ({
    id: c.id,
    short_id: c.id.slice(0, 11),
    title: c.title ?? '',
    author_name: c.author_name ?? 'Unknown',
    author_email: c.author_email ?? 'unknown@example.com',
    created_at: '2026-11-26T10:00:00Z',
    web_url: `${webUrl}/${project}/-/commit/${c.id}`,
  });
  // The list of a commit's merge requests, as the documented example shows it: no merger.
  const mrBasic = (mr: StubMergeRequest) => ({
    id: 1000 + mr.iid,
    iid: mr.iid,
    title: mr.title,
    state: mr.state ?? 'merged',
    author: user(mr.author, 1),
    sha: mr.commits[0],
    web_url: `${webUrl}/${mr.project}/-/merge_requests/${mr.iid}`,
  });
  const mrFull = (mr: StubMergeRequest) => {
    const merger = mr.mergeUser ? user(mr.mergeUser, 2) : null;
    return { ...mrBasic(mr), merge_user: merger, merged_by: merger, references: { short: `!${mr.iid}` } };
  };
  const noteJson = (n: StubNote) => ({
    id: n.id,
    body: n.body,
    author: { id: 99, username: 'changepager-bot', name: 'changepager' },
    system: false,
    noteable_type: 'MergeRequest',
    noteable_iid: n.iid,
  });
  const notFound = (what: string) => ({ status: 404, body: { message: `404 ${what} Not Found` } });

  function answer(method: string, segments: string[], query: Record<string, string>, body: unknown) {
    // segments: ['projects', '<project path>', ...rest]
    if (segments[0] !== 'projects' || segments[1] === undefined) return notFound('Resource');
    const project = segments[1];
    const rest = segments.slice(2);
    const commits = history.get(project);
    if (method === 'GET' && rest.join('/') === 'repository/compare') {
      if (!commits) return notFound('Project');
      const from = commits.findIndex((c) => c.id.startsWith(query.from ?? '\0'));
      const to = commits.findIndex((c) => c.id.startsWith(query.to ?? '\0'));
      if (from < 0 || to < 0) return notFound('Ref');
      const between = commits.slice(from + 1, to + 1).map((c) => commitJson(project, c));
      return { status: 200, body: { commit: between.at(-1) ?? null, commits: between, diffs: [] } };
    }
    if (method === 'GET' && rest.join('/') === 'deployments') {
      // Filtered by environment and status, ordered by id as asked (the only order changepager asks for).
      const listed = stub.deployments
        .filter((d) => d.project === project)
        .filter((d) => query.environment === undefined || d.environment === query.environment)
        .filter((d) => query.status === undefined || d.status === query.status)
        .sort((a, b) => (query.sort === 'desc' ? b.id - a.id : a.id - b.id))
        .slice(0, Number(query.per_page ?? 20));
      return {
        status: 200,
        body: listed.map((d) => ({
          id: d.id,
          iid: d.id,
          ref: 'main',
          sha: d.sha,
          status: d.status,
          environment: { name: d.environment },
        })),
      };
    }
    if (rest[0] === 'repository' && rest[1] === 'commits' && rest[2] !== undefined && method === 'GET') {
      const commit = commits?.find((c) => c.id.startsWith(rest[2] ?? '\0'));
      if (!commit) return notFound('Commit');
      if (rest.length === 3) return { status: 200, body: commitJson(project, commit) };
      if (rest[3] === 'merge_requests' && rest.length === 4) {
        const mrs = mergeRequests.filter((mr) => mr.project === project && mr.commits.includes(commit.id));
        return { status: 200, body: mrs.map(mrBasic) };
      }
    }
    if (rest[0] === 'merge_requests' && rest[1] !== undefined) {
      const mr = mergeRequests.find((m) => m.project === project && String(m.iid) === rest[1]);
      if (!mr) return notFound('Merge Request');
      if (rest.length === 2 && method === 'GET') return { status: 200, body: mrFull(mr) };
      const noteBody = (body as { body?: unknown } | undefined)?.body;
      if (rest[2] === 'notes' && rest.length === 3 && method === 'POST') {
        if (typeof noteBody !== 'string' || noteBody === '') {
          return { status: 400, body: { message: { note: ["can't be blank"] } } };
        }
        nextNoteId += 1;
        const note: StubNote = { project, iid: mr.iid, id: nextNoteId, body: noteBody, edits: 0 };
        stub.notes.push(note);
        return { status: 201, body: noteJson(note) };
      }
      if (rest[2] === 'notes' && rest[3] !== undefined && rest.length === 4 && method === 'PUT') {
        const note = stub.notes.find((n) => n.project === project && n.iid === mr.iid && String(n.id) === rest[3]);
        if (!note) return notFound('Note');
        if (typeof noteBody !== 'string' || noteBody === '') {
          return { status: 400, body: { message: { note: ["can't be blank"] } } };
        }
        note.body = noteBody;
        note.edits += 1;
        return { status: 200, body: noteJson(note) };
      }
    }
    return notFound('Resource');
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse) {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const url = new URL(req.url ?? '/', 'http://stub');
    const rawPath = url.pathname.replace(/^\/api\/v4/, '');
    const segments = rawPath.split('/').filter(Boolean).map(decodeURIComponent);
    const path = `/${segments.join('/')}`;
    let body: unknown;
    try {
      body = raw === '' ? undefined : JSON.parse(raw);
    } catch {
      body = raw;
    }
    const header = req.headers['private-token'];
    const call: GitlabCall = {
      method: req.method ?? 'GET',
      path,
      rawPath,
      query: Object.fromEntries(url.searchParams),
      body,
      privateToken: typeof header === 'string' ? header : undefined,
    };
    calls.push(call);
    const faultAt = faults.findIndex((f) => !f.path || f.path.test(path));
    const fault = faultAt >= 0 ? faults[faultAt] : undefined;
    let out: { status: number; body: unknown; headers?: Record<string, string> };
    if (fault) {
      fault.times -= 1;
      if (fault.times <= 0) faults.splice(faultAt, 1);
      out = {
        status: fault.status,
        body: fault.body ?? { message: `${fault.status} stub fault` },
        headers: fault.headers,
      };
    } else if (call.privateToken !== stub.token) {
      out = { status: 401, body: { message: '401 Unauthorized' } };
    } else {
      out = answer(call.method, segments, call.query, body);
    }
    res.writeHead(out.status, { 'content-type': 'application/json', ...out.headers });
    res.end(JSON.stringify(out.body));
    waits.notify();
  }

  const server: Server = createServer((req, res) => {
    onRequest(req, res).catch(() => res.destroy());
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v4`;
  return stub;
}
