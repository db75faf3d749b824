import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, fixture, type Harness, TOKEN } from '../support/harness.js';
import { readExample, readYaml, which } from './support.js';

// examples/alertmanager/alertmanager.yml: checked by Alertmanager's own amtool (Debian's prometheus-alertmanager
// ships it), and its webhook's URL path and bearer token accepted by changepager with a real 0.25 payload.

interface AmConfig {
  route: { receiver: string; group_by: string[] };
  receivers: {
    name: string;
    webhook_configs: {
      url: string;
      send_resolved: boolean;
      max_alerts: number;
      http_config: { authorization: { type: string; credentials_file: string } };
    }[];
  }[];
}

const amtool = which('amtool');

describe('examples/alertmanager/alertmanager.yml', () => {
  const config = readYaml<AmConfig>('alertmanager/alertmanager.yml');
  const receiver = config.receivers.find((r) => r.name === config.route.receiver);
  const webhook = receiver?.webhook_configs[0];
  let dir: string;
  let h: Harness;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'changepager-am-'));
    h = createHarness();
  });
  afterAll(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('routes everything to one changepager webhook that keeps resolved alerts and all of a group', () => {
    expect(webhook).toMatchObject({
      send_resolved: true,
      max_alerts: 0,
      http_config: { authorization: { type: 'Bearer' } },
    });
    expect(new URL(webhook?.url ?? '').pathname).toBe('/v1/alertmanager');
    expect(receiver?.name).toMatch(/^[a-z0-9_-]+$/);
  });

  // amtool reads credentials_file, so it points at a real file here.
  it.skipIf(!amtool)(
    `passes amtool check-config${amtool ? '' : ' (skipped: amtool not installed; apt-get install prometheus-alertmanager)'}`,
    async () => {
      const tokenFile = join(dir, 'changepager-token');
      writeFileSync(tokenFile, `${TOKEN}\n`);
      const file = join(dir, 'alertmanager.yml');
      writeFileSync(
        file,
        readExample('alertmanager/alertmanager.yml').replace('/etc/alertmanager/changepager-token', tokenFile),
      );
      const result = await new Promise<{ code: number; out: string }>((resolve) => {
        execFile(amtool as string, ['check-config', file], (err, stdout, stderr) =>
          resolve({ code: err ? Number(err.code ?? 1) : 0, out: stdout + stderr }),
        );
      });
      expect(result.out).toContain('SUCCESS');
      expect(result.code, result.out).toBe(0);
      // And amtool does fail a broken config, so the check above means something.
      writeFileSync(
        file,
        readExample('alertmanager/alertmanager.yml').replace(
          'type: Bearer',
          'type: Bearer\n            bearer_token: x',
        ),
      );
      const broken = await new Promise<number>((resolve) =>
        execFile(amtool as string, ['check-config', file], (err) => resolve(err ? 1 : 0)),
      );
      expect(broken).toBe(1);
    },
  );

  it('is accepted by changepager: the token file’s content as a Bearer header, on the configured path', async () => {
    // Alertmanager trims the file's whitespace and sends "Authorization: Bearer <token>".
    const credentials = `${TOKEN}\n`.trim();
    const res = await request(h.app)
      .post(new URL(webhook?.url ?? '').pathname)
      .set('Authorization', `${webhook?.http_config.authorization.type} ${credentials}`)
      .set('User-Agent', 'Alertmanager/0.25.0')
      .send(fixture('am025-firing.json'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ newEpisodes: 2 });
  });
});
