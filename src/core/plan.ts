import { pageDedupKey } from './dedup-key.js';
import type { Alert, AlertStatus, CodeHostName, Decision, Target } from './types.js';

// What one Alertmanager notification writes, decided from what is already stored. Pure: a store adapter asks
// writeNeeds() what to read, reads that snapshot inside its transaction, calls planAlertWrites(), and executes
// the operations in order. The rules live here once, so every adapter writes the same rows for the same input:
//
// - an episode is (fingerprint, startsAt); a stored one is never decided again: a repeat only refreshes
//   lastSeenAt (to the minute, so most repeats write nothing);
// - a new firing episode joins the open page of each of its decision's targets in its group and service, or
//   opens that page with the next sequence number, whose dedup key PagerDuty keys on;
// - resolved is final for an episode. A resolved alert resolves its episode and also every other firing episode
//   of the same fingerprint that started before it ended (Alertmanager may report the end of a firing under
//   another startsAt than the one it fired with); a page resolves when none of its members fires;
// - each person the decision names to tell gets one DM row, updated when the episode resolves;
// - every page or DM that changed gets an outbox row, which the delivery worker brings up to date.
// - a new episode whose decision pages a person, in a service that gathers evidence, gets an `evidence` outbox
//   row due at once, and that person's page (and the DMs) are due only at receipt + the evidence budget: the
//   evidence handler makes them due sooner, and if it never runs (a crash, Prometheus hanging) they go anyway;
// - what arrived evidence writes (planAfterEvidence): the held pages and DMs made due now, and, when the evidence
//   clears the deploy, the episode moved from the person's held pages to the on-call page of its group.
//
// New rows get negative temporary ids (-1, -2, …) in the plan; the adapter maps them to the ids it inserts.

/** lastSeenAt is kept to this resolution: a repeat within it writes nothing. */
export const LAST_SEEN_RESOLUTION_MS = 60_000;

/** Where a page lives: the alerts of one Alertmanager group, for one service, that go to one target. */
export interface PageSlot {
  groupKey: string;
  service: string;
  target: Target;
}

export interface GroupInfo {
  groupKey: string;
  receiver: string;
  externalURL: string;
}

export interface AlertWrite {
  alert: Alert;
  /** The decision for an episode the store does not know yet; ignored for a known one (a racing duplicate). */
  decision?: Decision;
  /**
   * How long a new firing episode's pages for a person, and its DMs, wait for its evidence (the evidence budget);
   * absent when no evidence is gathered for it.
   */
  evidenceBudgetMs?: number;
}

export interface StoredEpisode {
  id: number;
  fingerprint: string;
  startsAt: string;
  startsAtMs: number;
  status: AlertStatus;
  lastSeenAt: number;
  pageIds: number[];
  dmIds: number[];
}

export interface StoredPage {
  id: number;
  slot: PageSlot;
  status: 'open' | 'resolved';
  /** The code host that gets a comment about the page, from the decision that opened it. */
  commentHost?: CodeHostName;
  /** Ids of the members still firing. */
  firing: number[];
}

/** What planAlertWrites needs read: the rows these keys, fingerprints and slots name. */
export interface WriteNeeds {
  /** Episodes by identity: every alert of the notification. */
  episodeKeys: { fingerprint: string; startsAt: string }[];
  /** Firing episodes of these fingerprints (the notification reports one of their alerts resolved). */
  firingOf: string[];
  /** For each slot: its open page, and the highest sequence number it has used. */
  slots: PageSlot[];
  /** Read the pages and DMs of every episode named by key, not only of those a resolve may close ("not my change"). */
  withLinks?: boolean;
}

export interface WriteSnapshot {
  /** The stored episodes that writeNeeds named, each with its pages and DMs. */
  episodes: StoredEpisode[];
  /** The open page of each slot named, and every page of the episodes above. */
  pages: StoredPage[];
  /** The highest sequence number per slot (slotKey), for slots that have had a page. */
  lastSeq: ReadonlyMap<string, number>;
}

