import { z } from 'zod';
import type { RangeQuery } from '../core/evidence-plan.js';
import type { Point } from '../core/judge.js';
import { humanGap } from '../core/time.js';

// The Prometheus HTTP API's range query, as evidence needs it: every way it can go wrong (refused, slow,
// an error status, an answer that is not a query result) is an outcome with a reason a person can act on,
// never an exception. Evidence is a nice-to-have on the paging path: nothing here may stop a page.

/** One series of a range query's answer. */
export interface Series {
  labels: Record<string, string>;
  /** Epoch ms and value; only finite values. */
  points: Point[];
  /** Values that were NaN or ±Inf. */
  dropped: number;
}

export type QueryResult = { ok: true; series: Series[] } | { ok: false; reason: string };

export interface PrometheusClient {
  /** Never throws; aborting `signal` ends the request with its reason (an Error's message) as the outcome. */
  queryRange(query: RangeQuery, signal?: AbortSignal): Promise<QueryResult>;
}

export interface PrometheusClientOptions {
  /** Base URL without a trailing slash. */
  url: string;
  auth?: { kind: 'bearer'; token: string } | { kind: 'basic'; username: string; password: string };
  requestTimeoutMs: number;
}

/**
 * The most an answer may weigh: a range query of a few hundred points per series is kilobytes, so this only
 * stops a template without aggregation over thousands of pods (or a proxy's endless page) from filling memory.
 */
export const MAX_ANSWER_BYTES = 10 * 1024 * 1024;

const sample = z.tuple([z.number(), z.string()]);
const answerSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('success'),
    data: z.object({
      resultType: z.string(),
      result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(sample).optional() })),
    }),
  }),
  z.object({ status: z.literal('error'), errorType: z.string().optional(), error: z.string().optional() }),
]);

export function createPrometheusClient(options: PrometheusClientOptions): PrometheusClient {
  const endpoint = `${options.url}/api/v1/query_range`;
  const headers: Record<string, string> = {
    accept: 'application/json',
    'content-type': 'application/x-www-form-urlencoded',
    'user-agent': 'changepager',
  };
  if (options.auth?.kind === 'bearer') headers.authorization = `Bearer ${options.auth.token}`;
  if (options.auth?.kind === 'basic') {
    const pair = `${options.auth.username}:${options.auth.password}`;
    headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
  }

  return {
    async queryRange(query, signal) {
      const timeout = AbortSignal.timeout(options.requestTimeoutMs);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      // POST: a long filled template does not run into a proxy's URL length limit.
      const body = new URLSearchParams({
        query: query.query,
        start: seconds(query.start),
        end: seconds(query.end),
        step: seconds(query.stepMs),
      });
      let status: number;
      let text: string;
      let contentType: string;
      try {
        // A redirect is reported, not followed: the credentials are for this address only.
        const res = await fetch(endpoint, { method: 'POST', headers, body, signal: combined, redirect: 'manual' });
        status = res.status;
        if (status >= 300 && status < 400) {
          await res.body?.cancel();
          const to = clip(res.headers.get('location') ?? 'nowhere', 200);
          return {
            ok: false,
            reason: `Prometheus answered HTTP ${status}, a redirect to ${to}: set prometheus.url to where it leads`,
          };
        }
        contentType = res.headers.get('content-type') ?? 'no content type';
        text = await readText(res);
      } catch (err) {
        if (signal?.aborted) return { ok: false, reason: abortReason(signal.reason) };
        if (timeout.aborted) {
          const limit = spoken(options.requestTimeoutMs);
          return { ok: false, reason: `no answer from Prometheus within ${limit} (prometheus.request_timeout)` };
        }
        return { ok: false, reason: networkReason(err, endpoint) };
      }
      return interpret(status, contentType, text);
    },
  };
}

/** "300 ms", "10 s", "2 min": a duration in a reason. */
export function spoken(ms: number): string {
  return ms < 1000 ? `${ms} ms` : humanGap(ms);
}

function seconds(ms: number): string {
  return String(ms / 1000);
}

/** The body as text, or an error once it passes MAX_ANSWER_BYTES. */
async function readText(res: Response): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > MAX_ANSWER_BYTES) {
    await res.body?.cancel();
    throw new TooLarge();
  }
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > MAX_ANSWER_BYTES) throw new TooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

class TooLarge extends Error {
  constructor() {
    super(`Prometheus' answer is larger than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB`);
  }
}

function abortReason(reason: unknown): string {
  return reason instanceof Error && reason.name !== 'AbortError' ? reason.message : 'stopped waiting for Prometheus';
}

/** "connection refused (ECONNREFUSED) at http://127.0.0.1:9090": what fetch's "fetch failed" hides in `cause`. */
function networkReason(err: unknown, endpoint: string): string {
  if (err instanceof TooLarge) return err.message;
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  const code = cause?.code;
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name lookup failed',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    ETIMEDOUT: 'connection timed out',
    UND_ERR_SOCKET: 'the connection closed before an answer',
  };
  const what = code ? `${words[code] ?? cause?.message ?? 'network error'} (${code})` : (cause?.message ?? String(err));
  return `cannot reach Prometheus at ${new URL(endpoint).origin}: ${what}`;
}

function interpret(status: number, contentType: string, text: string): QueryResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    const kind = contentType.split(';')[0];
    return {
      ok: false,
      reason:
        status >= 200 && status < 300
          ? `Prometheus' answer is not JSON (${kind})`
          : `Prometheus answered HTTP ${status} (${kind}, not a Prometheus error)`,
    };
  }
  const parsed = answerSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    return {
      ok: false,
      reason: `Prometheus answered HTTP ${status} with something that is not a query result (${at}${issue?.message ?? 'invalid'})`,
    };
  }
  const answer = parsed.data;
  if (answer.status === 'error') {
    const detail = `${answer.errorType ?? 'error'}: ${clip(answer.error ?? 'no detail')}`;
    return { ok: false, reason: `Prometheus answered HTTP ${status}: ${detail}` };
  }
  if (status < 200 || status >= 300) return { ok: false, reason: `Prometheus answered HTTP ${status}` };
  if (answer.data.resultType !== 'matrix') {
    return { ok: false, reason: `Prometheus answered a ${answer.data.resultType}, not the matrix a range query gives` };
  }
  const series: Series[] = [];
  for (const s of answer.data.result) {
    const points: Point[] = [];
    let dropped = 0;
    for (const [t, raw] of s.values ?? []) {
      const value = sampleValue(raw);
      if (value === undefined) {
        return {
          ok: false,
          reason: `Prometheus answered a value that is not a number: ${JSON.stringify(clip(raw, 40))}`,
        };
      }
      if (Number.isFinite(value)) points.push([Math.round(t * 1000), value]);
      else dropped++;
    }
    series.push({ labels: s.metric, points, dropped });
  }
  return { ok: true, series };
}

/** Prometheus writes sample values as strings: "0.25", "1e-3", "NaN", "+Inf", "-Inf". */
function sampleValue(raw: string): number | undefined {
  if (raw === 'NaN') return Number.NaN;
  if (raw === '+Inf' || raw === 'Inf') return Number.POSITIVE_INFINITY;
  if (raw === '-Inf') return Number.NEGATIVE_INFINITY;
  const value = raw.trim() === '' ? Number.NaN : Number(raw);
  return Number.isFinite(value) ? value : undefined;
}

function clip(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
