import fc from 'fast-check';
import {
  CONCERT_ANSWER_SIZES,
  CONCERT_AUTHORIZATIONS,
  CONCERT_DELAYS,
  CONCERT_PAYMENT_MODES,
  CONCERT_STATUSES,
  CONCERT_TRANSACTION_TYPES,
} from '../../src/protocols/concert/codes.js';
import {
  CONCERT_CONTROL,
  encodeFrame as encodeConcertFrame,
} from '../../src/protocols/concert/frame.js';
import {
  encodeAnswer as encodeConcertAnswer,
  encodeRequest as encodeConcertRequest,
} from '../../src/protocols/concert/messages.js';
import { encodeFrame as encodeEconduitFrame } from '../../src/protocols/econduit/framer.js';
import {
  encodeRegister,
  HEARTBEAT,
  HEARTBEAT_ACK,
  REGISTRATION_RESULTS,
} from '../../src/protocols/econduit/messages.js';
import {
  encodeAnswer as encodePayableAnswer,
  encodeAuthorized,
  encodeLegacyGreeting,
  encodePayment,
  encodeStop,
} from '../../src/protocols/payable/codec.js';
import { PAYABLE_STATUSES, type PayableStatus } from '../../src/protocols/payable/statuses.js';
import {
  encodeRequest as encodeSemiRequest,
  encodeResponse as encodeSemiResponse,
  SEMI_BATCH_FIELDS,
} from '../../src/protocols/semi/codec.js';
import {
  SEMI_STATES,
  SEMI_TRAN_CODES,
  SEMI_TRAN_MODES,
  type SemiTranCode,
  type SemiTranMode,
} from '../../src/protocols/semi/codes.js';

/**
 * Valid frames and messages of every protocol, built with the project's own encoders, for the
 * fuzz targets to mutate. Card numbers here are masked ones or random digits: nothing of this
 * is written to disk (a failing case is printed as code units, never as text).
 */

const keys = <T extends object>(table: T) => Object.keys(table) as (keyof T & string)[];

/** Printable ASCII, as fixed-width and text fields carry it. */
const printable = (maxLength: number) => fc.stringMatching(new RegExp(`^[ -~]{0,${maxLength}}$`));
const id = fc.stringMatching(/^[A-Za-z0-9._-]{1,24}$/);
const digits = (max: number) => fc.stringMatching(new RegExp(`^\\d{1,${max}}$`));
const maskedPan = fc.constantFrom('411111******1111', '476173******0010', 'XXXXXXXXXXXX4444', '');
const currencyNumeric = fc.constantFrom('978', '840', '826', '392', '756');
const freeText = fc.oneof(printable(40), fc.string({ maxLength: 40 }), maskedPan);

/** `[[[…]]]` nested up to 20,000 deep: JSON.parse takes it, a recursive walk may not. */
export const deepJson = fc
  .integer({ min: 1, max: 20_000 })
  .map((depth) => '['.repeat(depth) + ']'.repeat(depth));

/** An extra JSON value for unknown fields: plain, odd or deeply nested. */
const extraValue = fc.oneof(
  { arbitrary: fc.json({ maxDepth: 3 }), weight: 6 },
  {
    arbitrary: fc.constantFrom('null', '1e400', '-0', '9007199254740993', '"\\ud800"', '{}'),
    weight: 2,
  },
  { arbitrary: deepJson, weight: 1 },
);

/** `json` (an object's text) with one more field, `"name":<raw>`, inserted first. */
export function withExtraField(json: string, name: string, raw: string): string {
  return `{${JSON.stringify(name)}:${raw}${json === '{}' ? '' : ','}${json.slice(1)}`;
}

/**
 * Adds an unknown field to one object in six: a string one in `flat` formats (SEMI's objects
 * hold strings only), else an odd or deeply nested value.
 */