export type WriteOp =
  | { op: 'insert_episode'; id: number; group: GroupInfo; alert: Alert; decision: Decision }
  | { op: 'touch_episode'; id: number }
  | { op: 'resolve_episode'; id: number; endsAtMs: number }
  | {
      op: 'open_page';
      id: number;
      slot: PageSlot;
      environment: string;
      seq: number;
      dedupKey: string;
      commentHost?: CodeHostName;
    }
  | { op: 'add_member'; page: number; episode: number }
  | { op: 'resolve_page'; id: number }
  /** The episode leaves a page it was held on (the evidence cleared its deploy): no longer a member. */
  | { op: 'leave_page'; page: number; episode: number }
  | { op: 'insert_dm'; id: number; episode: number; email: string; deployId?: string }
  /** An outbox row for the page, DM or episode (evidence) `id`, due at `dueAt` (absent: now), or sooner if queued. */
  | { op: 'enqueue'; kind: 'page' | 'dm' | 'evidence' | `${CodeHostName}_comment`; id: number; dueAt?: number };

export interface WriteCounts {
  newEpisodes: number;
  resolved: number;
  repeats: number;
  pagesTouched: number;
}

/** The kinds of outbox rows a plan can queue. */
export type QueuedKind = Extract<WriteOp, { op: 'enqueue' }>['kind'];

/** The kinds of outbox rows a plan queues: the delivery lanes its commit gives work to. */
export function queuedKinds(ops: readonly WriteOp[]): QueuedKind[] {
  return [...new Set(ops.flatMap((o) => (o.op === 'enqueue' ? [o.kind] : [])))].sort();
}

export interface WritePlan {
  ops: WriteOp[];
  counts: WriteCounts;
}

export function episodeKey(alert: Pick<Alert, 'fingerprint' | 'startsAt'>): string {
  return `${alert.fingerprint}|${alert.startsAt}`;
}

export function targetKey(target: Target): string {
  return target.kind === 'oncall' ? 'oncall' : `person:${target.email}`;
}

export function parseTargetKey(key: string): Target {
  return key.startsWith('person:') ? { kind: 'person', email: key.slice('person:'.length) } : { kind: 'oncall' };
}

export function slotKey(slot: PageSlot): string {
  return JSON.stringify([slot.groupKey, slot.service, targetKey(slot.target)]);
}

/** The slots a decision's pages live in: one per target, in the group, for the decision's service. */
export function slotsOf(groupKey: string, decision: Pick<Decision, 'service' | 'targets'>): PageSlot[] {
  return decision.targets.map((target) => ({ groupKey, service: decision.service ?? '', target }));
}

/** What the store knows of the episodes a notification names, by episodeKey: when each was last seen. */
export type KnownEpisodes = ReadonlyMap<string, { lastSeenAt: number }>;

/**
 * Whether these alerts write anything. Most of what Alertmanager sends is the same group again every
 * group_interval: firing alerts whose episodes are stored and were seen within LAST_SEEN_RESOLUTION_MS. For those
 * planAlertWrites() plans no operation, so they need no transaction at all. A resolved alert always takes the
 * write path: it may end other episodes of its fingerprint, which only the snapshot read inside the transaction
 * shows.
 */
export function needsWrite(alerts: readonly Alert[], known: KnownEpisodes, now: number): boolean {
  return alerts.some((alert) => {
    const seen = known.get(episodeKey(alert));
    return seen === undefined || alert.status === 'resolved' || now - seen.lastSeenAt >= LAST_SEEN_RESOLUTION_MS;
  });
}

export function writeNeeds(groupKey: string, writes: readonly AlertWrite[]): WriteNeeds {
  const slots = new Map<string, PageSlot>();
  for (const { alert, decision } of writes) {
    if (!decision || alert.status !== 'firing') continue;
    for (const slot of slotsOf(groupKey, decision)) slots.set(slotKey(slot), slot);
  }
  return {
    episodeKeys: writes.map(({ alert }) => ({ fingerprint: alert.fingerprint, startsAt: alert.startsAt })),
    firingOf: [...new Set(writes.filter((w) => w.alert.status === 'resolved').map((w) => w.alert.fingerprint))],
    slots: [...slots.values()],
  };
}

/**
 * The writes of one notification. `now` stamps first and last sight; a resolve without endsAt ends at `now`.
 * Throws when an alert the snapshot does not know comes without a decision: the caller decides new episodes.
 */
