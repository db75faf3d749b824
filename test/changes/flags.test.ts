import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { eventTrigger, incidentDetails } from '../../src/channels/pagerduty/payload.js';
import { describeChange } from '../../src/core/change.js';
import type { Deploy } from '../../src/core/types.js';
import { amPayload, apiClient, createHarness, designDeploy, fakeClock, type Harness } from '../support/harness.js';

const carolFlip = (overrides: Record<string, unknown> = {}) => ({
  kind: 'flag',
  id: 'launchdarkly-481',
  service: 'checkout',
  environment: 'production',
  flag: { key: 'new-cart', from: false, to: true },
  author: { email: 'carol@example.com', login: 'carol', name: 'Carol' },
  at: '2026-11-26T11:02:00Z',
  ...overrides,
});

describe('flag and config changes are attributed like deploys', () => {
  let h: Harness;
  const clock = fakeClock('2026-11-26T11:20:00Z');

  beforeEach(() => {
    clock.set('2026-11-26T11:20:00Z');
    h = createHarness({ now: clock.now });
  });
  afterEach(async () => {
    await h.close();
  });

  const { post, get } = apiClient(() => h.app);

  it('pages carol for an alert after her flag flip, and the reason says "flag new-cart turned on by carol"', async () => {
    // alice's deploy came earlier: the flag flip is the latest change, so it is the suspect.
    await post('/v1/deploys', designDeploy({ at: '2026-11-26T10:50:00Z' }));
    const flip = await post('/v1/deploys', carolFlip());
    expect(flip.status).toBe(201);
    expect(flip.body).toMatchObject({
      id: 'launchdarkly-481',
      kind: 'flag',
      version: 'flag:new-cart=true',
      previousVersion: 'flag:new-cart=false',
      flag: { key: 'new-cart', from: false, to: true },
      config: null,
      changes: [{ author: { email: 'carol@example.com', login: 'carol', name: 'Carol' } }],
    });

    await post('/v1/alertmanager', amPayload([{ fingerprint: 'f100000000000001', startsAt: '2026-11-26T11:09:00Z' }]));
    const decision = (await get('/v1/alerts/f100000000000001')).body.episodes[0].decision;
    expect(decision).toMatchObject({
      reason: 'author_paged',
      deployId: 'launchdarkly-481',
      targets: [{ kind: 'person', email: 'carol@example.com' }],
    });
    expect(decision.sentence).toBe(
      'checkout flag new-cart turned on by carol@example.com at 11:02 UTC; the alert started at 11:09 UTC, 7 min later. Paging carol@example.com.',
    );
  });

  it('stores the kind and what changed, and reads them back after a restart', async () => {
    // Reopen the same database file, as a restart would.
    const dir = mkdtempSync(join(tmpdir(), 'changepager-flags-'));
    await h.close();
    h = createHarness({ now: clock.now, dir });
    await post('/v1/deploys', carolFlip());
    await post('/v1/deploys', {
      kind: 'config',
      id: 'cfg-1',
      service: 'checkout',
      config: { key: 'db.pool_size', description: 'pool 20 → 50' },
      author: { login: 'dave' },
    });
    await h.close();
    h = createHarness({ now: clock.now, dir });
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    expect((await get('/v1/deploys/launchdarkly-481')).body).toMatchObject({ kind: 'flag', flag: { key: 'new-cart' } });
    expect((await get('/v1/deploys/cfg-1')).body).toMatchObject({
      kind: 'config',
      config: { key: 'db.pool_size', description: 'pool 20 → 50' },
      version: 'config:db.pool_size@2026-11-26T11:20:00.000Z',
      flag: null,
    });
  });

  it('keeps a version the sender gives, and accepts changes instead of author', async () => {
    const res = await post(
      '/v1/deploys',
      carolFlip({ version: 'ld-rev-77', author: undefined, changes: [{ author: { email: 'carol@example.com' } }] }),
    );
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ version: 'ld-rev-77', previousVersion: null });
  });

  it('still treats an event without kind, or with kind deploy, as a deploy that needs a version', async () => {
    expect((await post('/v1/deploys', designDeploy({ id: 'k1', kind: 'deploy' }))).body.kind).toBe('deploy');
    expect((await post('/v1/deploys', designDeploy({ id: 'k2' }))).body.kind).toBe('deploy');
    const { version: _v, ...noVersion } = designDeploy({ id: 'k3' });
    const res = await post('/v1/deploys', noVersion);
    expect(res.status).toBe(400);
    expect(res.body.details.problems).toEqual([{ path: 'version', message: expect.any(String) }]);
  });

  it.each([
    ['a flag event without the flag and without an author', { flag: undefined, author: undefined }, ['author', 'flag']],
    ['a flag event with both author and changes', { changes: [{ author: { login: 'x' } }] }, ['author']],
    ['a flag without a key or a new value', { flag: { from: true } }, ['flag.key', 'flag.to']],
    ['a flag value that is an object', { flag: { key: 'k', to: { on: true } } }, ['flag.to']],
    ['an unknown kind', { kind: 'feature' }, ['kind']],
    [
      'an author with neither email nor login, and a bad stage',
      { author: { name: 'C' }, stage: 'half' },
      ['author', 'stage'],
    ],
  ])('rejects %s, listing every problem, and stores nothing', async (_intent, patch, paths) => {
    const res = await post('/v1/deploys', carolFlip(patch));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_payload');
    expect(res.body.details.problems.map((p: { path: string }) => p.path).sort()).toEqual(paths);
    expect((await get('/v1/deploys')).body.deploys).toEqual([]);
  });

  it('rejects a config change that names neither a key nor a description', async () => {
    const res = await post('/v1/deploys', {
      kind: 'config',
      service: 'checkout',
      config: {},
      author: { login: 'dave' },
    });
    expect(res.status).toBe(400);
    expect(res.body.details.problems).toEqual([{ path: 'config', message: 'needs a key or a description' }]);
  });

  it('puts the flag, not a version, on the PagerDuty incident and event', async () => {
    await post('/v1/deploys', carolFlip());
    await post('/v1/alertmanager', amPayload([{ fingerprint: 'f200000000000001', startsAt: '2026-11-26T11:09:00Z' }]));
    const pageId = (await get('/v1/alerts/f200000000000001')).body.episodes[0].pages[0].id;
    const page = await h.store.pageWithMembers(pageId);
    const deploy = await h.store.getDeploy('launchdarkly-481');
    if (!page || !deploy) throw new Error('page and flag flip were stored');
    const ctx = { ...page, deploys: new Map([[deploy.id, deploy]]) };
    const details = incidentDetails(ctx);
    expect(details).toContain('Change: checkout flag new-cart turned on in production, full rollout, at 11:02 UTC');
    expect(details).not.toContain('flag:new-cart=true');
    expect(eventTrigger(ctx, 'rk').payload?.custom_details).toMatchObject({
      deploy: { kind: 'flag', flag: { key: 'new-cart', from: false, to: true } },
    });
  });
});

