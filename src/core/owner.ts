import { randomUUID } from 'node:crypto';
import type { Owner } from '../journal/journal.js';

/** This process, as the owner of the journal rows it drives. */
export const PROCESS_OWNER: Owner = Object.freeze({ pid: process.pid, token: randomUUID() });

/**
 * True when the process that owns a row is still running. The token tells this process apart
 * from an earlier one that had the same pid (pid reuse after a crash).
 */
export function isOwnerAlive(owner: Owner, self: Owner = PROCESS_OWNER): boolean {
  if (owner.token === self.token) return true;
  if (owner.pid === self.pid) return false;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
