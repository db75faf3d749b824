import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { StorageError, type Store } from '../store.js';
import { lockDatabase } from './instance-lock.js';
import { IntakeQueue } from './intake-queue.js';

// The SQLite store of the running service lives in a thread of its own. better-sqlite3 is synchronous: on the
// request's event loop every commit (synchronous=FULL, so an fsync) stops everything else, requests and
// deliveries alike, until the disk answers. In this thread the service goes on parsing, deciding and delivering
// while a commit waits for the disk, and the calls that arrive meanwhile share the next commit.
//
// Every Store method is a message to the thread and a promise of its answer; the arguments and answers are
// plain data (structured clone). Tests that build the service in-process use the synchronous store directly.

export interface Call {
  id: number;
  method: string;
  args: unknown[];
}

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
}

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: SerializedError };

export type Started = { started: true } | { started: false; error: SerializedError };

/** Methods answered here, without a message: the thread never calls back. */
const LOCAL = new Set(['onWork', 'isOpen', 'close', 'then']);

/**
 * The calls of alert intake, which take turns for the thread (intake-queue.ts), and the alerts each carries. A
 * Map, not an object literal: a property such as `toString` must not be taken for an intake call.
 */
const INTAKE = new Map<string, (args: unknown[]) => number>([
  ['knownEpisodes', ([alerts]) => (alerts as unknown[]).length],
  ['findDeployCandidates', ([queries]) => (queries as unknown[]).length],
  ['recordAlerts', ([, writes]) => (writes as unknown[]).length],
]);

/**
 * The alerts' worth of intake calls the thread holds at once: about one storm notification, some milliseconds of
 * the thread, which is what a delivery's call may wait behind. Measured in docs/performance.md.
 */
const INTAKE_BUDGET = 100;

/** How long an intake call may be passed over by lighter ones before it goes next. */
const INTAKE_OVERDUE_MS = 100;

/**
 * Opens the SQLite database at `path` in a database thread and resolves once its schema is up to date. The
 * process takes the database's lock (instance-lock.ts) first, so a second instance is refused before any thread
 * starts. `onLost` hears of a thread that stopped without being closed (a bug or no memory left in it): every call
 * then fails as a storage error, and the service should stop (open.ts).
 */
export async function openSqliteThread(
  path: string,
  log: Logger,
  onLost: (reason: Error) => void = () => {},
  /** The thread's script; tests stand another in for thread-entry to see what a dying thread does. */
  entry?: URL,
): Promise<Store> {
  mkdirSync(dirname(path), { recursive: true });
  const lock = lockDatabase(path);
  const worker = entry ? new Worker(entry, { workerData: { path } }) : startThread(path);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  let nextId = 1;
  let stopped: StorageError | undefined;

  const stop = (reason: StorageError) => {
    stopped ??= reason;
    for (const p of pending.values()) p.reject(stopped);
    pending.clear();
  };

  try {
    await started(worker);
  } catch (err) {
    // The reason is in hand: whatever else the thread reports on its way out is not news.
    worker.on('error', () => {});
    await worker.terminate();
    lock.release();
    throw err;
  }

  worker.on('message', (reply: Reply) => {
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    if (reply.ok) p.resolve(reply.value);
    else p.reject(rebuild(reply.error));
  });
  // A thread that dies takes no call with it silently: every caller hears a storage error (a 503 that
  // Alertmanager retries), /readyz fails, and onLost hears why.
  const lost = (reason: StorageError) => {
    if (stopped) return;
    stop(reason);
    log.fatal({ err: reason }, 'the database thread stopped; every store call now fails');
    onLost(reason);
  };
  worker.on('error', (err) => lost(new StorageError(`database: the database thread failed: ${err.message}`)));
  worker.on('exit', (code) => lost(new StorageError(`database: the database thread exited (code ${code})`)));

  const call = (method: string, args: unknown[]): Promise<unknown> => {
    if (stopped) return Promise.reject(stopped);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, method, args } satisfies Call);
    });
  };

  const local: Pick<Store, 'onWork' | 'close'> & { isOpen(): boolean } = {
    // One instance: its own commits wake its worker (see Lifecycle.onWork).
    onWork() {},
    isOpen: () => !stopped,
    async close() {
      if (stopped) {
        // A lost thread is gone already; the lock is this process's to give back.
        lock.release();
        return;
      }
      try {
        await call('close', []);
      } finally {
        stop(new StorageError('database: the database is closed'));
        await worker.terminate();
        lock.release();
      }
    },
  };
  const intake = new IntakeQueue(INTAKE_BUDGET, INTAKE_OVERDUE_MS);
  return new Proxy(local as unknown as Store, {
    get(target, prop) {
      if (typeof prop !== 'string') return undefined;
      if (LOCAL.has(prop)) return (target as unknown as Record<string, unknown>)[prop];
      const weigh = INTAKE.get(prop);
      if (weigh) return (...args: unknown[]) => intake.run(Math.max(1, weigh(args)), () => call(prop, args));
      return (...args: unknown[]) => call(prop, args);
    },
  });
}

/**
 * The thread runs thread-entry, compiled (dist/) or, when the service runs from its TypeScript sources (tsx,
 * vitest), through tsx's loader registered in the thread first.
 */
function startThread(path: string): Worker {
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSources ? './thread-entry.ts' : './thread-entry.js', import.meta.url);
  if (!fromSources) return new Worker(entry, { workerData: { path } });
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((api) => { api.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { eval: true, workerData: { path } });
}

/** Resolves when the thread has opened and migrated the database; rejects with why it could not. */
function started(worker: Worker): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const settle = (outcome: () => void) => {
      worker.off('message', onMessage).off('error', reject).off('exit', onExit);
      outcome();
    };
    const onMessage = (m: Started) => settle(() => (m.started ? resolve() : reject(rebuild(m.error))));
    const onExit = (code: number) =>
      settle(() => reject(new Error(`the database thread exited (code ${code}) while opening`)));
    worker.on('message', onMessage).on('error', reject).on('exit', onExit);
  });
}

function rebuild(error: SerializedError): Error {
  const err = error.name === 'StorageError' ? new StorageError(error.message) : new Error(error.message);
  if (error.name !== 'StorageError') err.name = error.name;
  if (error.stack !== undefined) err.stack = error.stack;
  return err;
}
