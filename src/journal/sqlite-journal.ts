import type Database from 'better-sqlite3';
import { systemClock, type Clock } from '../core/clock.js';
import { EcrError } from '../core/errors.js';
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
import {
  decideClaim,
  IN_FLIGHT_SQL,
  listQuery,
  listSql,
  NEVER_REACHED_SQL,
  settles,
} from './policy.js';
import { isPublicId, newPublicId } from './public-id.js';
import { outcomeColumns, toJournalRow as toSharedRow, type Row as SharedRow } from './rows.js';
import { openSqliteDatabase, SqliteTransactions } from './sqlite-database.js';
import { SqliteEvents } from './sqlite-events.js';
import { SqliteNotifications } from './sqlite-notifications.js';
import { SqliteOwners } from './sqlite-owners.js';

/** Default journal file, relative to the data directory. */
export const JOURNAL_FILE_NAME = 'ecr-bridge.db';
/** How long a writer waits for another process's write lock before failing. */
export const DEFAULT_BUSY_TIMEOUT_MS = 10_000;

/** A row as SQLite gives it: `details` is JSON text. */
type Row = Omit<SharedRow, 'details'> & { details: string | null };

/** Writing an outcome: the same columns whether it ends an attempt or settles an unknown. */
const SET_OUTCOME = `UPDATE transactions SET state = @state, error_code = @errorCode, message = @message,
  approval_code = @approvalCode, masked_pan = @maskedPan, card_brand = @cardBrand,
  terminal_tx_id = @terminalTxId, details = @details, owner_pid = NULL, owner_token = NULL,
  updated_at = @now, completed_at = @now`;

function outcomeParams(id: number, outcome: DriverOutcome, now: number) {
  return { id, ...outcomeColumns(outcome, (text) => text ?? null), now };
}

function toJournalRow(row: Row): JournalRow {
  return toSharedRow({
    ...row,
    details: row.details === null ? null : (JSON.parse(row.details) as JournalRow['details']),
  });
}

type OutcomeParams = ReturnType<typeof outcomeParams>;
type KeyParams = [merchantId: string, terminalId: string, reference: string];

function prepare(db: Database.Database) {
  return {
    insert: db.prepare(
      `INSERT INTO transactions (public_id, merchant_id, terminal_id, reference, attempt, kind,
         amount_minor, currency, method, original_reference, state, owner_pid, owner_token,
         heartbeat_at, created_at, updated_at)
       VALUES (@publicId, @merchantId, @terminalId, @reference, @attempt, @kind, @amountMinor,
         @currency, @method, @originalReference, 'received', @pid, @token, @now, @now, @now)`,
    ),
    byKey: db.prepare<KeyParams, Row>(
      `SELECT * FROM transactions WHERE merchant_id = ? AND terminal_id = ? AND reference = ?
       ORDER BY attempt DESC LIMIT 1`,
    ),
    attemptsOf: db.prepare<KeyParams, Row>(
      `SELECT * FROM transactions WHERE merchant_id = ? AND terminal_id = ? AND reference = ?
       ORDER BY attempt`,
    ),
    byId: db.prepare<[number], Row>('SELECT * FROM transactions WHERE id = ?'),
    byPublicId: db.prepare<[string], Row>('SELECT * FROM transactions WHERE public_id = ?'),
    byReference: db.prepare<[string], Row>(
      'SELECT * FROM transactions WHERE reference = ? ORDER BY id DESC',
    ),
    newAttempt: db.prepare<[number, number]>(
      'INSERT INTO attempts (transaction_id, started_at) VALUES (?, ?)',
    ),
    wireId: db.prepare<[number], { id: number | null }>(
      'SELECT max(id) AS id FROM attempts WHERE transaction_id = ?',
    ),
    latestSentBefore: db.prepare<[string, string, number], Row>(
      `SELECT * FROM transactions WHERE merchant_id = ? AND terminal_id = ? AND id < ?
         AND state NOT IN (${NEVER_REACHED_SQL}) ORDER BY id DESC LIMIT 1`,
    ),
    followUpsOf: db.prepare<[string, string, string], Row>(
      `SELECT * FROM transactions WHERE merchant_id = ? AND terminal_id = ?
         AND original_reference = ? ORDER BY id`,
    ),
    markSent: db.prepare<{ id: number; token: string; now: number }>(
      `UPDATE transactions SET state = 'sent', updated_at = @now
       WHERE id = @id AND state = 'received' AND owner_token = @token`,
    ),
    complete: db.prepare<OutcomeParams & { token: string }>(
      `${SET_OUTCOME} WHERE id = @id AND state IN (${IN_FLIGHT_SQL}) AND owner_token = @token`,
    ),
    resolveUnknown: db.prepare<OutcomeParams>(
      `${SET_OUTCOME} WHERE id = @id AND state = 'unknown'`,
    ),
    resolveByHand: db.prepare<{ id: number; state: string; note: string; now: number }>(
      `UPDATE transactions SET state = @state, error_code = NULL, updated_at = @now, completed_at = @now,
         message = 'resolved by hand: ' || @note || ' (was unknown' ||
           coalesce(': ' || error_code, '') || coalesce(': ' || message, '') || ')'
       WHERE id = @id AND state = 'unknown'`,
    ),
  };
}

