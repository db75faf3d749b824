import { z } from 'zod';
import { canonicalInstant } from '../core/time.js';
import { ApiError, type ProblemDetail } from '../errors.js';

/** Parses a request body with a wire schema; a failure lists every problem, each with its path. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const result = checkInput(schema, body);
  if (result.success) return result.data;
  throw new ApiError('invalid_payload', undefined, { problems: problemsOf(result.error) });
}

/** Parses a query string with its schema; a failure lists every problem, each with its path. */
export function parseQuery<S extends z.ZodType>(schema: S, query: unknown): z.output<S> {
  const result = checkInput(schema, query);
  if (result.success) return result.data;
  throw new ApiError('invalid_query', undefined, { problems: problemsOf(result.error) });
}

/** safeParse for what a client sent: the problems of an unknown key name the keys that object takes. */
export function checkInput<S extends z.ZodType>(schema: S, input: unknown) {
  return schema.safeParse(input, { error: knownKeysHint });
}

/**
 * zod names an unknown key but not the ones it expected; with them listed, a typo such as `servce=` is one
 * look away from its fix. Other issues keep the schema's own message.
 */
const knownKeysHint: z.core.$ZodErrorMap = (issue) => {
  if (issue.code !== 'unrecognized_keys' || !(issue.inst instanceof z.ZodObject)) return undefined;
  const unknown = issue.keys.map((k) => JSON.stringify(k)).join(', ');
  const known = Object.keys(issue.inst.shape).join(', ');
  return `Unrecognized key${issue.keys.length === 1 ? '' : 's'}: ${unknown}; the keys are ${known}`;
};

export function problemsOf(error: z.ZodError): ProblemDetail[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
}

/**
 * An RFC 3339 instant as changepager can store it. zod accepts any number of fractional digits; canonicalInstant
 * (an episode's identity, a deploy's time) takes at most nine, so a tenth must be a 400 here rather than a crash
 * or a silently substituted time later (found by test/fuzz: it was a 500, which Alertmanager retries for ever).
 */
export const rfc3339 = z.iso
  .datetime({ offset: true, abort: true })
  .refine((s) => canonicalInstant(s) !== undefined, { error: 'must be RFC 3339 with at most nine fractional digits' });
