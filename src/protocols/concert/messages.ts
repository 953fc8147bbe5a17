import { findCurrencyByNumeric } from '../../core/currencies.js';
import { invalid, type EcrError } from '../../core/errors.js';
import {
  CONCERT_ANSWER_SIZES,
  CONCERT_AUTHORIZATIONS,
  CONCERT_DELAYS,
  CONCERT_PAYMENT_MODES,
  CONCERT_STATUSES,
  CONCERT_TRANSACTION_TYPES,
  codeList,
  codeName,
  isCodeName,
  nameList,
  type ConcertAnswerSize,
  type ConcertAuthorization,
  type ConcertDelay,
  type ConcertPaymentMode,
  type ConcertStatus,
  type ConcertTransactionType,
} from './codes.js';
import { isDataByte } from './frame.js';
import { readReport } from './report.js';

/**
 * Caisse Concert V2 messages (protocols.md, "concert"): fixed-width ASCII fields, the request
 * 34 characters, the answer 80 (full) or 25 (short). Pure functions; the driver encodes requests
 * and decodes answers, the simulator the other way round, with the same tables (`codes.ts`).
 * Encoders throw INVALID_INPUT / INVALID_AMOUNT / INVALID_CURRENCY naming the field; decoders
 * throw PROTOCOL_ERROR naming the field, and never quote the report field (it holds the PAN).
 */

/** Characters of a request's data. */
export const CONCERT_REQUEST_LENGTH = 34;
/** Characters of a full answer's data (83 bytes framed). */
export const CONCERT_FULL_ANSWER_LENGTH = 80;
/** Characters of a short answer's data (28 bytes framed). */
export const CONCERT_SHORT_ANSWER_LENGTH = 25;
/** Characters of the report field of a full answer ("usually the PAN"). */
export const CONCERT_REPORT_LENGTH = 55;
/** Characters of the private data field, space padded. */
export const CONCERT_PRIVATE_DATA_LENGTH = 10;
/** Digits of an amount in minor units, zero padded. */
export const CONCERT_AMOUNT_DIGITS = 8;
/** Largest amount eight digits hold. */
export const CONCERT_MAX_AMOUNT_MINOR = 99_999_999;
/** POS numbers run from "01" to "99". */
export const CONCERT_MIN_POS_NUMBER = 1;
export const CONCERT_MAX_POS_NUMBER = 99;
const POS_DIGITS = 2;
const CURRENCY_DIGITS = 3;

/** A payment request, POS → terminal. */
export interface ConcertRequest {
  /** 1–99, as set up on the terminal. */
  readonly posNumber: number;
  /** 0 to CONCERT_MAX_AMOUNT_MINOR, in the currency's minor units. */
  readonly amountMinor: number;
  readonly answer: ConcertAnswerSize;
  readonly paymentMode: ConcertPaymentMode;
  readonly transactionType: ConcertTransactionType;
  /** ISO 4217 numeric code, three digits (`978`). */
  readonly currencyNumeric: string;
  /**
   * At most 10 printable ASCII characters, the POS's own; trailing spaces are padding. Public
   * implementations send blanks; a terminal may echo it, but most put their own data in the
   * answer's field instead (docs/protocols/concert.md).
   */
  readonly privateData: string;
  readonly delay: ConcertDelay;
  readonly authorization: ConcertAuthorization;
}

/** An answer, terminal → POS, as the driver reads it: card data masked. */
export interface ConcertAnswer {
  readonly posNumber: number;
  readonly status: ConcertStatus;
  readonly amountMinor: number;
  readonly paymentMode: ConcertPaymentMode;
  readonly size: ConcertAnswerSize;
  /** The card number of the report field, masked (first 6 / last 4 digits at most). */
  readonly maskedPan?: string;
  /** Report text that is not just a card number, card numbers masked (full answers only). */
  readonly report?: string;
  readonly currencyNumeric: string;
  /**
   * Trailing spaces (padding) removed. Terminal data, usually its transaction id
   * (pyTeliumManager's `transaction_id`), sometimes an echo of the request's: never matched on.
   */
  readonly privateData: string;
}

/** An answer as the simulator writes it: the report in clear, as a real terminal sends it. */
export interface ConcertAnswerFields {
  readonly posNumber: number;
  readonly status: ConcertStatus;
  readonly amountMinor: number;
  readonly paymentMode: ConcertPaymentMode;
  readonly size: ConcertAnswerSize;
  /** At most 55 printable ASCII characters, space padded; ignored in a short answer (no such field). */
  readonly report?: string;
  readonly currencyNumeric: string;
  readonly privateData: string;
}

