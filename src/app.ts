import express, { type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { Config } from './config/load.js';
import type { Deploy } from './core/types.js';
import { ApiError } from './errors.js';
import type { PreviewedAlert } from './evidence/preview.js';
import type { RolloutEvidence } from './evidence/rollout.js';
import { bearerAuth, metricsAuth } from './http/auth.js';
import { createDeniedLog } from './http/denied-log.js';
import { errorHandler } from './http/errors.js';
import { flaggerRoute } from './http/flagger.js';
import { alertRoute, deploysRoute, unmappedRoute } from './http/lists.js';
import { openApiDocument } from './http/openapi.js';
import { precisionRoute } from './http/precision.js';
import { statsRoute } from './http/stats.js';
import { verdictRoute } from './http/verdict.js';
import { decidedJson, deployJson, evidenceJson } from './http/views.js';
import { parseAlertGroup } from './ingest/alertmanager.js';
import { deployEvent, rollbackClaim, toDeploy } from './ingest/deploy.js';
import { parseBody } from './ingest/validate.js';
import type { Metrics } from './metrics.js';
import type { DecidedAlert, Pipeline } from './pipeline.js';
import type { Store } from './store/store.js';
import type { LoginLimiter } from './ui/login-limiter.js';
import { createUi, timelineApi } from './ui/routes.js';

export interface AppDeps {
  config: Config;
  store: Store;
  pipeline: Pipeline;
  metrics: Metrics;
  log: Logger;
  now: () => number;
  /** The channels' routes (Slack's interactivity): mounted before any body parser, as Slack signs the raw body. */
  channelRouters?: readonly express.Router[];
  /** The login form's rate limit. */
  logins: LoginLimiter;
  /** Judges the evidence of the decisions a preview would page a person with (asks Prometheus); absent without one. */
  previewEvidence?: (decided: DecidedAlert[]) => Promise<{ decided: PreviewedAlert[]; queried: number }>;
  /** The metrics of a rollout for the canary gate (asks Prometheus); absent without one. */
  rolloutEvidence?: RolloutEvidence;
}

/** The express app. It never listens: main.ts does, and tests drive it with supertest. */
export function createApp(deps: AppDeps): express.Express {
  const { config, store, pipeline, metrics, log, now } = deps;
  const app = express();
  app.disable('x-powered-by');
  // Only a configured proxy's X-Forwarded-For names the client (req.ip): anyone else could pick their address.
  app.set('trust proxy', config.trustedProxies.length > 0 ? [...config.trustedProxies] : false);
  app.use(observe(metrics, log));
  const denied = createDeniedLog(log.child({ component: 'auth' }), config.deniedLogIntervalMs, now);
  for (const router of deps.channelRouters ?? []) app.use(router);
  // A code host's webhook that fails its own proof (signature or secret token) is refused inside its channel's
  // router; it is logged like every other refusal, so that a wrong secret shows on this side as well.
  app.use((err: unknown, req: express.Request, _res: express.Response, next: express.NextFunction) => {
    if (err instanceof ApiError && err.code === 'invalid_signature') denied(req, { status: 401, reason: err.message });
    next(err);
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await store.ping();
      const outbox = await store.outboxStats(now());
      res.json({
        status: 'ready',
        outbox: { depth: outbox.depth, oldestUndeliveredAgeSeconds: outbox.oldestUndeliveredAgeMs / 1000 },
      });
    } catch (err) {
      log.error({ err }, 'readiness: the database cannot be written');
      res.status(503).json({ status: 'unavailable', reason: 'the database cannot be written' });
    }
  });
  app.get('/metrics', metricsAuth(config.metrics.token), async (_req, res) => {
    // end(), not send(): a scrape needs no ETag, and hashing every scrape is work for nothing.
    res.type(metrics.registry.contentType).end(await metrics.render());
  });

  const v1 = express.Router();
  v1.use((req, res, next) => {
    // express resets req.baseUrl once the router is done; the request metric wants the full route.
    res.locals.routeBase = req.baseUrl;
    next();
  });
  // The API description is public (it holds no data), and Flagger, which cannot send headers, may authenticate
  // in its body (http/flagger.ts). Every other route starts with `auth`: inside the route, so that a refusal is
  // logged and counted under the route it was for (test/security walks every route to check that none lacks it).
  v1.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });
  v1.post('/deploys/flagger', ...flaggerRoute({ config, store, pipeline, now, denied }));
  const auth = bearerAuth(config.tokens, { now, sessions: store, denied });
  const json = [requireJson, express.json({ limit: config.bodyLimitBytes, strict: true, type: () => true })];

  v1.post('/alertmanager', auth, ...json, async (req, res) => {
    const group = await parseAlertGroup(req.body);
    const result = await pipeline.receiveAlerts(group);
    res.json({
      accepted: group.alerts.length,
      newEpisodes: result.newEpisodes,
      resolved: result.resolved,
      repeats: result.repeats,
      ...decisionsShown(result.decided),
    });
  });

  v1.post('/preview', auth, ...json, async (req, res) => {
    const group = await parseAlertGroup(req.body);
    const decided = await pipeline.preview(group);
    if (!deps.previewEvidence) {
      res.json({ ...previewedShown(decided), prometheusQueries: 0 });
      return;
    }
    // The evidence as it would be judged before the person is paged: this asks Prometheus, and says how often.
    const previewed = await deps.previewEvidence(decided);
    res.json({ ...previewedShown(previewed.decided), prometheusQueries: previewed.queried });
  });

  v1.post('/deploys', auth, ...json, async (req, res) => {
    const event = parseBody(deployEvent, req.body);
    const deploy = toDeploy(event, { environment: config.defaultEnvironment, now: now() });
    const claim = rollbackClaim(event);
    let named: Deploy | undefined;
    if (claim && 'of' in claim) {
      named = await store.getDeploy(claim.of);
      if (
        !named ||
        named.service !== deploy.service ||
        named.environment !== deploy.environment ||
        (named.kind ?? 'deploy') !== 'deploy'
      ) {
        throw new ApiError(
          'unknown_rollback_target',
          `rollbackOf names "${claim.of}", which is no deploy of ${deploy.service} in ${deploy.environment} changepager knows: send the id of the deploy being rolled back, or "rollback": true to let changepager find it.`,
          { problems: [{ path: 'rollbackOf', message: 'no deploy of this service and environment has this id' }] },
        );
      }
    }
    const { created, deploy: stored } = await pipeline.receiveDeploy(
      deploy,
      claim ? { rollback: { claim, ...(named ? { named } : {}) } } : {},
    );
    res
      .status(created ? 201 : 200)
      .location(`/v1/deploys/${encodeURIComponent(stored.id)}`)
      .json(deployJson(stored));
  });

  v1.get('/deploys', auth, deploysRoute({ store, now }));

  v1.get(
    '/deploys/:id/verdict',
    auth,
    verdictRoute({ config, store, now, ...(deps.rolloutEvidence ? { evidence: deps.rolloutEvidence } : {}) }),
  );
  v1.get('/stats', auth, statsRoute({ store, now }));
  v1.get('/precision', auth, precisionRoute({ store, now }));
  v1.get('/timeline', auth, timelineApi({ config, store, now, log }));

  v1.get('/deploys/:id', auth, async (req, res) => {
    const id = String(req.params.id);
    const deploy = await store.getDeploy(id);
    if (!deploy) throw new ApiError('not_found', `No deploy with id "${id}".`);
    res.json(deployJson(deploy));
  });

  v1.get('/alerts/:fingerprint', auth, alertRoute({ store }));
  v1.get('/people/unmapped', auth, unmappedRoute({ store }));

  // A path under /v1 that is no route: without a token 401 as before (no route list for strangers), else 404.
  v1.use(auth);
  app.use('/v1', v1);
  // The timeline page (src/ui): /, /services/{name}, /login, /logout and its static files under /ui/.
  app.use(createUi({ config, store, now, log, metrics, logins: deps.logins }));
  app.use((req, _res, next) => next(new ApiError('not_found', `No route ${req.method} ${req.path}.`)));
  app.use(errorHandler(log));
  return app;
}

