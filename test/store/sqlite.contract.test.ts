import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite/store.js';
import { describeStoreContract } from './contract.js';

// SQLite is one instance per database file (a second open is refused: test/store/sqlite.test.ts), so the
// concurrency cases run two callers on the one store.
let dir: string | undefined;
describeStoreContract('SQLite file', {
  async open() {
    dir ??= mkdtempSync(join(tmpdir(), 'changepager-contract-'));
    return openSqliteStore(join(dir, 'changepager.db'));
  },
  async cleanup() {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  },
});
