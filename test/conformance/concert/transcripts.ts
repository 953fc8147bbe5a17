import {
  ascii,
  concat,
  type BytesStep,
  type Step,
  type Transcript,
  type Vary,
} from '../support/transcript.js';

/**
 * Caisse Concert V2 (protocol E / E+) conversations written by hand from independent sources,
 * never from our codec:
 * - seeds 001 (line 123: `"version": "0.0.0-concertv2-winserver2003_64"`) and 003 (lines 38 and
 *   123: the terminal on a serial port, `COM8`, `/dev/ttyUSB0`): the connectors speak Concert V2;
 * - /work/shared/design/protocols.md, section "concert": control bytes, framing, field widths;
 * - Ousret/pyTeliumManager (a Python POS library for Telium terminals): `telium/manager.py`
 *   (`ask`: ENQ → ACK → frame → ACK → EOT; `verify`: wait ENQ → ACK → read 83 or 28 bytes →
 *   ACK → expect EOT), `telium/payment.py` (field offsets; the POS sends 10 blank private
 *   characters; the answer's private field is read as the terminal's "transaction id"),
 *   `telium/constant.py` (A010/A011, B010/B011, answer sizes 83 and 28), `test/test_tpe.py` (its
 *   fake terminal answers private data `0000000000` whatever the POS sent, and a report field
 *   of a 16-digit card number, two spaces and 37 zeros);
 * - akretion/pypostelium `pypostelium/pypostelium.py` and OCA/pos
 *   `hw_telium_payment_terminal/test-scripts/telium-test.py` (the Odoo POS box): a short answer
 *   (flag `0`), blank private data, `A011`, `B010`, 12.42 EUR; a private field in the answer
 *   that differs from the request is only logged, and a missing final EOT is not an error.
 */

/** XOR of every byte after STX up to and including ETX (protocols.md), computed here by hand. */
export function lrc(dataWithEtx: Uint8Array): number {
  let value = 0;
  for (const byte of dataWithEtx) value ^= byte;
  return value;
}

/** `STX data ETX LRC` for ASCII `data`. */
export function frame(data: string): Uint8Array {
  const body = concat(ascii(data), 0x03);
  return concat(0x02, body, lrc(body));
}

/** A received frame's LRC is the XOR of its bytes after STX up to ETX: for frames with varying fields. */
export function checkLrc(got: Uint8Array): string | undefined {
  const computed = lrc(got.subarray(1, got.length - 1));
  const sent = got[got.length - 1];
  return computed === sent
    ? undefined
    : `LRC 0x${(sent ?? 0).toString(16)} is not the XOR 0x${computed.toString(16)}`;
}

const BLANK_PRIVATE = ' '.repeat(10);
/** The report field of pyTeliumManager's fake terminal: a card number, two spaces, 37 zeros. */
const TEST_CARD = '4111111111111111';
export const REPORT = `${TEST_CARD}  ${'0'.repeat(37)}`;
export const MASKED_TEST_CARD = '411111******1111';

/** Request data, 34 characters, field by field (protocols.md; pyTeliumManager payment.py). */
function request(fields: {
  amount: string;
  answerFlag: '0' | '1';
  private: string;
  delay: 'A010' | 'A011';
}): string {
  const data =
    '01' + // POS number
    fields.amount + // 8 digits, minor units
    fields.answerFlag + // 1 full answer, 0 short
    '1' + // payment mode: card
    '0' + // transaction type: debit
    '978' + // EUR
    fields.private + // 10 characters
    fields.delay +
    'B010'; // the terminal decides on authorisation
  if (data.length !== 34) throw new Error(`request data is ${data.length} characters, not 34`);
  return data;
}

/** Full answer data, 80 characters. */
function fullAnswer(status: '0' | '7', amount: string, privateData: string): string {
  const data = '01' + status + amount + '1' + REPORT + '978' + privateData;
  if (data.length !== 80) throw new Error(`full answer data is ${data.length} characters, not 80`);
  return data;
}

/** Short answer data, 25 characters: no report field. */
function shortAnswer(status: '0' | '7', amount: string, privateData: string): string {
  const data = '01' + status + amount + '1' + '978' + privateData;
  if (data.length !== 25) throw new Error(`short answer data is ${data.length} characters, not 25`);
  return data;
}

