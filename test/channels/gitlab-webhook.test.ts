import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEPLOYMENT_HOOK, parseGitlabTime, readGitlabHook, tokenMatches } from '../../src/channels/gitlab/webhook.js';

// GitLab's webhook: the secret token compared in constant time, only Deployment events read, GitLab's own
// documented example parsed into the host-neutral DeploymentEvent, every problem of a bad payload listed.

const TOKEN = 'gl-hook-secret-7f3a';
const RECEIVED = Date.parse('2026-11-26T11:02:00Z');
const example = (): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL('../fixtures/gitlab/deployment-success.json', import.meta.url), 'utf8'));

function request(headers: Record<string, string | undefined>, body: unknown = example()) {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { header: (name: string) => lower[name.toLowerCase()], body };
}

const HEADERS = { 'X-Gitlab-Token': TOKEN, 'X-Gitlab-Event': DEPLOYMENT_HOOK, 'X-Gitlab-Event-UUID': 'ev-1' };

describe('the X-Gitlab-Token check', () => {
  it.each([
    ['the configured token', TOKEN, true],
    ['another token of the same length', 'gl-hook-secret-7f3b', false],
    ['a prefix of it', 'gl-hook', false],
    ['the token with more after it', `${TOKEN}x`, false],
    ['an empty header', '', false],
    ['no header', undefined, false],
  ])('%s → %s', (_intent, sent, expected) => {
    expect(tokenMatches(TOKEN, sent)).toBe(expected);
  });

  it('an empty configured token matches nothing, not even an empty header', () => {
    expect(tokenMatches('', '')).toBe(false);
  });
});

describe('GitLab times', () => {
  it.each([
    ['the documented form', '2021-04-28 21:50:00 +0200', '2021-04-28T19:50:00.000Z'],
    ['UTC spelled out', '2021-04-28 19:50:00 UTC', '2021-04-28T19:50:00.000Z'],
    ['RFC 3339', '2021-04-28T21:50:00+02:00', '2021-04-28T19:50:00.000Z'],
    ['RFC 3339 with Z and milliseconds', '2021-04-28T19:50:00.250Z', '2021-04-28T19:50:00.250Z'],
  ])('%s: %s', (_intent, text, iso) => {
    expect(parseGitlabTime(text)).toBe(Date.parse(iso));
  });

  it.each([
    ['a date alone', '2021-04-28'],
    ['no zone', '2021-04-28 21:50:00'],
    ['words', 'yesterday'],
  ])('%s is not a time', (_intent, text) => {
    expect(parseGitlabTime(text)).toBeUndefined();
  });
});

