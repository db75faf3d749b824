import type { Router } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ApiError } from '../../errors.js';
import { parseBody } from '../../ingest/validate.js';
import type { DeploymentEvent } from '../code-host.js';
import type { Received } from '../code-hosts/index.js';
import { library } from '../library.js';

// POST /v1/hooks/github: GitHub's repository (or organisation) webhook. The signature is checked over the raw
// body before anything is parsed (X-Hub-Signature-256, HMAC-SHA256 with the webhook's secret, compared in constant
// time by @octokit/webhooks-methods), so this router is mounted before the app's JSON parser. A request without
// the header is refused before its body is read at all. A failed check answers 401 invalid_signature, as GitLab's
// webhook does, with a message naming the header (never its value). GitHub signs no
// timestamp, so there is no staleness window: a replayed delivery lands on the deploy its deployment already made
// (core/code-host.ts hookDeployId) and changes nothing.
// https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries

/** The part of a deployment_status event changepager reads. */
const deploymentStatusEvent = z.object({
  deployment_status: z.object({
    state: z.string().min(1),
    created_at: z.iso.datetime({ offset: true }),
    target_url: z.string().nullish(),
    log_url: z.string().nullish(),
  }),
  deployment: z.object({
    id: z.number().int(),
    sha: z.string().regex(/^[0-9a-f]{7,64}$/, 'must be a commit sha'),
    ref: z.string().nullish(),
    environment: z.string().min(1),
    creator: z.object({ login: z.string() }).nullish(),
  }),
  repository: z.object({ full_name: z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'must be owner/name') }),
});

/** A deployment_status payload as a DeploymentEvent; throws invalid_payload listing every problem. */
export function parseDeploymentStatus(deliveryId: string, body: unknown): DeploymentEvent {
  const p = parseBody(deploymentStatusEvent, body);
  const state = p.deployment_status.state;
  const event: DeploymentEvent = {
    host: 'github',
    deliveryId,
    repository: p.repository.full_name,
    environment: p.deployment.environment,
    sha: p.deployment.sha,
    state: state === 'success' ? 'success' : state === 'in_progress' ? 'in_progress' : 'other',
    deploymentId: String(p.deployment.id),
    at: Date.parse(p.deployment_status.created_at),
  };
  if (p.deployment.ref) event.ref = p.deployment.ref;
  const url = p.deployment_status.log_url ?? p.deployment_status.target_url;
  if (url) event.url = url;
  if (p.deployment.creator?.login) event.deployer = { login: p.deployment.creator.login };
  return event;
}

const NO_SIGNATURE =
  "No X-Hub-Signature-256 header: GitHub signs each delivery with the webhook's secret; set one on the webhook.";
const WRONG_SIGNATURE =
  'X-Hub-Signature-256 does not match the body signed with the configured secret (github.webhook_secret_env or _file).';

export function githubWebhook(deps: {
  secret: string;
  bodyLimitBytes: number;
  log: Logger;
  receive: (event: DeploymentEvent) => Promise<Received>;
}): Router {
  const express = library<typeof import('express')>('express');
  // ESM only, so imported when the first webhook arrives rather than required when the channel is created.
  const methods = import('@octokit/webhooks-methods');
  const router = express.Router();
  router.post(
    '/v1/hooks/github',
    (req, _res, next) => {
      // The signature needs the body; its absence does not.
      if (!req.get('x-hub-signature-256')) throw new ApiError('invalid_signature', NO_SIGNATURE);
      next();
    },
    express.raw({ type: () => true, limit: deps.bodyLimitBytes }),
    async (req, res, next) => {
      try {
        const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
        const signature = req.get('x-hub-signature-256') ?? '';
        const { verify } = await methods;
        if (!(await verify(deps.secret, raw, signature).catch(() => false))) {
          throw new ApiError('invalid_signature', WRONG_SIGNATURE);
        }
        const event = req.get('x-github-event') ?? '';
        const delivery = req.get('x-github-delivery') ?? '';
        if (event === 'ping') {
          res.status(200).json({ status: 'pong' });
          return;
        }
        if (event !== 'deployment_status') {
          res.status(202).json({ status: 'ignored', reason: `event ${event || '(none)'} is not deployment_status` });
          return;
        }
        let body: unknown;
        try {
          body = JSON.parse(raw);
        } catch (err) {
          throw new ApiError('invalid_json', undefined, { problems: [{ path: '', message: (err as Error).message }] });
        }
        if (!delivery) {
          throw new ApiError('invalid_payload', undefined, {
            problems: [{ path: 'X-GitHub-Delivery', message: 'the delivery id header is missing' }],
          });
        }
        const received = await deps.receive(parseDeploymentStatus(delivery, body));
        if (received.outcome === 'ignored') {
          res.status(202).json({ status: 'ignored', reason: received.why });
          return;
        }
        res
          .status(received.outcome === 'stored' ? 201 : 200)
          .json({ status: received.outcome, deploy: received.deploy.id });
      } catch (err) {
        next(err);
      }
    },
  );
  return router;
}
