import { z } from 'zod';
import { baseUrl } from '../../config/fields.js';
import { channelConfig } from '../channel.js';
import { type CodeHostSettings, codeHostKeys, codeHostRoute, resolveCodeHost } from '../code-hosts/config.js';

// The `github:` section. Without it, POST /v1/hooks/github is no route and no pull request gets a comment.

export interface GithubConfig extends CodeHostSettings {
  /** The REST API's base URL: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server. */
  apiUrl: string;
  /** Where people open repositories, for compare links: https://github.com, or https://HOST. */
  webUrl: string;
}

const section = z.strictObject({
  ...codeHostKeys,
  api_url: baseUrl.default('https://api.github.com'),
  /** The web address of the same GitHub; by default derived from api_url. */
  web_url: baseUrl.optional(),
});

/** github.com's API lives on its own host; GitHub Enterprise Server's under /api/v3 of the web host. */
export function webUrlOf(apiUrl: string): string {
  const url = new URL(apiUrl);
  if (url.hostname === 'api.github.com') return 'https://github.com';
  return apiUrl.replace(/\/api\/v3$/, '');
}

export const githubConfig = channelConfig({
  section,
  route: codeHostRoute,
  resolve(parsed, secrets): GithubConfig | undefined {
    const common = resolveCodeHost('github', parsed, secrets);
    if (!common) return undefined;
    const apiUrl = parsed.section.api_url;
    return { ...common, apiUrl, webUrl: parsed.section.web_url ?? webUrlOf(apiUrl) };
  },
});
