import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrometheusClient, MAX_ANSWER_BYTES } from '../../src/evidence/prometheus.js';
import { startHangingServer } from '../support/prometheus.js';

// The Prometheus client against a stand-in that answers whatever a test tells it to, over real HTTP on
// loopback: what each way of going wrong turns into, and what the client sends.

interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  form: URLSearchParams;
}

let server: Server;
let url: string;
let answer: (res: ServerResponse) => void = (res) => res.end();
const seen: Seen[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        form: new URLSearchParams(Buffer.concat(chunks).toString('utf8')),
      });
      answer(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const QUERY = {
  query: 'sum(rate(x{version="v2"}[2m]))',
  start: 1_764_151_200_000,
  end: 1_764_151_620_500,
  stepMs: 15_000,
};
const json = (status: number, body: unknown) => (res: ServerResponse) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
const matrix = (values: [number, string][]) =>
  json(200, { status: 'success', data: { resultType: 'matrix', result: [{ metric: { version: 'v2' }, values }] } });

describe('queryRange', () => {
  const client = () => createPrometheusClient({ url, requestTimeoutMs: 5000 });

  it('posts the query, start, end and step in seconds to /api/v1/query_range', async () => {
    answer = matrix([]);
    seen.length = 0;
    await client().queryRange(QUERY);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'POST', path: '/api/v1/query_range' });
    expect(Object.fromEntries(seen[0]?.form ?? [])).toEqual({
      query: 'sum(rate(x{version="v2"}[2m]))',
      start: '1764151200',
      end: '1764151620.5',
      step: '15',
    });
    expect(seen[0]?.headers.authorization).toBeUndefined();
  });

  it.each([
    { intent: 'a bearer token', auth: { kind: 'bearer', token: 'p-token' } as const, header: 'Bearer p-token' },
    {
      intent: 'basic auth',
      auth: { kind: 'basic', username: 'changepager', password: 'pw:x' } as const,
      header: `Basic ${Buffer.from('changepager:pw:x').toString('base64')}`,
    },
  ])('sends $intent as the Authorization header', async ({ auth, header }) => {
    answer = matrix([]);
    seen.length = 0;
    await createPrometheusClient({ url, auth, requestTimeoutMs: 5000 }).queryRange(QUERY);
    expect(seen[0]?.headers.authorization).toBe(header);
  });

  it('reads the points in ms, and leaves out NaN and ±Inf, counting them', async () => {
    answer = matrix([
      [1764151200, '0.25'],
      [1764151215.5, 'NaN'],
      [1764151230, '+Inf'],
      [1764151245, '-Inf'],
      [1764151260, '1e-3'],
    ]);
    expect(await client().queryRange(QUERY)).toEqual({
      ok: true,
      series: [
        {
          labels: { version: 'v2' },
          points: [
            [1764151200000, 0.25],
            [1764151260000, 0.001],
          ],
          dropped: 3,
        },
      ],
    });
  });

  it.each([
    {
      intent: "Prometheus' own error (a query it cannot run)",
      respond: json(400, {
        status: 'error',
        errorType: 'bad_data',
        error: 'expected type range vector in call to rate',
      }),
      reason: 'Prometheus answered HTTP 400: bad_data: expected type range vector in call to rate',
    },
    {
      intent: 'a proxy in front answering 503 with a page',
      respond: (res: ServerResponse) => res.writeHead(503, { 'content-type': 'text/html' }).end('<h1>down</h1>'),
      reason: 'Prometheus answered HTTP 503 (text/html, not a Prometheus error)',
    },
    {
      intent: 'a login page answered 200',
      respond: (res: ServerResponse) =>
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<form>sign in</form>'),
      reason: "Prometheus' answer is not JSON (text/html)",
    },
    {
      intent: 'JSON that is not a query result',
      respond: json(200, {
        status: 'success',
        data: { resultType: 'matrix', result: [{ metric: {}, values: [[1, 2]] }] },
      }),
      reason:
        'Prometheus answered HTTP 200 with something that is not a query result (data.result.0.values.0.1: Invalid input: expected string, received number)',
    },
    {
      intent: 'an instant vector where a matrix belongs',
      respond: json(200, { status: 'success', data: { resultType: 'vector', result: [] } }),
      reason: 'Prometheus answered a vector, not the matrix a range query gives',
    },
    {
      intent: 'a value that is not a number',
      respond: matrix([[1764151200, 'lots']]),
      reason: 'Prometheus answered a value that is not a number: "lots"',
    },
    {
      intent: 'a success answer with an error status',
      respond: json(500, { status: 'success', data: { resultType: 'matrix', result: [] } }),
      reason: 'Prometheus answered HTTP 500',
    },
    {
      intent: 'a redirect, which is not followed with the credentials',
      respond: (res: ServerResponse) => res.writeHead(302, { location: '/sso/login' }).end(),
      reason: 'Prometheus answered HTTP 302, a redirect to /sso/login: set prometheus.url to where it leads',
    },
    {
      intent: 'an answer too large to hold',
      respond: (res: ServerResponse) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(1024 * 1024, 0x20);
        for (let i = 0; i <= MAX_ANSWER_BYTES / chunk.length; i++) res.write(chunk);
        res.end();
      },
      reason: "Prometheus' answer is larger than 10 MiB",
    },
  ])('$intent is an outcome with a reason, not an exception', async ({ respond, reason }) => {
    answer = respond;
    expect(await client().queryRange(QUERY)).toEqual({ ok: false, reason });
  });

  it('nothing listening: the address and the refusal', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const result = await createPrometheusClient({ url: `http://127.0.0.1:${port}`, requestTimeoutMs: 5000 }).queryRange(
      QUERY,
    );
    expect(result).toEqual({
      ok: false,
      reason: `cannot reach Prometheus at http://127.0.0.1:${port}: connection refused (ECONNREFUSED)`,
    });
  });

  describe('a Prometheus that never answers', () => {
    it('gives up after request_timeout, closing its connection', async () => {
      const hanging = await startHangingServer();
      try {
        const result = await createPrometheusClient({ url: hanging.url, requestTimeoutMs: 200 }).queryRange(QUERY);
        expect(result).toEqual({
          ok: false,
          reason: 'no answer from Prometheus within 200 ms (prometheus.request_timeout)',
        });
        expect(hanging.accepted()).toBe(1);
        await expect.poll(() => hanging.closedByClient()).toBe(1);
      } finally {
        await hanging.close();
      }
    });

    it('gives up when the caller does, with the caller’s reason', async () => {
      const hanging = await startHangingServer();
      try {
        const stop = new AbortController();
        const pending = createPrometheusClient({ url: hanging.url, requestTimeoutMs: 60_000 }).queryRange(
          QUERY,
          stop.signal,
        );
        await expect.poll(() => hanging.accepted()).toBe(1);
        stop.abort(new Error('the evidence budget ran out'));
        expect(await pending).toEqual({ ok: false, reason: 'the evidence budget ran out' });
      } finally {
        await hanging.close();
      }
    });
  });
});
