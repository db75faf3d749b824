import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';

// The `github:` section as a user writes it: what it resolves to, and what a mistake in it says.

const ENV = { GH_TOKEN: 'ghp_token', GH_SECRET: 'webhook-secret' };
const parse = (yaml: string) => parseConfig(yaml, { path: 'x.yaml', env: ENV });
function problems(yaml: string): readonly string[] {
  try {
    parse(yaml);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('no problem reported');
}

describe('the github section', () => {
  it('maps repositories and environments, in the short and the long form, and reads its secrets', () => {
    const config = parse(`
github:
  token_env: GH_TOKEN
  webhook_secret_env: GH_SECRET
  repositories:
    acme/checkout:
      service: checkout
      environments:
        production: production
        production-canary: { environment: production, stage: canary }
`);
    expect(config.github).toMatchObject({
      token: 'ghp_token',
      webhookSecret: 'webhook-secret',
      apiUrl: 'https://api.github.com',
      webUrl: 'https://github.com',
      comments: true,
      enrichWithinMs: 3_600_000,
      repositories: {
        'acme/checkout': {
          service: 'checkout',
          environments: {
            production: { environment: 'production' },
            'production-canary': { environment: 'production', stage: 'canary' },
          },
        },
      },
    });
  });

  it('turns comments off globally, by default, or for one service', () => {
    const config = parse(`
github: { token_env: GH_TOKEN, webhook_secret_env: GH_SECRET, comments: true }
defaults: { github: { comments: false } }
services:
  checkout: { github: { comments: true } }
`);
    expect(config.github?.comments).toBe(false);
    expect(config.github?.commentsByService).toEqual({ checkout: true });
  });

  it("takes GitHub Enterprise Server's API under /api/v3, with its web address for compare links", () => {
    const config = parse(
      'github: { token_env: GH_TOKEN, webhook_secret_env: GH_SECRET, api_url: "https://git.acme.example/api/v3" }',
    );
    expect(config.github?.apiUrl).toBe('https://git.acme.example/api/v3');
    expect(config.github?.webUrl).toBe('https://git.acme.example');
  });

  it.each([
    {
      intent: 'no token and no secret',
      yaml: 'github: {}',
      says: ['set token_env or token_file', 'set webhook_secret_env'],
    },
    {
      intent: 'a secret from an unset variable',
      yaml: 'github: { token_env: GH_TOKEN, webhook_secret_env: NOPE }',
      says: ['github.webhook_secret_env: environment variable NOPE is not set or empty'],
    },
    {
      intent: 'a repository without environments',
      yaml: 'github: { token_env: GH_TOKEN, webhook_secret_env: GH_SECRET, repositories: { acme/x: { service: x } } }',
      says: ['github.repositories.acme/x.environments'],
    },
    {
      intent: 'an unknown stage',
      yaml: 'github: { token_env: GH_TOKEN, webhook_secret_env: GH_SECRET, repositories: { acme/x: { service: x, environments: { p: { environment: p, stage: half } } } } }',
      says: ['github.repositories.acme/x.environments.p'],
    },
  ])('reports $intent with its path', ({ yaml, says }) => {
    const found = problems(yaml).join('\n');
    for (const s of says) expect(found).toContain(s);
    expect(found).not.toContain('ghp_token');
  });
});
