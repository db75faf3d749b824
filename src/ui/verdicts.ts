import { type Config, policyFor } from '../config/load.js';
import { judge } from '../core/verdict.js';
import type { ReadStore } from '../store/store.js';
import type { DeployVerdict } from './model.js';

/** The observation window the page judges with: the canary gate's default (GET /v1/deploys/{id}/verdict). */
export const PAGE_OBSERVE_MS = 30 * 60_000;
/** Verdicts cost two reads per rollout: the page judges the latest this many and leaves older ones unjudged. */
export const MAX_VERDICTS = 100;

/**
 * The canary verdict of each deploy, as the gate would answer with `observe=PT30M` (capped at the service's
 * correlation window, as the gate requires). Stage events of one rollout share its verdict.
 */
export function storeVerdicts(deps: { config: Config; store: ReadStore }) {
  const { config, store } = deps;
  return async (deployIds: readonly string[], now: number): Promise<ReadonlyMap<string, DeployVerdict>> => {
    const verdicts = new Map<string, DeployVerdict>();
    const wanted = new Set(deployIds);
    // The ids come latest first: recent rollouts are the ones whose verdict someone is waiting for.
    for (const id of deployIds.slice(0, MAX_VERDICTS)) {
      if (verdicts.has(id)) continue;
      // The gate reads the events' times, stages and versions: their changes stay in the database.
      const rollout = await store.rolloutOf(id, { listLimit: 0 });
      const latest = rollout?.events[rollout.events.length - 1];
      if (!rollout || !latest) continue;
      const policy = policyFor(config, latest.service);
      const ids = rollout.events.map((d) => d.id);
      const attributed = await store.episodesAttributedTo(ids);
      const [rolledBack] = await store.rollbacksOf(ids);
      const v = judge({
        ...(rolledBack ? { rolledBack } : {}),
        rollout: rollout.events,
        attributed,
        observeMs: Math.min(PAGE_OBSERVE_MS, policy.windowMs),
        settleMs: 0,
        skewMs: policy.skewMs,
        now,
      });
      const verdict = { status: v.state, detail: v.sentence };
      for (const d of rollout.events) if (wanted.has(d.id)) verdicts.set(d.id, verdict);
    }
    return verdicts;
  };
}
