import express, { type Request, type RequestHandler } from 'express';
import { type Config, policyFor } from '../config/load.js';
import { kindOf } from '../core/change.js';
import { ApiError } from '../errors.js';
import { flaggerDeploy, flaggerPayload, flaggerStage, flaggerTarget } from '../ingest/flagger.js';
import { parseBody } from '../ingest/validate.js';
import type { Pipeline } from '../pipeline.js';
import type { ReadStore } from '../store/store.js';
import { type Caller, readOnly, tokenCheck } from './auth.js';
import type { DeniedLog } from './denied-log.js';
import { deployJson } from './views.js';

// POST /v1/deploys/flagger: Flagger's event webhook (ingest/flagger.ts maps its events onto stages).
//
// Flagger sends no headers but Content-Type (pkg/controller/webhook.go callWebhook), so besides the usual
// bearer header this route accepts the token as `metadata.token` in the webhook spec, which Flagger copies into
// every event it sends. It is registered before the /v1 bearer middleware for that reason, and checks tokens
// with the same constant-time comparison (http/auth.ts). Without a header the body has to be parsed to find the
// token, so such a body may only be small: a Flagger event is well under a kilobyte.

/** The largest body read before its sender is known to hold a token. */
export const UNAUTHENTICATED_BODY_LIMIT_BYTES = 16 * 1024;

export function flaggerRoute(deps: {
  config: Config;
  store: ReadStore;
  pipeline: Pipeline;
  now: () => number;
  denied: DeniedLog;
}): RequestHandler[] {
  const { config, store, pipeline, now, denied } = deps;
  const check = tokenCheck(config.tokens);
  const allow = (req: Request, caller: Caller | undefined, sent: string) => {
    if (!caller) {
      denied(req, { status: 401, reason: sent });
      throw new ApiError('unauthorized', 'A valid token is required: a Bearer header or metadata.token.');
    }
    if (caller.role === 'read') {
      denied(req, { status: 403, reason: 'a read-only token tried to change something', tokenName: caller.name });
      throw readOnly(caller.name);
    }
  };

  const headerAuth: RequestHandler = (req, res, next) => {
    const header = req.get('authorization');
    // With a header, authenticate before reading the body, as every other /v1 route does.
    if (check.open || header === undefined) return next();
    res.set('WWW-Authenticate', 'Bearer realm="changepager"');
    allow(req, check.bearer(header), 'its Authorization header holds no configured token');
    res.locals.authenticated = true;
    next();
  };

  const handle: RequestHandler = async (req, res) => {
    if (!check.open && !res.locals.authenticated) {
      const token = (req.body as { metadata?: { token?: unknown } } | undefined)?.metadata?.token;
      res.set('WWW-Authenticate', 'Bearer realm="changepager"');
      const sent = typeof token === 'string' ? 'its metadata.token holds no configured token' : 'it sent no token';
      allow(req, typeof token === 'string' ? check.token(token) : undefined, sent);
    }
    const payload = parseBody(flaggerPayload, req.body);
    const stage = flaggerStage(payload);
    if ('ignored' in stage) {
      res.json({ result: 'ignored', reason: stage.ignored, deploy: null });
      return;
    }
    const target = flaggerTarget(payload, config.defaultEnvironment);
    const at = now();
    const policy = policyFor(config, target.service);
    // The deploy event Flagger is rolling out: the latest of the service within its correlation window.
    // Later stages find the previous stage (same version, same changes), so a long analysis stays attached.
    const recent = await store.listDeploys({
      service: target.service,
      environment: target.environment,
      since: at - policy.windowMs,
      limit: 1000,
    });
    const source = recent.find(
      (d) =>
        kindOf(d) === 'deploy' &&
        !d.rollback &&
        d.at <= at + policy.skewMs &&
        (!target.version || d.version === target.version),
    );
    if (!source) {
      throw new ApiError(
        'no_deploy_for_rollout',
        `No deploy event of ${target.service} in ${target.environment}${target.version ? ` with version ${target.version}` : ''} in the last ${policy.windowMs / 60_000} min to attach Flagger's ${'rollback' in stage ? 'rollback' : `${stage.stage} stage`} to; send the deploy event from your pipeline first.`,
      );
    }
    const event = flaggerDeploy(payload, stage, source, at);
    const { created, deploy } = await pipeline.receiveDeploy(
      event,
      'rollback' in stage ? { rollback: { claim: { of: source.id }, named: source } } : {},
    );
    res
      .status(created ? 201 : 200)
      .json({ result: created ? 'recorded' : 'repeat', reason: null, deploy: deployJson(deploy) });
  };

  const parse = (limit: number) => express.json({ limit, strict: true, type: () => true });
  const fullBody = parse(config.bodyLimitBytes);
  const smallBody = parse(UNAUTHENTICATED_BODY_LIMIT_BYTES);
  // With a header (or no tokens at all) the sender is known and the usual limit applies; otherwise a larger body
  // is refused before it is read (body-parser checks Content-Length first), and parsed only when small.
  const body: RequestHandler = (req, res, next) => {
    if (check.open || res.locals.authenticated) return fullBody(req, res, next);
    smallBody(req, res, (err?: unknown) => {
      if ((err as { type?: unknown } | undefined)?.type !== 'entity.too.large') return next(err);
      next(
        new ApiError(
          'payload_too_large',
          `Without an Authorization header the body may be at most ${UNAUTHENTICATED_BODY_LIMIT_BYTES / 1024} KiB (the token in metadata.token is only read from a small body); send the token as a Bearer header for a larger one.`,
        ),
      );
    });
  };

  return [headerAuth, body, handle];
}