// Byte offsets inside the framed messages (STX is byte 0).
const REQUEST_PRIVATE_AT = 1 + 16;
const REQUEST_LRC_AT = 1 + 34 + 1;
const FULL_REPORT_AT = 1 + 12;
const FULL_PRIVATE_AT = 1 + 70;
const FULL_LRC_AT = 1 + 80 + 1;
const SHORT_PRIVATE_AT = 1 + 15;
const SHORT_LRC_AT = 1 + 25 + 1;

const ENQ = ascii('<ENQ>');
const ACK = ascii('<ACK>');
const EOT = ascii('<EOT>');

// ---------------------------------------------------------------------------------------------
// Against our driver: the scripted peer plays the terminal; our driver is the POS.
// ---------------------------------------------------------------------------------------------

/** The amount the driver is asked for: pyTeliumManager's README and test (12.50 EUR). */
export const DRIVER_AMOUNT_MINOR = 1250;

/**
 * Our driver's request: the bytes a POS sends for 12.50 EUR, full answer, card, debit, A010,
 * B010. The private field is where ecr-bridge puts its own wire id (docs/protocols/concert.md),
 * a choice of ours that no source fixes: compared by shape, with the LRC recomputed.
 */
function driverRequest(answerFlag: '0' | '1'): BytesStep {
  const vary: Vary[] = [
    {
      at: REQUEST_PRIVATE_AT,
      length: 10,
      pattern: /^[ -~]{10}$/,
      why: "the POS's own private data: ecr-bridge puts its wire id there, the sources leave it blank",
    },
    { at: REQUEST_LRC_AT, length: 1, why: 'LRC over the varying private field (checked)' },
  ];
  return {
    from: 'pos',
    bytes: frame(
      request({ amount: '00001250', answerFlag, private: BLANK_PRIVATE, delay: 'A010' }),
    ),
    note: 'request frame',
    vary,
    check: checkLrc,
  };
}

/** ENQ, ACK, request, ACK, EOT: the POS → terminal exchange (pyTeliumManager `ask`). */
function driverRequestExchange(answerFlag: '0' | '1' = '1'): Step[] {
  return [
    { from: 'pos', bytes: ENQ, note: 'ENQ: the POS has a request' },
    { from: 'terminal', bytes: ACK, note: 'ACK: the terminal is ready' },
    driverRequest(answerFlag),
    { from: 'terminal', bytes: ACK, note: 'ACK of the request frame' },
    { from: 'pos', bytes: EOT, note: 'EOT: the request exchange is over' },
  ];
}

/** ENQ, ACK, answer (in pieces), ACK: the terminal → POS exchange, without its final EOT. */
function answerExchange(answer: string): Step[] {
  const bytes = frame(answer);
  return [
    { from: 'terminal', bytes: ENQ, note: 'ENQ: the terminal has the result' },
    { from: 'pos', bytes: ACK, note: "ACK of the terminal's ENQ" },
    // Split inside the fields and between ETX and LRC, as a slow serial line delivers it.
    { from: 'terminal', bytes, chunks: [1, 20, bytes.length - 1], note: 'answer frame' },
    { from: 'pos', bytes: ACK, note: 'ACK of the answer frame' },
  ];
}

export interface DriverCase {
  transcript: Transcript;
  /** What the driver must report. */
  outcome: 'approved' | 'declined';
  maskedPan?: string;
  /** The terminal's own private data, reported as its transaction id. */
  terminalTxId?: string;
  /** Query string of the terminal address (`?answer=short`). */
  query?: string;
}

