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
  return new ApiError('internal');
}
