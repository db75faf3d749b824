import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { designDeploy } from '../support/harness.js';
import { NO_NETNS, runIsolated, UNSHARE } from '../support/netns.js';
import { buildPackage, copyPackage } from '../support/package-copy.js';
import { type ServiceProcess, startServiceProcess } from '../support/process.js';

// The built package (npm run build in a copy of it, as `npm start` and the Dockerfile's build stage do), started
// as a newcomer or the container image starts it.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const pkg = copyPackage();
beforeAll(async () => {
  await buildPackage(pkg.dir);
}, 240_000);
afterAll(() => pkg.remove());

// `changepager serve` on the embedded default, from a folder that is not the package: the config is found next
// to the code, the database goes under ./data of the folder it was started from, and the start-up log line names
// both files.
describe('the embedded default, started from another working directory', { timeout: 60_000 }, () => {
  let cwd: string;
  let service: ServiceProcess | undefined;
  afterEach(async () => {
    await service?.stop();
    service = undefined;
    rmSync(cwd, { recursive: true, force: true });
  });

  it.each([
    { intent: 'from the sources (tsx)', cli: undefined, config: join(ROOT, 'config/changepager.yaml') },
    {
      intent: 'built (dist/cli.js)',
      cli: join(pkg.dir, 'dist/cli.js'),
      config: join(pkg.dir, 'config/changepager.yaml'),
    },
  ])('$intent: loads the package’s config and keeps ./data in the working directory', async ({ cli, config }) => {
    cwd = mkdtempSync(join(tmpdir(), 'changepager-elsewhere-'));
    // No CHANGEPAGER_CONFIG: the embedded default.
    service = await startServiceProcess({}, { cwd, ...(cli ? { cli } : {}) });
    expect(service.listening).toMatchObject({ config, database: join(cwd, 'data/changepager.db') });
    const res = await fetch(`${service.url}/v1/deploys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(designDeploy({ id: 'elsewhere-1' })),
    });
    expect(res.status).toBe(201);
    expect(existsSync(join(cwd, 'data/changepager.db'))).toBe(true);
  });
});

/** The Dockerfile's runtime facts: its config file, and its HEALTHCHECK and CMD as the exec-form arrays it gives. */
function dockerfile() {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  const config = /CHANGEPAGER_CONFIG=(\S+)/.exec(runtime)?.[1];
  const healthcheck = /HEALTHCHECK [^\n]*\\\n\s*CMD (\[.*\])/.exec(runtime)?.[1];
  const cmd = /^CMD (\[.*\])$/m.exec(runtime)?.[1];
  return {
    workdir: /^WORKDIR (\S+)$/m.exec(runtime)?.[1],
    config,
    healthcheck: healthcheck ? (JSON.parse(healthcheck) as string[]) : [],
    cmd: cmd ? (JSON.parse(cmd) as string[]) : [],
  };
}

// The image's CMD and `npm start` run the same command, node flags included: what docs/operations.md says about
// the service's memory holds for both.
describe('the image and npm start', () => {
  it('start the service with the same node command and flags', () => {
    const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } })
      .scripts.start;
    expect(dockerfile().cmd.join(' ')).toBe(start);
    expect(start).toContain('--max-semi-space-size=8');
  });
});

const quote = (args: string[]) => args.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');

// In the image the service runs the Dockerfile's CMD in /app with its ENV; here the package copy stands for /app
// (the same dist/ and config/), in a network namespace of its own so that it can take port 8080 and bind 0.0.0.0
// as in a container. The one difference: the database path, the image's /data volume, points into the copy.
describe.skipIf(!UNSHARE)(
  `the container image's config and environment${UNSHARE ? '' : ` (${NO_NETNS})`}`,
  { timeout: 90_000 },
  () => {
    const image = dockerfile();
    let env: Record<string, string>;
    beforeAll(() => {
      expect(image).toMatchObject({ workdir: '/app', config: '/app/config/docker.yaml' });
      const yaml = readFileSync(join(ROOT, 'config/docker.yaml'), 'utf8');
      expect(yaml).toContain('path: /data/changepager.db');
      writeFileSync(
        join(pkg.dir, 'config/docker.yaml'),
        yaml.replace('/data/changepager.db', join(pkg.dir, 'data/changepager.db')),
      );
      // A mounted config of someone's own that does not ask for a token.
      writeFileSync(join(pkg.dir, 'config/mounted.yaml'), 'listen: { host: 0.0.0.0, port: 8080 }\n');
      env = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        NODE_ENV: 'production',
        CHANGEPAGER_CONFIG: (image.config as string).replace('/app/', `${pkg.dir}/`),
      };
    });
    const serve = () => quote(image.cmd);
    const healthcheck = () => quote(image.healthcheck);
    const run = (script: string, extra: Record<string, string> = {}) =>
      runIsolated(script, { cwd: pkg.dir, env: { ...env, ...extra }, limitMs: 60_000 });

    it('runs the healthcheck as a changepager command, not a guess at the port', () => {
      expect(image.healthcheck).toEqual(['node', 'dist/cli.js', 'healthcheck']);
      expect(image.cmd).toEqual(['node', '--max-semi-space-size=8', 'dist/cli.js', 'serve']);
    });

    it('refuses to start without a token, saying how to set one', async () => {
      const r = await run(`timeout 30 ${serve()}; echo "exit $?"`);
      expect(r.stdout.trim().split('\n').at(-1)).toBe('exit 1');
      expect(r.stderr).toContain('auth.require_token: no API token is configured. Set CHANGEPAGER_TOKEN');
      expect(r.stderr).toContain('auth.tokens');
      expect(r.stderr).toContain('CHANGEPAGER_ALLOW_OPEN=1');
    });

    it('with CHANGEPAGER_TOKEN listens on 0.0.0.0:8080 and is healthy there, and only there', async () => {
      const r = await run(
        `background svc.log ${serve()}
       wait_for svc.log '"changepager listening"' "\${BG[0]}" || exit 1
       grep -F '"changepager listening"' svc.log
       ${healthcheck()}; echo "healthcheck $?"
       PORT=9090 ${healthcheck()}; echo "healthcheck on 9090 $?"`,
        { CHANGEPAGER_TOKEN: 'image-test-token-0123456789' },
      );
      const [listening, ok, okCode, elsewhere] = r.stdout.trim().split('\n');
      expect(JSON.parse(listening ?? '{}')).toMatchObject({ url: 'http://0.0.0.0:8080' });
      expect(ok).toBe('ok: http://127.0.0.1:8080/healthz answered 200');
      expect(okCode).toBe('healthcheck 0');
      expect(elsewhere).toBe('healthcheck on 9090 1');
      expect(r.stderr).toContain('unhealthy: cannot reach http://127.0.0.1:9090: ECONNREFUSED');
    });

    it('follows PORT: the service and its healthcheck both move', async () => {
      const r = await run(
        `background svc.log ${serve()}
       wait_for svc.log '"changepager listening"' "\${BG[0]}" || exit 1
       ${healthcheck()}; echo "healthcheck $?"`,
        { CHANGEPAGER_TOKEN: 'image-test-token-0123456789', PORT: '9090' },
      );
      expect(r.stdout.trim().split('\n')).toEqual(['ok: http://127.0.0.1:9090/healthz answered 200', 'healthcheck 0']);
    });

    it('with CHANGEPAGER_ALLOW_OPEN=1 serves /v1 without a token on 0.0.0.0, and warns', async () => {
      const r = await run(
        `background svc.log ${serve()}
       wait_for svc.log '"changepager listening"' "\${BG[0]}" || exit 1
       curl -s -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:8080/v1/deploys
       ${healthcheck()}; echo "healthcheck $?"
       cat svc.log`,
        { CHANGEPAGER_ALLOW_OPEN: '1' },
      );
      const [status, , code] = r.stdout.split('\n');
      expect(status).toBe('200');
      expect(code).toBe('healthcheck 0');
      expect(r.stdout).toContain('"url":"http://0.0.0.0:8080"');
      expect(r.stdout).toContain('CHANGEPAGER_ALLOW_OPEN and no API token: /v1 is open to anyone who can reach');
    });

    it('a mounted config that does not require a token: the service falls back to loopback, the healthcheck fails', async () => {
      const r = await run(
        `background svc.log ${serve()}
       wait_for svc.log '"changepager listening"' "\${BG[0]}" || exit 1
       ${healthcheck()}; echo "healthcheck $?"`,
        { CHANGEPAGER_CONFIG: join(pkg.dir, 'config/mounted.yaml') },
      );
      expect(r.stdout.trim()).toBe('healthcheck 1');
      expect(r.stderr).toContain(
        'unhealthy: no API token is configured, so changepager listens on 127.0.0.1 only, not on 0.0.0.0 as configured',
      );
    });
  },
);
