import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { designDeploy } from '../support/harness.js';
import { buildPackage, copyPackage } from '../support/package-copy.js';
import { type ServiceProcess, startServiceProcess } from '../support/process.js';

// `changepager serve` on the embedded default, started from a folder that is not the package: the config is
// found next to the code, the database goes under ./data of the folder it was started from, and the start-up
// log line names both files.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('the embedded default, started from another working directory', () => {
  let cwd: string;
  let service: ServiceProcess | undefined;
  const pkg = copyPackage();

  beforeAll(async () => {
    await buildPackage(pkg.dir);
  }, 240_000);
  afterAll(() => pkg.remove());
  afterEach(async () => {
    await service?.stop();
    service = undefined;
    rmSync(cwd, { recursive: true, force: true });
  });

  const startIn = async (cli?: string) => {
    cwd = mkdtempSync(join(tmpdir(), 'changepager-elsewhere-'));
    // No CHANGEPAGER_CONFIG: the embedded default.
    service = await startServiceProcess({}, { cwd, ...(cli ? { cli } : {}) });
    return service;
  };
  const deploy = (url: string) =>
    fetch(`${url}/v1/deploys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(designDeploy({ id: 'elsewhere-1' })),
    });

  it.each([
    { intent: 'from the sources (tsx)', cli: undefined, config: join(ROOT, 'config/changepager.yaml') },
    {
      intent: 'built (dist/cli.js)',
      cli: join(pkg.dir, 'dist/cli.js'),
      config: join(pkg.dir, 'config/changepager.yaml'),
    },
  ])('$intent: loads the package’s config and keeps ./data in the working directory', async ({ cli, config }) => {
    const s = await startIn(cli);
    expect(s.listening).toMatchObject({ config, database: join(cwd, 'data/changepager.db') });
    expect((await deploy(s.url)).status).toBe(201);
    expect(existsSync(join(cwd, 'data/changepager.db'))).toBe(true);
  });
});
