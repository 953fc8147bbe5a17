import { EcrError } from '../../core/errors.js';
import { redactPans } from '../../core/pan.js';
import { parseJsonObject } from '../json-object.js';
import {
  isSemiState,
  SEMI_TRAN_CODES,
  SEMI_TRAN_MODES,
  tranCodeName,
  tranModeName,
  type SemiState,
  type SemiTranCode,
  type SemiTranMode,
} from './codes.js';
import { SEMI_MAX_FRAME_BYTES } from './framer.js';

/**
 * SEMI messages (seed 004, protocols.md "semi"): flat JSON objects of string values, the same
 * over WebSocket and raw TCP. Pure functions; the driver and the simulator both use them.
 */

const MAX_FIELD = 256;
const DIGITS = /^\d{1,12}$/;

export interface SemiRequest {
  readonly code: SemiTranCode;
  /** @default 'credit' */
  readonly mode?: SemiTranMode;
  /** Minor units; absent for cancel, status and batch close. */
  readonly amountMinor?: number;
  /** The POS's reference, echoed by the terminal as MER_TXN_ID (*assumed* request field). */
  readonly merTxnId?: string;
  /** The terminal's id of the transaction a void, capture or tip adjust applies to (*assumed*). */
  readonly origTxnId?: string;
  /** Tip in minor units for a tip adjust (*assumed*). */
  readonly tipMinor?: number;
  /** The POS's id of this very request, at most 25 characters (REQ_TXN_ID, *assumed* echoed). */
  readonly reqTxnId?: string;
}

/** Longest REQ_TXN_ID (the vendor's cloud API's bound). */
export const SEMI_MAX_REQ_TXN_ID = 25;

function minorText(field: string, value: number): string {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new EcrError(
      'INVALID_AMOUNT',
      `${field}: must be a non-negative integer of minor units`,
      { field, rule: 'minor units' },
    );
  }
  return String(value);
}

/** `{"TRAN_MODE":"1","TRAN_CODE":"1","AMOUNT":"100"}` — every value a string, amounts in minor units. */
export function encodeRequest(request: SemiRequest): string {
  const fields: Record<string, string> = {
    TRAN_MODE: SEMI_TRAN_MODES[request.mode ?? 'credit'],
    TRAN_CODE: SEMI_TRAN_CODES[request.code],
  };
  if (request.amountMinor !== undefined) fields.AMOUNT = minorText('AMOUNT', request.amountMinor);
  if (request.tipMinor !== undefined) fields.TIP_AMOUNT = minorText('TIP_AMOUNT', request.tipMinor);
  if (request.merTxnId !== undefined) fields.MER_TXN_ID = request.merTxnId;
  if (request.origTxnId !== undefined) fields.ORIG_TXN_ID = request.origTxnId;
  if (request.reqTxnId !== undefined) {
    if (request.reqTxnId.length > SEMI_MAX_REQ_TXN_ID) {
      throw new EcrError(
        'INVALID_INPUT',
        `REQ_TXN_ID: must be at most ${SEMI_MAX_REQ_TXN_ID} characters`,
        { field: 'REQ_TXN_ID', rule: `at most ${SEMI_MAX_REQ_TXN_ID} characters` },
      );
    }
    fields.REQ_TXN_ID = request.reqTxnId;
  }
  return JSON.stringify(fields);
}

/** A terminal's response, validated, card data masked. */
export interface SemiResponse {
  readonly state: SemiState;
  /** Approved amount in minor units (what a partial approval really charged). */
  readonly amountMinor?: number;
  readonly totalAmountMinor?: number;
  readonly merTxnId?: string;
  /** The request id echoed back (REQ_TXN_ID). */
  readonly reqTxnId?: string;
  /** The TRAN_CODE of the request this answers, when the terminal echoes it. */
  readonly tranCode?: SemiTranCode;
  readonly txnId?: string;
  readonly approvalCode?: string;
  readonly maskedPan?: string;
  readonly cardType?: string;
  readonly message?: string;
  /** Every other field, masked and bounded, for the journal's details. */
  readonly fields: Readonly<Record<string, string>>;
}

