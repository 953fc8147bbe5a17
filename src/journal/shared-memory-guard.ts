import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { EcrError } from '../core/errors.js';

/**
 * SQLite in WAL mode maps `<journal>-shm` into memory. If that file shrinks or goes away under a
 * running process (another program truncates or deletes it, a disk fails), the next access to the
 * mapping is a SIGBUS: the process dies on the spot with nothing said. This guard looks at the
 * file before every statement of the connection and, once it has shrunk or gone, refuses every
 * further access with JOURNAL_ERROR instead, and calls `onBroken` once so the process can say so
 * and stop. (A restart is the remedy: SQLite rebuilds the file when the first connection opens.)
 */
export function guardSharedMemory(
  db: Database.Database,
  journalPath: string,
  onBroken: (error: EcrError) => void,
): void {
  const shmPath = `${journalPath}-shm`;
  let largest = 0;
  let broken: EcrError | undefined;
  const check = (): void => {
    if (broken !== undefined) throw broken;
    let size: number;
    try {
      size = statSync(shmPath).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || largest === 0) return;
      size = -1;
    }
    if (size >= largest) {
      largest = size;
      return;
    }
    broken = new EcrError(
      'JOURNAL_ERROR',
      `the journal's shared-memory file ${shmPath} was ${size < 0 ? 'deleted' : `cut from ${largest} to ${size} bytes`} by something else while this process used it: every journal access is refused from now on (reading it would crash the process with SIGBUS). Stop every process using the journal and start again; SQLite rebuilds the file, and the journal itself is intact up to its last commit`,
    );
    onBroken(broken);
    throw broken;
  };
  const prepare = db.prepare.bind(db);
  const guardedPrepare = (source: string) => {
    const statement = prepare(source);
    return new Proxy(statement, {
      // Native accessors (`reader`, `source`…) need the statement itself as `this`, never the
      // proxy (V8 aborts the process otherwise).
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        const method = value as (...a: unknown[]) => unknown;
        if (
          property !== 'run' &&
          property !== 'get' &&
          property !== 'all' &&
          property !== 'iterate'
        )
          return method.bind(target);
        return (...args: unknown[]) => {
          check();
          return method.apply(target, args);
        };
      },
    });
  };
  db.prepare = guardedPrepare as typeof db.prepare;
  const pragma = db.pragma.bind(db);
  db.pragma = ((source: string, options?: Database.PragmaOptions) => {
    check();
    return pragma(source, options);
  }) as typeof db.pragma;
  // BEGIN reads the mapping first: a transaction checks before it begins.
  const transaction = db.transaction.bind(db);
  db.transaction = ((fn: (...args: unknown[]) => unknown) => {
    const run = transaction(fn);
    const guarded =
      (variant: (...args: unknown[]) => unknown) =>
      (...args: unknown[]) => {
        check();
        return variant(...args);
      };
    return Object.assign(guarded(run), {
      default: guarded(run.default),
      deferred: guarded(run.deferred),
      immediate: guarded(run.immediate),
      exclusive: guarded(run.exclusive),
    });
  }) as typeof db.transaction;
  const exec = db.exec.bind(db);
  db.exec = (source: string) => {
    check();
    return exec(source);
  };
}
