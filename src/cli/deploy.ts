import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { Identity } from '../core/types.js';
import { type CiFacts, ciFacts } from './ci-env.js';
import {
  type Answer,
  type CliIo,
  describeFailure,
  endpoint,
  exchange,
  networkFailure,
  retryable,
  usageProblems,
} from './io.js';

export const DEPLOY_USAGE = `usage: changepager deploy --service NAME [options]

Tells changepager what just shipped (POST /v1/deploys). Prints the event id on stdout.
In GitHub Actions and GitLab CI the version, author, merger, commit and pull/merge request
come from the job's environment; a flag given here always wins.

  --url URL              changepager's address        (else CHANGEPAGER_URL, else http://127.0.0.1:8080)
  --token TOKEN          API token                    (else CHANGEPAGER_TOKEN)
  --service NAME         the service that shipped (required)
  --environment NAME     default: CI_ENVIRONMENT_NAME, else the server's default environment
  --version V            required for a deploy        (else GITHUB_SHA / CI_COMMIT_SHA)
  --previous-version V
  --author WHO           email or login of the change's author
  --author-name NAME
  --merged-by WHO        email or login of whoever merged it
  --pr-url URL           pull/merge request (--pr-number N, --pr-title T)
  --commit SHA           (--commit-url URL, --message TEXT)
  --stage S              canary | partial | full (default full)
  --percent N            share of traffic or hosts for a partial stage
  --hosts H1,H2          the hosts a canary went to (repeatable)
  --id ID                idempotency key (default: derived from the CI run, else random)
  --at TIME              RFC 3339 time it shipped (default: when changepager receives it)
  --rollback             this deploy is a rollback to --version; no author needed (changepager finds what it undid)
  --rollback-of ID       this deploy rolls back the deploy with this id (implies --rollback)
  --kind K               deploy (default) | flag | config
  --flag KEY --from V --to V       for --kind flag (true/false/numbers are sent as such)
  --config-key KEY --description TEXT   for --kind config
  --retries N            retries on 5xx or network failure (default 3; the id makes them safe)
  --dry-run              print the event instead of sending it
  --json                 print the stored event instead of its id`;

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  service: { type: 'string' },
  environment: { type: 'string' },
  version: { type: 'string' },
  'previous-version': { type: 'string' },
  author: { type: 'string' },
  'author-name': { type: 'string' },
  'merged-by': { type: 'string' },
  'pr-url': { type: 'string' },
  'pr-number': { type: 'string' },
  'pr-title': { type: 'string' },
  commit: { type: 'string' },
  'commit-url': { type: 'string' },
  message: { type: 'string' },
  stage: { type: 'string' },
  percent: { type: 'string' },
  hosts: { type: 'string', multiple: true },
  id: { type: 'string' },
  at: { type: 'string' },
  kind: { type: 'string' },
  rollback: { type: 'boolean' },
  'rollback-of': { type: 'string' },
  flag: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  'config-key': { type: 'string' },
  description: { type: 'string' },
  retries: { type: 'string' },
  'dry-run': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** `changepager deploy …`: 0 when stored (new or repeat), 1 when the server refused it or could not be reached. */
