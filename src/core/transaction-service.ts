import type { Logger } from 'pino';
import { systemClock, type Clock } from './clock.js';
import {
  requireCapability,
  type BatchTotals,
  type OriginalTransaction,
  type TerminalDriver,
} from './driver.js';
import { EcrError, invalid, toEcrError } from './errors.js';
import { checkFollowUps, checkOriginal } from './follow-up-rules.js';
import type { ClaimResult, Journal, JournalRow, Owner } from './journal-port.js';
import { JournalUpkeep } from './journal-upkeep.js';
import { silentLogger } from './logger.js';
import { formatMoney } from './money.js';
import { parseOptions } from './options.js';
import { isOwnerAlive, makeOwner } from './owner.js';
import { OutcomeStore } from './outcome-store.js';
import { Settlement } from './settlement.js';
import { TerminalLock } from './terminal-lock.js';
import { TerminalQueue } from './terminal-queue.js';
import {
  TRANSACTION_SERVICE_OPTIONS,
  type TransactionServiceOptions,
} from './transaction-service-options.js';
import {
  isFinal,
  validatePaymentRequest,
  type DriverOutcome,
  type PaymentRequest,
  type TransactionResult,
} from './transaction.js';
import { wait } from './wait.js';

export interface PayOptions {
  /** Aborts while waiting for the terminal; once the request is sent the outcome is awaited. */
  readonly signal?: AbortSignal;
  /**
   * Called once the request is journaled as new (`received`), before it goes to the terminal:
   * from here on its outcome is in the journal, whatever happens to the caller.
   */
  readonly onClaimed?: (reference: string) => void;
}

interface Terminal {
  readonly driver: TerminalDriver;
  readonly queue: TerminalQueue;
}

/**
 * The one path every entry point (library, CLI, connector, gateway) takes to move money:
 * validate → journal `received` → one at a time per terminal → journal `sent` → driver →
 * journal the outcome. See ARCHITECTURE.md, "Invariants".
 */
export class TransactionService {
  private readonly journal: Journal;
  private readonly logger: Logger;
  private readonly merchantId: string;
  private readonly owner: Owner;
  private readonly maxQueue: number;
  private readonly maxAmountMinor: number;
  private readonly inFlightWaitMs: number;
  private readonly pollIntervalMs: number;
  private readonly clock: Clock;
  private readonly upkeep: JournalUpkeep;
  private readonly lock: TerminalLock;
  private readonly settlement: Settlement;
  private readonly outcomes: OutcomeStore;
  private readonly terminals = new Map<string, Terminal>();
  /** Attempts this process is driving, by journal id, so same-process retries await them. */
  private readonly inFlight = new Map<number, Promise<TransactionResult>>();

  constructor(input: TransactionServiceOptions) {
    const options = parseOptions(TRANSACTION_SERVICE_OPTIONS, input, 'TransactionService');
    this.journal = options.journal;
    this.logger = options.logger ?? silentLogger;
    this.merchantId = options.merchantId;
    this.owner = options.owner ?? makeOwner();
    this.maxQueue = options.maxQueue;
    this.maxAmountMinor = options.maxAmountMinor;
    this.inFlightWaitMs = options.inFlightWaitMs;
    this.pollIntervalMs = options.pollIntervalMs;
    this.clock = options.clock ?? systemClock;
    this.upkeep = new JournalUpkeep(this.journal, this.owner, this.logger, this.clock);
    this.lock = new TerminalLock({
      journal: this.journal,
      owner: this.owner,
      isAlive: (owner) => this.isAlive(owner),
      upkeep: this.upkeep,
      logger: this.logger,
      clock: this.clock,
      lockWaitMs: options.lockWaitMs,
      pollIntervalMs: options.pollIntervalMs,
    });
    this.settlement = new Settlement({
      journal: this.journal,
      logger: this.logger,
      merchantId: this.merchantId,
      isAlive: (owner) => this.isAlive(owner),
    });
    this.outcomes = new OutcomeStore(this.journal, this.owner, this.upkeep, this.logger);
  }

