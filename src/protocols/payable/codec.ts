import { EcrError } from '../../core/errors.js';
import { formatMinor } from '../../core/money.js';
import { redactPans } from '../../core/pan.js';
import { parseJsonObject } from '../json-object.js';
import { isPayableStatus, type PayableStatus } from './statuses.js';

/**
 * PAYable ECR messages (seed 000, protocols.md "payable"): JSON text frames over a WebSocket.
 * Pure functions only; the driver and the simulator both use them. Field order and number
 * formatting follow the seed byte for byte.
 */

/** Old firmware's greeting: plain text, then the terminal serial. */
export const LEGACY_GREETING_PREFIX = 'Terminal connection established: ';
/** Bound on any one message; the transport enforces it too. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
const MAX_TEXT_FIELD = 256;

export type PayableMethod = 'CARD' | 'WALLET';

export interface PaymentCommand {
  readonly id: number;
  /** Amount in major units with exactly `exponent` decimals, e.g. `20.00`. */
  readonly amountMinor: number;
  readonly exponent: number;
  readonly method: PayableMethod;
  readonly orderTracking?: string;
  readonly receiptEmail?: string;
  readonly receiptSms?: string;
}

/** `{"amount":20.00,"endpoint":"PAYMENT","method":"CARD",…,"id":1}` — amount keeps its decimals. */
export function encodePayment(command: PaymentCommand): string {
  const parts = [
    `"amount":${formatMinor(command.amountMinor, command.exponent)}`,
    `"endpoint":"PAYMENT"`,
    `"method":${JSON.stringify(command.method)}`,
  ];
  if (command.orderTracking !== undefined)
    parts.push(`"order_tracking":${JSON.stringify(command.orderTracking)}`);
  if (command.receiptEmail !== undefined)
    parts.push(`"receipt_email":${JSON.stringify(command.receiptEmail)}`);
  if (command.receiptSms !== undefined)
    parts.push(`"receipt_sms":${JSON.stringify(command.receiptSms)}`);
  parts.push(`"id":${command.id}`);
  return `{${parts.join(',')}}`;
}

/** Cancels the transaction in progress on the terminal with this serial. */
export function encodeStop(serial: string): string {
  return `{"endpoint":"STOP","terminal":${JSON.stringify(serial)}}`;
}

// ---------------------------------------------------------------- terminal → POS

export type TerminalMessage =
  | {
      readonly type: 'greeting';
      readonly serial: string;
      readonly legacy: boolean;
      readonly pos?: string;
    }
  | { readonly type: 'answer'; readonly answer: PaymentAnswer };

/** A payment answer, card data already masked. */
export interface PaymentAnswer {
  /** The `request.id` it answers; undefined when the terminal sent none (e.g. a refusal of junk). */
  readonly id: number | undefined;
  readonly status: PayableStatus;
  readonly error?: string;
  readonly approvalCode?: string;
  readonly cardName?: string;
  readonly cardType?: string;
  readonly transactionType?: string;
  readonly txid?: number;
  readonly mid?: string;
  readonly tid?: string;
  /** `server_time` as the terminal sent it (masked, bounded), whatever its form. */
  readonly serverTime?: string;
  /** `server_time` read as the terminal's local time, `YYYY-MM-DDTHH:MM:SS`, when it parses. */
  readonly terminalTime?: string;
  readonly origin?: string;
  readonly orderTracking?: string;
}

function protocolError(field: string, rule: string, detail?: string): EcrError {
  return new EcrError(
    'PROTOCOL_ERROR',
    `terminal message ${field}: ${rule}${detail === undefined ? '' : ` (${detail})`}`,
    {
      field,
      rule,
    },
  );
}

/**
 * A value a peer sent, for an error message: masked, or only its length when it is long. Never
 * cut before masking (a card number cut in two escapes it), and never masked whole when long
 * (the masking is slow on a long run of digits: a 64 KiB message of them took seconds).
 */
function quoted(value: string, max: number): string {
  return value.length <= max ? redactPans(value) : `${value.length} characters`;
}

/** Optional short text field: masked, bounded; anything else is a protocol error. */
function text(obj: Record<string, unknown>, key: string, path = key): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isFinite(value)) {
    // Past 2^53 an integer arrives rounded: a card number in it would escape masking.
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
      throw protocolError(path, 'must be text or a number below 2^53');
    }
    return redactPans(String(value));
  }
  if (typeof value !== 'string') throw protocolError(path, 'must be a string');
  if (value.length > MAX_TEXT_FIELD)
    throw protocolError(path, `must be at most ${MAX_TEXT_FIELD} characters`);
  return redactPans(value);
}

