import pg from 'pg';
import { systemClock, type Clock } from '../core/clock.js';
import { EcrError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import {
  errorText,
  journalError,
  masked,
  parseTarget,
  POSTGRES_KEEPALIVE_DELAY_MS,
  POSTGRES_MIGRATION_TIMEOUT_MS,
  POSTGRES_QUERY_TIMEOUT_MARGIN_MS,
  TYPES,
  type ParsedPostgresOptions,
  type Target,
} from './postgres-connection.js';
import { migratePostgres } from './postgres-migrations.js';

// The PostgreSQL journal's connections and transactions: opening (the migrations on a connection
// of their own, then the pool), one statement or one short transaction at a time, each failure a
// JOURNAL_ERROR naming the server, the readiness probe, and closing. Kept apart from the SQL.

/**
 * The journal's pool. Statements are fixed texts (the list's from a bounded set): PostgreSQL
 * plans them per call, so a migration run meanwhile by a newer node never meets a plan cached
 * for the old columns, as a named prepared statement's would.
 */
export class PostgresPool {
  /** The connections: the gateway's PostgreSQL tenant store shares them. */
  readonly pool: pg.Pool;
  /** `PostgreSQL at host:port/database (schema s)`: for messages, never holds the password. */
  readonly where: string;
  private readonly target: Target;
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private closed = false;

  private constructor(
    pool: pg.Pool,
    target: Target,
    logger: Logger,
    timeoutMs: number,
    clock: Clock,
  ) {
    this.pool = pool;
    this.target = target;
    this.where = target.where;
    this.logger = logger;
    this.timeoutMs = timeoutMs;
    this.clock = clock;
  }

  /** Connects, creates the schema if needed, runs the migrations, and opens the pool. */
  static async open(parsed: ParsedPostgresOptions): Promise<PostgresPool> {
    const target = parseTarget(parsed.url, parsed.schema);
    const logger = parsed.logger ?? silentLogger;
    const timeoutMs = parsed.statementTimeoutMs + POSTGRES_QUERY_TIMEOUT_MARGIN_MS;
    const session: pg.ClientConfig = {
      connectionString: parsed.url,
      connectionTimeoutMillis: parsed.connectTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: POSTGRES_KEEPALIVE_DELAY_MS,
      types: TYPES,
      application_name: 'ecr-bridge',
      // A node that vanishes mid-transaction must not keep row locks for long.
      idle_in_transaction_session_timeout: parsed.statementTimeoutMs,
      ...(parsed.schema === undefined ? {} : { options: `-c search_path=${parsed.schema}` }),
    };

    const client = new pg.Client({
      ...session,
      statement_timeout: POSTGRES_MIGRATION_TIMEOUT_MS,
      query_timeout: POSTGRES_MIGRATION_TIMEOUT_MS + POSTGRES_QUERY_TIMEOUT_MARGIN_MS,
    });
    client.on('error', (error) =>
      logger.warn({ err: masked(target, errorText(error)) }, 'journal migration connection lost'),
    );
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      throw journalError(target, 'connect', error, parsed.connectTimeoutMs);
    }
    try {
      await migratePostgres(client, parsed.schema);
    } catch (error) {
      throw journalError(
        target,
        'migrate the journal',
        error,
        POSTGRES_MIGRATION_TIMEOUT_MS + POSTGRES_QUERY_TIMEOUT_MARGIN_MS,
      );
    } finally {
      await client.end().catch(() => undefined);
    }

    const pool = new pg.Pool({
      ...session,
      max: parsed.poolSize,
      statement_timeout: parsed.statementTimeoutMs,
      query_timeout: timeoutMs,
      allowExitOnIdle: true,
    });
    // An idle connection that fails (server restarted, network cut) is dropped by the pool and
    // reported here; without a listener the process would crash.
    pool.on('error', (error) =>
      logger.warn(
        { err: masked(target, errorText(error)), journal: target.where },
        'journal: an idle PostgreSQL connection failed; the pool opens a new one when needed',
      ),
    );
    logger.debug({ journal: target.where }, 'journal open');
    return new PostgresPool(pool, target, logger, timeoutMs, parsed.clock ?? systemClock);
  }

  /** One statement, in its own transaction. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    what: string,
    sql: string,
    values: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, values);
    } catch (error) {
      throw this.failure(what, error);
    }
  }

  /**
   * `fn` in a transaction on one connection. On any failure the connection is destroyed rather
   * than returned to the pool (the server rolls back): after a timeout its state is unknown.
   */
  async transaction<T>(what: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.failure(what, error);
    }
    // A connection that fails between two statements emits `error`; unheard, it would crash.
    const onError = (error: Error): void =>
      this.logger.warn(
        { err: masked(this.target, errorText(error)), journal: this.where },
        `journal: connection lost (${what})`,
      );
    client.on('error', onError);
    let failed = false;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      failed = true;
      throw this.failure(what, error);
    } finally {
      client.off('error', onError);
      client.release(failed);
    }
  }

  async probe(timeoutMs: number): Promise<void> {
    // A commit that holds a transaction id (txid_current assigns one), so PostgreSQL writes and
    // flushes a commit record as for a payment's row; no table is touched. A standby (after a
    // failover) refuses the id; a server whose transactions are read-only (a provider's quota,
    // default_transaction_read_only) would refuse every payment's write, so it fails too. Each
    // statement is bounded by the server (statement_timeout) and, for a server gone silent, by
    // the client (query_timeout).
    const ms = Math.max(1, Math.floor(timeoutMs));
    const what = 'readiness probe commit';
    if (this.closed) throw new EcrError('JOURNAL_ERROR', `${this.where}: the journal is closed`);
    let client: pg.PoolClient;
    try {
      client = await boundedConnect(this.pool, ms, this.clock);
    } catch (error) {
      throw journalError(this.target, what, error, ms);
    }
    const onError = (error: Error): void =>
      this.logger.debug(
        { err: masked(this.target, errorText(error)), journal: this.where },
        'journal: connection lost (readiness probe)',
      );
    client.on('error', onError);
    let failed = false;
    try {
      const run = (text: string) => {
        const statement: pg.QueryConfig & { query_timeout: number } = { text, query_timeout: ms };
        return client.query<{ read_only: string }>(statement);
      };
      await run('BEGIN');
      await run(`SET LOCAL statement_timeout = ${ms}`);
      const probe = await run(
        "SELECT txid_current(), current_setting('transaction_read_only') AS read_only",
      );
      if (probe.rows[0]?.read_only !== 'off') throw new Error('transactions are read-only');
      await run('COMMIT');
    } catch (error) {
      failed = true;
      throw journalError(this.target, what, error, ms);
    } finally {
      client.off('error', onError);
      // After a failure the connection's state is unknown: destroyed, not reused.
      client.release(failed);
    }
  }

  /** Ends the pool: waits for the calls in progress, then closes every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private failure(what: string, error: unknown): EcrError {
    return journalError(this.target, what, error, this.timeoutMs);
  }
}

/**
 * A connection from the pool within `ms` (the pool's own bound is the connect timeout, 5 s): a
 * probe must not wait past its bound. One that comes later goes back to the pool.
 */
function boundedConnect(pool: pg.Pool, ms: number, clock: Clock): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = clock.setTimeout(() => {
      late = true;
      // pg's own words for a bound passed: journalError reports "did not answer within ms".
      reject(new Error('Query read timeout'));
    }, ms);
    pool.connect().then(
      (client) => {
        clock.clearTimeout(timer);
        if (late) client.release();
        else resolve(client);
      },
      (error: unknown) => {
        clock.clearTimeout(timer);
        reject(error as Error);
      },
    );
  });
}
