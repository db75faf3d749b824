import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { amPayload, createHarness, designDeploy, fakeClock, type Harness, TOKEN } from '../support/harness.js';
import { readYaml } from './support.js';

// examples/flagger/canary.yaml: the event webhook it declares, fed the events a Flagger canary analysis emits,
// in the payload Flagger builds for them (pkg/controller/webhook.go CallEventWebhook: name, namespace, phase,
// checksum, and metadata = {eventMessage, eventType, timestamp} plus the webhook's own metadata).

interface Canary {
  metadata: { name: string; namespace: string };
  spec: { analysis: { webhooks: { name: string; type: string; url: string; metadata: Record<string, string> }[] } };
}

const auth = { Authorization: `Bearer ${TOKEN}` };

describe('examples/flagger/canary.yaml and POST /v1/deploys/flagger', () => {
  let h: Harness;
  const clock = fakeClock('2026-11-26T11:00:00Z');
  const canary = readYaml<Canary>('flagger/canary.yaml');
  const hook = canary.spec.analysis.webhooks.find((w) => w.type === 'event');
  if (!hook) throw new Error('the example declares an event webhook');
  const path = new URL(hook.url).pathname;

  beforeEach(() => {
    clock.set('2026-11-26T11:00:00Z');
    h = createHarness({
      now: clock.now,
      // The webhook's token is one of the service's tokens; a read-only one exists to be refused.
      yaml: 'auth: { tokens: [ { name: flagger, token_env: FLAGGER_TOKEN }, { name: dash, token_env: RO, role: read } ] }\n',
      env: { FLAGGER_TOKEN: hook.metadata.token, RO: 'read-only-token' },
    });
  });
  afterEach(async () => {
    await h.close();
  });

  /** One event as Flagger sends it; the webhook's metadata never overrides Flagger's own keys. */
  const event = (
    eventMessage: string,
    at: string,
    phase = 'Progressing',
    metadata: Record<string, string> = hook.metadata,
  ) => ({
    name: canary.metadata.name,
    namespace: canary.metadata.namespace,
    phase,
    checksum: '5d8f6c7b9',
    metadata: { ...metadata, eventMessage, eventType: 'Normal', timestamp: String(Date.parse(at)) },
  });
  const flagger = (body: unknown) =>
    request(h.app)
      .post(path)
      .send(body as object);

  async function pipelineDeploy() {
    // The pipeline's own deploy event: Flagger's stages copy its author, version and changes.
    const res = await request(h.app)
      .post('/v1/deploys')
      .set(auth)
      .send(designDeploy({ id: 'ci-77', version: 'v2', at: '2026-11-26T11:00:00Z' }));
    expect(res.status).toBe(201);
  }

  it('maps an analysis onto canary, partial and full stages of the pipeline’s deploy', async () => {
    await pipelineDeploy();
    const steps: [string, string, string, number, string | null][] = [
      ['New revision detected! Scaling up podinfo.test', '2026-11-26T11:01:00Z', 'Progressing', 201, 'canary 0'],
      ['Starting canary analysis for podinfo.test', '2026-11-26T11:02:00Z', 'Progressing', 200, 'canary 0'],
      ['Pre-rollout check acceptance-test passed', '2026-11-26T11:02:05Z', 'Progressing', 200, null],
      ['Advance podinfo.test canary weight 10', '2026-11-26T11:03:00Z', 'Progressing', 201, 'partial 10'],
      ['Advance podinfo.test canary weight 20', '2026-11-26T11:04:00Z', 'Progressing', 201, 'partial 20'],
      [
        'Copying podinfo.test template spec to podinfo-primary.test',
        '2026-11-26T11:08:00Z',
        'Promoting',
        201,
        'full 100',
      ],
      ['Routing all traffic to primary', '2026-11-26T11:09:00Z', 'Promoting', 200, null],
      ['Promotion completed! Scaling down podinfo.test', '2026-11-26T11:10:00Z', 'Succeeded', 200, null],
    ];
    for (const [message, at, phase, status, stage] of steps) {
      clock.set(at);
      const res = await flagger(event(message, at, phase));
      expect(res.status, `${message}: ${JSON.stringify(res.body)}`).toBe(status);
      if (stage === null) {
        expect(res.body).toMatchObject({ result: 'ignored', deploy: null });
        continue;
      }
      expect(`${res.body.deploy.stage} ${res.body.deploy.percent}`).toBe(stage);
      expect(res.body.deploy).toMatchObject({
        service: 'checkout',
        environment: 'production',
        version: 'v2',
        hosts: [],
        changes: [{ author: { email: 'alice@example.com' } }],
      });
    }
    const verdict = await request(h.app).get('/v1/deploys/ci-77/verdict?observe=PT30M').set(auth);
    expect(verdict.body.rollout.map((r: { id: string }) => r.id)).toEqual([
      'ci-77',
      'flagger-test-podinfo-5d8f6c7b9-canary-0',
      'flagger-test-podinfo-5d8f6c7b9-partial-10',
      'flagger-test-podinfo-5d8f6c7b9-partial-20',
      'flagger-test-podinfo-5d8f6c7b9-full-100',
    ]);
    expect(verdict.body.window.from).toBe('2026-11-26T11:08:00.000Z');
  });

  it('attributes an alert during the analysis to the author, and fails the rollout’s verdict', async () => {
    await pipelineDeploy();
    await flagger(event('Advance podinfo.test canary weight 10', '2026-11-26T11:03:00Z'));
    clock.set('2026-11-26T11:05:00Z');
    const alert = await request(h.app)
      .post('/v1/alertmanager')
      .set(auth)
      .send(amPayload([{ fingerprint: 'f1a9000000000001', startsAt: '2026-11-26T11:04:30Z' }]));
    expect(alert.body.decisions[0].decision).toMatchObject({
      reason: 'author_paged',
      deployId: 'flagger-test-podinfo-5d8f6c7b9-partial-10',
      targets: [{ kind: 'person', email: 'alice@example.com' }],
    });
    const verdict = await request(h.app).get('/v1/deploys/ci-77/verdict').set(auth);
    expect(verdict.body.verdict).toBe('failing');
  });

  it('records Flagger rolling back as a rollback of the pipeline’s deploy, and on-call gets later alerts', async () => {
    await pipelineDeploy();
    await flagger(event('Advance podinfo.test canary weight 10', '2026-11-26T11:03:00Z'));
    clock.set('2026-11-26T11:06:00Z');
    const res = await flagger(
      event('Rolling back podinfo.test failed checks threshold reached 5', '2026-11-26T11:06:00Z', 'Failed'),
    );
    expect(res.status).toBe(201);
    expect(res.body.deploy).toMatchObject({
      id: 'flagger-test-podinfo-5d8f6c7b9-rollback',
      version: '2026.11.25-77b0e12',
      changes: [],
      rollback: { of: ['ci-77', 'flagger-test-podinfo-5d8f6c7b9-partial-10'], explicit: true },
    });
    const again = await flagger(
      event('Rolling back podinfo.test failed checks threshold reached 5', '2026-11-26T11:06:00Z', 'Failed'),
    );
    expect([again.status, again.body.result]).toEqual([200, 'repeat']);
    clock.set('2026-11-26T11:09:00Z');
    const alert = await request(h.app)
      .post('/v1/alertmanager')
      .set(auth)
      .send(amPayload([{ fingerprint: 'f1a9000000000002', startsAt: '2026-11-26T11:08:00Z' }]));
    expect(alert.body.decisions[0].decision).toMatchObject({
      reason: 'after_rollback',
      targets: [{ kind: 'oncall' }],
      notify: ['alice@example.com'],
    });
  });

  it('says what to do when no deploy event came before Flagger’s', async () => {
    const res = await flagger(event('Advance podinfo.test canary weight 10', '2026-11-26T11:03:00Z'));
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ error: 'no_deploy_for_rollout' });
    expect(res.body.message).toContain('No deploy event of checkout in production in the last 60 min');
    expect((await request(h.app).get('/v1/deploys').set(auth)).body.deploys).toEqual([]);
  });

  it('ignores webhooks of other types (no event message), answering 200 so Flagger carries on', async () => {
    const { eventMessage: _m, ...metadata } = event('x', '2026-11-26T11:00:00Z').metadata;
    const res = await flagger({ name: 'podinfo', namespace: 'test', phase: 'Progressing', metadata });
    expect(res.status).toBe(200);
    expect(res.body.reason).toContain('configure changepager as type: event');
  });

  it.each([
    ['no token at all', { token: undefined }, undefined, 401],
    ['a wrong token in metadata', { token: 'nope' }, undefined, 401],
    ['a read-only token', { token: 'read-only-token' }, undefined, 403],
    ['a wrong bearer header, even with the right metadata token', {}, 'Bearer nope', 401],
    ['the right bearer header instead of metadata', { token: undefined }, `Bearer ${TOKEN}`, 422],
  ])('authenticates: %s → %s', async (_intent, patch, header, status) => {
    const metadata = { ...hook.metadata, ...patch } as Record<string, string>;
    for (const key of Object.keys(metadata)) if (metadata[key] === undefined) delete metadata[key];
    let req = request(h.app).post(path);
    if (header) req = req.set('Authorization', header);
    const res = await req.send(
      event('Advance podinfo.test canary weight 10', '2026-11-26T11:03:00Z', 'Progressing', metadata),
    );
    expect(res.status).toBe(status);
  });

  it('lists every problem of a payload that is not Flagger’s', async () => {
    const res = await request(h.app)
      .post(path)
      .set(auth)
      .send({ name: 7, metadata: { token: TOKEN, weight: 10 } });
    expect(res.status).toBe(400);
    expect(res.body.details.problems.map((p: { path: string }) => p.path).sort()).toEqual([
      'metadata.weight',
      'name',
      'namespace',
    ]);
  });
});
