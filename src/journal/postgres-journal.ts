import type pg from 'pg';
import { EcrError } from '../core/errors.js';
import { parseOptions } from '../core/options.js';
import type { DriverOutcome, Outcome } from '../core/transaction.js';
import {
  NOT_HELD,
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
import { postgresOptionsSchema, type PostgresJournalOptions } from './postgres-connection.js';
import { DB_NOW_MS } from './postgres-migrations.js';
import { PostgresEvents } from './postgres-events.js';
import { PostgresNotifications } from './postgres-notifications.js';
import { PostgresOwners } from './postgres-owners.js';
import { PostgresPool } from './postgres-pool.js';
import {
  decideClaim,
  IN_FLIGHT_SQL,
  LIST_SHAPES,
  listQuery,
  listSql,
  NEVER_REACHED_SQL,
  settles,
} from './policy.js';
import { isPublicId, newPublicId } from './public-id.js';
import {
  bound,
  id,
  limitOf,
  outcomeColumns,
  rowOrUndefined,
  storable,
  toJournalRow,
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

/** Writing an outcome ($1 id, $2–$9 the outcome's columns); `c.now` is the database clock. */
const SET_OUTCOME = `UPDATE transactions t SET state = $2, error_code = $3, message = $4,
  approval_code = $5, masked_pan = $6, card_brand = $7, terminal_tx_id = $8, details = $9::json,
  owner_pid = NULL, owner_token = NULL, updated_at = c.now, completed_at = c.now
  FROM (SELECT ${DB_NOW_MS} AS now) c`;

function outcomeValues(transactionId: number, outcome: DriverOutcome): unknown[] {
  const columns = outcomeColumns(outcome, storable);
  return [
    id(transactionId),
    columns.state,
    columns.errorCode,
    columns.message,
    columns.approvalCode,
    columns.maskedPan,
    columns.cardBrand,
    columns.terminalTxId,
    columns.details,
  ];
}

const SQL = {
  claim: `WITH clock AS (SELECT ${DB_NOW_MS} AS now),
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
  markSent: `UPDATE transactions SET state = 'sent', updated_at = ${DB_NOW_MS}
     WHERE id = $1 AND state = 'received' AND owner_token = $2`,
  complete: `${SET_OUTCOME} WHERE t.id = $1 AND t.state IN (${IN_FLIGHT_SQL}) AND t.owner_token = $10
     RETURNING t.*`,
  resolveUnknown: `${SET_OUTCOME} WHERE t.id = $1 AND t.state = 'unknown' RETURNING t.*`,
  resolveByHand: `UPDATE transactions t SET state = $2, error_code = NULL, updated_at = c.now, completed_at = c.now,
       message = 'resolved by hand: ' || $3::text || ' (was unknown' ||
         coalesce(': ' || t.error_code, '') || coalesce(': ' || t.message, '') || ')'
     FROM (SELECT ${DB_NOW_MS} AS now) c
     WHERE t.id = $1 AND t.state = 'unknown'
     RETURNING t.*`,
  byId: 'SELECT * FROM transactions WHERE id = $1',
  byPublicId: 'SELECT * FROM transactions WHERE public_id = $1',
  wireId: 'SELECT max(id) AS id FROM attempts WHERE transaction_id = $1',
  byKey: `SELECT * FROM transactions WHERE merchant_id = $1 AND terminal_id = $2 AND reference = $3
     ORDER BY attempt DESC LIMIT 1`,
  attemptsOf: `SELECT * FROM transactions WHERE merchant_id = $1 AND terminal_id = $2 AND reference = $3
     ORDER BY attempt`,
  byReference: 'SELECT * FROM transactions WHERE reference = $1 ORDER BY id DESC',
  latestSentBefore: `SELECT * FROM transactions WHERE merchant_id = $1 AND terminal_id = $2 AND id < $3
       AND state NOT IN (${NEVER_REACHED_SQL}) ORDER BY id DESC LIMIT 1`,
  followUpsOf: `SELECT * FROM transactions WHERE merchant_id = $1 AND terminal_id = $2
       AND original_reference = $3 ORDER BY id`,
  /** One text per list shape (`policy.ts`), written once. */
  list: Array.from({ length: LIST_SHAPES }, (_, shape) => listSql(shape, (n) => `$${n}`)),
  now: `SELECT ${DB_NOW_MS} AS now`,
} as const;

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
  private readonly db: PostgresPool;
  /** This process's clock (ms since the epoch); row times are the database's. */
  private readonly stamp: () => number;
  private readonly owners: PostgresOwners;
  private readonly notifications: PostgresNotifications;
  private readonly events: PostgresEvents;

  private constructor(db: PostgresPool, schema: string | undefined, stamp: () => number) {
    this.db = db;
    this.pool = db.pool;
    this.where = db.where;
    this.schema = schema;
    this.stamp = stamp;
    this.owners = new PostgresOwners(db, stamp);
    this.notifications = new PostgresNotifications(db, stamp);
    this.events = new PostgresEvents(db);
  }

  /** Connects, creates the schema if needed, runs the migrations, and returns the journal. */
  static async open(options: PostgresJournalOptions): Promise<PostgresJournal> {
    const parsed = parseOptions(postgresOptionsSchema, options, 'PostgresJournal');
    const db = await PostgresPool.open(parsed);
    // Read at each call, not captured: a test may stand in for the process's clock.
    return new PostgresJournal(db, parsed.schema, parsed.now ?? (() => Date.now()));
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    // The latest attempt decides (the rule shared with SQLite, `decideClaim`); the insert of the
    // next attempt number then succeeds only if no other claim took that number meanwhile, so a
    // decision made on a stale read can only end as `existing`, never as a second attempt.
    const decision = decideClaim(await this.find(input), input);
    if (decision.type === 'existing') return decision;
    const inserted = await this.db.query<Row & { wire_id: number }>(
      'claim a reference',
      SQL.claim,
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
        decision.attempt,
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
    const result = await this.db.query('mark a transaction sent', SQL.markSent, [
      id(transactionId),
      owner.token,
    ]);
    if (result.rowCount !== 1) throw new EcrError('JOURNAL_ERROR', NOT_HELD);
  }

  async complete(transactionId: number, owner: Owner, outcome: DriverOutcome): Promise<JournalRow> {
    const result = await this.db.query<Row>('complete a transaction', SQL.complete, [
      ...outcomeValues(transactionId, outcome),
      owner.token,
    ]);
    const row = result.rows[0];
    if (row === undefined) throw new EcrError('JOURNAL_ERROR', NOT_HELD);
    return toJournalRow(row);
  }

  async resolveUnknown(
    transactionId: number,
    outcome: DriverOutcome,
  ): Promise<JournalRow | undefined> {
    if (!settles(outcome)) return undefined;
    const result = await this.db.query<Row>(
      'resolve an unknown transaction',
      SQL.resolveUnknown,
      outcomeValues(transactionId, outcome),
    );
    return rowOrUndefined(result.rows[0]);
  }

  async resolveByHand(
    transactionId: number,
    outcome: Exclude<Outcome, 'unknown'>,
    note: string,
  ): Promise<JournalRow | undefined> {
    const result = await this.db.query<Row>('resolve a transaction by hand', SQL.resolveByHand, [
      id(transactionId),
      outcome,
      storable(note),
    ]);
    return rowOrUndefined(result.rows[0]);
  }

  async get(transactionId: number): Promise<JournalRow | undefined> {
    const result = await this.db.query<Row>('read a transaction', SQL.byId, [id(transactionId)]);
    return rowOrUndefined(result.rows[0]);
  }

  async getByPublicId(publicId: string): Promise<JournalRow | undefined> {
    if (!isPublicId(publicId)) return undefined;
    const result = await this.db.query<Row>('read a transaction', SQL.byPublicId, [publicId]);
    return rowOrUndefined(result.rows[0]);
  }

  async wireIdOf(transactionId: number): Promise<number | undefined> {
    const result = await this.db.query<{ id: number | null }>('read a wire id', SQL.wireId, [
      id(transactionId),
    ]);
    const wire = result.rows[0]?.id;
    return wire === null || wire === undefined ? undefined : Number(wire);
  }

  async find(key: TransactionKey): Promise<JournalRow | undefined> {
    const result = await this.db.query<Row>('find a transaction', SQL.byKey, [
      key.merchantId,
      key.terminalId,
      key.reference,
    ]);
    return rowOrUndefined(result.rows[0]);
  }

  async attemptsOf(key: TransactionKey): Promise<JournalRow[]> {
    const result = await this.db.query<Row>('read the attempts of a reference', SQL.attemptsOf, [
      key.merchantId,
      key.terminalId,
      key.reference,
    ]);
    return result.rows.map(toJournalRow);
  }

  async findByReference(reference: string): Promise<JournalRow[]> {
    const result = await this.db.query<Row>('find transactions by reference', SQL.byReference, [
      reference,
    ]);
    return result.rows.map(toJournalRow);
  }

  async latestSentBefore(
    merchantId: string,
    terminalId: string,
    beforeId: number,
  ): Promise<JournalRow | undefined> {
    const result = await this.db.query<Row>(
      'read the latest sent transaction',
      SQL.latestSentBefore,
      [merchantId, terminalId, bound(beforeId, Math.ceil)],
    );
    return rowOrUndefined(result.rows[0]);
  }

  async followUpsOf(
    merchantId: string,
    terminalId: string,
    originalReference: string,
  ): Promise<JournalRow[]> {
    const result = await this.db.query<Row>('read follow-ups', SQL.followUpsOf, [
      merchantId,
      terminalId,
      originalReference,
    ]);
    return result.rows.map(toJournalRow);
  }

  async list(filter: ListFilter = {}): Promise<JournalRow[]> {
    const query = listQuery(filter);
    const result = await this.db.query<Row>('list transactions', SQL.list[query.shape] as string, [
      ...query.values,
      limitOf(query.limit),
    ]);
    return result.rows.map(toJournalRow);
  }

  recoverOrphans(isAlive: (owner: Owner) => boolean): Promise<JournalRow[]> {
    return this.owners.recoverOrphans(isAlive);
  }

  tryLockTerminal(
    terminalId: string,
    owner: Owner,
    isAlive: (owner: Owner) => boolean,
  ): Promise<boolean> {
    return this.owners.tryLockTerminal(terminalId, owner, isAlive);
  }

  unlockTerminal(terminalId: string, owner: Owner): Promise<void> {
    return this.owners.unlockTerminal(terminalId, owner);
  }

  heartbeat(owner: Owner): Promise<void> {
    return this.owners.heartbeat(owner);
  }

  housekeeping(isAlive: (owner: Owner) => boolean): Promise<HousekeepingResult> {
    return this.owners.housekeeping(isAlive);
  }

  enqueueNotification(transactionId: number): Promise<NotificationRow> {
    return this.notifications.enqueue(transactionId);
  }

  enqueueMissingNotifications(): Promise<NotificationRow[]> {
    return this.notifications.enqueueMissing();
  }

  dueNotifications(now: number, limit: number): Promise<NotificationRow[]> {
    return this.notifications.due(now, limit);
  }

  notificationFor(transactionId: number): Promise<NotificationRow | undefined> {
    return this.notifications.of(transactionId);
  }

  recordNotificationAttempt(
    notificationId: number,
    outcome: NotificationAttempt,
  ): Promise<NotificationRow> {
    return this.notifications.recordAttempt(notificationId, outcome);
  }

  eventsOf(transactionId: number): Promise<TransactionEvent[]> {
    return this.events.of(transactionId);
  }

  eventsAfter(afterId: number, limit: number): Promise<TransactionEvent[]> {
    return this.events.after(afterId, limit);
  }

  /** The database's clock: what the rows' times are read on. */
  async now(): Promise<number> {
    const result = await this.db.query<{ now: number }>('read the clock', SQL.now);
    return result.rows[0]?.now ?? this.stamp();
  }

  latestEventId(): Promise<number> {
    return this.events.latestId();
  }

  annotate(transactionId: number, note: string): Promise<void> {
    return this.events.annotate(transactionId, note);
  }

  probe(timeoutMs: number): Promise<void> {
    return this.db.probe(timeoutMs);
  }

  /** Ends the pool: waits for the calls in progress, then closes every connection. */
  close(): Promise<void> {
    return this.db.close();
  }
}
