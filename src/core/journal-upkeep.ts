import type { Logger } from 'pino';
import type { Clock, ClockTimer } from './clock.js';
import { toEcrError } from './errors.js';
import type { Journal, Owner } from './journal-port.js';
import { HEARTBEAT_INTERVAL_MS } from './owner.js';

/** How often a journal write that failed is tried again in the background, and for how long. */
export const JOURNAL_RETRY_MS = 2_000;
export const JOURNAL_RETRY_FOR_MS = 600_000;

/**
 * What a service writes to the journal in the background, on its clock: the heartbeat of its
 * owner while it drives or waits for a terminal, and the retries of writes that failed.
 */
export class JournalUpkeep {
  /** Attempts being driven (and lock holds), and the heartbeat that runs while there are any. */
  private driving = 0;
  private heartbeat: ClockTimer | undefined;

  constructor(
    private readonly journal: Journal,
    private readonly owner: Owner,
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {}

  /** Runs `fn` while telling the journal, every few seconds, that this owner is alive. */
  async keepingAlive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.driving++ === 0) this.beatLater();
    try {
      return await fn();
    } finally {
      if (--this.driving === 0) this.clock.clearTimeout(this.heartbeat);
    }
  }

  /** The next heartbeat, HEARTBEAT_INTERVAL_MS from now; each one schedules the next at once. */
  private beatLater(): void {
    this.heartbeat = this.clock.setTimeout(() => {
      this.beatLater();
      void (async () => {
        try {
          await this.journal.heartbeat(this.owner);
        } catch (error) {
          this.logger.error({ err: toEcrError(error).message }, 'heartbeat could not be written');
        }
      })();
    }, HEARTBEAT_INTERVAL_MS);
  }

  /**
   * A journal write that failed, tried again every JOURNAL_RETRY_MS for JOURNAL_RETRY_FOR_MS in
   * the background (`step` resolves true once done): a database away for a moment must not leave
   * a terminal's answer unrecorded or a terminal locked while this process lives.
   */
  retryLater(
    what: string,
    log: Logger,
    step: () => Promise<boolean>,
    ended: () => void = () => undefined,
  ): void {
    const deadline = this.clock.now() + JOURNAL_RETRY_FOR_MS;
    const attempt = (): void => {
      this.clock.setTimeout(() => {
        step().then(
          (done) => {
            if (done) {
              ended();
              log.warn(`${what}: written on a later try`);
            } else if (this.clock.now() < deadline) attempt();
            else ended();
          },
          () => {
            if (this.clock.now() < deadline) return attempt();
            ended();
            log.error(`${what}: gave up after ${JOURNAL_RETRY_FOR_MS} ms; reconcile`);
          },
        );
      }, JOURNAL_RETRY_MS);
    };
    attempt();
  }
}