export interface SqliteJournalOptions {
  /** Path of the database file; its directory is created. */
  readonly path: string;
  /** @default DEFAULT_BUSY_TIMEOUT_MS */
  readonly busyTimeoutMs?: number;
  /** Clock of the rows' times, in milliseconds since the epoch. @default Date.now */
  readonly now?: () => number;
  /** Timers of the readiness probe's pauses. @default systemClock */
  readonly clock?: Clock;
  /**
   * Called once when the journal's shared-memory file was cut or deleted under this process (see
   * `guardSharedMemory`): every access fails JOURNAL_ERROR from then on. @default nothing more
   */
  readonly onBroken?: (error: EcrError) => void;
}

/**
 * The embedded journal: one SQLite file in WAL mode with `synchronous=FULL`, so that a row
 * written before a byte goes to a terminal survives a crash or a power cut. Several processes
 * may share the file; SQLite's write lock and the unique key make claims atomic between them.
 * Every statement is prepared once, when the journal opens (a list's, on its first use).
 */
export class SqliteJournal implements Journal {
  private readonly db: Database.Database;
  private readonly tx: SqliteTransactions;
  private readonly stamp: () => number;
  private readonly clock: Clock;
  private readonly statements;
  /** One statement per list shape (`policy.ts`), prepared on its first use. */
  private readonly lists = new Map<number, Database.Statement<unknown[], Row>>();
  private readonly owners: SqliteOwners;
  private readonly notifications: SqliteNotifications;
  private readonly events: SqliteEvents;

  constructor(options: SqliteJournalOptions) {
    this.stamp = options.now ?? Date.now;
    this.clock = options.clock ?? systemClock;
    this.db = openSqliteDatabase(
      options.path,
      options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
      options.onBroken ?? (() => undefined),
    );
    this.tx = new SqliteTransactions(this.db);
    this.statements = prepare(this.db);
    this.owners = new SqliteOwners(this.tx, this.stamp, (id) => this.rowById(id));
    this.notifications = new SqliteNotifications(this.tx, this.stamp);
    this.events = new SqliteEvents(this.tx, this.stamp);
  }

  claim(input: ClaimInput): ClaimResult {
    return this.tx.write(() => {
      const now = this.stamp();
      // Inside the write transaction: no other process can claim between this read and the insert.
      const latest = this.statements.byKey.get(input.merchantId, input.terminalId, input.reference);
      // The latest attempt is answered as stored unless it charged nothing and this is the same
      // request again (ARCHITECTURE.md invariant 1).
      const decision = decideClaim(latest === undefined ? undefined : toJournalRow(latest), input);
      if (decision.type === 'existing') return decision;
      const id = Number(
        this.statements.insert.run({
          // 96 random bits: a collision would fail the insert loudly (unique index), never
          // merge two rows.
          publicId: newPublicId(),
          merchantId: input.merchantId,
          terminalId: input.terminalId,
          reference: input.reference,
          attempt: decision.attempt,
          kind: input.kind,
          amountMinor: input.amountMinor,
          currency: input.currency,
          method: input.method,
          originalReference: input.originalReference ?? null,
          pid: input.owner.pid,
          token: input.owner.token,
          now,
        }).lastInsertRowid,
      );
      const row = this.statements.byId.get(id);
      if (row === undefined) throw new Error('claimed row vanished inside its own transaction');
      const wireId = Number(this.statements.newAttempt.run(row.id, now).lastInsertRowid);
      return { type: 'claimed', row: toJournalRow(row), wireId };
    });
  }

  attemptsOf(key: TransactionKey): JournalRow[] {
    return this.statements.attemptsOf
      .all(key.merchantId, key.terminalId, key.reference)
      .map(toJournalRow);
  }

  markSent(id: number, owner: Owner): void {
    const changes = this.tx.write(
      () => this.statements.markSent.run({ id, token: owner.token, now: this.stamp() }).changes,
    );
    if (changes !== 1) throw new EcrError('JOURNAL_ERROR', NOT_HELD);
  }

  complete(id: number, owner: Owner, outcome: DriverOutcome): JournalRow {
    return this.tx.write(() => {
      const changes = this.statements.complete.run({
        ...outcomeParams(id, outcome, this.stamp()),
        token: owner.token,
      }).changes;
      if (changes !== 1) throw new EcrError('JOURNAL_ERROR', NOT_HELD);
      return this.rowById(id);
    });
  }

