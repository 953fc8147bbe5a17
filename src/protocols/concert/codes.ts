/**
 * Caisse Concert V2 field codes (protocols.md, "concert"): one table per field, read by the
 * encoders and the decoders alike, so that both ends of the link (driver and simulator) agree.
 */

/** Answer flag of a request: which answer the terminal sends back. */
export const CONCERT_ANSWER_SIZES = { full: '1', short: '0' } as const;
export type ConcertAnswerSize = keyof typeof CONCERT_ANSWER_SIZES;

/** Payment mode. Concert has more (protocols.md: "…"); only these two are known here. */
export const CONCERT_PAYMENT_MODES = { card: '1', cheque: 'C' } as const;
export type ConcertPaymentMode = keyof typeof CONCERT_PAYMENT_MODES;

/** Transaction type of a request. */
export const CONCERT_TRANSACTION_TYPES = {
  debit: '0',
  credit: '1',
  cancel: '2',
  preauth: '4',
} as const;
export type ConcertTransactionType = keyof typeof CONCERT_TRANSACTION_TYPES;

/** Delay: when the terminal answers (at the end of the transaction, or at once). */
export const CONCERT_DELAYS = { end: 'A010', immediate: 'A011' } as const;
export type ConcertDelay = keyof typeof CONCERT_DELAYS;

/** Authorisation: the terminal decides, or an online authorisation is forced. */
export const CONCERT_AUTHORIZATIONS = { terminal: 'B010', force: 'B011' } as const;
export type ConcertAuthorization = keyof typeof CONCERT_AUTHORIZATIONS;

/**
 * Status of an answer. "9" (not verified, or timed out) does not say whether the card was
 * charged: the driver reads it as an unknown outcome.
 */
export const CONCERT_STATUSES = { approved: '0', refused: '7', 'not-verified': '9' } as const;
export type ConcertStatus = keyof typeof CONCERT_STATUSES;

/** The name of `code` in `table`, or undefined when the table has no such code. */
export function codeName<T extends Readonly<Record<string, string>>>(
  table: T,
  code: string,
): keyof T | undefined {
  for (const name of Object.keys(table)) if (table[name] === code) return name as keyof T;
  return undefined;
}

/** True when `name` is a name of `table` (for values from untyped callers). */
export function isCodeName<T extends Readonly<Record<string, string>>>(
  table: T,
  name: unknown,
): name is keyof T {
  return typeof name === 'string' && Object.hasOwn(table, name);
}

/** `"1" or "C"`: a table's codes, for error rules. */
export function codeList(table: Readonly<Record<string, string>>): string {
  const codes = Object.values(table).map((code) => `"${code}"`);
  return codes.length <= 2 ? codes.join(' or ') : `one of ${codes.join(', ')}`;
}

/** `card or cheque`: a table's names, for error rules. */
export function nameList(table: Readonly<Record<string, string>>): string {
  const names = Object.keys(table);
  return names.length <= 2 ? names.join(' or ') : `one of ${names.join(', ')}`;
}