export async function runDeploy(argv: string[], io: CliIo): Promise<number> {
  let values: Values;
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    io.stderr(`changepager deploy: ${(err as Error).message}\n\n${DEPLOY_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout(`${DEPLOY_USAGE}\n`);
    return 0;
  }
  // Every usage problem at once, the address included: a pipeline author fixes the step in one go.
  const problems: string[] = [];
  const event = buildEvent(values, ciFacts(io.env, io.readFile), problems);
  const target = values['dry-run'] ? undefined : endpoint(values, io.env, problems);
  const retries = values.retries === undefined ? 3 : Number(values.retries);
  if (!(Number.isInteger(retries) && retries >= 0 && retries <= 10))
    problems.push(`--retries must be a whole number from 0 to 10, not "${values.retries}"`);
  if (problems.length > 0) {
    io.stderr(`changepager deploy: ${usageProblems(problems)}\n(changepager deploy --help lists every option)\n`);
    return 2;
  }
  if (!target) {
    io.stdout(`${JSON.stringify(event, null, 2)}\n`);
    return 0;
  }

  let answer: Answer | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      answer = await exchange(io, target, 'POST', '/v1/deploys', event);
      if (!retryable(answer.status) || attempt >= retries) break;
      io.stderr(`changepager deploy: ${describeFailure(answer)}; retrying\n`);
    } catch (err) {
      if (attempt >= retries) {
        io.stderr(`changepager deploy: ${networkFailure(target, err)}\n`);
        return 1;
      }
      io.stderr(`changepager deploy: ${networkFailure(target, err)}; retrying\n`);
    }
    await io.sleep(Math.min(1000 * 2 ** attempt, 10_000));
  }
  if (answer.status !== 200 && answer.status !== 201) {
    io.stderr(`changepager deploy: ${describeFailure(answer)}\n`);
    return 1;
  }
  const stored = answer.body as { id: string; service: string; version: string; stage: string };
  io.stderr(
    `changepager: ${answer.status === 201 ? 'recorded' : 'already had'} ${stored.service} ${stored.version} (${stored.stage}) as ${stored.id}\n`,
  );
  io.stdout(values.json ? `${JSON.stringify(answer.body, null, 2)}\n` : `${stored.id}\n`);
  return 0;
}

/** The event to send: flags first, the CI environment for what they leave out. Usage problems go to `problems`. */
export function buildEvent(v: Values, ci: CiFacts | undefined, problems: string[]): Record<string, unknown> {
  const kind = v.kind ?? 'deploy';
  if (!['deploy', 'flag', 'config'].includes(kind))
    problems.push(`--kind must be deploy, flag or config, not "${kind}"`);
  const service = v.service;
  if (!service) problems.push('--service is required');
  const stage = v.stage ?? 'full';
  if (!['canary', 'partial', 'full'].includes(stage))
    problems.push(`--stage must be canary, partial or full, not "${stage}"`);
  const percent = v.percent === undefined ? undefined : Number(v.percent);
  if (percent !== undefined && !(percent >= 0 && percent <= 100))
    problems.push('--percent must be a number from 0 to 100');
  const version = v.version ?? (kind === 'deploy' ? ci?.version : undefined);
  if (kind === 'deploy' && !version) problems.push('--version is required outside GitHub Actions and GitLab CI');
  const rollback = v.rollback === true || v['rollback-of'] !== undefined;
  if (rollback && kind !== 'deploy') problems.push('--rollback and --rollback-of are for deploys only');
  // A rollback ships nobody's change: it names none, unless an author is given.
  const author = v.author ? identity(v.author, v['author-name']) : rollback ? undefined : ci?.author;
  if (!author && !rollback) problems.push('--author is required outside GitHub Actions and GitLab CI');
  if (kind === 'flag' && (!v.flag || v.to === undefined)) problems.push('--kind flag needs --flag KEY and --to VALUE');
  if (kind === 'config' && !v['config-key'] && !v.description)
    problems.push('--kind config needs --config-key or --description');

  const hosts = (v.hosts ?? [])
    .flatMap((h) => h.split(','))
    .map((h) => h.trim())
    .filter(Boolean);
  const environment = v.environment ?? ci?.environment;
  const event: Record<string, unknown> = {
    id: v.id ?? defaultId(ci, { service: service as string, environment, stage, percent }),
    ...(kind === 'deploy' ? {} : { kind }),
    service,
    ...(environment ? { environment } : {}),
    ...(version ? { version } : {}),
    ...(v['previous-version'] ? { previousVersion: v['previous-version'] } : {}),
    stage,
    ...(percent === undefined ? {} : { percent }),
    ...(hosts.length > 0 ? { hosts } : {}),
    ...(v.at ? { at: v.at } : {}),
  };
  if (rollback) {
    if (v['rollback-of'] !== undefined) event.rollbackOf = v['rollback-of'];
    else event.rollback = true;
    if (!author) {
      event.changes = [];
      return event;
    }
  }
  if (kind === 'flag') {
    event.flag = {
      key: v.flag,
      ...(v.from === undefined ? {} : { from: flagValue(v.from) }),
      to: flagValue(v.to as string),
    };
    event.author = author;
    return event;
  }
  if (kind === 'config') {
    event.config = {
      ...(v['config-key'] ? { key: v['config-key'] } : {}),
      ...(v.description ? { description: v.description } : {}),
    };
    event.author = author;
    return event;
  }
  const mergedBy = v['merged-by'] ? identity(v['merged-by']) : ci?.mergedBy;
  const commit = {
    ...(v.commit ? { sha: v.commit } : ci?.commit),
    ...(v['commit-url'] ? { url: v['commit-url'] } : {}),
    ...(v.message ? { message: v.message } : {}),
  };
  const fromCi = v['pr-url'] || v['pr-number'] ? {} : (ci?.pullRequest ?? {});
  const pullRequest = {
    ...fromCi,
    ...(v['pr-number'] ? { number: Number(v['pr-number']) } : {}),
    ...(v['pr-url'] ? { url: v['pr-url'] } : {}),
    ...(v['pr-title'] ? { title: v['pr-title'] } : {}),
  };
  event.changes = [
    {
      author,
      ...(mergedBy ? { mergedBy } : {}),
      ...(Object.keys(commit).length > 0 ? { commit } : {}),
      ...(Object.keys(pullRequest).length > 0 ? { pullRequest } : {}),
    },
  ];
  return event;
}

/** "alice@example.com" is an email, anything else a login. */
function identity(who: string, name?: string): Identity {
  const base: Identity = who.includes('@') ? { email: who } : { login: who };
  return name ? { ...base, name } : base;
}

function flagValue(text: string): boolean | number | string {
  if (text === 'true') return true;
  if (text === 'false') return false;
  return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
}

/**
 * In CI, one id per (run attempt, service, environment, stage, percent): a retried step is a repeat, a re-run
 * of the workflow (a new attempt, a new job) is a new event. Elsewhere a random one, fixed before the retries.
 */
function defaultId(
  ci: CiFacts | undefined,
  p: { service: string; environment: string | undefined; stage: string; percent: number | undefined },
): string {
  if (!ci) return `cli-${randomUUID()}`;
  const parts = [ci.idPrefix, p.service, p.environment ?? 'default', p.stage, p.percent];
  return parts
    .filter((x) => x !== undefined)
    .join('-')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .slice(0, 256);
}
