import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { EcrError } from '../core/errors.js';
import type { DriverOutcome, Outcome } from '../core/transaction.js';
import {
  MAX_NOTIFICATION_ERROR_LENGTH,
  NOT_HELD,
  NOTIFIED_STATES,
  RECOVERED_AFTER_SENT,
  RECOVERED_BEFORE_SENT,
  type ClaimInput,
  type ClaimResult,
  type Journal,
  type JournalRow,
  type ListFilter,
  type NotificationAttempt,
  type NotificationRow,
  type Owner,
  type TransactionEvent,
  type TransactionKey,
} from '../core/journal-port.js';
import { MIGRATIONS } from './migrations.js';
import { guardSharedMemory } from './shared-memory-guard.js';
import { isPublicId, newPublicId } from './public-id.js';
import {
  mayTryAgain,
  oneLine,
  toJournalRow as toSharedRow,
  toNotificationRow,
  toTransactionEvent,
  type EventRow,
  type NotificationDbRow,
  type Row as SharedRow,
} from './rows.js';

/** Default journal file, relative to the data directory. */
export const JOURNAL_FILE_NAME = 'ecr-bridge.db';
/** How long a writer waits for another process's write lock before failing. */
export const DEFAULT_BUSY_TIMEOUT_MS = 10_000;
/**
 * Longest a readiness probe blocks the event loop at once while it waits for the write lock
 * (better-sqlite3 waits synchronously); it tries again after PROBE_PAUSE_MS, until its bound.
 */
export const PROBE_SLICE_MS = 20;
/** Pause between two tries of a probe: the event loop runs meanwhile. */
export const PROBE_PAUSE_MS = 30;
const DEFAULT_LIST_LIMIT = 100;

/** A row as SQLite gives it: `details` is JSON text. */
type Row = Omit<SharedRow, 'details'> & { details: string | null };

/** Writing an outcome: the same columns whether it ends an attempt or settles an unknown. */
const SET_OUTCOME = `UPDATE transactions SET state = @state, error_code = @errorCode, message = @message,
  approval_code = @approvalCode, masked_pan = @maskedPan, card_brand = @cardBrand,
  terminal_tx_id = @terminalTxId, details = @details, owner_pid = NULL, owner_token = NULL,
  updated_at = @now, completed_at = @now`;

function outcomeParams(id: number, outcome: DriverOutcome, now: number) {
  return {
    id,
    state: outcome.outcome,
    errorCode: outcome.errorCode ?? null,
    message: outcome.message ?? null,
    approvalCode: outcome.approvalCode ?? null,
    maskedPan: outcome.maskedPan ?? null,
    cardBrand: outcome.cardBrand ?? null,
    terminalTxId: outcome.terminalTxId ?? null,
    details: outcome.details === undefined ? null : JSON.stringify(outcome.details),
    now,
  };
}

function toJournalRow(row: Row): JournalRow {
  return toSharedRow({
    ...row,
    details: row.details === null ? null : (JSON.parse(row.details) as JournalRow['details']),
  });
}

/** `'approved', 'declined', 'cancelled'`, for SQL. */
const NOTIFIED_SQL = NOTIFIED_STATES.map((state) => `'${state}'`).join(', ');
/** A transaction that happened and has no notification yet: what the sweep looks for. */
/**
 * 128 random bits as 32 letters (hex with its digits spelt g–p): a key with long digit runs could
 * look like a card number to the card-data scans, and be masked or flagged.
 */
const LETTERS_ONLY_RANDOM_KEY = [...'0123456789'].reduce(
  (sql, digit, i) => `replace(${sql}, '${digit}', '${'ghijklmnop'[i] as string}')`,
  'lower(hex(randomblob(16)))',
);

const MISSING_NOTIFICATION = `state IN (${NOTIFIED_SQL})
  AND t.id >= (SELECT first_transaction_id FROM outbox_start)
  AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.transaction_id = t.id)`;