export const DRIVER_CASES: DriverCase[] = [
  {
    transcript: {
      source:
        'pyTeliumManager telium/manager.py (ask, verify), test/test_tpe.py (fake terminal); protocols.md "concert"',
      shows:
        'approved, full answer (83 bytes) with the report field, blank private data, final EOT',
      steps: [
        ...driverRequestExchange(),
        ...answerExchange(fullAnswer('0', '00001250', BLANK_PRIVATE)),
        { from: 'terminal', bytes: EOT, note: 'EOT: the answer exchange is over' },
      ],
    },
    outcome: 'approved',
    maskedPan: MASKED_TEST_CARD,
  },
  {
    transcript: {
      source:
        'pyTeliumManager test/test_tpe.py: the fake terminal answers private "0000000000" to a blank request; payment.py calls the field transaction_id',
      shows:
        'the terminal fills the private field with its own data (not an echo): still our answer',
      steps: [
        ...driverRequestExchange(),
        ...answerExchange(fullAnswer('0', '00001250', '0000000000')),
        { from: 'terminal', bytes: EOT, note: 'EOT: the answer exchange is over' },
      ],
    },
    outcome: 'approved',
    maskedPan: MASKED_TEST_CARD,
    terminalTxId: '0000000000',
  },
  {
    transcript: {
      source:
        'pyTeliumManager payment.py (transaction_id = the private field); protocols.md status "7"',
      shows: 'refused (status 7), the private field holding a terminal transaction number',
      steps: [
        ...driverRequestExchange(),
        ...answerExchange(fullAnswer('7', '00001250', 'TX00004711')),
        { from: 'terminal', bytes: EOT, note: 'EOT: the answer exchange is over' },
      ],
    },
    outcome: 'declined',
    maskedPan: MASKED_TEST_CARD,
    terminalTxId: 'TX00004711',
  },
  {
    transcript: {
      source:
        'akretion/pypostelium pypostelium.py and OCA/pos telium-test.py (answer_flag "0", 28-byte answer read); pyTeliumManager constant.py (A010)',
      shows: 'a short answer asked (flag 0): 28 bytes, 25 data characters, no report field',
      steps: [
        ...driverRequestExchange('0'),
        ...answerExchange(shortAnswer('0', '00001250', BLANK_PRIVATE)),
        { from: 'terminal', bytes: EOT, note: 'EOT: the answer exchange is over' },
      ],
    },
    outcome: 'approved',
    query: '?answer=short',
  },
  {
    transcript: {
      source:
        'akretion/pypostelium pypostelium.py and OCA/pos telium-test.py: the final EOT is only logged when missing',
      shows: 'the terminal never sends EOT after our ACK of its answer (the line stays open)',
      steps: [
        ...driverRequestExchange(),
        ...answerExchange(fullAnswer('0', '00001250', BLANK_PRIVATE)),
      ],
    },
    outcome: 'approved',
    maskedPan: MASKED_TEST_CARD,
  },
  {
    transcript: {
      source:
        'pyTeliumManager test/test_tpe.py (private "0000000000") and pypostelium.py (no EOT needed)',
      shows: 'terminal-filled private data and the connection closed instead of the final EOT',
      steps: [
        ...driverRequestExchange(),
        ...answerExchange(fullAnswer('0', '00001250', '0000000000')),
        { from: 'terminal', close: true, note: 'the terminal hangs up instead of EOT' },
      ],
    },
    outcome: 'approved',
    maskedPan: MASKED_TEST_CARD,
    terminalTxId: '0000000000',
  },
];

// ---------------------------------------------------------------------------------------------
// Against our simulator: the scripted client plays the POS; our simulator is the terminal.
// ---------------------------------------------------------------------------------------------

interface AnswerShape {
  kind: 'full' | 'short';
  amount: string;
  /** The simulator echoes the request's private data (`echoPrivate`): compared exactly. */
  echo: boolean;
  /** A011: the answer comes before the card step and its status is not a result. */
  immediate: boolean;
}

/**
 * The simulator's answer, compared byte for byte except where a real terminal chooses:
 * - the private field, unless the simulator was asked to echo: real terminals put their own
 *   data there (pyTeliumManager's `transaction_id`), and so does our simulator by default;
 * - the report field of a full answer: the number of whatever card was read, then padding
 *   (pyTeliumManager reads the card number before the first space);
 * - the status of an A011 answer: sent before the card step, "without valid status"
 *   (pyTeliumManager constant.py), so any Concert status is acceptable there;
 * and so the LRC, which must still be the XOR of what came.
 */
