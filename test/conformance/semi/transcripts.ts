import type { Compare, MessageStep, MessageTranscript } from '../support/ws.js';

/**
 * SEMI (Valor Connect) conversations: the POS is a client of the terminal's port 5000, over
 * WebSocket or raw TCP, with flat JSON objects of string values (seed 004). Written literally
 * from the seed and the vendor's public material, never produced by our codec.
 *
 * Sources:
 * - seed 004 (/work/shared/seeds/004_577f43028843facf.txt): the request
 *   `{"TRAN_MODE":"1","TRAN_CODE":"1","AMOUNT":"100"}`, in each of its samples: C (line 63),
 *   Go, pretty-printed over several lines (lines 239–243), Node `JSON.stringify` (lines 286–290,
 *   no whitespace), Python `json.dumps` (lines 382–386, a space after `:` and `,`), VB (line 537).
 *   The seed has no response sample.
 * - the vendor's published answers (valorapi.readme.io, "Valor Connect API Sample Responses":
 *   Publish API, approved and cancelled/timed out): the fields of an approved answer, among
 *   them a nested `TAXES` object, `MASKED_PAN` as `4111 **** **** 1111`, `DATE` as
 *   `DDMMYYYY HH:MM:SS`; a cancelled answer of STATE "-1" with `ERROR_MSG`
 *   "Transaction Timeout/Cancelled".
 * - a terminal's answer captured by a public POS app (a Flutter client of `ws://<ip>:5000`, in a
 *   comment of its main.dart, found with the search tool): `STATE` as the JSON number 0, no
 *   MER_TXN_ID (the request had none), `ISSUER` for the brand, `EXPIRY_DATE` masked with an
 *   escaped slash `**\/**`, TOTAL_AMOUNT above AMOUNT by a state tax.
 * Values below are ours, in those shapes; no card number in them is real or complete.
 */

/** The seed's request, as Node's `JSON.stringify` of the seed's object writes it (lines 286–290). */
export const SEED_REQUEST = '{"TRAN_MODE":"1","TRAN_CODE":"1","AMOUNT":"100"}';
/** The seed's Go sample (lines 239–243): the same request over five lines, indented. */
export const SEED_REQUEST_GO = `{
        "TRAN_MODE": "1",
        "TRAN_CODE": "1",
        "AMOUNT": "100"
    }`;
/** The seed's Python sample (lines 382–386): `json.dumps` puts a space after `:` and `,`. */
export const SEED_REQUEST_PYTHON = '{"TRAN_MODE": "1", "TRAN_CODE": "1", "AMOUNT": "100"}';

/**
 * What a real terminal answers to the seed's three-field sale, as we decide it from the two
 * public answers above: approved (STATE "0") for the AMOUNT asked, with the vendor's fields; no
 * MER_TXN_ID, since the request named none (as in the captured answer). Compared by shape when
 * our simulator sends it: its ids, codes, clock and card differ.
 */
export const REAL_TERMINAL_APPROVAL = `{"STATE":"0","EPI":"2226570001","SERIAL_NO":"125214400001","TRAN_TYPE":"CREDIT","CARD_TYPE":"CREDIT","TRAN_METHOD":"SALE","TXN_ID":"223128670001","AMOUNT":"100","PARTIAL":"0","MASKED_PAN":"4111 **** **** 1111","ENTRY_MODE":"CHIP","RRN":"611906500001","CODE":"TAS001","AUTH_RSP_TEXT":"APPROVAL TAS001","DATE":"07122026 14:05:09","TRAN_NO":"1","BATCH_NO":"231","ISSUER":"VISA","TOTAL_AMOUNT":"100","STAN_ID":"18","MID":"887000000001","TID":"75000001"}`;

