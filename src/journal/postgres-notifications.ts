import { EcrError } from '../core/errors.js';
import type { NotificationAttempt, NotificationRow } from '../core/journal-port.js';
import type { TransactionState } from '../core/transaction.js';
import { DB_NOW_MS } from './postgres-migrations.js';
import type { PostgresPool } from './postgres-pool.js';
import { NOTIFIED_SQL, notificationRefused, OPEN_SQL, shortError, SweepMarks } from './policy.js';
import { bound, id, limitOf, toNotificationRow, type NotificationDbRow } from './rows.js';

// The back-office notification outbox in the PostgreSQL journal (the Journal interface says what
// each call promises; `policy.ts` what both journals decide the same way).

/** 128 random bits… as 32 letters: no digit run in a key can look like a card number. */
const LETTERS_ONLY_RANDOM_KEY =
  "'ecr-bridge-' || translate(replace(gen_random_uuid()::text, '-', ''), '0123456789', 'ghijklmnop')";
/** A transaction that happened and has no notification yet: what the sweep looks for. */
const MISSING_NOTIFICATION = `t.state IN (${NOTIFIED_SQL})
  AND t.id >= (SELECT first_transaction_id FROM outbox_start)
  AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.transaction_id = t.id)`;

/** The sweep's insert ($1 when due), over `scope`. */
function sweepSql(scope: string): string {
  return `WITH clock AS (SELECT ${DB_NOW_MS} AS now)
     INSERT INTO notifications (transaction_id, state, attempts, next_attempt_at, idempotency_key, created_at)
     SELECT t.id, 'pending', 0, $1::bigint, ${LETTERS_ONLY_RANDOM_KEY}, clock.now
     FROM transactions t, clock WHERE ${scope} AND ${MISSING_NOTIFICATION}
     ORDER BY t.id
     ON CONFLICT (transaction_id) DO NOTHING
     RETURNING *`;
}

const SQL = {
  enqueue: `WITH t AS (SELECT id, state FROM transactions WHERE id = $1),
     created AS (
       INSERT INTO notifications (transaction_id, state, attempts, next_attempt_at, idempotency_key, created_at)
       SELECT id, 'pending', 0, $2::bigint, ${LETTERS_ONLY_RANDOM_KEY}, ${DB_NOW_MS}
       FROM t WHERE state IN (${NOTIFIED_SQL})
       ON CONFLICT (transaction_id) DO NOTHING
       RETURNING *
     )
     SELECT t.state AS transaction_state, created.* FROM t LEFT JOIN created ON true`,
  sweepMark: `SELECT (SELECT coalesce(max(id), 0) FROM transactions) AS max_id,
       array(SELECT id FROM transactions WHERE state IN (${OPEN_SQL}) ORDER BY id) AS open`,
  // The first sweep looks everywhere; later ones at the previous mark's open ids and newer.
  sweepAll: sweepSql('true'),
  sweepSince: sweepSql('(t.id = ANY($2::bigint[]) OR t.id > $3::bigint)'),
  due: `SELECT * FROM notifications WHERE state = 'pending' AND next_attempt_at <= $1
     ORDER BY next_attempt_at, id LIMIT $2`,
  byTransaction: 'SELECT * FROM notifications WHERE transaction_id = $1',
  // Acknowledged: `sent` for good, the first acknowledgement's time kept.
  sent: `UPDATE notifications SET state = 'sent', attempts = attempts + 1,
       sent_at = coalesce(sent_at, $2)
     WHERE id = $1 RETURNING *`,
  // Not acknowledged: rescheduled only while pending (a slower duplicate never reverts `sent`).
  failed: `UPDATE notifications SET attempts = attempts + 1, last_error = $2,
       next_attempt_at = CASE state WHEN 'pending' THEN $3 ELSE next_attempt_at END
     WHERE id = $1 RETURNING *`,
} as const;

export class PostgresNotifications {
  private readonly marks = new SweepMarks();

  constructor(
    private readonly db: PostgresPool,
    /** This process's clock: the one `dueNotifications` is asked with. */
    private readonly now: () => number,
  ) {}

  async enqueue(transactionId: number): Promise<NotificationRow> {
    // Due at once by this process's clock: the clock `dueNotifications` is asked with.
    const attempt = await this.db.query<
      Partial<NotificationDbRow> & { transaction_state: TransactionState }
    >('enqueue a notification', SQL.enqueue, [id(transactionId), this.now()]);
    const row = attempt.rows[0];
    if (row !== undefined && row.id !== undefined && row.id !== null)
      return toNotificationRow(row as NotificationDbRow);
    const existing = await this.of(transactionId);
    if (existing !== undefined) return existing;
    throw notificationRefused(transactionId, row?.transaction_state);
  }

  async enqueueMissing(): Promise<NotificationRow[]> {
    // The mark is read first, in one snapshot: ids become visible in order (the write-order
    // lock of migration 1), so every row at or below maxId that is not open was final then,
    // and the insert below, which runs later, sees it.
    const markRow = await this.db.query<{ max_id: number; open: number[] }>(
      'sweep the outbox',
      SQL.sweepMark,
    );
    const mark = {
      maxId: markRow.rows[0]?.max_id ?? 0,
      open: markRow.rows[0]?.open ?? [],
    };
    const scope = this.marks.scope();
    const created = await this.db.query<NotificationDbRow>(
      'sweep the outbox',
      scope.all ? SQL.sweepAll : SQL.sweepSince,
      scope.all ? [this.now()] : [this.now(), scope.open, scope.afterId],
    );
    this.marks.advance(mark);
    return created.rows.map(toNotificationRow).sort((a, b) => a.transactionId - b.transactionId);
  }

  async due(now: number, limit: number): Promise<NotificationRow[]> {
    const result = await this.db.query<NotificationDbRow>('read due notifications', SQL.due, [
      bound(now, Math.floor),
      limitOf(limit),
    ]);
    return result.rows.map(toNotificationRow);
  }

  async of(transactionId: number): Promise<NotificationRow | undefined> {
    const result = await this.db.query<NotificationDbRow>(
      'read a notification',
      SQL.byTransaction,
      [id(transactionId)],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : toNotificationRow(row);
  }

  async recordAttempt(
    notificationId: number,
    outcome: NotificationAttempt,
  ): Promise<NotificationRow> {
    const result = outcome.sent
      ? await this.db.query<NotificationDbRow>('record a notification attempt', SQL.sent, [
          id(notificationId),
          Math.round(outcome.at),
        ])
      : await this.db.query<NotificationDbRow>('record a notification attempt', SQL.failed, [
          id(notificationId),
          shortError(outcome.error),
          Math.round(outcome.nextAttemptAt),
        ]);
    const row = result.rows[0];
    if (row === undefined) throw new EcrError('JOURNAL_ERROR', `no notification ${notificationId}`);
    return toNotificationRow(row);
  }
}