export function planAlertWrites(
  group: GroupInfo,
  writes: readonly AlertWrite[],
  snapshot: WriteSnapshot,
  now: number,
): WritePlan {
  const state = new PlanState(snapshot);
  const counts: WriteCounts = { newEpisodes: 0, resolved: 0, repeats: 0, pagesTouched: 0 };

  for (const write of writes) {
    const { alert, decision } = write;
    const existing = state.episodes.get(episodeKey(alert));
    if (!existing) {
      if (!decision) throw new Error(`no decision for new episode ${episodeKey(alert)}`);
      const episode = state.insertEpisode(group, alert, decision, now);
      counts.newEpisodes++;
      const budget = write.evidenceBudgetMs;
      const held =
        budget !== undefined && alert.status === 'firing' && decision.targets.some((t) => t.kind === 'person')
          ? now + budget
          : undefined;
      if (held !== undefined) state.ops.push({ op: 'enqueue', kind: 'evidence', id: episode.id });
      if (alert.status === 'firing') {
        for (const slot of slotsOf(group.groupKey, decision)) {
          state.join(
            slot,
            decision.environment,
            episode,
            slot.target.kind === 'person' ? held : undefined,
            commentHostOf(decision, slot.target),
          );
        }
      }
      for (const email of new Set(decision.notify)) state.insertDm(episode, email, decision.deployId, held);
    } else if (existing.status === 'firing' && alert.status === 'resolved') {
      state.resolveEpisode(existing, alert.endsAtMs ?? now);
      counts.resolved++;
    } else {
      // A repeat, an HA duplicate, or a stale "firing" after the episode resolved: a real re-fire comes with a
      // new startsAt, so resolved is final.
      if (now - existing.lastSeenAt >= LAST_SEEN_RESOLUTION_MS) {
        state.ops.push({ op: 'touch_episode', id: existing.id });
        existing.lastSeenAt = now;
      }
      counts.repeats++;
    }
    if (alert.status === 'resolved') {
      // Alertmanager can report the end of a firing under another startsAt than the one it fired with (a re-sent
      // alert merged, a rule's ActiveAt moved by a Prometheus restart, amtool rounding to the second). The end
      // closes every episode of the fingerprint still firing that had started by then; a later one is a new firing.
      const endsAtMs = alert.endsAtMs ?? now;
      for (const other of state.firingOf(alert.fingerprint)) {
        if (other.startsAtMs > endsAtMs) continue;
        state.resolveEpisode(other, endsAtMs);
        counts.resolved++;
      }
    }
  }
  state.enqueueTouched();
  counts.pagesTouched = state.touched.size;
  return { ops: state.ops, counts };
}

/**
 * Which of a decision's pages gets the pull request comment: the person's page when someone was paged by name
 * (author+oncall opens two pages, and one comment on the pull request is enough), else the on-call page.
 */
function commentHostOf(decision: Decision, target: Target): CodeHostName | undefined {
  if (!decision.comment) return undefined;
  const byName = decision.targets.some((t) => t.kind === 'person');
  return target.kind === 'person' || !byName ? decision.comment : undefined;
}

/** The on-call page slot of an episode's group and service. */
export function oncallSlot(episode: { groupKey: string; service?: string }): PageSlot {
  return { groupKey: episode.groupKey, service: episode.service ?? '', target: { kind: 'oncall' } };
}

/**
 * What "not my change" writes: the episode, while it fires, joins the on-call page of its group; and the code host
 * comments about the pages it is on (`snapshot.episodes` holds it, with its pages) are queued, to say so.
 */
export function planJoinOncall(
  episode: { id: number; status: AlertStatus; groupKey: string; service?: string; environment: string },
  snapshot: Pick<WriteSnapshot, 'pages' | 'lastSeq'> & Partial<Pick<WriteSnapshot, 'episodes'>>,
): WriteOp[] {
  const state = new PlanState({ ...snapshot, episodes: [] });
  if (episode.status === 'firing') {
    state.join(oncallSlot(episode), episode.environment, { id: episode.id, pageIds: [] });
  }
  state.enqueueTouched();
  const stored = snapshot.episodes?.find((e) => e.id === episode.id);
  for (const id of stored?.pageIds ?? []) {
    const host = state.commentHostOf(id);
    if (host && !state.touched.has(id)) state.ops.push({ op: 'enqueue', kind: `${host}_comment`, id });
  }
  return state.ops;
}

/**
 * What arrived evidence writes for an episode: its pages held for a person and its DMs due now; when the
 * evidence clears the deploy (`reroute`) and the episode still fires, it first leaves those held pages (a page
 * left with no member firing resolves, never having gone out) and joins the on-call page of its group, as
 * "not my change" does.
 */
/**
 * What an adapter reads before planAfterEvidence: the episode as it takes it, and the page slots the snapshot
 * must hold (the person's pages the episode may leave, and the on-call page of its group it may join).
 */
