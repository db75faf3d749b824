import { describe, expect, it } from 'vitest';
import { pageDedupKey } from '../../src/core/dedup-key.js';
import {
  type AlertWrite,
  type PageSlot,
  planAlertWrites,
  planJoinOncall,
  type StoredEpisode,
  type StoredPage,
  slotKey,
  type WriteOp,
  type WriteSnapshot,
  writeNeeds,
} from '../../src/core/plan.js';
import type { Alert, Decision, Target } from '../../src/core/types.js';

const GROUP = { groupKey: '{}:{alertname="HighErrorRate"}', receiver: 'changepager', externalURL: 'http://am:9093' };
const NOW = Date.parse('2026-11-26T11:20:00Z');
const ALICE: Target = { kind: 'person', email: 'alice@example.com' };
const ONCALL: Target = { kind: 'oncall' };

function alert(
  fingerprint: string,
  startsAt: string,
  status: 'firing' | 'resolved' = 'firing',
  endsAt?: string,
): Alert {
  const a: Alert = {
    fingerprint,
    startsAt: `${startsAt.slice(0, 19)}.000000000Z`,
    startsAtMs: Date.parse(startsAt),
    status,
    labels: { alertname: 'HighErrorRate', service: 'checkout' },
    annotations: {},
    generatorURL: '',
  };
  if (endsAt) a.endsAtMs = Date.parse(endsAt);
  return a;
}

function decision(targets: Target[], notify: string[] = [], deployId?: string): Decision {
  return {
    reason: targets.some((t) => t.kind === 'person') ? 'author_paged' : 'no_deploy_in_window',
    sentence: 'test',
    service: 'checkout',
    environment: 'production',
    policy: 'author',
    ...(deployId ? { deployId } : {}),
    suspects: [],
    targets,
    responders: [],
    notify,
    wouldPage: [],
  };
}

const slot = (target: Target): PageSlot => ({ groupKey: GROUP.groupKey, service: 'checkout', target });

function stored(id: number, fingerprint: string, startsAt: string, extra: Partial<StoredEpisode> = {}): StoredEpisode {
  const a = alert(fingerprint, startsAt);
  return {
    id,
    fingerprint,
    startsAt: a.startsAt,
    startsAtMs: a.startsAtMs,
    status: 'firing',
    lastSeenAt: NOW - 120_000,
    pageIds: [],
    dmIds: [],
    ...extra,
  };
}

const page = (id: number, target: Target, firing: number[], status: 'open' | 'resolved' = 'open'): StoredPage => ({
  id,
  slot: slot(target),
  status,
  firing,
});

const empty: WriteSnapshot = { episodes: [], pages: [], lastSeq: new Map() };

const opsOf = (writes: AlertWrite[], snapshot: WriteSnapshot = empty) => planAlertWrites(GROUP, writes, snapshot, NOW);

