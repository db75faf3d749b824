import type { z } from 'zod';
import { ApiError, type ProblemDetail } from '../errors.js';

/** Parses a request body with a wire schema; a failure lists every problem, each with its path. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  throw new ApiError('invalid_payload', undefined, { problems: problemsOf(result.error) });
}

export function problemsOf(error: z.ZodError): ProblemDetail[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
}
