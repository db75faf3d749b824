import type express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness, TOKEN } from '../support/harness.js';

// Every route the app has, found by walking express's router (so a route added later is covered without
// editing this file): /v1 answers 401 without a token, with a wrong one, and with one that differs from a real
// token only in its last (or first) character. The routes meant to be open are listed here, on purpose, so a
// new unauthenticated route fails this test until someone decides it should be open.

/** Open on purpose: probes, the scraper, the API description (it holds no data), the login form, page assets. */
const OPEN = new Set(['GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /v1/openapi.json', 'GET /login']);
const isOpen = (method: string, path: string) =>
  OPEN.has(`${method} ${path}`) || (method === 'GET' && /^\/ui\/[^/]+$/.test(path));
/** They check a token themselves, from a form field (the login form) or hold nothing (logout): test/ui/ covers them. */
const OWN_CHECK = new Set(['POST /login', 'POST /logout']);
const CI_TOKEN = 'ci-token-9f8e7d6c5b4a39281706f5e4';
const GITLAB =
  'gitlab: { token_env: GITLAB_TOKEN, webhook_secret_env: GITLAB_HOOK, api_url: "http://127.0.0.1:9/api/v4" }';
const GITLAB_ENV = { GITLAB_TOKEN: 'glpat-routes-auth', GITLAB_HOOK: 'routes-auth-gitlab-secret' };
const GITHUB = 'github: { token_env: GITHUB_TOKEN, webhook_secret_env: GITHUB_HOOK, api_url: "http://127.0.0.1:9" }';
const GITHUB_ENV = { GITHUB_TOKEN: 'ghp_routes_auth', GITHUB_HOOK: 'routes-auth-github-secret' };
/** Webhooks that a code host authenticates with its own secret, never with a bearer token. */
const isHook = (path: string) => path.startsWith('/v1/hooks/');

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
  rawPath?: string;
}

/** [METHOD, path] for every route, with router mount paths prefixed. */
function routesOf(app: express.Express): [string, string][] {
  const out: [string, string][] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const method of Object.keys(layer.route.methods).filter((m) => m !== '_all')) {
          for (const p of paths) out.push([method.toUpperCase(), `${prefix}${p}`]);
        }
      } else if (layer.handle.stack) {
        const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
        walk(layer.handle.stack, `${prefix}${mount}`);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return out;
}

/** A concrete URL for a route pattern: parameters filled with a placeholder. */
const concrete = (path: string) =>
  path
    .replace(/[{}]/g, '')
    .replace(/:[A-Za-z0-9_]+/g, 'x')
    .replace(/\*[A-Za-z0-9_]+/g, 'x');

describe('authentication on every route', () => {
  let h: Harness;
  let routes: [string, string][];

  beforeAll(() => {
    // Slack, GitLab and GitHub configured too, so that their endpoints (signed by Slack or GitHub, or holding
    // GitLab's secret token, not a bearer token) are walked.
    h = createHarness({
      yaml: [
        'auth: { tokens: [ { name: ci, token_env: CI_TOKEN } ] }',
        'slack: { bot_token_env: SLACK_BOT, signing_secret_env: SLACK_SIGNING, api_url: "http://127.0.0.1:9/api/",',
        '         bot_id: B0, bot_user_id: U0 }',
        GITLAB,
        GITHUB,
      ].join('\n'),
      env: {
        CI_TOKEN,
        SLACK_BOT: 'xoxb-routes-auth',
        SLACK_SIGNING: 'routes-auth-signing-secret',
        ...GITLAB_ENV,
        ...GITHUB_ENV,
      },
    });
    routes = routesOf(h.app);
  });
  afterAll(async () => {
    await h.close();
  });

  const send = (method: string, path: string, authorization?: string) => {
    const req = request(h.app)[method.toLowerCase() as 'get' | 'post' | 'put' | 'delete' | 'patch'](concrete(path));
    if (authorization !== undefined) req.set('Authorization', authorization);
    return method === 'GET' || method === 'HEAD' ? req : req.set('Content-Type', 'application/json').send('{}');
  };

  it('finds the routes it checks (the walk itself works)', () => {
    const names = routes.map(([m, p]) => `${m} ${p}`);
    for (const r of [
      'POST /v1/alertmanager',
      'POST /v1/deploys',
      'GET /v1/deploys/:id',
      'GET /v1/people/unmapped',
      'POST /slack/events',
      'POST /v1/hooks/gitlab',
      'POST /v1/hooks/github',
    ]) {
      expect(names).toContain(r);
    }
    for (const r of ['GET /healthz', 'GET /readyz', 'GET /metrics']) expect(names).toContain(r);
  });

  const wrong: [string, (token: string) => string | undefined][] = [
    ['no Authorization header', () => undefined],
    ['a wrong token', () => 'Bearer wrong-token'],
    ['a token off by its last character', (t) => `Bearer ${t.slice(0, -1)}${t.endsWith('0') ? '1' : '0'}`],
    ['a token off by its first character', (t) => `Bearer ${t.startsWith('z') ? 'y' : 'z'}${t.slice(1)}`],
    ['a token with a character too many', (t) => `Bearer ${t}0`],
    ['a token missing its last character', (t) => `Bearer ${t.slice(0, -1)}`],
    ['the token without the Bearer scheme', (t) => t],
    ['the token under the Basic scheme', (t) => `Basic ${t}`],
    ['an empty Bearer', () => 'Bearer '],
  ];

  it.each(wrong)('answers 401 unauthorized on every protected route for %s', async (_intent, header) => {
    const protectedRoutes = routes.filter(([m, p]) => !isOpen(m, p) && !OWN_CHECK.has(`${m} ${p}`));
    expect(protectedRoutes.length).toBeGreaterThanOrEqual(8);
    for (const token of [TOKEN, CI_TOKEN]) {
      for (const [method, path] of protectedRoutes) {
        const res = await send(method, path, header(token));
        expect(res.status, `${method} ${path} with ${header(token)}`).toBe(401);
        // Slack's endpoint checks Slack's request signature (Bolt answers its own 401); the rest are ours, and
        // only the bearer routes offer a Bearer challenge.
        // A code host's webhook fails its own proof (no signature, no secret token): invalid_signature.
        if (!path.startsWith('/slack/'))
          expect(res.body.error).toBe(isHook(path) ? 'invalid_signature' : 'unauthorized');
        if (!path.startsWith('/slack/') && !isHook(path)) expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
        expect(res.text).not.toContain(token);
      }
    }
  });

  it('lets each configured token through on every protected route (so the 401s above are about the token)', async () => {
    for (const token of [TOKEN, CI_TOKEN]) {
      // Not the Slack endpoint nor the code hosts' webhooks: no bearer token opens them, only their own secret.
      for (const [method, path] of routes.filter(([m, p]) => !isOpen(m, p) && p.startsWith('/v1') && !isHook(p))) {
        const res = await send(method, path, `Bearer ${token}`);
        expect(res.status, `${method} ${path}`).not.toBe(401);
      }
    }
  });

  it('leaves open only the routes listed as open, and they answer without a token', async () => {
    for (const [method, path] of routes.filter(([m, p]) => isOpen(m, p))) {
      const status = (await send(method, path)).status;
      expect(status === 200 || (path.startsWith('/ui/') && status === 404), `${method} ${path}: ${status}`).toBe(true);
    }
  });
});

