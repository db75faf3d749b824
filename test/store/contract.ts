import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pageDedupKey } from '../../src/core/dedup-key.js';
import { type AlertWrite, episodeKey, type GroupInfo } from '../../src/core/plan.js';
import type { Alert, CodeHostSource, Decision, Deploy, Target } from '../../src/core/types.js';
import { type ClaimedItem, StorageError, type Store } from '../../src/store/store.js';

// The store contract: every behaviour the pipeline, the outbox worker, the API and the timeline page rely on,
// asserted through the ports alone, the same cases for every adapter (SQLite file, PostgreSQL). A new adapter is
// done when this suite passes on it.

/** Waits (in steps of 20 ms, at most 10 s) until `check` holds. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
}

export interface StoreFactory {
  /** A fresh, empty store of this adapter. */
  open(): Promise<Store>;
  /**
   * A second store on the same database, as another replica would open it; absent for an adapter that runs as
   * one instance (it must refuse a second one instead).
   */
  openAnother?(): Promise<Store>;
  /** Removes what open() made. */
  cleanup(): Promise<void>;
}

export const T0 = Date.parse('2026-11-26T11:00:00Z');
const MIN = 60_000;
export const GROUP: GroupInfo = {
  groupKey: '{}:{alertname="HighErrorRate"}',
  receiver: 'cp',
  externalURL: 'http://am',
};
const ALICE: Target = { kind: 'person', email: 'alice@example.com' };
const ONCALL: Target = { kind: 'oncall' };

export function deploy(overrides: Partial<Deploy> = {}): Deploy {
  return {
    id: 'd1',
    kind: 'deploy',
    service: 'checkout',
    environment: 'production',
    version: 'v2',
    previousVersion: 'v1',
    stage: 'full',
    hosts: [],
    at: T0 + 2 * MIN,
    receivedAt: T0 + 2 * MIN,
    changes: [
      { author: { email: 'alice@example.com', login: 'alice' }, pullRequest: { number: 7, url: 'https://git/7' } },
    ],
    ...overrides,
  };
}

export function alert(
  fingerprint: string,
  startsAtMs: number,
  status: 'firing' | 'resolved' = 'firing',
  endsAtMs?: number,
): Alert {
  const a: Alert = {
    fingerprint,
    startsAt: `${new Date(startsAtMs).toISOString().slice(0, 19)}.123456789Z`,
    startsAtMs,
    status,
    labels: { alertname: 'HighErrorRate', service: 'checkout', instance: 'web-1:9100' },
    annotations: { summary: 'errors' },
    generatorURL: 'http://prom/graph',
  };
  if (endsAtMs !== undefined) a.endsAtMs = endsAtMs;
  return a;
}

export function decision(
  targets: Target[] = [ALICE],
  notify: string[] = ['alice@example.com'],
  deployId = 'd1',
): Decision {
  return {
    reason: targets.some((t) => t.kind === 'person') ? 'author_paged' : 'no_deploy_in_window',
    sentence: 'Paging alice.',
    service: 'checkout',
    environment: 'production',
    policy: 'author',
    deployId,
    suspects: [{ role: 'author', identity: { email: 'alice@example.com' }, email: 'alice@example.com' }],
    targets,
    responders: [],
    notify,
    wouldPage: [],
  };
}

const fire = (fingerprint: string, startsAtMs = T0 + 9 * MIN, d: Decision = decision()): AlertWrite => ({
  alert: alert(fingerprint, startsAtMs),
  decision: d,
});