export function afterEvidenceNeeds(
  episode: { id: number; status: AlertStatus; groupKey: string; decision: { service?: string; environment: string } },
  personPages: readonly PageSlot[],
): { episode: Parameters<typeof planAfterEvidence>[0]; slots: PageSlot[] } {
  const { service, environment } = episode.decision;
  const where = {
    id: episode.id,
    status: episode.status,
    groupKey: episode.groupKey,
    environment,
    ...(service === undefined ? {} : { service }),
  };
  const slots = personPages.map((p) => ({ groupKey: p.groupKey, service: p.service, target: p.target }));
  return { episode: where, slots: [...slots, oncallSlot(where)] };
}

export function planAfterEvidence(
  episode: { id: number; status: AlertStatus; groupKey: string; service?: string; environment: string },
  held: { personPages: readonly number[]; dms: readonly number[]; reroute: boolean },
  snapshot: Pick<WriteSnapshot, 'pages' | 'lastSeq'>,
): WriteOp[] {
  const state = new PlanState({ episodes: [], ...snapshot });
  if (held.reroute && episode.status === 'firing') {
    for (const page of held.personPages) state.leave(page, episode.id);
    state.join(oncallSlot(episode), episode.environment, { id: episode.id, pageIds: [] });
  }
  for (const page of held.personPages) state.touched.add(page);
  state.enqueueTouched();
  for (const dm of held.dms) state.ops.push({ op: 'enqueue', kind: 'dm', id: dm });
  return state.ops;
}

/** The pages and DMs of the alerts attributed to the deploys a new rollback undid, as the store finds them. */
export interface RollbackSnapshot {
  /** `dueAt`: when the page's outbox row, if one waits, is due (a page held for its evidence waits until then). */
  pages: { id: number; status: 'open' | 'resolved'; dueAt?: number }[];
  dms: { id: number; episodeStatus: AlertStatus; dueAt?: number }[];
}

/**
 * What a rollback's arrival queues: its open pages (the PagerDuty planner adds a note to an incident) and the
 * DMs of alerts still firing (they gain a "rolled back" line). A resolved page has nobody left to tell; a DM of
 * a resolved alert was already updated when it resolved, and says its change caused it.
 */
export function planRollback(snapshot: RollbackSnapshot, now: number): WriteOp[] {
  // A row already waiting keeps its time: a page (and its DMs) held for evidence must not go out before the
  // evidence could clear the deploy; it carries the rollback's news when it goes.
  const due = (dueAt: number | undefined) => (dueAt !== undefined && dueAt > now ? { dueAt } : {});
  return [
    ...snapshot.pages
      .filter((p) => p.status === 'open')
      .map((p): WriteOp => ({ op: 'enqueue', kind: 'page', id: p.id, ...due(p.dueAt) })),
    ...snapshot.dms
      .filter((d) => d.episodeStatus === 'firing')
      .map((d): WriteOp => ({ op: 'enqueue', kind: 'dm', id: d.id, ...due(d.dueAt) })),
  ];
}

/** The working copy of the snapshot a plan updates as it goes, so later alerts see earlier ones' writes. */
class PlanState {
  readonly ops: WriteOp[] = [];
  readonly episodes = new Map<string, StoredEpisode>();
  readonly touched = new Set<number>();
  /** Touched pages held for evidence, with when they fall due; a page also touched otherwise is due now. */
  private readonly held = new Map<number, number>();
  private readonly urgent = new Set<number>();
  private readonly pages = new Map<number, StoredPage>();
  private readonly openBySlot = new Map<string, StoredPage>();
  private readonly lastSeq: Map<string, number>;
  private nextId = -1;

  constructor(snapshot: WriteSnapshot) {
    for (const e of snapshot.episodes) this.episodes.set(episodeKey(e), { ...e, pageIds: [...e.pageIds] });
    for (const p of snapshot.pages) {
      const copy = { ...p, firing: [...p.firing] };
      this.pages.set(p.id, copy);
      if (p.status === 'open') this.openBySlot.set(slotKey(p.slot), copy);
    }
    this.lastSeq = new Map(snapshot.lastSeq);
  }

  newId(): number {
    return this.nextId--;
  }

  commentHostOf(pageId: number): CodeHostName | undefined {
    return this.pages.get(pageId)?.commentHost;
  }

  firingOf(fingerprint: string): StoredEpisode[] {
    return [...this.episodes.values()].filter((e) => e.fingerprint === fingerprint && e.status === 'firing');
  }

  insertDm(episode: StoredEpisode, email: string, deployId: string | undefined, dueAt: number | undefined): void {
    const id = this.newId();
    this.ops.push({ op: 'insert_dm', id, episode: episode.id, email, ...(deployId === undefined ? {} : { deployId }) });
    this.ops.push({ op: 'enqueue', kind: 'dm', id, ...(dueAt === undefined ? {} : { dueAt }) });
    episode.dmIds.push(id);
  }

