import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
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

async function admin<T>(work: (client: pg.Client) => Promise<T>, adminUrl = ADMIN_URL): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${new URL(adminUrl).host} (CHANGEPAGER_TEST_POSTGRES_URL): ${(err as Error).message}. ` +
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
export async function createTestDatabase(prefix = 'cp_test', adminUrl = ADMIN_URL): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name} TEMPLATE template0`), adminUrl);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`), adminUrl).then(() => undefined),
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

/** A PostgreSQL server of a test's own, which it may restart without disturbing the tests on the shared one. */
export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres, trust auth. */
  url: string;
  /** Restarts the server (a fast shutdown: every connection is cut) and waits until it accepts connections. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const exec = promisify(execFile);

function postgresBin(): string {
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort() : [];
  const version = versions.at(-1);
  if (!version) throw new Error('PostgreSQL is not installed (/usr/lib/postgresql): .ci/run installs it');
  return `/usr/lib/postgresql/${version}/bin`;
}

/** Runs a PostgreSQL program as the postgres user (the server refuses to run as root). */
function asPostgres(program: string, args: string[]) {
  const bin = `${postgresBin()}/${program}`;
  return process.getuid?.() === 0 ? exec('runuser', ['-u', 'postgres', '--', bin, ...args]) : exec(bin, args);
}

/** Starts a throwaway server in a temporary directory, on a free port of 127.0.0.1. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'changepager-pg-'));
  if (process.getuid?.() === 0) await exec('chown', ['postgres', dir]);
  const data = join(dir, 'data');
  const port = 40_000 + Math.floor(Math.random() * 20_000);
  await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`;
  const ctl = (...args: string[]) => asPostgres('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), ...args]);
  await ctl('-w', 'start');
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    url,
    async restart() {
      await ctl('-w', '-m', 'fast', 'restart');
      await exec(`${postgresBin()}/pg_isready`, ['-h', '127.0.0.1', '-p', String(port), '-t', '30']);
    },
    async stop() {
      await ctl('-w', '-m', 'immediate', 'stop').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
