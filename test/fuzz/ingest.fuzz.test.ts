import { Agent, createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amPayload, createHarness, designDeploy, type Harness, TOKEN } from '../support/harness.js';

// Garbage at both ingest routes, over a real loopback socket so that raw bytes (invalid UTF-8, truncated JSON,
// oversized bodies) reach the real HTTP and JSON parsers. Whatever arrives: the answer is a 2xx or a 4xx, never
// a 5xx; a 4xx stores nothing; the process keeps serving; what was stored before the fuzzing is unchanged.
// FUZZ_RUNS scales the generated cases (default 250, about 2,300 requests in all; FUZZ_RUNS=2500 for a long run).

const RUNS = Number(process.env.FUZZ_RUNS ?? 250);
const LIMIT = 256 * 1024; // http.body_limit_bytes, small so that oversized bodies are cheap to send
const ROUTES = ['/v1/alertmanager', '/v1/deploys'] as const;
const TABLES = ['deploys', 'episodes', 'decisions', 'pages', 'page_members', 'outbox', 'unmapped_people'];

const SQLISH = [
  "'; DROP TABLE episodes; --",
  '" OR 1=1 --',
  "x' UNION SELECT * FROM deploys --",
  'checkout); DELETE FROM outbox; --',
  '%',
  '_',
  '\\',
  '\u0000',
];
const KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', '💥', ...SQLISH];

interface Answer {
  status: number;
  body: string;
}

