import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { amPayload, createHarness, designDeploy, fakeClock, type Harness, TOKEN } from '../support/harness.js';

// Who may see the timeline page and what a read-only token may do. The page shows names and emails, so it
// needs the same API token as /v1: as a bearer header, or typed once into the login form, which sets a cookie.

const READ_TOKEN = 'dashboard-read-only-0123456789';
/** What a browser's navigation sends: the page answers it in HTML, everything else in the API's JSON. */
const BROWSER = { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
const clock = fakeClock('2026-11-26T11:20:00Z');

function harness(opts: { yaml?: string; env?: Record<string, string | undefined>; dir?: string } = {}): Harness {
  return createHarness({
    now: clock.now,
    yaml: opts.yaml ?? 'auth: { tokens: [ { name: dashboard, token_env: DASH_TOKEN, role: read } ] }\n',
    env: { DASH_TOKEN: READ_TOKEN, ...opts.env },
    ...(opts.dir ? { dir: opts.dir } : {}),
  });
}

/** A database directory that outlives one harness, as a restart keeps its data. */
function keptDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'changepager-auth-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The sessions stored in the database, read through a connection of its own. */
function storedSessions(h: Harness): number {
  const db = new Database(h.dbPath, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM sessions').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Signs in through the form and returns the Cookie header value the browser would send back. */
async function login(h: Harness, token: string, headers: Record<string, string> = {}) {
  const res = await request(h.app)
    .post('/login')
    .set({ ...BROWSER, ...headers })
    .type('form')
    .send({ token, next: '/services/checkout?range=PT6H' });
  const cookie = res.headers['set-cookie']?.[0];
  return { res, cookie, sent: cookie?.split(';')[0] ?? '' };
}

describe('timeline authentication', () => {
  let h: Harness;
  afterEach(async () => {
    clock.set('2026-11-26T11:20:00Z');
    await h.close();
  });

  it.each([
    ['GET', '/'],
    ['GET', '/services/checkout'],
  ])('%s %s without a token answers a browser 401 with the login form, not the data', async (_m, path) => {
    h = harness();
    await request(h.app).post('/v1/deploys').set('Authorization', `Bearer ${TOKEN}`).send(designDeploy());
    const res = await request(h.app).get(path).set(BROWSER);
    expect(res.status).toBe(401);
    expect(res.type).toBe('text/html');
    expect(res.text).toContain('<form method="post" action="/login">');
    expect(res.text).toContain(`name="next" value="${path}"`);
    expect(res.text).not.toContain('alice@example.com');
    expect(res.text).not.toContain('2026.11.26-3f2a9c1');
  });

  it.each(['/v1/timeline', '/', '/services/checkout'])(
    'answers GET %s without a token, from a client that is not a browser, with the API 401',
    async (path) => {
      h = harness();
      const res = await request(h.app).get(path).set('Accept', '*/*');
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('unauthorized');
      expect(res.headers['www-authenticate']).toContain('Bearer');
    },
  );

  it('shows the page to the Authorization header, without any login', async () => {
    h = harness();
    const res = await request(h.app).get('/').set('Authorization', `Bearer ${READ_TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.text).toContain('Token: dashboard (read-only)');
  });

  it('signs in with a token: an HttpOnly, SameSite=Strict cookie holding no token, then back to the page', async () => {
    h = harness();
    const { res, cookie, sent } = await login(h, READ_TOKEN);
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/services/checkout?range=PT6H');
    expect(cookie).toMatch(/^changepager_session=v2\.[\w-]{22}\.[\w-]{43}; Max-Age=43200; Path=\/; /);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).not.toContain('Secure');
    expect(cookie).not.toContain(READ_TOKEN);
    expect(h.logs.join('\n')).not.toContain(READ_TOKEN);

    const page = await request(h.app).get('/services/checkout').set('Cookie', sent);
    expect(page.status).toBe(200);
    expect(page.text).toContain('action="/logout"');
    expect((await request(h.app).get('/v1/timeline').set('Cookie', sent)).status).toBe(200);
    expect((await request(h.app).get('/v1/deploys').set('Cookie', sent)).status).toBe(200);
  });

  it('rejects a wrong token at the login form with 401 and sets no cookie', async () => {
    h = harness();
    const { res, cookie } = await login(h, `${READ_TOKEN}x`);
    expect(res.status).toBe(401);
    expect(res.text).toContain('That token is not one of the configured API tokens.');
    expect(cookie).toBeUndefined();
  });

  it.each([
    ['expired', (sent: string) => sent, 12 * 3600_000 + 1],
    ['for another session id', (sent: string) => sent.replace(/v2\.(.)/, (_m, c) => `v2.${c === 'A' ? 'B' : 'A'}`), 0],
    ['forged without the token', (sent: string) => sent.replace(/[\w-]{43}$/, 'A'.repeat(43)), 0],
    ['garbage', () => 'changepager_session=<script>', 0],
  ])('does not accept a cookie that is %s', async (_intent, mangle, later) => {
    h = harness();
    const { sent } = await login(h, READ_TOKEN);
    clock.advance(later);
    expect((await request(h.app).get('/').set('Cookie', mangle(sent))).status).toBe(401);
    expect((await request(h.app).get('/v1/timeline').set('Cookie', mangle(sent))).status).toBe(401);
  });

  it('ends every session when the token it was signed with is rotated', async () => {
    const dir = keptDir();
    h = harness({ dir });
    const { sent } = await login(h, READ_TOKEN);
    await h.close();
    h = harness({ dir, env: { DASH_TOKEN: 'rotated-read-token-9876543210' } });
    expect((await request(h.app).get('/').set('Cookie', sent)).status).toBe(401);
    expect((await request(h.app).get('/v1/timeline').set('Cookie', sent)).status).toBe(401);
  });

  it('ends the session on logout: the same cookie, sent again (a copy, a stolen one), is refused', async () => {
    h = harness();
    const { sent } = await login(h, READ_TOKEN);
    expect((await request(h.app).get('/').set('Cookie', sent)).status).toBe(200);
    const out = await request(h.app).post('/logout').set(BROWSER).set('Cookie', sent);
    expect(out.status).toBe(200);
    expect((await request(h.app).get('/').set(BROWSER).set('Cookie', sent)).status).toBe(401);
    expect((await request(h.app).get('/v1/timeline').set('Cookie', sent)).status).toBe(401);
    expect((await request(h.app).get('/v1/deploys').set('Cookie', sent)).status).toBe(401);
    expect(storedSessions(h)).toBe(0);
  });

  it('ends only the session that logged out, not the other logins of the same token', async () => {
    h = harness();
    const laptop = await login(h, READ_TOKEN);
    const wall = await login(h, READ_TOKEN);
    await request(h.app).post('/logout').set(BROWSER).set('Cookie', laptop.sent);
    expect((await request(h.app).get('/').set('Cookie', laptop.sent)).status).toBe(401);
    expect((await request(h.app).get('/').set('Cookie', wall.sent)).status).toBe(200);
  });

  it('keeps a session across a restart, and a logout after the restart still ends it', async () => {
    const dir = keptDir();
    h = harness({ dir });
    const { sent } = await login(h, READ_TOKEN);
    await h.close();
    h = harness({ dir });
    expect((await request(h.app).get('/').set('Cookie', sent)).status).toBe(200);
    await request(h.app).post('/logout').set(BROWSER).set('Cookie', sent);
    await h.close();
    h = harness({ dir });
    expect((await request(h.app).get('/').set('Cookie', sent)).status).toBe(401);
  });

  it('deletes expired sessions when the next login is stored, so they never pile up', async () => {
    h = harness();
    for (let i = 0; i < 3; i++) await login(h, READ_TOKEN);
    expect(storedSessions(h)).toBe(3);
    clock.advance(12 * 3600_000); // session_ttl: all three have expired
    await login(h, READ_TOKEN);
    expect(storedSessions(h)).toBe(1);
  });

  it('never lets the cookie authorise a POST, even one from a write token', async () => {
    h = harness();
    const { sent } = await login(h, TOKEN);
    const res = await request(h.app).post('/v1/deploys').set('Cookie', sent).send(designDeploy());
    expect(res.status).toBe(401);
    expect(
      (await request(h.app).get('/v1/deploys/gha-run-8812731').set('Authorization', `Bearer ${TOKEN}`)).status,
    ).toBe(404);
  });

  it.each([
    ['a cross-site Origin', { Origin: 'https://evil.example' }],
    ['Sec-Fetch-Site: cross-site', { 'Sec-Fetch-Site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site (a sibling host)', { 'Sec-Fetch-Site': 'same-site', Origin: 'https://a.example' }],
    [
      'an Origin matching neither Host nor X-Forwarded-Host',
      { Origin: 'https://evil.example', 'X-Forwarded-Host': 'cp.example' },
    ],
  ])('refuses a login posted with %s (login CSRF)', async (_intent, headers) => {
    h = harness();
    const { res, cookie } = await login(h, READ_TOKEN, headers);
    expect(res.status).toBe(403);
    expect(cookie).toBeUndefined();
  });

  it.each([
    ['Sec-Fetch-Site: same-origin', { 'Sec-Fetch-Site': 'same-origin', Origin: 'https://cp.example' }],
    [
      'the Origin of a reverse proxy that rewrote Host',
      { Origin: 'https://cp.example', 'X-Forwarded-Host': 'cp.example' },
    ],
    ['no Origin at all (not a browser)', {}],
  ])('accepts a login posted with %s', async (_intent, headers) => {
    h = harness();
    const { res, cookie } = await login(h, READ_TOKEN, headers);
    expect(res.status).toBe(303);
    expect(cookie).toBeDefined();
  });

  it.each(['//evil.example/', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)'])(
    'sends a login with next=%s back to / (no open redirect)',
    async (next) => {
      h = harness();
      const res = await request(h.app).post('/login').type('form').send({ token: READ_TOKEN, next });
      expect(res.status).toBe(303);
      expect(res.headers.location).toBe('/');
    },
  );

  it.each([
    ['auto behind a TLS proxy', 'auto', { 'X-Forwarded-Proto': 'https' }, true],
    ['auto over plain http', 'auto', {}, false],
    ['always', 'always', {}, true],
    ['never, even behind a TLS proxy', 'never', { 'X-Forwarded-Proto': 'https' }, false],
  ])('marks the cookie Secure (and __Host-) when cookie_secure is %s', async (_intent, mode, headers, secure) => {
    h = harness({
      yaml: `auth: { cookie_secure: ${mode}, tokens: [ { name: dashboard, token_env: DASH_TOKEN, role: read } ] }\n`,
    });
    const { cookie, sent } = await login(h, READ_TOKEN, headers);
    expect(cookie?.includes('; Secure')).toBe(secure);
    expect(cookie?.startsWith('__Host-changepager_session=')).toBe(secure);
    expect((await request(h.app).get('/').set('Cookie', sent)).status).toBe(200);
  });

  it('signs out: the cookie is cleared and the login form says so', async () => {
    h = harness();
    await login(h, READ_TOKEN);
    const res = await request(h.app).post('/logout').set(BROWSER);
    expect(res.status).toBe(200);
    expect(res.text).toContain('You are signed out.');
    expect(String(res.headers['set-cookie'])).toMatch(/changepager_session=; Path=\/; Expires=Thu, 01 Jan 1970/);
  });

  it('is open, like /v1, when no token is configured (the service then listens on loopback only)', async () => {
    h = harness({ yaml: '', env: { CHANGEPAGER_TOKEN: '' } });
    expect((await request(h.app).get('/')).status).toBe(200);
    expect((await request(h.app).get('/v1/timeline')).status).toBe(200);
    const toLogin = await request(h.app).get('/login?next=/services/checkout');
    expect(toLogin.status).toBe(303);
    expect(toLogin.headers.location).toBe('/services/checkout');
  });
});

describe('the login rate limit', () => {
  let h: Harness;
  afterEach(async () => {
    clock.set('2026-11-26T11:20:00Z');
    await h.close();
  });
  const limited = (extra = '') =>
    harness({
      yaml: [
        'auth:',
        '  tokens: [ { name: dashboard, token_env: DASH_TOKEN, role: read } ]',
        '  login_limit: { max_failures: 3, window: PT1M }',
        extra,
      ].join('\n'),
    });
  const attempt = (token: string, headers: Record<string, string> = {}) =>
    request(h.app).post('/login').set(headers).type('form').send({ token, next: '/' });
  const lines = (event: string) =>
    h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === event);

  it('answers 429 with Retry-After once a client has typed max_failures wrong tokens, even to the right token', async () => {
    h = limited();
    for (let i = 0; i < 3; i++) expect((await attempt(`guess-${i}`)).status).toBe(401);
    clock.advance(20_000);
    const refused = await attempt(READ_TOKEN);
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('40');
    expect(refused.body).toMatchObject({ error: 'too_many_logins' });
    expect(refused.headers['set-cookie']).toBeUndefined();
    const page = await attempt('guess-4', BROWSER);
    expect(page.status).toBe(429);
    expect(page.text).toContain('Too many wrong tokens from your address: try again in 40 s.');

    clock.advance(40_000); // the window has passed
    expect((await attempt(READ_TOKEN)).status).toBe(303);
  });

  it('counts each client on its own, and trusts X-Forwarded-For only from a configured proxy', async () => {
    h = limited();
    // Not behind a trusted proxy: a header anyone can write does not make a new client.
    for (let i = 0; i < 5; i++) await attempt(`guess-${i}`, { 'X-Forwarded-For': `198.51.100.${i}` });
    expect((await attempt(READ_TOKEN, { 'X-Forwarded-For': '198.51.100.99' })).status).toBe(429);
    await h.close();

    h = limited('http: { trusted_proxies: [loopback] }');
    for (let i = 0; i < 3; i++) await attempt(`guess-${i}`, { 'X-Forwarded-For': '198.51.100.7' });
    expect((await attempt(READ_TOKEN, { 'X-Forwarded-For': '198.51.100.7' })).status).toBe(429);
    expect((await attempt(READ_TOKEN, { 'X-Forwarded-For': '198.51.100.8' })).status).toBe(303);
  });

  it('logs one summary line per burst, not one line per guess, and counts logins in /metrics', async () => {
    h = limited();
    for (let i = 0; i < 200; i++) await attempt(`guess-${i}`);
    expect(lines('login_failures')).toEqual([]);
    expect(h.logs.filter((l) => l.includes('guess-')).length).toBe(0);

    clock.advance(60_000); // the burst's window has passed: the next login attempt (anyone's) writes its summary
    expect((await attempt(READ_TOKEN)).status).toBe(303);
    const [summary, ...more] = lines('login_failures');
    expect(more).toEqual([]);
    expect(summary).toMatchObject({
      level: 40,
      client: '127.0.0.1',
      failures: 3,
      refused: 197,
      from: '2026-11-26T11:20:00.000Z',
      to: '2026-11-26T11:20:00.000Z',
      seconds: 0,
    });
    const metrics = (await request(h.app).get('/metrics')).text;
    expect(metrics).toContain('changepager_logins_total{result="wrong_token"} 3');
    expect(metrics).toContain('changepager_logins_total{result="limited"} 197');
    expect(metrics).toContain('changepager_logins_total{result="ok"} 1');
  });
});

describe('read-only tokens', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });
  const read = { Authorization: `Bearer ${READ_TOKEN}` };

  it.each([
    ['/v1/deploys', designDeploy()],
    ['/v1/alertmanager', amPayload([{ fingerprint: 'dddd000000000001', startsAt: '2026-11-26T11:09:00Z' }])],
    ['/v1/preview', amPayload([{ fingerprint: 'dddd000000000002', startsAt: '2026-11-26T11:09:00Z' }])],
  ])('get 403 forbidden on POST %s, and nothing is stored', async (path, body) => {
    h = harness();
    const res = await request(h.app).post(path).set(read).send(body);
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ error: 'forbidden', message: expect.stringContaining('read-only') });
    const write = { Authorization: `Bearer ${TOKEN}` };
    expect((await request(h.app).get('/v1/deploys').set(write)).body.deploys).toEqual([]);
    expect((await request(h.app).get('/v1/alerts/dddd000000000001').set(write)).status).toBe(404);
  });

  it.each(['/v1/deploys', '/v1/timeline', '/v1/deploys/gha-run-8812731', '/', '/services/checkout'])(
    'may GET %s',
    async (path) => {
      h = harness();
      await request(h.app).post('/v1/deploys').set('Authorization', `Bearer ${TOKEN}`).send(designDeploy());
      expect((await request(h.app).get(path).set(read)).status).toBe(200);
    },
  );

  it('leaves write tokens able to POST (role: write is the default)', async () => {
    h = harness({
      yaml: 'auth: { tokens: [ { name: ci, token_env: CI_TOKEN }, { name: deployer, token_env: DEP_TOKEN, role: write } ] }\n',
      env: { CI_TOKEN: 'ci-secret-token', DEP_TOKEN: 'deployer-secret-token' },
    });
    for (const token of ['ci-secret-token', 'deployer-secret-token', TOKEN]) {
      const res = await request(h.app)
        .post('/v1/deploys')
        .set('Authorization', `Bearer ${token}`)
        .send(designDeploy({ id: token }));
      expect(res.status, token).toBe(201);
    }
  });

  it('rejects an unknown role in the config, with its path', () => {
    const parse = () =>
      parseConfig('auth: { tokens: [ { name: x, token_env: X, role: admin } ] }\n', {
        path: 'c.yaml',
        env: { X: 'x-token' },
      });
    expect(parse).toThrow(ConfigError);
    try {
      parse();
    } catch (err) {
      expect((err as ConfigError).problems.join('\n')).toMatch(/auth\.tokens\.0/);
    }
  });

  it('keeps the role of each configured token', () => {
    const config = parseConfig(
      'auth: { tokens: [ { name: dash, token_env: D, role: read }, { name: ci, token_env: C } ] }\n',
      { path: 'c.yaml', env: { D: 'd-token', C: 'c-token' } },
    );
    expect(config.tokens).toEqual([
      { name: 'dash', secret: 'd-token', role: 'read' },
      { name: 'ci', secret: 'c-token' },
    ]);
    expect(config.session).toEqual({ ttlMs: 12 * 3600_000, cookieSecure: 'auto' });
  });
});
