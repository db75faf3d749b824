import { createLogger } from '../../src/log.js';
import { openPostgresStore } from '../../src/store/postgres/store.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { describeStoreContract } from './contract.js';

// PostgreSQL serves several replicas on one database, so the concurrency cases run on two stores, two pools, as
// two replicas would.
const log = createLogger('silent');
let db: TestDatabase | undefined;
const open = async () => {
  db ??= await createTestDatabase('cp_contract');
  return openPostgresStore({ url: db.url, poolSize: 4, connectTimeoutMs: 5000, log });
};
describeStoreContract('PostgreSQL', {
  open,
  openAnother: open,
  async cleanup() {
    await db?.drop();
    db = undefined;
  },
});