// A request that is not authenticated must cost next to nothing: its token (or Slack's signature) is checked
// before the body is read. Each body here is not JSON, so a route that parsed it first would answer 400 or 413.
describe('the token is checked before the body is read', () => {
  let h: Harness;
  const garbage = (bytes: number) => 'x'.repeat(bytes);

  beforeAll(() => {
    h = createHarness({
      yaml: [
        'slack: { bot_token_env: SLACK_BOT, signing_secret_env: SLACK_SIGNING, api_url: "http://127.0.0.1:9/api/",',
        '         bot_id: B0, bot_user_id: U0 }',
        GITLAB,
        GITHUB,
      ].join('\n'),
      env: { SLACK_BOT: 'xoxb-routes-auth', SLACK_SIGNING: 'routes-auth-signing-secret', ...GITLAB_ENV, ...GITHUB_ENV },
    });
  });
  afterAll(async () => {
    await h.close();
  });

  it('answers 401 to a 6 MB unauthenticated body on every POST route under /v1', async () => {
    const posts = routesOf(h.app).filter(
      ([m, p]) => m === 'POST' && p.startsWith('/v1/') && p !== '/v1/deploys/flagger',
    );
    expect(posts.length).toBeGreaterThanOrEqual(3);
    expect(posts.map(([, p]) => p)).toEqual(expect.arrayContaining(['/v1/hooks/gitlab', '/v1/hooks/github']));
    for (const [, path] of posts) {
      const res = await request(h.app)
        .post(concrete(path))
        .type('json')
        .send(garbage(6 * 1024 * 1024));
      expect(res.status, path).toBe(401);
      expect(res.body.error, path).toBe(isHook(path) ? 'invalid_signature' : 'unauthorized');
    }
  });

  it('refuses an unauthenticated Flagger body over 16 KiB without parsing it', async () => {
    const res = await request(h.app)
      .post('/v1/deploys/flagger')
      .type('json')
      .send(garbage(1024 * 1024));
    expect(res.status).toBe(413);
    expect(res.body.error).toBe('payload_too_large');
    expect(res.body.message).toMatch(/Without an Authorization header the body may be at most 16 KiB/);
  });

  it('still reads metadata.token from a small Flagger body, and a larger body with a Bearer header', async () => {
    const event = (token: string, pad = '') => ({
      name: 'podinfo',
      namespace: 'test',
      metadata: { eventMessage: 'Advance podinfo.test canary weight 10', token, pad },
    });
    const wrong = await request(h.app).post('/v1/deploys/flagger').send(event('wrong-token'));
    expect(wrong.status).toBe(401);
    // The right token in the body: authenticated, and answered on its merits (no deploy to attach it to).
    const right = await request(h.app).post('/v1/deploys/flagger').send(event(TOKEN));
    expect(right.status).toBe(422);
    const large = await request(h.app)
      .post('/v1/deploys/flagger')
      .set('Authorization', `Bearer ${TOKEN}`)
      .send(event('', 'p'.repeat(100 * 1024)));
    expect(large.status).toBe(422);
  });

  it('answers a Slack request without a signature with 401 before reading its body', async () => {
    const res = await request(h.app)
      .post('/slack/events')
      .type('form')
      .set('X-Slack-Request-Timestamp', String(Math.floor(Date.now() / 1000)))
      .send(garbage(1024 * 1024));
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('unauthorized');
    expect(res.body.message).toMatch(/signature/);
  });

  it('reads at most 256 KiB of a signed Slack request before checking the signature', async () => {
    const res = await request(h.app)
      .post('/slack/events')
      .type('form')
      .set('X-Slack-Request-Timestamp', String(Math.floor(Date.now() / 1000)))
      .set('X-Slack-Signature', `v0=${'0'.repeat(64)}`)
      .send(garbage(1024 * 1024));
    expect(res.status).toBe(413);
  });
});
