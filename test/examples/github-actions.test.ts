import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listeningService } from '../cli/support.js';
import { TOKEN } from '../support/harness.js';
import { baseEnv, readYaml, runBash, which, workspace } from './support.js';

// examples/github-actions/deploy.yml run the way a runner would: ${{ }} expressions rendered from a sample
// push event, each `run:` step executed with bash -eo pipefail in order (failure() steps only after a failure),
// its curl calls reaching a real changepager on loopback. The user's ./deploy.sh is a recording stand-in.

const tools = ['bash', 'curl', 'jq'].filter((t) => !which(t));

interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  if?: string;
  env?: Record<string, string>;
}
interface Workflow {
  jobs: { deploy: { env: Record<string, string>; steps: Step[] } };
}

const SHA = '3f2a9c1e5b7d4a2c9e8f1a0b3c4d5e6f7a8b9c0d';

describe.skipIf(tools.length > 0)(
  `examples/github-actions/deploy.yml${tools.length ? ` (skipped: ${tools.join(', ')} not installed)` : ''}`,
  () => {
    let svc: Awaited<ReturnType<typeof listeningService>>;
    let ws: ReturnType<typeof workspace>;
    beforeEach(async () => {
      svc = await listeningService({ at: '2026-11-26T11:00:00Z' });
      ws = workspace();
    });
    afterEach(async () => {
      await svc.close();
      ws.remove();
    });

    /** The expression context GitHub would give a push of alice's squash-merged PR, merged by bob. */
    const context = () => ({
      github: {
        sha: SHA,
        actor: 'bob',
        server_url: 'https://github.com',
        repository: 'shop/checkout',
        run_id: '8812731',
        run_attempt: '1',
        event: {
          before: '77b0e12a9c3d4e5f60718293a4b5c6d7e8f90123',
          head_commit: {
            url: `https://github.com/shop/checkout/commit/${SHA}`,
            // Quotes and a backtick: the reason the workflow passes values through env.
            message: 'Cache cart "totals" `fast` (#4812)\n\nCo-authored-by: Dave <dave@example.com>',
            author: { email: 'alice@example.com', username: 'alice', name: 'Alice' },
          },
        },
      },
      vars: { CHANGEPAGER_URL: svc.url },
      secrets: { CHANGEPAGER_TOKEN: TOKEN },
      steps: {} as Record<string, { outputs: Record<string, string> }>,
    });

    /** ${{ a.b.c }} → the value at that path; an expression the sample context lacks fails the test. */
    function render(text: string, ctx: Record<string, unknown>): string {
      return text.replace(/\$\{\{\s*([\w.-]+)\s*\}\}/g, (_m, path: string) => {
        const value = path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], ctx);
        if (value === undefined) throw new Error(`the sample context has no ${path}`);
        return String(value);
      });
    }

    /** Runs the job; `before(step)` runs ahead of each step. Returns each step's outcome. */
    async function runJob(before: (step: Step) => Promise<void> = async () => {}) {
      const job = readYaml<Workflow>('github-actions/deploy.yml').jobs.deploy;
      const ctx = context();
      const outcomes: { name: string; outcome: 'success' | 'failure' | 'skipped'; stdout: string; stderr: string }[] =
        [];
      let failed = false;
      for (const step of job.steps) {
        const name = step.name ?? step.uses ?? '?';
        const runs = step.if === 'failure()' ? failed : !failed && step.if === undefined;
        if (!step.run || !runs) {
          outcomes.push({ name, outcome: step.run && !runs ? 'skipped' : 'success', stdout: '', stderr: '' });
          continue;
        }
        await before(step);
        const output = join(ws.dir, `output-${outcomes.length}`);
        writeFileSync(output, '');
        const env: Record<string, string> = { GITHUB_OUTPUT: output };
        for (const [k, v] of Object.entries({ ...job.env, ...step.env })) env[k] = render(String(v), ctx);
        const result = await runBash(step.run, { cwd: ws.dir, env: baseEnv(env) });
        const outputs = Object.fromEntries(
          readFileSync(output, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((line) => line.split(/=(.*)/s).slice(0, 2) as [string, string]),
        );
        if (step.id) ctx.steps[step.id] = { outputs };
        if (result.code !== 0) failed = true;
        outcomes.push({
          name,
          outcome: result.code === 0 ? 'success' : 'failure',
          stdout: result.stdout,
          stderr: result.stderr,
        });
      }
      return outcomes;
    }

    const stored = async (id: string) =>
      (await request(svc.h.app).get(`/v1/deploys/${id}`).set('Authorization', `Bearer ${TOKEN}`)).body;

    it('tells changepager about the canary, passes the gate once 35 quiet minutes have passed, and promotes', async () => {
      const outcomes = await runJob(async (step) => {
        if (step.name?.startsWith('Canary gate')) svc.clock.advance(35 * 60_000);
      });
      expect(outcomes.map((o) => `${o.name}: ${o.outcome}`)).toEqual([
        'actions/checkout@v4: success',
        'Deploy to the canary host: success',
        'Tell changepager (canary): success',
        'Canary gate (30 minutes without an attributed alert): success',
        'Roll back the canary: skipped',
        'Tell changepager (rollback): skipped',
        'Promote to every host: success',
        'Tell changepager (full rollout): success',
      ]);
      expect(outcomes[3]?.stdout).toContain('is healthy: no alert was attributed to it from 11:00 UTC to 11:30 UTC');
      expect(ws.deploys()).toEqual(['--hosts checkout-7f9c-abcde', '--all']);

      const change = {
        author: { email: 'alice@example.com', login: 'alice', name: 'Alice' },
        mergedBy: { login: 'bob' },
        commit: {
          sha: SHA,
          url: `https://github.com/shop/checkout/commit/${SHA}`,
          message: 'Cache cart "totals" `fast` (#4812)',
        },
        pullRequest: { number: 4812, url: 'https://github.com/shop/checkout/pull/4812' },
      };
      expect(await stored('gha-8812731-1-canary')).toMatchObject({
        service: 'checkout',
        environment: 'production',
        version: SHA,
        previousVersion: '77b0e12a9c3d4e5f60718293a4b5c6d7e8f90123',
        stage: 'canary',
        hosts: ['checkout-7f9c-abcde'],
        at: '2026-11-26T11:00:00.000Z',
        changes: [change],
      });
      expect(await stored('gha-8812731-1-full')).toMatchObject({
        stage: 'full',
        hosts: [],
        version: SHA,
        changes: [change],
      });
    });

    it('stops at the gate and rolls back when the canary host alerts', async () => {
      const outcomes = await runJob(async (step) => {
        if (!step.name?.startsWith('Canary gate')) return;
        svc.clock.advance(6 * 60_000);
        const alert = await request(svc.h.app)
          .post('/v1/alertmanager')
          .set('Authorization', `Bearer ${TOKEN}`)
          .send({
            version: '4',
            groupKey: '{}:{alertname="HighErrorRate"}',
            status: 'firing',
            receiver: 'changepager',
            alerts: [
              {
                status: 'firing',
                labels: {
                  alertname: 'HighErrorRate',
                  service: 'checkout',
                  env: 'production',
                  instance: 'checkout-7f9c-abcde:8080',
                },
                startsAt: '2026-11-26T11:05:00Z',
                fingerprint: 'c0ffee0123456789',
              },
            ],
          });
        expect(alert.status).toBe(200);
      });
      expect(outcomes.map((o) => o.outcome)).toEqual([
        'success',
        'success',
        'success',
        'failure',
        'success',
        'success',
        'skipped',
        'skipped',
      ]);
      expect(outcomes[3]?.stdout).toContain(
        'is failing: 1 alert attributed to it (HighErrorRate on checkout-7f9c-abcde',
      );
      expect(outcomes[3]?.stdout).toContain('  HighErrorRate c0ffee0123456789: checkout deploy');
      expect(ws.deploys()).toEqual(['--hosts checkout-7f9c-abcde', '--rollback --hosts checkout-7f9c-abcde']);
      expect((await stored('gha-8812731-1-full')).error).toBe('not_found');
      // changepager is told: the canary's rollout is rolled back, and its verdict says so.
      expect(await stored('gha-8812731-1-rollback')).toMatchObject({
        version: '77b0e12a9c3d4e5f60718293a4b5c6d7e8f90123',
        hosts: ['checkout-7f9c-abcde'],
        changes: [],
        rollback: { of: ['gha-8812731-1-canary'], explicit: true },
      });
      const verdict = await request(svc.h.app)
        .get('/v1/deploys/gha-8812731-1-canary/verdict')
        .set('Authorization', `Bearer ${TOKEN}`);
      expect(verdict.body.verdict).toBe('rolled_back');
    });

    it('fails the step with the server’s error when changepager refuses the event', async () => {
      const outcomes = await runJob(async (step) => {
        // A token that is not the service's: the canary step must fail loudly, not carry on.
        if (step.name === 'Tell changepager (canary)') step.env = { ...step.env, CHANGEPAGER_TOKEN: 'not-the-token' };
      });
      const tell = outcomes.find((o) => o.name === 'Tell changepager (canary)');
      expect(tell?.outcome).toBe('failure');
      expect(tell?.stdout).toContain('"error":"unauthorized"');
    });
  },
);
