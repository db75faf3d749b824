import type { Logger } from 'pino';
import { type Config, evidenceBudgetFor, policyFor } from './config/load.js';
import { kindOf } from './core/change.js';
import {
  type AlertLocation,
  correlate,
  type DeployCandidates,
  deployWindow,
  firstLabel,
  locateAlert,
  ONCALL,
} from './core/correlate.js';
import { type AlertWrite, episodeKey, needsWrite, type WriteCounts } from './core/plan.js';
import { ROLLBACK_HISTORY, type RollbackClaim, rollbackOf } from './core/rollback.js';
import type { Alert, AlertGroup, CodeHostName, Decision, Deploy, ServicePolicy } from './core/types.js';
import type { Metrics } from './metrics.js';
import { nextTurn, slicesOf } from './slices.js';
import {
  type CandidateQuery,
  type IngestStore,
  type OutboxKind,
  type PeopleStore,
  StorageError,
} from './store/store.js';

// The flow (docs/architecture.md), top to bottom: receive (app.ts validated and authenticated the request) →
// decide (pure, core/correlate.ts) → persist (one transaction, store.recordAlerts, writing what core/plan.ts plans) → deliver (outbox worker,
// woken by onCommitted) → record (the worker writes every attempt).
//
// A large notification goes through decide and persist a slice of alerts at a time (slices.ts), each slice its
// own transaction, with a turn of the event loop between slices. Each slice is consistent on its own (its
// episodes, decisions, pages and outbox rows commit together), slices commit in the notification's order, and
// the caller answers 2xx only after the last one: after a crash Alertmanager sends the whole notification
// again, and the alerts of the slices already stored are repeats, which change nothing.

export interface PipelineDeps {
  config: Config;
  store: IngestStore & PeopleStore;
  now: () => number;
  log: Logger;
  metrics: Metrics;
  /** Whether a new deploy is to be sent on as a change event (an outbox row of kind `change`). */
  sendsChangeEvent: (deploy: Deploy) => boolean;
  /** The code host that gets a comment about pages attributed to this deploy (channels/connect.ts). */
  commentHostOf?: (deploy: Deploy, policy: ServicePolicy) => CodeHostName | undefined;
  /**
   * Called after a commit that queued deliveries, with the kinds of outbox rows it queued when they are known
   * (none named: any kind), so that only the lanes with new work look for it.
   */
  onCommitted: (kinds?: readonly OutboxKind[]) => void;
}

export interface DecidedAlert {
  alert: Alert;
  decision: Decision;
}

/** An alert's place, its service's policy and its deploy candidates: what correlate() needs besides the alert. */
interface Located {
  location: AlertLocation;
  policy: ServicePolicy;
  candidates: DeployCandidates;
}

