import { containsPan } from './pan.js';
import { invalid, type ErrorCode } from './errors.js';
import { DEFAULT_MAX_AMOUNT_MINOR, moneyFromMinor, type Money } from './money.js';

/**
 * The kinds that move money (or hold it: `auth`): each is journaled under its reference before
 * any byte is sent.
 */
export const MONEY_KINDS = ['sale', 'refund', 'void', 'auth', 'capture', 'tip-adjust'] as const;
export type MoneyKind = (typeof MONEY_KINDS)[number];

/**
 * Money kinds that act on an earlier transaction of the same terminal, named by
 * `originalReference`: a void cancels it, a capture completes an auth, a tip adjust adds a tip.
 */
export const KINDS_NEEDING_ORIGINAL: ReadonlySet<MoneyKind> = new Set([
  'void',
  'capture',
  'tip-adjust',
]);

/**
 * What a POS can ask of a terminal: the money kinds, plus cancelling the transaction in progress,
 * asking the terminal for the outcome of the last one (`status`, what resolves `unknown`),
 * closing the batch, and forcing an online authorisation on a payment.
 */
export const TRANSACTION_KINDS = [
  ...MONEY_KINDS,
  'cancel-current',
  'status',
  'batch-close',
  'force-authorization',
] as const;
export type TransactionKind = (typeof TRANSACTION_KINDS)[number];

/**
 * Final outcomes. `failed` means certainly not charged (refused before the card step);
 * `unknown` means the request may have reached the terminal and no outcome was seen.
 */
export const OUTCOMES = ['approved', 'declined', 'cancelled', 'failed', 'unknown'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Journal states: the outcomes plus the two in-flight states. */
export const STATES = ['received', 'sent', ...OUTCOMES] as const;
export type TransactionState = (typeof STATES)[number];

export const PAYMENT_METHODS = ['card', 'wallet'] as const;
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];

/** Longest reference accepted (the POS's order id / idempotency key). */
export const MAX_REFERENCE_LENGTH = 64;

/** A request to move money on one terminal. */
export interface PaymentRequest {
  readonly kind: MoneyKind;
  /** The POS's order id, unique per merchant + terminal: the idempotency key. */
  readonly reference: string;
  readonly amount: Money;
  /** @default 'card' */
  readonly method?: PaymentMethod;
  /**
   * Reference of the transaction this one applies to: required for `void`, `capture` and
   * `tip-adjust` (see KINDS_NEEDING_ORIGINAL), optional for `refund`.
   */
  readonly originalReference?: string;
  readonly receiptEmail?: string;
  readonly receiptSms?: string;
  /**
   * Ask the terminal to authorise online whatever its floor limit (HiPay's
   * `force_authorization`); refused by terminals without the `force-authorization` capability.
   */
  readonly forceAuthorization?: boolean;
}

/** What a terminal said about one request, as a driver reports it. No full PAN, ever. */
export interface DriverOutcome {
  readonly outcome: Outcome;
  /** Why it was not approved, when it was not. */
  readonly errorCode?: ErrorCode;
  /** Human text, card data already masked. */
  readonly message?: string;
  readonly approvalCode?: string;
  /** Masked PAN, first 6 / last 4 at most. */
  readonly maskedPan?: string;
  readonly cardBrand?: string;
  /** The terminal's or host's transaction id. */
  readonly terminalTxId?: string;
  /** Further protocol fields worth keeping (masked, small, JSON). */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
  /**
   * From a status query that found another transaction to be the terminal's last: that
   * transaction's reference. TransactionService believes a `failed` status answer only when this
   * names a transaction it sent before the one asked about.
   */
  readonly lastReference?: string;
}

/** The answer every entry point gives for a money transaction. */
export interface TransactionResult extends DriverOutcome {
  readonly reference: string;
  readonly terminalId: string;
  readonly kind: MoneyKind;
  readonly amount: Money;
  readonly state: TransactionState;
  /**
   * Which attempt under the reference this is: 1, then 2, 3… when the same reference was tried
   * again after an attempt that charged nothing (declined, cancelled, failed).
   */
  readonly attempt: number;
  /** True when this answer is the stored result of an earlier call with the same reference. */
  readonly replayed: boolean;
  readonly createdAt: string;
  readonly completedAt?: string;
}

// Control characters: C0, DEL and C1.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/** True when `text` holds a C0 or C1 control character or DEL. */
export function hasControlCharacters(text: string): boolean {
  return CONTROL_CHARACTERS.test(text);
}

/**
 * Checks a reference: 1–64 characters, no control characters, no surrounding spaces, nothing that
 * looks like a card number.
 */