function integer(obj: Record<string, unknown>, key: string, path: string): number | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    // No echo of the value: a number past 2^53 arrives rounded, and a card number in it would
    // then escape masking.
    throw protocolError(path, 'must be a non-negative integer below 2^53');
  }
  return value;
}

/** Decodes one text frame from the terminal. Throws PROTOCOL_ERROR / FRAME_TOO_LARGE. */
export function decodeTerminalMessage(frame: string): TerminalMessage {
  if (frame.startsWith(LEGACY_GREETING_PREFIX)) {
    const serial = frame.slice(LEGACY_GREETING_PREFIX.length).trim();
    if (serial.length === 0 || serial.length > MAX_TEXT_FIELD)
      throw protocolError('serial', 'must be 1–256 characters');
    return { type: 'greeting', serial: redactPans(serial), legacy: true };
  }
  const obj = parseJsonObject(frame, 'terminal', MAX_MESSAGE_BYTES);
  const status = obj.status;
  if (typeof status !== 'string') throw protocolError('status', 'must be a string');
  if (!isPayableStatus(status))
    throw protocolError('status', 'must be a known PAYable status', quoted(status, 64));
  const request = obj.request;
  if (
    request !== undefined &&
    (request === null || typeof request !== 'object' || Array.isArray(request))
  ) {
    throw protocolError('request', 'must be an object');
  }
  const echoed = (request ?? {}) as Record<string, unknown>;
  if (status === 'STATUS_TERMINAL_AUTHORIZED') {
    const serial = text(obj, 'origin') ?? '';
    const pos = text(echoed, 'origin', 'request.origin');
    return { type: 'greeting', serial, legacy: false, ...(pos === undefined ? {} : { pos }) };
  }
  const answer: PaymentAnswer = {
    id: integer(echoed, 'id', 'request.id'),
    status,
    ...optional('error', text(obj, 'error')),
    ...optional('approvalCode', text(obj, 'approval_code')),
    ...optional('cardName', text(obj, 'card_name')?.trim()),
    ...optional('cardType', text(obj, 'card_type')),
    ...optional('transactionType', text(obj, 'transaction_type')),
    ...optional('txid', integer(obj, 'txid', 'txid')),
    ...optional('mid', text(obj, 'mid')),
    ...optional('tid', text(obj, 'tid')),
    ...serverTimeFields(text(obj, 'server_time')),
    ...optional('origin', text(obj, 'origin')),
    ...optional('orderTracking', text(echoed, 'order_tracking', 'request.order_tracking')),
  };
  return { type: 'answer', answer };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

// ---------------------------------------------------------------- server_time

/**
 * The vendor's `server_time`: the terminal's local time on a 12-hour clock, hour 01–12, with
 * AM/PM and no zone — `2020-09-29 01:42:22 PM` (seed 000 line 71; the vendor's public README,
 * payable/ecr-sdks README.md, shows `2020-12-12 01:30:55 AM` and `2021-02-24 09:47:43 AM`).
 */
const VENDOR_SERVER_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) ([AP]M)$/;
/** A 24-hour `YYYY-MM-DD HH:MM:SS`, what our own simulator sent before it followed the vendor. */
const PLAIN_SERVER_TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$/;

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** `date` as the vendor writes `server_time`, in the local time of the process (the terminal). */
export function formatServerTime(date: Date): string {
  const hours = date.getHours();
  const hour12 = hours % 12 === 0 ? 12 : hours % 12;
  return (
    `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ` +
    `${pad2(hour12)}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())} ${hours < 12 ? 'AM' : 'PM'}`
  );
}

/**
 * Reads a `server_time` in the vendor's form (or a 24-hour one) as local time,
 * `YYYY-MM-DDTHH:MM:SS`; undefined when it is neither or out of range. Never throws: a clock
 * text the driver cannot read must not turn an approved payment into a protocol error.
 */
export function parseServerTime(value: string): string | undefined {
  const vendor = VENDOR_SERVER_TIME.exec(value);
  const plain = vendor === null ? PLAIN_SERVER_TIME.exec(value) : null;
  const match = vendor ?? plain;
  if (match === null) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  let hours = hour;
  if (vendor !== null) {
    if (hour < 1 || hour > 12) return undefined;
    // 12:xx AM is just after midnight, 12:xx PM just after noon.
    hours = (hour % 12) + (vendor[7] === 'PM' ? 12 : 0);
  }
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined;
  if (hours > 23 || minute > 59 || second > 59) return undefined;
  return `${year}-${pad2(month)}-${pad2(day)}T${pad2(hours)}:${pad2(minute)}:${pad2(second)}`;
}