export function createPipeline(deps: PipelineDeps) {
  const { config, store, now, log, metrics } = deps;

  /** The service label alone, read without the per-service config: for routing when correlation failed. */
  function serviceOf(alert: Alert): { service?: string } {
    const service = firstLabel(alert.labels, config.serviceLabels);
    return service === undefined ? {} : { service };
  }

  /**
   * Where each alert comes from, its service's policy, and the deploys that could explain it: one store call for
   * all the alerts, not one each (a storm's notification holds a hundred).
   */
  async function locate(alerts: readonly Alert[]): Promise<Located[]> {
    const located = alerts.map((alert) => {
      const location = locateAlert(
        alert.labels,
        config.serviceLabels,
        (s) => policyFor(config, s),
        config.defaultEnvironment,
      );
      const policy = policyFor(config, location.service);
      const query: CandidateQuery | undefined =
        location.service === undefined || policy.mode === 'off'
          ? undefined
          : { service: location.service, environment: location.environment, ...deployWindow(alert.startsAtMs, policy) };
      return { location, policy, query };
    });
    const queries = located.flatMap((l) => (l.query ? [l.query] : []));
    const found = queries.length === 0 ? [] : await store.findDeployCandidates(queries);
    if (found.length !== queries.length) {
      throw new Error(`the store answered ${found.length} deploy lookups for ${queries.length} alerts`);
    }
    let next = 0;
    return located.map(({ location, policy, query }) => ({
      location,
      policy,
      candidates: query ? (found[next++] as DeployCandidates) : { inWindow: [] },
    }));
  }

  /** The decision for one located alert: correlate(), and the code host to comment on the pinned change. */
  function decideOne(alert: Alert, { location, policy, candidates }: Located, at: number): Decision {
    const decision = correlate({ alert, location, candidates, policy, directory: config.directory, now: at });
    // The pages of an alert pinned on one change of a code host's deploy get a comment on its pull request. An
    // alert after a rollback names the undone deploy, but that change no longer ran: its pull request is not told.
    const deploy = candidates.inWindow.find((d) => d.id === decision.deployId);
    const pinned = deploy?.changes.length === 1 && decision.reason !== 'after_rollback';
    const host = pinned ? deps.commentHostOf?.(deploy, policy) : undefined;
    return host ? { ...decision, comment: host } : decision;
  }

  /**
   * Decides for each alert. A failure in correlation itself pages on-call rather than failing the request: in the
   * lookup, for every alert of the slice; in correlate(), for that alert.
   */
  async function decide(alerts: readonly Alert[], at: number): Promise<DecidedAlert[]> {
    let located: Located[];
    try {
      located = await locate(alerts);
    } catch (err) {
      // Store failures propagate: the request must fail so that Alertmanager sends it again.
      if (err instanceof StorageError) throw err;
      return alerts.map((alert) => correlationFailed(alert, err));
    }
    return alerts.map((alert, k) => {
      try {
        return { alert, decision: decideOne(alert, located[k] as Located, at) };
      } catch (err) {
        return correlationFailed(alert, err);
      }
    });
  }

  /** The decision for an alert correlation failed on: on-call is paged, and the sentence says why. */
  function correlationFailed(alert: Alert, err: unknown): DecidedAlert {
    log.error({ err, fingerprint: alert.fingerprint }, 'correlation failed; paging on-call');
    return {
      alert,
      decision: {
        reason: 'correlation_error',
        // Whatever was thrown: this answer must not throw itself, or the alert would page no one.
        sentence: `changepager could not correlate this alert (${err instanceof Error ? err.message : String(err)}); paging on-call.`,
        ...serviceOf(alert),
        environment: config.defaultEnvironment,
        policy: config.defaults.mode,
        suspects: [],
        targets: [ONCALL],
        responders: [],
        notify: [],
        wouldPage: [],
      },
    };
  }

  /** Authors a page could not go to because changepager knows no email or person for them. */
  async function recordUnreachable(decision: Decision): Promise<void> {
    for (const s of decision.suspects.filter((s) => s.email === undefined)) {
      const who = s.identity.login ?? s.identity.email ?? s.identity.name ?? 'unknown';
      metrics.unmappedPeople.inc({ reason: 'no_email' });
      await store
        .recordUnmapped(who, 'no_email', now())
        .catch((err) => log.error({ err }, 'cannot record an unmapped person'));
    }
  }

  /** Decides and stores one slice of a notification, in one transaction, then wakes delivery. */
  async function receiveSlice(
    group: AlertGroup,
    alerts: readonly Alert[],
    at: number,
  ): Promise<WriteCounts & { decided: DecidedAlert[] }> {
    // Repeats are the common case (every group_interval the whole group is re-sent): only new episodes are decided,
    // and a slice of fresh repeats writes nothing, so it opens no transaction and wakes no worker.
    const known = await store.knownEpisodes(alerts);
    if (!needsWrite(alerts, known, at)) {
      metrics.alertsReceived.inc({ result: 'repeat' }, alerts.length);
      return { newEpisodes: 0, resolved: 0, repeats: alerts.length, pagesTouched: 0, decided: [] };
    }
    const decided = await decide(
      alerts.filter((a) => !known.has(episodeKey(a))),
      at,
    );
    const decisions = new Map(decided.map((d) => [episodeKey(d.alert), d.decision]));
    const writes: AlertWrite[] = alerts.map((alert) => {
      const decision = decisions.get(episodeKey(alert));
      if (!decision) return { alert };
      const budget = alert.status === 'firing' ? evidenceBudgetFor(config, decision) : undefined;
      return budget === undefined ? { alert, decision } : { alert, decision, evidenceBudgetMs: budget };
    });
    const { queued, ...result } = await store.recordAlerts(group, writes, at);
    if (queued.length > 0) deps.onCommitted(queued);

    metrics.alertsReceived.inc({ result: 'new' }, result.newEpisodes);
    metrics.alertsReceived.inc({ result: 'resolved' }, result.resolved);
    metrics.alertsReceived.inc({ result: 'repeat' }, result.repeats);
    for (const { alert, decision } of decided) {
      metrics.decisions.inc({ reason: decision.reason, policy: decision.policy });
      if (decision.reason === 'no_person_for_author') await recordUnreachable(decision);
      log.info(
        {
          fingerprint: alert.fingerprint,
          startsAt: alert.startsAt,
          reason: decision.reason,
          deploy: decision.deployId,
        },
        decision.sentence,
      );
    }
    return { ...result, decided };
  }

  return {
    /**
     * Records a deploy. A code deploy is checked against what ran before (core/rollback.ts): a rollback, whether
     * the event says so (`rollback.claim`, with the deploy `rollbackOf` names) or its version is one that ran
     * before, records what it undid, and the open pages of those deploys get a note. `enqueue` names more outbox
     * rows for it (a code host's enrichment), in the same transaction. `history` is what store.deploysBefore says
     * of the deploy (ROLLBACK_HISTORY of them), when the caller has read it already.
     */
    async receiveDeploy(
      received: Deploy,
      opts: {
        rollback?: { claim: RollbackClaim; named?: Deploy };
        enqueue?: readonly OutboxKind[];
        history?: readonly Deploy[];
      } = {},
    ): Promise<{ created: boolean; deploy: Deploy }> {
      let deploy = received;
      if (kindOf(received) === 'deploy') {
        const history =
          opts.history ??
          (await store.deploysBefore({
            service: received.service,
            environment: received.environment,
            at: received.at,
            limit: ROLLBACK_HISTORY,
          }));
        const undid = rollbackOf(
          received,
          history.filter((d) => d.id !== received.id),
          opts.rollback?.claim,
          opts.rollback?.named,
        );
        if (undid) deploy = { ...received, rollback: undid };
      }
      const sendChangeEvent = deps.sendsChangeEvent(deploy);
      const enqueue = opts.enqueue ?? [];
      const result = await store.saveDeploy(deploy, { sendChangeEvent, enqueue });
      const queued = sendChangeEvent || enqueue.length > 0 || (deploy.rollback?.of.length ?? 0) > 0;
      if (result.created && queued) deps.onCommitted();
      metrics.deploysReceived.inc({ result: result.created ? 'new' : 'repeat' });
      if (result.created) {
        log.info(
          {
            deploy: deploy.id,
            service: deploy.service,
            version: deploy.version,
            stage: deploy.stage,
            ...(deploy.rollback ? { rollbackOf: deploy.rollback.of } : {}),
          },
          deploy.rollback ? 'rollback recorded' : 'deploy recorded',
        );
      }
      return result;
    },

    /** Records an Alertmanager notification; resolves once it is durable, which is when the caller may answer 2xx. */
    async receiveAlerts(group: AlertGroup): Promise<WriteCounts & { decided: DecidedAlert[] }> {
      const at = now();
      const total: WriteCounts & { decided: DecidedAlert[] } = {
        newEpisodes: 0,
        resolved: 0,
        repeats: 0,
        pagesTouched: 0,
        decided: [],
      };
      for (const slice of slicesOf(group.alerts)) {
        const { decided, ...result } = await receiveSlice(group, slice.items, at);
        total.newEpisodes += result.newEpisodes;
        total.resolved += result.resolved;
        total.repeats += result.repeats;
        total.pagesTouched += result.pagesTouched;
        total.decided.push(...decided);
        await nextTurn();
      }
      return total;
    },

    /** The decisions a notification would get, with nothing stored or delivered. */
    async preview(group: AlertGroup): Promise<DecidedAlert[]> {
      const at = now();
      const decided: DecidedAlert[] = [];
      for (const slice of slicesOf(group.alerts)) {
        decided.push(...(await decide(slice.items, at)));
        await nextTurn();
      }
      return decided;
    },
  };
}

export type Pipeline = ReturnType<typeof createPipeline>;
