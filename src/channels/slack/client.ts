import type { webApi } from '@slack/bolt';
import { library } from '../library.js';
import type { SlackConfig } from './config.js';

// The Slack Web API client as changepager uses it: no retries inside the client (the outbox retries, with
// its own backoff, and a Slack outage must not hold a delivery slot for half an hour as web-api's default
// policy would), rate limits reported instead of waited out, and a real timeout.

export type SlackClient = InstanceType<typeof webApi.WebClient>;

export function slackClientOptions(config: SlackConfig) {
  return {
    slackApiUrl: config.apiUrl,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: config.timeoutMs,
  };
}

export function createSlackClient(config: SlackConfig): SlackClient {
  const { WebClient, LogLevel } = library<typeof import('@slack/bolt')>('@slack/bolt').webApi;
  return new WebClient(config.botToken, { ...slackClientOptions(config), logLevel: LogLevel.ERROR });
}

export interface SlackFailure {
  retry: boolean;
  detail: string;
  retryAfterMs?: number;
}

// Platform errors (HTTP 200, ok:false) that a later try can get past; every other one is a fact about the
// request (no such user, token revoked) that retrying will not change.
const TRANSIENT_PLATFORM_ERRORS = new Set([
  'ratelimited',
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
]);

/** Classifies what @slack/web-api threw, by its documented `code` (works on web-api 7 and 8). */
export function classifySlackError(err: unknown): SlackFailure {
  const e = err as {
    code?: string;
    retryAfter?: number;
    statusCode?: number;
    data?: { error?: string };
    message?: string;
    name?: string;
  };
  switch (e.code) {
    case 'slack_webapi_rate_limited_error':
      return {
        retry: true,
        detail: `Slack rate limited (retry after ${e.retryAfter ?? '?'} s)`,
        retryAfterMs: (e.retryAfter ?? 1) * 1000,
      };
    case 'slack_webapi_platform_error': {
      const code = e.data?.error ?? 'unknown_error';
      return { retry: TRANSIENT_PLATFORM_ERRORS.has(code), detail: `Slack error: ${code}` };
    }
    case 'slack_webapi_http_error': {
      const status = e.statusCode ?? 0;
      return { retry: status === 429 || status >= 500, detail: `Slack HTTP ${status}` };
    }
    default:
      // Request errors (network, timeout) and anything unexpected: the message may or may not have gone out;
      // a retry could post twice, which is better than a DM never sent.
      return { retry: true, detail: `Slack request failed: ${(e.message ?? String(err)).slice(0, 200)}` };
  }
}