function daysIn(year: number, month: number): number {
  if (month !== 2) return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] as number;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return leap ? 29 : 28;
}

function serverTimeFields(value: string | undefined): {
  serverTime?: string;
  terminalTime?: string;
} {
  if (value === undefined) return {};
  const terminalTime = parseServerTime(value);
  return terminalTime === undefined ? { serverTime: value } : { serverTime: value, terminalTime };
}

// ---------------------------------------------------------------- POS → terminal (simulator side)

export type PosMessage =
  | {
      readonly type: 'payment';
      readonly id: number;
      /** Major units as sent (`20.00` arrives as 20); validated against the terminal's currency. */
      readonly amount: number;
      readonly method: PayableMethod;
      readonly orderTracking?: string;
      readonly receiptEmail?: string;
      readonly receiptSms?: string;
      /** The request object as received, echoed back in the answer. */
      readonly echo: Readonly<Record<string, unknown>>;
    }
  | { readonly type: 'stop'; readonly terminal?: string };

/** Decodes one frame a POS sent to a terminal. Throws PROTOCOL_ERROR naming the field. */
export function decodePosMessage(frame: string): PosMessage {
  const obj = parseJsonObject(frame, 'POS', MAX_MESSAGE_BYTES);
  const endpoint = obj.endpoint;
  if (endpoint === 'STOP') {
    const terminal = text(obj, 'terminal');
    return terminal === undefined ? { type: 'stop' } : { type: 'stop', terminal };
  }
  if (endpoint !== 'PAYMENT')
    throw protocolError('endpoint', 'must be PAYMENT or STOP', quoted(String(endpoint), 32));
  const id = integer(obj, 'id', 'id');
  if (id === undefined) throw protocolError('id', 'is required');
  const method = obj.method ?? 'CARD';
  if (method !== 'CARD' && method !== 'WALLET')
    throw protocolError('method', 'must be CARD or WALLET');
  const amount = obj.amount;
  if (typeof amount !== 'number' || !Number.isFinite(amount))
    throw protocolError('amount', 'must be a number');
  return {
    type: 'payment',
    id,
    amount,
    method,
    ...optional('orderTracking', text(obj, 'order_tracking')),
    ...optional('receiptEmail', text(obj, 'receipt_email')),
    ...optional('receiptSms', text(obj, 'receipt_sms')),
    echo: obj,
  };
}

export interface AnswerFields {
  readonly status: PayableStatus;
  readonly serial: string;
  readonly request?: Readonly<Record<string, unknown>>;
  readonly origin?: string;
  readonly error?: string;
  readonly approvalCode?: string;
  readonly cardName?: string;
  readonly cardType?: string;
  readonly mid?: string;
  readonly tid?: string;
  readonly txid?: number;
  readonly serverTime?: string;
  readonly transactionType?: string;
}

/** A terminal's answer, in the seed's field order (simulator side). */
export function encodeAnswer(fields: AnswerFields): string {
  const out: Record<string, unknown> = {};
  if (fields.approvalCode !== undefined) out.approval_code = fields.approvalCode;
  if (fields.cardName !== undefined) out.card_name = fields.cardName;
  if (fields.cardType !== undefined) out.card_type = fields.cardType;
  if (fields.error !== undefined) out.error = fields.error;
  if (fields.mid !== undefined) out.mid = fields.mid;
  out.origin = fields.serial;
  if (fields.request !== undefined)
    out.request = {
      ...fields.request,
      ...(fields.origin === undefined ? {} : { origin: fields.origin }),
      txid: 0,
    };
  if (fields.serverTime !== undefined) out.server_time = fields.serverTime;
  out.status = fields.status;
  if (fields.tid !== undefined) out.tid = fields.tid;
  if (fields.transactionType !== undefined) out.transaction_type = fields.transactionType;
  if (fields.txid !== undefined) out.txid = fields.txid;
  return JSON.stringify(out);
}

/** Newer firmware's handshake answer. */
export function encodeAuthorized(serial: string, pos: string): string {
  return JSON.stringify({
    origin: serial,
    request: { origin: pos },
    status: 'STATUS_TERMINAL_AUTHORIZED',
  });
}

export function encodeLegacyGreeting(serial: string): string {
  return `${LEGACY_GREETING_PREFIX}${serial}`;
}