function protocolError(field: string, rule: string): EcrError {
  return new EcrError('PROTOCOL_ERROR', `terminal message ${field}: ${rule}`, { field, rule });
}

/**
 * What to do with a value that is an object, an array or null. A terminal's answer may nest
 * objects: the vendor's published approved answer carries `"TAXES":{"STATE_TAX":{…},…}`
 * (valorapi.readme.io, "Valor Connect API Sample Responses"); refusing it would turn an approved
 * payment into an unknown one. Such values are skipped — never kept, so no card data hides in
 * them — and a POS request stays flat.
 */
type Nested = 'refuse' | 'skip';

function parseFlatObject(text: string, who: string, nested: Nested): Record<string, string> {
  const value = parseJsonObject(text, who, SEMI_MAX_FRAME_BYTES);
  // A Map, then own properties: a field named "__proto__" is a field like any other, where an
  // assignment to a plain object would hit its prototype setter instead.
  const fields = new Map<string, string>();
  for (const [name, raw] of Object.entries(value)) {
    if (name.length > 64)
      throw protocolError('message', 'field names must be at most 64 characters');
    // A card number can be a field name too: masked like every value.
    const key = redactPans(name);
    if (nested === 'skip' && (raw === null || typeof raw === 'object')) continue;
    let field: string;
    if (typeof raw === 'number' && Number.isSafeInteger(raw)) field = String(raw);
    else if (typeof raw === 'string') field = raw;
    else throw protocolError(redactPans(key), 'must be a string');
    if (field.length > MAX_FIELD)
      throw protocolError(redactPans(key), `must be at most ${MAX_FIELD} characters`);
    fields.set(key, redactPans(field));
  }
  return Object.fromEntries(fields);
}

function amount(fields: Record<string, string>, key: string): number | undefined {
  const value = fields[key];
  if (value === undefined || value === '') return undefined;
  if (!DIGITS.test(value)) throw protocolError(key, 'must be digits (minor units)');
  return Number(value);
}

/**
 * Decodes a terminal's response. Throws PROTOCOL_ERROR / FRAME_TOO_LARGE naming the field.
 * `inFlight` is the request it is read as the answer to, for answers that do not echo TRAN_CODE.
 */
export function decodeResponse(text: string, inFlight?: SemiTranCode): SemiResponse {
  const fields = parseFlatObject(text, 'terminal', 'skip');
  const state = fields.STATE;
  if (state === undefined) throw protocolError('STATE', 'is required');
  if (!isSemiState(state))
    throw protocolError('STATE', `must be one of 0, 1, -1, -2 (got ${state.slice(0, 8)})`);
  const out: Record<string, unknown> = { state, fields };
  const set = (name: string, value: unknown): void => {
    if (value !== undefined && value !== '') out[name] = value;
  };
  set('amountMinor', amount(fields, 'AMOUNT'));
  // In a batch close answer TOTAL_AMOUNT is the net, negative when refunds outweigh sales:
  // `decodeBatchTotals` reads it. Everywhere else it is an amount charged, digits only.
  const batchClose =
    (fields.TRAN_CODE ?? (inFlight === undefined ? undefined : SEMI_TRAN_CODES[inFlight])) ===
    SEMI_TRAN_CODES.batchClose;
  if (!batchClose) set('totalAmountMinor', amount(fields, 'TOTAL_AMOUNT'));
  set('merTxnId', fields.MER_TXN_ID);
  set('reqTxnId', fields.REQ_TXN_ID);
  if (fields.TRAN_CODE !== undefined) {
    const tranCode = tranCodeName(fields.TRAN_CODE);
    if (tranCode === undefined)
      throw protocolError('TRAN_CODE', 'must be one of the SEMI transaction codes');
    out.tranCode = tranCode;
  }
  set('txnId', fields.TXN_ID);
  set('approvalCode', fields.CODE);
  set('maskedPan', fields.MASKED_PAN);
  // The card's brand is ISSUER ("VISA", "MASTERCARD"); the vendor's sample fills CARD_TYPE with
  // the tender ("Credit"), so it only stands in when ISSUER is absent.
  set('cardType', fields.ISSUER || fields.CARD_TYPE);
  set('message', fields.ERROR_MSG || fields.AUTH_RSP_TEXT);
  return out as unknown as SemiResponse;
}

