import pg from 'pg';
import {
  PostgresJournal,
  type PostgresJournalOptions,
} from '../../src/journal/postgres-journal.js';
import { randomLetters } from './journal-contract.js';

/** The test server: trust auth on 127.0.0.1, database `test`. */
export const TEST_PG_URL =
  process.env['ECR_BRIDGE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

let reachable: Promise<void> | undefined;

/**
 * Fails (never skips) when the test server is not there, saying how to start it: a suite that
 * silently skipped its PostgreSQL half would pass while proving nothing. Meant for `beforeEach`,
 * so that every PostgreSQL test counts as failed, not skipped; the server is asked once.
 */
export function requirePostgres(): Promise<void> {
  reachable ??= checkPostgres();
  return reachable;
}

async function checkPostgres(): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 3_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new Error(
      `PostgreSQL is not reachable at ${TEST_PG_URL} (${(error as Error).message || String(error)}). ` +
        'Start it with `pg_ctlcluster --skip-systemctl-redirect 15 main start`, ' +
        'or point ECR_BRIDGE_TEST_PG_URL at a server with trust auth.',
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A schema name nobody else uses: letters only (`t_` and 12 lowercase letters). */
export function freshSchema(): string {
  return `t_${randomLetters(12)}`;
}

/** Runs `sql` on a connection of its own, outside any journal. */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  sql: string,
  values: unknown[] = [],
  schema?: string,
): Promise<R[]> {
  const client = new pg.Client({
    connectionString: TEST_PG_URL,
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  await adminQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
}

export function openPostgres(
  schema: string,
  options: Partial<PostgresJournalOptions> = {},
): Promise<PostgresJournal> {
  return PostgresJournal.open({ url: TEST_PG_URL, schema, ...options });
}