  /**
   * An outbox row for every page touched: due now, or when its evidence budget ends if only held joins touched it;
   * and one for its comment where it has one (a code host's), due with the page.
   */
  enqueueTouched(): void {
    for (const page of this.touched) {
      const dueAt = this.urgent.has(page) ? undefined : this.held.get(page);
      const due = dueAt === undefined ? {} : { dueAt };
      this.ops.push({ op: 'enqueue', kind: 'page', id: page, ...due });
      const host = this.pages.get(page)?.commentHost;
      if (host) this.ops.push({ op: 'enqueue', kind: `${host}_comment`, id: page, ...due });
    }
  }

  /** Takes an episode off a page; a page left with no member firing resolves. */
  leave(pageId: number, episodeId: number): void {
    const page = this.pages.get(pageId);
    if (!page?.firing.includes(episodeId)) return;
    page.firing = page.firing.filter((id) => id !== episodeId);
    this.ops.push({ op: 'leave_page', page: pageId, episode: episodeId });
    this.touched.add(pageId);
    this.urgent.add(pageId);
    if (page.status === 'open' && page.firing.length === 0) {
      page.status = 'resolved';
      this.openBySlot.delete(slotKey(page.slot));
      this.ops.push({ op: 'resolve_page', id: page.id });
    }
  }

  insertEpisode(group: GroupInfo, alert: Alert, decision: Decision, now: number): StoredEpisode {
    const episode: StoredEpisode = {
      id: this.newId(),
      fingerprint: alert.fingerprint,
      startsAt: alert.startsAt,
      startsAtMs: alert.startsAtMs,
      status: alert.status,
      lastSeenAt: now,
      pageIds: [],
      dmIds: [],
    };
    this.ops.push({ op: 'insert_episode', id: episode.id, group, alert, decision });
    this.episodes.set(episodeKey(alert), episode);
    return episode;
  }

  /**
   * Adds a firing episode to the open page of its slot, opening the slot's next page when there is none. With
   * `heldUntil`, the page waits for the episode's evidence until then (unless something else makes it due now);
   * a page opened with `commentHost` also gets a comment on the change's pull or merge request there.
   */
  join(
    slot: PageSlot,
    environment: string,
    episode: Pick<StoredEpisode, 'id' | 'pageIds'>,
    heldUntil?: number,
    commentHost?: CodeHostName,
  ): void {
    const key = slotKey(slot);
    let page = this.openBySlot.get(key);
    if (!page) {
      const seq = (this.lastSeq.get(key) ?? 0) + 1;
      page = { id: this.newId(), slot, status: 'open', firing: [], ...(commentHost ? { commentHost } : {}) };
      this.ops.push({
        op: 'open_page',
        id: page.id,
        slot,
        environment,
        seq,
        dedupKey: pageDedupKey({ groupKey: slot.groupKey, service: slot.service, target: targetKey(slot.target), seq }),
        ...(commentHost ? { commentHost } : {}),
      });
      this.lastSeq.set(key, seq);
      this.pages.set(page.id, page);
      this.openBySlot.set(key, page);
    }
    if (page.firing.includes(episode.id)) return;
    page.firing.push(episode.id);
    episode.pageIds.push(page.id);
    this.ops.push({ op: 'add_member', page: page.id, episode: episode.id });
    this.touched.add(page.id);
    if (heldUntil === undefined) this.urgent.add(page.id);
    else this.held.set(page.id, Math.max(this.held.get(page.id) ?? 0, heldUntil));
  }

  resolveEpisode(episode: StoredEpisode, endsAtMs: number): void {
    episode.status = 'resolved';
    this.ops.push({ op: 'resolve_episode', id: episode.id, endsAtMs });
    for (const dm of episode.dmIds) this.ops.push({ op: 'enqueue', kind: 'dm', id: dm });
    for (const pageId of episode.pageIds) {
      const page = this.pages.get(pageId);
      if (!page) continue;
      page.firing = page.firing.filter((id) => id !== episode.id);
      if (page.status === 'open' && page.firing.length === 0) {
        page.status = 'resolved';
        this.openBySlot.delete(slotKey(page.slot));
        this.ops.push({ op: 'resolve_page', id: page.id });
        this.touched.add(page.id);
        this.urgent.add(page.id);
      }
    }
  }
}
