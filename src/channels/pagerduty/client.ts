import { Agent } from 'node:https';
import type { api, change, event } from '@pagerduty/pdjs';
import { classifyError, classifyResponse, type HttpOutcome } from '../../deliver/http-outcome.js';
import { library } from '../library.js';
import type { PagerDutyConfig } from './config.js';

// A thin wrapper over @pagerduty/pdjs that makes it safe for the paging path. pdjs's own quirks, and what is
// done about each (read in pdjs 2.2.4's build/src/common.js, events.js and api.js):
// - `requestTimeout` never aborts anything: every call gets an AbortSignal with a real deadline instead.
// - 4xx/5xx resolve instead of throwing, and a non-JSON body rejects with the Response itself: both are
//   turned into an HttpOutcome by http-outcome.ts, the one place that classifies.
// - 429 is retried inside pdjs at a fixed interval (three times); `retryTimeout` is kept short so the final
//   429 and its ratelimit-reset/Retry-After reach our own backoff quickly.
// - Events always go to https://<host>: the events base URL must be https; `agent` carries extra CAs to it
//   (and to the REST API when that is https too).

/** Events API v2 body (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/). */
export interface EventBody {
  routing_key: string;
  event_action: 'trigger' | 'acknowledge' | 'resolve';
  dedup_key: string;
  payload?: {
    summary: string;
    source: string;
    severity: 'critical' | 'error' | 'warning' | 'info';
    timestamp?: string;
    component?: string;
    group?: string;
    class?: string;
    custom_details?: Record<string, unknown>;
  };
  links?: { href: string; text?: string }[];
  client?: string;
  client_url?: string;
}

export interface ChangeBody {
  routing_key: string;
  payload: { summary: string; source?: string; timestamp: string; custom_details: Record<string, unknown> };
  links: { href: string; text?: string }[];
}

export interface IncidentRef {
  id: string;
  html_url?: string;
  status?: string;
}

export interface PagerDutyUser {
  id: string;
  email: string;
  name?: string;
}

export interface PagerDutyClient {
  sendEvent(body: EventBody): Promise<HttpOutcome<{ dedup_key?: string }>>;
  sendChange(body: ChangeBody): Promise<HttpOutcome<unknown>>;
  createIncident(incident: Record<string, unknown>): Promise<HttpOutcome<{ incident: IncidentRef }>>;
  /** `from` acts as that PagerDuty user (an acknowledgement from Slack); the configured From otherwise. */
  updateIncident(
    id: string,
    incident: Record<string, unknown>,
    from?: string,
  ): Promise<HttpOutcome<{ incident: IncidentRef }>>;
  addNote(id: string, content: string): Promise<HttpOutcome<unknown>>;
  requestResponders(id: string, body: Record<string, unknown>): Promise<HttpOutcome<unknown>>;
  findIncidentsByKey(key: string): Promise<HttpOutcome<{ incidents: IncidentRef[] }>>;
  getIncident(id: string): Promise<HttpOutcome<{ incident: IncidentRef }>>;
  findUsers(query: string): Promise<HttpOutcome<{ users: PagerDutyUser[] }>>;
}

/** What pdjs resolves with: the fetch Response plus the parsed body. */
type PdjsResponse = { status: number; data: unknown; headers: Response['headers'] };

/** pdjs's own 429 retry interval: short, so our backoff (which honours the server's hint) takes over. */
const PDJS_429_RETRY_MS = 250;

export function createPagerDutyClient(config: PagerDutyConfig, now: () => number): PagerDutyClient {
  const pdjs = library<typeof import('@pagerduty/pdjs')>('@pagerduty/pdjs');
  const timeoutMs = config.timeoutMs;
  // node-fetch (under pdjs) takes `agent`, needed only for the extra CAs. It must speak the URL's protocol: the
  // REST base URL may be plain http (a stand-in, a proxy), which keeps node's default agent.
  const tls = config.ca ? new Agent({ ca: config.ca, keepAlive: true }) : undefined;
  const agent = tls && { agent: (url: { protocol?: string | null }) => (url.protocol === 'https:' ? tls : undefined) };
  const common = () => ({ signal: AbortSignal.timeout(timeoutMs), retryTimeout: PDJS_429_RETRY_MS, ...agent });

  async function exchange<T>(call: () => Promise<PdjsResponse>) {
    try {
      const res = await call();
      return classifyResponse<T>(res.status, res.data, res.headers, now());
    } catch (err) {
      // pdjs rejects with the Response itself when the body is not JSON (an HTML 502 from a proxy, say).
      if (err && typeof err === 'object' && 'status' in err && 'headers' in err) {
        const res = err as Response;
        return classifyResponse<T>(res.status, undefined, res.headers, now());
      }
      return classifyError<T>(err, timeoutMs);
    }
  }

  function rest<T>(
    method: string,
    path: string,
    data?: object,
    query?: Record<string, string | string[]>,
    from = config.from,
  ) {
    return exchange<T>(
      () =>
        pdjs.api({
          url: `${config.apiUrl}${path}`,
          method,
          ...(config.apiToken ? { token: config.apiToken } : {}),
          ...(data ? { data } : {}),
          ...(query ? { queryParameters: query } : {}),
          headers: from ? { From: from } : {},
          ...common(),
        } as Parameters<typeof api>[0]) as unknown as Promise<PdjsResponse>,
    );
  }

  return {
    sendEvent: (body) =>
      exchange(() =>
        pdjs.event({ server: config.eventsHost, data: body as never, ...common() } as Parameters<typeof event>[0]),
      ),
    // pdjs types change() as taking alert events; its payload must still be wrapped in `data`.
    sendChange: (body) =>
      exchange(() =>
        pdjs.change({ server: config.eventsHost, data: body as never, ...common() } as Parameters<typeof change>[0]),
      ),
    createIncident: (incident) => rest('POST', '/incidents', { incident }),
    updateIncident: (id, incident, from) =>
      rest('PUT', `/incidents/${encodeURIComponent(id)}`, { incident }, undefined, from ?? config.from),
    addNote: (id, content) => rest('POST', `/incidents/${encodeURIComponent(id)}/notes`, { note: { content } }),
    requestResponders: (id, body) => rest('POST', `/incidents/${encodeURIComponent(id)}/responder_requests`, body),
    // Open incidents only: a resolved one with the same key is history, not the page to adopt.
    findIncidentsByKey: (key) =>
      rest('GET', '/incidents', undefined, { incident_key: key, 'statuses[]': ['triggered', 'acknowledged'] }),
    getIncident: (id) => rest('GET', `/incidents/${encodeURIComponent(id)}`),
    findUsers: (query) => rest('GET', '/users', undefined, { query }),
  };
}
