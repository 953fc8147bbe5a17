import type Database from 'better-sqlite3';
import type { TransactionEvent } from '../core/journal-port.js';
import { noteText } from './policy.js';
import { toTransactionEvent, type EventRow } from './rows.js';
import type { SqliteTransactions } from './sqlite-database.js';

// The timeline in the SQLite journal: the states each transaction went through (written by the
// triggers of migration 6), the notes added to it, and the change feed over all of them.

function prepare(db: Database.Database) {
  return {
    of: db.prepare<[number], EventRow>(
      'SELECT * FROM transaction_events WHERE transaction_id = ? ORDER BY id',
    ),
    after: db.prepare<[number, number], EventRow>(
      'SELECT * FROM transaction_events WHERE id > ? ORDER BY id LIMIT ?',
    ),
    annotate: db.prepare<[number, string, number]>(
      `INSERT INTO transaction_events (transaction_id, state, at, note)
       SELECT id, state, ?, ? FROM transactions WHERE id = ?`,
    ),
    latestId: db.prepare<[], { id: number }>(
      'SELECT coalesce(max(id), 0) AS id FROM transaction_events',
    ),
  };
}

export class SqliteEvents {
  private readonly statements;

  constructor(
    private readonly tx: SqliteTransactions,
    private readonly now: () => number,
  ) {
    this.statements = prepare(tx.db);
  }

  of(transactionId: number): TransactionEvent[] {
    return this.tx.snapshot(() => this.statements.of.all(transactionId).map(toTransactionEvent));
  }

  after(afterId: number, limit: number): TransactionEvent[] {
    return this.tx.snapshot(() =>
      this.statements.after.all(afterId, limit).map(toTransactionEvent),
    );
  }

  annotate(transactionId: number, note: string): void {
    const text = noteText(note);
    this.tx.write(() => this.statements.annotate.run(this.now(), text, transactionId));
  }

  latestId(): number {
    return this.tx.snapshot(() => this.statements.latestId.get()?.id ?? 0);
  }
}
