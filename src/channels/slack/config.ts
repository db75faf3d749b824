import { z } from 'zod';
import { appendablePath, isoDuration, timerDuration } from '../../config/fields.js';
import { durationMs } from '../../core/time.js';
import { channelConfig } from '../channel.js';

// The `slack:` section. Without it, DMs are written to the log.

export interface SlackConfig {
  mode: 'http' | 'socket';
  botToken: string;
  signingSecret?: string;
  appToken?: string;
  apiUrl: string;
  botId?: string;
  botUserId?: string;
  timeoutMs: number;
  userCacheTtlMs: number;
  threadWindowMs: number;
}

const section = z
  .strictObject({
    /** http: Slack calls POST /slack/events (needs a public URL); socket: changepager connects out to Slack. */
    mode: z.enum(['http', 'socket']).default('http'),
    bot_token_env: z.string().min(1).optional(),
    bot_token_file: z.string().min(1).optional(),
    signing_secret_env: z.string().min(1).optional(),
    signing_secret_file: z.string().min(1).optional(),
    app_token_env: z.string().min(1).optional(),
    app_token_file: z.string().min(1).optional(),
    /** The Web API base URL, with its trailing slash; tests point it at a stand-in. */
    api_url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .check(z.superRefine(appendablePath))
      .default('https://slack.com/api/'),
    /** The bot's ids: when both are set, Bolt skips its auth.test call at start-up. */
    bot_id: z.string().min(1).optional(),
    bot_user_id: z.string().min(1).optional(),
    request_timeout: timerDuration.default('PT10S'),
    user_cache_ttl: isoDuration.default('PT1H'),
    /** Alerts from the same deploy within this time thread under the first DM instead of each starting one. */
    thread_window: isoDuration.default('PT10M'),
  })
  .refine((s) => !(s.bot_token_env && s.bot_token_file), { error: 'set bot_token_env or bot_token_file, not both' })
  .refine((s) => s.bot_token_env || s.bot_token_file, { error: 'set bot_token_env or bot_token_file' })
  .refine((s) => s.mode !== 'http' || s.signing_secret_env || s.signing_secret_file, {
    error: 'mode http needs signing_secret_env or signing_secret_file (Slack signs every request)',
  })
  .refine((s) => s.mode !== 'socket' || s.app_token_env || s.app_token_file, {
    error: 'mode socket needs app_token_env or app_token_file (an xapp- token with connections:write)',
  });

export const slackConfig = channelConfig({
  section,
  resolve({ section }, secrets): SlackConfig | undefined {
    const botToken = secrets.secret(section, 'bot_token', 'slack');
    const signingSecret = secrets.secret(section, 'signing_secret', 'slack');
    const appToken = secrets.secret(section, 'app_token', 'slack');
    if (!botToken) return undefined; // the reader recorded the problem
    const slack: SlackConfig = {
      mode: section.mode,
      botToken,
      apiUrl: section.api_url.endsWith('/') ? section.api_url : `${section.api_url}/`,
      timeoutMs: durationMs(section.request_timeout) as number,
      userCacheTtlMs: durationMs(section.user_cache_ttl) as number,
      threadWindowMs: durationMs(section.thread_window) as number,
    };
    if (signingSecret) slack.signingSecret = signingSecret;
    if (appToken) slack.appToken = appToken;
    if (section.bot_id) slack.botId = section.bot_id;
    if (section.bot_user_id) slack.botUserId = section.bot_user_id;
    return slack;
  },
});
