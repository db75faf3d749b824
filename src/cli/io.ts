import { readFileSync } from 'node:fs';

// What the pipeline commands (deploy, verdict) touch of the outside world, injected so that tests run them
// in-process against a real listening service with a settable clock.

export interface CliIo {
  env: Readonly<Record<string, string | undefined>>;
  fetch: typeof fetch;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readFile: (path: string) => string;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}

export function processIo(): CliIo {
  return {
    env: process.env,
    fetch: globalThis.fetch,
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    readFile: (p) => readFileSync(p, 'utf8'),
    now: Date.now,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
}

/**
 * The address `changepager serve` listens on with the embedded default config (config/changepager.yaml), so the
 * pipeline commands work on the same machine as a service started with `npm start` without any setting.
 */
export const LOCAL_URL = 'http://127.0.0.1:8080';

export interface Endpoint {
  url: string;
  token?: string;
  /** Neither --url nor CHANGEPAGER_URL was given: the URL is LOCAL_URL, and a failure to reach it says so. */
  local: boolean;
}

/**
 * Where the service is and how to authenticate: flags first, then CHANGEPAGER_URL and CHANGEPAGER_TOKEN, then
 * the local default. A URL that is not http(s) is recorded in `problems`, with the other usage problems.
 */
export function endpoint(values: { url?: string; token?: string }, env: CliIo['env'], problems: string[]): Endpoint {
  const given = values.url ?? (env.CHANGEPAGER_URL || undefined);
  const url = given ?? LOCAL_URL;
  if (!/^https?:\/\//.test(url)) problems.push(`--url must be an http(s) URL, not "${url}"`);
  const token = values.token ?? env.CHANGEPAGER_TOKEN;
  return { url: url.replace(/\/+$/, ''), ...(token ? { token } : {}), local: given === undefined };
}

/** One line for a list of usage problems, or a count and one indented line per problem. */
export function usageProblems(problems: readonly string[]): string {
  if (problems.length === 1) return `${problems[0]}`;
  return `${problems.length} problems:${problems.map((p) => `\n  - ${p}`).join('')}`;
}

export interface Answer {
  status: number;
  body: unknown;
  retryAfterSeconds?: number;
}

/** One HTTP exchange with the service; a network failure throws, any HTTP status is an answer. */
export async function exchange(
  io: CliIo,
  target: Endpoint,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<Answer> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (target.token) headers.Authorization = `Bearer ${target.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await io.fetch(`${target.url}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (a proxy's error page): keep the text for the message.
  }
  const retryAfter = Number(res.headers.get('retry-after'));
  return {
    status: res.status,
    body: parsed,
    ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}),
  };
}

/** 429 and 5xx may succeed later; other 4xx will not. */
export function retryable(status: number): boolean {
  return status === 429 || status >= 500;
}

/** The server's own words for a failed answer: "400 invalid_payload: …" and each problem on its line. */
export function describeFailure(answer: Answer): string {
  const b = answer.body as {
    error?: unknown;
    message?: unknown;
    details?: { problems?: { path: string; message: string }[] };
  } | null;
  if (b && typeof b === 'object' && typeof b.error === 'string') {
    const problems = (b.details?.problems ?? []).map((p) => `\n  - ${p.path || '(body)'}: ${p.message}`).join('');
    return `${answer.status} ${b.error}: ${String(b.message ?? '')}${problems}`;
  }
  const text = typeof answer.body === 'string' ? answer.body.slice(0, 300) : JSON.stringify(answer.body);
  return `${answer.status}${text ? `: ${text}` : ''}`;
}

export function networkFailure(target: Endpoint, err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message;
  const hint = target.local ? ' (the local default: set --url or CHANGEPAGER_URL to reach another service)' : '';
  return `cannot reach ${target.url}: ${why}${hint}`;
}