describe('a GitLab webhook request', () => {
  it("GitLab's documented deployment example becomes a deploy of its full commit, by its deployer", () => {
    const result = readGitlabHook(request(HEADERS), TOKEN, RECEIVED);
    expect(result).toEqual({
      kind: 'deployment',
      title: 'Add new file',
      event: {
        host: 'gitlab',
        deliveryId: 'ev-1',
        repository: 'root/test-deployment-webhooks',
        environment: 'staging',
        sha: '279484c09fbe69ededfced8c1bb6e6d24616b468',
        state: 'success',
        deploymentId: '15',
        at: Date.parse('2021-04-28T19:50:00Z'),
        url: 'http://10.126.0.2:3000/root/test-deployment-webhooks/-/jobs/796',
        deployer: { login: 'root', name: 'Administrator', email: 'admin@example.com' },
      },
    });
  });

  it.each([
    ['running marks a deployment in progress', 'running', 'in_progress'],
    ['success marks a deploy', 'success', 'success'],
    ['failed is no deploy', 'failed', 'other'],
    ['canceled is no deploy', 'canceled', 'other'],
    ['a status GitLab adds later is no deploy', 'blocked', 'other'],
  ])('%s', (_intent, status, state) => {
    const result = readGitlabHook(request(HEADERS, { ...example(), status }), TOKEN, RECEIVED);
    expect(result.kind === 'deployment' && result.event.state).toBe(state);
  });

  it.each([
    ['Idempotency-Key (GitLab 17.4, the same on a retry) comes first', { 'Idempotency-Key': 'idem-9' }, 'idem-9'],
    ['else X-Gitlab-Event-UUID', {}, 'ev-1'],
    [
      'else, before GitLab 14.8, the deployment and its status',
      { 'X-Gitlab-Event-UUID': undefined },
      'deployment-15-success',
    ],
  ])('the delivery id: %s', (_intent, extra, deliveryId) => {
    const result = readGitlabHook(request({ ...HEADERS, ...extra }), TOKEN, RECEIVED);
    expect(result.kind === 'deployment' && result.event.deliveryId).toBe(deliveryId);
  });

  it('a wrong token is refused before the event or the body is looked at', () => {
    const result = readGitlabHook(
      request({ ...HEADERS, 'X-Gitlab-Token': 'guess', 'X-Gitlab-Event': 'Push Hook' }, 'not json'),
      TOKEN,
      RECEIVED,
    );
    expect(result).toEqual({ kind: 'unauthorized', reason: 'its X-Gitlab-Token is not the configured one' });
  });

  it('a request without a token is refused, and says so', () => {
    const result = readGitlabHook(request({ ...HEADERS, 'X-Gitlab-Token': undefined }), TOKEN, RECEIVED);
    expect(result).toEqual({ kind: 'unauthorized', reason: 'it sent no X-Gitlab-Token header' });
  });

  it('another event is acknowledged and ignored, whatever its body', () => {
    const result = readGitlabHook(
      request({ ...HEADERS, 'X-Gitlab-Event': 'Push Hook' }, { object_kind: 'push' }),
      TOKEN,
      RECEIVED,
    );
    expect(result).toEqual({ kind: 'ignored', reason: 'Push Hook is not a deployment event' });
  });

  it('a request without X-Gitlab-Event is malformed', () => {
    const result = readGitlabHook(request({ ...HEADERS, 'X-Gitlab-Event': undefined }), TOKEN, RECEIVED);
    expect(result).toEqual({
      kind: 'invalid',
      problems: [{ path: 'headers.x-gitlab-event', message: 'the header is missing' }],
    });
  });

  it('a malformed deployment lists every problem with its path', () => {
    const { environment: _e, project: _p, ...rest } = example();
    const body = {
      ...rest,
      short_sha: 'not-a-sha',
      status_changed_at: 'yesterday',
      deployment_id: null,
      deployable_id: null,
    };
    const result = readGitlabHook(request(HEADERS, body), TOKEN, RECEIVED);
    expect(result.kind).toBe('invalid');
    const paths = result.kind === 'invalid' ? result.problems.map((p) => p.path).sort() : [];
    expect(paths).toEqual(['deployment_id', 'environment', 'project', 'short_sha', 'status_changed_at']);
  });

  it('a body that is not an object is malformed, not a crash', () => {
    const result = readGitlabHook(request(HEADERS, 'plain text'), TOKEN, RECEIVED);
    expect(result.kind).toBe('invalid');
  });

  it('a deployment made through the API: no job link, the environment URL instead; no status time: when received', () => {
    const body = { ...example(), deployable_url: null, status_changed_at: undefined };
    const result = readGitlabHook(request(HEADERS, body), TOKEN, RECEIVED);
    expect(result.kind === 'deployment' && [result.event.url, result.event.at]).toEqual([
      'https://staging.example.com',
      RECEIVED,
    ]);
  });

  it('a deployer without a public email: GitLab writes [REDACTED], which is no email', () => {
    const body = { ...example(), user: { username: 'root', name: 'Administrator', email: '[REDACTED]' } };
    const result = readGitlabHook(request(HEADERS, body), TOKEN, RECEIVED);
    expect(result.kind === 'deployment' && result.event.deployer).toEqual({ login: 'root', name: 'Administrator' });
  });

  it('a commit_url that does not end in the commit: the short SHA is what is known', () => {
    const body = {
      ...example(),
      commit_url:
        'http://10.126.0.2:3000/root/test-deployment-webhooks/-/commit/ffffffffffffffffffffffffffffffffffffffff',
    };
    const result = readGitlabHook(request(HEADERS, body), TOKEN, RECEIVED);
    expect(result.kind === 'deployment' && result.event.sha).toBe('279484c0');
  });

  it('the ref, when a GitLab version sends one, is kept', () => {
    const result = readGitlabHook(request(HEADERS, { ...example(), ref: 'main' }), TOKEN, RECEIVED);
    expect(result.kind === 'deployment' && result.event.ref).toBe('main');
  });
});
