import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  RECOVERED_BEFORE_SENT,
  type ClaimResult,
  type Journal,
  type JournalRow,
  type Owner,
  type TransactionKey,
} from './journal-port.js';
import {
  requireCapability,
  type BatchTotals,
  type OriginalTransaction,
  type StatusTarget,
  type TerminalDriver,
} from './driver.js';
import { EcrError, invalid, toEcrError } from './errors.js';
import { silentLogger } from './logger.js';
import { loggerOption, MAX_TIMER_MS, parseOptions, wholeNumber } from './options.js';
import { DEFAULT_MAX_AMOUNT_MINOR, formatMoney } from './money.js';
import { HEARTBEAT_INTERVAL_MS, isOwnerAlive, makeOwner } from './owner.js';
import { DEFAULT_MAX_QUEUE, TerminalQueue } from './terminal-queue.js';
import {
  isFinal,
  KINDS_NEEDING_ORIGINAL,
  validatePaymentRequest,
  type DriverOutcome,
  type MoneyKind,
  type PaymentRequest,
  type TransactionResult,
} from './transaction.js';

/** Merchant id used when a deployment has only one merchant. */
export const DEFAULT_MERCHANT_ID = 'default';
/** How long to wait for another process that holds the same terminal. */
export const DEFAULT_LOCK_WAIT_MS = 30_000;
/** How long a retry waits for the same reference still in flight elsewhere (card step ≤ ~2 min). */
export const DEFAULT_IN_FLIGHT_WAIT_MS = 300_000;
/** How often the journal is re-read while waiting on another process. */
export const DEFAULT_POLL_INTERVAL_MS = 25;
/** How often a journal write that failed is tried again in the background, and for how long. */
export const JOURNAL_RETRY_MS = 2_000;
export const JOURNAL_RETRY_FOR_MS = 600_000;
/** How many `unknown` rows one `recover()` looks at for the never-sent ones of earlier versions. */
export const RECOVERY_BATCH = 500;

export interface TransactionServiceOptions {
  readonly journal: Journal;
  readonly logger?: Logger;
  /** @default DEFAULT_MERCHANT_ID */
  readonly merchantId?: string;
  /** Largest payment accepted, in minor units. @default DEFAULT_MAX_AMOUNT_MINOR */
  readonly maxAmountMinor?: number;
  /** Requests that may wait per terminal before TERMINAL_BUSY. @default DEFAULT_MAX_QUEUE */
  readonly maxQueue?: number;
  /** @default DEFAULT_LOCK_WAIT_MS */
  readonly lockWaitMs?: number;
  /** @default DEFAULT_IN_FLIGHT_WAIT_MS */
  readonly inFlightWaitMs?: number;
  /** @default DEFAULT_POLL_INTERVAL_MS */
  readonly pollIntervalMs?: number;
  /** Owner identity written on in-flight rows. @default a fresh one for this service object */
  readonly owner?: Owner;
}

const OPTIONS = z.strictObject({
  journal: z.custom<Journal>(
    (value) => typeof value === 'object' && value !== null,
    'must be a Journal',
  ),
  logger: loggerOption(),
  merchantId: z
    .string()
    .min(1, 'must not be empty')
    .max(64, 'must be at most 64 characters')
    .default(DEFAULT_MERCHANT_ID),
  maxQueue: wholeNumber(0, 10_000).default(DEFAULT_MAX_QUEUE),
  maxAmountMinor: wholeNumber(1, Number.MAX_SAFE_INTEGER).default(DEFAULT_MAX_AMOUNT_MINOR),
  lockWaitMs: wholeNumber(0, MAX_TIMER_MS).default(DEFAULT_LOCK_WAIT_MS),
  inFlightWaitMs: wholeNumber(0, MAX_TIMER_MS).default(DEFAULT_IN_FLIGHT_WAIT_MS),
  pollIntervalMs: wholeNumber(1, 10_000).default(DEFAULT_POLL_INTERVAL_MS),
  owner: z
    .custom<Owner>(
      (value) => typeof value === 'object' && value !== null && 'pid' in value && 'token' in value,
      'must be an Owner',
    )
    .optional(),
});

