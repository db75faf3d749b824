// The one registry of error codes a client can see, with their HTTP status. Handlers throw ApiError with a
// code from here; the error middleware in http/errors.ts writes {error, message, details}.

export const ERRORS = {
  invalid_json: { status: 400, message: 'The request body is not valid JSON.' },
  invalid_payload: {
    status: 400,
    message: 'The request body does not match the schema; every problem is listed in details.',
  },
  invalid_query: { status: 400, message: 'The query string is invalid; every problem is listed in details.' },
  unauthorized: { status: 401, message: 'A valid bearer token is required: Authorization: Bearer <token>.' },
  invalid_signature: {
    status: 401,
    message: "The webhook's signature (or secret token) is missing or does not match the secret configured for it.",
  },
  forbidden: { status: 403, message: 'This token is read-only: it may read (GET) but not change anything.' },
  not_found: { status: 404, message: 'No such resource.' },
  payload_too_large: { status: 413, message: 'The request body is larger than the configured limit.' },
  unsupported_media_type: { status: 415, message: 'The request body must be application/json.' },
  too_many_logins: {
    status: 429,
    message: 'Too many wrong tokens from this address: try again after the seconds in the Retry-After header.',
  },
  no_deploy_for_rollout: {
    status: 422,
    message: 'No recent deploy event of this service to attach the rollout stage to; send the deploy event first.',
  },
  unknown_rollback_target: {
    status: 422,
    message: 'rollbackOf names no deploy of this service and environment; send the id of the deploy rolled back.',
  },
  storage_unavailable: { status: 503, message: 'The database could not store the request; retry later.' },
  internal: { status: 500, message: 'Internal error.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export interface ProblemDetail {
  /** Where in the request the problem is, e.g. "alerts.0.startsAt"; empty for the whole body. */
  path: string;
  message: string;
}

export class ApiError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].message,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = ERRORS[code].status;
  }
}
