import type Database from 'better-sqlite3';
import type { HousekeepingResult, JournalRow, Owner } from '../core/journal-port.js';
import { IN_FLIGHT_SQL, isDeadLock, isOrphan, mayTakeLock, recoveryOf } from './policy.js';
import { storedOwnerOf } from './rows.js';
import type { SqliteTransactions } from './sqlite-database.js';

// Who holds what in the SQLite journal: the recovery of rows whose owner is gone, the terminal
// locks, the heartbeats, and the housekeeping that drops dead owners' locks and checkpoints.

interface InFlightRow {
  id: number;
  state: string;
  owner_pid: number | null;
  owner_token: string | null;
  heartbeat_at: number | null;
}

interface LockRow {
  terminal_id: string;
  owner_pid: number;
  owner_token: string;
  heartbeat_at: number;
}

function prepare(db: Database.Database) {
  return {
    inFlight: db.prepare<[], InFlightRow>(
      `SELECT id, state, owner_pid, owner_token, heartbeat_at FROM transactions
       WHERE state IN (${IN_FLIGHT_SQL})`,
    ),
    // Changes the row only if it is as it was judged: same state, same owner.
    orphan: db.prepare<{
      id: number;
      state: string;
      token: string | null;
      recovered: string;
      errorCode: string;
      message: string;
      now: number;
    }>(
      `UPDATE transactions SET state = @recovered, error_code = @errorCode, message = @message,
         owner_pid = NULL, owner_token = NULL, updated_at = @now, completed_at = @now
       WHERE id = @id AND state = @state AND owner_token IS @token`,
    ),
    lockGet: db.prepare<[string], Omit<LockRow, 'terminal_id'>>(
      'SELECT owner_pid, owner_token, heartbeat_at FROM terminal_locks WHERE terminal_id = ?',
    ),
    locks: db.prepare<[], LockRow>(
      'SELECT terminal_id, owner_pid, owner_token, heartbeat_at FROM terminal_locks',
    ),
    lockPut: db.prepare<[string, number, string, number, number]>(
      `INSERT INTO terminal_locks (terminal_id, owner_pid, owner_token, acquired_at, heartbeat_at)
       VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (terminal_id) DO UPDATE SET owner_pid = excluded.owner_pid,
         owner_token = excluded.owner_token, acquired_at = excluded.acquired_at,
         heartbeat_at = excluded.heartbeat_at`,
    ),
    heartbeatRows: db.prepare<{ token: string; now: number }>(
      `UPDATE transactions SET heartbeat_at = @now
       WHERE owner_token = @token AND state IN (${IN_FLIGHT_SQL})`,
    ),
    heartbeatLocks: db.prepare<{ token: string; now: number }>(
      'UPDATE terminal_locks SET heartbeat_at = @now WHERE owner_token = @token',
    ),
    lockDelete: db.prepare<[string, string]>(
      'DELETE FROM terminal_locks WHERE terminal_id = ? AND owner_token = ?',
    ),
  };
}

export class SqliteOwners {
  private readonly statements;

  constructor(
    private readonly tx: SqliteTransactions,
    private readonly now: () => number,
    /** A row read back after its recovery, inside the same write transaction. */
    private readonly rowById: (id: number) => JournalRow,
  ) {
    this.statements = prepare(tx.db);
  }

  recoverOrphans(isAlive: (owner: Owner) => boolean): JournalRow[] {
    return this.tx.write(() => {
      const recovered: JournalRow[] = [];
      for (const row of this.statements.inFlight.all()) {
        if (!isOrphan(storedOwnerOf(row), isAlive)) continue;
        const recovery = recoveryOf(row.state);
        this.statements.orphan.run({
          id: row.id,
          state: row.state,
          token: row.owner_token,
          recovered: recovery.state,
          errorCode: recovery.errorCode,
          message: recovery.message,
          now: this.now(),
        });
        recovered.push(this.rowById(row.id));
      }
      return recovered;
    });
  }

  tryLockTerminal(terminalId: string, owner: Owner, isAlive: (owner: Owner) => boolean): boolean {
    return this.tx.write(() => {
      const held = this.statements.lockGet.get(terminalId);
      if (!mayTakeLock(held === undefined ? undefined : storedOwnerOf(held), owner, isAlive))
        return false;
      const now = this.now();
      this.statements.lockPut.run(terminalId, owner.pid, owner.token, now, now);
      return true;
    }, 'volatile');
  }

  heartbeat(owner: Owner): void {
    this.tx.write(() => {
      const params = { token: owner.token, now: this.now() };
      this.statements.heartbeatRows.run(params);
      this.statements.heartbeatLocks.run(params);
    }, 'volatile');
  }

  unlockTerminal(terminalId: string, owner: Owner): void {
    this.tx.write(() => this.statements.lockDelete.run(terminalId, owner.token), 'volatile');
  }

  housekeeping(isAlive: (owner: Owner) => boolean): HousekeepingResult {
    // A lock of a dead owner only means nobody holds the terminal (tryLockTerminal takes it over
    // anyway); dropping it keeps the table to live processes. Checked and deleted under the write
    // lock, by token, so a lock taken meanwhile by a live process is never removed.
    const locksRemoved = this.tx.write(() => {
      let removed = 0;
      for (const held of this.statements.locks.all()) {
        if (!isDeadLock(storedOwnerOf(held), isAlive)) continue;
        removed += this.statements.lockDelete.run(held.terminal_id, held.owner_token).changes;
      }
      return removed;
    }, 'volatile');
    return { checkpointed: this.tx.checkpoint(), locksRemoved };
  }
}
