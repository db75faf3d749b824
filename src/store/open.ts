import type { Logger } from 'pino';
import { openPostgresStore } from './postgres/store.js';
import { openSqliteStore } from './sqlite/store.js';
import { openSqliteThread } from './sqlite/thread.js';
import type { Store } from './store.js';

/** Which database the config names: the SQLite file (one instance), or PostgreSQL (any number of replicas). */
export interface DatabaseChoice {
  databasePath: string;
  postgres?: { url: string; poolSize: number; connectTimeoutMs: number };
}

/**
 * Opens the store the config names. PostgreSQL opens asynchronously (connect, migrate under its advisory lock),
 * so the service awaits this before it listens.
 */
export async function openStore(config: DatabaseChoice, log: Logger): Promise<Store> {
  if (config.postgres) return openPostgresStore({ ...config.postgres, log: log.child({ component: 'database' }) });
  if (config.databasePath === ':memory:') return openSqliteStore(config.databasePath);
  // Nothing is served without the database: a lost database thread stops the process, and its supervisor starts
  // a new one, as after a crash (every 2xx was committed first, so nothing acknowledged is lost).
  return openSqliteThread(config.databasePath, log.child({ component: 'database' }), () => process.exit(70));
}
