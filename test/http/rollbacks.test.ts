import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { apiClient, createHarness, designDeploy, fakeClock, type Harness } from '../support/harness.js';

// The forms a rollback (or any deploy without changes) takes at POST /v1/deploys, and what is stored for each:
// checkout v1 at 08:00, alice's v2 at 09:03, then a rollback at 09:13.

describe('POST /v1/deploys: rollbacks and deploys without changes', () => {
  let h: Harness;
  const clock = fakeClock('2026-11-26T09:30:00Z');
  const { post, get } = apiClient(() => h.app);

  beforeEach(async () => {
    clock.set('2026-11-26T09:30:00Z');
    h = createHarness({ now: clock.now });
    expect(
      (await post('/v1/deploys', designDeploy({ id: 'v1', version: 'v1', at: '2026-11-26T08:00:00Z' }))).status,
    ).toBe(201);
    const v2 = designDeploy({ id: 'v2', version: 'v2', previousVersion: 'v1', at: '2026-11-26T09:03:00Z' });
    expect((await post('/v1/deploys', v2)).status).toBe(201);
  });
  afterEach(async () => {
    await h.close();
  });

  const rollback = (fields: Record<string, unknown>) => {
    const { changes: _c, ...event } = designDeploy({ id: 'rb', at: '2026-11-26T09:13:00Z', ...fields });
    return post('/v1/deploys', event);
  };

  it.each<[string, Record<string, unknown>, unknown]>([
    ['rollbackOf names the deploy rolled back', { version: 'v1', rollbackOf: 'v2' }, { of: ['v2'], explicit: true }],
    [
      'rollback: true, changepager finds what it undid',
      { version: 'v1', rollback: true },
      { of: ['v2'], explicit: true },
    ],
    ['no field at all: the version ran before the current one', { version: 'v1' }, { of: ['v2'], explicit: false }],
    ['a restart of the version running is no rollback', { version: 'v2' }, null],
    ['a new version without changes is no rollback', { version: 'v3' }, null],
  ])('%s', async (_intent, fields, expected) => {
    const res = await rollback(fields);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id: 'rb', changes: [], rollback: expected });
    expect((await get('/v1/deploys/rb')).body.rollback).toEqual(expected);
  });

  it('accepts changes: [] as well as no changes field', async () => {
    const res = await post('/v1/deploys', designDeploy({ id: 'rb', version: 'v1', changes: [], rollback: true }));
    expect([res.status, res.body.changes, res.body.rollback]).toEqual([201, [], { of: ['v2'], explicit: true }]);
  });

  it('refuses a rollbackOf that names no deploy, saying what to send, and stores nothing', async () => {
    const res = await rollback({ version: 'v1', rollbackOf: 'gha-run-nope' });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({
      error: 'unknown_rollback_target',
      details: { problems: [{ path: 'rollbackOf', message: 'no deploy of this service and environment has this id' }] },
    });
    expect(res.body.message).toContain('"rollback": true');
    expect((await get('/v1/deploys/rb')).status).toBe(404);
  });

  it('refuses a rollbackOf that names a deploy of another service, or a flag flip', async () => {
    await post('/v1/deploys', designDeploy({ id: 'search-1', service: 'search', version: 's1' }));
    const res = await rollback({ version: 'v1', rollbackOf: 'search-1' });
    expect([res.status, res.body.error]).toEqual([422, 'unknown_rollback_target']);
    const flag = {
      kind: 'flag',
      id: 'flip',
      service: 'checkout',
      flag: { key: 'x', to: true },
      author: { login: 'carol' },
    };
    await post('/v1/deploys', flag);
    const flagged = await rollback({ version: 'v1', rollbackOf: 'flip' });
    expect([flagged.status, flagged.body.error]).toEqual([422, 'unknown_rollback_target']);
  });

  it('takes a version deployed again after a rollback of it for that version, not for another rollback', async () => {
    expect((await rollback({ version: 'v1', rollbackOf: 'v2' })).status).toBe(201);
    const again = designDeploy({ id: 'v2-again', version: 'v2', at: '2026-11-26T09:20:00Z' });
    expect((await post('/v1/deploys', again)).body.rollback).toBeNull();
  });

  it('answers a repeated rollback with the stored one, unchanged', async () => {
    expect((await rollback({ version: 'v1', rollback: true })).status).toBe(201);
    const again = await rollback({ version: 'v1', rollback: true });
    expect([again.status, again.body.rollback]).toEqual([200, { of: ['v2'], explicit: true }]);
  });

  it('answers rolled_back for the deploy undone, with when and by which deploy', async () => {
    await rollback({ version: 'v1', rollbackOf: 'v2' });
    const res = await get('/v1/deploys/v2/verdict?observe=PT30M');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      verdict: 'rolled_back',
      rolledBack: { id: 'rb', version: 'v1', at: '2026-11-26T09:13:00.000Z' },
    });
    expect(res.body.sentence).toContain('was rolled back to v1 at 09:13 UTC by deploy rb');
    expect((await get('/v1/deploys/v1/verdict?observe=PT30M')).body).toMatchObject({
      verdict: 'healthy',
      rolledBack: null,
    });
  });
});
