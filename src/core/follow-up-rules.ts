import type { OriginalTransaction } from './driver.js';
import { EcrError, invalid } from './errors.js';
import type { JournalRow } from './journal-port.js';
import { formatMoney } from './money.js';
import {
  isFinal,
  KINDS_NEEDING_ORIGINAL,
  type MoneyKind,
  type PaymentRequest,
} from './transaction.js';

/** What a void, capture, tip adjust or refund may apply to. */
export const ORIGINAL_KINDS: Readonly<Record<MoneyKind, readonly MoneyKind[]>> = {
  sale: [],
  auth: [],
  refund: ['sale', 'capture'],
  void: ['sale', 'refund', 'auth', 'capture', 'tip-adjust'],
  capture: ['auth'],
  'tip-adjust': ['sale', 'capture'],
};

/**
 * The first rule of a void, capture, tip adjust or linked refund: the journaled transaction it
 * names (`row`, the latest attempt of `request.originalReference` on `terminalId`, if any) must
 * exist on the same terminal, be approved, and be of a kind the request may apply to. Returns the
 * row to check further with `checkFollowUps`, or undefined when there is nothing to check (an
 * unlinked refund naming no known transaction). Refused (nothing journaled) otherwise.
 */
export function checkOriginal(
  terminalId: string,
  request: PaymentRequest,
  row: JournalRow | undefined,
): JournalRow | undefined {
  const reference = request.originalReference;
  if (reference === undefined) return undefined;
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
  return row;
}

/**
 * The rules against what else applies to the same original (`followUps`: every row of the
 * terminal naming it): not voided, refunds within what is left, a void of the whole amount, a
 * capture or refund at most the original. With `claimedAs` (the check again under the terminal's
 * lock), only follow-ups claimed before that row count: two refunds racing through different
 * processes cannot both pass. Returns what the driver is told of the original.
 */
export function checkFollowUps(
  request: PaymentRequest,
  original: JournalRow,
  followUps: readonly JournalRow[],
  claimedAs?: number,
): OriginalTransaction {
  const reference = original.reference;
  const amount = { minor: original.amountMinor, currency: original.currency };
  const counted = followUps
    // A retry of this very request is not a follow-up of its own: it gets the stored result.
    .filter((f) => f.reference !== request.reference)
    .filter((f) => claimedAs === undefined || f.id < claimedAs)
    .filter((f) => f.state === 'approved' || f.state === 'unknown' || !isFinal(f.state));
  if (counted.some((f) => f.kind === 'void')) {
    throw invalid(
      'INVALID_INPUT',
      'originalReference',
      'must name a transaction that was not voided',
      `${reference} was voided (or its void is not settled)`,
    );
  }
  // Refunds add up: what was refunded (or may have been) counts against the original.
  const refunded = counted
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
    throw invalid('INVALID_AMOUNT', 'amount', `must be the voided amount, ${formatMoney(amount)}`);
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
    kind: original.kind,
    amount,
    ...(original.terminalTxId === undefined ? {} : { terminalTxId: original.terminalTxId }),
  };
}