// ---- encoding ----

function posText(value: number): string {
  if (
    !Number.isInteger(value) ||
    value < CONCERT_MIN_POS_NUMBER ||
    value > CONCERT_MAX_POS_NUMBER
  ) {
    throw invalid(
      'INVALID_INPUT',
      'posNumber',
      `must be an integer from ${CONCERT_MIN_POS_NUMBER} to ${CONCERT_MAX_POS_NUMBER}`,
    );
  }
  return String(value).padStart(POS_DIGITS, '0');
}

function amountText(value: number): string {
  if (!Number.isSafeInteger(value) || value < 0 || value > CONCERT_MAX_AMOUNT_MINOR) {
    throw invalid(
      'INVALID_AMOUNT',
      'amountMinor',
      `must be an integer of minor units from 0 to ${CONCERT_MAX_AMOUNT_MINOR}`,
    );
  }
  return String(value).padStart(CONCERT_AMOUNT_DIGITS, '0');
}

function currencyText(value: string): string {
  if (typeof value !== 'string' || findCurrencyByNumeric(value) === undefined) {
    throw invalid(
      'INVALID_CURRENCY',
      'currencyNumeric',
      'must be the three-digit ISO 4217 numeric code of an active currency',
    );
  }
  return value;
}

function isPrintable(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (!isDataByte(value.charCodeAt(i))) return false;
  return true;
}

function paddedText(field: string, value: unknown, width: number): string {
  if (typeof value !== 'string' || value.length > width || !isPrintable(value)) {
    throw invalid(
      'INVALID_INPUT',
      field,
      `must be at most ${width} printable ASCII characters (0x20–0x7E)`,
    );
  }
  return value.padEnd(width, ' ');
}

function code<T extends Readonly<Record<string, string>>>(
  table: T,
  field: string,
  name: unknown,
): string {
  if (!isCodeName(table, name)) throw invalid('INVALID_INPUT', field, `must be ${nameList(table)}`);
  return table[name] as string;
}

/** The 34 characters of a request. Throws INVALID_INPUT / INVALID_AMOUNT / INVALID_CURRENCY. */
export function encodeRequest(request: ConcertRequest): string {
  return [
    posText(request.posNumber),
    amountText(request.amountMinor),
    code(CONCERT_ANSWER_SIZES, 'answer', request.answer),
    code(CONCERT_PAYMENT_MODES, 'paymentMode', request.paymentMode),
    code(CONCERT_TRANSACTION_TYPES, 'transactionType', request.transactionType),
    currencyText(request.currencyNumeric),
    paddedText('privateData', request.privateData, CONCERT_PRIVATE_DATA_LENGTH),
    code(CONCERT_DELAYS, 'delay', request.delay),
    code(CONCERT_AUTHORIZATIONS, 'authorization', request.authorization),
  ].join('');
}

/** 80 characters (full) or 25 (short). Throws like `encodeRequest`. */
export function encodeAnswer(fields: ConcertAnswerFields): string {
  const size = code(CONCERT_ANSWER_SIZES, 'size', fields.size);
  const report =
    size === CONCERT_ANSWER_SIZES.full
      ? paddedText('report', fields.report ?? '', CONCERT_REPORT_LENGTH)
      : '';
  return [
    posText(fields.posNumber),
    code(CONCERT_STATUSES, 'status', fields.status),
    amountText(fields.amountMinor),
    code(CONCERT_PAYMENT_MODES, 'paymentMode', fields.paymentMode),
    report,
    currencyText(fields.currencyNumeric),
    paddedText('privateData', fields.privateData, CONCERT_PRIVATE_DATA_LENGTH),
  ].join('');
}

// ---- decoding ----

function protocolError(field: string, rule: string, detail?: string): EcrError {
  return invalid('PROTOCOL_ERROR', field, rule, detail);
}

/** Reads fixed-width fields in order; validation names the field and quotes short values only. */
class FieldReader {
  private at = 0;
  constructor(private readonly text: string) {}

  take(width: number): string {
    const value = this.text.slice(this.at, this.at + width);
    this.at += width;
    return value;
  }

  number(field: string, width: number, min: number, max: number): number {
    const value = this.take(width);
    const parsed = Number(value);
    if (!/^\d+$/.test(value) || parsed < min || parsed > max) {
      throw protocolError(field, `must be ${width} digits from ${min} to ${max}`, `got "${value}"`);
    }
    return parsed;
  }

  code<T extends Readonly<Record<string, string>>>(
    table: T,
    field: string,
    width: number,
  ): keyof T {
    const value = this.take(width);
    const name = codeName(table, value);
    if (name === undefined)
      throw protocolError(field, `must be ${codeList(table)}`, `got "${value}"`);
    return name;
  }

