import type { MessageTranscript } from '../support/ws.js';

/**
 * PAYable ECR conversations (the POS is a WebSocket client of the terminal), written literally
 * from the seed and the vendor's public material — never produced by our codec. Each step says
 * how the code under test may differ from the literal text when it is the side that sends it:
 * our driver for the `pos` steps, our simulator for the `terminal` steps.
 */

/** The seed's example terminal serial (seed 000 lines 33 and 87). */
export const SEED_SERIAL = 'PP35271812000161';

/** Seed 000 lines 41–49, verbatim: the example payment request, pretty-printed as the seed has it. */
export const SEED_REQUEST = `{
   "amount": 20.00,
   "endpoint": "PAYMENT",
   "method": "CARD",
   "order_tracking": "example_sale_from_test",
   "receipt_email": "customer@gmail.com",
   "receipt_sms": "0777777777",
   "id": 1
}`;

/** Seed 000 lines 55–76, verbatim: the example response (trailing space in card_name included). */
export const SEED_RESPONSE = `{
   "approval_code":"408809",
   "card_name":"04/TLE PROJECT TEST CARD ",
   "card_type":"VISA",
   "mid":"242332553252353",
   "request":{
      "amount":20.0,
      "endpoint":"PAYMENT",
      "id":1,
      "method":"CARD",
      "order_tracking":"example_sale_from_test",
      "origin":"/192.168.2.230:41588",
      "receipt_email":"customer@gmail.com",
      "receipt_sms":"0777777777",
      "txid":0
   },
   "server_time":"2020-09-29 01:42:22 PM",
   "status":"STATUS_SUCCESS",
   "tid":"24343227",
   "transaction_type":"EMV",
   "txid":26741
}`;

/**
 * `server_time` in the vendor's form: a 12-hour clock, hour 01–12, AM/PM (seed 000 line 71; the
 * vendor's README, payable/ecr-sdks README.md, shows `2020-12-12 01:30:55 AM`).
 */
export const VENDOR_SERVER_TIME = /^\d{4}-\d{2}-\d{2} (0[1-9]|1[0-2]):[0-5]\d:[0-5]\d (AM|PM)$/;

/** The request fields whose values the terminal echoes back unchanged in `request`. */
const ECHOED = [
  'amount',
  'endpoint',
  'id',
  'method',
  'order_tracking',
  'receipt_email',
  'receipt_sms',
];

/**
 * A driver writes the amount with the currency's decimals, as the seed does (`20.00`, line 42):
 * a JSON number, never a string.
 */
function amountKeepsDecimals(text: string): string | undefined {
  return /"amount":\s*20\.00[,\s}]/.test(text) ? undefined : 'amount is not written as 20.00';
}

/**
 * Old firmware, the seed's own conversation: the text greeting (line 33), the example request
 * (lines 41–49) and the example response (lines 55–76), in that order.
 */
export const SEED_SALE: MessageTranscript = {
  source: '/work/shared/seeds/000_8c7f9cad041eb2f6.txt lines 33, 41–49, 55–76',
  shows:
    'old firmware: text greeting with the serial, the seed payment request, the seed approved response with server_time "2020-09-29 01:42:22 PM"',
  steps: [
    {
      from: 'terminal',
      note: 'greeting (seed line 33)',
      text: `Terminal connection established: ${SEED_SERIAL}`,
    },
    {
      from: 'pos',
      note: 'payment request (seed lines 41–49)',
      text: SEED_REQUEST,
      // Whitespace is the only freedom a POS has: the same fields, values and JSON types.
      compare: { kind: 'json' },
      check: amountKeepsDecimals,
    },
    {
      from: 'terminal',
      note: 'approved response (seed lines 55–76)',
      text: SEED_RESPONSE,
      compare: {
        kind: 'shape',
        same: ['status', 'transaction_type', 'request.txid', ...ECHOED.map((k) => `request.${k}`)],
        patterns: {
          server_time: VENDOR_SERVER_TIME,
          approval_code: /^\d{6}$/,
          // Old firmware names the POS by its socket address, with Java's leading slash (line 66).
          'request.origin': /^\/\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/,
        },
        extra: {
          origin:
            "the terminal serial: newer firmware adds it to every answer (payable/ecr-sdks README.md, 'Example successful response')",
        },
      },
    },
  ],
};

/** What the newer firmware's conversation uses for the POS name in the query string. */
export const POS_NAME = 'POS-1';

/**
 * Newer firmware (protocols.md "payable"; the vendor's README, payable/ecr-sdks README.md §1.1
 * and §1.2.1): the POS connects with `?token=…&pos=<name>`, the terminal greets with
 * STATUS_TERMINAL_AUTHORIZED, and its answer carries `origin` (serial) and echoes the POS name
 * as `request.origin`. Values are ours, in the README's shape; the clock reads just after
 * midnight, where a 12-hour dial says 12, not 00.
 */
export const AUTHORIZED_SALE: MessageTranscript = {
  source:
    'payable/ecr-sdks README.md (§1.1 handshake answer, §1.2.1 example successful response) and protocols.md "payable"; request from seed 000 lines 41–49',
  shows:
    'newer firmware: STATUS_TERMINAL_AUTHORIZED greeting, the seed request, an approved answer with origin, request.origin = POS name and server_time "12:07:41 AM"',
  steps: [
    {
      from: 'terminal',
      note: 'handshake answer',
      text: `{"origin":"${SEED_SERIAL}","request":{"origin":"${POS_NAME}"},"status":"STATUS_TERMINAL_AUTHORIZED"}`,
      compare: { kind: 'json' },
    },
    {
      from: 'pos',
      note: 'payment request (seed lines 41–49)',
      text: SEED_REQUEST,
      compare: { kind: 'json' },
      check: amountKeepsDecimals,
    },
    {
      from: 'terminal',
      note: 'approved answer, README shape',
      text: `{
   "approval_code":"512093",
   "card_name":"K PERERA                  ",
   "card_no":"XXXX-XXXX-XXXX-0425",
   "card_type":"MASTER",
   "mid":"000000000000101",
   "origin":"${SEED_SERIAL}",
   "request":{
      "amount":20.0,
      "endpoint":"PAYMENT",
      "id":1,
      "method":"CARD",
      "order_tracking":"example_sale_from_test",
      "origin":"${POS_NAME}",
      "receipt_email":"customer@gmail.com",
      "receipt_sms":"0777777777"
   },
   "server_time":"2021-03-04 12:07:41 AM",
   "status":"STATUS_SUCCESS",
   "tid":"00000101",
   "transaction_type":"EMV",
   "txid":413456
}`,
      compare: {
        kind: 'shape',
        same: ['status', 'origin', ...['origin', ...ECHOED].map((k) => `request.${k}`)],
        patterns: { server_time: VENDOR_SERVER_TIME, approval_code: /^\d{6}$/ },
        optional: {
          card_no: 'the simulator sends no card number, not even masked: it is optional to a POS',
        },
        extra: {
          'request.txid': 'old firmware echoes txid 0 in the request (seed 000 line 69)',
        },
      },
    },
  ],
};
