import { randomUUID } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import Database from 'better-sqlite3';

// One changepager per database file: two on one file would both deliver every outbox row, and page twice.
//
// The lock is SQLite's own file locking on `<database>.lock`, a small file that also names its holder. An instance
// writes its claim there (pid, host, since when), then opens a read transaction that it keeps until the store is
// closed, and checks that the claim standing is its own. SQLite lets nobody commit a write while a read
// transaction is open, so once an instance has read its own claim the claim stands: every later instance fails to
// commit its claim and reads the holder's instead. Those are OS file locks (fcntl), released by the kernel when
// their process dies, so a SIGKILLed instance leaves nothing behind that could block its restart.

export interface LockHolder {
  pid: number;
  host: string;
  /** Epoch ms at which it took the lock. */
  since: number;
}

/** Another changepager holds the database; the message says which, so the operator can find it. */
export class DatabaseInUseError extends Error {
  constructor(
    readonly path: string,
    readonly holder: LockHolder | undefined,
  ) {
    const who = holder
      ? `pid ${holder.pid} on host ${holder.host}, since ${new Date(holder.since).toISOString()}`
      : 'one that is starting right now';
    super(
      `the database ${path} is in use by another changepager (${who}). Two instances on one database would page ` +
        'twice: stop the other one first, or give this one its own database.path.',
    );
    this.name = 'DatabaseInUseError';
  }
}

/** How long a claim waits for another instance's claim or read to finish (each takes microseconds). */
const BUSY_TIMEOUT_MS = 1000;

/** Takes the lock of the database at `path`, or throws DatabaseInUseError naming its holder. */
export function lockDatabase(path: string): { release(): void } {
  // Beside the file itself, so that two paths to one database (a symlink, say) find the same lock.
  const file = existsSync(path) ? realpathSync(path) : path;
  const db = new Database(`${file}.lock`, { timeout: BUSY_TIMEOUT_MS });
  try {
    db.exec(`CREATE TABLE IF NOT EXISTS holder (
      id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL, since INTEGER NOT NULL,
      claim TEXT NOT NULL)`);
    const claim = randomUUID();
    try {
      db.prepare('INSERT OR REPLACE INTO holder (id, pid, host, since, claim) VALUES (1, ?, ?, ?, ?)').run(
        process.pid,
        hostname(),
        Date.now(),
        claim,
      );
    } catch (err) {
      if (!isBusy(err)) throw err; // busy: a holder is reading, so its claim stands; read it below
    }
    db.exec('BEGIN');
    const standing = db.prepare('SELECT pid, host, since, claim FROM holder WHERE id = 1').get() as
      | (LockHolder & { claim: string })
      | undefined;
    if (standing?.claim !== claim) {
      throw new DatabaseInUseError(path, standing && { pid: standing.pid, host: standing.host, since: standing.since });
    }
    return { release: () => db.close() };
  } catch (err) {
    db.close();
    if (isBusy(err)) throw new DatabaseInUseError(path, undefined);
    throw err;
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}
