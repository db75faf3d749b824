import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * The PostgreSQL the tests use: an admin URL (CHANGEPAGER_TEST_POSTGRES_URL, default the local cluster with trust
 * auth, as .ci/run sets it up) from which each test makes a database of its own and drops it. A test that needs
 * PostgreSQL fails when it cannot be reached: CI installs and starts it, so a silent skip would hide a gap.
 */
export const ADMIN_URL = process.env.CHANGEPAGER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${new URL(ADMIN_URL).host} (CHANGEPAGER_TEST_POSTGRES_URL): ${(err as Error).message}. ` +
        '.ci/run installs and starts it; locally: pg_ctlcluster 15 main start',
    );
  }
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A fresh empty database, named for the test, on the test cluster. */
export async function createTestDatabase(prefix = 'cp_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name} TEMPLATE template0`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

/** Runs one query on a test database (or the admin one), for a test to look at what was stored. */
export async function queryDatabase<R extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}
