import { afterEach, describe, expect, it } from 'vitest';
import { runMigrate } from '../../src/cli/migrate.js';
import { MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { createTestDatabase, queryDatabase, type TestDatabase } from '../support/postgres.js';
import { cliIo } from './support.js';

// `changepager migrate`: the step an upgrade of a cluster runs before it rolls the replicas.
describe('changepager migrate', () => {
  let db: TestDatabase | undefined;
  afterEach(async () => {
    await db?.drop();
    db = undefined;
  });
  const config = (env: string) => ({ '/etc/cp.yaml': `database: { url_env: ${env} }\n` });

  it('brings an empty PostgreSQL database to the current schema and says which database, not its password', async () => {
    db = await createTestDatabase();
    const url = new URL(db.url);
    url.password = 'hunter2';
    const run = cliIo({ env: { CHANGEPAGER_CONFIG: '/etc/cp.yaml', DB: url.toString() }, files: config('DB') });
    expect(await runMigrate([], run.io)).toBe(0);
    expect(run.stdout).toBe(`changepager migrate: postgres://${url.host}/${db.name}: schema up to date\n`);
    const [row] = await queryDatabase<{ version: number }>(db.url, 'SELECT version FROM schema_version');
    expect(row?.version).toBe(MIGRATIONS.length);
  });

  it('exits 1 and says why when the database cannot be reached', async () => {
    const run = cliIo({
      env: { CHANGEPAGER_CONFIG: '/etc/cp.yaml', DB: 'postgres://cp:hunter2@127.0.0.1:1/cp' },
      files: config('DB'),
    });
    expect(await runMigrate([], run.io)).toBe(1);
    expect(run.stderr).toMatch(/^changepager migrate: postgres:\/\/127\.0\.0\.1:1\/cp: database: ECONNREFUSED/);
    expect(run.stderr).not.toContain('hunter2');
  });
});
