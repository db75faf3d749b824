import { z } from 'zod';
import { isoDuration } from '../../config/fields.js';
import type { SecretReader } from '../../config/secrets.js';
import type { EnvironmentRoute, RepositoryRoute } from '../../core/code-host.js';
import { durationMs } from '../../core/time.js';

// What every code host's section of the config has (`github:`, `gitlab:`), besides its own keys: the webhook's
// secret, the repositories (projects) and environments that map to changepager's services, the comments, and how
// long finding a deploy's changes may take. A host's config.ts spreads `codeHostKeys` into its schema and calls
// `resolveCodeHost`.

const environmentRoute = z.union([
  z.string().min(1),
  z.strictObject({
    environment: z.string().min(1),
    /** canary or partial: the host's in_progress state of this environment is a deploy of that stage. */
    stage: z.enum(['canary', 'partial', 'full']).optional(),
  }),
]);

const repositoryRoute = z.strictObject({
  service: z.string().min(1),
  /** The host's environment names, each to changepager's environment (and stage). */
  environments: z.record(z.string().min(1), environmentRoute),
});

/** The keys every code host section has; secrets are named by `webhook_secret_env`/`_file`, `token_env`/`_file`. */
export const codeHostKeys = {
  token_env: z.string().min(1).optional(),
  token_file: z.string().min(1).optional(),
  webhook_secret_env: z.string().min(1).optional(),
  webhook_secret_file: z.string().min(1).optional(),
  /** Comments on the pull or merge request of a paged change; per service under services.<name>.<host>.comments. */
  comments: z.boolean().default(true),
  /** How long changepager keeps asking the host's API for a deploy's changes before it gives up. */
  enrich_within: isoDuration.default('PT1H'),
  request_timeout: isoDuration.default('PT10S'),
  repositories: z.record(z.string().min(1), repositoryRoute).default({}),
};

/** The per-service route: `services.<name>.github.comments: false`. */
export const codeHostRoute = z.strictObject({ comments: z.boolean().optional() });

export interface CodeHostSettings {
  token: string;
  webhookSecret: string;
  comments: boolean;
  /** Services whose route says otherwise than `comments`. */
  commentsByService: Readonly<Record<string, boolean>>;
  enrichWithinMs: number;
  timeoutMs: number;
  repositories: Readonly<Record<string, RepositoryRoute>>;
}

type KeysOut = z.output<z.ZodObject<typeof codeHostKeys>>;

/** The common part of a host's settings; undefined when a secret is missing (the reader recorded it). */
export function resolveCodeHost(
  host: string,
  parsed: {
    section: KeysOut;
    defaults?: { comments?: boolean | undefined };
    services: Readonly<Record<string, { comments?: boolean | undefined }>>;
  },
  secrets: SecretReader,
): CodeHostSettings | undefined {
  const { section } = parsed;
  const token = secrets.secret(section, 'token', host);
  const webhookSecret = secrets.secret(section, 'webhook_secret', host);
  if (!section.token_env && !section.token_file) secrets.problem(`${host}: set token_env or token_file`);
  if (!section.webhook_secret_env && !section.webhook_secret_file) {
    secrets.problem(`${host}: set webhook_secret_env or webhook_secret_file (every webhook is verified with it)`);
  }
  if (!token || !webhookSecret) return undefined;
  const comments = parsed.defaults?.comments ?? section.comments;
  const commentsByService: Record<string, boolean> = {};
  for (const [service, route] of Object.entries(parsed.services)) {
    if (route.comments !== undefined) commentsByService[service] = route.comments;
  }
  const repositories: Record<string, RepositoryRoute> = {};
  for (const [name, repo] of Object.entries(section.repositories)) {
    const environments: Record<string, EnvironmentRoute> = {};
    for (const [env, to] of Object.entries(repo.environments)) {
      environments[env] =
        typeof to === 'string'
          ? { environment: to }
          : { environment: to.environment, ...(to.stage ? { stage: to.stage } : {}) };
    }
    repositories[name] = { service: repo.service, environments };
  }
  return {
    token,
    webhookSecret,
    comments,
    commentsByService,
    enrichWithinMs: durationMs(section.enrich_within) as number,
    timeoutMs: durationMs(section.request_timeout) as number,
    repositories,
  };
}

/** Whether a service's pages get comments on this host. */
export function commentsOn(
  settings: Pick<CodeHostSettings, 'comments' | 'commentsByService'>,
  service: string,
): boolean {
  return settings.commentsByService[service] ?? settings.comments;
}
