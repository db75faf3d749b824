import type { Channel, ChannelDeps, ChannelParts } from '../channel.js';
import type { CodeHostApi } from '../code-host.js';
import { createCodeHost } from '../code-hosts/index.js';
import { createGithubClient } from './client.js';
import { type GithubConfig, githubConfig } from './config.js';
import { githubWebhook } from './webhook.js';

/**
 * Deploys from GitHub's deployment_status webhooks (POST /v1/hooks/github), their pull requests from its REST
 * API, and a comment on the pull request of a paged change.
 */
export const github: Channel<'github', GithubConfig> = {
  name: 'github',
  delivers: ['github_enrich', 'github_comment'],
  config: githubConfig,
  create: (deps) =>
    createGithub({
      ...deps,
      api: createGithubClient({
        apiUrl: deps.settings.apiUrl,
        token: deps.settings.token,
        timeoutMs: deps.settings.timeoutMs,
        now: deps.now,
      }),
    }),
};

/** The channel over a given API client: tests pass one pointed at a stand-in, or a fake. */
export function createGithub(deps: ChannelDeps<GithubConfig> & { api: CodeHostApi }): ChannelParts {
  const { settings } = deps;
  const host = createCodeHost(deps, {
    name: 'github',
    api: deps.api,
    settings,
    compareUrl: (repository, base, head) => `${settings.webUrl}/${repository}/compare/${base}...${head}`,
  });
  return {
    handlers: host.handlers,
    router: githubWebhook({
      secret: settings.webhookSecret,
      bodyLimitBytes: deps.config.bodyLimitBytes,
      log: deps.log,
      receive: host.receive,
    }),
    commentsOn: host.commentsOn,
  };
}