describe('planAlertWrites', () => {
  it('opens the first page of a slot for a new firing episode, with its dedup key, and DMs whom it names', () => {
    const { ops, counts } = opsOf([
      { alert: alert('f1', '2026-11-26T11:09:00Z'), decision: decision([ALICE], ['alice@example.com'], 'd1') },
    ]);
    const dedupKey = pageDedupKey({
      groupKey: GROUP.groupKey,
      service: 'checkout',
      target: 'person:alice@example.com',
      seq: 1,
    });
    expect(ops.map((o) => o.op)).toEqual([
      'insert_episode',
      'open_page',
      'add_member',
      'insert_dm',
      'enqueue',
      'enqueue',
    ]);
    expect(ops[1]).toEqual({ op: 'open_page', id: -2, slot: slot(ALICE), environment: 'production', seq: 1, dedupKey });
    expect(ops[3]).toEqual({ op: 'insert_dm', id: -3, episode: -1, email: 'alice@example.com', deployId: 'd1' });
    expect(ops.slice(4)).toEqual([
      { op: 'enqueue', kind: 'dm', id: -3 },
      { op: 'enqueue', kind: 'page', id: -2 },
    ]);
    expect(counts).toEqual({ newEpisodes: 1, resolved: 0, repeats: 0, pagesTouched: 1 });
  });

  it('keeps the code host of a commented decision on the page it opens, and queues the comment with the page', () => {
    const { ops } = opsOf([
      { alert: alert('f1', '2026-11-26T11:09:00Z'), decision: { ...decision([ALICE], [], 'd1'), comment: 'github' } },
    ]);
    expect(ops.find((o) => o.op === 'open_page')).toMatchObject({ commentHost: 'github' });
    expect(ops.filter((o) => o.op === 'enqueue')).toEqual([
      { op: 'enqueue', kind: 'page', id: -2 },
      { op: 'enqueue', kind: 'github_comment', id: -2 },
    ]);
  });

  it.each([
    { intent: 'author+oncall: only the person page gets the comment', targets: [ALICE, ONCALL], commented: [ALICE] },
    { intent: 'notify: the on-call page gets it, as nobody was paged by name', targets: [ONCALL], commented: [ONCALL] },
  ])('$intent', ({ targets, commented }) => {
    const { ops } = opsOf([
      { alert: alert('f1', '2026-11-26T11:09:00Z'), decision: { ...decision(targets, [], 'd1'), comment: 'github' } },
    ]);
    const opened = ops.flatMap((o) => (o.op === 'open_page' && o.commentHost ? [o.slot.target] : []));
    expect(opened).toEqual(commented);
    expect(ops.filter((o) => o.op === 'enqueue' && o.kind === 'github_comment')).toHaveLength(1);
  });

  it('queues the comment again when the page it is about resolves, and none for a page without one', () => {
    const commented = { ...page(7, ALICE, [3]), commentHost: 'gitlab' as const };
    const snapshot: WriteSnapshot = {
      episodes: [
        stored(3, 'f1', '2026-11-26T11:09:00Z', { pageIds: [7] }),
        stored(4, 'f2', '2026-11-26T11:09:00Z', { pageIds: [8] }),
      ],
      pages: [commented, page(8, ONCALL, [4])],
      lastSeq: new Map(),
    };
    const { ops } = opsOf(
      [
        { alert: alert('f1', '2026-11-26T11:09:00Z', 'resolved', '2026-11-26T11:15:00Z') },
        { alert: alert('f2', '2026-11-26T11:09:00Z', 'resolved', '2026-11-26T11:15:00Z') },
      ],
      snapshot,
    );
    expect(ops.filter((o) => o.op === 'enqueue')).toEqual([
      { op: 'enqueue', kind: 'page', id: 7 },
      { op: 'enqueue', kind: 'gitlab_comment', id: 7 },
      { op: 'enqueue', kind: 'page', id: 8 },
    ]);
  });

  it.each<{ intent: string; writes: AlertWrite[]; snapshot: WriteSnapshot; expected: WriteOp[] }>([
    {
      intent: 'a new firing episode joins the open page of its slot instead of opening another',
      writes: [{ alert: alert('f2', '2026-11-26T11:10:00Z'), decision: decision([ONCALL]) }],
      snapshot: { episodes: [], pages: [page(7, ONCALL, [3])], lastSeq: new Map([[slotKey(slot(ONCALL)), 1]]) },
      expected: [
        {
          op: 'insert_episode',
          id: -1,
          group: GROUP,
          alert: alert('f2', '2026-11-26T11:10:00Z'),
          decision: decision([ONCALL]),
        },
        { op: 'add_member', page: 7, episode: -1 },
        { op: 'enqueue', kind: 'page', id: 7 },
      ],
    },
    {
      intent: 'after the slot’s last page resolved, a new episode opens the next sequence number',
      writes: [{ alert: alert('f3', '2026-11-26T11:10:00Z'), decision: decision([ONCALL]) }],
      snapshot: { episodes: [], pages: [], lastSeq: new Map([[slotKey(slot(ONCALL)), 3]]) },
      expected: [
        {
          op: 'insert_episode',
          id: -1,
          group: GROUP,
          alert: alert('f3', '2026-11-26T11:10:00Z'),
          decision: decision([ONCALL]),
        },
        {
          op: 'open_page',
          id: -2,
          slot: slot(ONCALL),
          environment: 'production',
          seq: 4,
          dedupKey: pageDedupKey({ groupKey: GROUP.groupKey, service: 'checkout', target: 'oncall', seq: 4 }),
        },
        { op: 'add_member', page: -2, episode: -1 },
        { op: 'enqueue', kind: 'page', id: -2 },
      ],
    },
    {
      intent: 'a repeat seen less than a minute ago writes nothing',
      writes: [{ alert: alert('f4', '2026-11-26T11:09:00Z') }],
      snapshot: { ...empty, episodes: [stored(4, 'f4', '2026-11-26T11:09:00Z', { lastSeenAt: NOW - 30_000 })] },
      expected: [],
    },
    {
      intent: 'a repeat seen a minute ago or more refreshes lastSeenAt only',
      writes: [{ alert: alert('f4', '2026-11-26T11:09:00Z') }],
      snapshot: { ...empty, episodes: [stored(4, 'f4', '2026-11-26T11:09:00Z', { lastSeenAt: NOW - 60_000 })] },
      expected: [{ op: 'touch_episode', id: 4 }],
    },
    {
      intent: 'a known episode is never decided again: a racing duplicate’s decision is ignored',
      writes: [{ alert: alert('f4', '2026-11-26T11:09:00Z'), decision: decision([ALICE], ['alice@example.com']) }],
      snapshot: { ...empty, episodes: [stored(4, 'f4', '2026-11-26T11:09:00Z', { lastSeenAt: NOW })] },
      expected: [],
    },
    {
      intent: 'resolving the last firing member resolves the page, and updates the episode’s DMs',
      writes: [{ alert: alert('f5', '2026-11-26T11:09:00Z', 'resolved', '2026-11-26T11:18:00Z') }],
      snapshot: {
        episodes: [stored(5, 'f5', '2026-11-26T11:09:00Z', { pageIds: [8], dmIds: [21, 22] })],
        pages: [page(8, ALICE, [5])],
        lastSeq: new Map(),
      },
      expected: [
        { op: 'resolve_episode', id: 5, endsAtMs: Date.parse('2026-11-26T11:18:00Z') },
        { op: 'enqueue', kind: 'dm', id: 21 },
        { op: 'enqueue', kind: 'dm', id: 22 },
        { op: 'resolve_page', id: 8 },
        { op: 'enqueue', kind: 'page', id: 8 },
      ],
    },
    {
      intent: 'a page with another member still firing stays open and is not redelivered',
      writes: [{ alert: alert('f5', '2026-11-26T11:09:00Z', 'resolved', '2026-11-26T11:18:00Z') }],
      snapshot: {
        episodes: [stored(5, 'f5', '2026-11-26T11:09:00Z', { pageIds: [8] })],
        pages: [page(8, ONCALL, [5, 6])],
        lastSeq: new Map(),
      },
      expected: [{ op: 'resolve_episode', id: 5, endsAtMs: Date.parse('2026-11-26T11:18:00Z') }],
    },
    {
      intent: 'a resolve without endsAt ends the episode now',
      writes: [{ alert: alert('f5', '2026-11-26T11:09:00Z', 'resolved') }],
      snapshot: { ...empty, episodes: [stored(5, 'f5', '2026-11-26T11:09:00Z')] },
      expected: [{ op: 'resolve_episode', id: 5, endsAtMs: NOW }],
    },
    {
      intent: 'a stale "firing" after the episode resolved is a repeat: resolved is final',
      writes: [{ alert: alert('f6', '2026-11-26T11:09:00Z') }],
      snapshot: {
        ...empty,
        episodes: [stored(6, 'f6', '2026-11-26T11:09:00Z', { status: 'resolved', lastSeenAt: NOW })],
      },
      expected: [],
    },
  ])('$intent', ({ writes, snapshot, expected }) => {
    expect(opsOf(writes, snapshot).ops).toEqual(expected);
  });

  it('puts two new episodes of one slot on one new page', () => {
    const d = decision([ONCALL]);
    const { ops, counts } = opsOf([
      { alert: alert('a1', '2026-11-26T11:09:00Z'), decision: d },
      { alert: alert('a2', '2026-11-26T11:09:30Z'), decision: d },
    ]);
    expect(ops.filter((o) => o.op === 'open_page')).toHaveLength(1);
    expect(ops.filter((o) => o.op === 'add_member')).toEqual([
      { op: 'add_member', page: -2, episode: -1 },
      { op: 'add_member', page: -2, episode: -3 },
    ]);
    expect(counts).toMatchObject({ newEpisodes: 2, pagesTouched: 1 });
  });

  it('opens one page per target for author and on-call', () => {
    const { ops } = opsOf([{ alert: alert('b1', '2026-11-26T11:09:00Z'), decision: decision([ALICE, ONCALL]) }]);
    expect(ops.filter((o) => o.op === 'open_page').map((o) => (o.op === 'open_page' ? o.slot.target : null))).toEqual([
      ALICE,
      ONCALL,
    ]);
  });

  it('resolves every firing episode of the fingerprint that started before a resolve reported under another startsAt', () => {
    const resolvedLate = alert('f7', '2026-11-26T11:09:01Z', 'resolved', '2026-11-26T11:18:00Z');
    const { ops, counts } = opsOf([{ alert: resolvedLate, decision: decision([]) }], {
      episodes: [
        stored(70, 'f7', '2026-11-26T11:09:00Z', { pageIds: [9] }),
        stored(71, 'f7', '2026-11-26T11:19:00Z', { pageIds: [9] }),
      ],
      pages: [page(9, ALICE, [70, 71])],
      lastSeq: new Map(),
    });
    expect(ops).toEqual([
      { op: 'insert_episode', id: -1, group: GROUP, alert: resolvedLate, decision: decision([]) },
      { op: 'resolve_episode', id: 70, endsAtMs: Date.parse('2026-11-26T11:18:00Z') },
    ]);
    expect(counts).toEqual({ newEpisodes: 1, resolved: 1, repeats: 0, pagesTouched: 0 });
  });

  it('closes the page of the firing it ended once no member fires', () => {
    const resolvedLate = alert('f8', '2026-11-26T11:09:01Z', 'resolved', '2026-11-26T11:18:00Z');
    const { ops } = opsOf([{ alert: resolvedLate, decision: decision([]) }], {
      episodes: [stored(80, 'f8', '2026-11-26T11:09:00Z', { pageIds: [10] })],
      pages: [page(10, ALICE, [80])],
      lastSeq: new Map(),
    });
    expect(ops.map((o) => o.op)).toEqual(['insert_episode', 'resolve_episode', 'resolve_page', 'enqueue']);
  });

  it('refuses a new episode without a decision: the caller decides what is new', () => {
    expect(() => opsOf([{ alert: alert('f9', '2026-11-26T11:09:00Z') }])).toThrow(/no decision for new episode f9/);
  });
});

