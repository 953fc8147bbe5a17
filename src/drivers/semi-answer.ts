import type { StatusTarget } from '../core/driver.js';
import type { DriverOutcome } from '../core/transaction.js';
import type { SemiResponse } from '../protocols/semi/codec.js';
import { semiOutcome } from '../protocols/semi/codes.js';

/**
 * What a SEMI answer means for the driver. Pure: `semi.ts` calls these for the answer to a money
 * request and for the answer to its last-transaction status query (TRAN_CODE 9).
 */

/** A SEMI answer to a money request as a driver outcome; card data was masked by the codec. */
export function toOutcome(response: SemiResponse, requestedMinor?: number): DriverOutcome {
  const { outcome, errorCode } = semiOutcome(response.state, response.message);
  const details: Record<string, string | number | boolean> = {};
  for (const key of [
    'STATE',
    'TRAN_TYPE',
    'TRAN_METHOD',
    'ENTRY_MODE',
    'RRN',
    'BATCH_NO',
    'TRAN_NO',
    'SERIAL_NO',
    'EPI',
    'MID',
    'TID',
    'DATE',
  ] as const) {
    const value = response.fields[key];
    if (value !== undefined && value !== '') details[key] = value;
  }
  let message = response.message;
  const approvedMinor = response.amountMinor;
  if (
    response.state === '0' &&
    approvedMinor !== undefined &&
    requestedMinor !== undefined &&
    approvedMinor !== requestedMinor
  ) {
    // Approved, but not for what was asked: keep both, and say so where a person will look.
    details.approvedMinor = approvedMinor;
    details.requestedMinor = requestedMinor;
    message = [
      `approved for ${approvedMinor} minor units, not the ${requestedMinor} requested: reconcile`,
      message,
    ]
      .filter(Boolean)
      .join('; ');
  }
  if (response.state === '1') {
    // Partial approval: the approved amount is what was really charged.
    details.partial = true;
    if (response.amountMinor !== undefined) details.approvedMinor = response.amountMinor;
    if (requestedMinor !== undefined) details.requestedMinor = requestedMinor;
    message = [
      `partially approved: ${response.amountMinor ?? '?'} of ${requestedMinor ?? '?'} minor units`,
      message,
    ]
      .filter(Boolean)
      .join('; ');
  }
  return {
    outcome,
    ...(errorCode === undefined ? {} : { errorCode }),
    ...(message === undefined ? {} : { message }),
    ...(response.approvalCode === undefined ? {} : { approvalCode: response.approvalCode }),
    ...(response.maskedPan === undefined ? {} : { maskedPan: response.maskedPan }),
    ...(response.cardType === undefined ? {} : { cardBrand: response.cardType }),
    ...(response.txnId === undefined ? {} : { terminalTxId: response.txnId }),
    details,
  };
}

/** What a status answer says about `target` (see `SemiDriver.queryOutcome`). */
export function statusOutcome(target: StatusTarget, response: SemiResponse): DriverOutcome {
  const ours =
    response.merTxnId === target.reference &&
    (response.reqTxnId === undefined ||
      target.wireId === undefined ||
      response.reqTxnId === String(target.wireId));
  if (ours) {
    const outcome = toOutcome(response);
    // The reference names every attempt of one payment (ARCHITECTURE.md invariant 1). Unless the
    // answer echoes this attempt's REQ_TXN_ID, it may be about an earlier attempt, which charged
    // nothing: only an approval can then be this one's (no earlier attempt was approved). A
    // decline or cancel read as this attempt's would let the POS charge again.
    const pinned = response.reqTxnId !== undefined && target.wireId !== undefined;
    const earlier =
      response.txnId !== undefined && (target.earlierTerminalTxIds ?? []).includes(response.txnId);
    if (!pinned && (earlier || ((target.attempt ?? 1) > 1 && outcome.outcome !== 'approved'))) {
      return {
        outcome: 'unknown',
        errorCode: 'OUTCOME_UNKNOWN',
        message: `the terminal's status answer for ${target.reference} (STATE ${response.state}) may be about an earlier attempt under the same reference, not attempt ${target.attempt ?? 1}: reconcile`,
      };
    }
    return {
      ...outcome,
      message: ["resolved by the terminal's status query", outcome.message]
        .filter(Boolean)
        .join('; '),
      details: { ...outcome.details, resolvedBy: 'status-query' },
    };
  }
  if (response.merTxnId === undefined) {
    // "No transaction" (a terminal that restarted and lost its memory says the same), a refused
    // query, or an answer without MER_TXN_ID: nothing proves ours did not happen. Reconcile.
    return {
      outcome: 'unknown',
      errorCode: 'OUTCOME_UNKNOWN',
      message: `the terminal's status answer names no transaction (STATE ${response.state}${response.message === undefined ? '' : `: ${response.message}`}): what became of ${target.reference} cannot be told from it; reconcile`,
    };
  }
  // Another transaction is the terminal's last, and none ran after ours (the caller holds the
  // terminal): ours never completed on it.
  return {
    outcome: 'failed',
    errorCode: 'TERMINAL_REFUSED',
    message: `the terminal's last transaction is ${response.merTxnId}: ${target.reference} never completed on it, nothing was charged (status query)`,
    // TransactionService checks this reference against its journal before believing it.
    details: { resolvedBy: 'status-query' },
    lastReference: response.merTxnId,
  };
}