  resolveUnknown(id: number, outcome: DriverOutcome): JournalRow | undefined {
    if (!settles(outcome)) return undefined;
    return this.tx.write(() => {
      const changes = this.statements.resolveUnknown.run(
        outcomeParams(id, outcome, this.stamp()),
      ).changes;
      return changes === 1 ? this.rowById(id) : undefined;
    });
  }

  resolveByHand(
    id: number,
    outcome: Exclude<Outcome, 'unknown'>,
    note: string,
  ): JournalRow | undefined {
    return this.tx.write(() => {
      const changes = this.statements.resolveByHand.run({
        id,
        state: outcome,
        note,
        now: this.stamp(),
      }).changes;
      return changes === 1 ? this.rowById(id) : undefined;
    });
  }

  get(id: number): JournalRow | undefined {
    const row = this.statements.byId.get(id);
    return row === undefined ? undefined : toJournalRow(row);
  }

  getByPublicId(publicId: string): JournalRow | undefined {
    if (!isPublicId(publicId)) return undefined;
    const row = this.statements.byPublicId.get(publicId);
    return row === undefined ? undefined : toJournalRow(row);
  }

  wireIdOf(transactionId: number): number | undefined {
    return this.statements.wireId.get(transactionId)?.id ?? undefined;
  }

  find(key: TransactionKey): JournalRow | undefined {
    const row = this.statements.byKey.get(key.merchantId, key.terminalId, key.reference);
    return row === undefined ? undefined : toJournalRow(row);
  }

  findByReference(reference: string): JournalRow[] {
    return this.statements.byReference.all(reference).map(toJournalRow);
  }

  latestSentBefore(
    merchantId: string,
    terminalId: string,
    beforeId: number,
  ): JournalRow | undefined {
    const row = this.statements.latestSentBefore.get(merchantId, terminalId, beforeId);
    return row === undefined ? undefined : toJournalRow(row);
  }

  followUpsOf(merchantId: string, terminalId: string, originalReference: string): JournalRow[] {
    return this.statements.followUpsOf
      .all(merchantId, terminalId, originalReference)
      .map(toJournalRow);
  }

  list(filter: ListFilter = {}): JournalRow[] {
    const query = listQuery(filter);
    let statement = this.lists.get(query.shape);
    if (statement === undefined) {
      statement = this.db.prepare<unknown[], Row>(listSql(query.shape, () => '?'));
      this.lists.set(query.shape, statement);
    }
    return statement.all(...query.values, query.limit).map(toJournalRow);
  }

  recoverOrphans(isAlive: (owner: Owner) => boolean): JournalRow[] {
    return this.owners.recoverOrphans(isAlive);
  }

  tryLockTerminal(terminalId: string, owner: Owner, isAlive: (owner: Owner) => boolean): boolean {
    return this.owners.tryLockTerminal(terminalId, owner, isAlive);
  }

  heartbeat(owner: Owner): void {
    this.owners.heartbeat(owner);
  }

  unlockTerminal(terminalId: string, owner: Owner): void {
    this.owners.unlockTerminal(terminalId, owner);
  }

  housekeeping(isAlive: (owner: Owner) => boolean): HousekeepingResult {
    return this.owners.housekeeping(isAlive);
  }

  enqueueNotification(transactionId: number): NotificationRow {
    return this.notifications.enqueue(transactionId);
  }

  enqueueMissingNotifications(): NotificationRow[] {
    return this.notifications.enqueueMissing();
  }

  dueNotifications(now: number, limit: number): NotificationRow[] {
    return this.notifications.due(now, limit);
  }

  notificationFor(transactionId: number): NotificationRow | undefined {
    return this.notifications.of(transactionId);
  }

  recordNotificationAttempt(id: number, outcome: NotificationAttempt): NotificationRow {
    return this.notifications.recordAttempt(id, outcome);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  eventsOf(transactionId: number): TransactionEvent[] {
    return this.events.of(transactionId);
  }

  eventsAfter(afterId: number, limit: number): TransactionEvent[] {
    return this.events.after(afterId, limit);
  }

  annotate(transactionId: number, note: string): void {
    this.events.annotate(transactionId, note);
  }

  probe(timeoutMs: number): Promise<void> {
    return this.tx.probe(timeoutMs, this.clock);
  }

  now(): number {
    return this.stamp();
  }

  latestEventId(): number {
    return this.events.latestId();
  }

  /**
   * @internal The open database, for stores that keep their tables in the journal's file and
   * schema (the gateway's tenants, migration 4). Not part of the `Journal` interface.
   */
  get database(): Database.Database {
    return this.db;
  }

  /** A row this transaction has just written: it is there. */
  private rowById(id: number): JournalRow {
    return toJournalRow(this.statements.byId.get(id) as Row);
  }
}
