import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listeningService } from '../cli/support.js';
import { TOKEN } from '../support/harness.js';
import { baseEnv, ROOT, readYaml, runBash, which, workspace } from './support.js';

// examples/gitlab-ci/.gitlab-ci.yml run the way a runner would: jobs in stage order (on_failure jobs only after
// a failure), each job's `script` with bash -eo pipefail and GitLab's predefined variables for a merge to main.
// `before_script` installs the CLI from a registry; here the `changepager` on PATH is this checkout's CLI
// (src/cli.ts through tsx) instead, a real process talking HTTP to a real changepager on loopback.

const tools = ['bash'].filter((t) => !which(t));

interface Job {
  stage: string;
  script: string[];
  environment?: string;
  when?: string;
}

const SHA = '77b0e12a9c3d4e5f60718293a4b5c6d7e8f90123';
const GITLAB = {
  GITLAB_CI: 'true',
  CI_COMMIT_SHA: SHA,
  CI_COMMIT_AUTHOR: 'Alice Example <alice@example.com>',
  CI_COMMIT_TITLE: "Merge branch 'cart-cache' into 'main'",
  CI_COMMIT_MESSAGE:
    "Merge branch 'cart-cache' into 'main'\n\nCache cart totals\n\nSee merge request shop/checkout!4812",
  CI_PROJECT_URL: 'https://gitlab.example.com/shop/checkout',
  CI_PIPELINE_ID: '99001',
  GITLAB_USER_EMAIL: 'bob@example.com',
  GITLAB_USER_LOGIN: 'bob',
};

describe.skipIf(tools.length > 0)('examples/gitlab-ci/.gitlab-ci.yml', () => {
  let svc: Awaited<ReturnType<typeof listeningService>>;
  let ws: ReturnType<typeof workspace>;
  let bin: string;
  beforeEach(async () => {
    svc = await listeningService({ at: '2026-11-26T11:00:00Z' });
    ws = workspace();
    bin = join(ws.dir, 'bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'changepager'),
      `#!/bin/sh\nexec ${join(ROOT, 'node_modules/.bin/tsx')} ${join(ROOT, 'src/cli.ts')} "$@"\n`,
    );
    chmodSync(join(bin, 'changepager'), 0o755);
  });
  afterEach(async () => {
    await svc.close();
    ws.remove();
  });

  async function runPipeline(beforeJob: (name: string) => Promise<void> = async () => {}) {
    const file = readYaml<Record<string, unknown> & { stages: string[] }>('gitlab-ci/.gitlab-ci.yml');
    const jobs = Object.entries(file).filter(
      ([name, v]) => !name.startsWith('.') && typeof v === 'object' && v && 'script' in v,
    ) as [string, Job][];
    const results: Record<string, { outcome: string; stdout: string; stderr: string }> = {};
    let failed = false;
    let jobId = 5550100;
    for (const stage of file.stages) {
      let stageFailed = false;
      for (const [name, job] of jobs.filter(([, j]) => j.stage === stage)) {
        const runs = job.when === 'on_failure' ? failed : !failed;
        if (!runs) {
          results[name] = { outcome: 'skipped', stdout: '', stderr: '' };
          continue;
        }
        await beforeJob(name);
        const env = baseEnv({
          ...GITLAB,
          CI_JOB_ID: String(++jobId),
          CI_JOB_NAME: name,
          ...(job.environment ? { CI_ENVIRONMENT_NAME: job.environment } : {}),
          CHANGEPAGER_URL: svc.url,
          CHANGEPAGER_TOKEN: TOKEN,
          PATH: `${bin}:${process.env.PATH}`,
        });
        const result = await runBash(job.script.join('\n'), { cwd: ws.dir, env });
        results[name] = { outcome: result.code === 0 ? 'success' : `failed (${result.code})`, ...result };
        if (result.code !== 0) stageFailed = true;
      }
      failed ||= stageFailed;
    }
    return results;
  }

  const stored = async (id: string) =>
    (await request(svc.h.app).get(`/v1/deploys/${id}`).set('Authorization', `Bearer ${TOKEN}`)).body;

  it('records the canary with what GitLab knows, passes the gate after a quiet window, and promotes', async () => {
    const results = await runPipeline(async (job) => {
      if (job === 'canary-gate') svc.clock.advance(36 * 60_000);
    });
    expect(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.outcome]))).toEqual({
      'deploy-canary': 'success',
      'canary-gate': 'success',
      'rollback-canary': 'skipped',
      promote: 'success',
    });
    expect(results['canary-gate']?.stdout).toMatch(/^healthy: checkout deploy 77b0e12a/);
    expect(ws.deploys()).toEqual(['--hosts checkout-7f9c-abcde', '--all']);
    const change = {
      author: { email: 'alice@example.com', name: 'Alice Example' },
      mergedBy: { email: 'bob@example.com', login: 'bob' },
      commit: { sha: SHA, url: `https://gitlab.example.com/shop/checkout/-/commit/${SHA}` },
      pullRequest: { number: 4812, url: 'https://gitlab.example.com/shop/checkout/-/merge_requests/4812' },
    };
    expect(await stored('gitlab-99001-5550101-checkout-production-canary')).toMatchObject({
      environment: 'production',
      version: SHA,
      stage: 'canary',
      hosts: ['checkout-7f9c-abcde'],
      changes: [change],
    });
    expect(await stored('gitlab-99001-5550103-checkout-production-full')).toMatchObject({
      stage: 'full',
      changes: [change],
    });
  }, 30_000);

  it('fails the gate when the canary host alerts, and rolls back instead of promoting', async () => {
    const results = await runPipeline(async (job) => {
      if (job !== 'canary-gate') return;
      svc.clock.advance(6 * 60_000);
      const res = await request(svc.h.app)
        .post('/v1/alertmanager')
        .set('Authorization', `Bearer ${TOKEN}`)
        .send({
          version: '4',
          groupKey: 'g',
          status: 'firing',
          alerts: [
            {
              status: 'firing',
              labels: {
                alertname: 'PaymentsFailing',
                service: 'checkout',
                env: 'production',
                pod: 'checkout-7f9c-abcde',
              },
              startsAt: '2026-11-26T11:04:00Z',
              fingerprint: 'd00d000000000001',
            },
          ],
        });
      expect(res.status).toBe(200);
    });
    expect(results['canary-gate']?.outcome).toBe('failed (1)');
    expect(results['canary-gate']?.stdout).toContain(
      '  - PaymentsFailing d00d000000000001 since 2026-11-26T11:04:00.000000000Z',
    );
    expect(results['rollback-canary']?.outcome).toBe('success');
    expect(results.promote?.outcome).toBe('skipped');
    expect(ws.deploys()).toEqual(['--hosts checkout-7f9c-abcde', '--rollback --hosts checkout-7f9c-abcde']);
  }, 30_000);
});
