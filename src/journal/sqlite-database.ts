import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Clock } from '../core/clock.js';
import { EcrError } from '../core/errors.js';
import { MIGRATIONS } from './migrations.js';
import { guardSharedMemory } from './shared-memory-guard.js';

// The SQLite journal's file and its transactions: opening (pragmas, migrations, the shared-memory
// guard), the read and write transactions every statement runs in, the readiness probe and the
// checkpoint. Kept apart from the journal's SQL.

/**
 * Longest a readiness probe blocks the event loop at once while it waits for the write lock
 * (better-sqlite3 waits synchronously); it tries again after PROBE_PAUSE_MS, until its bound.
 */
export const PROBE_SLICE_MS = 20;
/** Pause between two tries of a probe: the event loop runs meanwhile. */
export const PROBE_PAUSE_MS = 30;

/**
 * Opens the file in WAL mode with `synchronous=FULL` (its directory is created) and brings its
 * schema to the latest version. Any failure is a JOURNAL_ERROR naming the path.
 */
export function openSqliteDatabase(
  path: string,
  busyTimeoutMs: number,
  onBroken: (error: EcrError) => void,
): Database.Database {
  mkdirSync(dirname(path), { recursive: true });
  let db: Database.Database;
  try {
    db = new Database(path, { timeout: busyTimeoutMs });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    migrate(db);
  } catch (error) {
    throw new EcrError(
      'JOURNAL_ERROR',
      `cannot open the journal at ${path}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  guardSharedMemory(db, path, onBroken);
  return db;
}

/**
 * Runs the migrations not yet applied, each in its own write transaction. Foreign keys are off
 * while they run, as SQLite's documented way of rebuilding a table requires (migration 7), and
 * checked before each commit: a migration that would leave a dangling reference fails whole.
 */
function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new Error(
      `the journal has schema version ${version}; this ecr-bridge knows up to ${MIGRATIONS.length}`,
    );
  }
  if (version === MIGRATIONS.length) return;
  db.pragma('foreign_keys = OFF');
  try {
    for (let v = version; v < MIGRATIONS.length; v++) {
      db.transaction(() => {
        // Re-read inside the write lock: another process may have migrated meanwhile.
        const current = db.pragma('user_version', { simple: true }) as number;
        if (current > v) return;
        db.exec(MIGRATIONS[v] as string);
        const dangling = db.pragma('foreign_key_check') as unknown[];
        if (dangling.length > 0)
          throw new Error(`migration ${v + 1} left ${dangling.length} dangling references`);
        db.pragma(`user_version = ${v + 1}`);
      }).immediate();
    }
  } finally {
    db.pragma('foreign_keys = ON');
  }
}

/** Changes that need not survive a power cut commit without an fsync (see `write`). */
export type Durability = 'durable' | 'volatile';

/** The transactions of one open journal file. */
export class SqliteTransactions {
  constructor(readonly db: Database.Database) {}

  /** Runs `fn` in a read transaction: one consistent snapshot, no write lock. */
  snapshot<T>(fn: () => T): T {
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
  write<T>(fn: () => T, durability: Durability = 'durable'): T {
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

  /**
   * TRUNCATE: copy every WAL frame into the database and empty the -wal file, so years of
   * payments never leave a large log behind. It waits (busy timeout) for other connections'
   * readers; false when one still held an old snapshot (`busy`): nothing lost, done next time.
   */
  checkpoint(): boolean {
    let rows: { busy: number }[];
    try {
      rows = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
    } catch (error) {
      const message = `journal checkpoint failed: ${(error as Error).message}`;
      throw new EcrError('JOURNAL_ERROR', message, { cause: error });
    }
    return rows[0]?.busy === 0;
  }

  async probe(timeoutMs: number, clock: Clock): Promise<void> {
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
      await new Promise((resolve) => clock.setTimeout(() => resolve(undefined), PROBE_PAUSE_MS));
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
}