  /**
   * Settles what a crashed process left in flight: a row still `received` was never sent and
   * becomes `failed`, a `sent` one `unknown` (never retried). Rows an earlier version left
   * `unknown` although never sent (RECOVERED_BEFORE_SENT, at most RECOVERY_BATCH of them per
   * call) are settled `failed` too. Call once at start-up; returns the rows recovery changed.
   */
  async recover(): Promise<JournalRow[]> {
    return this.settlement.recover();
  }

  addTerminal(terminalId: string, driver: TerminalDriver): void {
    if (this.terminals.has(terminalId)) {
      throw invalid('INVALID_INPUT', 'terminalId', 'must be unique', terminalId);
    }
    this.terminals.set(terminalId, { driver, queue: new TerminalQueue(terminalId, this.maxQueue) });
  }

  /** Sale, refund or void: exactly-once under its reference, whatever the caller retries. */
  async pay(
    terminalId: string,
    request: PaymentRequest,
    options: PayOptions = {},
  ): Promise<TransactionResult> {
    const terminal = this.terminal(terminalId);
    const valid = validatePaymentRequest(request, this.maxAmountMinor);
    const { reference, amount } = valid;
    terminal.driver.validate(valid);
    const original = await this.original(terminalId, valid);

    const key = { merchantId: this.merchantId, terminalId, reference };
    let claim: ClaimResult;
    try {
      claim = await this.journal.claim({
        ...key,
        kind: valid.kind,
        amountMinor: amount.minor,
        currency: amount.currency,
        method: valid.method ?? 'card',
        ...(valid.originalReference === undefined
          ? {}
          : { originalReference: valid.originalReference }),
        owner: this.owner,
      });
    } catch (error) {
      this.outcomes.closeLostClaim(key, (id) => this.inFlight.has(id));
      throw error;
    }
    if (claim.type === 'existing') {
      const row = claim.row;
      if (
        row.kind !== valid.kind ||
        row.amountMinor !== amount.minor ||
        row.currency !== amount.currency
      ) {
        throw new EcrError(
          'DUPLICATE_REFERENCE',
          `reference ${reference} was already used for a ${row.kind} of ${formatMoney({ minor: row.amountMinor, currency: row.currency })} on this terminal`,
          {
            field: 'reference',
            rule: 'must be unique per terminal unless the request is identical',
          },
        );
      }
      return this.awaitExisting(row, options.signal);
    }
    const attempt = this.driveClaimed(
      terminal,
      claim.row,
      original === undefined ? valid : { ...valid, original },
      claim.wireId,
      options,
    );
    this.inFlight.set(claim.row.id, attempt);
    try {
      return await attempt;
    } finally {
      this.inFlight.delete(claim.row.id);
    }
  }

  /**
   * Asks a terminal to abandon the transaction this service has in progress on it. Resolves
   * false when there is none. Pair it with aborting the `pay` call's signal, which covers a
   * request still waiting for the terminal.
   */
  async cancelCurrent(terminalId: string): Promise<boolean> {
    const { driver } = this.terminal(terminalId);
    requireCapability(driver, 'cancel-current');
    return driver.cancelCurrent();
  }

  /** The stored transaction for a reference on a terminal (its latest attempt), if final. */
  async find(terminalId: string, reference: string): Promise<TransactionResult | undefined> {
    const row = await this.journal.find({ merchantId: this.merchantId, terminalId, reference });
    return row === undefined || !isFinal(row.state) ? undefined : toResult(row, true);
  }

