import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';

// The gitlab: section, read whole at start-up: the common code host keys and GitLab's addresses, secrets from
// the environment, every problem with its path.

const ENV = { GITLAB_TOKEN: 'glpat-config', GITLAB_HOOK: 'hook-secret-config' };
const load = (section: string, env: Record<string, string> = ENV) =>
  parseConfig(`gitlab: ${section}\n`, { path: 'test.yaml', env });
const problemsOf = (fn: () => unknown): readonly string[] => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
};
const SECRETS = 'token_env: GITLAB_TOKEN, webhook_secret_env: GITLAB_HOOK';

describe('the gitlab section', () => {
  it('gitlab.com by default, with its web address for compare links', () => {
    const gitlab = load(`{ ${SECRETS} }`).gitlab;
    expect(gitlab).toMatchObject({
      token: 'glpat-config',
      webhookSecret: 'hook-secret-config',
      apiUrl: 'https://gitlab.com/api/v4',
      webUrl: 'https://gitlab.com',
      comments: true,
      enrichWithinMs: 3_600_000,
      timeoutMs: 10_000,
      repositories: {},
    });
  });

  it.each([
    [
      'a self-managed instance: its web address from its API address',
      'https://git.example.com/api/v4/',
      undefined,
      'https://git.example.com',
    ],
    ['a web address given', 'https://api.git.example.com/api/v4', 'https://git.example.com', 'https://git.example.com'],
    [
      'an API address that does not say where the web is: no compare links',
      'http://127.0.0.1:9/gitlab',
      undefined,
      undefined,
    ],
  ])('%s', (_intent, api, web, expected) => {
    const gitlab = load(`{ ${SECRETS}, api_url: "${api}"${web ? `, web_url: "${web}"` : ''} }`).gitlab;
    expect(gitlab?.apiUrl).toBe(api.replace(/\/$/, ''));
    expect(gitlab?.webUrl).toBe(expected);
  });

  it('maps projects by their path with namespace, environments by name or with a stage', () => {
    const gitlab = load(
      `{ ${SECRETS}, repositories: { group/sub/shop: { service: shop, environments: { production: prod, canary: { environment: prod, stage: canary } } } } }`,
    ).gitlab;
    expect(gitlab?.repositories).toEqual({
      'group/sub/shop': {
        service: 'shop',
        environments: { production: { environment: 'prod' }, canary: { environment: 'prod', stage: 'canary' } },
      },
    });
  });

  it('names every problem of the section at once, each with its path', () => {
    const problems = problemsOf(() => load('{ webhook_token_env: X, api_url: "https://gitlab.com/api/v4?x=1" }', {}));
    expect(problems).toEqual([
      'gitlab.api_url: must not have a query or a fragment: paths are appended to it',
      'gitlab: Unrecognized key: "webhook_token_env"',
    ]);
  });

  it('both secrets are required', () => {
    const problems = problemsOf(() => load('{ comments: false }', {}));
    expect(problems).toEqual([
      'gitlab: set token_env or token_file',
      'gitlab: set webhook_secret_env or webhook_secret_file (every webhook is verified with it)',
    ]);
  });

  it('a secret named but not set is a problem with its path', () => {
    const problems = problemsOf(() => load(`{ ${SECRETS} }`, { GITLAB_TOKEN: 'glpat-config' }));
    expect(problems).toEqual(['gitlab.webhook_secret_env: environment variable GITLAB_HOOK is not set or empty']);
  });

  it('comments off for one service', () => {
    const config = parseConfig(`gitlab: { ${SECRETS} }\nservices: { checkout: { gitlab: { comments: false } } }\n`, {
      path: 'test.yaml',
      env: ENV,
    });
    expect(config.gitlab?.commentsByService).toEqual({ checkout: false });
  });
});