/**
 * What the previous sweep saw: the highest transaction id, and the transactions that could still
 * become notifiable (in flight or unknown). Every other row was final then — notified already,
 * or `failed`, which never changes — so the next sweep need look only at these and newer ids.
 */
interface SweepMark {
  readonly maxId: number;
  readonly open: readonly number[];
}

/** A short error for the outbox. */
function shortError(error: string): string {
  return oneLine(error, MAX_NOTIFICATION_ERROR_LENGTH);
}

export interface SqliteJournalOptions {
  /** Path of the database file; its directory is created. */
  readonly path: string;
  /** @default DEFAULT_BUSY_TIMEOUT_MS */
  readonly busyTimeoutMs?: number;
  /** Clock, in milliseconds since the epoch. @default Date.now */
  readonly now?: () => number;
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
 */
export class SqliteJournal implements Journal {
  private readonly db: Database.Database;
  private readonly clock: () => number;
  private readonly statements;
  private sweepMark: SweepMark | undefined;

  constructor(options: SqliteJournalOptions) {
    mkdirSync(dirname(options.path), { recursive: true });
    this.clock = options.now ?? Date.now;
    try {
      this.db = new Database(options.path, {
        timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
      });
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
    } catch (error) {
      throw new EcrError(
        'JOURNAL_ERROR',
        `cannot open the journal at ${options.path}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    guardSharedMemory(this.db, options.path, options.onBroken ?? (() => undefined));
    const db = this.db;
    this.statements = {
      insert: db.prepare(
        `INSERT INTO transactions (public_id, merchant_id, terminal_id, reference, attempt, kind,
           amount_minor, currency, method, original_reference, state, owner_pid, owner_token,
           heartbeat_at, created_at, updated_at)
         VALUES (@publicId, @merchantId, @terminalId, @reference, @attempt, @kind, @amountMinor,
           @currency, @method, @originalReference, 'received', @pid, @token, @now, @now, @now)`,
      ),
      byKey: db.prepare<[string, string, string], Row>(
        `SELECT * FROM transactions WHERE merchant_id = ? AND terminal_id = ? AND reference = ?
         ORDER BY attempt DESC LIMIT 1`,
      ),
      attemptsOf: db.prepare<[string, string, string], Row>(
        `SELECT * FROM transactions WHERE merchant_id = ? AND terminal_id = ? AND reference = ?
         ORDER BY attempt`,
      ),
      byId: db.prepare<[number], Row>('SELECT * FROM transactions WHERE id = ?'),
      byPublicId: db.prepare<[string], Row>('SELECT * FROM transactions WHERE public_id = ?'),
      byReference: db.prepare<[string], Row>(
        'SELECT * FROM transactions WHERE reference = ? ORDER BY id DESC',
      ),
      newAttempt: db.prepare('INSERT INTO attempts (transaction_id, started_at) VALUES (?, ?)'),
      wireId: db.prepare<[number], { id: number | null }>(
        'SELECT max(id) AS id FROM attempts WHERE transaction_id = ?',
      ),
      markSent: db.prepare(
        `UPDATE transactions SET state = 'sent', updated_at = @now
         WHERE id = @id AND state = 'received' AND owner_token = @token`,
      ),
      complete: db.prepare(
        `${SET_OUTCOME} WHERE id = @id AND state IN ('received', 'sent') AND owner_token = @token`,
      ),
      resolveUnknown: db.prepare(`${SET_OUTCOME} WHERE id = @id AND state = 'unknown'`),
      resolveByHand: db.prepare(
        `UPDATE transactions SET state = @state, error_code = NULL, updated_at = @now, completed_at = @now,
           message = 'resolved by hand: ' || @note || ' (was unknown' ||
             coalesce(': ' || error_code, '') || coalesce(': ' || message, '') || ')'
         WHERE id = @id AND state = 'unknown'`,
      ),
      eventsOf: db.prepare<[number], EventRow>(
        'SELECT * FROM transaction_events WHERE transaction_id = ? ORDER BY id',
      ),
      eventsAfter: db.prepare<[number, number], EventRow>(
        'SELECT * FROM transaction_events WHERE id > ? ORDER BY id LIMIT ?',
      ),
      annotate: db.prepare<[number, string, number]>(
        `INSERT INTO transaction_events (transaction_id, state, at, note)
         SELECT id, state, ?, ? FROM transactions WHERE id = ?`,
      ),
      latestEventId: db.prepare<[], { id: number }>(
        'SELECT coalesce(max(id), 0) AS id FROM transaction_events',
      ),
      inFlight: db.prepare<[], Row>(
        "SELECT * FROM transactions WHERE state IN ('received', 'sent')",
      ),
      orphan: db.prepare(
        `UPDATE transactions SET
           state = CASE state WHEN 'received' THEN 'failed' ELSE 'unknown' END,
           error_code = CASE state WHEN 'received' THEN 'ABORTED' ELSE 'OUTCOME_UNKNOWN' END,
           message = @message, owner_pid = NULL, owner_token = NULL, updated_at = @now,
           completed_at = @now
         WHERE id = @id AND state = @state AND owner_token IS @token`,
      ),
      lockGet: db.prepare<
        [string],
        { owner_pid: number; owner_token: string; heartbeat_at: number }
      >('SELECT owner_pid, owner_token, heartbeat_at FROM terminal_locks WHERE terminal_id = ?'),
      lockPut: db.prepare(
        `INSERT INTO terminal_locks (terminal_id, owner_pid, owner_token, acquired_at, heartbeat_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (terminal_id) DO UPDATE SET owner_pid = excluded.owner_pid,
           owner_token = excluded.owner_token, acquired_at = excluded.acquired_at,
           heartbeat_at = excluded.heartbeat_at`,
      ),
      heartbeatRows: db.prepare(
        `UPDATE transactions SET heartbeat_at = @now
         WHERE owner_token = @token AND state IN ('received', 'sent')`,
      ),
      heartbeatLocks: db.prepare(
        'UPDATE terminal_locks SET heartbeat_at = @now WHERE owner_token = @token',
      ),
      lockDelete: db.prepare(
        'DELETE FROM terminal_locks WHERE terminal_id = ? AND owner_token = ?',
      ),
      // The key is random per row (migration 3 says why); a duplicate key, one chance in 2^128,
      // would fail the insert loudly rather than merge two notifications.
      notificationInsert: db.prepare<{ id: number; now: number }>(
        `INSERT INTO notifications (transaction_id, state, attempts, next_attempt_at, idempotency_key, created_at)
         SELECT id, 'pending', 0, @now, 'ecr-bridge-' || ${LETTERS_ONLY_RANDOM_KEY}, @now
         FROM transactions WHERE id = @id AND state IN (${NOTIFIED_SQL})
         ON CONFLICT (transaction_id) DO NOTHING`,
      ),
      notificationById: db.prepare<[number], NotificationDbRow>(
        'SELECT * FROM notifications WHERE id = ?',
      ),
      notificationByTransaction: db.prepare<[number], NotificationDbRow>(
        'SELECT * FROM notifications WHERE transaction_id = ?',
      ),
      notificationsDue: db.prepare<[number, number], NotificationDbRow>(
        `SELECT * FROM notifications WHERE state = 'pending' AND next_attempt_at <= ?
         ORDER BY next_attempt_at, id LIMIT ?`,
      ),
      notificationSent: db.prepare<{ id: number; at: number }>(
        `UPDATE notifications SET state = 'sent', attempts = attempts + 1,
           sent_at = coalesce(sent_at, @at)
         WHERE id = @id`,
      ),
      notificationFailed: db.prepare<{ id: number; error: string; next: number }>(
        `UPDATE notifications SET attempts = attempts + 1, last_error = @error,
           next_attempt_at = CASE state WHEN 'pending' THEN @next ELSE next_attempt_at END
         WHERE id = @id`,
      ),
      missingAll: db.prepare<[], { id: number }>(
        `SELECT id FROM transactions t WHERE ${MISSING_NOTIFICATION} ORDER BY id`,
      ),
      missingAfter: db.prepare<[number], { id: number }>(
        `SELECT id FROM transactions t WHERE id > ? AND ${MISSING_NOTIFICATION} ORDER BY id`,
      ),
      missingOne: db.prepare<[number], { id: number }>(
        `SELECT id FROM transactions t WHERE id = ? AND ${MISSING_NOTIFICATION}`,
      ),
      maxId: db.prepare<[], { id: number }>('SELECT coalesce(max(id), 0) AS id FROM transactions'),
      // Same WHERE as the partial index transactions_state: an index-only walk.
      openIds: db.prepare<[], { id: number }>(
        "SELECT id FROM transactions WHERE state IN ('received', 'sent', 'unknown')",
      ),
    };
  }

  /**
   * Runs the migrations not yet applied, each in its own write transaction. Foreign keys are off
   * while they run, as SQLite's documented way of rebuilding a table requires (migration 7), and
   * checked before each commit: a migration that would leave a dangling reference fails whole.
   */
  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new Error(
        `the journal has schema version ${version}; this ecr-bridge knows up to ${MIGRATIONS.length}`,
      );
    }
    if (version === MIGRATIONS.length) return;
    this.db.pragma('foreign_keys = OFF');
    try {
      for (let v = version; v < MIGRATIONS.length; v++) {
        this.db
          .transaction(() => {
            // Re-read inside the write lock: another process may have migrated meanwhile.
            const current = this.db.pragma('user_version', { simple: true }) as number;
            if (current > v) return;
            this.db.exec(MIGRATIONS[v] as string);
            const dangling = this.db.pragma('foreign_key_check') as unknown[];
            if (dangling.length > 0)
              throw new Error(`migration ${v + 1} left ${dangling.length} dangling references`);
            this.db.pragma(`user_version = ${v + 1}`);
          })
          .immediate();
      }
    } finally {
      this.db.pragma('foreign_keys = ON');
    }
  }

  claim(input: ClaimInput): ClaimResult {
    return this.write(() => {
      const now = this.clock();
      // Inside the write transaction: no other process can claim between this read and the insert.
      const latest = this.statements.byKey.get(input.merchantId, input.terminalId, input.reference);
      // The latest attempt is answered as stored unless it charged nothing and this is the same
      // request again (ARCHITECTURE.md invariant 1).
      if (latest !== undefined && !mayTryAgain(toJournalRow(latest), input))
        return { type: 'existing', row: toJournalRow(latest) };
      const id = Number(
        this.statements.insert.run({
          // 96 random bits: a collision would fail the insert loudly (unique index), never
          // merge two rows.
          publicId: newPublicId(),
          merchantId: input.merchantId,
          terminalId: input.terminalId,
          reference: input.reference,
          attempt: (latest?.attempt ?? 0) + 1,
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
    const changes = this.write(
      () => this.statements.markSent.run({ id, token: owner.token, now: this.clock() }).changes,
    );
    if (changes !== 1) throw new EcrError('JOURNAL_ERROR', NOT_HELD);
  }

  complete(id: number, owner: Owner, outcome: DriverOutcome): JournalRow {
    return this.write(() => {
      const changes = this.statements.complete.run({
        ...outcomeParams(id, outcome, this.clock()),
        token: owner.token,
      }).changes;
      if (changes !== 1) throw new EcrError('JOURNAL_ERROR', NOT_HELD);
      return toJournalRow(this.statements.byId.get(id) as Row);
    });
  }

  resolveUnknown(id: number, outcome: DriverOutcome): JournalRow | undefined {
    if (outcome.outcome === 'unknown') return undefined;
    return this.write(() => {
      const changes = this.statements.resolveUnknown.run(
        outcomeParams(id, outcome, this.clock()),
      ).changes;
      return changes === 1 ? toJournalRow(this.statements.byId.get(id) as Row) : undefined;
    });
  }

  resolveByHand(
    id: number,
    outcome: Exclude<Outcome, 'unknown'>,
    note: string,
  ): JournalRow | undefined {
    return this.write(() => {
      const changes = this.statements.resolveByHand.run({
        id,
        state: outcome,
        note,
        now: this.clock(),
      }).changes;
      return changes === 1 ? toJournalRow(this.statements.byId.get(id) as Row) : undefined;
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
    const row = this.db
      .prepare<[string, string, number], Row>(
        `SELECT * FROM transactions WHERE merchant_id = ? AND terminal_id = ? AND id < ?
           AND state NOT IN ('received', 'failed') ORDER BY id DESC LIMIT 1`,
      )
      .get(merchantId, terminalId, beforeId);
    return row === undefined ? undefined : toJournalRow(row);
  }

  followUpsOf(merchantId: string, terminalId: string, originalReference: string): JournalRow[] {
    return this.db
      .prepare<[string, string, string], Row>(
        `SELECT * FROM transactions WHERE merchant_id = ? AND terminal_id = ?
           AND original_reference = ? ORDER BY id`,
      )
      .all(merchantId, terminalId, originalReference)
      .map(toJournalRow);
  }

  list(filter: ListFilter = {}): JournalRow[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.unresolved === true) where.push("state IN ('received', 'sent', 'unknown')");
    if (filter.terminalId !== undefined) {
      where.push('terminal_id = ?');
      params.push(filter.terminalId);
    }
    if (filter.merchantId !== undefined) {
      where.push('merchant_id = ?');
      params.push(filter.merchantId);
    }
    if (filter.state !== undefined) {
      where.push('state = ?');
      params.push(filter.state);
    }
    const sql = `SELECT * FROM transactions ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id DESC LIMIT ?`;
    params.push(filter.limit ?? DEFAULT_LIST_LIMIT);
    return (this.db.prepare(sql).all(...params) as Row[]).map(toJournalRow);
  }

  recoverOrphans(isAlive: (owner: Owner) => boolean): JournalRow[] {
    return this.write(() => {
      const recovered: JournalRow[] = [];
      for (const row of this.statements.inFlight.all()) {
        const owner =
          row.owner_pid === null || row.owner_token === null
            ? undefined
            : {
                pid: row.owner_pid,
                token: row.owner_token,
                ...(row.heartbeat_at === null ? {} : { heartbeatAt: row.heartbeat_at }),
              };
        if (owner !== undefined && isAlive(owner)) continue;
        const message = row.state === 'received' ? RECOVERED_BEFORE_SENT : RECOVERED_AFTER_SENT;
        this.statements.orphan.run({
          id: row.id,
          state: row.state,
          token: row.owner_token,
          message,
          now: this.clock(),
        });
        recovered.push(toJournalRow(this.statements.byId.get(row.id) as Row));
      }
      return recovered;
    });
  }

  tryLockTerminal(terminalId: string, owner: Owner, isAlive: (owner: Owner) => boolean): boolean {
    return this.write(() => {
      const held = this.statements.lockGet.get(terminalId);
      if (
        held !== undefined &&
        held.owner_token !== owner.token &&
        isAlive({ pid: held.owner_pid, token: held.owner_token, heartbeatAt: held.heartbeat_at })
      ) {
        return false;
      }
      const now = this.clock();
      this.statements.lockPut.run(terminalId, owner.pid, owner.token, now, now);
      return true;
    }, 'volatile');
  }

  heartbeat(owner: Owner): void {
    this.write(() => {
      const params = { token: owner.token, now: this.clock() };
      this.statements.heartbeatRows.run(params);
      this.statements.heartbeatLocks.run(params);
    }, 'volatile');
  }

  unlockTerminal(terminalId: string, owner: Owner): void {
    this.write(() => this.statements.lockDelete.run(terminalId, owner.token), 'volatile');
  }

  housekeeping(isAlive: (owner: Owner) => boolean): {
    readonly checkpointed: boolean;
    readonly locksRemoved: number;
  } {
    // A lock of a dead owner only means nobody holds the terminal (tryLockTerminal takes it over
    // anyway); dropping it keeps the table to live processes. Checked and deleted under the write
    // lock, by token, so a lock taken meanwhile by a live process is never removed.
    const locksRemoved = this.write(() => {
      let removed = 0;
      const all = this.db
        .prepare<
          [],
          { terminal_id: string; owner_pid: number; owner_token: string; heartbeat_at: number }
        >('SELECT terminal_id, owner_pid, owner_token, heartbeat_at FROM terminal_locks')
        .all();
      for (const held of all) {
        const owner = {
          pid: held.owner_pid,
          token: held.owner_token,
          heartbeatAt: held.heartbeat_at,
        };
        if (isAlive(owner)) continue;
        removed += this.statements.lockDelete.run(held.terminal_id, held.owner_token).changes;
      }
      return removed;
    }, 'volatile');
    // TRUNCATE: copy every WAL frame into the database and empty the -wal file, so years of
    // payments never leave a large log behind. It waits (busy timeout) for other connections'
    // readers; `busy` = 1 when one still held an old snapshot: nothing lost, done next time.
    let rows: { busy: number }[];
    try {
      rows = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
    } catch (error) {
      const message = `journal checkpoint failed: ${(error as Error).message}`;
      throw new EcrError('JOURNAL_ERROR', message, { cause: error });
    }
    return { checkpointed: rows[0]?.busy === 0, locksRemoved };
  }

  enqueueNotification(transactionId: number): NotificationRow {
    return this.write(() => {
      this.statements.notificationInsert.run({ id: transactionId, now: this.clock() });
      const row = this.statements.notificationByTransaction.get(transactionId);
      if (row !== undefined) return toNotificationRow(row);
      const transaction = this.statements.byId.get(transactionId);
      if (transaction === undefined) {
        throw new EcrError('NOT_FOUND', `no transaction ${transactionId} to notify`, {
          field: 'transactionId',
          rule: 'must name a journaled transaction',
        });
      }
      const rule = 'must name an approved, declined or cancelled transaction';
      throw new EcrError(
        'INVALID_INPUT',
        `transactionId: ${rule} (transaction ${transactionId} is ${transaction.state})`,
        { field: 'transactionId', rule },
      );
    });
  }

  enqueueMissingNotifications(): NotificationRow[] {
    // Look in a read snapshot (no write lock held while a large journal is scanned), then insert
    // what was found under the write lock; the insert re-checks each row, so whatever changed in
    // between is still right, and the mark taken in the snapshot catches it next time.
    const { missing, mark } = this.snapshot(() => {
      const previous = this.sweepMark;
      const missing =
        previous === undefined
          ? this.statements.missingAll.all().map((r) => r.id)
          : [
              ...previous.open.filter((id) => this.statements.missingOne.get(id) !== undefined),
              ...this.statements.missingAfter.all(previous.maxId).map((r) => r.id),
            ];
      const maxId = (this.statements.maxId.get() as { id: number }).id;
      const open = this.statements.openIds.all().map((r) => r.id);
      return { missing: missing.sort((a, b) => a - b), mark: { maxId, open } };
    });
    const created =
      missing.length === 0
        ? []
        : this.write(() => {
            const now = this.clock();
            const rows: NotificationRow[] = [];
            for (const id of missing) {
              if (this.statements.notificationInsert.run({ id, now }).changes !== 1) continue;
              rows.push(
                toNotificationRow(
                  this.statements.notificationByTransaction.get(id) as NotificationDbRow,
                ),
              );
            }
            return rows;
          });
    this.sweepMark = mark;
    return created;
  }

  dueNotifications(now: number, limit: number): NotificationRow[] {
    return this.statements.notificationsDue.all(now, limit).map(toNotificationRow);
  }

  notificationFor(transactionId: number): NotificationRow | undefined {
    const row = this.statements.notificationByTransaction.get(transactionId);
    return row === undefined ? undefined : toNotificationRow(row);
  }

  recordNotificationAttempt(id: number, outcome: NotificationAttempt): NotificationRow {
    return this.write(() => {
      const changes = outcome.sent
        ? this.statements.notificationSent.run({ id, at: outcome.at }).changes
        : this.statements.notificationFailed.run({
            id,
            error: shortError(outcome.error),
            next: outcome.nextAttemptAt,
          }).changes;
      if (changes !== 1) throw new EcrError('JOURNAL_ERROR', `no notification ${id}`);
      return toNotificationRow(this.statements.notificationById.get(id) as NotificationDbRow);
    });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  eventsOf(transactionId: number): TransactionEvent[] {
    return this.snapshot(() => this.statements.eventsOf.all(transactionId).map(toTransactionEvent));
  }

  eventsAfter(afterId: number, limit: number): TransactionEvent[] {
    return this.snapshot(() =>
      this.statements.eventsAfter.all(afterId, limit).map(toTransactionEvent),
    );
  }

  annotate(transactionId: number, note: string): void {
    const text = oneLine(note, 500);
    this.write(() => this.statements.annotate.run(this.clock(), text, transactionId));
  }

  async probe(timeoutMs: number): Promise<void> {
    // A write waits up to the busy timeout (10 s) with the event loop blocked: the probe tries
    // in slices of PROBE_SLICE_MS instead, and lets the event loop run between them.
    const tries = Math.max(1, Math.ceil(timeoutMs / (PROBE_SLICE_MS + PROBE_PAUSE_MS)));
    for (let i = 1; !this.tryWriteLock(Math.min(PROBE_SLICE_MS, timeoutMs)); i++) {
      if (i >= tries) {
        throw new EcrError(
          'JOURNAL_ERROR',
          `journal at ${this.db.name}: could not take the write lock within ${timeoutMs} ms (another process or connection holds it): nothing can be committed`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, PROBE_PAUSE_MS));
    }
  }

  /**
   * BEGIN IMMEDIATE (the write lock, as every write takes it) then ROLLBACK, waiting at most
   * `busyMs` for the lock; false when another connection holds it. The normal busy timeout is
   * back before anything else can run.
   */
  private tryWriteLock(busyMs: number): boolean {
    if (!this.db.open) throw new EcrError('JOURNAL_ERROR', 'journal is closed');
    const normal = this.db.pragma('busy_timeout', { simple: true }) as number;
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyMs))}`);
    try {
      this.db.exec('BEGIN IMMEDIATE');
      this.db.exec('ROLLBACK');
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code === 'SQLITE_BUSY') return false;
      const message = `journal at ${this.db.name}: write probe failed: ${(error as Error).message}`;
      throw new EcrError('JOURNAL_ERROR', message, { cause: error });
    } finally {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      this.db.pragma(`busy_timeout = ${normal}`);
    }
  }

  now(): number {
    return this.clock();
  }

  latestEventId(): number {
    return this.snapshot(() => this.statements.latestEventId.get()?.id ?? 0);
  }

  /**
   * @internal The open database, for stores that keep their tables in the journal's file and
   * schema (the gateway's tenants, migration 4). Not part of the `Journal` interface.
   */
  get database(): Database.Database {
    return this.db;
  }

  /** Runs `fn` in a read transaction: one consistent snapshot, no write lock. */
  private snapshot<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).deferred();
    } catch (error) {
      if (error instanceof EcrError) throw error;
      throw new EcrError('JOURNAL_ERROR', `journal read failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /**
   * Runs `fn` in an IMMEDIATE transaction (write lock taken up front: no upgrade deadlocks).
   * `volatile` changes need not survive a power cut (terminal locks: a lost lock row only means
   * no process holds the terminal), so their commit skips the fsync; the next durable commit
   * syncs the WAL, their frames included.
   */
  private write<T>(fn: () => T, durability: 'durable' | 'volatile' = 'durable'): T {
    try {
      if (durability === 'durable') return this.db.transaction(fn).immediate();
      this.db.pragma('synchronous = NORMAL');
      try {
        return this.db.transaction(fn).immediate();
      } finally {
        this.db.pragma('synchronous = FULL');
      }
    } catch (error) {
      if (error instanceof EcrError) throw error;
      throw new EcrError('JOURNAL_ERROR', `journal write failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}
