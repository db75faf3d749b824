import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runHealthcheck } from '../../src/cli/healthcheck.js';
import { freePort } from '../support/alertmanager.js';
import { TOKEN } from '../support/harness.js';
import { cliIo, listeningService } from './support.js';

// `changepager healthcheck` reads the config and environment `serve` reads and asks /healthz where the service
// really is, over real HTTP to a listening service.

describe('changepager healthcheck', () => {
  let svc: Awaited<ReturnType<typeof listeningService>>;
  let dir: string;
  let port: string;
  let closed: string;
  beforeAll(async () => {
    svc = await listeningService();
    port = new URL(svc.url).port;
    closed = String(await freePort());
    dir = mkdtempSync(join(tmpdir(), 'changepager-healthcheck-'));
    writeFileSync(join(dir, 'ok.yaml'), `listen: { host: 127.0.0.1, port: ${port} }\n`);
    writeFileSync(join(dir, 'wildcard.yaml'), `listen: { host: 0.0.0.0, port: ${port} }\n`);
    writeFileSync(join(dir, 'bad.yaml'), 'listen: { hots: 0.0.0.0 }\n');
  });
  afterAll(async () => {
    await svc.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const check = async (env: Record<string, string>, args: string[] = []) => {
    const run = cliIo({ env });
    run.io.readFile = (path) => readFileSync(path, 'utf8'); // the config files are real files
    const code = await runHealthcheck(args, run.io);
    return { code, stdout: run.stdout, stderr: run.stderr };
  };

  it.each([
    {
      intent: 'the service answers on the configured port',
      env: () => ({ CHANGEPAGER_CONFIG: join(dir, 'ok.yaml') }),
      code: 0,
      says: () => `ok: http://127.0.0.1:${port}/healthz answered 200`,
    },
    {
      intent: 'a wildcard host is asked through loopback',
      env: () => ({ CHANGEPAGER_CONFIG: join(dir, 'wildcard.yaml'), CHANGEPAGER_TOKEN: TOKEN }),
      code: 0,
      says: () => `ok: http://127.0.0.1:${port}/healthz`,
    },
    {
      intent: 'PORT moves the check with the service: nothing listens on the other port',
      env: () => ({ CHANGEPAGER_CONFIG: join(dir, 'ok.yaml'), PORT: closed }),
      code: 1,
      says: () => `unhealthy: cannot reach http://127.0.0.1:${closed}: ECONNREFUSED`,
    },
    {
      intent: 'a service that fell back to loopback for want of a token is not healthy',
      env: () => ({ CHANGEPAGER_CONFIG: join(dir, 'wildcard.yaml') }),
      code: 1,
      says: () => 'listens on 127.0.0.1 only, not on 0.0.0.0 as configured; set CHANGEPAGER_TOKEN or auth.tokens',
    },
    {
      intent: 'a config that cannot be used, with its problems',
      env: () => ({ CHANGEPAGER_CONFIG: join(dir, 'bad.yaml') }),
      code: 1,
      says: () => 'listen: Unrecognized key: "hots"',
    },
    {
      intent: 'port 0: there is no port to ask',
      env: () => ({ CHANGEPAGER_CONFIG: join(dir, 'ok.yaml'), PORT: '0' }),
      code: 1,
      says: () => 'is 0, any free port',
    },
  ])('$intent: exit $code', async ({ env, code, says }) => {
    const r = await check(env());
    expect(r.code, r.stderr).toBe(code);
    expect(code === 0 ? r.stdout : r.stderr).toContain(says());
  });

  it('takes no arguments', async () => {
    expect((await check({}, ['--port', '8080'])).code).toBe(2);
  });
});
