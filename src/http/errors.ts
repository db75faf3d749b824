import type { ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import { ApiError, ERRORS, type ErrorCode } from '../errors.js';
import { StorageError } from '../store/store.js';

// body-parser's error types (https://github.com/expressjs/body-parser#errors) mapped onto our registry.
const BODY_PARSER: Record<string, ErrorCode> = {
  'entity.too.large': 'payload_too_large',
  'entity.parse.failed': 'invalid_json',
  'encoding.unsupported': 'unsupported_media_type',
  'charset.unsupported': 'unsupported_media_type',
  'entity.verify.failed': 'invalid_payload',
  'request.aborted': 'invalid_payload',
  'request.size.invalid': 'invalid_payload',
  'stream.encoding.set': 'internal',
  'parameters.too.many': 'payload_too_large',
};

/** Writes every error as {error, message, details}; only unknown errors are 5xx, and they are logged. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const api = toApiError(err);
    if (api.status >= 500) log.error({ err, method: req.method, path: req.path }, api.message);
    if (res.headersSent) return;
    res.status(api.status).json({ error: api.code, message: api.message, details: api.details ?? null });
  };
}

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof StorageError) return new ApiError('storage_unavailable');
  const type = (err as { type?: unknown }).type;
  if (typeof type === 'string' && type in BODY_PARSER) {
    const code = BODY_PARSER[type] as ErrorCode;
    const detail = code === 'invalid_json' ? { problems: [{ path: '', message: (err as Error).message }] } : undefined;
    return new ApiError(code, ERRORS[code].message, detail);
  }
  // Other client errors from express's own layers (a body in an unsupported Content-Encoding, a malformed
  // percent-encoding in the path) are the client's, not ours: never a 5xx, which Alertmanager retries for ever.
  const status = (err as { status?: unknown; expose?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new ApiError(status === 415 ? 'unsupported_media_type' : 'invalid_payload', (err as Error).message);
  }
  if (err instanceof URIError) return new ApiError('invalid_payload', 'The path is not valid percent-encoded UTF-8.');
  return new ApiError('internal');
}
