/**
 * A PagerDuty stand-in for tests: one plain `node:http` server on 127.0.0.1 that speaks enough of the Events API v2
 * (`/v2/enqueue`, `/v2/change/enqueue`) and the REST API v2 (`/incidents`, `/users`) to exercise a client over real
 * HTTP, records every request, keeps PagerDuty-like state, and can be told to fail, hang or stall.
 *
 * Behaviour follows PagerDuty's developer documentation (Events API v2, REST API v2). Where PagerDuty's exact error texts or codes are not
 * documented, the stub uses the documented *shape* with a best-effort message; clients should key on HTTP status
 * (and, for the incident_key conflict, on the words "incident with key" in `error.message`/`error.errors`).
 *
 * Both APIs share one base URL (`stub.url`): events at `${url}/v2/enqueue`, REST at `${url}/incidents` etc.
 * Note: pdjs `event()` always uses https, so it cannot reach this plain-http stub; drive events with your own fetch
 * based sender (or pdjs `api({url})` for REST).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

// ---------------------------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------------------------

/** The routes the stub knows. Anything else is recorded with route 'unknown' and answered 404. */
export type StubRoute =
  | 'events' // POST /v2/enqueue
  | 'change' // POST /v2/change/enqueue
  | 'incidents.create' // POST /incidents
  | 'incidents.update' // PUT /incidents/:id
  | 'incidents.get' // GET /incidents/:id
  | 'incidents.list' // GET /incidents
  | 'responders' // POST /incidents/:id/responder_requests
  | 'notes' // POST /incidents/:id/notes
  | 'users'; // GET /users, GET /users/:id

/** A route a fault applies to; '*' matches every request, unknown paths included. */
export type FaultRoute = StubRoute | '*';

export interface RecordedRequest {
  /** 1-based arrival order since start or the last reset(). */
  readonly seq: number;
  readonly method: string;
  /** Path without query string and without a trailing slash. */
  readonly path: string;
  /** First value of each query parameter; `searchParams` holds repeated ones such as `statuses[]`. */
  readonly query: Record<string, string>;
  readonly searchParams: URLSearchParams;
  /** Header names lower-cased; repeated headers joined with ', '. */
  readonly headers: Record<string, string>;
  /** Parsed JSON when the body parses, otherwise the raw text ('' when empty). */
  readonly body: unknown;
  readonly rawBody: string;
  /** Date.now() when the body had been read. */
  readonly at: number;
  readonly route: StubRoute | 'unknown';
  /** Status sent back; undefined while pending and for hung requests. */
  status: number | undefined;
  /** Which programmed fault, if any, handled this request. */
  fault: 'status' | 'hang' | 'delay' | undefined;
  /** What the stub did, e.g. 'alert opened', 'deduplicated into open alert', 'dropped: no open alert'. */
  note: string | undefined;
}

export interface EventPayload {
  summary?: string;
  source?: string;
  severity?: string;
  timestamp?: string;
  component?: string;
  group?: string;
  class?: string;
  custom_details?: unknown;
  [key: string]: unknown;
}

/** An Events API v2 body as the client sent it (unchecked: optional everywhere). */
export interface EventsV2Body {
  routing_key?: string;
  event_action?: string;
  dedup_key?: string;
  payload?: EventPayload;
  client?: string;
  client_url?: string;
  links?: unknown[];
  images?: unknown[];
  [key: string]: unknown;
}

export interface ChangeEventBody {
  routing_key?: string;
  payload?: { summary?: string; source?: string; timestamp?: string; custom_details?: unknown; [key: string]: unknown };
  links?: unknown[];
  [key: string]: unknown;
}

export interface Reference {
  id?: string;
  type?: string;
  [key: string]: unknown;
}

