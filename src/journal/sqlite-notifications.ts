import type Database from 'better-sqlite3';
import type { NotificationAttempt, NotificationRow } from '../core/journal-port.js';
import { EcrError } from '../core/errors.js';
import { NOTIFIED_SQL, OPEN_SQL, notificationRefused, shortError, SweepMarks } from './policy.js';
import { toNotificationRow, type NotificationDbRow } from './rows.js';
import type { SqliteTransactions } from './sqlite-database.js';

// The back-office notification outbox in the SQLite journal (the Journal interface says what each
// call promises; `policy.ts` what both journals decide the same way).

/**
 * 128 random bits as 32 letters (hex with its digits spelt g–p): a key with long digit runs could
 * look like a card number to the card-data scans, and be masked or flagged.
 */
const LETTERS_ONLY_RANDOM_KEY = [...'0123456789'].reduce(
  (sql, digit, i) => `replace(${sql}, '${digit}', '${'ghijklmnop'[i] as string}')`,
  'lower(hex(randomblob(16)))',
);

/** A transaction that happened and has no notification yet: what the sweep looks for. */
const MISSING_NOTIFICATION = `state IN (${NOTIFIED_SQL})
  AND t.id >= (SELECT first_transaction_id FROM outbox_start)
  AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.transaction_id = t.id)`;

function prepare(db: Database.Database) {
  return {
    // The key is random per row (migration 3 says why); a duplicate key, one chance in 2^128,
    // would fail the insert loudly rather than merge two notifications.
    insert: db.prepare<{ id: number; now: number }>(
      `INSERT INTO notifications (transaction_id, state, attempts, next_attempt_at, idempotency_key, created_at)
       SELECT id, 'pending', 0, @now, 'ecr-bridge-' || ${LETTERS_ONLY_RANDOM_KEY}, @now
       FROM transactions WHERE id = @id AND state IN (${NOTIFIED_SQL})
       ON CONFLICT (transaction_id) DO NOTHING`,
    ),
    transactionState: db.prepare<[number], { state: string }>(
      'SELECT state FROM transactions WHERE id = ?',
    ),
    byId: db.prepare<[number], NotificationDbRow>('SELECT * FROM notifications WHERE id = ?'),
    byTransaction: db.prepare<[number], NotificationDbRow>(
      'SELECT * FROM notifications WHERE transaction_id = ?',
    ),
    due: db.prepare<[number, number], NotificationDbRow>(
      `SELECT * FROM notifications WHERE state = 'pending' AND next_attempt_at <= ?
       ORDER BY next_attempt_at, id LIMIT ?`,
    ),
    // Acknowledged: `sent` for good, the first acknowledgement's time kept.
    sent: db.prepare<{ id: number; at: number }>(
      `UPDATE notifications SET state = 'sent', attempts = attempts + 1,
         sent_at = coalesce(sent_at, @at)
       WHERE id = @id`,
    ),
    // Not acknowledged: rescheduled only while pending (a slower duplicate never reverts `sent`).
    failed: db.prepare<{ id: number; error: string; next: number }>(
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
      `SELECT id FROM transactions WHERE state IN (${OPEN_SQL})`,
    ),
  };
}

export class SqliteNotifications {
  private readonly statements;
  private readonly marks = new SweepMarks();

  constructor(
    private readonly tx: SqliteTransactions,
    private readonly now: () => number,
  ) {
    this.statements = prepare(tx.db);
  }

  enqueue(transactionId: number): NotificationRow {
    return this.tx.write(() => {
      this.statements.insert.run({ id: transactionId, now: this.now() });
      const row = this.statements.byTransaction.get(transactionId);
      if (row !== undefined) return toNotificationRow(row);
      throw notificationRefused(
        transactionId,
        this.statements.transactionState.get(transactionId)?.state,
      );
    });
  }

  enqueueMissing(): NotificationRow[] {
    // Look in a read snapshot (no write lock held while a large journal is scanned), then insert
    // what was found under the write lock; the insert re-checks each row, so whatever changed in
    // between is still right, and the mark taken in the snapshot catches it next time.
    const { missing, mark } = this.tx.snapshot(() => {
      const scope = this.marks.scope();
      const missing = scope.all
        ? this.statements.missingAll.all().map((r) => r.id)
        : [
            ...scope.open.filter((id) => this.statements.missingOne.get(id) !== undefined),
            ...this.statements.missingAfter.all(scope.afterId).map((r) => r.id),
          ];
      const maxId = (this.statements.maxId.get() as { id: number }).id;
      const open = this.statements.openIds.all().map((r) => r.id);
      return { missing: missing.sort((a, b) => a - b), mark: { maxId, open } };
    });
    const created =
      missing.length === 0
        ? []
        : this.tx.write(() => {
            const now = this.now();
            const rows: NotificationRow[] = [];
            for (const id of missing) {
              if (this.statements.insert.run({ id, now }).changes !== 1) continue;
              rows.push(
                toNotificationRow(this.statements.byTransaction.get(id) as NotificationDbRow),
              );
            }
            return rows;
          });
    this.marks.advance(mark);
    return created;
  }

  due(now: number, limit: number): NotificationRow[] {
    return this.statements.due.all(now, limit).map(toNotificationRow);
  }

  of(transactionId: number): NotificationRow | undefined {
    const row = this.statements.byTransaction.get(transactionId);
    return row === undefined ? undefined : toNotificationRow(row);
  }

  recordAttempt(id: number, outcome: NotificationAttempt): NotificationRow {
    return this.tx.write(() => {
      const changes = outcome.sent
        ? this.statements.sent.run({ id, at: outcome.at }).changes
        : this.statements.failed.run({
            id,
            error: shortError(outcome.error),
            next: outcome.nextAttemptAt,
          }).changes;
      if (changes !== 1) throw new EcrError('JOURNAL_ERROR', `no notification ${id}`);
      return toNotificationRow(this.statements.byId.get(id) as NotificationDbRow);
    });
  }
}
