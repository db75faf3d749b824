import type { RequestHandler, Router } from 'express';
import { ApiError } from '../../errors.js';
import type { DeploymentEvent } from '../code-host.js';
import { library } from '../library.js';
import { readGitlabHook, tokenMatches } from './webhook.js';

// POST /v1/hooks/gitlab: GitLab's webhook, authenticated by its own secret token (X-Gitlab-Token) rather than
// changepager's bearer tokens, so it is a channel route mounted before the /v1 middleware. The token is checked
// from the headers before a byte of the body is read; a missing or wrong one answers 401 invalid_signature, as
// GitHub's webhook answers a missing or wrong signature (one rule for a code host failing its own proof), with a
// message naming the header and never its value. Then the body is parsed and read into a DeploymentEvent,
// which `accept` stores (and answers for). Anything but a Deployment event is answered 202 and forgotten:
// GitLab shows every answer in the hook's "Recent events", and a 4xx there would look like a broken hook.
// There is no staleness window: GitLab signs nothing and sends no time to check, so anyone who saw one request
// can send it again. That is harmless: a deployment is stored under its GitLab deployment id, and a request
// replayed lands on the deploy already stored (200, nothing changed).

export const GITLAB_HOOK_PATH = '/v1/hooks/gitlab';

export interface GitlabHookDeps {
  webhookToken: string;
  bodyLimitBytes: number;
  now: () => number;
  /** Stores what the deployment means (a deploy, a stage, nothing) and says what to answer. */
  accept(event: DeploymentEvent, context: { commitTitle?: string }): Promise<{ status: number; body: unknown }>;
}

const NO_TOKEN = "No X-Gitlab-Token header: set the webhook's secret token in GitLab to the configured one.";
const WRONG_TOKEN =
  'X-Gitlab-Token is not the secret token configured for the webhook (gitlab.webhook_secret_env or _file).';

/** The 401 of a request whose X-Gitlab-Token is missing or wrong, saying which. */
function refused(sent: string | undefined): ApiError {
  return new ApiError('invalid_signature', sent === undefined ? NO_TOKEN : WRONG_TOKEN);
}

export function gitlabHookRouter(deps: GitlabHookDeps): Router {
  const express = library<typeof import('express')>('express');
  const router = express.Router();

  const tokenFirst: RequestHandler = (req, _res, next) => {
    const sent = req.get('x-gitlab-token');
    if (!tokenMatches(deps.webhookToken, sent)) throw refused(sent);
    next();
  };

  router.post(
    GITLAB_HOOK_PATH,
    tokenFirst,
    express.json({ limit: deps.bodyLimitBytes, strict: true, type: () => true }),
    async (req, res) => {
      const result = readGitlabHook({ header: (name) => req.get(name), body: req.body }, deps.webhookToken, deps.now());
      switch (result.kind) {
        case 'unauthorized':
          throw refused(req.get('x-gitlab-token'));
        case 'invalid':
          throw new ApiError('invalid_payload', undefined, { problems: result.problems });
        case 'ignored':
          res.status(202).json({ status: 'ignored', reason: result.reason });
          return;
        case 'deployment': {
          const answer = await deps.accept(
            result.event,
            result.title === undefined ? {} : { commitTitle: result.title },
          );
          res.status(answer.status).json(answer.body);
          return;
        }
      }
    },
  );
  return router;
}
