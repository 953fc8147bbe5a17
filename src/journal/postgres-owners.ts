import type { HousekeepingResult, JournalRow, Owner } from '../core/journal-port.js';
import { DB_NOW_MS } from './postgres-migrations.js';
import type { PostgresPool } from './postgres-pool.js';
import { IN_FLIGHT_SQL, isDeadLock, isOrphan, mayTakeLock, recoveryOf } from './policy.js';
import { ownerOf, toJournalRow, type OwnedRow, type Row } from './rows.js';

// Who holds what in the PostgreSQL journal: the recovery of rows whose owner is gone, the
// terminal locks, the heartbeats, and the housekeeping that drops dead owners' locks. Owners'
// ages are measured by the database's clock (docs/cluster.md: no decision depends on two
// machines' clocks agreeing).

/** Rounds of `tryLockTerminal`: each either decides or saw the lock released between two statements. */
const LOCK_ROUNDS = 3;

const SQL = {
  inFlight: `SELECT id, state, owner_pid, owner_token, heartbeat_at, ${DB_NOW_MS} - heartbeat_at AS heartbeat_age
     FROM transactions WHERE state IN (${IN_FLIGHT_SQL}) ORDER BY id`,
  // Each row changes only if it is as it was judged: same state, same owner, same heartbeat.
  // An owner that wrote a heartbeat since was alive after all; its rows stay. Rows are locked
  // in id order, as heartbeats lock them: no deadlock between the two. What each row becomes
  // was decided from the state it was judged in (`recoveryOf`).
  recover: `WITH judged AS (
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[],
           $6::text[], $7::text[])
         AS j(id, state, owner_token, heartbeat_at, recovered, error_code, message)
     ),
     locked AS (
       SELECT t.id FROM transactions t JOIN judged j ON t.id = j.id
       WHERE t.state = j.state AND t.owner_token IS NOT DISTINCT FROM j.owner_token
         AND t.heartbeat_at IS NOT DISTINCT FROM j.heartbeat_at
       ORDER BY t.id FOR UPDATE OF t
     ),
     clock AS (SELECT ${DB_NOW_MS} AS now)
     UPDATE transactions t
       SET state = j.recovered, error_code = j.error_code, message = j.message,
       owner_pid = NULL, owner_token = NULL, updated_at = clock.now, completed_at = clock.now
     FROM locked, judged j, clock
     WHERE t.id = locked.id AND j.id = t.id AND t.state = j.state
       AND t.owner_token IS NOT DISTINCT FROM j.owner_token
       AND t.heartbeat_at IS NOT DISTINCT FROM j.heartbeat_at
     RETURNING t.*`,
  lockCreate: `INSERT INTO terminal_locks (terminal_id, owner_pid, owner_token, acquired_at, heartbeat_at)
     SELECT $1, $2::bigint, $3, now, now FROM (SELECT ${DB_NOW_MS} AS now) c
     ON CONFLICT (terminal_id) DO NOTHING`,
  lockHeld: `SELECT owner_pid, owner_token, heartbeat_at, ${DB_NOW_MS} - heartbeat_at AS heartbeat_age
     FROM terminal_locks WHERE terminal_id = $1 FOR UPDATE`,
  lockTake: `UPDATE terminal_locks SET owner_pid = $2, owner_token = $3, acquired_at = c.now,
       heartbeat_at = c.now
     FROM (SELECT ${DB_NOW_MS} AS now) c WHERE terminal_id = $1`,
  unlock: 'DELETE FROM terminal_locks WHERE terminal_id = $1 AND owner_token = $2',
  // One statement: both tables or neither. Rows locked in key order (see `recover`).
  heartbeat: `WITH clock AS (SELECT ${DB_NOW_MS} AS now),
     held AS (
       SELECT id FROM transactions WHERE owner_token = $1 AND state IN (${IN_FLIGHT_SQL})
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
  locks: `SELECT terminal_id, owner_pid, owner_token, heartbeat_at,
       ${DB_NOW_MS} - heartbeat_at AS heartbeat_age
     FROM terminal_locks ORDER BY terminal_id FOR UPDATE`,
  locksDelete: 'DELETE FROM terminal_locks WHERE terminal_id = ANY($1::text[])',
} as const;

export class PostgresOwners {
  constructor(
    private readonly db: PostgresPool,
    /** This process's clock, which heartbeat ages are turned into `heartbeatAt` on. */
    private readonly now: () => number,
  ) {}

  async recoverOrphans(isAlive: (owner: Owner) => boolean): Promise<JournalRow[]> {
    const inFlight = await this.db.query<OwnedRow & { id: number; state: string }>(
      'read transactions in flight',
      SQL.inFlight,
    );
    const dead = inFlight.rows.filter((row) => isOrphan(ownerOf(row, this.now()), isAlive));
    if (dead.length === 0) return [];
    const recoveries = dead.map((row) => recoveryOf(row.state));
    const result = await this.db.query<Row>('recover orphaned transactions', SQL.recover, [
      dead.map((row) => row.id),
      dead.map((row) => row.state),
      dead.map((row) => row.owner_token),
      dead.map((row) => row.heartbeat_at),
      recoveries.map((recovery) => recovery.state),
      recoveries.map((recovery) => recovery.errorCode),
      recoveries.map((recovery) => recovery.message),
    ]);
    return result.rows.map(toJournalRow).sort((a, b) => a.id - b.id);
  }

  tryLockTerminal(
    terminalId: string,
    owner: Owner,
    isAlive: (owner: Owner) => boolean,
  ): Promise<boolean> {
    return this.db.transaction('lock a terminal', async (client) => {
      for (let round = 0; round < LOCK_ROUNDS; round++) {
        const created = await client.query(SQL.lockCreate, [terminalId, owner.pid, owner.token]);
        if (created.rowCount === 1) return true;
        const held = await client.query<OwnedRow>(SQL.lockHeld, [terminalId]);
        const row = held.rows[0];
        if (row === undefined) continue;
        if (!mayTakeLock(ownerOf(row, this.now()), owner, isAlive)) return false;
        await client.query(SQL.lockTake, [terminalId, owner.pid, owner.token]);
        return true;
      }
      return false;
    });
  }

  async unlockTerminal(terminalId: string, owner: Owner): Promise<void> {
    await this.db.query('unlock a terminal', SQL.unlock, [terminalId, owner.token]);
  }

  async heartbeat(owner: Owner): Promise<void> {
    await this.db.query('write a heartbeat', SQL.heartbeat, [owner.token]);
  }

  async housekeeping(isAlive: (owner: Owner) => boolean): Promise<HousekeepingResult> {
    // No write-ahead log to fold back here: PostgreSQL checkpoints by itself. A lock of a dead
    // owner is checked and deleted under its row lock, so a lock taken meanwhile stays.
    const locksRemoved = await this.db.transaction('drop dead terminal locks', async (client) => {
      const held = await client.query<OwnedRow & { terminal_id: string }>(SQL.locks);
      const dead = held.rows.filter((row) => isDeadLock(ownerOf(row, this.now()), isAlive));
      if (dead.length === 0) return 0;
      const removed = await client.query(SQL.locksDelete, [dead.map((row) => row.terminal_id)]);
      return removed.rowCount ?? 0;
    });
    return { checkpointed: true, locksRemoved };
  }
}
