import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { alertmanagerPayload } from '../ingest/alertmanager.js';
import { deployEvent } from '../ingest/deploy.js';
import { flaggerPayload } from '../ingest/flagger.js';
import { ASSET_FILES } from '../ui/assets.js';
import { timelineQuery } from '../ui/range.js';
import {
  alertHistorySchema,
  alertmanagerResultSchema,
  decisionSchema,
  deployListSchema,
  deploySchema,
  errorSchema,
  flaggerResultSchema,
  healthSchema,
  precisionSchema,
  previewSchema,
  readySchema,
  statsSchema,
  timelineSchema,
  unmappedSchema,
  verdictSchema,
} from './api-schemas.js';
import { deployQuery, historyQuery, unmappedQuery } from './lists.js';
import { precisionQuery } from './precision.js';
import { statsQuery } from './stats.js';
import { verdictQuery } from './verdict.js';

// The OpenAPI 3.1 description of the HTTP API, generated from the zod schemas themselves: request bodies and
// query strings from the schemas that validate them (no second copy to drift), responses from api-schemas.ts
// (checked against real answers in test/openapi). Served at GET /v1/openapi.json without a token: it is the
// same for everyone and holds no data.

type Json = Record<string, unknown>;

const DIALECT = { target: 'draft-2020-12', unrepresentable: 'any' } as const;

/** Components generated from a registry; $id and $schema dropped, as OpenAPI components carry neither. */
function components(entries: [string, z.ZodType][], io: 'input' | 'output'): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of entries) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { ...DIALECT, io, uri: (id) => `#/components/schemas/${id}` });
  return Object.fromEntries(
    Object.entries(schemas).map(([id, { $id: _id, $schema: _schema, ...rest }]) => [id, rest as Json]),
  );
}

/** One OpenAPI query parameter per key of a strict query schema, from the schema that parses the query. */
function queryParameters(schema: z.ZodObject): Json[] {
  return Object.entries(schema.shape).map(([name, field]) => {
    const { $schema: _s, description, ...rest } = z.toJSONSchema(field as z.ZodType, { ...DIALECT, io: 'input' });
    return {
      name,
      in: 'query',
      required: !(field as z.ZodType).safeParse(undefined).success,
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const body = (name: string, description: string) => ({
  description,
  content: { 'application/json': { schema: ref(name) } },
});
const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid request: every problem is listed in details.problems, each with its path.',
  401: 'No valid bearer token.',
  403: 'A read-only token tried to change something.',
  404: 'No such resource.',
  413: 'The body is larger than http.body_limit_bytes.',
  415: 'The body is not application/json.',
  422: 'Nothing to attach the event to.',
  503: 'The database could not store the request; retry later.',
};
const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [String(c), body('Error', ERROR_TEXT[c] ?? 'Error.')]));
const idParam = (name: string, description: string) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: { type: 'string' },
});
const PAGED =
  'A page holds at most `limit` items, fewer when they are large (a page stops growing past about 1 MiB of JSON). `next` is the link to the following page, or null on the last one.';
const WRITE_ERRORS = [400, 401, 403, 413, 415, 503];
const READ_ERRORS = [400, 401];

// The timeline page's routes answer a browser in HTML and anything else with the API's JSON errors.
const text = { schema: { type: 'string' } };
const htmlPage = (description: string) => ({ description, content: { 'text/html': text } });
const htmlOrError = (description: string) => ({
  description,
  content: { 'text/html': text, 'application/json': { schema: ref('Error') } },
});
const redirect = (description: string) => ({
  description,
  headers: { Location: { description: 'Where to go.', schema: { type: 'string' } } },
});
/** The page and its data take the API token or the login form's session cookie. */
const PAGE_SECURITY = [{ bearer: [] }, { session: [] }];
const form = (properties: Record<string, Json>, required: string[]) => ({
  required: true,
  content: {
    'application/x-www-form-urlencoded': { schema: { type: 'object', properties, required } },
  },
});

/** What a code host's webhook route answers: stored or repeat with the deploy's id, or ignored with the reason. */
const HOOK_RESULT = {
  type: 'object',
  required: ['status'],
  properties: {
    status: { enum: ['stored', 'repeat', 'ignored'] },
    deploy: { type: 'string', description: 'The deploy id, for GET /v1/deploys/{id}.' },
    reason: { type: 'string', description: 'Why it is no deploy.' },
  },
};

/** GitHub's webhook answers the same, and its ping with status pong. */
const GITHUB_HOOK_RESULT = {
  ...HOOK_RESULT,
  properties: { ...HOOK_RESULT.properties, status: { enum: ['stored', 'repeat', 'ignored', 'pong'] } },
};

