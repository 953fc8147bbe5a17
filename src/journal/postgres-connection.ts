import pg from 'pg';
import { z } from 'zod';
import { EcrError, invalid } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { clockOption, loggerOption, MAX_TIMER_MS, wholeNumber } from '../core/options.js';

// How PostgresJournal reaches its server: options, the URL, the errors it reports, the types
// it reads. Kept apart from the journal's SQL.

/** How long opening a connection may take before the call fails. */
export const POSTGRES_CONNECT_TIMEOUT_MS = 5_000;
/** How long one statement may run (server side) before it is cancelled and the call fails. */
export const POSTGRES_STATEMENT_TIMEOUT_MS = 10_000;
/**
 * The client gives up this long after the server should have cancelled a statement: what
 * bounds a call when the server, or the network to it, is gone without a word.
 */
export const POSTGRES_QUERY_TIMEOUT_MARGIN_MS = 1_000;
/**
 * Connections each journal keeps at most: a node takes a burst of registrations (a failed node's
 * terminals arriving) with this many reads at once. Three nodes use 60 of PostgreSQL's default 100.
 */
export const POSTGRES_POOL_SIZE = 20;
/** Bound of one migration statement (and of waiting for another node's migration). */
export const POSTGRES_MIGRATION_TIMEOUT_MS = 300_000;
/**
 * Idle time before TCP keepalive probes start: an idle connection to a server that vanished
 * without a word is found dead in seconds, not after the system default of two hours.
 */
export const POSTGRES_KEEPALIVE_DELAY_MS = 10_000;
const MAX_URL_LENGTH = 2048;
/** Query parameters a journal URL may carry: none may override the session settings below. */
const URL_PARAMETERS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'application_name'];

const URL_RULE =
  'must be a postgres:// or postgresql:// URL naming a host (postgres://user@host:5432/database)';
const SCHEMA_RULE =
  'must be a plain identifier: a lowercase letter or _, then up to 62 lowercase letters, digits or _, not starting with pg_';

/** True when `text` names a PostgreSQL journal rather than a data directory. */
export function isPostgresUrl(text: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(text);
}

export const postgresOptionsSchema = z.strictObject({
  /** `postgres://user:password@host:5432/database`; the password never appears in messages. */
  url: z.string({ error: 'must be a string' }),
  /** Schema of the journal's tables, created if missing. @default the session's current schema */
  schema: z
    .string({ error: SCHEMA_RULE })
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, SCHEMA_RULE)
    .refine((name) => !name.startsWith('pg_'), SCHEMA_RULE)
    .optional(),
  /** @default POSTGRES_POOL_SIZE */
  poolSize: wholeNumber(1, 1_000).default(POSTGRES_POOL_SIZE),
  logger: loggerOption(),
  /** @default POSTGRES_CONNECT_TIMEOUT_MS */
  connectTimeoutMs: wholeNumber(1, MAX_TIMER_MS).default(POSTGRES_CONNECT_TIMEOUT_MS),
  /** @default POSTGRES_STATEMENT_TIMEOUT_MS */
  statementTimeoutMs: wholeNumber(1, MAX_TIMER_MS - POSTGRES_QUERY_TIMEOUT_MARGIN_MS).default(
    POSTGRES_STATEMENT_TIMEOUT_MS,
  ),
  now: z
    .custom<() => number>((value) => typeof value === 'function', 'must be a function')
    .optional(),
  clock: clockOption(),
});

/** The options once checked, with their defaults. */
export type ParsedPostgresOptions = Readonly<z.output<typeof postgresOptionsSchema>>;

/** How to reach a PostgreSQL journal (PostgresJournal.open). */
export interface PostgresJournalOptions {
  /**
   * `postgres://user:password@host:5432/database` (or `postgresql://`). The only query
   * parameters accepted are sslmode, sslrootcert, sslcert, sslkey and application_name: none may
   * override the session settings. The password never appears in messages, logs or `where`.
   */
  readonly url: string;
  /**
   * Schema of the journal's tables, created if missing and set as the `search_path` of every
   * connection: a plain identifier (`[a-z_][a-z0-9_]{0,62}`, not `pg_…`).
   * @default the session's current schema
   */
  readonly schema?: string;
  /** Connections kept at most. @default POSTGRES_POOL_SIZE */
  readonly poolSize?: number;
  /** Where lost connections are reported. @default a silent logger */
  readonly logger?: Logger;
  /** @default POSTGRES_CONNECT_TIMEOUT_MS */
  readonly connectTimeoutMs?: number;
  /**
   * Server-side bound of one statement; the client gives up POSTGRES_QUERY_TIMEOUT_MARGIN_MS
   * later. @default POSTGRES_STATEMENT_TIMEOUT_MS
   */
  readonly statementTimeoutMs?: number;
  /**
   * This process's clock, in milliseconds since the epoch: when a new notification is due, and
   * what heartbeat ages (measured by the database's clock) are turned into `Owner.heartbeatAt`
   * on. Row times are the database's. @default Date.now
   */
  readonly now?: () => number;
  /** Timers of the readiness probe's bound on waiting for a connection. @default systemClock */
  readonly clock?: Clock;
}

