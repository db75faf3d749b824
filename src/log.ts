import { type DestinationStream, type Logger, pino } from 'pino';

/**
 * Structured JSON logs. Handlers never log headers or bodies; the redact list is the second line of defence for
 * anything that reaches a log call by accident (an error carrying a request, say).
 */
export function createLogger(level = 'info', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { name: 'changepager' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'req.headers.authorization',
        'headers.authorization',
        '*.headers.authorization',
        'token',
        '*.token',
        'secret',
        '*.secret',
        'routing_key',
        '*.routing_key',
      ],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