function maybeExtra(json: fc.Arbitrary<string>, flat = false): fc.Arbitrary<string> {
  const value = flat ? fc.string({ maxLength: 20 }).map((s) => JSON.stringify(s)) : extraValue;
  const name = fc.constantFrom('extra', '__proto__', 'constructor');
  return fc
    .tuple(json, fc.option(fc.tuple(name, value), { freq: 5 }))
    .map(([text, extra]) => (extra === null ? text : withExtraField(text, extra[0], extra[1])));
}

// ---------------------------------------------------------------- PAYable

const payableStatus = fc.constantFrom(...keys(PAYABLE_STATUSES)) as fc.Arbitrary<PayableStatus>;

/** What a PAYable terminal sends: greetings and answers. */
export const payableTerminalFrame: fc.Arbitrary<string> = fc.oneof(
  id.map(encodeLegacyGreeting),
  fc.tuple(id, id).map(([serial, pos]) => encodeAuthorized(serial, pos)),
  maybeExtra(
    fc
      .record(
        {
          status: payableStatus,
          serial: id,
          request: fc.record({
            id: fc.nat(),
            amount: fc.double({ min: 0, max: 1e6, noNaN: true }),
            endpoint: fc.constant('PAYMENT'),
            order_tracking: printable(30),
          }),
          error: freeText,
          approvalCode: digits(6),
          cardName: freeText,
          cardType: fc.constantFrom('VISA', 'MASTERCARD', 'AMEX'),
          mid: digits(15),
          tid: digits(8),
          txid: fc.nat(),
          serverTime: fc.constant('2024-05-01 10:00:00'),
          transactionType: fc.constantFrom('SALE', 'VOID'),
        },
        { requiredKeys: ['status', 'serial'] },
      )
      .map(encodePayableAnswer),
  ),
);

/** What a POS sends a PAYable terminal: payments and stops. */
export const payablePosFrame: fc.Arbitrary<string> = maybeExtra(
  fc.oneof(
    fc
      .record(
        {
          id: fc.nat(),
          amountMinor: fc.integer({ min: 1, max: 99_999_999 }),
          exponent: fc.integer({ min: 0, max: 3 }),
          method: fc.constantFrom('CARD' as const, 'WALLET' as const),
          orderTracking: printable(40),
          receiptEmail: fc.constant('a@example.com'),
          receiptSms: digits(12),
        },
        { requiredKeys: ['id', 'amountMinor', 'exponent', 'method'] },
      )
      .map(encodePayment),
    id.map(encodeStop),
  ),
);

// ---------------------------------------------------------------- SEMI

const tranCode = fc.constantFrom(...keys(SEMI_TRAN_CODES)) as fc.Arbitrary<SemiTranCode>;
const tranMode = fc.constantFrom(...keys(SEMI_TRAN_MODES)) as fc.Arbitrary<SemiTranMode>;

/** A terminal's answer: to a payment, or to a batch close with its totals (net may be < 0). */
export const semiResponse: fc.Arbitrary<string> = maybeExtra(
  fc.oneof(
    fc
      .record(
        {
          STATE: fc.constantFrom(...keys(SEMI_STATES)),
          AMOUNT: digits(8),
          TOTAL_AMOUNT: digits(8),
          TRAN_CODE: fc.constantFrom(
            ...Object.values(SEMI_TRAN_CODES).filter((c) => c !== SEMI_TRAN_CODES.batchClose),
          ),
          MER_TXN_ID: id,
          REQ_TXN_ID: id,
          TXN_ID: id,
          CODE: digits(6),
          MASKED_PAN: maskedPan,
          CARD_TYPE: fc.constantFrom('VISA', 'MC'),
          ERROR_MSG: freeText,
          AUTH_RSP_TEXT: freeText,
        },
        { requiredKeys: ['STATE'] },
      )
      .map(encodeSemiResponse),
    fc
      .record({
        STATE: fc.constant('0'),
        TRAN_CODE: fc.constant(SEMI_TRAN_CODES.batchClose),
        [SEMI_BATCH_FIELDS.batchNumber]: digits(6),
        [SEMI_BATCH_FIELDS.saleCount]: digits(4),
        [SEMI_BATCH_FIELDS.saleMinor]: digits(9),
        [SEMI_BATCH_FIELDS.refundCount]: digits(4),
        [SEMI_BATCH_FIELDS.refundMinor]: digits(9),
        [SEMI_BATCH_FIELDS.netMinor]: fc.oneof(
          digits(9),
          digits(9).map((d) => `-${d}`),
        ),
      })
      .map(encodeSemiResponse),
  ),
  true,
);

