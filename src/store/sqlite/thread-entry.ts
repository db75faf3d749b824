import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import type { Store } from '../store.js';
import { openSqliteStore } from './store.js';
import type { Call, Reply, SerializedError, Started } from './thread.js';

// The body of the database thread (thread.ts): one SQLite connection, and every store call the service makes,
// answered in the order they arrive. Calls that arrive while a commit is on disk are answered together by the
// next group commit (store.ts grouped()).

const port = parentPort;
if (!port) throw new Error('thread-entry.ts runs as a worker thread (thread.ts starts it)');

const { path } = workerData as { path: string };
const store = open(path, port);
if (store) serve(store, port);

/** Opens the database, or tells the service why it cannot and lets the thread end: its error is the answer. */
function open(path: string, port: MessagePort): Store | undefined {
  try {
    const store = openSqliteStore(path, { locked: true });
    port.postMessage({ started: true } satisfies Started);
    return store;
  } catch (err) {
    port.postMessage({ started: false, error: serialize(err) } satisfies Started);
    port.close();
    return undefined;
  }
}

/** Answers each call with what the store's method resolved or rejected with. */
function serve(store: Store, port: MessagePort): void {
  const methods = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  port.on('message', (call: Call) => {
    const method = methods[call.method];
    const answer =
      typeof method === 'function'
        ? method.apply(store, call.args)
        : Promise.reject(new Error(`the database thread has no method ${call.method}`));
    answer.then(
      (value) => port.postMessage({ id: call.id, ok: true, value } satisfies Reply),
      (err: unknown) => port.postMessage({ id: call.id, ok: false, error: serialize(err) } satisfies Reply),
    );
    if (call.method === 'close') answer.finally(() => port.close());
  });
}

/** What crosses back to the service of an error: enough to rebuild StorageError and to log a bug. */
function serialize(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message, ...(e.stack === undefined ? {} : { stack: e.stack }) };
}
