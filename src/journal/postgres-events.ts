import type { TransactionEvent } from '../core/journal-port.js';
import { DB_NOW_MS } from './postgres-migrations.js';
import type { PostgresPool } from './postgres-pool.js';
import { noteText } from './policy.js';
import { bound, id, limitOf, toTransactionEvent, type EventRow } from './rows.js';

// The timeline in the PostgreSQL journal: the states each transaction went through (written by
// the triggers of migration 1), the notes added to it at the database's time, and the change
// feed over all of them (ids appear in order: the write-order lock of migration 1).

const SQL = {
  of: 'SELECT * FROM transaction_events WHERE transaction_id = $1 ORDER BY id',
  after: 'SELECT * FROM transaction_events WHERE id > $1 ORDER BY id LIMIT $2',
  annotate: `INSERT INTO transaction_events (transaction_id, state, at, note)
     SELECT id, state, ${DB_NOW_MS}, $2 FROM transactions WHERE id = $1`,
  latestId: 'SELECT coalesce(max(id), 0) AS id FROM transaction_events',
} as const;

export class PostgresEvents {
  constructor(private readonly db: PostgresPool) {}

  async of(transactionId: number): Promise<TransactionEvent[]> {
    const result = await this.db.query<EventRow>('read events', SQL.of, [id(transactionId)]);
    return result.rows.map(toTransactionEvent);
  }

  async after(afterId: number, limit: number): Promise<TransactionEvent[]> {
    const result = await this.db.query<EventRow>('read events', SQL.after, [
      bound(afterId, Math.floor),
      limitOf(limit),
    ]);
    return result.rows.map(toTransactionEvent);
  }

  async annotate(transactionId: number, note: string): Promise<void> {
    await this.db.query('annotate a transaction', SQL.annotate, [
      id(transactionId),
      noteText(note),
    ]);
  }

  async latestId(): Promise<number> {
    const result = await this.db.query<{ id: number }>('read events', SQL.latestId);
    return result.rows[0]?.id ?? 0;
  }
}