describe('describeChange: the words a reason uses for a change', () => {
  const base: Pick<Deploy, 'version'> = { version: 'v142' };
  it.each([
    ['a deploy names its version', { kind: 'deploy' }, 'deploy v142'],
    ['an event from before kinds existed is a deploy', {}, 'deploy v142'],
    ['false → true is turned on', { kind: 'flag', flag: { key: 'k', from: false, to: true } }, 'flag k turned on'],
    ['a new flag that is on is turned on', { kind: 'flag', flag: { key: 'k', to: true } }, 'flag k turned on'],
    ['"on" → "off" is turned off', { kind: 'flag', flag: { key: 'k', from: 'on', to: 'off' } }, 'flag k turned off'],
    [
      'enabled → disabled is turned off',
      { kind: 'flag', flag: { key: 'k', from: 'enabled', to: 'disabled' } },
      'flag k turned off',
    ],
    [
      'a variant change says from and to',
      { kind: 'flag', flag: { key: 'k', from: 'blue', to: 'green' } },
      'flag k changed from blue to green',
    ],
    [
      'a percentage says from and to',
      { kind: 'flag', flag: { key: 'k', from: 10, to: 50 } },
      'flag k changed from 10 to 50',
    ],
    ['a new non-boolean flag is set', { kind: 'flag', flag: { key: 'k', to: 'green' } }, 'flag k set to green'],
    ['a config key', { kind: 'config', config: { key: 'db.pool' } }, 'config change db.pool'],
    ['a config description', { kind: 'config', config: { description: 'bigger pool' } }, 'config change "bigger pool"'],
    [
      'both',
      { kind: 'config', config: { key: 'db.pool', description: '20 → 50' } },
      'config change db.pool ("20 → 50")',
    ],
  ] as [string, Partial<Deploy>, string][])('%s', (_intent, patch, words) => {
    expect(describeChange({ ...base, ...patch })).toBe(words);
  });
});