describe('fuzzing POST /v1/alertmanager and POST /v1/deploys', () => {
  let h: Harness;
  let server: Server;
  let base: string;
  let db: Database.Database;
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  let seeded: { deploy: string; alert: string; rows: string };
  const tally = { requests: 0, byStatus: new Map<number, number>() };

  /** Sends raw bytes as they are: no client-side JSON encoding to smooth anything over. */
  const send = (path: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      const req = httpRequest(
        `${base}${path}`,
        {
          method: 'POST',
          agent,
          headers: {
            authorization: `Bearer ${TOKEN}`,
            'content-type': 'application/json',
            'content-length': String(payload.length),
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            tally.requests++;
            tally.byStatus.set(res.statusCode ?? 0, (tally.byStatus.get(res.statusCode ?? 0) ?? 0) + 1);
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
          });
        },
      );
      // The server may answer 413 and close before the whole body is written: that answer is what counts.
      req.on('error', reject);
      req.end(payload);
    });
  const get = async (path: string) =>
    (await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  const counts = () =>
    TABLES.map((t) => (db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n).join(',');
  /** The seeded rows exactly as stored. */
  const seedRows = () =>
    JSON.stringify([
      db.prepare("SELECT * FROM deploys WHERE id = 'seed-deploy'").all(),
      db.prepare("SELECT * FROM episodes WHERE fingerprint LIKE 'feed%' ORDER BY id").all(),
      db
        .prepare("SELECT d.* FROM decisions d JOIN episodes e ON e.id = d.episode_id WHERE e.fingerprint LIKE 'feed%'")
        .all(),
    ]);

  /** The property every request must keep. */
  const check = async (path: string, body: Buffer | string, headers?: Record<string, string>) => {
    const before = counts();
    const answer = await send(path, body, headers);
    expect(answer.status, answer.body.slice(0, 300)).toBeGreaterThanOrEqual(200);
    expect(answer.status, answer.body.slice(0, 300)).toBeLessThan(500);
    if (answer.status >= 400) {
      expect(JSON.parse(answer.body)).toMatchObject({ error: expect.any(String), message: expect.any(String) });
      expect(counts()).toBe(before);
    }
    return answer;
  };

  beforeAll(async () => {
    h = createHarness({ yaml: `http: { body_limit_bytes: ${LIMIT} }\n` });
    server = createServer(h.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    db = new Database(h.dbPath, { readonly: true });

    const at = new Date(Date.now() - 600_000).toISOString();
    expect((await send('/v1/deploys', JSON.stringify(designDeploy({ id: 'seed-deploy', at })))).status).toBe(201);
    const alerts = [1, 2].map((i) => ({ fingerprint: `feed00000000000${i}`, startsAt: new Date().toISOString() }));
    expect((await send('/v1/alertmanager', JSON.stringify(amPayload(alerts)))).status).toBe(200);
    seeded = {
      deploy: await get('/v1/deploys/seed-deploy'),
      alert: await get('/v1/alerts/feed000000000001'),
      rows: seedRows(),
    };
  });

  afterAll(async () => {
    // The process is alive and serving, nothing logged an error, and what was stored before is untouched.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await get('/v1/deploys/seed-deploy')).toBe(seeded.deploy);
    expect(await get('/v1/alerts/feed000000000001')).toBe(seeded.alert);
    expect(seedRows()).toBe(seeded.rows);
    expect(h.logs.filter((l) => JSON.parse(l).level >= 50)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    console.info(
      `fuzz: ${tally.requests} requests, by status ${JSON.stringify(Object.fromEntries([...tally.byStatus].sort()))}`,
    );
    db.close();
    agent.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await h.close();
  });

  // ----- generated values -----------------------------------------------------------------------------------------

  const text = fc.oneof(
    fc.string(),
    fc.string({ unit: 'grapheme' }),
    fc.constantFrom(...SQLISH),
    fc.string({ unit: fc.constantFrom('a', '\u0000', '\ud800', '\uffff', '"', '\\', '\n') }),
  );
  const wrong = fc.oneof(
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constant([]),
    fc.constant({}),
    fc.array(text, { maxLength: 3 }),
  );
  const hostile = fc.oneof(text, wrong);
  /** Label sets with hostile keys (prototype names, SQL, empty) and values that are sometimes not strings. */
  const labels = fc.dictionary(
    fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 12 })),
    fc.oneof(text, text, wrong),
    {
      maxKeys: 12,
    },
  );
  const instant = fc.oneof(
    fc
      .date({ min: new Date('1970-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
      .map((d) => d.toISOString()),
    fc.constantFrom(
      '0001-01-01T00:00:00Z',
      '2026-11-26T11:44:24.65941061Z',
      '2026-11-26T12:00:00+01:00',
      'yesterday',
      '',
    ),
    hostile,
  );
  const alert = fc.record(
    {
      status: fc.oneof(fc.constantFrom('firing', 'resolved'), hostile),
      labels: fc.oneof(labels, labels, wrong),
      annotations: fc.oneof(labels, wrong),
      startsAt: instant,
      endsAt: instant,
      generatorURL: hostile,
      fingerprint: fc.oneof(fc.stringMatching(/^[0-9a-f]{16}$/), hostile),
    },
    { requiredKeys: [] },
  );
  const amBody = fc.record(
    {
      version: fc.oneof(fc.constant('4'), fc.constant('4'), hostile),
      groupKey: fc.oneof(text, wrong),
      status: fc.oneof(fc.constantFrom('firing', 'resolved'), hostile),
      receiver: hostile,
      externalURL: hostile,
      truncatedAlerts: fc.oneof(fc.nat(), wrong),
      groupLabels: fc.oneof(labels, wrong),
      commonLabels: fc.oneof(labels, wrong),
      commonAnnotations: fc.oneof(labels, wrong),
      alerts: fc.oneof(fc.array(alert, { maxLength: 6 }), wrong),
    },
    { requiredKeys: [] },
  );
  const identity = fc.oneof(
    fc.record({ email: fc.oneof(fc.emailAddress(), hostile), login: hostile, name: hostile }, { requiredKeys: [] }),
    wrong,
  );
  const url = fc.oneof(fc.webUrl(), fc.constantFrom('javascript:alert(1)', 'file:///etc/passwd', 'ftp://x'), hostile);
  const deployBody = fc.record(
    {
      id: fc.oneof(fc.string({ minLength: 1, maxLength: 300 }), fc.constant('seed-deploy'), wrong),
      service: fc.oneof(fc.constantFrom('checkout', 'search'), hostile),
      environment: hostile,
      version: hostile,
      previousVersion: hostile,
      stage: fc.oneof(fc.constantFrom('canary', 'partial', 'full'), hostile),
      percent: fc.oneof(fc.double(), wrong, text),
      hosts: fc.oneof(fc.array(hostile, { maxLength: 4 }), wrong),
      at: instant,
      changes: fc.oneof(
        fc.array(
          fc.record(
            {
              author: identity,
              mergedBy: identity,
              commit: fc.oneof(fc.record({ sha: hostile, url, message: hostile }, { requiredKeys: [] }), wrong),
              pullRequest: fc.oneof(fc.record({ number: fc.oneof(fc.integer(), wrong), url, title: hostile }), wrong),
            },
            { requiredKeys: [] },
          ),
          { maxLength: 4 },
        ),
        wrong,
      ),
    },
    { requiredKeys: [] },
  );

  /** Byte-level damage to a valid body: flips, invalid UTF-8, cuts, splices. */
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      bytes: fc.constantFrom([0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf0, 0x9f], [0x00], [0x22], [0x5c], [0x7b]),
    }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), length: fc.nat({ max: 40 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), length: fc.nat({ max: 60 }) }),
  );
  type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;
  function mutate(source: Buffer, mutations: Mutation[]): Buffer {
    let b = source;
    for (const m of mutations) {
      const at = b.length === 0 ? 0 : m.at % b.length;
      if (m.kind === 'flip') b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at + 1)]);
      if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
      if (m.kind === 'cut') b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
      if (m.kind === 'truncate') b = b.subarray(0, at);
      if (m.kind === 'repeat') b = Buffer.concat([b.subarray(0, at + m.length), b.subarray(at)]);
    }
    return b;
  }
  const validAm = () =>
    Buffer.from(
      JSON.stringify(amPayload([{ fingerprint: 'a1b2c3d4e5f60718', startsAt: '2026-11-26T11:09:00.123456789Z' }])),
    );
  const validDeploy = () => Buffer.from(JSON.stringify(designDeploy({ id: 'mutant-base' })));

  // ----- properties -------------------------------------------------------------------------------------------------

  it('answers any JSON value with a 2xx or a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), fc.jsonValue({ maxDepth: 6 }), async (route, value) => {
        await check(route, JSON.stringify(value) ?? 'null');
      }),
      { numRuns: RUNS },
    );
  });

  it('answers Alertmanager-shaped payloads with wrong, missing and hostile fields with a 2xx or a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(amBody, async (body) => {
        const answer = await check('/v1/alertmanager', JSON.stringify(body));
        if (answer.status === 200) expect(JSON.parse(answer.body).accepted).toBe((body.alerts as unknown[]).length);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('answers deploy-shaped payloads with wrong, missing and hostile fields with a 2xx or a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(deployBody, async (body) => {
        const answer = await check('/v1/deploys', JSON.stringify(body));
        if (answer.status === 201)
          expect(JSON.parse(answer.body).id).toEqual(body.id ?? expect.stringMatching(/^dep-/));
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('answers byte-mangled valid bodies (invalid UTF-8, cuts, splices) with a 2xx or a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        async (route, mutations) => {
          await check(route, mutate(route === '/v1/alertmanager' ? validAm() : validDeploy(), mutations));
        },
      ),
      { numRuns: RUNS * 3 },
    );
  });

  it('answers arbitrary content types and charsets with a 2xx or a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES),
        fc.oneof(
          fc.constantFrom(
            'application/json; charset=utf-16',
            'application/json; charset=latin1',
            'application/json; charset=""',
            'application/x-www-form-urlencoded',
            'text/plain',
            'multipart/form-data; boundary=x',
            'application/json;;;',
            '',
          ),
          fc.string({ maxLength: 40 }).filter((s) => /^[\t\x20-\x7e]*$/.test(s)),
        ),
        async (route, type) => {
          await check(route, validAm(), { 'content-type': type });
        },
      ),
      { numRuns: RUNS },
    );
  });

  // ----- the cases a generator rarely reaches ---------------------------------------------------------------------

  const nested = (depth: number, open: string, close: string, inner = '1') =>
    `${open.repeat(depth)}${inner}${close.repeat(depth)}`;
  const labelsOf = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`label_${i}`, `v${i}`]));

  it.each<[string, string, () => Buffer | string, number[]]>([
    ['a body just over the limit', '/v1/alertmanager', () => 'x'.repeat(LIMIT + 1), [413]],
    ['a 20 MiB body', '/v1/deploys', () => Buffer.alloc(20 * 1024 * 1024, 0x20), [413]],
    ['100,000 nested arrays', '/v1/alertmanager', () => nested(100_000, '[', ']'), [400]],
    ['40,000 nested objects', '/v1/deploys', () => nested(40_000, '{"a":', '}'), [400]],
    [
      'nesting inside a label value',
      '/v1/alertmanager',
      () =>
        JSON.stringify(amPayload([{ fingerprint: 'ab', startsAt: '2026-11-26T11:09:00Z' }])).replace(
          '"checkout"',
          nested(5_000, '{"x":', '}', '"y"'),
        ),
      [400],
    ],
    [
      'an alert with 5,000 labels',
      '/v1/alertmanager',
      () =>
        JSON.stringify(amPayload([{ fingerprint: 'b1', startsAt: '2026-11-26T11:09:00Z', labels: labelsOf(5000) }])),
      [200],
    ],
    [
      '500 alerts in one notification',
      '/v1/alertmanager',
      () =>
        JSON.stringify(
          amPayload(
            Array.from({ length: 500 }, (_, i) => ({ fingerprint: `b2${i}`, startsAt: '2026-11-26T11:09:00Z' })),
          ),
        ),
      [200],
    ],
    [
      '__proto__ and constructor keys at every level',
      '/v1/alertmanager',
      () =>
        JSON.stringify(amPayload([{ fingerprint: 'b3', startsAt: '2026-11-26T11:09:00Z' }]))
          .replace('{', '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},')
          .replace('"labels":{', '"labels":{"__proto__":"x","constructor":"y",'),
      [200],
    ],
    [
      'a deploy with __proto__ in the author',
      '/v1/deploys',
      () =>
        JSON.stringify(designDeploy({ id: 'proto-deploy' })).replace(
          '"author":{',
          '"author":{"__proto__":{"polluted":true},',
        ),
      [201],
    ],
    [
      'numbers where strings belong',
      '/v1/deploys',
      () => JSON.stringify(designDeploy({ service: 5, version: 1e308 })),
      [400],
    ],
    [
      // Found by this fuzzer: zod took ten fractional digits, the episode key did not, and the answer was a 500.
      'a startsAt with ten fractional digits',
      '/v1/alertmanager',
      () => JSON.stringify(amPayload([{ fingerprint: 'b4', startsAt: '2026-11-26T11:09:00.1123456789Z' }])),
      [400],
    ],
    ['a lone invalid UTF-8 byte', '/v1/alertmanager', () => Buffer.from([0xff]), [400]],
    ['an empty body', '/v1/deploys', () => '', [400]],
    ['JSON null', '/v1/alertmanager', () => 'null', [400]],
    [
      'a UTF-8 BOM before the JSON',
      '/v1/deploys',
      () => `\ufeff${JSON.stringify(designDeploy({ id: 'bom' }))}`,
      [201, 400],
    ],
  ])('answers %s with a 2xx or a 4xx (%s)', async (_intent, route, body, expected) => {
    const answer = await check(route, body());
    expect(expected).toContain(answer.status);
  });

  it('answers a body whose declared length is a lie', async () => {
    // Fewer bytes than declared: the connection ends early; the server must answer 4xx or drop it, not crash.
    const answer = await new Promise<number>((resolve) => {
      const req = httpRequest(`${base}/v1/alertmanager`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': '1000' },
      });
      req.on('response', (res) => resolve(res.statusCode ?? 0));
      req.on('error', () => resolve(0));
      req.end('{"version":"4"');
      setTimeout(() => req.destroy(), 300);
    });
    expect(answer === 0 || (answer >= 400 && answer < 500)).toBe(true);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});