/** What a void, capture, tip adjust or refund may apply to. */
const ORIGINAL_KINDS: Readonly<Record<MoneyKind, readonly MoneyKind[]>> = {
  sale: [],
  auth: [],
  refund: ['sale', 'capture'],
  void: ['sale', 'refund', 'auth', 'capture', 'tip-adjust'],
  capture: ['auth'],
  'tip-adjust': ['sale', 'capture'],
};

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
  private readonly lockWaitMs: number;
  private readonly inFlightWaitMs: number;
  private readonly pollIntervalMs: number;
  private readonly terminals = new Map<string, Terminal>();
  /** Attempts being driven, and the heartbeat that runs while there are any. */
  private driving = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Attempts this process is driving, by journal id, so same-process retries await them. */
  private readonly inFlight = new Map<number, Promise<TransactionResult>>();
  /** Answers given for attempts whose outcome the journal could not record yet, by journal id. */
  private readonly unrecorded = new Map<number, JournalRow>();

  constructor(input: TransactionServiceOptions) {
    const options = parseOptions(OPTIONS, input, 'TransactionService');
    this.journal = options.journal;
    this.logger = options.logger ?? silentLogger;
    this.merchantId = options.merchantId;
    this.owner = options.owner ?? makeOwner();
    this.maxQueue = options.maxQueue;
    this.maxAmountMinor = options.maxAmountMinor;
    this.lockWaitMs = options.lockWaitMs;
    this.inFlightWaitMs = options.inFlightWaitMs;
    this.pollIntervalMs = options.pollIntervalMs;
  }

  /**
   * Settles what a crashed process left in flight: a row still `received` was never sent and
   * becomes `failed`, a `sent` one `unknown` (never retried). Rows an earlier version left
   * `unknown` although never sent (RECOVERED_BEFORE_SENT, at most RECOVERY_BATCH of them per
   * call) are settled `failed` too. Call once at start-up; returns the rows recovery changed.
   */
  async recover(): Promise<JournalRow[]> {
    const recovered = await this.recoverOrphans();
    const left = await this.journal.list({ state: 'unknown', limit: RECOVERY_BATCH });
    for (const row of left) {
      if (row.message === RECOVERED_BEFORE_SENT)
        await this.settleIfNeverSent(row, 'at start-up', this.logger.child({ id: row.id }));
    }
    return recovered;
  }

  private async recoverOrphans(): Promise<JournalRow[]> {
    const recovered = await this.journal.recoverOrphans((owner) => this.isAlive(owner));
    for (const row of recovered) {
      this.logger.warn(
        { reference: row.reference, terminalId: row.terminalId, id: row.id, state: row.state },
        row.state === 'failed'
          ? 'crash left a transaction before it was sent: failed, nothing was charged'
          : 'crash left a transaction unresolved: now unknown',
      );
    }
    return recovered;
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
      this.closeLostClaim(key);
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
    return queue.run(() =>
      this.withTerminalLock(driver.endpoint, undefined, () => close.call(driver)),
    );
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
    const query = driver.queryOutcome;
    const unknownLatest = async (): Promise<JournalRow | undefined> => {
      const latest = await this.journal.latestSentBefore(
        this.merchantId,
        terminalId,
        Number.MAX_SAFE_INTEGER,
      );
      return latest?.state === 'unknown' ? latest : undefined;
    };
    // The common case, a terminal with nothing unsettled, takes no lock.
    if (query === undefined || (await unknownLatest()) === undefined) return undefined;
    return queue.run(() =>
      this.withTerminalLock(driver.endpoint, undefined, async () => {
        const latest = await unknownLatest();
        if (latest === undefined) return undefined;
        const log = this.logger.child({ terminalId, reference: latest.reference });
        if (await this.settleIfNeverSent(latest, 'when the terminal came back', log)) {
          const settled = await this.journal.get(latest.id);
          return settled === undefined ? undefined : toResult(settled, true);
        }
        const found = await this.provenNotCharged(
          await query.call(
            driver,
            {
              reference: latest.reference,
              ...(await this.attemptOf(latest)),
              sentAt: await this.localTime(latest.updatedAt),
            },
            { patient: true },
          ),
          latest,
        );
        if (found.outcome === 'unknown') {
          log.warn(
            { why: found.message },
            'the terminal is back but cannot say yet: still unknown',
          );
          return undefined;
        }
        const settled = await this.journal.resolveUnknown(latest.id, {
          ...found,
          message: `${found.message ?? ''} when the terminal came back`,
        });
        if (settled === undefined) {
          // Settled meanwhile (by hand?): the terminal's word still goes to the timeline.
          await this.noteIfContradicted(
            latest.id,
            found,
            'status query when the terminal came back',
            log,
          );
          return undefined;
        }
        log.warn({ outcome: settled.state }, 'unknown transaction settled');
        return toResult(settled, true);
      }),
    );
  }

  /**
   * The journaled transaction a void, capture, tip adjust or linked refund applies to: it must
   * exist on the same terminal and be approved. Refused (nothing journaled) otherwise. With
   * `claimedAs`, the check again under the terminal's lock, counting only follow-ups claimed
   * before this one: two refunds racing through different processes cannot both pass.
   */
  private async original(
    terminalId: string,
    request: PaymentRequest,
    claimedAs?: number,
  ): Promise<OriginalTransaction | undefined> {
    const reference = request.originalReference;
    if (reference === undefined) return undefined;
    const row = await this.journal.find({ merchantId: this.merchantId, terminalId, reference });
    if (row === undefined) {
      if (!KINDS_NEEDING_ORIGINAL.has(request.kind)) return undefined;
      throw new EcrError(
        'NOT_FOUND',
        `originalReference: no transaction ${reference} on terminal ${terminalId}`,
        { field: 'originalReference', rule: 'must name a transaction of this terminal' },
      );
    }
    const allowed = ORIGINAL_KINDS[request.kind];
    if (row.state !== 'approved' || !allowed.includes(row.kind)) {
      throw invalid(
        'INVALID_INPUT',
        'originalReference',
        `must name an approved ${allowed.join(' or ')} for a ${request.kind}`,
        `${reference} is a ${row.state} ${row.kind}`,
      );
    }
    const amount = { minor: row.amountMinor, currency: row.currency };
    const followUps = (await this.journal.followUpsOf(this.merchantId, terminalId, reference))
      // A retry of this very request is not a follow-up of its own: it gets the stored result.
      .filter((f) => f.reference !== request.reference)
      .filter((f) => claimedAs === undefined || f.id < claimedAs)
      .filter((f) => f.state === 'approved' || f.state === 'unknown' || !isFinal(f.state));
    if (followUps.some((f) => f.kind === 'void')) {
      throw invalid(
        'INVALID_INPUT',
        'originalReference',
        'must name a transaction that was not voided',
        `${reference} was voided (or its void is not settled)`,
      );
    }
    // Refunds add up: what was refunded (or may have been) counts against the original.
    const refunded = followUps
      .filter((f) => f.kind === 'refund')
      .reduce((sum, f) => sum + f.amountMinor, 0);
    if (request.kind === 'refund' && refunded + request.amount.minor > amount.minor) {
      throw invalid(
        'INVALID_AMOUNT',
        'amount',
        `must be at most what is left to refund of ${reference}, ${formatMoney({ minor: amount.minor - refunded, currency: amount.currency })}`,
      );
    }
    if (request.kind === 'void' && request.amount.minor !== amount.minor) {
      throw invalid(
        'INVALID_AMOUNT',
        'amount',
        `must be the voided amount, ${formatMoney(amount)}`,
      );
    }
    if (
      (request.kind === 'capture' || request.kind === 'refund') &&
      request.amount.minor > amount.minor
    ) {
      throw invalid(
        'INVALID_AMOUNT',
        'amount',
        `must be at most the original amount, ${formatMoney(amount)}`,
      );
    }
    return {
      reference,
      kind: row.kind,
      amount,
      ...(row.terminalTxId === undefined ? {} : { terminalTxId: row.terminalTxId }),
    };
  }

  /**
   * Before a new request goes to a terminal that can answer a status query: if the latest
   * request sent to it ended `unknown` (a lost answer the recovery could not settle, or a crash),
   * ask now — once another transaction runs, "the last transaction" is no longer that one. If the
   * terminal still cannot say, nothing new is sent (TERMINAL_NOT_READY, certainly not charged).
   */
  private async settleEarlier(
    driver: TerminalDriver,
    current: JournalRow,
    log: Logger,
  ): Promise<void> {
    if (driver.queryOutcome === undefined) return;
    const latest = await this.journal.latestSentBefore(
      this.merchantId,
      current.terminalId,
      current.id,
    );
    if (latest?.state !== 'unknown') return;
    // Settled without asking: the one before it may be unknown too.
    if (await this.settleIfNeverSent(latest, 'before the next transaction', log))
      return this.settleEarlier(driver, current, log);
    // `updatedAt` is when it became unknown: surely after it was sent.
    const found = await this.provenNotCharged(
      await driver.queryOutcome({
        reference: latest.reference,
        ...(await this.attemptOf(latest)),
        sentAt: await this.localTime(latest.updatedAt),
      }),
      latest,
    );
    if (found.outcome === 'unknown') {
      if (found.errorCode !== 'OUTCOME_UNKNOWN') {
        throw new EcrError(
          'TERMINAL_NOT_READY',
          `the outcome of ${latest.reference} on this terminal is still unknown and the terminal cannot say yet (${found.message ?? found.errorCode}): nothing was sent`,
        );
      }
      // The terminal answered but cannot tell (it has no record of it): no status query ever
      // will, so the row stays `unknown` for a person (`tx list --unresolved`) and work goes on.
      log.warn(
        { reference: latest.reference, why: found.message },
        'the terminal cannot say what became of an unknown transaction: reconcile it by hand',
      );
      return;
    }
    const settled = await this.journal.resolveUnknown(latest.id, {
      ...found,
      message: `${found.message ?? ''} before the next transaction`,
    });
    if (settled !== undefined)
      log.warn(
        { reference: latest.reference, outcome: settled.state },
        'unknown transaction settled',
      );
    else
      await this.noteIfContradicted(
        latest.id,
        found,
        'status query before the next transaction',
        log,
      );
  }

  /**
   * An `unknown` left by a process that stopped before journaling `sent` never reached the
   * terminal: `sent` is committed before the first byte. Recovery says so when it finds the row
   * still `received` (RECOVERED_BEFORE_SENT, decided under the row's lock), and the timeline
   * agrees (no `sent`); then it is settled `failed` without asking the terminal — whose status
   * answer could not prove it until the longest card step had passed, keeping the terminal from
   * taking payments meanwhile (found by the invariant suite, test/faults/connector.test.ts).
   * Both are required: a timeline alone proves nothing for a row older than it (migration 6
   * filled the timelines of earlier rows without their `sent`). Returns true when it settled.
   */
  private async settleIfNeverSent(row: JournalRow, when: string, log: Logger): Promise<boolean> {
    if (row.message !== RECOVERED_BEFORE_SENT) return false;
    const events = await this.journal.eventsOf(row.id);
    if (events.some((e) => e.state === 'sent')) return false;
    const settled = await this.journal.resolveUnknown(row.id, {
      outcome: 'failed',
      errorCode: 'ABORTED',
      message: `interrupted before the request was sent: the terminal was never contacted, nothing was charged (journal timeline, ${when})`,
    });
    if (settled !== undefined)
      log.warn({ reference: row.reference }, 'unknown transaction never sent: settled as failed');
    return true;
  }

  /**
   * The terminal's word on a transaction that is no longer `unknown` (settled meanwhile, by hand
   * or otherwise): when it disagrees with what is recorded, it is logged and kept in the
   * transaction's timeline for a person to reconcile. The record itself is never overwritten.
   */
  private async noteIfContradicted(
    id: number,
    said: DriverOutcome,
    source: string,
    log: Logger,
  ): Promise<void> {
    const current = await this.journal.get(id);
    if (current === undefined || current.state === said.outcome) return;
    log.error(
      { recorded: current.state, terminalSaid: said.outcome, approvalCode: said.approvalCode },
      'the terminal contradicts the recorded outcome: reconcile',
    );
    await this.journal.annotate(
      id,
      `${source}: the terminal says ${said.outcome}${said.approvalCode === undefined ? '' : ` (approval ${said.approvalCode})`}, but ${current.state} is recorded: reconcile`,
    );
  }

  /**
   * A status answer naming another transaction as the terminal's last proves `target` never
   * completed only if that transaction is ours and older: then nothing ran after `target`. One
   * this journal does not know (another POS, a truncated reference) proves nothing: `unknown`.
   */
  private async provenNotCharged(found: DriverOutcome, target: JournalRow): Promise<DriverOutcome> {
    const last = found.lastReference;
    if (found.outcome !== 'failed' || last === undefined) return found;
    // The terminal's last is an earlier attempt under this same reference (it echoed that
    // attempt's request id): older by construction, since no attempt follows an unknown one.
    if (last === target.reference) return found;
    const row = await this.journal.find({
      merchantId: this.merchantId,
      terminalId: target.terminalId,
      reference: last,
    });
    if (row !== undefined && row.id < target.id) return found;
    return {
      outcome: 'unknown',
      errorCode: 'OUTCOME_UNKNOWN',
      message: `the terminal's last transaction is ${last}, which this journal did not send before ${target.reference}: another POS may have used the terminal; reconcile`,
    };
  }

  /**
   * What a status query needs to tell an attempt from the earlier attempts under its reference,
   * which the terminal saw with the same reference (see StatusTarget).
   */
  private async attemptOf(
    row: JournalRow,
  ): Promise<Pick<StatusTarget, 'wireId' | 'attempt' | 'earlierTerminalTxIds'>> {
    // The wire id lets a terminal that echoes it (SEMI's REQ_TXN_ID) name this very request.
    const wireId = await this.journal.wireIdOf(row.id);
    const pinned = wireId === undefined ? {} : { wireId };
    if (row.attempt <= 1) return { ...pinned, attempt: row.attempt };
    const earlier = (await this.journal.attemptsOf(row))
      .filter((a) => a.attempt < row.attempt)
      .flatMap((a) => (a.terminalTxId === undefined ? [] : [a.terminalTxId]));
    return { ...pinned, attempt: row.attempt, earlierTerminalTxIds: earlier };
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
   * A claim that failed may still have been committed (PostgreSQL wrote it; its answer was lost):
   * such a row is ours, `received` and driven by no call, so nothing was sent. It is closed as
   * `failed` once the journal answers again, so that a retry of the reference, on any node, gets
   * an answer rather than waiting for an owner that never drives it.
   */
  private closeLostClaim(key: TransactionKey): void {
    const log = this.logger.child({ terminalId: key.terminalId, reference: key.reference });
    this.retryLater('closing a claim whose answer was lost', log, async () => {
      const row = await this.journal.find(key);
      if (row === undefined || row.ownerToken !== this.owner.token) return true;
      if (row.state !== 'received' || this.inFlight.has(row.id) || this.unrecorded.has(row.id))
        return true;
      await this.journal.complete(row.id, this.owner, {
        outcome: 'failed',
        errorCode: 'JOURNAL_ERROR',
        message: 'the journal recorded the request but its answer was lost: nothing was sent',
      });
      return true;
    });
  }

  /**
   * A journal time (a row's `updatedAt`, on the journal's clock) on this machine's clock: the
   * row's age measured by the journal, so that machines whose clocks disagree agree on it.
   */
  private async localTime(journalTime: number): Promise<number> {
    try {
      return Date.now() - Math.max(0, (await this.journal.now()) - journalTime);
    } catch {
      // Unreadable clock: "sent just now" keeps a status query patient, never hasty.
      return Date.now();
    }
  }

  /** Runs `fn` while telling the journal, every few seconds, that this owner is alive. */
  private async keepingAlive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.driving++ === 0) {
      this.heartbeat = setInterval(() => {
        void (async () => {
          try {
            await this.journal.heartbeat(this.owner);
          } catch (error) {
            this.logger.error({ err: toEcrError(error).message }, 'heartbeat could not be written');
          }
        })();
      }, HEARTBEAT_INTERVAL_MS);
      this.heartbeat.unref();
    }
    try {
      return await fn();
    } finally {
      if (--this.driving === 0) clearInterval(this.heartbeat);
    }
  }

  /**
   * A journal write that failed, tried again every JOURNAL_RETRY_MS for JOURNAL_RETRY_FOR_MS in
   * the background (`step` resolves true once done): a database away for a moment must not leave
   * a terminal's answer unrecorded or a terminal locked while this process lives.
   */
  private retryLater(
    what: string,
    log: Logger,
    step: () => Promise<boolean>,
    ended: () => void = () => undefined,
  ): void {
    const deadline = Date.now() + JOURNAL_RETRY_FOR_MS;
    const attempt = (): void => {
      const timer = setTimeout(() => {
        step().then(
          (done) => {
            if (done) {
              ended();
              log.warn(`${what}: written on a later try`);
            } else if (Date.now() < deadline) attempt();
            else ended();
          },
          () => {
            if (Date.now() < deadline) return attempt();
            ended();
            log.error(`${what}: gave up after ${JOURNAL_RETRY_FOR_MS} ms; reconcile`);
          },
        );
      }, JOURNAL_RETRY_MS);
      timer.unref();
    };
    attempt();
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
      return await this.drive(terminal, row, request, wireId, options);
    } catch (thrown) {
      const error = toEcrError(thrown);
      let current: JournalRow | undefined;
      try {
        current = await this.journal.get(row.id);
      } catch {
        current = undefined;
      }
      // Stored before the failure (it came after, e.g. from a log line): that is the answer.
      if (current !== undefined && isFinal(current.state)) return toResult(current, false);
      // Only a row read back `received` proves nothing left.
      const sent = current?.state !== 'received';
      const log = this.logger.child({ terminalId: row.terminalId, reference: row.reference });
      log.error({ err: error.message, sent }, 'a transaction failed on the way: closing it');
      const stored = await this.store(
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
      return toResult(stored, false);
    }
  }

  /** Drives one claimed row while telling the journal, every few seconds, that we are alive. */
  private drive(
    terminal: Terminal,
    row: JournalRow,
    request: PaymentRequest & { readonly original?: OriginalTransaction },
    wireId: number,
    options: PayOptions,
  ): Promise<TransactionResult> {
    return this.keepingAlive(() => this.driveOnce(terminal, row, request, wireId, options));
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
        this.withTerminalLock(terminal.driver.endpoint, options.signal, async () => {
          await this.original(row.terminalId, request, row.id);
          await this.settleEarlier(terminal.driver, row, log);
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
                sentAt = Date.now();
              },
              onLateOutcome: (late) => void this.settleLate(row, late, log),
            },
          );
          if (first.outcome !== 'unknown' || terminal.driver.queryOutcome === undefined)
            return first;
          // Invariant 1: never sent again; the terminal's status query says what happened.
          log.warn({ err: first.message }, 'outcome not seen: asking the terminal');
          const found = await this.provenNotCharged(
            await terminal.driver.queryOutcome(
              {
                reference: row.reference,
                ...(await this.attemptOf(row)),
                wireId,
                sentAt: sentAt ?? Date.now(),
              },
              { patient: true },
            ),
            row,
          );
          return found.outcome === 'unknown'
            ? { ...first, message: `${first.message ?? 'no answer'}; ${found.message ?? ''}` }
            : {
                ...found,
                message: `${found.message ?? ''} (after: ${first.message ?? 'no answer'})`,
              };
        }),
      );
    } catch (thrown) {
      const error = toEcrError(thrown);
      // Whether a byte may have left decides failed (certainly not charged) or unknown. Only a
      // row still `received` proves nothing left; `sent`, a row another process recovered to
      // `unknown`, or a journal we cannot read all mean it may have.
      let sent = true;
      try {
        sent = (await this.journal.get(row.id))?.state !== 'received';
      } catch {
        sent = true;
      }
      outcome = {
        outcome: sent ? 'unknown' : 'failed',
        errorCode: sent ? 'OUTCOME_UNKNOWN' : error.code,
        message: error.message,
      };
      if (error.code === 'INTERNAL') log.error({ err: thrown }, 'driver failed unexpectedly');
    }
    const stored = await this.store(row, outcome, log);
    log.info({ outcome: stored.state, errorCode: stored.errorCode }, 'transaction completed');
    return toResult(stored, false);
  }

  /**
   * Journals the outcome of an attempt this process drove. If another process took the row for
   * a crashed one and made it `unknown` meanwhile, the terminal's answer still settles it: the
   * outcome is never dropped.
   */
  private async store(row: JournalRow, outcome: DriverOutcome, log: Logger): Promise<JournalRow> {
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
      this.retryLater(
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

  /** The terminal answered after all: an `unknown` row gets its real outcome. */
  private async settleLate(row: JournalRow, late: DriverOutcome, log: Logger): Promise<void> {
    try {
      const resolved = await this.journal.resolveUnknown(row.id, {
        ...late,
        message: [late.message, 'settled by a late answer from the terminal']
          .filter(Boolean)
          .join('; '),
      });
      if (resolved !== undefined) {
        log.warn({ outcome: resolved.state }, 'unknown transaction settled by a late answer');
        return;
      }
      await this.noteIfContradicted(row.id, late, 'a late answer', log);
    } catch (error) {
      log.error({ err: toEcrError(error).message }, 'could not record a late answer');
    }
  }

  /**
   * Holds the journal's cross-process lock of a terminal around `fn` (invariant 2), heartbeating
   * while it waits and holds it (a status query may take long).
   */
  private withTerminalLock<T>(
    terminalId: string,
    signal: AbortSignal | undefined,
    fn: () => Promise<T>,
  ): Promise<T> {
    return this.keepingAlive(() => this.lockedRun(terminalId, signal, fn));
  }

  private async lockedRun<T>(
    terminalId: string,
    signal: AbortSignal | undefined,
    fn: () => Promise<T>,
  ): Promise<T> {
    const deadline = Date.now() + this.lockWaitMs;
    while (!(await this.journal.tryLockTerminal(terminalId, this.owner, (o) => this.isAlive(o)))) {
      if (signal?.aborted === true)
        throw new EcrError('ABORTED', 'cancelled while waiting for the terminal');
      if (Date.now() >= deadline) {
        throw new EcrError('TERMINAL_BUSY', `terminal ${terminalId} is held by another process`);
      }
      await sleep(this.pollIntervalMs);
    }
    try {
      if (signal?.aborted === true)
        throw new EcrError('ABORTED', 'cancelled while waiting for the terminal');
      return await fn();
    } finally {
      try {
        await this.journal.unlockTerminal(terminalId, this.owner);
      } catch (error) {
        // Never let the lock hide the outcome; released later, or taken over once we are gone.
        this.logger.error(
          { terminalId, err: toEcrError(error).message },
          'could not release the terminal lock: trying again in the background',
        );
        this.retryLater(
          'the release of a terminal lock',
          this.logger.child({ terminalId }),
          async () => {
            await this.journal.unlockTerminal(terminalId, this.owner);
            return true;
          },
        );
      }
    }
  }

  /** A retry of a known reference: the stored result, or the one in flight when it lands. */
  private async awaitExisting(row: JournalRow, signal?: AbortSignal): Promise<TransactionResult> {
    if (isFinal(row.state)) return toResult(row, true);
    const stopped = (): EcrError =>
      new EcrError(
        'ABORTED',
        `stopped waiting for reference ${row.reference}; the payment in flight goes on`,
      );
    const unrecorded = this.unrecorded.get(row.id);
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
    const deadline = Date.now() + this.inFlightWaitMs;
    for (;;) {
      if (signal?.aborted === true) throw stopped();
      await sleep(this.pollIntervalMs);
      const current = await this.journal.get(row.id);
      if (current === undefined)
        throw new EcrError('JOURNAL_ERROR', `transaction ${row.id} disappeared`);
      if (isFinal(current.state)) return toResult(current, true);
      const mine = this.inFlight.get(row.id);
      if (mine !== undefined) return { ...(await mine), replayed: true };
      const answered = this.unrecorded.get(row.id);
      if (answered !== undefined) return toResult(answered, true);
      const owner =
        current.ownerPid === undefined || current.ownerToken === undefined
          ? undefined
          : { pid: current.ownerPid, token: current.ownerToken };
      if (owner === undefined || !this.isAlive(owner)) {
        await this.recoverOrphans();
        continue;
      }
      if (Date.now() >= deadline) {
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
