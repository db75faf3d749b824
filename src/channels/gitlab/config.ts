import { z } from 'zod';
import { baseUrl } from '../../config/fields.js';
import { channelConfig } from '../channel.js';
import { type CodeHostSettings, codeHostKeys, codeHostRoute, resolveCodeHost } from '../code-hosts/config.js';

// The `gitlab:` section: the keys every code host has (the token, the webhook's secret token, the projects under
// `repositories`, comments, enrich_within, request_timeout), GitLab's API address for a self-managed instance,
// and its web address for compare links. Without the section GitLab is off: POST /v1/hooks/gitlab answers 404.

export interface GitlabSettings extends CodeHostSettings {
  /** `https://gitlab.com/api/v4`, or `https://HOST/api/v4`; without a trailing slash. */
  apiUrl: string;
  /** Where people open projects, for compare links; undefined when it cannot be told from apiUrl. */
  webUrl?: string;
}

const section = z.strictObject({
  ...codeHostKeys,
  /** The REST API's base URL: `https://HOST/api/v4` for a self-managed instance; tests point it at a stand-in. */
  api_url: baseUrl.default('https://gitlab.com/api/v4'),
  /** The web address of the same GitLab; by default api_url without `/api/v4`. */
  web_url: baseUrl.optional(),
});

export const gitlabConfig = channelConfig({
  section,
  route: codeHostRoute,
  resolve(parsed, secrets): GitlabSettings | undefined {
    const common = resolveCodeHost('gitlab', parsed, secrets);
    if (!common) return undefined;
    const apiUrl = parsed.section.api_url;
    const webUrl = parsed.section.web_url ?? gitlabWebUrl(apiUrl);
    return webUrl ? { ...common, apiUrl, webUrl } : { ...common, apiUrl };
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
