import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import { EcrError, toEcrError } from './errors.js';
import type { Journal, Owner } from './journal-port.js';
import type { JournalUpkeep } from './journal-upkeep.js';
import { wait } from './wait.js';

export interface TerminalLockOptions {
  readonly journal: Journal;
  readonly owner: Owner;
  /** Whether the owner of a lock (or a row) still lives: a dead one's lock is taken over. */
  readonly isAlive: (owner: Owner) => boolean;
  readonly upkeep: JournalUpkeep;
  readonly logger: Logger;
  readonly clock: Clock;
  /** How long to wait for another process that holds the same terminal. */
  readonly lockWaitMs: number;
  /** How often the lock is tried again meanwhile. */
  readonly pollIntervalMs: number;
}

/**
 * The journal's cross-process lock of a terminal (ARCHITECTURE.md invariant 2): what keeps two
 * processes sharing a journal from talking to one device at once. Within a process the
 * TerminalQueue already runs one task at a time; this lock is taken inside it.
 */
export class TerminalLock {
  constructor(private readonly options: TerminalLockOptions) {}

  /**
   * Holds the lock of `endpoint` around `fn`, heartbeating while it waits and holds it (a status
   * query may take long). TERMINAL_BUSY when another live process keeps it past `lockWaitMs`;
   * ABORTED when `signal` aborts first.
   */
  run<T>(endpoint: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    return this.options.upkeep.keepingAlive(() => this.locked(endpoint, signal, fn));
  }

  private async locked<T>(
    terminalId: string,
    signal: AbortSignal | undefined,
    fn: () => Promise<T>,
  ): Promise<T> {
    const { journal, owner, isAlive, clock, logger, upkeep } = this.options;
    const deadline = clock.now() + this.options.lockWaitMs;
    while (!(await journal.tryLockTerminal(terminalId, owner, isAlive))) {
      if (signal?.aborted === true)
        throw new EcrError('ABORTED', 'cancelled while waiting for the terminal');
      if (clock.now() >= deadline) {
        throw new EcrError('TERMINAL_BUSY', `terminal ${terminalId} is held by another process`);
      }
      await wait(clock, this.options.pollIntervalMs);
    }
    try {
      if (signal?.aborted === true)
        throw new EcrError('ABORTED', 'cancelled while waiting for the terminal');
      return await fn();
    } finally {
      try {
        await journal.unlockTerminal(terminalId, owner);
      } catch (error) {
        // Never let the lock hide the outcome; released later, or taken over once we are gone.
        logger.error(
          { terminalId, err: toEcrError(error).message },
          'could not release the terminal lock: trying again in the background',
        );
        upkeep.retryLater(
          'the release of a terminal lock',
          logger.child({ terminalId }),
          async () => {
            await journal.unlockTerminal(terminalId, owner);
            return true;
          },
        );
      }
    }
  }
}
