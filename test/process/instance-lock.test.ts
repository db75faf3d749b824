import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { designDeploy, TOKEN } from '../support/harness.js';
import { type ServiceProcess, startServiceProcess } from '../support/process.js';

// Two changepager processes on one database would both deliver every page. The second must refuse to start and
// say which process holds the database; a holder that was SIGKILLed must not block the restart.

describe('two changepager processes on one database', () => {
  let dir: string;
  const running: ServiceProcess[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'changepager-lock-'));
    writeFileSync(
      join(dir, 'changepager.yaml'),
      `database: { path: ${JSON.stringify(join(dir, 'changepager.db'))} }\n`,
    );
  });
  afterEach(async () => {
    for (const p of running.splice(0)) await p.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async () => {
    const p = await startServiceProcess({
      CHANGEPAGER_CONFIG: join(dir, 'changepager.yaml'),
      CHANGEPAGER_TOKEN: TOKEN,
    });
    running.push(p);
    return p;
  };
  const deploy = (url: string, id: string) =>
    fetch(`${url}/v1/deploys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(designDeploy({ id })),
    });

  it('refuses the second, naming the first by pid, host and start time; starts after the first is SIGKILLed', async () => {
    const first = await start();
    expect((await deploy(first.url, 'before-the-second')).status).toBe(201);

    const refused = await start().then(
      () => 'the second instance started',
      (err: Error) => err.message,
    );
    expect(refused).toMatch(/^service exited with 1 before listening/);
    expect(refused).toMatch(
      new RegExp(
        `is in use by another changepager \\(pid ${first.child.pid} on host ${hostname()}, since \\d{4}-\\d\\d-\\d\\dT`,
      ),
    );
    expect((await deploy(first.url, 'after-the-refusal')).status).toBe(201); // the first runs on, untouched

    await first.kill();
    const restarted = await start(); // the kernel dropped the dead process's lock: nothing to clean up by hand
    const stored = await fetch(`${restarted.url}/v1/deploys/after-the-refusal`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(stored.status).toBe(200);
  });
});
