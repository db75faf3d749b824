import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log.js';
import { openSqliteThread } from '../../src/store/sqlite/thread.js';
import { describeStoreContract } from './contract.js';

// The running service keeps its SQLite store in a database thread: every call crosses a message port and every
// answer is a structured clone. The same contract holds there, values and errors alike.
let dir: string | undefined;
describeStoreContract('SQLite file in its database thread', {
  async open() {
    dir ??= mkdtempSync(join(tmpdir(), 'changepager-thread-contract-'));
    return openSqliteThread(join(dir, 'changepager.db'), createLogger('silent'));
  },
  async cleanup() {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  },
});
