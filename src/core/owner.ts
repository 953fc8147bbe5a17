import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Owner } from '../journal/journal.js';

/**
 * When a process started, as the kernel counts it (`/proc/<pid>/stat` field 22, clock ticks
 * since boot), or '' where there is no /proc. Together with the pid it names one process life:
 * a pid reused by another program has another start time.
 */
export function processStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/** Letters only, so that a token can never look like a card number to the card-data scans. */
function randomLetters(length: number): string {
  return [...randomBytes(length)].map((byte) => String.fromCharCode(97 + (byte % 26))).join('');
}

/**
 * Builds the owner identity of a process: its pid, and a token `<host>~<start time>~<random>`
 * that names this process life on this host.
 */
export function makeOwner(pid = process.pid, host = hostname()): Owner {
  return Object.freeze({ pid, token: `${host}~${processStartTime(pid)}~${randomLetters(16)}` });
}

/** This process, as the owner of the journal rows it drives. */
export const PROCESS_OWNER: Owner = makeOwner();

/**
 * True when the process that owns a row may still be running. Checked on this host by pid and
 * start time (so a reused pid, or another container's PID 1 under the same host name, does not
 * pass for the owner). An owner on another host is assumed alive: a data directory is shared by
 * the processes of one host (SQLite over a network file system is not supported).
 */
export function isOwnerAlive(owner: Owner, self: Owner = PROCESS_OWNER): boolean {
  if (owner.token === self.token) return true;
  const [host, started] = owner.token.split('~');
  const [selfHost] = self.token.split('~');
  if (host !== selfHost) return true;
  // Our own pid: alive only if it is our own life (another owner object in this process).
  if (owner.pid === self.pid) return started === processStartTime(self.pid);
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return started === undefined || started === '' || started === processStartTime(owner.pid);
}
