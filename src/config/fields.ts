import { z } from 'zod';
import { durationMs } from '../core/time.js';

// Value schemas shared by the config's sections, the channels' own sections (src/channels/*/config.ts) included,
// so that a duration or a base URL is checked, and its problem worded, the same way wherever it appears.

export const isoDuration = z
  .string()
  .refine((s) => durationMs(s) !== undefined, { error: 'must be an ISO-8601 duration such as PT1H or PT2M' });

/** The longest wait a Node.js timer can be set to: 2^31 - 1 ms, about 24.8 days. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A duration a timer or a request deadline is set with. Zero would abort every PagerDuty request at once (and
 * mean "no timeout" to the Slack client); past the longest timer, Node fires it after 1 ms instead.
 */
export const timerDuration = isoDuration.refine(
  (s) => {
    const ms = durationMs(s);
    return ms === undefined || (ms > 0 && ms <= MAX_TIMER_MS);
  },
  { error: 'must be longer than zero and at most P24D (the longest timer Node.js can set)' },
);

/**
 * A base URL a client appends paths to: credentials in it would be dropped (and secrets never go in this file),
 * a query or a fragment would end up in the middle of every request's URL.
 */
export function appendablePath(url: string, ctx: z.core.$RefinementCtx<string>): void {
  if (!URL.canParse(url)) return; // the URL check itself says so
  const u = new URL(url);
  if (u.username || u.password) {
    ctx.addIssue({ code: 'custom', input: url, message: 'must not carry credentials: secrets go in *_env or *_file' });
  }
  if (u.search || u.hash) {
    ctx.addIssue({
      code: 'custom',
      input: url,
      message: 'must not have a query or a fragment: paths are appended to it',
    });
  }
}

// An invalid duration is reported once, by isoDuration.
export const positiveDuration = isoDuration.refine((s) => (durationMs(s) ?? 1) > 0, {
  error: 'must be longer than zero',
});

export const baseUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) base URL' })
  .check(z.superRefine(appendablePath))
  .transform((u) => u.replace(/\/+$/, ''));
