import type { ErrorCode } from '../../core/errors.js';
import type { Outcome } from '../../core/transaction.js';

/**
 * Every PAYable status (protocols.md, "payable") and what it means for the money. The one table
 * the driver and the simulator share; entries marked *assumed* are not pinned down by a public
 * source and are corrected here if a terminal proves them wrong.
 */
export const PAYABLE_STATUSES = {
  /** Handshake answer of newer firmware; never an answer to a payment. */
  STATUS_TERMINAL_AUTHORIZED: undefined,
  STATUS_SUCCESS: { outcome: 'approved' },
  /** Card step done and refused, or cancelled (refined by `error`, see FAILED_ERRORS). */
  STATUS_FAILED: { outcome: 'declined' },
  /**
   * The terminal lost its host. Whether that happened before or after the authorisation went
   * out is not said, so the money is not known either way: reconcile.
   */
  STATUS_API_UNREACHABLE: { outcome: 'unknown', errorCode: 'TERMINAL_HOST_UNREACHABLE' },
  STATUS_NOT_LOGIN: { outcome: 'failed', errorCode: 'TERMINAL_NOT_READY' },
  STATUS_INVALID_AMOUNT: { outcome: 'failed', errorCode: 'TERMINAL_REFUSED' },
  STATUS_BUSY: { outcome: 'failed', errorCode: 'TERMINAL_BUSY' },
} as const satisfies Record<string, { outcome: Outcome; errorCode?: ErrorCode } | undefined>;

export type PayableStatus = keyof typeof PAYABLE_STATUSES;

export function isPayableStatus(value: string): value is PayableStatus {
  return Object.hasOwn(PAYABLE_STATUSES, value);
}

/** `error` texts that turn a STATUS_FAILED into something more precise than a decline. */
export const FAILED_ERRORS = {
  /** Verbatim from the vendor's public material. */
  duplicateId: 'Received duplicate transaction request.',
  /** *assumed* wording for a cardholder or POS cancellation. */
  cancelled: 'Transaction cancelled.',
} as const;

/** The outcome a payment answer stands for. */
export function outcomeOf(
  status: PayableStatus,
  error: string | undefined,
): { outcome: Outcome; errorCode?: ErrorCode } {
  if (status === 'STATUS_FAILED') {
    if (error === FAILED_ERRORS.duplicateId)
      return { outcome: 'failed', errorCode: 'DUPLICATE_REQUEST_ID' };
    if (error === FAILED_ERRORS.cancelled) return { outcome: 'cancelled' };
  }
  const entry = PAYABLE_STATUSES[status];
  // A handshake status where a payment answer belongs: the payment's fate is not known.
  return entry ?? { outcome: 'unknown', errorCode: 'PROTOCOL_ERROR' };
}
