import { createLogger } from '../log.js';
import { openStore } from '../store/open.js';
import { describeDatabase } from '../store/postgres/connection.js';
import type { CliIo } from './io.js';
import { serveConfig } from './serve-config.js';

/**
 * `changepager migrate`: brings the database the config names up to date, and exits. `serve` migrates at start
 * too; this lets an upgrade migrate first (a Job, an init step) and roll the replicas after. Exits 0 when the
 * schema is current, 1 when the config cannot be used or the database cannot be reached or is newer.
 */
export async function runMigrate(argv: string[], io: CliIo): Promise<number> {
  if (argv.length > 0) {
    io.stderr('usage: changepager migrate   (reads the same config and environment as changepager serve)\n');
    return 2;
  }
  const config = serveConfig(io, 'changepager migrate');
  if (!config) return 1;
  const database = config.postgres ? describeDatabase(config.postgres.url) : config.databasePath;
  try {
    const store = await openStore(config, createLogger('warn'));
    await store.close();
  } catch (err) {
    io.stderr(`changepager migrate: ${database}: ${(err as Error).message}\n`);
    return 1;
  }
  io.stdout(`changepager migrate: ${database}: schema up to date\n`);
  return 0;
}