export function describeStoreContract(name: string, factory: StoreFactory): void {
  describe(`the store contract: ${name}`, () => {
    let store: Store;
    const claim = (now: number, over: Partial<Parameters<Store['claimDue']>[0]> = {}) =>
      store.claimDue({ owner: 'w1', now, limit: 100, leaseMs: 30_000, ...over });
    const attempt = (at: number, outcome: 'delivered' | 'retry' | 'failed' = 'delivered') => [
      { at, channel: 'test', outcome, detail: outcome, durationMs: 3 },
    ];
    const deliverAll = async (now: number) => {
      for (const item of await claim(now)) await store.recordAttempt(item, attempt(now), {});
    };

    beforeEach(async () => {
      store = await factory.open();
    });
    afterEach(async () => {
      await store.close();
      await factory.cleanup();
    });

    describe('deploys', () => {
      it('stores a deploy once: a repeat of its id answers the stored event, unchanged', async () => {
        const full = deploy({ percent: 5, stage: 'canary', hosts: ['web-1'], flag: undefined });
        expect(await store.saveDeploy(full)).toEqual({ created: true, deploy: full });
        const again = await store.saveDeploy(deploy({ version: 'v9' }));
        expect(again.created).toBe(false);
        expect(again.deploy).toEqual(full);
        expect(await store.getDeploy('d1')).toEqual(full);
        expect(await store.getDeploy('nope')).toBeUndefined();
      });

      it('stores a code host deploy with its source and the enrichment row, then replaces its changes once found', async () => {
        const source: CodeHostSource = {
          host: 'github',
          repository: 'acme/checkout',
          sha: 'a'.repeat(40),
          deploymentId: '42',
          deliveryId: 'delivery-1',
          changes: 'pending',
        };
        const hooked = deploy({ id: 'github-deployment-42', changes: [], source });
        await store.saveDeploy(hooked, { enqueue: ['github_enrich'] });
        expect(await store.getDeploy('github-deployment-42')).toEqual(hooked);
        const [row] = await claim(T0 + 2 * MIN, { kinds: ['github_enrich'] });
        expect(row).toMatchObject({ kind: 'github_enrich', ref: 'github-deployment-42' });
        // A replay of the same deployment queues nothing more.
        await store.saveDeploy(hooked, { enqueue: ['github_enrich'] });
        expect(await store.nextDueAt(['github_enrich'])).toBe(T0 + 2 * MIN);

        // Merged two minutes before the deploy: the lead time is known once the changes are.
        const changes = deploy().changes.map((c) => ({ ...c, mergedAt: new Date(T0).toISOString() }));
        const found: CodeHostSource = { ...source, changes: 'found' };
        expect(await store.enrichDeploy('github-deployment-42', { changes, source: found })).toEqual({ updated: true });
        expect(await store.getDeploy('github-deployment-42')).toEqual({ ...hooked, changes, source: found });
        const [summary] = await store.deploySummaries(['github-deployment-42'], 10);
        expect(summary?.changeCount).toBe(1);
        expect(summary?.leadMs).toBe(2 * MIN);
        expect(await store.enrichDeploy('nope', { changes, source: found })).toEqual({ updated: false });
      });

      it('keeps flag and config changes with what changed', async () => {
        const flag = deploy({
          id: 'f1',
          kind: 'flag',
          flag: { key: 'new-cart', from: false, to: true },
          version: 'flag:new-cart=true',
        });
        const config = deploy({
          id: 'c1',
          kind: 'config',
          config: { key: 'db.pool', description: 'bigger' },
          version: 'x',
        });
        await store.saveDeploy(flag);
        await store.saveDeploy(config);
        expect(await store.getDeploy('f1')).toEqual(flag);
        expect(await store.getDeploy('c1')).toEqual(config);
      });

      it('finds, query by query in order, the deploys in a window, the next one after it, and the last one before it when none is in it', async () => {
        await store.saveDeploy(deploy({ id: 'early', at: T0 - 90 * MIN, version: 'v0' }));
        await store.saveDeploy(deploy({ id: 'a', at: T0 + 1 * MIN }));
        await store.saveDeploy(deploy({ id: 'b', at: T0 + 5 * MIN, version: 'v3' }));
        await store.saveDeploy(deploy({ id: 'late', at: T0 + 30 * MIN, version: 'v4' }));
        await store.saveDeploy(deploy({ id: 'other', at: T0 + 5 * MIN, service: 'search' }));
        await store.saveDeploy(deploy({ id: 'staging', at: T0 + 5 * MIN, environment: 'staging' }));
        const q = { service: 'checkout', environment: 'production' };
        const [found, empty, search, again] = await store.findDeployCandidates([
          { ...q, from: T0, to: T0 + 10 * MIN },
          { ...q, from: T0 + 40 * MIN, to: T0 + 50 * MIN },
          { service: 'search', environment: 'production', from: T0, to: T0 + 10 * MIN },
          { ...q, from: T0, to: T0 + 10 * MIN },
        ]);
        expect(found?.inWindow.map((d) => d.id)).toEqual(['b', 'a']);
        expect(found?.nextAfter?.id).toBe('late');
        expect(found?.lastBefore).toBeUndefined();
        expect(empty?.inWindow).toEqual([]);
        expect(empty?.lastBefore?.id).toBe('late');
        expect(search?.inWindow.map((d) => d.id)).toEqual(['other']);
        expect(search?.nextAfter).toBeUndefined();
        expect(again).toEqual(found);
        expect(await store.findDeployCandidates([])).toEqual([]);
      });

      it('lists deploys newest first, filtered, a page at a time', async () => {
        for (let i = 0; i < 5; i++) await store.saveDeploy(deploy({ id: `d${i}`, at: T0 + i * MIN }));
        await store.saveDeploy(deploy({ id: 'x', at: T0, service: 'search' }));
        const first = await store.listDeploys({ service: 'checkout', limit: 2 });
        expect(first.map((d) => d.id)).toEqual(['d4', 'd3']);
        const last = first.at(-1) as Deploy;
        const next = await store.listDeploys({
          service: 'checkout',
          limit: 10,
          before: { at: last.at, receivedAt: last.receivedAt, id: last.id },
        });
        expect(next.map((d) => d.id)).toEqual(['d2', 'd1', 'd0']);
        expect((await store.listDeploys({ since: T0 + 3 * MIN, limit: 10 })).map((d) => d.id)).toEqual(['d4', 'd3']);
      });

      it('walks a rollout: the stage events of one version, and the event that superseded it', async () => {
        await store.saveDeploy(deploy({ id: 'v1', version: 'v1', at: T0 - 60 * MIN }));
        await store.saveDeploy(deploy({ id: 'can', stage: 'canary', at: T0 }));
        await store.saveDeploy(deploy({ id: 'half', stage: 'partial', percent: 50, at: T0 + MIN }));
        await store.saveDeploy(deploy({ id: 'v3', version: 'v3', at: T0 + 9 * MIN }));
        await store.saveDeploy(
          deploy({ id: 'flag', kind: 'flag', flag: { key: 'k', to: true }, version: 'f', at: T0 + 2 * MIN }),
        );
        const rollout = await store.rolloutOf('half');
        expect(rollout?.events.map((d) => d.id)).toEqual(['can', 'half']);
        expect(rollout?.supersededBy?.id).toBe('v3');
        expect(await store.rolloutOf('unknown')).toBeUndefined();
      });

      it('lists deploys for a view with their changes cut to a number, and says how many there are', async () => {
        const changes = Array.from({ length: 30 }, (_, i) => ({ author: { email: `dev${i}@example.com` } }));
        await store.saveDeploy(deploy({ id: 'big', changes, hosts: ['h1', 'h2', 'h3'] }));
        const [summary] = await store.deploysBetween({ from: T0, to: T0 + 60 * MIN, limit: 10, listLimit: 2 });
        expect(summary?.changeCount).toBe(30);
        expect(summary?.hostCount).toBe(3);
        expect(summary?.deploy.changes).toEqual(changes.slice(0, 2));
        expect(summary?.deploy.hosts).toEqual(['h1', 'h2']);
        expect((await store.deploySummaries(['big', 'nope'], 1)).map((s) => s.deploy.changes.length)).toEqual([1]);
      });
    });

    describe('rollbacks', () => {
      const rollback = (of: string[], overrides: Partial<Deploy> = {}) =>
        deploy({
          id: 'rb',
          version: 'v1',
          previousVersion: 'v2',
          changes: [],
          at: T0 + 13 * MIN,
          receivedAt: T0 + 13 * MIN,
          rollback: { of, explicit: true },
          ...overrides,
        });

      it('lists the code deploys of a service before a time, latest first, for recognising a rollback', async () => {
        await store.saveDeploy(deploy({ id: 'v1', version: 'v1', at: T0 }));
        await store.saveDeploy(deploy({ id: 'd1', at: T0 + 2 * MIN }));
        await store.saveDeploy(deploy({ id: 'flag', kind: 'flag', flag: { key: 'x', to: true }, at: T0 + 3 * MIN }));
        await store.saveDeploy(deploy({ id: 'search', service: 'search', at: T0 + 3 * MIN }));
        await store.saveDeploy(deploy({ id: 'later', version: 'v3', at: T0 + 30 * MIN }));
        const q = { service: 'checkout', environment: 'production', at: T0 + 13 * MIN, limit: 10 };
        expect((await store.deploysBefore(q)).map((d) => d.id)).toEqual(['d1', 'v1']);
        expect((await store.deploysBefore({ ...q, limit: 1 })).map((d) => d.id)).toEqual(['d1']);
      });

      it('stores what a rollback undid, finds it from the deploy undone, and names it on pages and DMs', async () => {
        await store.saveDeploy(deploy());
        await store.recordAlerts(GROUP, [fire('f1', T0 + 5 * MIN)], T0 + 6 * MIN);
        await deliverAll(T0 + 6 * MIN);
        expect(await store.saveDeploy(rollback(['d1']))).toMatchObject({ created: true });
        expect((await store.getDeploy('rb'))?.rollback).toEqual({ of: ['d1'], explicit: true });
        const rolledBack = { deployId: 'd1', rollbackId: 'rb', at: T0 + 13 * MIN, version: 'v1' };
        expect(await store.rollbacksOf(['d1', 'other'])).toEqual([rolledBack]);
        expect(await store.rollbacksOf([])).toEqual([]);

        // The open page and the firing alert's DM are queued again, so that they learn of it.
        const queued = await claim(T0 + 14 * MIN);
        expect(queued.map((i) => i.kind).sort()).toEqual(['dm', 'page']);
        const page = await store.pageWithMembers(Number(queued.find((i) => i.kind === 'page')?.ref));
        expect(page?.rolledBack).toEqual([rolledBack]);
        const dm = await store.dmWithContext(Number(queued.find((i) => i.kind === 'dm')?.ref), 0);
        expect(dm?.rolledBack).toEqual(rolledBack);
      });

      it('queues nothing for resolved alerts, and a repeated rollback changes nothing', async () => {
        await store.saveDeploy(deploy());
        await store.recordAlerts(GROUP, [fire('f1', T0 + 5 * MIN)], T0 + 6 * MIN);
        await store.recordAlerts(GROUP, [{ alert: alert('f1', T0 + 5 * MIN, 'resolved', T0 + 8 * MIN) }], T0 + 8 * MIN);
        await deliverAll(T0 + 9 * MIN);
        await store.saveDeploy(rollback(['d1']));
        expect(await claim(T0 + 14 * MIN)).toEqual([]);
        expect(await store.saveDeploy(rollback(['d1'], { at: T0 + 20 * MIN }))).toMatchObject({ created: false });
        expect((await store.rollbacksOf(['d1']))[0]?.at).toBe(T0 + 13 * MIN);
      });
    });

    describe('ingest', () => {
      it('stores a new firing alert with its decision, opens its page with the first dedup key, and queues page and DM', async () => {
        const counts = await store.recordAlerts(GROUP, [fire('f1')], T0 + 10 * MIN);
        expect(counts).toEqual({ newEpisodes: 1, resolved: 0, repeats: 0, pagesTouched: 1, queued: ['dm', 'page'] });
        const [history] = await store.alertHistory('f1');
        expect(history?.episode).toMatchObject({
          fingerprint: 'f1',
          startsAt: alert('f1', T0 + 9 * MIN).startsAt,
          status: 'firing',
          groupKey: GROUP.groupKey,
          firstSeenAt: T0 + 10 * MIN,
          decision: { ...decision(), decidedAt: T0 + 10 * MIN },
        });
        expect(history?.pages).toEqual([
          expect.objectContaining({
            target: ALICE,
            seq: 1,
            status: 'open',
            dedupKey: pageDedupKey({
              groupKey: GROUP.groupKey,
              service: 'checkout',
              target: 'person:alice@example.com',
              seq: 1,
            }),
            delivered: {},
          }),
        ]);
        const due = await claim(T0 + 10 * MIN);
        expect(due.map((i) => i.kind).sort()).toEqual(['dm', 'page']);
        expect(await store.knownEpisodes([alert('f1', T0 + 9 * MIN), alert('f2', T0)])).toEqual(
          new Map([[`f1|${alert('f1', T0 + 9 * MIN).startsAt}`, { lastSeenAt: T0 + 10 * MIN }]]),
        );
      });

      it('changes nothing for a repeat but lastSeenAt, and that only once a minute', async () => {
        await store.recordAlerts(GROUP, [fire('f1')], T0 + 10 * MIN);
        await deliverAll(T0 + 10 * MIN);
        const repeat = { alert: alert('f1', T0 + 9 * MIN) };
        expect(await store.recordAlerts(GROUP, [repeat], T0 + 10 * MIN + 30_000)).toEqual({
          newEpisodes: 0,
          resolved: 0,
          repeats: 1,
          pagesTouched: 0,
          queued: [],
        });
        expect((await store.alertHistory('f1'))[0]?.episode.lastSeenAt).toBe(T0 + 10 * MIN);
        await store.recordAlerts(GROUP, [repeat], T0 + 12 * MIN);
        expect((await store.alertHistory('f1'))[0]?.episode.lastSeenAt).toBe(T0 + 12 * MIN);
        expect((await store.knownEpisodes([repeat.alert])).get(episodeKey(repeat.alert))).toEqual({
          lastSeenAt: T0 + 12 * MIN,
        });
        expect(await claim(T0 + 12 * MIN)).toEqual([]);
      });

      it('puts the alerts of one group and target on one page, and opens the next page after it resolved', async () => {
        await store.recordAlerts(GROUP, [fire('f1'), fire('f2', T0 + 9 * MIN + 1)], T0 + 10 * MIN);
        const [first] = await store.alertHistory('f1');
        const pageId = first?.pages[0]?.id as number;
        expect((await store.pageWithMembers(pageId))?.members.map((m) => m.fingerprint)).toEqual(['f1', 'f2']);
        const resolve = (fp: string, start: number) => ({ alert: alert(fp, start, 'resolved', T0 + 20 * MIN) });
        await store.recordAlerts(GROUP, [resolve('f1', T0 + 9 * MIN)], T0 + 20 * MIN);
        expect((await store.pageWithMembers(pageId))?.page.status).toBe('open');
        const counts = await store.recordAlerts(GROUP, [resolve('f2', T0 + 9 * MIN + 1)], T0 + 21 * MIN);
        expect(counts).toMatchObject({ resolved: 1, pagesTouched: 1 });
        expect((await store.pageWithMembers(pageId))?.page).toMatchObject({
          status: 'resolved',
          resolvedAt: T0 + 21 * MIN,
        });
        await store.recordAlerts(GROUP, [fire('f1', T0 + 30 * MIN)], T0 + 31 * MIN);
        const [latest] = await store.alertHistory('f1');
        expect(latest?.pages[0]).toMatchObject({ seq: 2, status: 'open' });
        expect(latest?.pages[0]?.dedupKey).not.toBe(first?.pages[0]?.dedupKey);
      });

      it('resolves the episode, its page and its DMs, and a resolve under another startsAt closes the earlier firing', async () => {
        await store.recordAlerts(GROUP, [fire('f1')], T0 + 10 * MIN);
        await deliverAll(T0 + 10 * MIN);
        const late = alert('f1', T0 + 9 * MIN + 1000, 'resolved', T0 + 15 * MIN);
        const counts = await store.recordAlerts(
          GROUP,
          [{ alert: late, decision: { ...decision([], []), reason: 'resolved_before_seen' } }],
          T0 + 16 * MIN,
        );
        expect(counts).toEqual({ newEpisodes: 1, resolved: 1, repeats: 0, pagesTouched: 1, queued: ['dm', 'page'] });
        const history = await store.alertHistory('f1');
        expect(history.map((h) => [h.episode.status, h.episode.endsAtMs])).toEqual([
          ['resolved', T0 + 15 * MIN],
          ['resolved', T0 + 15 * MIN],
        ]);
        expect(history[1]?.pages[0]?.status).toBe('resolved');
        expect((await claim(T0 + 16 * MIN)).map((i) => i.kind).sort()).toEqual(['dm', 'page']);
      });

      it('records "not my change" once, and puts a firing episode on its group’s on-call page', async () => {
        await store.recordAlerts(GROUP, [fire('f1')], T0 + 10 * MIN);
        await deliverAll(T0 + 10 * MIN);
        const id = (await store.alertHistory('f1'))[0]?.episode.id as number;
        expect(await store.recordNotMine(id, 'alice@example.com', T0 + 11 * MIN)).toEqual({ recorded: true });
        expect(await store.recordNotMine(id, 'alice@example.com', T0 + 12 * MIN)).toEqual({ recorded: false });
        const [history] = await store.alertHistory('f1');
        expect(history?.episode.decision.feedback).toEqual({
          kind: 'not_my_change',
          by: 'alice@example.com',
          at: T0 + 11 * MIN,
        });
        expect(history?.pages.map((p) => p.target)).toEqual([ALICE, ONCALL]);
        expect((await claim(T0 + 11 * MIN)).map((i) => i.kind)).toEqual(['page']);
      });

      it('holds a person’s page and DM for the evidence, and releases them when it is judged', async () => {
        await store.saveDeploy(deploy());
        const at = T0 + 10 * MIN;
        await store.recordAlerts(GROUP, [{ ...fire('f1'), evidenceBudgetMs: 3_000 }], at);
        expect((await claim(at)).map((i) => i.kind)).toEqual(['evidence']);
        expect(await store.nextDueAt(['page', 'dm'])).toBe(at + 3_000);
        const id = (await store.alertHistory('f1'))[0]?.episode.id as number;
        const subject = await store.evidenceSubject(id);
        expect(subject?.deploy?.id).toBe('d1');
        expect(subject?.episode.decision.evidence).toBeUndefined();

        const judged = {
          verdict: 'worse' as const,
          sentence: 'error ratio 8.1 % vs 0.3 %',
          metrics: [],
          from: 1,
          to: 2,
        };
        expect(await store.recordEvidence(id, judged, 'required', at + 1_000)).toEqual({
          effect: 'convicted',
          late: false,
        });
        expect((await claim(at + 1_000)).map((i) => i.kind).sort()).toEqual(['dm', 'page']);
        const [history] = await store.alertHistory('f1');
        expect(history?.episode.decision).toMatchObject({
          reason: 'author_paged',
          targets: [ALICE],
          evidence: { verdict: 'worse', effect: 'convicted', late: false, at: at + 1_000 },
        });
        expect(history?.episode.decision.sentence).toContain('error ratio 8.1 % vs 0.3 %');
        // Judged again (a claim that ran out mid-gather): nothing changes, whatever the second verdict.
        const again = { ...judged, verdict: 'same' as const };
        expect(await store.recordEvidence(id, again, 'required', at + 2_000)).toEqual({
          effect: 'convicted',
          late: false,
        });
        expect((await store.alertHistory('f1'))[0]?.episode.decision.reason).toBe('author_paged');
        expect(await store.recordEvidence(999_999, judged, 'required', at)).toBeUndefined();
      });

      it('keeps a page held for its evidence held when the deploy is rolled back meanwhile', async () => {
        await store.saveDeploy(deploy());
        const at = T0 + 10 * MIN;
        await store.recordAlerts(GROUP, [{ ...fire('f1'), evidenceBudgetMs: 3_000 }], at);
        const back = at + 500;
        await store.saveDeploy(
          deploy({
            id: 'rb',
            version: 'v1',
            previousVersion: 'v2',
            changes: [],
            at: back,
            receivedAt: back,
            rollback: { of: ['d1'], explicit: true },
          }),
        );
        expect(await store.nextDueAt(['page', 'dm'])).toBe(at + 3_000);
        const id = (await store.alertHistory('f1'))[0]?.episode.id as number;
        const cleared = {
          verdict: 'same' as const,
          sentence: 'error ratio 0.3 % vs 0.3 %',
          metrics: [],
          from: 1,
          to: 2,
        };
        expect(await store.recordEvidence(id, cleared, 'required', at + 1_000)).toEqual({
          effect: 'exonerated',
          late: false,
        });
      });

      it('moves an episode the evidence clears from the person’s unsent page to the on-call page', async () => {
        await store.saveDeploy(deploy());
        const at = T0 + 10 * MIN;
        await store.recordAlerts(GROUP, [{ ...fire('f1'), evidenceBudgetMs: 3_000 }], at);
        const id = (await store.alertHistory('f1'))[0]?.episode.id as number;
        const judged = {
          verdict: 'same' as const,
          sentence: 'error ratio 0.3 % vs 0.3 %',
          metrics: [],
          from: 1,
          to: 2,
        };
        expect(await store.recordEvidence(id, judged, 'required', at + 1_000)).toEqual({
          effect: 'exonerated',
          late: false,
        });
        const [history] = await store.alertHistory('f1');
        expect(history?.episode.decision).toMatchObject({ reason: 'deploy_exonerated', targets: [ONCALL] });
        // The episode left the person's page, which resolved without ever going out, and joined on-call's.
        expect(history?.pages.map((p) => [p.target, p.status])).toEqual([[ONCALL, 'open']]);
        const due = await claim(at + 1_000);
        expect(due.map((i) => i.kind).sort()).toEqual(['dm', 'evidence', 'page', 'page']);
        const pages = await Promise.all(
          due.filter((i) => i.kind === 'page').map((i) => store.pageWithMembers(Number(i.ref))),
        );
        expect(pages.map((p) => [p?.page.target.kind, p?.page.status, p?.members.length]).sort()).toEqual([
          ['oncall', 'open', 1],
          ['person', 'resolved', 0],
        ]);
        // The precision numbers read what the evidence did, and whom the decision pages now.
        const facts = await store.hygieneFacts({ since: T0, until: T0 + 60 * MIN }, { phase: 'episodes' });
        expect(facts.facts.episodes).toEqual([
          expect.objectContaining({ pagedPerson: false, evidence: { verdict: 'same', effect: 'exonerated' } }),
        ]);
      });

      it('re-routes nobody once the person’s page went out: the evidence is late, the page and DM are updated', async () => {
        await store.saveDeploy(deploy());
        const at = T0 + 10 * MIN;
        await store.recordAlerts(GROUP, [{ ...fire('f1'), evidenceBudgetMs: 3_000 }], at);
        await deliverAll(at + 3_000);
        const id = (await store.alertHistory('f1'))[0]?.episode.id as number;
        const judged = {
          verdict: 'same' as const,
          sentence: 'error ratio 0.3 % vs 0.3 %',
          metrics: [],
          from: 1,
          to: 2,
        };
        expect(await store.recordEvidence(id, judged, 'required', at + 5_000)).toEqual({
          effect: 'stands',
          late: true,
        });
        const [history] = await store.alertHistory('f1');
        expect(history?.episode.decision).toMatchObject({ reason: 'author_paged', targets: [ALICE] });
        expect(history?.pages.map((p) => p.target)).toEqual([ALICE]);
        expect((await claim(at + 5_000)).map((i) => i.kind).sort()).toEqual(['dm', 'page']);
      });

      it('keeps the code host that comments on a page, and queues its comment with the page, on a resolve and on "not my change"', async () => {
        await store.recordAlerts(
          GROUP,
          [fire('f1', T0 + 9 * MIN, { ...decision(), comment: 'github' })],
          T0 + 10 * MIN,
        );
        expect((await claim(T0 + 10 * MIN)).map((i) => [i.kind, i.ref])).toEqual([
          ['page', '1'],
          ['dm', '1'],
          ['github_comment', '1'],
        ]);
        await deliverAll(T0 + 10 * MIN);
        const id = (await store.alertHistory('f1'))[0]?.episode.id as number;
        await store.recordNotMine(id, 'alice@example.com', T0 + 11 * MIN);
        expect((await claim(T0 + 11 * MIN, { kinds: ['github_comment'] })).map((i) => i.ref)).toEqual(['1']);
      });

      it('counts an unreachable person, and lists the most frequent first, a page at a time', async () => {
        await store.recordUnmapped('bob', 'no_email', T0);
        await store.recordUnmapped('carol@example.com', 'no_pagerduty_user', T0 + 1);
        await store.recordUnmapped('carol@example.com', 'no_pagerduty_user', T0 + 2);
        const all = await store.listUnmapped();
        expect(all).toEqual([
          { who: 'carol@example.com', reason: 'no_pagerduty_user', count: 2, firstSeenAt: T0 + 1, lastSeenAt: T0 + 2 },
          { who: 'bob', reason: 'no_email', count: 1, firstSeenAt: T0, lastSeenAt: T0 },
        ]);
        const first = all[0] as (typeof all)[number];
        expect(await store.listUnmapped({ limit: 5, after: first })).toEqual([all[1]]);
      });
    });

    describe('outbox', () => {
      it('claims each due row once until its claim ends, pages first', async () => {
        await store.saveDeploy(deploy(), { sendChangeEvent: true });
        await store.recordAlerts(GROUP, [fire('f1', T0 + 9 * MIN, decision([ALICE], []))], T0 + 10 * MIN);
        const mine = await claim(T0 + 10 * MIN);
        expect(mine.map((i) => i.kind)).toEqual(['page', 'change']);
        expect(mine.every((i) => i.owner === 'w1' && i.leaseUntil === T0 + 10 * MIN + 30_000)).toBe(true);
        expect(await claim(T0 + 10 * MIN, { owner: 'w2' })).toEqual([]);
        expect((await claim(T0 + 10 * MIN + 30_000, { owner: 'w2' })).map((i) => i.kind)).toEqual(['page', 'change']);
      });

      it('takes due rows of the kinds asked for only, and says when the next one falls due', async () => {
        await store.saveDeploy(deploy(), { sendChangeEvent: true });
        expect(await claim(T0 + 2 * MIN, { kinds: ['dm'] })).toEqual([]);
        expect(await store.nextDueAt(['change'])).toBe(T0 + 2 * MIN);
        expect(await store.nextDueAt(['dm'])).toBeUndefined();
      });

      it('lets DMs take turns by episode, so one alert’s many DMs do not hold up another’s', async () => {
        const many = Array.from({ length: 5 }, (_, i) => `dev${i}@example.com`);
        await store.recordAlerts(GROUP, [fire('f1', T0 + 9 * MIN, decision([ONCALL], many))], T0 + 10 * MIN);
        await store.recordAlerts(
          GROUP,
          [fire('f2', T0 + 9 * MIN, decision([ONCALL], ['carol@example.com']))],
          T0 + 10 * MIN + 1,
        );
        const dms = await claim(T0 + 11 * MIN, { kinds: ['dm'], limit: 2 });
        const contexts = await Promise.all(dms.map((d) => store.dmWithContext(Number(d.ref), 0)));
        expect(contexts.map((c) => c?.dm.email)).toEqual(['dev0@example.com', 'carol@example.com']);
      });

      it('lets pages take turns by service, so a storm of pages in one service does not hold up another’s', async () => {
        const search = { ...decision([ONCALL], []), service: 'search' };
        for (let i = 0; i < 5; i++) {
          const group = { ...GROUP, groupKey: `{}:{alertname="Storm${i}"}` };
          await store.recordAlerts(group, [fire(`s${i}`, T0 + 9 * MIN, search)], T0 + 10 * MIN + i);
        }
        await store.recordAlerts(GROUP, [fire('c1', T0 + 9 * MIN, decision([ONCALL], []))], T0 + 10 * MIN + 9);
        const pages = await claim(T0 + 11 * MIN, { kinds: ['page'], limit: 2 });
        const contexts = await Promise.all(pages.map((p) => store.pageWithMembers(Number(p.ref))));
        expect(contexts.map((c) => [c?.page.service, c?.members[0]?.fingerprint])).toEqual([
          ['search', 's0'],
          ['checkout', 'c1'],
        ]);
        // Then the rest of the storm, oldest first.
        const rest = await claim(T0 + 11 * MIN, { kinds: ['page'], limit: 10 });
        expect(rest).toHaveLength(4);
      });

      it('retires a delivered row, reschedules a failed one, and merges what the delivery reported', async () => {
        await store.recordAlerts(GROUP, [fire('f1', T0 + 9 * MIN, decision([ALICE], []))], T0 + 10 * MIN);
        const [page] = await claim(T0 + 10 * MIN);
        const item = page as ClaimedItem;
        const r1 = await store.recordAttempt(item, attempt(T0 + 10 * MIN, 'retry'), {
          retryAt: T0 + 12 * MIN,
          delivered: { attempted: 'true' },
        });
        expect(r1).toEqual({ recorded: true });
        expect(await claim(T0 + 11 * MIN)).toEqual([]);
        const [again] = await claim(T0 + 12 * MIN);
        expect(again?.attempts).toBe(1);
        await store.recordAttempt(again as ClaimedItem, attempt(T0 + 12 * MIN), { delivered: { incident: 'P1' } });
        const [history] = await store.alertHistory('f1');
        expect(history?.pages[0]?.delivered).toEqual({ attempted: 'true', incident: 'P1' });
        expect(history?.deliveries.map((d) => [d.attempt, d.outcome])).toEqual([
          [1, 'retry'],
          [2, 'delivered'],
        ]);
        expect(await claim(T0 + 60 * MIN)).toEqual([]);
        expect(await store.outboxStats(T0 + 60 * MIN)).toEqual({ depth: 0, oldestUndeliveredAgeMs: 0 });
      });

      it('keeps a row due when its subject changed during the delivery, so the change goes out too', async () => {
        await store.recordAlerts(GROUP, [fire('f1', T0 + 9 * MIN, decision([ONCALL], []))], T0 + 10 * MIN);
        const [item] = await claim(T0 + 10 * MIN);
        await store.recordAlerts(GROUP, [fire('f2', T0 + 9 * MIN, decision([ONCALL], []))], T0 + 10 * MIN + 5);
        await store.recordAttempt(item as ClaimedItem, attempt(T0 + 10 * MIN + 10), {});
        const [next] = await claim(T0 + 10 * MIN + 20);
        expect(next?.ref).toBe(item?.ref);
      });

      it('does not let a lost claim overwrite what the row’s next holder did', async () => {
        await store.recordAlerts(GROUP, [fire('f1', T0 + 9 * MIN, decision([ONCALL], []))], T0 + 10 * MIN);
        const [stale] = await claim(T0 + 10 * MIN, { leaseMs: 1000 });
        const [fresh] = await claim(T0 + 10 * MIN + 1000, { owner: 'w2' });
        expect(fresh?.id).toBe(stale?.id);
        expect(
          await store.recordAttempt(fresh as ClaimedItem, attempt(T0 + 11 * MIN), { delivered: { by: 'w2' } }),
        ).toEqual({
          recorded: true,
        });
        expect(
          await store.recordAttempt(stale as ClaimedItem, attempt(T0 + 11 * MIN, 'retry'), {
            retryAt: T0 + 99 * MIN,
            delivered: { by: 'w1' },
          }),
        ).toEqual({ recorded: false });
        const [history] = await store.alertHistory('f1');
        expect(history?.pages[0]?.delivered).toEqual({ by: 'w2' });
        expect(await store.outboxStats(T0 + 12 * MIN)).toEqual({ depth: 0, oldestUndeliveredAgeMs: 0 });
      });

      it('measures the oldest undelivered row from when it was queued, not from its last retry', async () => {
        await store.recordAlerts(GROUP, [fire('f1', T0 + 9 * MIN, decision([ONCALL], []))], T0 + 10 * MIN);
        const [item] = await claim(T0 + 10 * MIN);
        await store.recordAttempt(item as ClaimedItem, attempt(T0 + 10 * MIN, 'retry'), { retryAt: T0 + 11 * MIN });
        expect(await store.outboxStats(T0 + 11 * MIN)).toEqual({ depth: 1, oldestUndeliveredAgeMs: MIN });
      });

      it('threads a DM under the first DM to the same person about the same deploy, and merges updates', async () => {
        await store.recordAlerts(GROUP, [fire('f1')], T0 + 10 * MIN);
        await store.recordAlerts(GROUP, [fire('f2', T0 + 9 * MIN + 1)], T0 + 11 * MIN);
        const dms = await claim(T0 + 12 * MIN, { kinds: ['dm'] });
        const [first, second] = await Promise.all(dms.map((d) => store.dmWithContext(Number(d.ref), 10 * MIN)));
        expect(first?.threadRoot).toBeUndefined();
        expect(second?.threadRoot?.id).toBe(first?.dm.id);
        expect(second?.pages.map((p) => p.target)).toEqual([ALICE]);
        await store.updateDm(first?.dm.id as number, { ts: '1.2', channel: 'D1' });
        await store.updateDm(first?.dm.id as number, { acked_by: 'U1' });
        expect((await store.dmWithContext(first?.dm.id as number, 0))?.dm.delivered).toEqual({
          ts: '1.2',
          channel: 'D1',
          acked_by: 'U1',
        });
      });
    });

    describe('reads for the API and the timeline', () => {
      it('finds the episodes attributed to a deploy, and those firing in a range, with their deliveries', async () => {
        await store.recordAlerts(GROUP, [fire('f1')], T0 + 10 * MIN);
        await store.recordAlerts(GROUP, [fire('f2', T0 + 9 * MIN, decision([ONCALL], [], 'd2'))], T0 + 10 * MIN);
        expect((await store.episodesAttributedTo(['d1'])).map((e) => e.fingerprint)).toEqual(['f1']);
        const range = { from: T0, to: T0 + 60 * MIN, limit: 10, listLimit: 5 };
        const shown = await store.episodesBetween(range);
        expect(shown.map((e) => e.fingerprint).sort()).toEqual(['f1', 'f2']);
        expect(await store.episodesBetween({ ...range, from: T0 - 60 * MIN, to: T0 })).toEqual([]);
        const [item] = await claim(T0 + 10 * MIN, { kinds: ['page'], limit: 1 });
        await store.recordAttempt(item as ClaimedItem, attempt(T0 + 10 * MIN, 'retry'), { retryAt: T0 + 11 * MIN });
        const deliveries = await store.pageDeliveries(shown.map((e) => e.id));
        expect(deliveries).toHaveLength(2);
        const retried = deliveries.find((d) => d.latest !== undefined);
        expect(retried).toMatchObject({ latest: { outcome: 'retry', attempt: 1 }, waiting: { dueAt: T0 + 11 * MIN } });
      });

      it('lists every service with a deploy or a decision', async () => {
        await store.saveDeploy(deploy({ service: 'search' }));
        await store.recordAlerts(GROUP, [fire('f1')], T0 + 10 * MIN);
        expect(await store.serviceNames()).toEqual(['checkout', 'search']);
      });

      it('hands over the facts of a period a page at a time: change events first, then episodes', async () => {
        for (let i = 0; i < 3; i++) await store.saveDeploy(deploy({ id: `d${i}`, at: T0 + i * MIN, version: `v${i}` }));
        await store.recordAlerts(GROUP, [fire('f1'), fire('f2', T0 + 9 * MIN + 1)], T0 + 10 * MIN);
        const q = { since: T0, until: T0 + 60 * MIN, pageRows: 2 };
        const ids: string[] = [];
        let episodes = 0;
        let page = await store.hygieneFacts(q);
        for (let guard = 0; guard < 10; guard++) {
          ids.push(...page.facts.events.map((e) => e.id));
          episodes += page.facts.episodes.length;
          if (!page.next) break;
          page = await store.hygieneFacts(q, page.next);
        }
        expect(ids).toEqual(['d0', 'd1', 'd2']);
        expect(episodes).toBe(2);
      });
    });

    describe('sessions', () => {
      it('finds a session until it expires or is deleted, and deletes expired ones as new ones arrive', async () => {
        const s = { idHash: 'a'.repeat(64), tokenName: 'ops', createdAt: T0, expiresAt: T0 + 60 * MIN };
        await store.createSession(s, T0);
        expect(await store.getSession(s.idHash, T0 + MIN)).toEqual(s);
        expect(await store.getSession(s.idHash, T0 + 60 * MIN)).toBeUndefined();
        await store.createSession({ ...s, idHash: 'b'.repeat(64), expiresAt: T0 + 120 * MIN }, T0 + 61 * MIN);
        expect(await store.getSession(s.idHash, T0)).toBeUndefined();
        await store.deleteSession('b'.repeat(64));
        expect(await store.getSession('b'.repeat(64), T0 + 62 * MIN)).toBeUndefined();
      });
    });

    describe('lifecycle', () => {
      it('answers a ping while open, and a storage error after close', async () => {
        await store.ping();
        await store.close();
        await expect(store.getDeploy('d1')).rejects.toBeInstanceOf(StorageError);
        store = await factory.open();
      });
    });

    describe('concurrency', () => {
      it('stores one episode and one page when the same notification is recorded twice at once', async () => {
        const other = factory.openAnother ? await factory.openAnother() : store;
        try {
          const writes = [fire('f1'), fire('f2', T0 + 9 * MIN + 1)];
          const results = await Promise.all([
            store.recordAlerts(GROUP, writes, T0 + 10 * MIN),
            other.recordAlerts(GROUP, writes, T0 + 10 * MIN),
          ]);
          expect(results.map((r) => r.newEpisodes).sort()).toEqual([0, 2]);
          const history = await store.alertHistory('f1');
          expect(history).toHaveLength(1);
          expect(history[0]?.pages).toHaveLength(1);
          const pageId = history[0]?.pages[0]?.id as number;
          expect((await store.pageWithMembers(pageId))?.members).toHaveLength(2);
        } finally {
          if (other !== store) await other.close();
        }
      });

      it('resolves a page when its last two firing members resolve through two callers at the same moment', async () => {
        const other = factory.openAnother ? await factory.openAnother() : store;
        try {
          for (let i = 0; i < 5; i++) {
            const group = { ...GROUP, groupKey: `race-${i}` };
            const pair = [
              fire(`r${i}a`, T0 + 9 * MIN, decision([ONCALL], [])),
              fire(`r${i}b`, T0 + 9 * MIN, decision([ONCALL], [])),
            ];
            await store.recordAlerts(group, pair, T0 + 10 * MIN);
            const resolve = (w: AlertWrite) => [
              { alert: { ...w.alert, status: 'resolved' as const, endsAtMs: T0 + 20 * MIN } },
            ];
            await Promise.all([
              store.recordAlerts(group, resolve(pair[0] as AlertWrite), T0 + 20 * MIN),
              other.recordAlerts(group, resolve(pair[1] as AlertWrite), T0 + 20 * MIN),
            ]);
            const [history] = await store.alertHistory(`r${i}a`);
            expect(history?.pages.map((p) => p.status)).toEqual(['resolved']);
          }
        } finally {
          if (other !== store) await other.close();
        }
      });

      // Only an adapter that runs as several instances wakes the others; one instance wakes itself on commit.
      const openAnother = factory.openAnother;
      if (openAnother) {
        it('wakes another instance when work to deliver is committed', async () => {
          const other = await openAnother();
          try {
            const woken: (readonly string[])[] = [];
            other.onWork((kinds) => woken.push(kinds));
            // Subscribing connects, then looks once for work committed meanwhile: wait for that first call.
            await until(() => woken.length > 0);
            woken.length = 0;
            await store.recordAlerts(GROUP, [fire('f1')], T0 + 10 * MIN);
            await until(() => woken.length > 0);
            // Named by kind, so that only the lanes that take them wake.
            expect([...new Set(woken.flat())].sort()).toEqual(['dm', 'page']);
          } finally {
            await other.close();
          }
        });
      }

      it('gives each due row to one of two workers claiming at the same moment', async () => {
        const other = factory.openAnother ? await factory.openAnother() : store;
        try {
          const writes = Array.from({ length: 20 }, (_, i) => ({
            ...fire(`g${i}`, T0 + 9 * MIN, decision([ONCALL], [])),
          }));
          for (const [i, w] of writes.entries()) {
            await store.recordAlerts({ ...GROUP, groupKey: `group-${i}` }, [w], T0 + 10 * MIN);
          }
          const [a, b] = await Promise.all([
            claim(T0 + 10 * MIN, { owner: 'w1', limit: 15 }),
            other.claimDue({ owner: 'w2', now: T0 + 10 * MIN, limit: 15, leaseMs: 30_000 }),
          ]);
          const ids = [...a, ...b].map((i) => i.id);
          expect(ids).toHaveLength(20);
          expect(new Set(ids).size).toBe(20);
        } finally {
          if (other !== store) await other.close();
        }
      });
    });
  });
}
