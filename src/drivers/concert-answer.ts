import { redactPans } from '../core/pan.js';
import type { DriverOutcome } from '../core/transaction.js';
import type { ConcertDelay } from '../protocols/concert/codes.js';
import type { ConcertAnswer } from '../protocols/concert/messages.js';

/**
 * Which Concert answer is the answer to our request, and what it means. Pure: the driver
 * (`concert.ts`) calls these for every answer frame the link ACKed after the terminal took our
 * request.
 *
 * What is matched, and why that is enough: Concert V2 is point to point, one exchange at a
 * time, and the driver opens the line for one payment only; an answer that arrives before the
 * terminal took our request is stale and never reaches `isOurs` (the driver's stale-answer
 * rule). After that, an answer is ours when its POS number and currency are ours and its amount
 * fits: an approval for exactly the amount asked (Concert V2 has no partial approval), anything
 * else for that amount or for 0 (a refusal may carry no amount). The private field is NOT
 * required to match, with one exception: an answer that echoes the private data of one of this
 * driver's earlier requests is that request's, late, and is ignored. Otherwise the public
 * implementations (Ousret/pyTeliumManager `telium/payment.py`, whose
 * `transaction_id` is the answer's private field; OCA/pos `hw_telium_payment_terminal`, which
 * only logs a difference) read it as the terminal's own data, and their POS sends 10 blanks.
 */

/** What the answer to a request must match, and what the request asked for. */
export interface ConcertExpected {
  readonly posNumber: number;
  readonly amountMinor: number;
  readonly currencyNumeric: string;
  /** The private data the request carried (trailing padding removed). */
  readonly sentPrivateData: string;
  /** When the request asked the terminal to answer (A010 at the end, A011 at once). */
  readonly delay: ConcertDelay;
  /**
   * The private data of this driver's earlier requests (the latest few). An answer echoing one
   * of them is an earlier request's, late: a terminal that echoes the field says so itself.
   */
  readonly earlierPrivateData?: ReadonlySet<string>;
}

/** Why an answer is not ours, for the log; undefined when it is ours. */
export function notOurs(answer: ConcertAnswer, expected: ConcertExpected): string | undefined {
  if (answer.posNumber !== expected.posNumber) return 'another POS number';
  const echoed = answer.privateData.trim();
  if (echoed !== expected.sentPrivateData.trim() && expected.earlierPrivateData?.has(echoed))
    return "an earlier request's private data";
  if (answer.currencyNumeric !== expected.currencyNumeric) return 'another currency';
  if (answer.status === 'approved') {
    return answer.amountMinor === expected.amountMinor ? undefined : 'approves another amount';
  }
  return answer.amountMinor === 0 || answer.amountMinor === expected.amountMinor
    ? undefined
    : 'for another amount';
}

/**
 * The terminal's transaction id: the answer's private field, trimmed, when the terminal filled
 * it. Blank, or an echo of what we sent, is not the terminal's data. It comes from outside, so
 * it goes through the PAN-masking rule like every other terminal text (10 characters cannot
 * hold a card number today; the rule does not depend on that).
 */
export function terminalTxIdOf(
  answer: ConcertAnswer,
  expected: ConcertExpected,
): string | undefined {
  const value = answer.privateData.trim();
  if (value === '' || value === expected.sentPrivateData.trim()) return undefined;
  return redactPans(value);
}

/**
 * An answer that is ours, as a driver outcome (the PAN was masked inside the decoder).
 *
 * - At the end of the transaction (A010): status "0" approved, "7" declined, "9" ("not
 *   verified or timed out": it does not say whether the card was charged) unknown.
 * - At once (A011): the terminal answers as soon as it has the request, before the card step;
 *   that answer has no valid status (pyTeliumManager: "immediate (without valid status)"; OCA's
 *   driver sends A011 and waits only 3 s for the terminal's ENQ) and no later answer follows.
 *   Whatever its status, the outcome is `unknown`: the cashier sees the result on the terminal
 *   and a person settles it (`tx resolve`).
 */
export function toOutcome(answer: ConcertAnswer, expected?: ConcertExpected): DriverOutcome {
  const details: Record<string, string | number> = {
    status: answer.status,
    answerSize: answer.size,
    currencyNumeric: answer.currencyNumeric,
    amountMinor: answer.amountMinor,
    ...(expected === undefined ? {} : { delay: expected.delay }),
  };
  const terminalTxId = expected === undefined ? undefined : terminalTxIdOf(answer, expected);
  const common = {
    ...(answer.maskedPan === undefined ? {} : { maskedPan: answer.maskedPan }),
    ...(terminalTxId === undefined ? {} : { terminalTxId }),
    details,
  };
  if (expected?.delay === 'immediate') {
    return {
      outcome: 'unknown',
      errorCode: 'OUTCOME_UNKNOWN',
      message:
        'the terminal answered at once (A011), before the card step: its answer does not say whether the card was charged; check the terminal and settle it',
      ...common,
    };
  }
  switch (answer.status) {
    case 'approved':
      return { outcome: 'approved', ...common };
    case 'refused':
      return { outcome: 'declined', message: 'refused by the terminal', ...common };
    default:
      return {
        outcome: 'unknown',
        errorCode: 'OUTCOME_UNKNOWN',
        message: 'the terminal answered "not verified or timed out" (status 9): reconcile',
        ...common,
      };
  }
}