describe('writeNeeds', () => {
  it('names every episode key, the fingerprints reported resolved, and the slots of new firing decisions', () => {
    const needs = writeNeeds(GROUP.groupKey, [
      { alert: alert('n1', '2026-11-26T11:09:00Z'), decision: decision([ALICE, ONCALL]) },
      { alert: alert('n2', '2026-11-26T11:09:00Z', 'resolved'), decision: decision([ONCALL]) },
      { alert: alert('n3', '2026-11-26T11:09:00Z') },
    ]);
    expect(needs.episodeKeys.map((k) => k.fingerprint)).toEqual(['n1', 'n2', 'n3']);
    expect(needs.firingOf).toEqual(['n2']);
    expect(needs.slots).toEqual([slot(ALICE), slot(ONCALL)]);
  });
});

describe('planJoinOncall', () => {
  const firing = {
    id: 5,
    status: 'firing' as const,
    groupKey: GROUP.groupKey,
    service: 'checkout',
    environment: 'production',
  };

  it.each<{ intent: string; episode: typeof firing | { status: 'resolved' }; pages: StoredPage[]; ops: string[] }>([
    {
      intent: 'a firing episode opens the on-call page of its group',
      episode: firing,
      pages: [],
      ops: ['open_page', 'add_member', 'enqueue'],
    },
    {
      intent: 'it joins the open on-call page when there is one',
      episode: firing,
      pages: [page(3, ONCALL, [1])],
      ops: ['add_member', 'enqueue'],
    },
    { intent: 'a member of it already changes nothing', episode: firing, pages: [page(3, ONCALL, [5])], ops: [] },
    { intent: 'a resolved episode pages nobody', episode: { ...firing, status: 'resolved' }, pages: [], ops: [] },
  ])('$intent', ({ episode, pages, ops }) => {
    expect(planJoinOncall({ ...firing, ...episode }, { pages, lastSeq: new Map() }).map((o) => o.op)).toEqual(ops);
  });

  it.each([
    {
      intent: 'firing: it joins on-call, and the comment on its own page is queued to say so',
      status: 'firing' as const,
    },
    { intent: 'resolved: nobody is paged, and the comment is still queued', status: 'resolved' as const },
  ])('$intent', ({ status }) => {
    const own = { ...page(7, ALICE, status === 'firing' ? [5] : []), commentHost: 'github' as const };
    const episodes = [stored(5, 'f1', '2026-11-26T11:09:00Z', { status, pageIds: [7] })];
    const enqueued = planJoinOncall({ ...firing, status }, { pages: [own], lastSeq: new Map(), episodes }).filter(
      (o) => o.op === 'enqueue',
    );
    expect(enqueued).toEqual([
      ...(status === 'firing' ? [{ op: 'enqueue', kind: 'page', id: -1 }] : []),
      { op: 'enqueue', kind: 'github_comment', id: 7 },
    ]);
  });
});