/** A POS's request. */
export const semiRequest: fc.Arbitrary<string> = maybeExtra(
  fc
    .record(
      {
        code: tranCode,
        mode: tranMode,
        amountMinor: fc.nat({ max: 99_999_999 }),
        merTxnId: id,
        origTxnId: id,
        tipMinor: fc.nat({ max: 9_999 }),
        reqTxnId: fc.stringMatching(/^[A-Za-z0-9]{1,25}$/),
      },
      { requiredKeys: ['code'] },
    )
    .map(encodeSemiRequest),
  true,
);

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A raw-TCP stream: objects back to back, whitespace between some. */
export const semiStream: fc.Arbitrary<Uint8Array> = fc
  .array(
    fc.tuple(fc.oneof(semiResponse, semiRequest), fc.constantFrom('', '', '\n', '\r\n', ' ')),
    { minLength: 1, maxLength: 4 },
  )
  .map((parts) => utf8(parts.map(([json, gap]) => json + gap).join('')));

// ---------------------------------------------------------------- Concert

const posNumber = fc.integer({ min: 1, max: 99 });
const amountMinor = fc.integer({ min: 0, max: 99_999_999 });
const privateData = fc.stringMatching(/^[ -~]{0,10}$/);

/** The 34 characters of a request. */
export const concertRequest: fc.Arbitrary<string> = fc
  .record({
    posNumber,
    amountMinor,
    answer: fc.constantFrom(...keys(CONCERT_ANSWER_SIZES)),
    paymentMode: fc.constantFrom(...keys(CONCERT_PAYMENT_MODES)),
    transactionType: fc.constantFrom(...keys(CONCERT_TRANSACTION_TYPES)),
    currencyNumeric,
    privateData,
    delay: fc.constantFrom(...keys(CONCERT_DELAYS)),
    authorization: fc.constantFrom(...keys(CONCERT_AUTHORIZATIONS)),
  })
  .map(encodeConcertRequest);

/** An answer, full (80 characters) or short (25). */
export const concertAnswer: fc.Arbitrary<string> = fc
  .record({
    posNumber,
    status: fc.constantFrom(...keys(CONCERT_STATUSES)),
    amountMinor,
    paymentMode: fc.constantFrom(...keys(CONCERT_PAYMENT_MODES)),
    size: fc.constantFrom(...keys(CONCERT_ANSWER_SIZES)),
    report: fc.oneof(
      maskedPan,
      fc.stringMatching(/^\d{12,19}$/),
      fc.stringMatching(/^\d{4}( \d{4}){3}$/),
      fc.stringMatching(/^[ -~]{0,55}$/),
    ),
    currencyNumeric,
    privateData,
  })
  .map(encodeConcertAnswer);

/** One whole frame, `STX data ETX LRC`, of a request, an answer or any printable data. */
export const concertFrame: fc.Arbitrary<Uint8Array> = fc
  .oneof(concertRequest, concertAnswer, fc.stringMatching(/^[ -~]{1,80}$/))
  .map((data) => encodeConcertFrame(data));

const { ENQ, ACK, NAK, EOT } = CONCERT_CONTROL;

/** What the other end of a Concert line sends: ENQ, frames (resent now and then), EOT, ACK/NAK. */
export const concertLine: fc.Arbitrary<Uint8Array> = fc
  .array(
    fc.oneof(
      concertFrame.map((frame) => [ENQ, ...frame, EOT]),
      concertFrame.map((frame) => [ENQ, ...frame, ...frame, EOT]),
      fc.constantFrom([ACK], [NAK], [ENQ], [EOT]),
    ),
    { minLength: 1, maxLength: 5 },
  )
  .map((parts) => Uint8Array.from(parts.flat()));