/** Where a journal lives, for messages, and the secrets those messages must never show. */
export interface Target {
  readonly where: string;
  readonly secrets: readonly string[];
}

export function parseTarget(text: string, schema: string | undefined): Target {
  const refuse = (rule: string, detail?: string): EcrError =>
    invalid('INVALID_INPUT', 'journal', rule, detail);
  if (text.length > MAX_URL_LENGTH) throw refuse(`must be at most ${MAX_URL_LENGTH} characters`);
  if (!isPostgresUrl(text)) throw refuse(URL_RULE);
  let url: URL;
  let host: string;
  let database: string;
  let password: string;
  try {
    url = new URL(text);
    host = decodeURIComponent(url.hostname);
    database =
      decodeURIComponent(url.pathname.replace(/^\//, '')) || decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
  } catch {
    // The text is not echoed: it may hold a password.
    throw refuse(URL_RULE);
  }
  if (host === '') throw refuse(URL_RULE);
  for (const key of url.searchParams.keys()) {
    if (!URL_PARAMETERS.includes(key))
      throw refuse(`may carry only the query parameters ${URL_PARAMETERS.join(', ')}`, key);
  }
  const where = `PostgreSQL at ${host}:${url.port || '5432'}/${database}${
    schema === undefined ? '' : ` (schema ${schema})`
  }`;
  return { where, secrets: [text, url.password, password].filter((s) => s !== '') };
}

export function masked(target: Target, text: string): string {
  return target.secrets.reduce((out, secret) => out.split(secret).join('***'), text);
}

/** Node's and pg's ways of saying the server is not there (class 08: connection exception). */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ENOENT',
  '57P01',
  '57P02',
  '57P03',
]);
const UNREACHABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|connection error|Connection ended|not queryable/i;

export function errorText(error: unknown): string {
  if (error instanceof AggregateError && error.message === '')
    return error.errors.map((e: unknown) => errorText(e)).join('; ');
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return error.message || (code ?? error.name);
  }
  return String(error);
}

function isUnreachable(error: unknown): boolean {
  if (error instanceof AggregateError) return error.errors.some(isUnreachable);
  if (!(error instanceof Error)) return false;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return (
    UNREACHABLE_CODES.has(code) || code.startsWith('08') || UNREACHABLE_MESSAGES.test(error.message)
  );
}

/** Every failure of the journal, as one JOURNAL_ERROR naming what failed and where. */
export function journalError(
  target: Target,
  what: string,
  error: unknown,
  timeoutMs: number,
): EcrError {
  if (error instanceof EcrError) return error;
  const detail = masked(target, errorText(error));
  const message =
    error instanceof Error && error.message === 'Query read timeout'
      ? `${target.where} did not answer within ${timeoutMs} ms (${what})`
      : isUnreachable(error)
        ? `${target.where} cannot be reached (${what}): ${detail}`
        : `${target.where}: ${what} failed: ${detail}`;
  return new EcrError('JOURNAL_ERROR', message, { cause: error });
}

const INT8_OID = 20;
const INT8_ARRAY_OID = 1016;
/**
 * bigint columns (ids, millisecond timestamps) come back as numbers: all of them are far below
 * 2^53. A per-pool parser, so that other users of `pg` in the process keep theirs.
 */
export const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format !== 'binary' && oid === INT8_OID) return (text: string) => Number(text);
    if (format !== 'binary' && oid === INT8_ARRAY_OID) {
      const parserOf = pg.types.getTypeParser as (oid: number, format: 'text') => unknown;
      const parse = parserOf(INT8_ARRAY_OID, 'text') as (text: string) => string[];
      return (text: string) => parse(text).map(Number);
    }
    return pg.types.getTypeParser(oid, format);
  }) as typeof pg.types.getTypeParser,
};
