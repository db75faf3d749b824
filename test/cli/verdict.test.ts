import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runVerdict } from '../../src/cli/verdict.js';
import { amPayload, designDeploy, TOKEN } from '../support/harness.js';
import { cliIo, listeningService } from './support.js';

// `changepager verdict ID --wait` against a real listening service. Its sleep moves the service's clock, so
// half an hour of canary observation passes without waiting.

describe('changepager verdict', () => {
  let svc: Awaited<ReturnType<typeof listeningService>>;
  beforeEach(async () => {
    svc = await listeningService({ at: '2026-11-26T11:00:00Z' });
    const res = await request(svc.h.app)
      .post('/v1/deploys')
      .set('Authorization', `Bearer ${TOKEN}`)
      .send(
        designDeploy({ id: 'canary-1', stage: 'canary', hosts: ['checkout-7f9c-abcde'], at: '2026-11-26T11:00:00Z' }),
      );
    expect(res.status).toBe(201);
  });
  afterEach(async () => {
    await svc.close();
  });
  const env = () => ({ CHANGEPAGER_URL: svc.url, CHANGEPAGER_TOKEN: TOKEN });
  const alert = (startsAt: string) =>
    request(svc.h.app)
      .post('/v1/alertmanager')
      .set('Authorization', `Bearer ${TOKEN}`)
      .send(amPayload([{ fingerprint: 'c1a0000000000001', startsAt }]));

  it('waits out the window and exits 0 when nothing was attributed', async () => {
    const run = cliIo({ env: env(), clock: svc.clock });
    expect(await runVerdict(['canary-1', '--wait'], run.io)).toBe(0);
    expect(run.stdout).toBe(
      'healthy: checkout deploy 2026.11.26-3f2a9c1 (canary) in production is healthy: no alert was attributed to it from 11:00 UTC to 11:30 UTC.\n',
    );
    // It asked every 30 s as told, and not once after the window was decided.
    expect(run.sleeps.every((ms) => ms === 30_000)).toBe(true);
    expect(run.sleeps).toHaveLength(60);
    expect(new Date(svc.clock.now()).toISOString()).toBe('2026-11-26T11:30:00.000Z');
    expect(run.stderr).toContain('no alert attributed so far'); // the pending state, said once
    expect(run.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });

  it('exits 1 as soon as an alert is attributed, and names it', async () => {
    let slept = 0;
    const run = cliIo({
      env: env(),
      clock: svc.clock,
      onSleep: async () => {
        // Ten minutes in, the canary host alerts.
        if (++slept === 20) expect((await alert('2026-11-26T11:09:30Z')).status).toBe(200);
      },
    });
    expect(await runVerdict(['--id', 'canary-1', '--wait', '--interval', 'PT30S'], run.io)).toBe(1);
    expect(run.sleeps).toHaveLength(20);
    expect(run.stdout).toMatch(
      /^failing: checkout deploy 2026\.11\.26-3f2a9c1 \(canary\) in production is failing: 1 alert/,
    );
    expect(run.stdout).toContain(
      '  - HighErrorRate c1a0000000000001 since 2026-11-26T11:09:30.000000000Z: checkout deploy',
    );
  });

  it('exits 2 when the wait times out while still pending', async () => {
    const run = cliIo({ env: env(), clock: svc.clock });
    expect(await runVerdict(['canary-1', '--wait', '--timeout', 'PT10M', '--interval', 'PT1M'], run.io)).toBe(2);
    expect(run.stderr).toContain('timed out after 600 s; the rollout is still pending');
    expect(run.sleeps).toEqual(Array(10).fill(60_000));
  });

  it('waits for settle too, asking again when the window can be decided rather than a whole interval later', async () => {
    svc.clock.set('2026-11-26T11:29:50Z');
    const run = cliIo({ env: env(), clock: svc.clock });
    expect(await runVerdict(['canary-1', '--wait', '--settle', 'PT1M', '--interval', 'PT5M'], run.io)).toBe(0);
    expect(run.sleeps).toEqual([70_000]);
  });

  it('answers once without --wait: 2 while pending, 0 once healthy', async () => {
    const pending = cliIo({ env: env(), clock: svc.clock });
    expect(await runVerdict(['canary-1'], pending.io)).toBe(2);
    // The sentence once, on stdout: a pipeline that captures both streams does not see it twice.
    expect(pending.stdout).toMatch(/^pending: checkout deploy .* no alert attributed so far/);
    expect(pending.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(pending.stderr).toBe('');
    expect(pending.sleeps).toEqual([]);
    svc.clock.set('2026-11-26T11:31:00Z');
    const json = cliIo({ env: env(), clock: svc.clock });
    expect(await runVerdict(['canary-1', '--json'], json.io)).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: 'canary-1', verdict: 'healthy' });
  });

  it.each([
    ['an unknown deploy', ['nope'], '404 not_found: No deploy with id "nope".'],
    ['an observation the server refuses', ['canary-1', '--observe', 'P1D'], '400 invalid_query'],
    ['a duration that is not one', ['canary-1', '--timeout', 'soon'], '--timeout must be an ISO-8601 duration'],
    ['no id', ['--wait'], 'give exactly one deploy id'],
    [
      'several usage problems, all of them at once',
      ['--observe', 'half an hour', '--interval', 'often'],
      '3 problems:\n  - give exactly one deploy id (as --id or the first argument)\n  - --observe must be an ISO-8601 duration such as PT30M, not "half an hour"\n  - --interval must be',
    ],
  ])('exits 3 for %s', async (_intent, args, message) => {
    const run = cliIo({ env: env(), clock: svc.clock });
    expect(await runVerdict(args, run.io)).toBe(3);
    expect(run.stderr).toContain(message);
  });

  it('keeps asking through a restart of the service while waiting', async () => {
    let calls = 0;
    const flaky: typeof fetch = async (input, init) => {
      if (++calls === 2) throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
      return fetch(input, init);
    };
    svc.clock.set('2026-11-26T11:29:00Z');
    const run = cliIo({ env: env(), clock: svc.clock, fetch: flaky });
    expect(await runVerdict(['canary-1', '--wait'], run.io)).toBe(0);
    expect(run.stderr).toContain('ECONNREFUSED; asking again');
  });
});
