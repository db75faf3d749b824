import { kindOf } from './change.js';
import type { Deploy } from './types.js';

// Rollbacks, as pure rules: what a rollback deploy undid (decided once, when it arrives), and which deploy was
// running when an alert started (decided for every alert). The version running when the alert started decides
// whose change it is: a change that was rolled back before the alert started was no longer running.

/**
 * How many earlier deploys of a service and environment a new one is compared with to recognise a rollback by its
 * version (nearest first): a rollback goes back a few releases, not hundreds.
 */
export const ROLLBACK_HISTORY = 100;

/** What the sender of a deploy event said about it being a rollback (docs/api.md, rollbackOf and rollback). */
export type RollbackClaim = { of: string } | { flag: true };

/**
 * The deploys a new deploy event undoes, or undefined when it is not a rollback.
 *
 * - `rollbackOf: X`: X, with the deploys after it, up to this one, of other versions than the one deployed.
 * - Otherwise the version deployed is compared with what ran before: when it equals a version this service and
 *   environment ran before the current one, the deploys since that version's last event are undone (those of
 *   other versions). `rollback: true` says the same when the version cannot be matched; it then undoes the
 *   current rollout (the latest deploys of the current version).
 * - Deploying the version already running (a restart, the next stage of a rollout) undoes nothing, nor does
 *   deploying again a version that only a rollback took away (rolling forward).
 *
 * `history` is the code deploys of the same service and environment before this one, latest first; `named` is
 * the deploy `rollbackOf` names (the caller has checked it exists and belongs to the same service and
 * environment). Only code deploys can be rolled back this way: a flag or config change has its own subject.
 */
export function rollbackOf(
  deploy: Pick<Deploy, 'version' | 'at'>,
  history: readonly Deploy[],
  claim?: RollbackClaim,
  named?: Deploy,
): Deploy['rollback'] | undefined {
  const before = history.filter((d) => kindOf(d) === 'deploy' && d.at <= deploy.at);
  const undo = (from: number) =>
    before
      .filter((d) => d.at >= from && d.version !== deploy.version)
      .sort((a, b) => a.at - b.at || a.receivedAt - b.receivedAt)
      .map((d) => d.id);

  if (claim && 'of' in claim && named) {
    // The named deploy's whole rollout: its earlier stage events of the same version, back to the first.
    let from = named.at;
    for (const d of before) {
      if (d.at > named.at) continue;
      if (d.version !== named.version) break;
      from = d.at;
    }
    const of = undo(from);
    return { of: of.includes(named.id) ? of : [named.id, ...of], explicit: true };
  }

  const current = before[0];
  const explicit = claim !== undefined;
  if (!current || current.version === deploy.version) return explicit ? { of: [], explicit } : undefined;
  const target = before.find((d) => d.version === deploy.version);
  if (target) {
    const of = undo(target.at + 1);
    // Deploying again a version that a rollback took away (v2, rolled back to v1, then v2 again) undoes only
    // that rollback: the change is back, and is its author's again. Not a rollback unless the sender says so.
    const onlyRollbacks = of.every((id) => before.find((d) => d.id === id)?.rollback !== undefined);
    if (onlyRollbacks && !explicit) return undefined;
    return { of, explicit };
  }
  if (!explicit) return undefined;
  // rollback: true to a version changepager never saw: the current rollout is what is undone.
  let from = current.at;
  for (const d of before) {
    if (d.version !== current.version) break;
    from = d.at;
  }
  return { of: undo(from), explicit };
}

/** Which deploy was running when an alert started, as far as the deploys in its window tell. */
export type Running =
  /** A deploy that carries changes: the alert is attributed to it (`rolledBackAt`: it was undone later). */
  | { kind: 'deploy'; deploy: Deploy; rolledBackBy?: Deploy }
  /** A rollback had undone `undone` (those in the window, latest first) before the alert started. */
  | { kind: 'after_rollback'; rollback: Deploy; undone: Deploy[] }
  /** A deploy of a new version that names no change (a config-only restart, say): nobody to attribute it to. */
  | { kind: 'no_changes'; deploy: Deploy }
  | { kind: 'none' };

/**
 * The deploy running at `startsAtMs` among `inWindow` (latest first; the store's candidates) that claim the
 * alert's hosts. A rollback counts only from its own time: an alert that started before it (even within the
 * clock skew allowed for deploys) started while the rolled-back change still ran. A deploy without changes of
 * the version that already ran (a restart, a redeploy) changes nothing that runs: the deploy before it decides.
 */
export function runningAt(inWindow: readonly Deploy[], startsAtMs: number, claims: (d: Deploy) => boolean): Running {
  const claimed = inWindow.filter(claims);
  const laterRollbacks: Deploy[] = [];
  for (let i = 0; i < claimed.length; i++) {
    const d = claimed[i] as Deploy;
    if (d.rollback) {
      if (d.at > startsAtMs) {
        laterRollbacks.push(d);
        continue;
      }
      const undone = claimed.filter((u) => d.rollback?.of.includes(u.id));
      return { kind: 'after_rollback', rollback: d, undone };
    }
    if (d.changes.length === 0) {
      // The deploy it redeploys: the latest earlier one of its version, with nothing but rollbacks since (a
      // restart after a rollback is the rollback's version; a version deployed again after a rollback of it
      // is that version's deploy again). This holds too for a code host's deploy whose changes its API has not
      // given: the version says what runs.
      const rest = claimed.slice(i + 1);
      const j = rest.findIndex((o) => o.version === d.version);
      if (j >= 0 && rest.slice(0, j).every((o) => o.rollback !== undefined)) {
        i += j;
        continue;
      }
      // A code host's deploy of a new version whose changes its API has not given (yet, or ever) is not one
      // without changes: it is attributed, and its changes are unknown.
      if (d.source === undefined || d.source.changes === 'found') {
        if (rest.length === 0 && d.previousVersion === d.version) continue;
        return { kind: 'no_changes', deploy: d };
      }
    }
    // The earliest later rollback that undid it: the first one that stopped it running.
    const rolledBackBy = laterRollbacks.filter((r) => r.rollback?.of.includes(d.id)).at(-1);
    return rolledBackBy ? { kind: 'deploy', deploy: d, rolledBackBy } : { kind: 'deploy', deploy: d };
  }
  return { kind: 'none' };
}