/** A request as a simulator reads it. */
export interface DecodedRequest {
  readonly code: SemiTranCode;
  readonly mode: SemiTranMode;
  readonly amountMinor?: number;
  readonly tipMinor?: number;
  readonly merTxnId?: string;
  readonly origTxnId?: string;
  readonly reqTxnId?: string;
}

/** Decodes a POS request (simulator side). Throws PROTOCOL_ERROR naming the field. */
export function decodeRequest(text: string): DecodedRequest {
  const fields = parseFlatObject(text, 'POS', 'refuse');
  const code = tranCodeName(fields.TRAN_CODE ?? '');
  if (code === undefined)
    throw protocolError('TRAN_CODE', 'must be one of the SEMI transaction codes');
  const mode = tranModeName(fields.TRAN_MODE ?? '1');
  if (mode === undefined) throw protocolError('TRAN_MODE', 'must be one of the SEMI tender modes');
  const out: Record<string, unknown> = { code, mode };
  const amountMinor = amount(fields, 'AMOUNT');
  const tipMinor = amount(fields, 'TIP_AMOUNT');
  if (amountMinor !== undefined) out.amountMinor = amountMinor;
  if (tipMinor !== undefined) out.tipMinor = tipMinor;
  if (fields.MER_TXN_ID !== undefined) out.merTxnId = fields.MER_TXN_ID;
  if (fields.ORIG_TXN_ID !== undefined) out.origTxnId = fields.ORIG_TXN_ID;
  if (fields.REQ_TXN_ID !== undefined) out.reqTxnId = fields.REQ_TXN_ID;
  return out as unknown as DecodedRequest;
}

/** A response as a simulator writes it: every value a string. */
export function encodeResponse(fields: Readonly<Record<string, string>>): string {
  return JSON.stringify(fields);
}

/** A batch close answer's totals (*assumed* field names, written by the simulator the same way). */
export interface SemiBatchTotals {
  readonly batchNumber: string;
  readonly saleCount: number;
  readonly saleMinor: number;
  readonly refundCount: number;
  readonly refundMinor: number;
  /** Sales minus refunds. */
  readonly netMinor: number;
}

/** The batch total fields, in one place for both ends. */
export const SEMI_BATCH_FIELDS = {
  batchNumber: 'BATCH_NO',
  saleCount: 'SALE_COUNT',
  saleMinor: 'SALE_AMOUNT',
  refundCount: 'REFUND_COUNT',
  refundMinor: 'REFUND_AMOUNT',
  netMinor: 'TOTAL_AMOUNT',
} as const;

/** Reads the totals of a batch close answer; PROTOCOL_ERROR naming the field that is missing. */
export function decodeBatchTotals(response: SemiResponse): SemiBatchTotals {
  const fields = response.fields;
  const batchNumber = fields[SEMI_BATCH_FIELDS.batchNumber];
  if (batchNumber === undefined || batchNumber === '')
    throw protocolError(SEMI_BATCH_FIELDS.batchNumber, 'is required in a batch close answer');
  const count = (name: keyof typeof SEMI_BATCH_FIELDS): number => {
    const key = SEMI_BATCH_FIELDS[name];
    const text = fields[key] ?? '';
    // The net total is negative when refunds outweigh sales.
    const negative = name === 'netMinor' && text.startsWith('-');
    const value = amount({ [key]: negative ? text.slice(1) : text }, key);
    if (value === undefined) throw protocolError(key, 'is required in a batch close answer');
    return negative ? -value : value;
  };
  return {
    batchNumber,
    saleCount: count('saleCount'),
    saleMinor: count('saleMinor'),
    refundCount: count('refundCount'),
    refundMinor: count('refundMinor'),
    netMinor: count('netMinor'),
  };
}