export function validateReference(value: unknown, field = 'reference'): string {
  if (typeof value !== 'string') throw invalid('INVALID_REFERENCE', field, 'must be a string');
  if (value.length === 0) throw invalid('INVALID_REFERENCE', field, 'must not be empty');
  if (value.length > MAX_REFERENCE_LENGTH) {
    throw invalid(
      'INVALID_REFERENCE',
      field,
      `must be at most ${MAX_REFERENCE_LENGTH} characters`,
      `got ${value.length}`,
    );
  }
  if (CONTROL_CHARACTERS.test(value)) {
    throw invalid('INVALID_REFERENCE', field, 'must not contain control characters');
  }
  if (value.trim() !== value) {
    throw invalid('INVALID_REFERENCE', field, 'must not start or end with spaces');
  }
  if (containsPan(value)) {
    // A terminal's echo of it would come back masked (never matching the request), and the
    // journal would keep what may be a card number. The value itself is never quoted.
    throw invalid(
      'INVALID_REFERENCE',
      field,
      'must not hold a run of 13–19 digits that passes the card-number check (shorten or split the digits)',
    );
  }
  return value;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const PHONE = /^\+?[0-9]{6,15}$/;
const MAX_EMAIL_LENGTH = 254;

/**
 * Checks a whole payment request at the edge of TransactionService and returns it normalised.
 * Every rule names its field; nothing is journaled or sent when one fails.
 */
export function validatePaymentRequest(
  request: PaymentRequest,
  maxAmountMinor: number = DEFAULT_MAX_AMOUNT_MINOR,
): PaymentRequest {
  if (!(MONEY_KINDS as readonly string[]).includes(request.kind)) {
    throw invalid(
      'INVALID_INPUT',
      'kind',
      `must be one of ${MONEY_KINDS.join(', ')}`,
      String(request.kind),
    );
  }
  const reference = validateReference(request.reference);
  const amount = moneyFromMinor(request.amount?.minor, request.amount?.currency);
  if (amount.minor === 0) throw invalid('INVALID_AMOUNT', 'amount', 'must be greater than zero');
  if (amount.minor > maxAmountMinor) {
    throw invalid('INVALID_AMOUNT', 'amount', `must be at most ${maxAmountMinor} minor units`);
  }
  const method = request.method ?? 'card';
  if (!(PAYMENT_METHODS as readonly string[]).includes(method)) {
    throw invalid(
      'INVALID_INPUT',
      'method',
      `must be one of ${PAYMENT_METHODS.join(', ')}`,
      String(method),
    );
  }
  if (request.originalReference !== undefined)
    validateReference(request.originalReference, 'originalReference');
  else if (KINDS_NEEDING_ORIGINAL.has(request.kind)) {
    throw invalid(
      'INVALID_INPUT',
      'originalReference',
      `is required for a ${request.kind}: the reference of the transaction it applies to`,
    );
  }
  const { receiptEmail, receiptSms } = request;
  if (
    receiptEmail !== undefined &&
    (typeof receiptEmail !== 'string' ||
      receiptEmail.length > MAX_EMAIL_LENGTH ||
      !EMAIL.test(receiptEmail))
  ) {
    throw invalid(
      'INVALID_INPUT',
      'receiptEmail',
      `must be an e-mail address of at most ${MAX_EMAIL_LENGTH} characters`,
    );
  }
  if (request.forceAuthorization !== undefined && typeof request.forceAuthorization !== 'boolean') {
    throw invalid('INVALID_INPUT', 'forceAuthorization', 'must be true or false');
  }
  if (receiptSms !== undefined && (typeof receiptSms !== 'string' || !PHONE.test(receiptSms))) {
    throw invalid(
      'INVALID_INPUT',
      'receiptSms',
      'must be a phone number: 6–15 digits, optionally after +',
    );
  }
  return { ...request, reference, amount, method };
}

export function isFinal(state: TransactionState): state is Outcome {
  return state !== 'received' && state !== 'sent';
}

/**
 * Final states in which certainly nothing was charged: declined, cancelled, or `failed` (refused
 * before the card step, busy, or proven never sent). A reference whose latest attempt ended in
 * one of these may be tried again under the same reference: a new attempt (ARCHITECTURE.md
 * invariant 1, the cashier's "try another card").
 */
export const NOTHING_CHARGED_STATES = ['declined', 'cancelled', 'failed'] as const;

/** True when `state` is one of NOTHING_CHARGED_STATES. */
export function chargedNothing(state: TransactionState): boolean {
  return (NOTHING_CHARGED_STATES as readonly TransactionState[]).includes(state);
}
