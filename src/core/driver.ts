import { EcrError, invalid } from './errors.js';
import { formatAmount, type Money } from './money.js';
import type { DriverOutcome, MoneyKind, PaymentRequest, TransactionKind } from './transaction.js';

/** The earlier transaction a void, capture, tip adjust or linked refund applies to. */
export interface OriginalTransaction {
  readonly reference: string;
  readonly kind: MoneyKind;
  readonly amount: Money;
  /** The terminal's id of it, as the terminal reported it. */
  readonly terminalTxId?: string;
}

/** A request as a driver sees it: the payment plus the wire id the journal assigned to it. */
export interface DriverRequest extends PaymentRequest {
  /**
   * A positive integer unique across every attempt in this data directory, for protocols that
   * number their requests (PAYable's `id`, refused when repeated).
   */
  readonly wireId: number;
  /** Set by TransactionService from the journal when `originalReference` names a transaction. */
  readonly original?: OriginalTransaction;
}

/** The request whose outcome a status query asks about. */
export interface StatusTarget {
  readonly reference: string;
  /** The wire id it was sent with, when known. */
  readonly wireId?: number;
  /**
   * Which attempt under the reference it is (1 when absent). From attempt 2 on, earlier attempts
   * carried the same reference to the terminal: a status answer that names the reference alone
   * may be about one of them.
   */
  readonly attempt?: number;
  /** The terminal's transaction ids of the reference's earlier attempts, where it gave them. */
  readonly earlierTerminalTxIds?: readonly string[];
  /**
   * When it was sent (ms since the epoch), or a time surely after: until the terminal's longest
   * card step has passed since then, it may still be running it.
   */
  readonly sentAt?: number;
}

export interface StatusQueryOptions {
  readonly signal?: AbortSignal;
  /**
   * Keep asking, through reconnects and "busy" answers, until the driver's recovery window ends:
   * right after a lost answer the terminal may still be at the card step. Otherwise one query.
   * @default false
   */
  readonly patient?: boolean;
}

/** What a batch close reports. */
export interface BatchTotals {
  readonly batchNumber: string;
  readonly saleCount: number;
  readonly sales: Money;
  readonly refundCount: number;
  readonly refunds: Money;
  /** Sales minus refunds (negative when refunds outweigh sales). */
  readonly net: Money;
}

export interface ExecuteOptions {
  signal?: AbortSignal;
  /**
   * Called right before the first byte of the request is written, after the link is up, and
   * awaited. The service journals `sent` here; if it throws (or rejects), the driver sends
   * nothing and the outcome is `failed`. Everything before this call is certainly not a charge.
   */
  beforeSend?: () => void | Promise<void>;
  /**
   * Called at most once, later, when the terminal answers a request that `execute` already
   * reported as `unknown` because no answer came in time: the late answer settles it.
   */
  onLateOutcome?: (outcome: DriverOutcome) => void;
}

/**
 * A terminal, whatever its protocol and transport. `execute` never throws for what the terminal
 * or the link did: it reports `failed` when nothing can have been charged and `unknown` when
 * the request may have reached the terminal without an outcome being seen. It throws an
 * EcrError only for calls that cannot start (UNSUPPORTED_OPERATION, ABORTED before sending).
 */
export interface TerminalDriver {
  /** Protocol name, as in terminal addresses (`payable`). */
  readonly protocol: string;
  /**
   * The device this driver talks to (`payable+ws://10.0.0.5:45454`): what one-at-a-time is
   * enforced on across processes, whatever terminal ids callers give it.
   */
  readonly endpoint: string;
  /** The terminal's serial number, once it has told it (the connector's `/config`). */
  readonly serial?: string | undefined;
  /** What this terminal can do; anything else fails with UNSUPPORTED_OPERATION. */
  readonly capabilities: ReadonlySet<TransactionKind>;
  /**
   * Refuses, by throwing a coded EcrError, what this terminal can never take (an operation it
   * lacks, a currency it is not set up for). Called before anything is journaled.
   */
  validate(request: PaymentRequest): void;
  execute(request: DriverRequest, options?: ExecuteOptions): Promise<DriverOutcome>;
  /**
   * Asks the terminal to abandon the transaction this driver has in progress (the cardholder is
   * not charged if the card step has not finished). Resolves false when there is none: a driver
   * never cancels what another POS started.
   */
  cancelCurrent(): Promise<boolean>;
  /**
   * With the `status` capability: asks the terminal what became of `target`. Only meaningful for
   * the latest request sent to the terminal (TransactionService calls it under the terminal's
   * lock, before anything else is sent). Resolves `failed` when the terminal shows the request
   * never completed (nothing charged), and `unknown` when it cannot tell, with errorCode
   * OUTCOME_UNKNOWN when it never will (the terminal has no record), TERMINAL_UNREACHABLE or
   * TERMINAL_BUSY when asking later may still tell.
   */
  queryOutcome?(target: StatusTarget, options?: StatusQueryOptions): Promise<DriverOutcome>;
  /** With the `batch-close` capability: settles the terminal's open batch and reports its totals. */
  batchClose?(options?: { readonly signal?: AbortSignal }): Promise<BatchTotals>;
  close(): Promise<void>;
}

/** Throws UNSUPPORTED_OPERATION unless the driver declares `kind`. */
export function requireCapability(driver: TerminalDriver, kind: TransactionKind): void {
  if (!driver.capabilities.has(kind)) {
    throw new EcrError(
      'UNSUPPORTED_OPERATION',
      `${driver.protocol} terminals cannot do "${kind}" (they can: ${[...driver.capabilities].join(', ')})`,
      { field: 'kind', rule: `one of ${[...driver.capabilities].join(', ')}` },
    );
  }
}

/**
 * What every driver's `validate` checks first: the terminal can do the operation, and the
 * request is in the currency the terminal is set up for (no protocol here carries a currency).
 */
export function requireSupported(
  driver: TerminalDriver,
  currency: string,
  request: PaymentRequest,
): void {
  requireCapability(driver, request.kind);
  if (request.forceAuthorization === true && !driver.capabilities.has('force-authorization')) {
    throw new EcrError(
      'UNSUPPORTED_OPERATION',
      `forceAuthorization: ${driver.protocol} terminals cannot force an online authorisation`,
      { field: 'forceAuthorization', rule: 'only for terminals that can force one (concert)' },
    );
  }
  if (request.amount.currency !== currency) {
    throw invalid(
      'INVALID_CURRENCY',
      'currency',
      `must be ${currency}, the currency this terminal is set up for`,
      request.amount.currency,
    );
  }
}

/** Batch totals as JSON, amounts as decimal strings: the CLI's `--json` and the connector's API. */
export function totalsJson(totals: BatchTotals) {
  return {
    batchNumber: totals.batchNumber,
    currency: totals.net.currency,
    saleCount: totals.saleCount,
    sales: formatAmount(totals.sales),
    refundCount: totals.refundCount,
    refunds: formatAmount(totals.refunds),
    net: formatAmount(totals.net),
  };
}