// ---------------------------------------------------------------- eConduit

/** A Register command, as a terminal sends it first. */
export const econduitRegister: fc.Arbitrary<string> = fc
  .record({
    terminalType: id,
    terminalModel: printable(20),
    terminalId: id,
    softwareVersion: printable(20),
    ackHeartbeat: fc.boolean(),
  })
  .map(encodeRegister);

/** What a terminal sends the gateway: Register, heartbeats, transaction payloads, odd commands. */
export const econduitTerminalMessage: fc.Arbitrary<string> = fc.oneof(
  econduitRegister,
  fc.constant(HEARTBEAT),
  semiResponse,
  fc.oneof(fc.json({ maxDepth: 2 }), deepJson).map((command) => `{"Command":${command}}`),
);

/** What the gateway sends a terminal: registration results, heartbeat ACKs, payloads. */
export const econduitGatewayMessage: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...REGISTRATION_RESULTS, HEARTBEAT_ACK),
  semiRequest,
);

/** A stream of messages, each ending with 0x04 0x04. */
export const econduitStream: fc.Arbitrary<Uint8Array> = fc
  .array(fc.oneof(econduitTerminalMessage, econduitGatewayMessage), { minLength: 1, maxLength: 4 })
  .map((messages) => utf8(messages.map(encodeEconduitFrame).join('')));

// ---------------------------------------------------------------- connector

const amountField = fc.oneof(
  fc.integer({ min: 1, max: 100_000 }).map((cents) => cents / 100),
  fc.integer({ min: 1, max: 100_000 }).map((cents) => (cents / 100).toFixed(2).replace('.', ',')),
  fc.integer({ min: 1, max: 1000 }).map(String),
);
const cartItem = fc.record({
  total_amount: fc.double({ min: 0, max: 1e4, noNaN: true }),
  name: printable(10),
});
const cart = fc.oneof(fc.array(cartItem, { maxLength: 4 }), cartItem);
const customData = fc.dictionary(id, fc.oneof(fc.boolean(), fc.double(), printable(20)), {
  maxKeys: 5,
});
const orderId = fc.stringMatching(/^[A-Za-z0-9-]{1,32}$/);

/** A desktop connector body (seed 001), the seed's `transation_type` spelling included. */
export const desktopBody: fc.Arbitrary<string> = maybeExtra(
  fc
    .record(
      {
        amount: amountField,
        currency: fc.constantFrom('EUR', 'USD', 'JPY'),
        order_id: orderId,
        transaction_type: fc.constantFrom('Debit', 'Credit'),
        transation_type: fc.constantFrom('Debit', 'Credit'),
        force_authorization: fc.boolean(),
        cart,
        customer: fc.record({ firstName: printable(10) }),
        custom_data: customData,
      },
      { requiredKeys: ['amount'] },
    )
    .map((body) => JSON.stringify(body)),
);

/** A kiosk connector body (seed 003). */
export const kioskBody: fc.Arbitrary<string> = maybeExtra(
  fc
    .record(
      {
        amount: amountField,
        orderId,
        currency: fc.constantFrom('EUR', 'USD', 'JPY'),
        force_authorization: fc.boolean(),
        basket: cart,
        customer: fc.record({ email: fc.constant('a@example.com') }),
        customData,
      },
      { requiredKeys: ['amount', 'orderId'] },
    )
    .map((body) => JSON.stringify(body)),
);

// ---------------------------------------------------------------- config.txt

