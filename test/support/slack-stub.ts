import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { conditionWaiters } from './wait.js';

/**
 * A Slack Web API stand-in on 127.0.0.1: answers POST /api/<method> like Slack (HTTP 200 with {ok, …}),
 * records every call with its parsed arguments, and can be told to fail. Point `slack.api_url` at `stub.apiUrl`.
 * Like Slack, it refuses a message over its limits: more than 50 blocks or a section text over 3,000 characters
 * (invalid_blocks), a `text` over 40,000 characters (msg_too_long).
 */
export interface SlackCall {
  method: string;
  /** Arguments as sent: JSON bodies parsed, form bodies decoded (nested JSON strings such as blocks parsed). */
  args: Record<string, unknown>;
  authorization: string | undefined;
  at: number;
}

export interface SlackUser {
  id: string;
  email: string;
}

type Fault = { status: number; body?: unknown; headers?: Record<string, string>; times: number };

export interface SlackStub {
  apiUrl: string;
  calls: SlackCall[];
  users: SlackUser[];
  /** Calls of one method, in order. */
  callsTo(method: string): SlackCall[];
  /** Fail the next `times` calls (all methods) with this HTTP status and body. */
  fail(fault: { status: number; body?: unknown; headers?: Record<string, string>; times?: number }): void;
  clearFaults(): void;
  waitFor(predicate: (calls: SlackCall[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startSlackStub(): Promise<SlackStub> {
  const calls: SlackCall[] = [];
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();
  const waits = conditionWaiters('Slack stub', () => calls.map((c) => c.method).join(', '));
  let ts = 1_795_690_000;
  const stub: SlackStub = {
    apiUrl: '',
    calls,
    users: [],
    callsTo: (method) => calls.filter((c) => c.method === method),
    fail: (f) => {
      faults.push({ ...f, times: f.times ?? Number.POSITIVE_INFINITY });
    },
    clearFaults: () => {
      faults.length = 0;
    },
    waitFor: (predicate, timeoutMs) => waits.waitFor(() => predicate(calls), timeoutMs),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  function answer(method: string, args: Record<string, unknown>): unknown {
    if (method === 'chat.postMessage' || method === 'chat.update') {
      const refused = overLimits(args);
      if (refused) return { ok: false, error: refused };
    }
    switch (method) {
      case 'auth.test':
        return { ok: true, user_id: 'UBOT', bot_id: 'BBOT', team_id: 'T1' };
      case 'users.lookupByEmail': {
        const user = stub.users.find((u) => u.email.toLowerCase() === String(args.email).toLowerCase());
        return user
          ? { ok: true, user: { id: user.id, profile: { email: user.email } } }
          : { ok: false, error: 'users_not_found' };
      }
      case 'users.info': {
        const user = stub.users.find((u) => u.id === args.user);
        return user
          ? { ok: true, user: { id: user.id, profile: { email: user.email } } }
          : { ok: false, error: 'user_not_found' };
      }
      case 'chat.postMessage': {
        ts += 1;
        const channel = String(args.channel).startsWith('U') ? `D${String(args.channel).slice(1)}` : args.channel;
        return { ok: true, channel, ts: `${ts}.000100`, message: { text: args.text } };
      }
      case 'chat.update':
        return { ok: true, channel: args.channel, ts: args.ts, text: args.text };
      case 'chat.postEphemeral':
        return { ok: true, message_ts: `${ts}.000200` };
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse) {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0] ?? '';
    const args = parseArgs(raw, req.headers['content-type'] ?? '');
    calls.push({ method, args, authorization: req.headers.authorization, at: Date.now() });
    const fault = faults[0];
    if (fault) {
      fault.times -= 1;
      if (fault.times <= 0) faults.shift();
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      res.end(JSON.stringify(fault.body ?? { ok: false, error: 'internal_error' }));
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer(method, args)));
    }
    waits.notify();
  }

  const server: Server = createServer((req, res) => {
    onRequest(req, res).catch(() => res.destroy());
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`;
  return stub;
}

function overLimits(args: Record<string, unknown>): string | undefined {
  if (typeof args.text === 'string' && args.text.length > 40_000) return 'msg_too_long';
  const blocks = Array.isArray(args.blocks) ? (args.blocks as { type?: string; text?: { text?: unknown } }[]) : [];
  if (blocks.length > 50) return 'invalid_blocks';
  const long = blocks.some(
    (b) => b.type === 'section' && typeof b.text?.text === 'string' && b.text.text.length > 3000,
  );
  return long ? 'invalid_blocks' : undefined;
}

function parseArgs(raw: string, contentType: string): Record<string, unknown> {
  if (contentType.includes('application/json')) return raw ? JSON.parse(raw) : {};
  const args: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    try {
      args[k] = /^[[{]/.test(v) ? JSON.parse(v) : v;
    } catch {
      args[k] = v;
    }
  }
  return args;
}