/** A POST /incidents body as the client sent it (unchecked). */
export interface IncidentCreateBody {
  incident?: {
    type?: string;
    title?: string;
    service?: Reference;
    incident_key?: string;
    urgency?: string;
    assignments?: Array<{ assignee?: Reference }>;
    escalation_policy?: Reference;
    body?: { type?: string; details?: string };
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** A PUT /incidents/:id body as the client sent it (unchecked). */
export interface IncidentUpdateBody {
  incident?: {
    type?: string;
    status?: string;
    assignments?: Array<{ assignee?: Reference }>;
    resolution?: string;
    title?: string;
    urgency?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** A POST /incidents/:id/responder_requests body as the client sent it (unchecked). */
export interface ResponderRequestBody {
  requester_id?: string;
  message?: string;
  responder_request_targets?: unknown[];
  [key: string]: unknown;
}

/** A REST call on one incident: the id from the path, the From header, the body. */
export interface IncidentCall<B> {
  incidentId: string;
  from: string | undefined;
  body: B;
  request: RecordedRequest;
}

export type AlertStatus = 'triggered' | 'acknowledged' | 'resolved';

/** State of one alert, keyed by (routing_key, dedup_key), as the Events API would hold it. */
export interface StubAlert {
  routingKey: string;
  dedupKey: string;
  status: AlertStatus;
  /** How many times a trigger opened a new alert (and incident) for this key: 1, then +1 per trigger after resolve. */
  incidentsOpened: number;
  /** Trigger events accepted for this key, deduplicated ones included. */
  triggerCount: number;
  /** Payload of the latest accepted trigger. */
  payload: EventPayload | undefined;
  updatedAt: number;
}

export type IncidentStatus = 'triggered' | 'acknowledged' | 'resolved';

/** An incident as the REST API returns it. */
export interface StubIncident {
  id: string;
  type: 'incident';
  incident_number: number;
  title: string;
  status: IncidentStatus;
  urgency: string;
  html_url: string;
  self: string;
  incident_key: string;
  service: { id: string; type: 'service_reference' };
  assignments: Array<{ at: string; assignee: { id: string; type: 'user_reference'; summary?: string } }>;
  escalation_policy?: Reference;
  body?: { type: string; details?: string };
  resolution?: string;
  created_at: string;
  updated_at: string;
  [key: string]: unknown;
}

/** A user for GET /users; extra fields are passed through. */
export interface StubUser {
  id: string;
  email: string;
  name: string;
  [key: string]: unknown;
}

export interface FailOptions {
  status: number;
  /**
   * Response body. Omitted: a PagerDuty-shaped error for the status (REST: `{error:{message,code}}`, 429 →
   * "Rate Limit Exceeded"/2020; events: `{status,message,errors}`). A string is sent raw as text/plain (use this for
   * an HTML 502 page); '' sends an empty body; anything else is JSON.
   */
  body?: unknown;
  /** Extra response headers, e.g. `{ 'retry-after': '1' }` or `{ 'ratelimit-reset': '1' }`. */
  headers?: Record<string, string>;
  /** How many matching requests to fail; default 1; Infinity = until clearFaults()/reset(). */
  times?: number;
}

export interface HangOptions {
  /** How many matching requests to hang; default 1; Infinity = until cleared. */
  times?: number;
  /**
   * Apply the request (state changes, e.g. the alert opens) but never answer: the "PagerDuty got it, the client
   * timed out" case. Default false: the request is recorded but has no effect.
   */
  process?: boolean;
}

export interface WaitForCountOptions {
  /** Count only requests the stub answered with 2xx by its own logic (not faults). */
  accepted?: boolean;
  timeoutMs?: number;
}

export interface HelperOptions {
  /** Only requests that the stub answered 2xx itself (faulted, hung, rejected and pending ones left out). */
  accepted?: boolean;
}

export type RequestPredicate = (requests: readonly RecordedRequest[]) => boolean;

// ---------------------------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------------------------

type JsonObject = Record<string, unknown>;

interface StubResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  note?: string;
}

interface Fault {
  route: FaultRoute;
  kind: 'status' | 'hang' | 'delay';
  remaining: number;
  until: number | undefined;
  status: number;
  body: unknown;
  headers: Record<string, string> | undefined;
  delayMs: number;
  process: boolean;
}

interface Waiter {
  check: () => boolean;
  fail: (error: Error) => void;
}

const SEVERITIES = ['critical', 'error', 'warning', 'info'];
const INCIDENT_STATUSES: readonly string[] = ['triggered', 'acknowledged', 'resolved'];
const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

function isAccepted(request: RecordedRequest): boolean {
  return request.fault === undefined && request.status !== undefined && request.status >= 200 && request.status < 300;
}

function pdId(prefix: string): string {
  const bytes = randomBytes(13);
  let id = prefix;
  for (const byte of bytes) id += ID_CHARS[byte % ID_CHARS.length];
  return id;
}

function reason(status: number): string {
  return STATUS_CODES[status] ?? `HTTP ${status}`;
}

function classify(method: string, path: string): StubRoute | 'unknown' {
  if (path === '/v2/enqueue') return method === 'POST' ? 'events' : 'unknown';
  if (path === '/v2/change/enqueue') return method === 'POST' ? 'change' : 'unknown';
  if (path === '/incidents') {
    if (method === 'POST') return 'incidents.create';
    if (method === 'GET') return 'incidents.list';
    return 'unknown';
  }
  if (/^\/incidents\/[^/]+$/.test(path)) {
    if (method === 'PUT') return 'incidents.update';
    if (method === 'GET') return 'incidents.get';
    return 'unknown';
  }
  if (/^\/incidents\/[^/]+\/responder_requests$/.test(path)) return method === 'POST' ? 'responders' : 'unknown';
  if (/^\/incidents\/[^/]+\/notes$/.test(path)) return method === 'POST' ? 'notes' : 'unknown';
  if (/^\/users(\/[^/]+)?$/.test(path)) return method === 'GET' ? 'users' : 'unknown';
  return 'unknown';
}

function isEventsRoute(route: StubRoute | 'unknown'): boolean {
  return route === 'events' || route === 'change';
}

function invalidEvent(errors: string[]): StubResponse {
  return { status: 400, body: { status: 'invalid event', message: 'Event object is invalid', errors } };
}

function restError(status: number, message: string, code: number, errors?: string[]): StubResponse {
  return { status, body: { error: errors === undefined ? { message, code } : { message, code, errors } } };
}

/** Best-effort PagerDuty error codes (only 2001, 2020, 2100, 1001 and 1007 appear in the docs we follow). */
function restCode(status: number): number {
  switch (status) {
    case 400:
      return 2001;
    case 401:
      return 2006;
    case 403:
      return 2010;
    case 404:
      return 2100;
    case 429:
      return 2020;
    default:
      return 2000;
  }
}

function defaultFaultBody(route: StubRoute | 'unknown', status: number): unknown {
  if (isEventsRoute(route)) {
    if (status === 400) return invalidEvent(['Event object is invalid']).body;
    return { status: reason(status), message: reason(status), errors: [reason(status)] };
  }
  if (status === 429) return { error: { message: 'Rate Limit Exceeded', code: 2020 } };
  if (status === 402) {
    return {
      error: { message: 'Payment Required', code: 2000, errors: ['Account does not have the ability required'] },
    };
  }
  return { error: { message: reason(status), code: restCode(status) } };
}

function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

function describe(request: RecordedRequest): string {
  const status = request.status === undefined ? (request.fault === 'hang' ? 'hung' : 'pending') : request.status;
  let body = request.rawBody.replace(/\s+/g, ' ');
  if (body.length > 300) body = `${body.slice(0, 300)}…`;
  const query = request.searchParams.size > 0 ? `?${request.searchParams.toString()}` : '';
  const extra = [request.fault ? `fault=${request.fault}` : '', request.note ?? ''].filter((s) => s !== '').join(', ');
  return `  #${request.seq} ${request.method} ${request.path}${query} → ${status}${extra ? ` (${extra})` : ''} ${body}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The stub
// ---------------------------------------------------------------------------------------------------------------

export class PagerDutyStub {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** host:port, e.g. 127.0.0.1:41234 */
  readonly host: string;
  readonly port: number;

  /** Users served by GET /users (substring match on email or name, case-insensitive). Kept across reset(). */
  users: StubUser[] = [];
  /** When set, REST calls must carry exactly `Token token=<apiToken>` (or `Bearer <apiToken>`). Kept across reset(). */
  apiToken: string | undefined = undefined;
  /**
   * When true, the From header must be a configured user's email and assignees must be configured user ids
   * (400, code 1007 "Assigned To User Not Found"). Default false. Kept across reset().
   */
  strictUsers = false;
  /** Events and change events over this many bytes are refused with a 400, as PagerDuty does. Kept across reset(). */
  maxEventBytes = 512_000;

  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #requests: RecordedRequest[] = [];
  readonly #faults: Fault[] = [];
  readonly #alerts = new Map<string, StubAlert>();
  readonly #incidents = new Map<string, StubIncident>();
  readonly #waiters = new Set<Waiter>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #hanging = new Set<ServerResponse>();
  #seq = 0;
  #incidentNumber = 0;
  #responderOverride: { status: number; body: unknown } | undefined;
  #closing: Promise<void> | undefined;

  /** Use startPagerDutyStub(). */
  constructor(server: Server) {
    this.#server = server;
    const address = server.address() as AddressInfo;
    this.port = address.port;
    this.host = `127.0.0.1:${address.port}`;
    this.url = `${server instanceof HttpsServer ? 'https' : 'http'}://${this.host}`;
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.#onRequest(req, res).catch((error: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
          res.end(`PagerDuty stub error: ${error instanceof Error ? error.stack : String(error)}`);
        }
      });
    });
  }

  // ----- records --------------------------------------------------------------------------------------------------

  /** Every request received since start or the last reset(), in arrival order. */
  get requests(): readonly RecordedRequest[] {
    return this.#requests;
  }

  /** Requests to one route. */
  requestsTo(route: StubRoute | 'unknown', options: HelperOptions = {}): RecordedRequest[] {
    return this.#requests.filter((r) => r.route === route && (!options.accepted || isAccepted(r)));
  }

  /** Bodies of POST /v2/enqueue (JSON objects only; see `requests` for anything else). */
  events(options: HelperOptions = {}): EventsV2Body[] {
    return this.#bodies<EventsV2Body>('events', options);
  }

  /** Bodies of POST /v2/change/enqueue. */
  changeEvents(options: HelperOptions = {}): ChangeEventBody[] {
    return this.#bodies<ChangeEventBody>('change', options);
  }

  /** Bodies of POST /incidents. */
  incidentCreates(options: HelperOptions = {}): IncidentCreateBody[] {
    return this.#bodies<IncidentCreateBody>('incidents.create', options);
  }

  /** PUT /incidents/:id calls. */
  incidentUpdates(options: HelperOptions = {}): IncidentCall<IncidentUpdateBody>[] {
    return this.#calls<IncidentUpdateBody>('incidents.update', options);
  }

  /** POST /incidents/:id/responder_requests calls. */
  responderRequests(options: HelperOptions = {}): IncidentCall<ResponderRequestBody>[] {
    return this.#calls<ResponderRequestBody>('responders', options);
  }

  /**
   * Resolves with the request log once `predicate(requests)` is true (checked now, on every arrival and on every
   * answer). Rejects after timeoutMs with a message listing what was received. A predicate that throws counts as
   * false; its last error is quoted in the timeout message.
   */
  waitFor(predicate: RequestPredicate, timeoutMs = 5000): Promise<readonly RecordedRequest[]> {
    return new Promise((resolve, reject) => {
      let lastError: unknown;
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        check: () => {
          let satisfied = false;
          try {
            satisfied = predicate(this.#requests);
          } catch (error) {
            lastError = error;
          }
          if (satisfied) {
            this.#waiters.delete(waiter);
            if (timer) this.#clearTimer(timer);
            resolve(this.#requests);
          }
          return satisfied;
        },
        fail: (error) => {
          this.#waiters.delete(waiter);
          if (timer) this.#clearTimer(timer);
          reject(error);
        },
      };
      if (waiter.check()) return;
      if (this.#closing) {
        reject(new Error('PagerDuty stub: waitFor called after close()'));
        return;
      }
      this.#waiters.add(waiter);
      timer = this.#setTimer(() => {
        const source = String(predicate).replace(/\s+/g, ' ').slice(0, 200);
        const thrown =
          lastError === undefined
            ? ''
            : `\npredicate last threw: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
        waiter.fail(
          new Error(
            `PagerDuty stub: waitFor timed out after ${timeoutMs} ms; predicate: ${source}${thrown}\n${this.summary()}`,
          ),
        );
      }, timeoutMs);
    });
  }

  /** Waits until at least `count` requests reached `route` (optionally only accepted ones). */
  waitForCount(
    route: StubRoute | 'unknown',
    count: number,
    options: WaitForCountOptions = {},
  ): Promise<readonly RecordedRequest[]> {
    const { accepted = false, timeoutMs = 5000 } = options;
    const predicate: RequestPredicate = (requests) =>
      requests.filter((r) => r.route === route && (!accepted || isAccepted(r))).length >= count;
    return this.waitFor(predicate, timeoutMs).catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(
        message.replace(/predicate: .*/, `expected ≥${count} ${accepted ? 'accepted ' : ''}request(s) to '${route}'`),
      );
    });
  }

  /** A readable list of everything received, for assertion messages. */
  summary(): string {
    if (this.#requests.length === 0) return 'received no requests';
    return `received ${this.#requests.length} request(s):\n${this.#requests.map(describe).join('\n')}`;
  }

  // ----- state ----------------------------------------------------------------------------------------------------

  /** Alerts that are triggered or acknowledged. */
  openAlerts(): StubAlert[] {
    return [...this.#alerts.values()].filter((a) => a.status !== 'resolved').map((a) => ({ ...a }));
  }

  /** Every alert ever seen, resolved ones included. */
  alerts(): StubAlert[] {
    return [...this.#alerts.values()].map((a) => ({ ...a }));
  }

  alertState(routingKey: string, dedupKey: string): StubAlert | undefined {
    const alert = this.#alerts.get(`${routingKey}\u0000${dedupKey}`);
    return alert ? { ...alert } : undefined;
  }

  /** Incidents created through POST /incidents, oldest first (copies). */
  incidents(): StubIncident[] {
    return [...this.#incidents.values()].map((i) => structuredClone(i));
  }

  incident(id: string): StubIncident | undefined {
    const incident = this.#incidents.get(id);
    return incident ? structuredClone(incident) : undefined;
  }

  // ----- faults ---------------------------------------------------------------------------------------------------

  /** Answer the next `times` (default 1) requests to `route` with `status` instead of handling them. */
  failNext(route: FaultRoute, options: FailOptions): void {
    this.#faults.push({
      route,
      kind: 'status',
      remaining: options.times ?? 1,
      until: undefined,
      status: options.status,
      body: options.body,
      headers: options.headers,
      delayMs: 0,
      process: false,
    });
  }

  /** Answer every request to `route` with `status` for the next `ms` milliseconds of wall time. */
  failFor(route: FaultRoute, ms: number, options: Omit<FailOptions, 'times'>): void {
    this.#faults.push({
      route,
      kind: 'status',
      remaining: Number.POSITIVE_INFINITY,
      until: Date.now() + ms,
      status: options.status,
      body: options.body,
      headers: options.headers,
      delayMs: 0,
      process: false,
    });
  }

  /** Accept the next `times` (default 1) requests to `route` and never answer (until close() or dropHanging()). */
  hang(route: FaultRoute, options: HangOptions = {}): void {
    this.#faults.push({
      route,
      kind: 'hang',
      remaining: options.times ?? 1,
      until: undefined,
      status: 0,
      body: undefined,
      headers: undefined,
      delayMs: 0,
      process: options.process ?? false,
    });
  }

  /** Handle the next `times` (default 1) requests to `route` at once but send the answer only after `ms`. */
  delay(route: FaultRoute, ms: number, options: { times?: number } = {}): void {
    this.#faults.push({
      route,
      kind: 'delay',
      remaining: options.times ?? 1,
      until: undefined,
      status: 0,
      body: undefined,
      headers: undefined,
      delayMs: ms,
      process: true,
    });
  }

  /**
   * Make every POST /incidents/:id/responder_requests answer `status` (e.g. 402, no coordinated_responding ability)
   * without applying it; `undefined` restores 200. Cleared by reset() and clearFaults().
   */
  setResponderRequestStatus(status: number | undefined, body?: unknown): void {
    this.#responderOverride =
      status === undefined ? undefined : { status, body: body ?? defaultFaultBody('responders', status) };
  }

  /** Remove programmed faults (all, or those registered for exactly `route`). */
  clearFaults(route?: FaultRoute): void {
    for (let i = this.#faults.length - 1; i >= 0; i--) {
      const fault = this.#faults[i];
      if (fault && (route === undefined || fault.route === route)) this.#faults.splice(i, 1);
    }
    if (route === undefined || route === 'responders') this.#responderOverride = undefined;
  }

  /** Destroy the sockets of hung requests now (clients see a connection reset), without closing the server. */
  dropHanging(): void {
    for (const res of this.#hanging) res.socket?.destroy();
    this.#hanging.clear();
  }

  /** Clear records, faults, alerts and incidents. Keeps `users`, `apiToken` and `strictUsers`. */
  reset(): void {
    this.dropHanging();
    this.clearFaults();
    this.#requests.length = 0;
    this.#alerts.clear();
    this.#incidents.clear();
    this.#seq = 0;
    this.#incidentNumber = 0;
  }

  /** Stop the server, destroying every socket (hung ones included). Pending waitFor() calls reject. Idempotent. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const waiter of [...this.#waiters]) waiter.fail(new Error(`PagerDuty stub closed.\n${this.summary()}`));
    this.#closing = new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
      for (const socket of this.#sockets) socket.destroy();
      this.#hanging.clear();
    });
    return this.#closing;
  }

  // ----- request handling -----------------------------------------------------------------------------------------

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
    } catch {
      return; // the client went away mid-body
    }
    const rawBody = Buffer.concat(chunks).toString('utf8');
    let body: unknown = rawBody;
    if (rawBody.trim() !== '') {
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = rawBody;
      }
    }
    const parsed = new URL(req.url ?? '/', 'http://stub.invalid');
    const path = parsed.pathname.replace(/\/+$/, '') || '/';
    const method = (req.method ?? 'GET').toUpperCase();
    const query: Record<string, string> = {};
    for (const [name, value] of parsed.searchParams) if (!(name in query)) query[name] = value;
    const record: RecordedRequest = {
      seq: ++this.#seq,
      method,
      path,
      query,
      searchParams: parsed.searchParams,
      headers: flattenHeaders(req),
      body,
      rawBody,
      at: Date.now(),
      route: classify(method, path),
      status: undefined,
      fault: undefined,
      note: undefined,
    };
    this.#requests.push(record);
    this.#notify();

    const fault = this.#takeFault(record.route);
    if (fault?.kind === 'hang') {
      record.fault = 'hang';
      if (fault.process) record.note = this.#dispatch(record).note;
      this.#hanging.add(res);
      res.on('close', () => this.#hanging.delete(res));
      this.#notify();
      return;
    }
    if (fault?.kind === 'status') {
      record.fault = 'status';
      const faultBody = fault.body === undefined ? defaultFaultBody(record.route, fault.status) : fault.body;
      this.#send(record, res, { status: fault.status, body: faultBody, headers: fault.headers ?? {} });
      return;
    }
    const response = this.#dispatch(record);
    if (fault?.kind === 'delay') {
      record.fault = 'delay';
      record.note = response.note;
      this.#notify();
      this.#setTimer(() => this.#send(record, res, response), fault.delayMs);
      return;
    }
    this.#send(record, res, response);
  }

  #takeFault(route: StubRoute | 'unknown'): Fault | undefined {
    const now = Date.now();
    for (let i = 0; i < this.#faults.length; i++) {
      const fault = this.#faults[i];
      if (!fault) continue;
      if ((fault.until !== undefined && now >= fault.until) || fault.remaining <= 0) {
        this.#faults.splice(i, 1);
        i--;
        continue;
      }
      if (fault.route !== '*' && fault.route !== route) continue;
      fault.remaining--;
      if (fault.remaining <= 0) this.#faults.splice(i, 1);
      return fault;
    }
    return undefined;
  }

  #send(record: RecordedRequest, res: ServerResponse, response: StubResponse): void {
    if (res.destroyed || res.writableEnded) return;
    const headers: Record<string, string> = {};
    let payload = '';
    if (typeof response.body === 'string') {
      payload = response.body;
      if (payload !== '') headers['content-type'] = 'text/plain; charset=utf-8';
    } else if (response.body !== undefined) {
      payload = JSON.stringify(response.body);
      headers['content-type'] = 'application/json; charset=utf-8';
    }
    for (const [name, value] of Object.entries(response.headers ?? {})) headers[name.toLowerCase()] = value;
    record.status = response.status;
    if (response.note !== undefined) record.note = response.note;
    res.writeHead(response.status, headers);
    res.end(payload);
    this.#notify();
  }

  #dispatch(record: RecordedRequest): StubResponse {
    switch (record.route) {
      case 'events':
        return this.#handleEvent(record);
      case 'change':
        return this.#handleChange(record);
      case 'unknown':
        return record.path.startsWith('/v2/')
          ? { status: 404, body: { status: 'error', message: 'Not Found' } }
          : restError(404, 'Not Found', 2100);
    }
    const denied = this.#checkAuth(record);
    if (denied) return denied;
    switch (record.route) {
      case 'incidents.create':
        return this.#createIncident(record);
      case 'incidents.update':
        return this.#updateIncident(record);
      case 'incidents.get':
        return this.#getIncident(record);
      case 'incidents.list':
        return this.#listIncidents(record);
      case 'responders':
        return this.#createResponderRequest(record);
      case 'notes':
        return this.#createNote(record);
      case 'users':
        return this.#getUsers(record);
    }
  }

  // ----- Events API v2 --------------------------------------------------------------------------------------------

  /** PagerDuty refuses an event over 512 KB (counted as Alertmanager does: 512,000 bytes) with a 400. */
  #tooLarge(record: RecordedRequest): StubResponse | undefined {
    const bytes = Buffer.byteLength(record.rawBody, 'utf8');
    if (bytes <= this.maxEventBytes) return undefined;
    return { ...invalidEvent([`Event object is too large: ${bytes} bytes, the limit is 512 KB`]), note: 'too large' };
  }

  #handleEvent(record: RecordedRequest): StubResponse {
    const tooLarge = this.#tooLarge(record);
    if (tooLarge) return tooLarge;
    const body = record.body;
    if (!isObject(body)) return invalidEvent(['Event object must be a JSON object']);
    const errors: string[] = [];
    const routingKey = body.routing_key;
    const action = body.event_action;
    const dedupKey = body.dedup_key;
    const payload = body.payload;
    if (!isNonEmptyString(routingKey)) errors.push("'routing_key' is missing or blank");
    if (action !== 'trigger' && action !== 'acknowledge' && action !== 'resolve') {
      errors.push("'event_action' must be one of 'trigger', 'acknowledge' or 'resolve'");
    }
    if (dedupKey !== undefined && typeof dedupKey !== 'string') errors.push("'dedup_key' must be a string");
    if (typeof dedupKey === 'string' && dedupKey.length > 255) errors.push("'dedup_key' is longer than 255 characters");
    if ((action === 'acknowledge' || action === 'resolve') && !isNonEmptyString(dedupKey)) {
      errors.push("'dedup_key' is required to acknowledge or resolve");
    }
    if (action === 'trigger') {
      if (!isObject(payload)) {
        errors.push("'payload' is missing or not an object");
      } else {
        const { summary, source, severity, timestamp } = payload;
        if (!isNonEmptyString(summary)) errors.push("'payload.summary' is missing or blank");
        else if (summary.length > 1024) errors.push("'payload.summary' is longer than 1024 characters");
        if (!isNonEmptyString(source)) errors.push("'payload.source' is missing or blank");
        if (typeof severity !== 'string' || !SEVERITIES.includes(severity)) {
          errors.push("'payload.severity' must be one of 'critical', 'error', 'warning' or 'info'");
        }
        if (timestamp !== undefined && (typeof timestamp !== 'string' || Number.isNaN(Date.parse(timestamp)))) {
          errors.push("'payload.timestamp' must be an ISO 8601 timestamp");
        }
      }
    }
    if (errors.length > 0 || !isNonEmptyString(routingKey)) return invalidEvent(errors);

    const key = isNonEmptyString(dedupKey) ? dedupKey : randomUUID().replace(/-/g, '');
    const mapKey = `${routingKey}\u0000${key}`;
    const alert = this.#alerts.get(mapKey);
    const now = Date.now();
    let note: string;
    if (action === 'trigger') {
      const eventPayload = isObject(payload) ? (payload as EventPayload) : undefined;
      if (!alert) {
        this.#alerts.set(mapKey, {
          routingKey,
          dedupKey: key,
          status: 'triggered',
          incidentsOpened: 1,
          triggerCount: 1,
          payload: eventPayload,
          updatedAt: now,
        });
        note = 'alert opened';
      } else if (alert.status === 'resolved') {
        Object.assign(alert, {
          status: 'triggered',
          incidentsOpened: alert.incidentsOpened + 1,
          triggerCount: alert.triggerCount + 1,
          payload: eventPayload,
          updatedAt: now,
        });
        note = 'alert re-opened (new incident)';
      } else {
        Object.assign(alert, { triggerCount: alert.triggerCount + 1, payload: eventPayload, updatedAt: now });
        note = 'deduplicated into open alert';
      }
    } else if (!alert || alert.status === 'resolved') {
      note = 'dropped: no open alert';
    } else {
      alert.status = action === 'acknowledge' ? 'acknowledged' : 'resolved';
      alert.updatedAt = now;
      note = `alert ${alert.status}`;
    }
    return { status: 202, body: { status: 'success', message: 'Event processed', dedup_key: key }, note };
  }

  #handleChange(record: RecordedRequest): StubResponse {
    const tooLarge = this.#tooLarge(record);
    if (tooLarge) return tooLarge;
    const body = record.body;
    if (!isObject(body)) return invalidEvent(['Event object must be a JSON object']);
    const errors: string[] = [];
    if (!isNonEmptyString(body.routing_key)) errors.push("'routing_key' is missing or blank");
    const payload = body.payload;
    if (!isObject(payload)) {
      errors.push("'payload' is missing or not an object");
    } else {
      const summary = payload.summary;
      if (!isNonEmptyString(summary)) errors.push("'payload.summary' is missing or blank");
      else if (summary.length > 1024) errors.push("'payload.summary' is longer than 1024 characters");
    }
    if (errors.length > 0) return invalidEvent(errors);
    return { status: 202, body: { status: 'success', message: 'Change event processed' }, note: 'change recorded' };
  }

  // ----- REST API v2 ----------------------------------------------------------------------------------------------

  #checkAuth(record: RecordedRequest): StubResponse | undefined {
    const header = record.headers.authorization ?? '';
    const match = /^(?:Token token=|Bearer )(.+)$/.exec(header.trim());
    const token = match?.[1];
    if (!token || (this.apiToken !== undefined && token !== this.apiToken)) {
      return restError(401, 'Unauthorized', 2006, [
        header === '' ? 'Authorization header is missing' : 'Authorization header is invalid',
      ]);
    }
    return undefined;
  }

  #checkFrom(record: RecordedRequest): StubResponse | undefined {
    const from = record.headers.from?.trim() ?? '';
    if (from === '') {
      return restError(400, 'Invalid Input Provided', 2001, [
        'The From header is required: the email address of a valid PagerDuty user',
      ]);
    }
    if (this.strictUsers && !this.#userByEmail(from)) {
      return restError(400, 'Invalid Input Provided', 2001, [`From header '${from}' is not a valid user`]);
    }
    return undefined;
  }

  #userByEmail(email: string): StubUser | undefined {
    const wanted = email.trim().toLowerCase();
    return this.users.find((u) => u.email.toLowerCase() === wanted);
  }

  #validateAssignments(value: unknown, errors: string[]): Array<{ id: string }> {
    if (!Array.isArray(value)) {
      errors.push('incident.assignments must be an array');
      return [];
    }
    const ids: Array<{ id: string }> = [];
    for (const assignment of value) {
      const assignee: unknown = isObject(assignment) ? assignment.assignee : undefined;
      if (!isObject(assignee) || !isNonEmptyString(assignee.id) || assignee.type !== 'user_reference') {
        errors.push("each assignment must be {assignee:{id, type:'user_reference'}}");
        continue;
      }
      ids.push({ id: assignee.id });
    }
    if (value.length > 1) errors.push('only one assignee is supported');
    return ids;
  }

  #assignmentsFor(ids: Array<{ id: string }>, at: string): StubIncident['assignments'] {
    return ids.map(({ id }) => {
      const user = this.users.find((u) => u.id === id);
      return {
        at,
        assignee: user ? { id, type: 'user_reference', summary: user.name } : { id, type: 'user_reference' },
      };
    });
  }

  #unknownAssignees(ids: Array<{ id: string }>): StubResponse | undefined {
    if (!this.strictUsers) return undefined;
    const missing = ids.filter(({ id }) => !this.users.some((u) => u.id === id));
    if (missing.length === 0) return undefined;
    return restError(
      400,
      'Assigned To User Not Found',
      1007,
      missing.map(({ id }) => `User ${id} not found`),
    );
  }

  #createIncident(record: RecordedRequest): StubResponse {
    const noFrom = this.#checkFrom(record);
    if (noFrom) return noFrom;
    const body = record.body;
    const incident = isObject(body) ? body.incident : undefined;
    if (!isObject(incident)) return restError(400, 'Invalid Input Provided', 2001, ['incident is required']);
    const errors: string[] = [];
    if (incident.type !== 'incident') errors.push("incident.type must be 'incident'");
    const title = incident.title;
    if (!isNonEmptyString(title)) errors.push('incident.title is required');
    const service = incident.service;
    const serviceId = isObject(service) ? service.id : undefined;
    if (!isObject(service) || !isNonEmptyString(serviceId) || service.type !== 'service_reference') {
      errors.push("incident.service must be {id, type:'service_reference'}");
    }
    const incidentKey = incident.incident_key;
    if (incidentKey !== undefined && !isNonEmptyString(incidentKey))
      errors.push('incident.incident_key must be a string');
    const urgency = incident.urgency;
    if (urgency !== undefined && urgency !== 'high' && urgency !== 'low')
      errors.push("incident.urgency must be 'high' or 'low'");
    const assignees = incident.assignments === undefined ? [] : this.#validateAssignments(incident.assignments, errors);
    if (incident.assignments !== undefined && incident.escalation_policy !== undefined) {
      errors.push('assignments and escalation_policy are mutually exclusive');
    }
    const incidentBody = incident.body;
    if (
      incidentBody !== undefined &&
      (!isObject(incidentBody) || incidentBody.type !== 'incident_body' || typeof incidentBody.details !== 'string')
    ) {
      errors.push("incident.body must be {type:'incident_body', details: string}");
    }
    if (errors.length > 0 || !isNonEmptyString(title) || !isNonEmptyString(serviceId)) {
      return restError(400, 'Invalid Input Provided', 2001, errors);
    }
    const unknown = this.#unknownAssignees(assignees);
    if (unknown) return unknown;

    if (isNonEmptyString(incidentKey)) {
      const open = [...this.#incidents.values()].find(
        (i) => i.service.id === serviceId && i.incident_key === incidentKey && i.status !== 'resolved',
      );
      if (open) {
        return {
          ...restError(400, 'Open incident with key exists', 2001, [
            `Open incident with key '${incidentKey}' already exists (${open.id})`,
          ]),
          note: `incident_key conflict with ${open.id}`,
        };
      }
    }

    const now = new Date().toISOString();
    const id = pdId('Q');
    const fromUser = this.#userByEmail(record.headers.from ?? '');
    const selfAssigned = fromUser !== undefined && assignees.length === 1 && assignees[0]?.id === fromUser.id;
    const created: StubIncident = {
      id,
      type: 'incident',
      incident_number: ++this.#incidentNumber,
      title,
      status: selfAssigned ? 'acknowledged' : 'triggered',
      urgency: typeof urgency === 'string' ? urgency : 'high',
      html_url: `${this.url}/incidents/${id}`,
      self: `${this.url}/incidents/${id}`,
      incident_key: isNonEmptyString(incidentKey) ? incidentKey : randomUUID().replace(/-/g, ''),
      service: { id: serviceId, type: 'service_reference' },
      assignments: this.#assignmentsFor(assignees, now),
      created_at: now,
      updated_at: now,
    };
    if (isObject(incident.escalation_policy)) created.escalation_policy = incident.escalation_policy as Reference;
    if (isObject(incidentBody) && typeof incidentBody.details === 'string') {
      created.body = { type: 'incident_body', details: incidentBody.details };
    }
    this.#incidents.set(id, created);
    return { status: 201, body: { incident: structuredClone(created) }, note: `incident ${id} created` };
  }

  #incidentFromPath(record: RecordedRequest): StubIncident | undefined {
    const segment = record.path.split('/')[2] ?? '';
    return this.#incidents.get(decodeURIComponent(segment));
  }

  #updateIncident(record: RecordedRequest): StubResponse {
    const noFrom = this.#checkFrom(record);
    if (noFrom) return noFrom;
    const existing = this.#incidentFromPath(record);
    if (!existing) return restError(404, 'Not Found', 2100);
    const body = record.body;
    const update = isObject(body) ? body.incident : undefined;
    if (!isObject(update)) return restError(400, 'Invalid Input Provided', 2001, ['incident is required']);
    const errors: string[] = [];
    if (update.type !== 'incident_reference' && update.type !== 'incident') {
      errors.push("incident.type must be 'incident_reference'");
    }
    const status = update.status;
    if (status !== undefined && (typeof status !== 'string' || !INCIDENT_STATUSES.includes(status))) {
      errors.push("incident.status must be 'triggered', 'acknowledged' or 'resolved'");
    }
    const assignees =
      update.assignments === undefined ? undefined : this.#validateAssignments(update.assignments, errors);
    if (errors.length > 0) return restError(400, 'Invalid Input Provided', 2001, errors);
    if (assignees) {
      const unknown = this.#unknownAssignees(assignees);
      if (unknown) return unknown;
    }
    if (existing.status === 'resolved' && (status === 'resolved' || status === 'acknowledged')) {
      return restError(400, 'Incident Already Resolved', 1001, ['Incident Already Resolved']);
    }
    const now = new Date().toISOString();
    if (status === 'triggered' || status === 'acknowledged' || status === 'resolved') existing.status = status;
    if (assignees) existing.assignments = this.#assignmentsFor(assignees, now);
    if (isNonEmptyString(update.title)) existing.title = update.title;
    if (update.urgency === 'high' || update.urgency === 'low') existing.urgency = update.urgency;
    if (typeof update.resolution === 'string') existing.resolution = update.resolution;
    existing.updated_at = now;
    return {
      status: 200,
      body: { incident: structuredClone(existing) },
      note: `incident ${existing.id} ${typeof status === 'string' ? status : 'updated'}`,
    };
  }

  #getIncident(record: RecordedRequest): StubResponse {
    const existing = this.#incidentFromPath(record);
    if (!existing) return restError(404, 'Not Found', 2100);
    return { status: 200, body: { incident: structuredClone(existing) } };
  }

  #listIncidents(record: RecordedRequest): StubResponse {
    const params = record.searchParams;
    const statuses = params.getAll('statuses[]');
    const serviceIds = params.getAll('service_ids[]');
    const incidentKey = params.get('incident_key');
    const all = [...this.#incidents.values()].filter(
      (i) =>
        (statuses.length === 0 || statuses.includes(i.status)) &&
        (serviceIds.length === 0 || serviceIds.includes(i.service.id)) &&
        (incidentKey === null || i.incident_key === incidentKey),
    );
    const { limit, offset } = this.#page(record);
    const page = all.slice(offset, offset + limit).map((i) => structuredClone(i));
    return {
      status: 200,
      body: { incidents: page, limit, offset, more: offset + limit < all.length, total: all.length },
    };
  }

  #page(record: RecordedRequest): { limit: number; offset: number } {
    const limit = Number.parseInt(record.query.limit ?? '25', 10);
    const offset = Number.parseInt(record.query.offset ?? '0', 10);
    return {
      limit: Number.isFinite(limit) && limit > 0 ? Math.min(limit, 100) : 25,
      offset: Number.isFinite(offset) && offset >= 0 ? offset : 0,
    };
  }

  #createResponderRequest(record: RecordedRequest): StubResponse {
    if (this.#responderOverride) {
      return { status: this.#responderOverride.status, body: this.#responderOverride.body, note: 'responder override' };
    }
    const existing = this.#incidentFromPath(record);
    if (!existing) return restError(404, 'Not Found', 2100);
    const body = record.body;
    if (!isObject(body)) return restError(400, 'Invalid Input Provided', 2001, ['body must be a JSON object']);
    const errors: string[] = [];
    const requesterId = body.requester_id;
    const message = body.message;
    const targets = body.responder_request_targets;
    if (!isNonEmptyString(requesterId)) errors.push('requester_id is required');
    if (typeof message !== 'string') errors.push('message is required');
    if (!Array.isArray(targets) || targets.length === 0) {
      errors.push('responder_request_targets must be a non-empty array');
    } else {
      for (const target of targets) {
        const inner: unknown =
          isObject(target) && 'responder_request_target' in target ? target.responder_request_target : target;
        if (
          !isObject(inner) ||
          !isNonEmptyString(inner.id) ||
          (inner.type !== 'user_reference' && inner.type !== 'escalation_policy_reference')
        ) {
          errors.push(
            "each target must be {responder_request_target:{id, type:'user_reference'|'escalation_policy_reference'}}",
          );
        }
      }
    }
    if (errors.length > 0) return restError(400, 'Invalid Input Provided', 2001, errors);
    return {
      status: 200,
      body: {
        responder_request: {
          incident: { id: existing.id, type: 'incident_reference', summary: existing.title },
          requester: { id: requesterId, type: 'user_reference' },
          requested_at: new Date().toISOString(),
          message,
          responder_request_targets: targets,
        },
      },
      note: `responders requested on ${existing.id}`,
    };
  }

  #createNote(record: RecordedRequest): StubResponse {
    const denied = this.#checkFrom(record);
    if (denied) return denied;
    const existing = this.#incidentFromPath(record);
    if (!existing) return restError(404, 'Not Found', 2100);
    const body = record.body;
    const content = isObject(body) && isObject(body.note) ? body.note.content : undefined;
    if (!isNonEmptyString(content)) return restError(400, 'Invalid Input Provided', 2001, ['note.content is required']);
    return {
      status: 201,
      body: { note: { id: randomUUID(), content, created_at: new Date().toISOString() } },
      note: `note on ${existing.id}`,
    };
  }

  #userView(user: StubUser): JsonObject {
    return {
      type: 'user',
      summary: user.name,
      self: `${this.url}/users/${user.id}`,
      html_url: `${this.url}/users/${user.id}`,
      ...user,
    };
  }

  #getUsers(record: RecordedRequest): StubResponse {
    const id = record.path.split('/')[2];
    if (id !== undefined) {
      const user = this.users.find((u) => u.id === decodeURIComponent(id));
      return user ? { status: 200, body: { user: this.#userView(user) } } : restError(404, 'Not Found', 2100);
    }
    const needle = (record.query.query ?? '').toLowerCase();
    const matching = this.users.filter(
      (u) => needle === '' || u.email.toLowerCase().includes(needle) || u.name.toLowerCase().includes(needle),
    );
    const { limit, offset } = this.#page(record);
    return {
      status: 200,
      body: {
        users: matching.slice(offset, offset + limit).map((u) => this.#userView(u)),
        limit,
        offset,
        more: offset + limit < matching.length,
        total: matching.length,
      },
    };
  }

  // ----- plumbing -------------------------------------------------------------------------------------------------

  #bodies<B>(route: StubRoute, options: HelperOptions): B[] {
    return this.requestsTo(route, options)
      .map((r) => r.body)
      .filter(isObject) as B[];
  }

  #calls<B>(route: StubRoute, options: HelperOptions): IncidentCall<B>[] {
    return this.requestsTo(route, options)
      .filter((r) => isObject(r.body))
      .map((r) => ({
        incidentId: decodeURIComponent(r.path.split('/')[2] ?? ''),
        from: r.headers.from,
        body: r.body as B,
        request: r,
      }));
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter.check();
  }

  #setTimer(fn: () => void, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
    return timer;
  }

  #clearTimer(timer: NodeJS.Timeout): void {
    clearTimeout(timer);
    this.#timers.delete(timer);
  }
}

/** The test certificate for 127.0.0.1 (test/fixtures/tls): the CA to trust when the stub speaks HTTPS. */
export const TEST_CA = readFileSync(new URL('../fixtures/tls/localhost.crt', import.meta.url), 'utf8');

/**
 * Start a stub on 127.0.0.1 with an ephemeral port. Close it in afterEach/afterAll. With `https: true` it
 * serves TLS with the test certificate (trust TEST_CA): @pagerduty/pdjs sends events over https only.
 */
export async function startPagerDutyStub(opts: { https?: boolean } = {}): Promise<PagerDutyStub> {
  const server = opts.https
    ? createHttpsServer({
        cert: TEST_CA,
        key: readFileSync(new URL('../fixtures/tls/localhost.key', import.meta.url), 'utf8'),
      })
    : createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return new PagerDutyStub(server);
}