/** A config.txt as written by hand: BOM, CRLF, comments, quotes, spaces around "=". */
export const configText: fc.Arbitrary<string> = fc
  .record({
    bom: fc.boolean(),
    eol: fc.constantFrom('\n', '\r\n'),
    quote: fc.boolean(),
    terminal: fc.constantFrom(
      'SERIAL_PORT=/dev/ttyUSB0',
      'TERMINAL_URL=semi+tcp://10.0.0.5:1234',
      'TERMINAL_URL=ws://10.0.0.5:45454',
      'TERMINAL_URL=simulator:concert',
    ),
    optional: fc.subarray([
      'LOCAL_PORT=8081',
      'HIPAY_LOGIN=hipay',
      'HIPAY_PWD=secret',
      'UPDATE_TIME=03:30',
      'CONNECTOR_FLAVOUR=kiosk',
      'DATA_DIR=./data',
      'NOTIFY_URL=https://backoffice.example/notify',
      'POS_NUMBER=7',
      'CURRENCY=EUR',
      '# a comment',
      '',
    ]),
    login: id,
    password: fc.stringMatching(/^[A-Za-z0-9!$%&*+,.;<>^_{|}~-]{1,40}$/),
  })
  .map(({ bom, eol, quote, terminal, optional, login, password }) =>
    [
      `${bom ? '\uFEFF' : ''}TERMINAL_MANAGER_LOGIN = ${login}`,
      `TERMINAL_MANAGER_PWD=${quote ? `"${password}"` : password}`,
      terminal,
      ...optional,
    ].join(eol),
  );

/** `KEY=value` with a good value, for the `ECR_BRIDGE_<KEY>` overrides. */
export const configOverride: fc.Arbitrary<string> = fc.constantFrom(
  'SERIAL_PORT=/dev/ttyUSB0',
  'LOCAL_PORT=8081',
  'TERMINAL_MANAGER_LOGIN=admin',
  'TERMINAL_MANAGER_PWD="  spaced  "',
  'UPDATE_TIME=03:30',
  'CONNECTOR_FLAVOUR=kiosk',
  'TERMINAL_URL=semi+tcp://10.0.0.5:1234',
  'TERMINAL_URL=serial:///dev/ttyACM0',
  'DATA_DIR=./data',
  'NOTIFY_URL=https://user:pw@backoffice.example/notify',
  'POS_NUMBER=7',
  'CURRENCY=EUR',
);

// ---------------------------------------------------------------- cluster (NATS payloads)

const reference = fc.stringMatching(/^[A-Za-z0-9-]{1,20}$/);

/** What a node asks a terminal's holder: a sale, a status query, a cancel, a batch close. */
export const clusterRequest: fc.Arbitrary<Uint8Array> = fc
  .oneof(
    fc.record({
      op: fc.constant('execute'),
      request: fc.record({
        kind: fc.constantFrom('sale', 'refund', 'void'),
        reference,
        amount: fc.record({
          minor: fc.nat({ max: 1_000_000 }),
          currency: fc.constantFrom('EUR', 'USD'),
        }),
        wireId: fc.integer({ min: 1, max: 1_000_000 }),
      }),
    }),
    fc.record({
      op: fc.constant('query'),
      reference,
      wireId: fc.integer({ min: 1, max: 1_000_000 }),
      patient: fc.boolean(),
    }),
    fc.constantFrom({ op: 'cancel' }, { op: 'batch-close' }, { op: 'status' }),
  )
  .map((message) => utf8(JSON.stringify(message)));

/** What a holder answers: an outcome, a cancel result, or a coded refusal. */
export const clusterReply: fc.Arbitrary<Uint8Array> = fc
  .oneof(
    fc.record({
      ok: fc.constant(true),
      outcome: fc.record(
        {
          outcome: fc.constantFrom('approved', 'declined', 'failed', 'unknown'),
          approvalCode: printable(8),
          details: fc.record({ lastReference: reference }),
        },
        { requiredKeys: ['outcome'] },
      ),
    }),
    fc.record({ ok: fc.constant(true), cancelled: fc.boolean() }),
    fc.record({
      ok: fc.constant(false),
      code: fc.constantFrom('TERMINAL_OFFLINE', 'TERMINAL_BUSY', 'TIMEOUT'),
      message: printable(40),
    }),
  )
  .map((message) => utf8(JSON.stringify(message)));