/**
 * The decisions an answer lists: the first DECISIONS_SHOWN, so that a notification of thousands of new alerts
 * gets an answer of bounded size. Each one is in GET /v1/alerts/{fingerprint}.
 */
export const DECISIONS_SHOWN = 1000;

function decisionsShown(decided: readonly DecidedAlert[]) {
  return {
    decisions: decided.slice(0, DECISIONS_SHOWN).map(decidedJson),
    decisionsNotShown: Math.max(0, decided.length - DECISIONS_SHOWN),
  };
}

/** A preview's decisions, as decisionsShown, each with the evidence judged for it (null when none was). */
function previewedShown(decided: readonly PreviewedAlert[]) {
  return {
    decisions: decided
      .slice(0, DECISIONS_SHOWN)
      .map((d) => ({ ...decidedJson(d), evidence: d.evidence ? evidenceJson(d.evidence) : null })),
    decisionsNotShown: Math.max(0, decided.length - DECISIONS_SHOWN),
  };
}

const requireJson: RequestHandler = (req, _res, next) => {
  next(req.is('application/json') ? undefined : new ApiError('unsupported_media_type'));
};

/** Request metrics and one structured log line per request (never headers or bodies: they carry secrets). */
function observe(metrics: Metrics, log: Logger): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = req.route ? `${res.locals.routeBase ?? ''}${req.route.path}` : 'unmatched';
      metrics.httpRequests.observe({ method: req.method, route, code: String(res.statusCode) }, seconds);
      log.debug({ method: req.method, route, status: res.statusCode, ms: Math.round(seconds * 1000) }, 'request');
    });
    next();
  };
}
