import { deployFromHook, placeOf, withoutChanges } from '../../core/code-host.js';
import { ROLLBACK_HISTORY } from '../../core/rollback.js';
import type { CodeHostName, CodeHostSource, Deploy, PolicyMode } from '../../core/types.js';
import type { DeliveryResult, OutboxHandler } from '../../deliver/notifier.js';
import { commentKind, enrichKind, type OutboxKind } from '../../store/store.js';
import type { ChannelDeps } from '../channel.js';
import { type CodeHostApi, CodeHostFailure, type DeploymentEvent } from '../code-host.js';
import { commentHandler } from './comments.js';
import { type CodeHostSettings, commentsOn } from './config.js';

// What every code host does once its folder has verified and parsed a webhook (github/, gitlab/): store the
// deploy at once with what the webhook said, then find its changes through the host's API in an outbox row of
// its own (`<host>_enrich`, lane code_host), and write the comment about a page on the pull or merge request of
// its change (`<host>_comment`). A host's index.ts calls createCodeHost() with its API client and settings and
// mounts its webhook route on `receive`.
//
// Each host has kinds of its own rather than one `comment` kind for all: the registry gives each kind to the
// first channel that delivers it, so with one shared kind GitLab's rows would go to GitHub's channel. The kind is
// chosen from the deploy's host when the row is queued (core/plan.ts, the enrichment below).

export interface CodeHostDefinition {
  name: CodeHostName;
  api: CodeHostApi;
  settings: CodeHostSettings;
  /** The host's web page comparing two commits of a repository. */
  compareUrl?(repository: string, base: string, head: string): string;
}

/** What receiving one webhook deployment came to: the HTTP answer a host's route gives follows from it. */
export type Received =
  | { outcome: 'stored'; deploy: Deploy }
  | { outcome: 'repeat'; deploy: Deploy }
  | { outcome: 'ignored'; why: string };

export interface CodeHost {
  /** Stores the deploy a verified webhook reports (or says why not); throws StorageError when it cannot. */
  receive(event: DeploymentEvent): Promise<Received>;
  handlers: Partial<Record<OutboxKind, OutboxHandler>>;
  commentsOn(deploy: Deploy, policy: { mode: PolicyMode }): boolean;
}

export function createCodeHost(deps: ChannelDeps<unknown>, host: CodeHostDefinition): CodeHost {
  const { store, log, now } = deps;
  const { name, settings } = host;

  async function receive(event: DeploymentEvent): Promise<Received> {
    const place = placeOf(event, settings.repositories);
    const where = { delivery: event.deliveryId, repository: event.repository, environment: event.environment };
    if ('ignored' in place) {
      log.info({ ...where, state: event.state }, `webhook deployment ignored: ${place.ignored}`);
      return { outcome: 'ignored', why: place.ignored };
    }
    // Read once: the latest deploy before this one of another version (a canary of the same commit is the same
    // rollout) is where the changes start, and the same history tells the pipeline whether this is a rollback.
    const history = await store.deploysBefore({ ...place, at: event.at, limit: ROLLBACK_HISTORY });
    const previous = history.find((d) => d.version !== event.sha);
    const compare = host.compareUrl;
    const deploy = deployFromHook(
      event,
      place,
      previous,
      now(),
      compare ? (base, head) => compare(event.repository, base, head) : undefined,
    );
    const result = await deps.receiveDeploy(deploy, { enqueue: [enrichKind(name)], history });
    if (!result.created) return { outcome: 'repeat', deploy: result.deploy };
    log.info(
      { ...where, deploy: deploy.id, service: deploy.service },
      'webhook deployment stored; finding its changes',
    );
    return { outcome: 'stored', deploy: result.deploy };
  }

  /**
   * Where the deploy's changes start: the previous deploy changepager stored, else the host's own list of the
   * environment's deployments (when the host has one).
   */
  async function startOf(source: CodeHostSource): Promise<CodeHostSource> {
    const { api, compareUrl } = host;
    if (source.previousSha !== undefined || !source.hostEnvironment || !api.previousDeployment) return source;
    const previousSha = await api.previousDeployment(source.repository, source.hostEnvironment, source.deploymentId);
    if (previousSha === undefined || previousSha === source.sha) return source;
    return {
      ...source,
      previousSha,
      ...(compareUrl ? { compareUrl: compareUrl(source.repository, previousSha, source.sha) } : {}),
    };
  }

  /** Finds the changes a webhook's deploy shipped; gives up (and says why on the deploy) after enrich_within. */
  const enrich: OutboxHandler = {
    channel: name,
    async handle(ref): Promise<DeliveryResult> {
      const deploy = await store.getDeploy(ref);
      const source = deploy?.source;
      if (!deploy || !source) return { ok: false, retry: false, detail: `deploy ${ref} has no code host source` };
      if (source.changes !== 'pending') return { ok: true, detail: `changes already ${source.changes}` };
      const giveUp = async (detail: string): Promise<DeliveryResult> => {
        const unavailable: CodeHostSource = { ...source, changes: 'unavailable', detail };
        await store.enrichDeploy(ref, { changes: deploy.changes, source: unavailable });
        log.warn({ deploy: ref, repository: source.repository }, `the changes of a deploy stay unknown: ${detail}`);
        return { ok: false, retry: false, detail };
      };
      const none = async (since: CodeHostSource, detail: string): Promise<DeliveryResult> => {
        await store.enrichDeploy(ref, { changes: [], source: { ...since, changes: 'found', detail } });
        return { ok: true, detail };
      };
      // A rollback takes changes away: there is nothing to ask the host.
      const rollback = withoutChanges(deploy, source);
      if (rollback !== undefined) return none(source, rollback);
      try {
        const since = await startOf(source);
        const changes = await host.api.changesOf(source.repository, source.sha, since.previousSha);
        const redeploy = withoutChanges(deploy, since, changes.length);
        if (redeploy !== undefined) return none(since, redeploy);
        if (changes.length === 0) return giveUp(`${name} names no change for commit ${source.sha}`);
        const found: CodeHostSource = {
          ...since,
          changes: 'found',
          detail: `${changes.length} change${changes.length === 1 ? '' : 's'} found`,
        };
        await store.enrichDeploy(ref, { changes, source: found });
        return { ok: true, detail: found.detail as string };
      } catch (err) {
        if (!(err instanceof CodeHostFailure)) throw err; // the worker retries a bug with backoff
        if (!err.retryable) return giveUp(err.message);
        if (now() - deploy.receivedAt >= settings.enrichWithinMs) {
          return giveUp(`${err.message}; still failing after ${Math.round(settings.enrichWithinMs / 60_000)} min`);
        }
        return {
          ok: false,
          retry: true,
          detail: err.message,
          ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
        };
      }
    },
  };

  return {
    receive,
    handlers: {
      [enrichKind(name)]: enrich,
      [commentKind(name)]: commentHandler(deps, host),
    },
    // Shadow mode behaves as if changepager were not there: it writes on no pull request.
    commentsOn: (deploy, policy) =>
      deploy.source?.host === name && policy.mode !== 'shadow' && commentsOn(settings, deploy.service),
  };
}
