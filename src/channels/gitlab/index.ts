import { commentKind, enrichKind } from '../../store/store.js';
import type { Channel, ChannelDeps, ChannelParts } from '../channel.js';
import type { CodeHostApi } from '../code-host.js';
import { createCodeHost, type Received } from '../code-hosts/index.js';
import { createGitlabApi } from './client.js';
import { type GitlabSettings, gitlabCompareUrl, gitlabConfig } from './config.js';
import { gitlabHookRouter } from './route.js';

// GitLab as a code host: deployments from its webhook (POST /v1/hooks/gitlab), their merge requests from its
// REST API, and the note about a page on the merge request of the change it was attributed to. What every code
// host does with them (store the deploy, find its changes in the outbox, plan the comment) is code-hosts/.

export const gitlab: Channel<'gitlab', GitlabSettings> = {
  name: 'gitlab',
  delivers: [enrichKind('gitlab'), commentKind('gitlab')],
  config: gitlabConfig,
  create: (deps) =>
    createGitlab(
      deps,
      createGitlabApi({
        apiUrl: deps.settings.apiUrl,
        token: deps.settings.token,
        timeoutMs: deps.settings.timeoutMs,
        now: deps.now,
      }),
    ),
};

/** The channel over a given API client. */
export function createGitlab(deps: ChannelDeps<GitlabSettings>, api: CodeHostApi): ChannelParts {
  const { settings } = deps;
  const web = settings.webUrl;
  const host = createCodeHost(deps, {
    name: 'gitlab',
    api,
    settings,
    // Without a web address (an API behind an address that does not say it), deploys carry no compare link.
    ...(web
      ? { compareUrl: (project: string, base: string, head: string) => gitlabCompareUrl(web, project, base, head) }
      : {}),
  });
  const router = gitlabHookRouter({
    webhookToken: settings.webhookSecret,
    bodyLimitBytes: deps.config.bodyLimitBytes,
    now: deps.now,
    accept: async (event) => answerOf(await host.receive(event)),
  });
  return { handlers: host.handlers, commentsOn: host.commentsOn, router };
}

/**
 * As GitHub's route answers: 201 with the new deploy's id, 200 for one stored before (a replay, another status of
 * the deployment), 202 with the reason for a deployment that is no deploy.
 */
function answerOf(received: Received): { status: number; body: unknown } {
  if (received.outcome === 'ignored') return { status: 202, body: { status: 'ignored', reason: received.why } };
  return {
    status: received.outcome === 'stored' ? 201 : 200,
    body: { status: received.outcome, deploy: received.deploy.id },
  };
}
