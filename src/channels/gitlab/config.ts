import { z } from 'zod';
import { baseUrl } from '../../config/fields.js';
import { channelConfig } from '../channel.js';
import { type CodeHostSettings, codeHostKeys, codeHostRoute, resolveCodeHost } from '../code-hosts/config.js';

// The `gitlab:` section: the keys every code host has (the token, the webhook's secret token, the projects under
// `repositories`, comments, enrich_within, request_timeout) and GitLab's API address, for a self-managed
// instance. Without the section GitLab is off: POST /v1/hooks/gitlab does not exist.

export interface GitlabSettings extends CodeHostSettings {
  /** `https://gitlab.com/api/v4`, without a trailing slash. */
  apiUrl: string;
}

const section = z.strictObject({
  ...codeHostKeys,
  /** The REST API's base URL: `https://HOST/api/v4` for a self-managed instance; tests point it at a stand-in. */
  api_url: baseUrl.default('https://gitlab.com/api/v4'),
});

export const gitlabConfig = channelConfig({
  section,
  route: codeHostRoute,
  resolve(parsed, secrets): GitlabSettings | undefined {
    const common = resolveCodeHost('gitlab', parsed, secrets);
    return common ? { ...common, apiUrl: parsed.section.api_url } : undefined;
  },
});

/**
 * The instance's web address, from its API's (`https://HOST/api/v4` → `https://HOST`); undefined when the API's
 * address does not end in `/api/v4`, so the web address cannot be told from it.
 */
export function gitlabWebUrl(apiUrl: string): string | undefined {
  return /^(.*)\/api\/v4$/.exec(apiUrl)?.[1];
}

/** GitLab's page comparing two commits of a project: `https://HOST/<project>/-/compare/<base>...<head>`. */
export function gitlabCompareUrl(webUrl: string, project: string, base: string, head: string): string {
  return `${webUrl}/${project}/-/compare/${base}...${head}`;
}
