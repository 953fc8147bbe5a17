import { findCurrency, type Currency } from './currencies.js';
import { invalid } from './errors.js';

/**
 * An amount of money: integer minor units and an ISO 4217 code. Never a float: `9.99 EUR` is
 * `{ minor: 999, currency: 'EUR' }`.
 */
export interface Money {
  readonly minor: number;
  readonly currency: string;
}

/**
 * Default ceiling for one payment, in minor units: 10,000,000.00 in a 2-decimal currency.
 * Terminals and acquirers refuse far less; this bound exists so that a typo cannot become a
 * nine-figure charge and so that every amount stays a safe integer.
 */
export const DEFAULT_MAX_AMOUNT_MINOR = 1_000_000_000;

/** Longest amount text accepted before looking at it (sizes are bounded at every edge). */
const MAX_AMOUNT_TEXT = 32;

export interface ParseAmountOptions {
  /** Name of the input field, used in error messages. @default 'amount' */
  field?: string;
  /** Largest amount accepted, in minor units. @default DEFAULT_MAX_AMOUNT_MINOR */
  maxMinor?: number;
  /** Accept zero. Payments never are zero; some protocol fields (tips) may be. @default false */
  allowZero?: boolean;
}

/** Looks a currency code up, or throws INVALID_CURRENCY naming the field. */
export function requireCurrency(code: unknown, field = 'currency'): Currency {
  if (typeof code !== 'string' || !/^[A-Z]{3}$/.test(code)) {
    throw invalid('INVALID_CURRENCY', field, 'must be a three-letter ISO 4217 code in capitals');
  }
  const currency = findCurrency(code);
  if (currency === undefined) {
    throw invalid('INVALID_CURRENCY', field, 'must be an active ISO 4217 currency', code);
  }
  return currency;
}

/**
 * Parses a major-unit amount (`9.99`, `"9.99"`, `"10,23"`, `"20"`) into Money.
 *
 * One decimal separator, `.` or `,`, and no grouping: `"1,234.5"` is refused as ambiguous, and
 * so are negatives, exponents, NaN, Infinity, blanks, more decimals than the currency has, and
 * values past `maxMinor`. A JS number is read through its shortest decimal form, so `9.99`
 * means exactly 999 cents and `0.1 + 0.2` is refused (it has 17 decimals).
 */
export function parseAmount(
  input: unknown,
  currencyCode: string,
  options: ParseAmountOptions = {},
): Money {
  const field = options.field ?? 'amount';
  const maxMinor = options.maxMinor ?? DEFAULT_MAX_AMOUNT_MINOR;
  const currency = requireCurrency(currencyCode);
  let text: string;
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) throw invalid('INVALID_AMOUNT', field, 'must be a finite number');
    text = String(input);
  } else if (typeof input === 'string') {
    text = input;
  } else {
    throw invalid('INVALID_AMOUNT', field, 'must be a number or a decimal string');
  }
  if (text.length > MAX_AMOUNT_TEXT) {
    throw invalid('INVALID_AMOUNT', field, `must be at most ${MAX_AMOUNT_TEXT} characters`);
  }
  if (text.startsWith('-')) throw invalid('INVALID_AMOUNT', field, 'must not be negative', text);
  if (text.includes('.') && text.includes(',')) {
    throw invalid(
      'INVALID_AMOUNT',
      field,
      'must use one decimal separator and no digit grouping',
      text,
    );
  }
  const match = /^(\d+)(?:[.,](\d+))?$/.exec(text);
  if (match === null) {
    throw invalid(
      'INVALID_AMOUNT',
      field,
      'must be digits with an optional "." or "," and decimals',
      text,
    );
  }
  const whole = match[1] as string;
  const fraction = match[2] ?? '';
  if (fraction.length > currency.exponent) {
    throw invalid(
      'INVALID_AMOUNT',
      field,
      `must have at most ${currency.exponent} decimals for ${currency.code}`,
      text,
    );
  }
  const minorBig = BigInt(whole + fraction.padEnd(currency.exponent, '0'));
  if (minorBig > BigInt(maxMinor)) {
    throw invalid(
      'INVALID_AMOUNT',
      field,
      `must be at most ${formatMinor(maxMinor, currency.exponent)} ${currency.code}`,
      text,
    );
  }
  const minor = Number(minorBig);
  if (minor === 0 && options.allowZero !== true) {
    throw invalid('INVALID_AMOUNT', field, 'must be greater than zero', text);
  }
  return { minor, currency: currency.code };
}

/** Builds Money from minor units, checking that they are a non-negative safe integer. */
export function moneyFromMinor(minor: unknown, currencyCode: string, field = 'amount'): Money {
  const currency = requireCurrency(currencyCode);
  if (typeof minor !== 'number' || !Number.isSafeInteger(minor) || minor < 0) {
    throw invalid('INVALID_AMOUNT', field, 'must be a non-negative integer number of minor units');
  }
  return { minor, currency: currency.code };
}

/** Minor units as a decimal string with exactly `exponent` decimals: (2000, 2) → `"20.00"`. */
export function formatMinor(minor: number, exponent: number): string {
  // Negative only for totals (a batch whose refunds outweigh its sales), never for a payment.
  if (minor < 0) return `-${formatMinor(-minor, exponent)}`;
  if (exponent === 0) return String(minor);
  const digits = String(minor).padStart(exponent + 1, '0');
  return `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}

/** `{ minor: 999, currency: 'EUR' }` → `"9.99"`; `{ minor: 5, currency: 'JPY' }` → `"5"`. */
export function formatAmount(money: Money): string {
  return formatMinor(money.minor, requireCurrency(money.currency).exponent);
}

/** `"9.99 EUR"`, for people. */
export function formatMoney(money: Money): string {
  return `${formatAmount(money)} ${money.currency}`;
}
