import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeploymentEvent } from '../../src/channels/code-host.js';
import { GITLAB_HOOK_PATH, gitlabHookRouter } from '../../src/channels/gitlab/route.js';
import { errorHandler } from '../../src/http/errors.js';

// POST /v1/hooks/gitlab over real HTTP on loopback: the secret token decides before the body is read, other
// events are acknowledged and ignored, a malformed deployment is a 400 listing every problem, and a good one
// reaches `accept` as a DeploymentEvent.

const TOKEN = 'gl-hook-secret-7f3a';
const RECEIVED = Date.parse('2026-11-26T11:02:00Z');
const example = readFileSync(new URL('../fixtures/gitlab/deployment-success.json', import.meta.url), 'utf8');

let server: Server;
let base: string;
let accepted: { event: DeploymentEvent; commitTitle?: string }[];

beforeEach(async () => {
  accepted = [];
  const app = express();
  app.use(
    gitlabHookRouter({
      webhookToken: TOKEN,
      bodyLimitBytes: 64 * 1024,
      now: () => RECEIVED,
      async accept(event, context) {
        accepted.push({ event, ...context });
        return { status: 201, body: { status: 'stored', deliveryId: event.deliveryId } };
      },
    }),
  );
  app.use(errorHandler(pino({ level: 'silent' })));
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function post(headers: Record<string, string>, body: string = example) {
  return fetch(`${base}${GITLAB_HOOK_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
}

const GOOD = { 'X-Gitlab-Token': TOKEN, 'X-Gitlab-Event': 'Deployment Hook', 'X-Gitlab-Event-UUID': 'ev-1' };

describe('POST /v1/hooks/gitlab', () => {
  it("GitLab's documented deployment, with the right token, reaches accept and gets its answer", async () => {
    const res = await post(GOOD);
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ status: 'stored', deliveryId: 'ev-1' });
    expect(accepted).toHaveLength(1);
    expect(accepted[0]?.commitTitle).toBe('Add new file');
    expect(accepted[0]?.event).toMatchObject({
      host: 'gitlab',
      repository: 'root/test-deployment-webhooks',
      sha: '279484c09fbe69ededfced8c1bb6e6d24616b468',
      state: 'success',
    });
  });

  it.each([
    [
      'a wrong token',
      { ...GOOD, 'X-Gitlab-Token': 'guess' },
      'X-Gitlab-Token is not the secret token configured for the webhook (gitlab.webhook_secret_env or _file).',
    ],
    [
      'no token',
      { 'X-Gitlab-Event': 'Deployment Hook' },
      "No X-Gitlab-Token header: set the webhook's secret token in GitLab to the configured one.",
    ],
  ])(
    '%s: 401 invalid_signature naming the header, and the body is not even read (it is not JSON here)',
    async (_intent, headers, message) => {
      const res = await post(headers, '{not json');
      expect(res.status).toBe(401);
      const body = await res.json();
      expect(body).toEqual({ error: 'invalid_signature', message, details: null });
      expect(JSON.stringify(body)).not.toContain('guess');
      expect(accepted).toEqual([]);
    },
  );

  it('another event: 202, ignored', async () => {
    const res = await post({ ...GOOD, 'X-Gitlab-Event': 'Push Hook' }, '{"object_kind":"push"}');
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ status: 'ignored', reason: 'Push Hook is not a deployment event' });
    expect(accepted).toEqual([]);
  });

  it('a malformed deployment: 400 listing every problem', async () => {
    const res = await post(GOOD, JSON.stringify({ object_kind: 'deployment', status: 'success' }));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: string; details: { problems: { path: string }[] } };
    expect(body.error).toBe('invalid_payload');
    expect(body.details.problems.map((p) => p.path).sort()).toEqual([
      'deployment_id',
      'environment',
      'project',
      'short_sha',
    ]);
    expect(accepted).toEqual([]);
  });

  it('a body that is not JSON, with the right token: 400 invalid_json', async () => {
    const res = await post(GOOD, '{not json');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_json');
  });

  it('a body over the limit: 413', async () => {
    const res = await post(GOOD, JSON.stringify({ ...JSON.parse(example), padding: 'x'.repeat(70 * 1024) }));
    expect(res.status).toBe(413);
    expect(accepted).toEqual([]);
  });
});