/** The page's static files, one path each, as the app serves them. */
function assetPaths(): Json {
  return Object.fromEntries(
    Object.values(ASSET_FILES).map(({ name, type }) => [
      `/ui/${name}`,
      {
        get: {
          summary: `The timeline page's ${name}`,
          description: 'With ?v= set to the digest the page links, cached for a year.',
          security: [],
          responses: {
            200: { description: name, content: { [type.split(';')[0] as string]: text } },
            304: { description: 'Not modified.' },
          },
        },
      },
    ]),
  );
}

function build(): Json {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return {
    openapi: '3.1.0',
    info: {
      title: 'changepager',
      version: pkg.version,
      description:
        'Pages the engineer whose change (deploy, feature flag or config) preceded an alert. Every /v1 route needs `Authorization: Bearer <token>` except /v1/openapi.json; errors are `{error, message, details}`.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    security: [{ bearer: [] }],
    paths: {
      '/healthz': { get: { summary: 'Liveness', security: [], responses: { 200: body('Health', 'Serving HTTP.') } } },
      '/readyz': {
        get: {
          summary: 'Readiness, with the outbox depth',
          security: [],
          responses: {
            200: body('Ready', 'The database answers.'),
            503: body('Ready', 'The database does not answer.'),
          },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics',
          description:
            'Open unless metrics.token_env or metrics.token_file is set; then only with that token as a Bearer header. The gauges read from the database are computed every metrics.refresh_interval, not per scrape.',
          security: [{ metrics: [] }, {}],
          responses: {
            200: { description: 'Prometheus text format.', content: { 'text/plain': { schema: { type: 'string' } } } },
            ...errors(401),
          },
        },
      },
      '/v1/openapi.json': {
        get: {
          summary: 'This document',
          security: [],
          responses: {
            200: { description: 'OpenAPI 3.1.', content: { 'application/json': { schema: { type: 'object' } } } },
          },
        },
      },
      '/v1/alertmanager': {
        post: {
          summary: 'Alertmanager webhook receiver (payload version 4)',
          description: 'Answers 200 only once the notification is stored; repeats and HA duplicates change nothing.',
          requestBody: { required: true, content: { 'application/json': { schema: ref('AlertmanagerPayload') } } },
          responses: {
            200: body('AlertmanagerResult', 'Stored; the decision for each new episode.'),
            ...errors(...WRITE_ERRORS),
          },
        },
      },
      '/v1/preview': {
        post: {
          summary: 'Dry run: the decisions an Alertmanager payload would get; nothing stored or paged',
          requestBody: { required: true, content: { 'application/json': { schema: ref('AlertmanagerPayload') } } },
          responses: { 200: body('Preview', 'The decisions.'), ...errors(...WRITE_ERRORS) },
        },
      },
      '/v1/deploys': {
        post: {
          summary: 'Record a change event: a deploy (kind deploy, the default), a flag flip or a config change',
          requestBody: { required: true, content: { 'application/json': { schema: ref('ChangeEvent') } } },
          responses: {
            201: body('Deploy', 'Stored; Location names it.'),
            200: body('Deploy', 'An event with this id was stored before: the stored one, unchanged.'),
            ...errors(...WRITE_ERRORS),
          },
        },
        get: {
          summary: 'List change events, newest first, a page at a time',
          description: PAGED,
          parameters: queryParameters(deployQuery),
          responses: { 200: body('DeployList', 'A page of events.'), ...errors(...READ_ERRORS) },
        },
      },
      '/v1/deploys/flagger': {
        post: {
          summary: "Flagger's event webhook: canary stages of the latest deploy of the service",
          description:
            'Flagger cannot send headers: the token may come as metadata.token from the webhook spec. New revision / analysis start → canary 0 %, "Advance … canary weight N" → partial N %, promotion → full; other events are ignored (200).',
          security: [{ bearer: [] }, {}],
          requestBody: { required: true, content: { 'application/json': { schema: ref('FlaggerEvent') } } },
          responses: {
            201: body('FlaggerResult', 'A stage event was recorded.'),
            200: body('FlaggerResult', 'A repeat, or an event that is no rollout stage.'),
            ...errors(400, 401, 403, 413, 422, 503),
          },
        },
      },
      '/v1/deploys/{id}': {
        get: {
          summary: 'One change event',
          parameters: [idParam('id', 'The event id.')],
          responses: { 200: body('Deploy', 'The event.'), ...errors(401, 404) },
        },
      },
      '/v1/deploys/{id}/verdict': {
        get: {
          summary: 'Canary gate: pending, healthy or failing, for the rollout this event belongs to',
          description:
            'The window starts at the latest stage event of the rollout (same service, environment, kind, subject and version) and lasts observe. failing as soon as an alert attributed to the rollout started in it (or still fires from an earlier stage); healthy once the window and settle are over without one. A pending answer carries Retry-After.',
          parameters: [idParam('id', 'Any stage event id of the rollout.'), ...queryParameters(verdictQuery)],
          responses: { 200: body('Verdict', 'The verdict.'), ...errors(400, 401, 404) },
        },
      },
      '/v1/alerts/{fingerprint}': {
        get: {
          summary:
            'An alert: its episodes, decisions, pages and latest delivery attempts, a page of episodes at a time',
          description: PAGED,
          parameters: [idParam('fingerprint', "Alertmanager's fingerprint."), ...queryParameters(historyQuery)],
          responses: { 200: body('AlertHistory', 'Newest episode first.'), ...errors(400, 401, 404) },
        },
      },
      '/v1/people/unmapped': {
        get: {
          summary: 'Authors changepager could not reach by name, a page at a time',
          description: PAGED,
          parameters: queryParameters(unmappedQuery),
          responses: { 200: body('UnmappedPeople', 'Most frequent first.'), ...errors(400, 401) },
        },
      },
      '/v1/timeline': {
        get: {
          summary: 'The deploys and alerts of a time range, per service: the timeline page as data',
          description:
            'The page polls it for the revision. Without from, to and range it searches the last timeline.default_range (6 hours by default) and fits the range to what it found. At most timeline.max_items deploys and alerts, each bounded (clipped, href). A poll with If-None-Match set to the last ETag gets 304 when nothing shown changed.',
          security: PAGE_SECURITY,
          parameters: queryParameters(timelineQuery),
          responses: {
            200: body('Timeline', 'The range, its lanes, deploys and alerts.'),
            304: { description: 'Nothing shown changed since the ETag given in If-None-Match.' },
            ...errors(...READ_ERRORS),
          },
        },
      },
      '/': {
        get: {
          summary: 'The timeline page (HTML): deploys and alerts per service',
          description:
            'Takes the query of GET /v1/timeline. ?service= redirects to /services/{name}. Without a token or session a browser gets the login form (401).',
          security: PAGE_SECURITY,
          parameters: queryParameters(timelineQuery),
          responses: {
            200: htmlPage('The page.'),
            303: redirect('?service= was given: the same view at /services/{name}.'),
            400: htmlOrError('The range cannot be shown; every problem is listed.'),
            401: htmlOrError('No valid token or session: the login form for a browser.'),
          },
        },
      },
      '/services/{name}': {
        get: {
          summary: 'The timeline page of one service (HTML)',
          security: PAGE_SECURITY,
          parameters: [idParam('name', 'The service.'), ...queryParameters(timelineQuery.omit({ service: true }))],
          responses: {
            200: htmlPage('The page.'),
            400: htmlOrError('The range cannot be shown; every problem is listed.'),
            401: htmlOrError('No valid token or session: the login form for a browser.'),
          },
        },
      },
      '/login': {
        get: {
          summary: "The timeline page's login form (HTML)",
          security: [],
          responses: {
            200: htmlPage('The form.'),
            303: redirect('No token is configured: nothing to sign in to.'),
          },
        },
        post: {
          summary: 'Sign in to the timeline page with an API token',
          description:
            'Sets an HttpOnly, SameSite=Strict session cookie signed with the token (never the token itself) and redirects to next.',
          security: [],
          requestBody: form({ token: { type: 'string' }, next: { type: 'string' } }, ['token']),
          responses: {
            303: redirect('Signed in: on to next (a path on this site).'),
            401: htmlOrError('Not one of the configured tokens.'),
            403: body('Error', 'The form was not sent from this site.'),
          },
        },
      },
      '/logout': {
        post: {
          summary: 'Sign out of the timeline page: clears the session cookie',
          security: [],
          responses: { 200: htmlPage('The login form, saying so.'), 403: body('Error', 'Not sent from this site.') },
        },
      },
      ...assetPaths(),
      '/slack/events': {
        post: {
          summary: "Slack interactivity (the DM's buttons), signed by Slack",
          description:
            'Only with a slack section in http mode. Slack signs each request with the signing secret (X-Slack-Signature, X-Slack-Request-Timestamp); no API token.',
          security: [],
          requestBody: form({ payload: { type: 'string', description: "Slack's interaction payload, as JSON." } }, [
            'payload',
          ]),
          responses: {
            200: { description: 'Acknowledged.' },
            401: body('Error', 'Unsigned, or the timestamp is more than 5 minutes off.'),
          },
        },
      },
      '/v1/hooks/github': {
        post: {
          summary: "GitHub's deployment_status webhook: deployments of the configured repositories become deploys",
          description:
            "Only with a github section. GitHub proves itself with X-Hub-Signature-256, the HMAC-SHA256 of the raw body with the webhook's secret; no API token. A request without the header is refused before its body is read. Only X-GitHub-Event: deployment_status is read (with its X-GitHub-Delivery id); ping is answered 200, any other event 202. A success (or, in an environment with a canary or partial stage, an in_progress) deployment status is stored at once; its pull requests are looked up afterwards.",
          security: [],
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: { type: 'object', description: "GitHub's deployment_status event, or any other event." },
              },
            },
          },
          responses: {
            201: {
              description: 'A new deploy was stored.',
              content: { 'application/json': { schema: GITHUB_HOOK_RESULT } },
            },
            200: {
              description:
                "GitHub's ping (status pong), or a deployment stored before (a replay, another status): nothing changed.",
              content: { 'application/json': { schema: GITHUB_HOOK_RESULT } },
            },
            202: {
              description: 'Another event, or a deployment status that is no deploy (unconfigured, failed…): ignored.',
              content: { 'application/json': { schema: GITHUB_HOOK_RESULT } },
            },
            400: body('Error', ERROR_TEXT[400] as string),
            401: body(
              'Error',
              'invalid_signature: no X-Hub-Signature-256, or one the configured secret does not give for this body.',
            ),
            ...errors(413, 503),
          },
        },
      },
      '/v1/hooks/gitlab': {
        post: {
          summary: "GitLab's Deployment events webhook: deployments of the configured projects become deploys",
          description:
            "Only with a gitlab section. GitLab proves itself with the webhook's secret token (X-Gitlab-Token), checked before the body is read; no API token. Only X-Gitlab-Event: Deployment Hook is read, any other event is answered 202. A success (or, in an environment with a canary or partial stage, a running) deployment is stored at once; its merge requests are looked up afterwards.",
          security: [],
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: { type: 'object', description: "GitLab's Deployment event (object_kind deployment)." },
              },
            },
          },
          responses: {
            201: { description: 'A new deploy was stored.', content: { 'application/json': { schema: HOOK_RESULT } } },
            200: {
              description: 'A deployment stored before (a replay, another status): nothing changed.',
              content: { 'application/json': { schema: HOOK_RESULT } },
            },
            202: {
              description: 'Another event, or a deployment that is no deploy (unconfigured, failed…): ignored.',
              content: { 'application/json': { schema: HOOK_RESULT } },
            },
            400: body('Error', ERROR_TEXT[400] as string),
            401: body('Error', 'invalid_signature: no X-Gitlab-Token, or not the configured secret token.'),
            ...errors(413, 503),
          },
        },
      },
      '/v1/precision': {
        get: {
          summary: 'How the decisions that named a person fared per service: disowned, confirmed, cleared',
          description: PAGED,
          parameters: queryParameters(precisionQuery),
          responses: {
            200: body('Precision', 'Services with a decision that named a change in the period.'),
            ...errors(...READ_ERRORS),
          },
        },
      },
      '/v1/stats': {
        get: {
          summary: 'Deploy hygiene per service over a period, a page of services at a time',
          description: PAGED,
          parameters: queryParameters(statsQuery),
          responses: {
            200: body('Stats', 'Services with any change event or alert in the period.'),
            ...errors(...READ_ERRORS),
          },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API token (CHANGEPAGER_TOKEN or auth.tokens).' },
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: 'changepager_session',
          description:
            "The login form's session (named __Host-changepager_session over https). GET routes take it; POST routes never do.",
        },
        metrics: {
          type: 'http',
          scheme: 'bearer',
          description: 'The metrics token (metrics.token_env or token_file).',
        },
      },
      schemas: {
        ...components(
          [
            ['ChangeEvent', deployEvent],
            ['AlertmanagerPayload', alertmanagerPayload],
            ['FlaggerEvent', flaggerPayload],
          ],
          'input',
        ),
        ...components(
          [
            ['Deploy', deploySchema],
            ['DeployList', deployListSchema],
            ['Decision', decisionSchema],
            ['AlertmanagerResult', alertmanagerResultSchema],
            ['Preview', previewSchema],
            ['AlertHistory', alertHistorySchema],
            ['Verdict', verdictSchema],
            ['Stats', statsSchema],
            ['Precision', precisionSchema],
            ['FlaggerResult', flaggerResultSchema],
            ['UnmappedPeople', unmappedSchema],
            ['Timeline', timelineSchema],
            ['Error', errorSchema],
            ['Health', healthSchema],
            ['Ready', readySchema],
          ],
          'output',
        ),
      },
    },
  };
}

let cached: Json | undefined;

/** The document; built once, since it depends on nothing but code. */
export function openApiDocument(): Json {
  cached ??= build();
  return cached;
}