  currency(): string {
    const value = this.take(CURRENCY_DIGITS);
    if (!/^\d{3}$/.test(value) || findCurrencyByNumeric(value) === undefined) {
      throw protocolError(
        'currencyNumeric',
        'must be the three-digit ISO 4217 numeric code of an active currency',
        `got "${value}"`,
      );
    }
    return value;
  }

  /** Printable ASCII, trailing padding removed. */
  padded(field: string, width: number): string {
    const value = this.take(width);
    if (!isPrintable(value)) throw protocolError(field, 'must be printable ASCII (0x20–0x7E)');
    return value.replace(/ +$/, '');
  }
}

/** Reads a request (the simulator's side). Throws PROTOCOL_ERROR naming the field. */
export function decodeRequest(data: string): ConcertRequest {
  if (data.length !== CONCERT_REQUEST_LENGTH) {
    throw protocolError(
      'request',
      `must be exactly ${CONCERT_REQUEST_LENGTH} characters`,
      `got ${data.length}`,
    );
  }
  const read = new FieldReader(data);
  return {
    posNumber: read.number('posNumber', POS_DIGITS, CONCERT_MIN_POS_NUMBER, CONCERT_MAX_POS_NUMBER),
    amountMinor: read.number('amountMinor', CONCERT_AMOUNT_DIGITS, 0, CONCERT_MAX_AMOUNT_MINOR),
    answer: read.code(CONCERT_ANSWER_SIZES, 'answer', 1),
    paymentMode: read.code(CONCERT_PAYMENT_MODES, 'paymentMode', 1),
    transactionType: read.code(CONCERT_TRANSACTION_TYPES, 'transactionType', 1),
    currencyNumeric: read.currency(),
    privateData: read.padded('privateData', CONCERT_PRIVATE_DATA_LENGTH),
    delay: read.code(CONCERT_DELAYS, 'delay', CONCERT_DELAYS.end.length),
    authorization: read.code(
      CONCERT_AUTHORIZATIONS,
      'authorization',
      CONCERT_AUTHORIZATIONS.terminal.length,
    ),
  };
}

/**
 * Reads an answer (the driver's side): 80 characters (full) or 25 (short), every field checked,
 * PROTOCOL_ERROR naming the field. The report field's card number is masked here, before
 * anything else sees it (`report.ts`): the clear value is in no result, no error message and no
 * error `cause`. Fields are read in wire order, so an error on a field before the report never
 * has it in scope, and errors after it carry only their own field's short value.
 */
export function decodeAnswer(data: string): ConcertAnswer {
  const size: ConcertAnswerSize | undefined =
    data.length === CONCERT_FULL_ANSWER_LENGTH
      ? 'full'
      : data.length === CONCERT_SHORT_ANSWER_LENGTH
        ? 'short'
        : undefined;
  if (size === undefined) {
    throw protocolError(
      'answer',
      `must be exactly ${CONCERT_FULL_ANSWER_LENGTH} (full) or ${CONCERT_SHORT_ANSWER_LENGTH} (short) characters`,
      `got ${data.length}`,
    );
  }
  const read = new FieldReader(data);
  const posNumber = read.number(
    'posNumber',
    POS_DIGITS,
    CONCERT_MIN_POS_NUMBER,
    CONCERT_MAX_POS_NUMBER,
  );
  const status = read.code(CONCERT_STATUSES, 'status', 1);
  const amountMinor = read.number(
    'amountMinor',
    CONCERT_AMOUNT_DIGITS,
    0,
    CONCERT_MAX_AMOUNT_MINOR,
  );
  const paymentMode = read.code(CONCERT_PAYMENT_MODES, 'paymentMode', 1);
  let card: { maskedPan?: string; report?: string } = {};
  if (size === 'full') {
    const clear = read.take(CONCERT_REPORT_LENGTH);
    if (!isPrintable(clear)) throw protocolError('report', 'must be printable ASCII (0x20–0x7E)');
    const { maskedPan, text } = readReport(clear);
    card = {
      ...(maskedPan === undefined ? {} : { maskedPan }),
      ...(text === undefined ? {} : { report: text.slice(0, CONCERT_REPORT_LENGTH) }),
    };
  }
  const currencyNumeric = read.currency();
  const privateData = read.padded('privateData', CONCERT_PRIVATE_DATA_LENGTH);
  return {
    posNumber,
    status,
    amountMinor,
    paymentMode,
    size,
    ...card,
    currencyNumeric,
    privateData,
  };
}