const APPROVAL_SHAPE: Compare = {
  kind: 'shape',
  same: ['STATE', 'AMOUNT', 'TOTAL_AMOUNT', 'PARTIAL', 'TRAN_TYPE', 'TRAN_METHOD'],
  patterns: {
    EPI: /^2\d{9}$/,
    TXN_ID: /^\d+$/,
    RRN: /^\d{6,12}$/,
    CODE: /^[A-Z0-9]{6}$/,
    STAN_ID: /^\d{1,6}$/,
    TRAN_NO: /^\d+$/,
    BATCH_NO: /^\d+$/,
    // DDMMYYYY HH:MM:SS (the vendor's field table).
    DATE: /^(0[1-9]|[12]\d|3[01])(0[1-9]|1[0-2])\d{4} ([01]\d|2[0-3]):[0-5]\d:[0-5]\d$/,
    // At most the first six and the last four digits in clear; never a whole card number.
    MASKED_PAN: /^(?=.*[*X])\d{0,6}[\d *X-]*$/,
  },
  extra: {
    TRAN_CODE:
      'our simulator echoes the request code (*assumed*, protocols.md "semi"); a POS ignores what it does not know',
  },
};

/** The seed's three fields, nothing else, over either transport: approved and answered. */
export function threeFieldSale(request: string, chunks?: readonly number[]): MessageTranscript {
  return {
    source: `seed 004 request (${request === SEED_REQUEST ? 'lines 286–290' : request === SEED_REQUEST_GO ? 'lines 239–243' : 'lines 382–386'}); answer shape from the vendor's published approved answer and a captured terminal answer`,
    shows:
      "a POS sends only TRAN_MODE, TRAN_CODE and AMOUNT, as the seed does; the terminal approves 100 cents and answers with the vendor's fields",
    steps: [
      {
        from: 'pos',
        note: 'the seed request',
        text: request,
        ...(chunks === undefined ? {} : { chunks }),
      },
      { from: 'terminal', note: 'approved', text: REAL_TERMINAL_APPROVAL, compare: APPROVAL_SHAPE },
    ],
  };
}

/** The reference and id our driver is given, so that its request can be checked. */
export const MER_TXN_ID = 'INV001';

/**
 * What our driver must send for a 100-cent sale: the seed's three fields with the seed's values,
 * as strings; the extra fields are the POS reference the terminal echoes (MER_TXN_ID, in the
 * vendor's answers) and our request id (REQ_TXN_ID, the vendor's cloud API's name; *assumed* on
 * the LAN).
 */
const DRIVER_REQUEST: MessageStep = {
  from: 'pos',
  note: 'the seed request, plus the reference',
  text: SEED_REQUEST,
  compare: {
    kind: 'shape',
    same: ['TRAN_MODE', 'TRAN_CODE', 'AMOUNT'],
    extra: {
      MER_TXN_ID: 'the POS reference, echoed in the vendor answers',
      REQ_TXN_ID: 'our request id (*assumed* on the LAN)',
    },
  },
  check: (text) =>
    (JSON.parse(text) as { MER_TXN_ID?: unknown }).MER_TXN_ID === MER_TXN_ID
      ? undefined
      : `MER_TXN_ID is not ${MER_TXN_ID}`,
};

/**
 * The vendor's published approved answer (Publish API, `response` object), values ours: with
 * its nested TAXES, a tax on top of AMOUNT in TOTAL_AMOUNT, MER_TXN_ID echoing the POS's.
 */
