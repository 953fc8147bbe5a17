import pg from 'pg';
import { EcrError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { parseOptions } from '../core/options.js';
import type { DriverOutcome, Outcome, TransactionState } from '../core/transaction.js';
import {
  MAX_NOTIFICATION_ERROR_LENGTH,
  NOT_HELD,
  NOTIFIED_STATES,
  RECOVERED_AFTER_SENT,
  RECOVERED_BEFORE_SENT,
  type ClaimInput,
  type ClaimResult,
  type HousekeepingResult,
  type Journal,
  type JournalRow,
  type ListFilter,
  type NotificationAttempt,
  type NotificationRow,
  type Owner,
  type TransactionEvent,
  type TransactionKey,
} from '../core/journal-port.js';
import {
  errorText,
  journalError,
  masked,
  parseTarget,
  postgresOptionsSchema,
  POSTGRES_KEEPALIVE_DELAY_MS,
  POSTGRES_MIGRATION_TIMEOUT_MS,
  POSTGRES_QUERY_TIMEOUT_MARGIN_MS,
  TYPES,
  type PostgresJournalOptions,
  type Target,
} from './postgres-connection.js';
import { DB_NOW_MS, migratePostgres } from './postgres-migrations.js';
import { isPublicId, newPublicId } from './public-id.js';
import {
  bound,
  id,
  limitOf,
  oneLine,
  ownerOf,
  rowOrUndefined,
  mayTryAgain,
  storable,
  toJournalRow,
  toNotificationRow,
  toTransactionEvent,
  type EventRow,
  type NotificationDbRow,
  type OwnedRow,
  type Row,
} from './rows.js';

export {
  isPostgresUrl,
  POSTGRES_CONNECT_TIMEOUT_MS,
  POSTGRES_MIGRATION_TIMEOUT_MS,
  POSTGRES_POOL_SIZE,
  POSTGRES_QUERY_TIMEOUT_MARGIN_MS,
  POSTGRES_STATEMENT_TIMEOUT_MS,
  type PostgresJournalOptions,
} from './postgres-connection.js';

const DEFAULT_LIST_LIMIT = 100;

/** 128 random bits… as 32 letters: no digit run in a key can look like a card number. */
const LETTERS_ONLY_RANDOM_KEY =
  "'ecr-bridge-' || translate(replace(gen_random_uuid()::text, '-', ''), '0123456789', 'ghijklmnop')";
const NOTIFIED_SQL = NOTIFIED_STATES.map((state) => `'${state}'`).join(', ');
const MISSING_NOTIFICATION = `t.state IN (${NOTIFIED_SQL})
  AND t.id >= (SELECT first_transaction_id FROM outbox_start)
  AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.transaction_id = t.id)`;

/** Writing an outcome ($1 id, $2–$9 the outcome's columns); `c.now` is the database clock. */
const SET_OUTCOME = `UPDATE transactions t SET state = $2, error_code = $3, message = $4,
  approval_code = $5, masked_pan = $6, card_brand = $7, terminal_tx_id = $8, details = $9::json,
  owner_pid = NULL, owner_token = NULL, updated_at = c.now, completed_at = c.now
  FROM (SELECT ${DB_NOW_MS} AS now) c`;

function outcomeValues(transactionId: number, outcome: DriverOutcome): unknown[] {
  return [
    id(transactionId),
    outcome.outcome,
    outcome.errorCode ?? null,
    storable(outcome.message),
    storable(outcome.approvalCode),
    storable(outcome.maskedPan),
    storable(outcome.cardBrand),
    storable(outcome.terminalTxId),
    outcome.details === undefined ? null : JSON.stringify(outcome.details),
  ];
}

/** What the previous sweep saw (see SqliteJournal); sound here thanks to the write order. */
interface SweepMark {
  readonly maxId: number;
  readonly open: readonly number[];
}

/**
 * The journal on PostgreSQL, shared by every node of a cluster: the same semantics as
 * SqliteJournal, decided by the database. Claims are `INSERT … ON CONFLICT DO NOTHING`; every
 * write is one statement (or a short transaction holding row locks); heartbeats and owner ages
 * use the database's clock, so no decision depends on two machines' clocks agreeing. Every
 * failure is a JOURNAL_ERROR naming the server (never its password); a stopped server fails
 * calls within the timeouts, and the pool reconnects by itself when it is back.
 */
export class PostgresJournal implements Journal {
  /** The connections: the gateway's PostgreSQL tenant store shares them. */
  readonly pool: pg.Pool;
  /** `PostgreSQL at host:port/database (schema s)`: for messages, never holds the password. */
  readonly where: string;
  /** The schema of the tables, when one was given. */
  readonly schema: string | undefined;
  private readonly target: Target;
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private sweepMark: SweepMark | undefined;
  private closed = false;

  private constructor(
    pool: pg.Pool,
    target: Target,
    schema: string | undefined,
    logger: Logger,
    timeoutMs: number,
  ) {
    this.pool = pool;
    this.target = target;
    this.where = target.where;
    this.schema = schema;
    this.logger = logger;
    this.timeoutMs = timeoutMs;
  }

  /** Connects, creates the schema if needed, runs the migrations, and returns the journal. */
  static async open(options: PostgresJournalOptions): Promise<PostgresJournal> {
    const parsed = parseOptions(postgresOptionsSchema, options, 'PostgresJournal');
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
    return new PostgresJournal(pool, target, parsed.schema, logger, timeoutMs);
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    // The latest attempt decides (the rule shared with SQLite, `mayTryAgain`); the insert of the
    // next attempt number then succeeds only if no other claim took that number meanwhile, so a
    // decision made on a stale read can only end as `existing`, never as a second attempt.
    const latest = await this.find(input);
    if (latest !== undefined && !mayTryAgain(latest, input))
      return { type: 'existing', row: latest };
    const inserted = await this.query<Row & { wire_id: number }>(
      'claim a reference',
      `WITH clock AS (SELECT ${DB_NOW_MS} AS now),
       claimed AS (
         INSERT INTO transactions (merchant_id, terminal_id, reference, attempt, kind, amount_minor,
           currency, method, original_reference, state, owner_pid, owner_token, heartbeat_at,
           created_at, updated_at, public_id)
         VALUES ($1, $2, $3, $11, $4, $5, $6, $7, $8, 'received', $9, $10,
           (SELECT now FROM clock), (SELECT now FROM clock), (SELECT now FROM clock), $12)
         ON CONFLICT (merchant_id, terminal_id, reference, attempt) DO NOTHING
         RETURNING *
       ),
       wire AS (
         INSERT INTO attempts (transaction_id, started_at) SELECT id, created_at FROM claimed RETURNING id
       )
       SELECT claimed.*, wire.id AS wire_id FROM claimed, wire`,
      [
        input.merchantId,
        input.terminalId,
        input.reference,
        input.kind,
        input.amountMinor,
        input.currency,
        input.method,
        input.originalReference ?? null,
        input.owner.pid,
        input.owner.token,
        (latest?.attempt ?? 0) + 1,
        // 96 random bits: a collision fails the insert loudly (unique), never merges two rows.
        newPublicId(),
      ],
    );
    const row = inserted.rows[0];
    if (row !== undefined) {
      const { wire_id: wireId, ...stored } = row;
      return { type: 'claimed', row: toJournalRow(stored), wireId };
    }
    // Another claim took this attempt; ON CONFLICT waited for it to commit, so it is visible now.
    // It is answered as stored, whatever its state (ARCHITECTURE.md invariant 1).
    const existing = await this.find(input);
    if (existing === undefined)
      throw new EcrError('JOURNAL_ERROR', `${this.where}: a claimed row vanished`);
    return { type: 'existing', row: existing };
  }

  async markSent(transactionId: number, owner: Owner): Promise<void> {
    const result = await this.query(
      'mark a transaction sent',
      `UPDATE transactions SET state = 'sent', updated_at = ${DB_NOW_MS}
       WHERE id = $1 AND state = 'received' AND owner_token = $2`,
      [id(transactionId), owner.token],
    );
    if (result.rowCount !== 1) throw new EcrError('JOURNAL_ERROR', NOT_HELD);
  }

  async complete(transactionId: number, owner: Owner, outcome: DriverOutcome): Promise<JournalRow> {
    const result = await this.query<Row>(
      'complete a transaction',
      `${SET_OUTCOME} WHERE t.id = $1 AND t.state IN ('received', 'sent') AND t.owner_token = $10
       RETURNING t.*`,
      [...outcomeValues(transactionId, outcome), owner.token],
    );
    const row = result.rows[0];
    if (row === undefined) throw new EcrError('JOURNAL_ERROR', NOT_HELD);
    return toJournalRow(row);
  }

  async resolveUnknown(
    transactionId: number,
    outcome: DriverOutcome,
  ): Promise<JournalRow | undefined> {
    if (outcome.outcome === 'unknown') return undefined;
    const result = await this.query<Row>(
      'resolve an unknown transaction',
      `${SET_OUTCOME} WHERE t.id = $1 AND t.state = 'unknown' RETURNING t.*`,
      outcomeValues(transactionId, outcome),
    );
    return rowOrUndefined(result.rows[0]);
  }

  async resolveByHand(
    transactionId: number,
    outcome: Exclude<Outcome, 'unknown'>,
    note: string,
  ): Promise<JournalRow | undefined> {
    const result = await this.query<Row>(
      'resolve a transaction by hand',
      `UPDATE transactions t SET state = $2, error_code = NULL, updated_at = c.now, completed_at = c.now,
         message = 'resolved by hand: ' || $3::text || ' (was unknown' ||
           coalesce(': ' || t.error_code, '') || coalesce(': ' || t.message, '') || ')'
       FROM (SELECT ${DB_NOW_MS} AS now) c
       WHERE t.id = $1 AND t.state = 'unknown'
       RETURNING t.*`,
      [id(transactionId), outcome, storable(note)],
    );
    return rowOrUndefined(result.rows[0]);
  }

  async get(transactionId: number): Promise<JournalRow | undefined> {
    const result = await this.query<Row>(
      'read a transaction',
      'SELECT * FROM transactions WHERE id = $1',
      [id(transactionId)],
    );
    return rowOrUndefined(result.rows[0]);
  }

  async getByPublicId(publicId: string): Promise<JournalRow | undefined> {
    if (!isPublicId(publicId)) return undefined;
    const result = await this.query<Row>(
      'read a transaction',
      'SELECT * FROM transactions WHERE public_id = $1',
      [publicId],
    );
    return rowOrUndefined(result.rows[0]);
  }

  async wireIdOf(transactionId: number): Promise<number | undefined> {
    const result = await this.query<{ id: number | null }>(
      'read a wire id',
      'SELECT max(id) AS id FROM attempts WHERE transaction_id = $1',
      [id(transactionId)],
    );
    const wire = result.rows[0]?.id;
    return wire === null || wire === undefined ? undefined : Number(wire);
  }

  async find(key: TransactionKey): Promise<JournalRow | undefined> {
    const result = await this.query<Row>(
      'find a transaction',
      `SELECT * FROM transactions WHERE merchant_id = $1 AND terminal_id = $2 AND reference = $3
       ORDER BY attempt DESC LIMIT 1`,
      [key.merchantId, key.terminalId, key.reference],
    );
    return rowOrUndefined(result.rows[0]);
  }

  async attemptsOf(key: TransactionKey): Promise<JournalRow[]> {
    const result = await this.query<Row>(
      'read the attempts of a reference',
      `SELECT * FROM transactions WHERE merchant_id = $1 AND terminal_id = $2 AND reference = $3
       ORDER BY attempt`,
      [key.merchantId, key.terminalId, key.reference],
    );
    return result.rows.map(toJournalRow);
  }

  async findByReference(reference: string): Promise<JournalRow[]> {
    const result = await this.query<Row>(
      'find transactions by reference',
      'SELECT * FROM transactions WHERE reference = $1 ORDER BY id DESC',
      [reference],
    );
    return result.rows.map(toJournalRow);
  }

  async latestSentBefore(
    merchantId: string,
    terminalId: string,
    beforeId: number,
  ): Promise<JournalRow | undefined> {
    const result = await this.query<Row>(
      'read the latest sent transaction',
      `SELECT * FROM transactions WHERE merchant_id = $1 AND terminal_id = $2 AND id < $3
         AND state NOT IN ('received', 'failed') ORDER BY id DESC LIMIT 1`,
      [merchantId, terminalId, bound(beforeId, Math.ceil)],
    );
    return rowOrUndefined(result.rows[0]);
  }

  async followUpsOf(
    merchantId: string,
    terminalId: string,
    originalReference: string,
  ): Promise<JournalRow[]> {
    const result = await this.query<Row>(
      'read follow-ups',
      `SELECT * FROM transactions WHERE merchant_id = $1 AND terminal_id = $2
         AND original_reference = $3 ORDER BY id`,
      [merchantId, terminalId, originalReference],
    );
    return result.rows.map(toJournalRow);
  }

  async list(filter: ListFilter = {}): Promise<JournalRow[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (sql: string, value: unknown): void => {
      values.push(value);
      where.push(`${sql} $${values.length}`);
    };
    if (filter.unresolved === true) where.push("state IN ('received', 'sent', 'unknown')");
    if (filter.terminalId !== undefined) add('terminal_id =', filter.terminalId);
    if (filter.merchantId !== undefined) add('merchant_id =', filter.merchantId);
    if (filter.state !== undefined) add('state =', filter.state);
    values.push(limitOf(filter.limit ?? DEFAULT_LIST_LIMIT));
    const result = await this.query<Row>(
      'list transactions',
      `SELECT * FROM transactions ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY id DESC LIMIT $${values.length}`,
      values,
    );
    return result.rows.map(toJournalRow);
  }

  async recoverOrphans(isAlive: (owner: Owner) => boolean): Promise<JournalRow[]> {
    const inFlight = await this.query<OwnedRow & { id: number; state: string }>(
      'read transactions in flight',
      `SELECT id, state, owner_pid, owner_token, heartbeat_at, ${DB_NOW_MS} - heartbeat_at AS heartbeat_age
       FROM transactions WHERE state IN ('received', 'sent') ORDER BY id`,
    );
    const dead = inFlight.rows.filter((row) => {
      const owner = ownerOf(row);
      return owner === undefined || !isAlive(owner);
    });
    if (dead.length === 0) return [];
    // Each row changes only if it is as it was judged: same state, same owner, same heartbeat.
    // An owner that wrote a heartbeat since was alive after all; its rows stay. Rows are locked
    // in id order, as heartbeats lock them: no deadlock between the two.
    const result = await this.query<Row>(
      'recover orphaned transactions',
      `WITH judged AS (
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[])
           AS j(id, state, owner_token, heartbeat_at)
       ),
       locked AS (
         SELECT t.id FROM transactions t JOIN judged j ON t.id = j.id
         WHERE t.state = j.state AND t.owner_token IS NOT DISTINCT FROM j.owner_token
           AND t.heartbeat_at IS NOT DISTINCT FROM j.heartbeat_at
         ORDER BY t.id FOR UPDATE OF t
       ),
       clock AS (SELECT ${DB_NOW_MS} AS now)
       UPDATE transactions t
         SET state = CASE t.state WHEN 'received' THEN 'failed' ELSE 'unknown' END,
         error_code = CASE t.state WHEN 'received' THEN 'ABORTED' ELSE 'OUTCOME_UNKNOWN' END,
         message = CASE t.state WHEN 'received' THEN $5::text ELSE $6::text END,
         owner_pid = NULL, owner_token = NULL, updated_at = clock.now, completed_at = clock.now
       FROM locked, judged j, clock
       WHERE t.id = locked.id AND j.id = t.id AND t.state = j.state
         AND t.owner_token IS NOT DISTINCT FROM j.owner_token
         AND t.heartbeat_at IS NOT DISTINCT FROM j.heartbeat_at
       RETURNING t.*`,
      [
        dead.map((row) => row.id),
        dead.map((row) => row.state),
        dead.map((row) => row.owner_token),
        dead.map((row) => row.heartbeat_at),
        RECOVERED_BEFORE_SENT,
        RECOVERED_AFTER_SENT,
      ],
    );
    return result.rows.map(toJournalRow).sort((a, b) => a.id - b.id);
  }

  async tryLockTerminal(
    terminalId: string,
    owner: Owner,
    isAlive: (owner: Owner) => boolean,
  ): Promise<boolean> {
    return this.transaction('lock a terminal', async (client) => {
      // Bounded: each round either decides or saw the lock released between two statements.
      for (let round = 0; round < 3; round++) {
        const created = await client.query(
          `INSERT INTO terminal_locks (terminal_id, owner_pid, owner_token, acquired_at, heartbeat_at)
           SELECT $1, $2::bigint, $3, now, now FROM (SELECT ${DB_NOW_MS} AS now) c
           ON CONFLICT (terminal_id) DO NOTHING`,
          [terminalId, owner.pid, owner.token],
        );
        if (created.rowCount === 1) return true;
        const held = await client.query<OwnedRow>(
          `SELECT owner_pid, owner_token, heartbeat_at, ${DB_NOW_MS} - heartbeat_at AS heartbeat_age
           FROM terminal_locks WHERE terminal_id = $1 FOR UPDATE`,
          [terminalId],
        );
        const row = held.rows[0];
        if (row === undefined) continue;
        const holder = ownerOf(row);
        if (holder !== undefined && holder.token !== owner.token && isAlive(holder)) return false;
        await client.query(
          `UPDATE terminal_locks SET owner_pid = $2, owner_token = $3, acquired_at = c.now,
             heartbeat_at = c.now
           FROM (SELECT ${DB_NOW_MS} AS now) c WHERE terminal_id = $1`,
          [terminalId, owner.pid, owner.token],
        );
        return true;
      }
      return false;
    });
  }

  async unlockTerminal(terminalId: string, owner: Owner): Promise<void> {
    await this.query(
      'unlock a terminal',
      'DELETE FROM terminal_locks WHERE terminal_id = $1 AND owner_token = $2',
      [terminalId, owner.token],
    );
  }

  async heartbeat(owner: Owner): Promise<void> {
    // One statement: both tables or neither. Rows locked in key order (see recoverOrphans).
    await this.query(
      'write a heartbeat',
      `WITH clock AS (SELECT ${DB_NOW_MS} AS now),
       held AS (
         SELECT id FROM transactions WHERE owner_token = $1 AND state IN ('received', 'sent')
         ORDER BY id FOR UPDATE
       ),
       locks AS (
         SELECT terminal_id FROM terminal_locks WHERE owner_token = $1 ORDER BY terminal_id FOR UPDATE
       ),
       rows_done AS (
         UPDATE transactions t SET heartbeat_at = clock.now FROM clock, held WHERE t.id = held.id
         RETURNING 1
       ),
       locks_done AS (
         UPDATE terminal_locks l SET heartbeat_at = clock.now FROM clock, locks
         WHERE l.terminal_id = locks.terminal_id RETURNING 1
       )
       SELECT (SELECT count(*) FROM rows_done) AS rows, (SELECT count(*) FROM locks_done) AS locks`,
      [owner.token],
    );
  }

  async housekeeping(isAlive: (owner: Owner) => boolean): Promise<HousekeepingResult> {
    // No write-ahead log to fold back here: PostgreSQL checkpoints by itself. A lock of a dead
    // owner is checked and deleted under its row lock, so a lock taken meanwhile stays.
    const locksRemoved = await this.transaction('drop dead terminal locks', async (client) => {
      const held = await client.query<OwnedRow & { terminal_id: string }>(
        `SELECT terminal_id, owner_pid, owner_token, heartbeat_at,
           ${DB_NOW_MS} - heartbeat_at AS heartbeat_age
         FROM terminal_locks ORDER BY terminal_id FOR UPDATE`,
      );
      const dead = held.rows.filter((row) => {
        const owner = ownerOf(row);
        return owner !== undefined && !isAlive(owner);
      });
      if (dead.length === 0) return 0;
      const removed = await client.query(
        'DELETE FROM terminal_locks WHERE terminal_id = ANY($1::text[])',
        [dead.map((row) => row.terminal_id)],
      );
      return removed.rowCount ?? 0;
    });
    return { checkpointed: true, locksRemoved };
  }

  async enqueueNotification(transactionId: number): Promise<NotificationRow> {
    // Due at once by this process's clock: the clock `dueNotifications` is asked with.
    const attempt = await this.query<
      Partial<NotificationDbRow> & { transaction_state: TransactionState }
    >(
      'enqueue a notification',
      `WITH t AS (SELECT id, state FROM transactions WHERE id = $1),
       created AS (
         INSERT INTO notifications (transaction_id, state, attempts, next_attempt_at, idempotency_key, created_at)
         SELECT id, 'pending', 0, $2::bigint, ${LETTERS_ONLY_RANDOM_KEY}, ${DB_NOW_MS}
         FROM t WHERE state IN (${NOTIFIED_SQL})
         ON CONFLICT (transaction_id) DO NOTHING
         RETURNING *
       )
       SELECT t.state AS transaction_state, created.* FROM t LEFT JOIN created ON true`,
      [id(transactionId), Date.now()],
    );
    const row = attempt.rows[0];
    if (row !== undefined && row.id !== undefined && row.id !== null)
      return toNotificationRow(row as NotificationDbRow);
    const existing = await this.notificationFor(transactionId);
    if (existing !== undefined) return existing;
    if (row === undefined) {
      throw new EcrError('NOT_FOUND', `no transaction ${transactionId} to notify`, {
        field: 'transactionId',
        rule: 'must name a journaled transaction',
      });
    }
    const rule = 'must name an approved, declined or cancelled transaction';
    throw new EcrError(
      'INVALID_INPUT',
      `transactionId: ${rule} (transaction ${transactionId} is ${row.transaction_state})`,
      { field: 'transactionId', rule },
    );
  }

  async enqueueMissingNotifications(): Promise<NotificationRow[]> {
    // The mark is read first, in one snapshot: ids become visible in order (the write-order
    // lock of migration 1), so every row at or below maxId that is not open was final then,
    // and the insert below, which runs later, sees it.
    const markRow = await this.query<{ max_id: number; open: number[] }>(
      'sweep the outbox',
      `SELECT (SELECT coalesce(max(id), 0) FROM transactions) AS max_id,
         array(SELECT id FROM transactions WHERE state IN ('received', 'sent', 'unknown') ORDER BY id) AS open`,
    );
    const mark = {
      maxId: markRow.rows[0]?.max_id ?? 0,
      open: markRow.rows[0]?.open ?? [],
    };
    const previous = this.sweepMark;
    const scope =
      previous === undefined ? 'true' : '(t.id = ANY($2::bigint[]) OR t.id > $3::bigint)';
    const created = await this.query<NotificationDbRow>(
      'sweep the outbox',
      `WITH clock AS (SELECT ${DB_NOW_MS} AS now)
       INSERT INTO notifications (transaction_id, state, attempts, next_attempt_at, idempotency_key, created_at)
       SELECT t.id, 'pending', 0, $1::bigint, ${LETTERS_ONLY_RANDOM_KEY}, clock.now
       FROM transactions t, clock WHERE ${scope} AND ${MISSING_NOTIFICATION}
       ORDER BY t.id
       ON CONFLICT (transaction_id) DO NOTHING
       RETURNING *`,
      previous === undefined ? [Date.now()] : [Date.now(), previous.open, previous.maxId],
    );
    this.sweepMark = mark;
    return created.rows.map(toNotificationRow).sort((a, b) => a.transactionId - b.transactionId);
  }

  async dueNotifications(now: number, limit: number): Promise<NotificationRow[]> {
    const result = await this.query<NotificationDbRow>(
      'read due notifications',
      `SELECT * FROM notifications WHERE state = 'pending' AND next_attempt_at <= $1
       ORDER BY next_attempt_at, id LIMIT $2`,
      [bound(now, Math.floor), limitOf(limit)],
    );
    return result.rows.map(toNotificationRow);
  }

  async notificationFor(transactionId: number): Promise<NotificationRow | undefined> {
    const result = await this.query<NotificationDbRow>(
      'read a notification',
      'SELECT * FROM notifications WHERE transaction_id = $1',
      [id(transactionId)],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : toNotificationRow(row);
  }

  async recordNotificationAttempt(
    notificationId: number,
    outcome: NotificationAttempt,
  ): Promise<NotificationRow> {
    const result = outcome.sent
      ? await this.query<NotificationDbRow>(
          'record a notification attempt',
          `UPDATE notifications SET state = 'sent', attempts = attempts + 1,
             sent_at = coalesce(sent_at, $2)
           WHERE id = $1 RETURNING *`,
          [id(notificationId), Math.round(outcome.at)],
        )
      : await this.query<NotificationDbRow>(
          'record a notification attempt',
          `UPDATE notifications SET attempts = attempts + 1, last_error = $2,
             next_attempt_at = CASE state WHEN 'pending' THEN $3 ELSE next_attempt_at END
           WHERE id = $1 RETURNING *`,
          [
            id(notificationId),
            oneLine(outcome.error, MAX_NOTIFICATION_ERROR_LENGTH),
            Math.round(outcome.nextAttemptAt),
          ],
        );
    const row = result.rows[0];
    if (row === undefined) throw new EcrError('JOURNAL_ERROR', `no notification ${notificationId}`);
    return toNotificationRow(row);
  }

  async eventsOf(transactionId: number): Promise<TransactionEvent[]> {
    const result = await this.query<EventRow>(
      'read events',
      'SELECT * FROM transaction_events WHERE transaction_id = $1 ORDER BY id',
      [id(transactionId)],
    );
    return result.rows.map(toTransactionEvent);
  }

  async eventsAfter(afterId: number, limit: number): Promise<TransactionEvent[]> {
    const result = await this.query<EventRow>(
      'read events',
      'SELECT * FROM transaction_events WHERE id > $1 ORDER BY id LIMIT $2',
      [bound(afterId, Math.floor), limitOf(limit)],
    );
    return result.rows.map(toTransactionEvent);
  }

  async now(): Promise<number> {
    const result = await this.query<{ now: number }>(
      'read the clock',
      `SELECT ${DB_NOW_MS} AS now`,
    );
    return result.rows[0]?.now ?? Date.now();
  }

  async latestEventId(): Promise<number> {
    const result = await this.query<{ id: number }>(
      'read events',
      'SELECT coalesce(max(id), 0) AS id FROM transaction_events',
    );
    return result.rows[0]?.id ?? 0;
  }

  async annotate(transactionId: number, note: string): Promise<void> {
    await this.query(
      'annotate a transaction',
      `INSERT INTO transaction_events (transaction_id, state, at, note)
       SELECT id, state, ${DB_NOW_MS}, $2 FROM transactions WHERE id = $1`,
      [id(transactionId), oneLine(note, 500)],
    );
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
      client = await boundedConnect(this.pool, ms);
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

  /** One statement, in its own transaction. */
  private async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
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
  private async transaction<T>(
    what: string,
    fn: (client: pg.PoolClient) => Promise<T>,
  ): Promise<T> {
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
}

/**
 * A connection from the pool within `ms` (the pool's own bound is the connect timeout, 5 s): a
 * probe must not wait past its bound. One that comes later goes back to the pool.
 */
function boundedConnect(pool: pg.Pool, ms: number): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      // pg's own words for a bound passed: journalError reports "did not answer within ms".
      reject(new Error('Query read timeout'));
    }, ms);
    pool.connect().then(
      (client) => {
        clearTimeout(timer);
        if (late) client.release();
        else resolve(client);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error as Error);
      },
    );
  });
}
