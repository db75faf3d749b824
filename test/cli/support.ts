import type { Server } from 'node:http';
import type { CliIo } from '../../src/cli/io.js';
import { createHarness, fakeClock, type Harness } from '../support/harness.js';

/** The service listening on loopback (the CLI speaks real HTTP to it), with a settable clock. */
export async function listeningService(opts: { yaml?: string; at?: string } = {}) {
  const clock = fakeClock(opts.at ?? '2026-11-26T11:00:00Z');
  const h: Harness = createHarness({ now: clock.now, ...(opts.yaml ? { yaml: opts.yaml } : {}) });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = h.app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    h,
    clock,
    url,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await h.close();
    },
  };
}

/** An injected CliIo: captured output, the given environment and files, and a sleep that moves the clock. */
export function cliIo(opts: {
  env?: Record<string, string | undefined>;
  files?: Record<string, string>;
  clock?: { now: () => number; advance: (ms: number) => void };
  fetch?: typeof fetch;
  onSleep?: (ms: number) => Promise<void> | void;
}) {
  const out: string[] = [];
  const err: string[] = [];
  const sleeps: number[] = [];
  const clock = opts.clock ?? { now: () => Date.parse('2026-11-26T11:00:00Z'), advance: () => {} };
  const io: CliIo = {
    env: opts.env ?? {},
    fetch: opts.fetch ?? globalThis.fetch,
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    readFile: (path) => {
      const text = opts.files?.[path];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return text;
    },
    now: clock.now,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock.advance(ms);
      await opts.onSleep?.(ms);
    },
  };
  return {
    io,
    sleeps,
    get stdout() {
      return out.join('');
    },
    get stderr() {
      return err.join('');
    },
  };
}