export const VENDOR_APPROVAL = `{"STATE":"0","EPI":"2226570002","SERIAL_NO":"125214400002","MER_TXN_ID":"${MER_TXN_ID}","TRAN_TYPE":"Credit","CARD_PROCESSED_AS":"Credit","CARD_TYPE":"Credit","TRAN_METHOD":"Sale","TXN_ID":"223128670002","TXN_DETAILS_UPLOADED":"YES","AMOUNT":"100","STATE_TAX":"3","TAXES":{"STATE_TAX":{"RATE":"3.000","AMOUNT":"3","TAXABLE_AMOUNT":"100"},"TAX_PROFILE":"TMS Tax","TOTAL_TAXES":"3","TOTAL_WITH_TAX":"103"},"PARTIAL":"0","MASKED_PAN":"4111 **** **** 1111","ENTRY_MODE":"MANUAL","ENTRY_TYPE":" ","EXPIRY_DATE":"**\\/**","RRN":"611906500002","CODE":"TAS002","AUTH_RSP_TEXT":"APPROVAL TAS002","DATE":"29042026 02:08:48","TRAN_NO":"2","BATCH_NO":"231","ISSUER":"VISA","TOTAL_AMOUNT":"103","STAN_ID":"19","MID":"887000000002","TID":"75000002"}`;

/** Split points inside a string, inside the nested TAXES object, and right after a backslash. */
export const VENDOR_APPROVAL_CHUNKS = [
  1,
  VENDOR_APPROVAL.indexOf('"TAXES"') + 12,
  VENDOR_APPROVAL.indexOf('TMS Tax') + 3,
  VENDOR_APPROVAL.indexOf('\\/') + 1,
  VENDOR_APPROVAL.length - 1,
];

export const DRIVER_VENDOR_APPROVAL: MessageTranscript = {
  source:
    'seed 004 request (lines 286–290); answer: valorapi.readme.io "Valor Connect API Sample Responses", Publish API, approved',
  shows:
    'our driver sends the seed fields plus its reference; the vendor-shaped approved answer, nested TAXES included, is read as approved for 100 cents',
  steps: [
    DRIVER_REQUEST,
    {
      from: 'terminal',
      note: 'approved, vendor shape',
      text: VENDOR_APPROVAL,
      chunks: VENDOR_APPROVAL_CHUNKS,
    },
  ],
};

/** The vendor's published cancelled/timed-out answer (Publish API), values ours. */
export const DRIVER_VENDOR_CANCELLED: MessageTranscript = {
  source:
    'seed 004 request (lines 286–290); answer: valorapi.readme.io "Valor Connect API Sample Responses", Publish API, cancelled / timed out',
  shows: 'STATE "-1" with "Transaction Timeout/Cancelled" is read as cancelled, nothing charged',
  steps: [
    DRIVER_REQUEST,
    {
      from: 'terminal',
      note: 'cancelled, vendor shape',
      text: `{"STATE":"-1","EPI":"2226570002","SERIAL_NO":"125214400002","ERROR_MSG":"Transaction Timeout/Cancelled","MER_TXN_ID":"${MER_TXN_ID}"}`,
    },
  ],
};

/**
 * A terminal's answer as a public POS captured it: STATE the number 0, no MER_TXN_ID nor
 * TRAN_CODE, the brand in ISSUER, TOTAL_AMOUNT with a state tax. Values ours.
 */
export const DRIVER_CAPTURED_APPROVAL: MessageTranscript = {
  source:
    'seed 004 request (lines 286–290); answer: the shape of a terminal answer captured by a public Flutter POS client (main.dart)',
  shows: 'an answer with STATE as a JSON number and no echo of the reference is read as approved',
  steps: [
    DRIVER_REQUEST,
    {
      from: 'terminal',
      note: 'approved, captured shape',
      text: '{"STATE":0,"STAN_ID":"000011","AMOUNT":"100","PARTIAL":"0","ISSUER":"MASTERCARD","MASKED_PAN":"5126********0001","RRN":"405007560001","CODE":"055001","AUTH_RSP_TEXT":"APPROVE","DATE":"19022024 07:52:09","TRAN_NO":"3","BATCH_NO":"2","AID":"A0000000041010","SERIAL_NO":"141234200001","TRAN_TYPE":"CREDIT","TRAN_METHOD":"SALE","ENTRY_MODE":"CLESS","EXPIRY_DATE":"**\\/**","TXN_ID":"2256880001","STATE_TAX":"1","TOTAL_AMOUNT":"101"}',
    },
  ],
};
