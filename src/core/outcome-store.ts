import type { Logger } from 'pino';
import { toEcrError } from './errors.js';
import type { Journal, JournalRow, Owner, TransactionKey } from './journal-port.js';
import type { JournalUpkeep } from './journal-upkeep.js';
import { isFinal, type DriverOutcome } from './transaction.js';

/**
 * Journals the outcome of the attempts a service drove, whatever the journal does meanwhile: an
 * answer the journal cannot take yet is logged, given to the caller (and to retries of its
 * reference) and written in the background once the journal is back; never dropped.
 */
export class OutcomeStore {
  /** Answers given for attempts whose outcome the journal could not record yet, by journal id. */
  private readonly unrecorded = new Map<number, JournalRow>();

  constructor(
    private readonly journal: Journal,
    private readonly owner: Owner,
    private readonly upkeep: JournalUpkeep,
    private readonly logger: Logger,
  ) {}

  /** The answer given for attempt `id` while the journal has not recorded its outcome yet. */
  unrecordedAnswer(id: number): JournalRow | undefined {
    return this.unrecorded.get(id);
  }

  /**
   * The outcome of an attempt whose driving threw (the lock, a journal write, the driver itself):
   * whether a byte may have left decides failed (certainly not charged) or unknown. Only a row
   * still `received` proves nothing left; `sent`, a row another process recovered to `unknown`,
   * or a journal we cannot read all mean it may have.
   */
  async outcomeOfError(row: JournalRow, thrown: unknown, log: Logger): Promise<DriverOutcome> {
    const error = toEcrError(thrown);
    let sent = true;
    try {
      sent = (await this.journal.get(row.id))?.state !== 'received';
    } catch {
      sent = true;
    }
    if (error.code === 'INTERNAL') log.error({ err: thrown }, 'driver failed unexpectedly');
    return {
      outcome: sent ? 'unknown' : 'failed',
      errorCode: sent ? 'OUTCOME_UNKNOWN' : error.code,
      message: error.message,
    };
  }

  /**
   * Closes a claimed row when an error escaped driving it (a journal write, a caller's callback):
   * `failed` while it is still `received` (nothing was sent) and `unknown` otherwise, so that a
   * retry of the reference, and `checkStatus`, get an answer rather than a row in flight that
   * nobody drives. A row already final keeps its outcome.
   */
  async closeAfterError(row: JournalRow, thrown: unknown): Promise<JournalRow> {
    const error = toEcrError(thrown);
    let current: JournalRow | undefined;
    try {
      current = await this.journal.get(row.id);
    } catch {
      current = undefined;
    }
    // Stored before the failure (it came after, e.g. from a log line): that is the answer.
    if (current !== undefined && isFinal(current.state)) return current;
    // Only a row read back `received` proves nothing left.
    const sent = current?.state !== 'received';
    const log = this.logger.child({ terminalId: row.terminalId, reference: row.reference });
    log.error({ err: error.message, sent }, 'a transaction failed on the way: closing it');
    return this.store(
      row,
      sent
        ? {
            outcome: 'unknown',
            errorCode: 'OUTCOME_UNKNOWN',
            message: `${error.message}: the request may have reached the terminal; reconcile`,
          }
        : {
            outcome: 'failed',
            errorCode: error.code,
            message: `${error.message}: the request was not sent, nothing was charged`,
          },
      log,
    );
  }

  /**
   * Journals the outcome of an attempt this process drove. If another process took the row for
   * a crashed one and made it `unknown` meanwhile, the terminal's answer still settles it: the
   * outcome is never dropped.
   */
  async store(row: JournalRow, outcome: DriverOutcome, log: Logger): Promise<JournalRow> {
    try {
      return await this.journal.complete(row.id, this.owner, outcome);
    } catch (error) {
      // First of all, the terminal's word goes to the log: whatever fails next, it is not lost.
      log.error(
        {
          err: toEcrError(error).message,
          outcome: outcome.outcome,
          errorCode: outcome.errorCode,
          approvalCode: outcome.approvalCode,
          terminalTxId: outcome.terminalTxId,
        },
        'could not journal the outcome of an attempt this process drove',
      );
      let settled: JournalRow | undefined;
      try {
        settled =
          (await this.journal.resolveUnknown(row.id, outcome)) ?? (await this.journal.get(row.id));
      } catch (again) {
        log.error({ err: toEcrError(again).message }, 'the journal is unusable');
      }
      if (settled !== undefined && isFinal(settled.state)) return settled;
      // Not recorded anywhere we can read back. A request that was never sent charged nothing:
      // `failed`, as recovery would record it. Otherwise the caller must reconcile: `unknown`,
      // carrying what the terminal said. Until the journal takes it, a retry of the reference
      // gets this same answer (awaitExisting), not a row in flight that nobody drives.
      const answer: JournalRow =
        outcome.outcome === 'failed'
          ? {
              ...row,
              state: 'failed',
              outcome: 'failed',
              errorCode: 'JOURNAL_ERROR',
              message: `${outcome.message ?? 'failed'}: nothing was charged, but the journal could not record it yet`,
              updatedAt: Date.now(),
              completedAt: undefined,
            }
          : {
              ...row,
              state: 'unknown',
              outcome: 'unknown',
              errorCode: 'JOURNAL_ERROR',
              message: `the terminal answered ${outcome.outcome} but the journal could not record it: reconcile`,
              approvalCode: outcome.approvalCode,
              maskedPan: outcome.maskedPan,
              cardBrand: outcome.cardBrand,
              terminalTxId: outcome.terminalTxId,
              details: outcome.details,
              updatedAt: Date.now(),
              completedAt: undefined,
            };
      this.unrecorded.set(row.id, answer);
      this.upkeep.retryLater(
        'the outcome of an attempt this process drove',
        log,
        async () => {
          try {
            await this.journal.complete(row.id, this.owner, outcome);
            return true;
          } catch {
            // Recovered by another process meanwhile: the answer settles an `unknown` row.
            const now =
              (await this.journal.resolveUnknown(row.id, outcome)) ??
              (await this.journal.get(row.id));
            return now !== undefined && isFinal(now.state);
          }
        },
        () => this.unrecorded.delete(row.id),
      );
      return answer;
    }
  }

  /**
   * A claim that failed may still have been committed (PostgreSQL wrote it; its answer was lost):
   * such a row is ours, `received` and driven by no call, so nothing was sent. It is closed as
   * `failed` once the journal answers again, so that a retry of the reference, on any node, gets
   * an answer rather than waiting for an owner that never drives it. `isDriven` tells whether a
   * call of this process drives the row after all: then it is not lost.
   */
  closeLostClaim(key: TransactionKey, isDriven: (id: number) => boolean): void {
    const log = this.logger.child({ terminalId: key.terminalId, reference: key.reference });
    this.upkeep.retryLater('closing a claim whose answer was lost', log, async () => {
      const row = await this.journal.find(key);
      if (row === undefined || row.ownerToken !== this.owner.token) return true;
      if (row.state !== 'received' || isDriven(row.id) || this.unrecorded.has(row.id)) return true;
      await this.journal.complete(row.id, this.owner, {
        outcome: 'failed',
        errorCode: 'JOURNAL_ERROR',
        message: 'the journal recorded the request but its answer was lost: nothing was sent',
      });
      return true;
    });
  }
}