function simulatorAnswer(shape: AnswerShape): BytesStep {
  const full = shape.kind === 'full';
  const data = full
    ? fullAnswer('0', shape.amount, BLANK_PRIVATE)
    : shortAnswer('0', shape.amount, BLANK_PRIVATE);
  const vary: Vary[] = [];
  if (shape.immediate) {
    vary.push({
      at: 1 + 2,
      length: 1,
      pattern: /^[079]$/,
      why: 'an A011 answer has no valid status: only a Concert status code is required',
    });
  }
  if (full) {
    vary.push({
      at: FULL_REPORT_AT,
      length: 55,
      pattern: /^\d{13,19} [ -~]*$/,
      why: "the report field: the card's number, then padding (whatever card the terminal read)",
    });
  }
  if (!shape.echo) {
    vary.push({
      at: full ? FULL_PRIVATE_AT : SHORT_PRIVATE_AT,
      length: 10,
      pattern: /^[ -~]{10}$/,
      why: 'the terminal puts its own data (a transaction number) in the private field',
    });
  }
  if (vary.length > 0) {
    vary.push({
      at: full ? FULL_LRC_AT : SHORT_LRC_AT,
      length: 1,
      why: 'LRC over the varying fields (checked)',
    });
  }
  return {
    from: 'terminal',
    bytes: frame(data),
    note: `${shape.kind} answer frame`,
    vary,
    check: checkLrc,
  };
}

function posConversation(requestData: string, answer: BytesStep, requestChunks: number[]): Step[] {
  return [
    { from: 'pos', bytes: ENQ, note: 'ENQ: the POS has a request' },
    { from: 'terminal', bytes: ACK, note: 'ACK: the terminal is ready' },
    { from: 'pos', bytes: frame(requestData), chunks: requestChunks, note: 'request frame' },
    { from: 'terminal', bytes: ACK, note: 'ACK of the request frame' },
    { from: 'pos', bytes: EOT, note: 'EOT: the request exchange is over' },
    { from: 'terminal', bytes: ENQ, note: 'ENQ: the terminal has the result' },
    { from: 'pos', bytes: ACK, note: "ACK of the terminal's ENQ" },
    answer,
    { from: 'pos', bytes: ACK, note: 'ACK of the answer frame' },
    { from: 'terminal', bytes: EOT, note: 'EOT: the answer exchange is over' },
  ];
}

/**
 * The POS conversations our simulator must hold. `echo`: the simulator runs with `echoPrivate`,
 * so the private field is compared exactly (10 blanks back).
 */
export function simulatorCases(echo: boolean): Transcript[] {
  const mode = echo ? ' (simulator echoing the private data)' : '';
  return [
    {
      source:
        'OCA/pos hw_telium_payment_terminal/test-scripts/telium-test.py and akretion/pypostelium pypostelium.py (prepare_data_to_send, send_message, get_answer_from_terminal)',
      shows: `a POS sending 10 blank private characters, short answer asked (flag 0, A011): a 28-byte answer with 25 data characters${mode}`,
      steps: posConversation(
        request({ amount: '00001242', answerFlag: '0', private: BLANK_PRIVATE, delay: 'A011' }),
        simulatorAnswer({ kind: 'short', amount: '00001242', echo, immediate: true }),
        [1, 18, 36],
      ),
    },
    {
      source:
        'pypostelium.py (flag "0", 28-byte answer); pyTeliumManager test/test_tpe.py (small-sized answer, 91.10 EUR) and constant.py (A010: answer at the end of the transaction)',
      shows: `a short answer at the end of the transaction (flag 0, A010): approved, 25 data characters${mode}`,
      steps: posConversation(
        request({ amount: '00009110', answerFlag: '0', private: BLANK_PRIVATE, delay: 'A010' }),
        simulatorAnswer({ kind: 'short', amount: '00009110', echo, immediate: false }),
        [1, 35],
      ),
    },
    {
      source:
        'Ousret/pyTeliumManager README and test/test_tpe.py (12.50 EUR, full answer, A010, B010), telium/constant.py (83 bytes)',
      shows: `a POS sending blank private data and asking a full answer (flag 1): 83 bytes, 80 data characters with the 55-character report${mode}`,
      steps: posConversation(
        request({ amount: '00001250', answerFlag: '1', private: BLANK_PRIVATE, delay: 'A010' }),
        simulatorAnswer({ kind: 'full', amount: '00001250', echo, immediate: false }),
        [2, 3, 35],
      ),
    },
  ];
}