  /** Every attempt under a reference on a terminal, the first one first, in whatever state. */
  async attempts(terminalId: string, reference: string): Promise<TransactionResult[]> {
    const rows = await this.journal.attemptsOf({
      merchantId: this.merchantId,
      terminalId,
      reference,
    });
    return rows.map((row) => toResult(row, true));
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()]);
    await Promise.all([...this.terminals.values()].map((t) => t.driver.close()));
  }

  /**
   * Closes the terminal's batch, in turn with its transactions (one at a time per terminal, and
   * across processes), and returns the totals the terminal reports.
   */
  async batchClose(terminalId: string): Promise<BatchTotals> {
    const { driver, queue } = this.terminal(terminalId);
    requireCapability(driver, 'batch-close');
    const close = driver.batchClose;
    if (close === undefined) throw new EcrError('INTERNAL', `${driver.protocol} lacks batchClose`);
    return queue.run(() => this.lock.run(driver.endpoint, undefined, () => close.call(driver)));
  }

  /**
   * For a terminal that is back (an eConduit terminal registering again after a lost link or a
   * gateway restart): if the latest request sent to it ended `unknown`, asks the terminal's status
   * query, patiently, in turn with other requests to it (nothing new is sent before), and settles
   * the row. Resolves with the settled transaction, or undefined when there was nothing to settle
   * or the terminal still cannot say (the row stays `unknown`).
   */
  async reconcile(terminalId: string): Promise<TransactionResult | undefined> {
    const { driver, queue } = this.terminal(terminalId);
    // The common case, a terminal with nothing unsettled, takes no lock.
    if (
      driver.queryOutcome === undefined ||
      (await this.settlement.unknownLatest(terminalId)) === undefined
    )
      return undefined;
    const settled = await queue.run(() =>
      this.lock.run(driver.endpoint, undefined, () =>
        this.settlement.reconcile(terminalId, driver),
      ),
    );
    return settled === undefined ? undefined : toResult(settled, true);
  }

  /**
   * The journaled transaction a void, capture, tip adjust or linked refund applies to, checked
   * by the follow-up rules; refused (nothing journaled) when it breaks one. With `claimedAs`, the
   * check again under the terminal's lock, counting only follow-ups claimed before this one.
   */
  private async original(
    terminalId: string,
    request: PaymentRequest,
    claimedAs?: number,
  ): Promise<OriginalTransaction | undefined> {
    const reference = request.originalReference;
    if (reference === undefined) return undefined;
    const row = checkOriginal(
      terminalId,
      request,
      await this.journal.find({ merchantId: this.merchantId, terminalId, reference }),
    );
    if (row === undefined) return undefined;
    const followUps = await this.journal.followUpsOf(this.merchantId, terminalId, reference);
    return checkFollowUps(request, row, followUps, claimedAs);
  }

  private terminal(terminalId: string): Terminal {
    const terminal = this.terminals.get(terminalId);
    if (terminal === undefined) {
      throw invalid('INVALID_INPUT', 'terminalId', 'must name a configured terminal', terminalId);
    }
    return terminal;
  }

  private isAlive(owner: Owner): boolean {
    return isOwnerAlive(owner, this.owner);
  }

  /**
   * Drives a row this call claimed, and answers whatever fails on the way: once claimed, the row
   * is this process's to close. An error that escapes driving (a journal write, a caller's
   * callback) closes it `failed` while it is still `received` (nothing was sent) and `unknown`
   * otherwise, so that a retry of the reference, and `checkStatus`, get an answer rather than a
   * row in flight that nobody drives.
   */
  private async driveClaimed(
    terminal: Terminal,
    row: JournalRow,
    request: PaymentRequest & { readonly original?: OriginalTransaction },
    wireId: number,
    options: PayOptions,
  ): Promise<TransactionResult> {
    try {
      options.onClaimed?.(row.reference);
    } catch (error) {
      // The caller's bookkeeping failed; the payment it asked for goes on.
      this.logger.error(
        { reference: row.reference, err: toEcrError(error).message },
        'onClaimed failed',
      );
    }
    try {
      return await this.upkeep.keepingAlive(() =>
        this.driveOnce(terminal, row, request, wireId, options),
      );
    } catch (thrown) {
      return toResult(await this.outcomes.closeAfterError(row, thrown), false);
    }
  }

  private async driveOnce(
    terminal: Terminal,
    row: JournalRow,
    request: PaymentRequest & { readonly original?: OriginalTransaction },
    wireId: number,
    options: PayOptions,
  ): Promise<TransactionResult> {
    const log = this.logger.child({ terminalId: row.terminalId, reference: row.reference, wireId });
    let outcome: DriverOutcome;
    try {
      outcome = await terminal.queue.run(() =>
        this.lock.run(terminal.driver.endpoint, options.signal, async () => {
          await this.original(row.terminalId, request, row.id);
          await this.settlement.settleEarlier(terminal.driver, row, log);
          log.info(
            { kind: request.kind, amount: formatMoney(request.amount) },
            'sending to terminal',
          );
          let sentAt: number | undefined;
          const first = await terminal.driver.execute(
            { ...request, wireId },
            {
              ...(options.signal === undefined ? {} : { signal: options.signal }),
              beforeSend: async () => {
                await this.journal.markSent(row.id, this.owner);
                // Ms since the epoch, as a status query's StatusTarget.sentAt wants.
                sentAt = Date.now();
              },
              onLateOutcome: (late) => void this.settlement.settleLate(row, late, log),
            },
          );
          return this.settlement.askAfterUnknown(
            terminal.driver,
            row,
            first,
            { wireId, sentAt },
            log,
          );
        }),
      );
    } catch (thrown) {
      outcome = await this.outcomes.outcomeOfError(row, thrown, log);
    }
    const stored = await this.outcomes.store(row, outcome, log);
    log.info({ outcome: stored.state, errorCode: stored.errorCode }, 'transaction completed');
    return toResult(stored, false);
  }

  /** A retry of a known reference: the stored result, or the one in flight when it lands. */
  private async awaitExisting(row: JournalRow, signal?: AbortSignal): Promise<TransactionResult> {
    if (isFinal(row.state)) return toResult(row, true);
    const stopped = (): EcrError =>
      new EcrError(
        'ABORTED',
        `stopped waiting for reference ${row.reference}; the payment in flight goes on`,
      );
    const unrecorded = this.outcomes.unrecordedAnswer(row.id);
    if (unrecorded !== undefined) return toResult(unrecorded, true);
    const local = this.inFlight.get(row.id);
    if (local !== undefined) {
      if (signal === undefined) return { ...(await local), replayed: true };
      if (signal.aborted) throw stopped();
      const aborted = new Promise<never>((_, reject) =>
        signal.addEventListener('abort', () => reject(stopped()), { once: true }),
      );
      return { ...(await Promise.race([local, aborted])), replayed: true };
    }
    // Driven by another process: watch the journal; if that process dies, recover the row.
    const deadline = this.clock.now() + this.inFlightWaitMs;
    for (;;) {
      if (signal?.aborted === true) throw stopped();
      await wait(this.clock, this.pollIntervalMs);
      const current = await this.journal.get(row.id);
      if (current === undefined)
        throw new EcrError('JOURNAL_ERROR', `transaction ${row.id} disappeared`);
      if (isFinal(current.state)) return toResult(current, true);
      const mine = this.inFlight.get(row.id);
      if (mine !== undefined) return { ...(await mine), replayed: true };
      const answered = this.outcomes.unrecordedAnswer(row.id);
      if (answered !== undefined) return toResult(answered, true);
      const owner =
        current.ownerPid === undefined || current.ownerToken === undefined
          ? undefined
          : { pid: current.ownerPid, token: current.ownerToken };
      if (owner === undefined || !this.isAlive(owner)) {
        await this.settlement.recoverOrphans();
        continue;
      }
      if (this.clock.now() >= deadline) {
        throw new EcrError(
          'TIMEOUT',
          `reference ${row.reference} is still in flight in process ${current.ownerPid}; ask again later`,
        );
      }
    }
  }
}

/** A journal row as the answer every entry point gives. */
export function toResult(row: JournalRow, replayed: boolean): TransactionResult {
  const outcome = row.outcome ?? 'unknown';
  return {
    reference: row.reference,
    terminalId: row.terminalId,
    kind: row.kind,
    amount: { minor: row.amountMinor, currency: row.currency },
    state: row.state,
    attempt: row.attempt,
    outcome,
    replayed,
    createdAt: new Date(row.createdAt).toISOString(),
    ...(row.completedAt === undefined
      ? {}
      : { completedAt: new Date(row.completedAt).toISOString() }),
    ...(row.errorCode === undefined ? {} : { errorCode: row.errorCode }),
    ...(row.message === undefined ? {} : { message: row.message }),
    ...(row.approvalCode === undefined ? {} : { approvalCode: row.approvalCode }),
    ...(row.maskedPan === undefined ? {} : { maskedPan: row.maskedPan }),
    ...(row.cardBrand === undefined ? {} : { cardBrand: row.cardBrand }),
    ...(row.terminalTxId === undefined ? {} : { terminalTxId: row.terminalTxId }),
    ...(row.details === undefined ? {} : { details: row.details }),
  };
}
