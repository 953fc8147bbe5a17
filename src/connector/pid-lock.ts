import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isOwnerAlive, makeOwner } from '../core/owner.js';
import type { Owner } from '../core/journal-port.js';

/**
 * A lock file naming the process that holds it: created with O_EXCL (`wx`), so of two processes
 * only one creates it; holding `<pid>\n<owner token>\n`, so anyone can tell whether its holder
 * still runs. A lock whose holder is gone (killed, or the machine rebooted: the token names one
 * process life, see core/owner.ts) is taken over.
 */

/** A lock file younger than this with no pid in it yet is being written: held. */
export const PID_LOCK_WRITE_GRACE_MS = 5_000;
/** Rounds of create / break-stale before giving up (each breaks at most one stale lock). */
const ACQUIRE_ROUNDS = 20;
const ROUND_WAIT_MS = 25;

export interface PidLockHolder {
  readonly pid: number;
  /** The holder's owner token (core/owner.ts), when the file has one. */
  readonly token?: string;
}

export type PidLockResult =
  | {
      readonly acquired: true;
      /** The dead holder whose lock was taken over, if there was one. */
      readonly tookOver: PidLockHolder | undefined;
      /** Removes the file, if it still holds this lock. */
      release(): void;
    }
  | { readonly acquired: false; readonly holder: PidLockHolder | undefined };

interface Seen {
  readonly text: string;
  readonly holder: PidLockHolder | undefined;
  readonly ageMs: number;
}

function parse(text: string): PidLockHolder | undefined {
  const [pidLine, tokenLine] = text.split('\n');
  if (pidLine === undefined || !/^\d{1,10}$/.test(pidLine.trim())) return undefined;
  const pid = Number(pidLine.trim());
  // 0 and 1 are never a holder: `kill(0, …)` would mean this process group.
  if (pid < 2 || pid > 0x7fffffff) return undefined;
  const token = tokenLine?.trim();
  return token === undefined || token === '' ? { pid } : { pid, token };
}

function read(path: string): Seen | undefined {
  try {
    const text = readFileSync(path, 'utf8');
    const ageMs = Date.now() - statSync(path).mtimeMs;
    return { text, holder: parse(text), ageMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Whether the process a lock names still runs: the pid exists and, with a token, is that life. */
export function isHolderAlive(holder: PidLockHolder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: it exists, under another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (holder.token === undefined) return true;
  return isOwnerAlive({ pid: holder.pid, token: holder.token });
}

function held(seen: Seen): boolean {
  if (seen.holder === undefined) return seen.ageMs < PID_LOCK_WRITE_GRACE_MS;
  return isHolderAlive(seen.holder);
}

/** The holder of a lock file and whether it runs; undefined when there is no file. */
export function readPidLock(
  path: string,
): { readonly holder: PidLockHolder | undefined; readonly alive: boolean } | undefined {
  const seen = read(path);
  return seen === undefined ? undefined : { holder: seen.holder, alive: held(seen) };
}

/**
 * Removes a stale lock, exactly the one judged stale. Under a second O_EXCL file (`<path>.break`)
 * so that two processes breaking the same stale lock cannot remove the fresh lock one of them has
 * just created: the file is re-read under it and removed only if unchanged.
 */
function breakStale(path: string, judged: string): void {
  const breaker = `${path}.break`;
  let fd: number;
  try {
    fd = openSync(breaker, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // Held for microseconds; one this old was left by a process killed right there.
    const stale = read(breaker);
    if (stale !== undefined && stale.ageMs > PID_LOCK_WRITE_GRACE_MS) unlinkSync(breaker);
    return;
  }
  try {
    closeSync(fd);
    if (read(path)?.text === judged) unlinkSync(path);
  } finally {
    unlinkSync(breaker);
  }
}

/** Takes the lock at `path` for `owner` (this process by default), taking over a dead holder's. */
export async function acquirePidLock(
  path: string,
  owner: Owner = makeOwner(),
): Promise<PidLockResult> {
  const content = `${owner.pid}\n${owner.token}\n`;
  let tookOver: PidLockHolder | undefined;
  let last: PidLockHolder | undefined;
  for (let round = 0; round < ACQUIRE_ROUNDS; round++) {
    let fd: number | undefined;
    try {
      fd = openSync(path, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (fd !== undefined) {
      try {
        writeSync(fd, content);
      } finally {
        closeSync(fd);
      }
      return {
        acquired: true,
        tookOver,
        release: () => {
          if (read(path)?.text === content) unlinkSync(path);
        },
      };
    }
    const seen = read(path);
    if (seen === undefined) continue;
    last = seen.holder;
    if (held(seen)) return { acquired: false, holder: seen.holder };
    tookOver = seen.holder;
    breakStale(path, seen.text);
    await sleep(round === 0 ? 0 : ROUND_WAIT_MS);
  }
  return { acquired: false, holder: last };
}
