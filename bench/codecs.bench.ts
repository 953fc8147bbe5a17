/**
 * Codec throughput (issue 9), every figure against a baseline timed in the same run.
 *
 * (1) Messages per second through each protocol's codec, one exchange being a sale request and
 * its approved answer, each encoded and decoded as the two ends do (the POS's encoder, the
 * terminal's decoder, and back): PAYable (JSON over WebSocket), SEMI (JSON objects), Concert
 * (fixed-width fields in STX…ETX LRC frames) and eConduit framing (0x04 0x04-terminated
 * messages in a byte stream, each read as a terminal message). Baseline: the same input values
 * (the objects each encoder is given) through JSON.stringify then JSON.parse; for the eConduit
 * stream, a bare newline framer over the same messages ending in `\n`, plus JSON.parse.
 *
 * (2) The SEMI raw-TCP JSON framer in MB/s on 1-byte, 7-byte and 64 KiB chunks, against
 * JSON.parse of the same objects already split.
 *
 * Best of BENCH_CODEC_ROUNDS rounds (5) of BENCH_CODEC_MESSAGES exchanges (20,000), a subject
 * and its baseline taking turns within each round; prints a table and writes its results
 * (bench/results.ts).
 */
import { performance } from 'node:perf_hooks';
import { decodeFrame, encodeFrame as encodeConcertFrame } from '../src/protocols/concert/frame.js';
import {
  decodeAnswer as decodeConcertAnswer,
  decodeRequest as decodeConcertRequest,
  encodeAnswer as encodeConcertAnswer,
  encodeRequest as encodeConcertRequest,
  type ConcertAnswerFields,
  type ConcertRequest,
} from '../src/protocols/concert/messages.js';
import {
  EconduitFramer,
  encodeFrame as encodeEconduitFrame,
} from '../src/protocols/econduit/framer.js';
import { decodeTerminalMessage as decodeEconduitMessage } from '../src/protocols/econduit/messages.js';
import {
  decodePosMessage,
  decodeTerminalMessage as decodePayableMessage,
  encodeAnswer as encodePayableAnswer,
  encodePayment,
  type AnswerFields,
  type PaymentCommand,
} from '../src/protocols/payable/codec.js';
import {
  decodeRequest as decodeSemiRequest,
  decodeResponse,
  encodeRequest as encodeSemiRequest,
  encodeResponse,
} from '../src/protocols/semi/codec.js';
import { JsonObjectFramer } from '../src/protocols/semi/framer.js';
import { compare, figure, writeResult, type Figure, type Ratio } from './results.js';
import { envCount } from './stats.js';

const MESSAGES = envCount('BENCH_CODEC_MESSAGES', 20_000, 10, 10_000_000);
const ROUNDS = envCount('BENCH_CODEC_ROUNDS', 5, 1, 100);
/** Objects in the SEMI framer's stream (part 2). */
const FRAMER_OBJECTS = envCount('BENCH_OBJECTS', 2_000, 10, 1_000_000);

const started = performance.now();

/**
 * The fastest of ROUNDS runs of each, in ms. The runs take turns within each round, so that a
 * subject and its baseline see the same machine noise; each run checks its own result.
 */
function best(...runs: readonly (() => void)[]): number[] {
  for (const run of runs) run(); // warm-up: the JIT settles before the timed rounds
  const fastest = runs.map(() => Infinity);
  for (let round = 0; round < ROUNDS; round++) {
    runs.forEach((run, k) => {
      const at = performance.now();
      run();
      fastest[k] = Math.min(fastest[k] as number, performance.now() - at);
    });
  }
  return fastest;
}

/** A value the optimiser cannot prove unused. */
let sink = 0;

// ---------------------------------------------------------------------------------------------
// (1) Codecs: one exchange = a request and its answer, encoded and decoded

interface Codec {
  readonly name: string;
  /** One exchange, numbered (fields vary with `i` so that nothing is cached). */
  readonly exchange: (i: number) => void;
  /** The same two messages as plain objects through JSON.stringify / JSON.parse. */
  readonly baseline: (i: number) => void;
  readonly baselineName: string;
}

/**
 * The same input values through JSON.stringify then JSON.parse instead of the protocol's codec:
 * the floor any JSON message costs.
 */
function jsonExchange(request: (i: number) => object, answer: (i: number) => object) {
  return (i: number) => {
    const r = JSON.parse(JSON.stringify(request(i))) as object;
    const a = JSON.parse(JSON.stringify(answer(i))) as object;
    sink += Object.keys(r).length + Object.keys(a).length;
  };
}

const payableCommand = (i: number): PaymentCommand => ({
  id: i + 1,
  amountMinor: 2000 + (i % 1000),
  exponent: 2,
  method: 'CARD',
  orderTracking: `ORDER-${i}`,
});
const payableAnswer = (i: number): AnswerFields => ({
  status: 'STATUS_SUCCESS',
  serial: 'PAYABLE-SIM-1',
  request: { amount: 20, endpoint: 'PAYMENT', method: 'CARD', order_tracking: `ORDER-${i}` },
  origin: 'POS-1',
  approvalCode: String(100000 + (i % 900000)),
  cardName: 'VISA CARDHOLDER',
  cardType: 'VISA',
  mid: '242332553252353',
  tid: '24343227',
  txid: i + 1,
  serverTime: '2026-11-23 10:00:00',
  transactionType: 'EMV',
});

const semiRequest = (i: number) =>
  ({
    code: 'sale',
    mode: 'credit',
    amountMinor: 100 + (i % 1000),
    merTxnId: `ORDER-${i}`,
    reqTxnId: String(i + 1),
  }) as const;
const semiAnswerFields = (i: number): Record<string, string> => ({
  TRAN_CODE: '1',
  TRAN_TYPE: 'SALE',
  MER_TXN_ID: `ORDER-${i}`,
  REQ_TXN_ID: String(i + 1),
  TXN_ID: String(880000 + i),
  SERIAL_NO: 'VL100-5T0R3-0001',
  BATCH_NO: '1',
  DATE: '23112026 10:00:00',
  STATE: '0',
  AMOUNT: String(100 + (i % 1000)),
  TOTAL_AMOUNT: String(100 + (i % 1000)),
  MASKED_PAN: '476173******0010',
  CARD_TYPE: 'VISA',
  ENTRY_MODE: 'CHIP',
  CODE: '980001',
  AUTH_RSP_TEXT: 'APPROVED',
  RRN: String(88000000 + i),
});

const concertRequest = (i: number): ConcertRequest => ({
  posNumber: 1,
  amountMinor: 2000 + (i % 1000),
  answer: 'full',
  paymentMode: 'card',
  transactionType: 'debit',
  currencyNumeric: '978',
  privateData: `W${String(i % 1_000_000_000).padStart(9, '0')}`,
  delay: 'end',
  authorization: 'terminal',
});
const concertAnswer = (i: number): ConcertAnswerFields => ({
  posNumber: 1,
  status: 'approved',
  amountMinor: 2000 + (i % 1000),
  paymentMode: 'card',
  size: 'full',
  report: 'AUTH 980001 VISA',
  currencyNumeric: '978',
  privateData: `W${String(i % 1_000_000_000).padStart(9, '0')}`,
});

const codecs: Codec[] = [
  {
    name: 'PAYable (JSON over WebSocket)',
    exchange: (i) => {
      const request = decodePosMessage(encodePayment(payableCommand(i)));
      const answer = decodePayableMessage(encodePayableAnswer(payableAnswer(i)));
      sink += request.type.length + answer.type.length;
    },
    baseline: jsonExchange(payableCommand, payableAnswer),
    baselineName: 'JSON.stringify + JSON.parse, same values',
  },
  {
    name: 'SEMI (JSON objects)',
    exchange: (i) => {
      const request = decodeSemiRequest(encodeSemiRequest(semiRequest(i)));
      const answer = decodeResponse(encodeResponse(semiAnswerFields(i)), 'sale');
      sink += request.code.length + answer.state.length;
    },
    baseline: jsonExchange(semiRequest, semiAnswerFields),
    baselineName: 'JSON.stringify + JSON.parse, same values',
  },
  {
    name: 'Concert (fields in STX…ETX LRC frames)',
    exchange: (i) => {
      const request = decodeConcertRequest(
        decodeFrame(encodeConcertFrame(encodeConcertRequest(concertRequest(i)))),
      );
      const answer = decodeConcertAnswer(
        decodeFrame(encodeConcertFrame(encodeConcertAnswer(concertAnswer(i)))),
      );
      sink += request.posNumber + answer.posNumber;
    },
    baseline: jsonExchange(concertRequest, concertAnswer),
    baselineName: 'JSON.stringify + JSON.parse, same values',
  },
];

// eConduit: a stream of gateway↔terminal traffic, framed and read as terminal messages.
const econduitTexts = (count: number) =>
  Array.from({ length: count }, (_, i) =>
    i % 2 === 0 ? '{"Command":"TerminalHeartbeat"}' : encodeResponse(semiAnswerFields(i)),
  );

/** Splits bytes into chunks as a socket would deliver them. */
function chunked(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

/** A bare newline framer: indexOf('\n') over each chunk, JSON.parse of each line. */
function newlineFrames(chunks: readonly Buffer[]): number {
  let held: Buffer | undefined;
  let count = 0;
  for (const chunk of chunks) {
    const bytes = held === undefined ? chunk : Buffer.concat([held, chunk]);
    let start = 0;
    for (;;) {
      const at = bytes.indexOf(0x0a, start);
      if (at < 0) break;
      const value = JSON.parse(bytes.toString('utf8', start, at)) as unknown;
      if (value !== null) count++;
      start = at + 1;
    }
    held = start < bytes.length ? Buffer.from(bytes.subarray(start)) : undefined;
  }
  return count;
}

interface CodecRow {
  readonly name: string;
  readonly baselineName: string;
  readonly perSecond: number;
  readonly baselinePerSecond: number;
}

const rows: CodecRow[] = [];
for (const codec of codecs) {
  const [ms, baseMs] = best(
    () => {
      for (let i = 0; i < MESSAGES; i++) codec.exchange(i);
    },
    () => {
      for (let i = 0; i < MESSAGES; i++) codec.baseline(i);
    },
  ) as [number, number];
  rows.push({
    name: codec.name,
    baselineName: codec.baselineName,
    perSecond: (MESSAGES * 1000) / ms,
    baselinePerSecond: (MESSAGES * 1000) / baseMs,
  });
}
{
  // Encoding is part of the cost on the sending side, as for the others.
  const texts = econduitTexts(2 * MESSAGES);
  const econduitChunks = () =>
    chunked(Buffer.from(texts.map((t) => encodeEconduitFrame(t)).join(''), 'utf8'), 64 * 1024);
  const newlineChunks = () =>
    chunked(Buffer.from(texts.map((t) => `${t}\n`).join(''), 'utf8'), 64 * 1024);
  const [ms, baseMs] = best(
    () => {
      const framer = new EconduitFramer();
      let frames = 0;
      for (const chunk of econduitChunks())
        for (const event of framer.push(chunk))
          if (event.type === 'frame' && decodeEconduitMessage(event.text).type !== undefined)
            frames++;
      if (frames !== texts.length) throw new Error(`eConduit: ${frames} of ${texts.length} framed`);
    },
    () => {
      const frames = newlineFrames(newlineChunks());
      if (frames !== texts.length) throw new Error(`newline: ${frames} of ${texts.length} framed`);
    },
  ) as [number, number];
  // Two messages (a heartbeat and an answer) count as one exchange, as for the others.
  rows.push({
    name: 'eConduit framing (0x04 0x04 stream)',
    baselineName: 'bare newline framer + JSON.parse, same messages',
    perSecond: (MESSAGES * 1000) / ms,
    baselinePerSecond: (MESSAGES * 1000) / baseMs,
  });
}

// ---------------------------------------------------------------------------------------------
// (2) The SEMI framer on chunks of three sizes

const objects = Array.from({ length: FRAMER_OBJECTS }, (_, i) =>
  JSON.stringify({
    STATE: '0',
    EPI: '2501000001',
    MER_TXN_ID: `ORDER-${i}`,
    TRAN_TYPE: 'SALE',
    CARD_TYPE: 'VISA',
    TXN_ID: String(100000 + i),
    AMOUNT: String(100 + i),
    TOTAL_AMOUNT: String(100 + i),
    MASKED_PAN: '4111 **** **** 1111',
    CODE: 'A1B2C3',
    AUTH_RSP_TEXT: 'APPROVED "with quotes" and {braces}',
    DATE: '23112026 10:00:00',
  }),
);
const stream = new TextEncoder().encode(objects.join(''));
const megabytes = stream.length / 1e6;
const chunkSizes = [
  ['1 B', 1],
  ['7 B', 7],
  ['64 KiB', 64 * 1024],
] as const;
const framerRuns = chunkSizes.map(([, size]) => {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < stream.length; at += size) pieces.push(stream.subarray(at, at + size));
  return () => {
    const framer = new JsonObjectFramer();
    let frames = 0;
    for (const piece of pieces) frames += framer.push(piece).length;
    if (frames !== FRAMER_OBJECTS) throw new Error(`framed ${frames} of ${FRAMER_OBJECTS}`);
  };
});
const [parseMs, ...framerMs] = best(
  () => {
    for (const text of objects) JSON.parse(text);
  },
  ...framerRuns,
) as [number, ...number[]];
const parseMbPerSecond = megabytes / (parseMs / 1000);
const framerRows = chunkSizes.map(([chunk], k) => ({
  chunk,
  mbPerSecond: megabytes / ((framerMs[k] as number) / 1000),
}));

// ---------------------------------------------------------------------------------------------
// Report

const line = (...cells: string[]) =>
  console.log(
    `${(cells[0] ?? '').padEnd(48)} ${cells
      .slice(1)
      .map((c) => c.padStart(14))
      .join('')}`,
  );
console.log(
  `\nCodecs: ${MESSAGES} exchanges (request + answer, encoded and decoded), best of ${ROUNDS}\n`,
);
line('codec', 'exchanges/s', 'baseline', 'ratio');
for (const row of rows) {
  line(
    row.name,
    row.perSecond.toFixed(0),
    row.baselinePerSecond.toFixed(0),
    (row.perSecond / row.baselinePerSecond).toFixed(2),
  );
  line(`  baseline: ${row.baselineName}`);
}
console.log(
  `\nSEMI framer, ${FRAMER_OBJECTS} objects (${megabytes.toFixed(2)} MB), best of ${ROUNDS}\n`,
);
line('input', 'MB/s', 'ratio');
line('JSON.parse, pre-split (baseline)', parseMbPerSecond.toFixed(1), '1.00');
for (const row of framerRows)
  line(
    `framer, ${row.chunk} chunks`,
    row.mbPerSecond.toFixed(1),
    (row.mbPerSecond / parseMbPerSecond).toFixed(2),
  );
if (sink === -1) console.log(''); // keeps `sink` live

const figures: Figure[] = [
  ...rows.map((r) => figure(`${r.name}: encode + decode`, r.perSecond, 'exchanges/s')),
  ...framerRows.map((r) => figure(`SEMI framer, ${r.chunk} chunks`, r.mbPerSecond, 'MB/s')),
  figure('JSON.parse, pre-split', parseMbPerSecond, 'MB/s'),
];
const ratios: Ratio[] = [
  ...rows.map((r) =>
    compare(
      'encode + decode',
      'exchanges/s',
      'higher',
      [r.name, r.perSecond],
      [r.baselineName, r.baselinePerSecond],
    ),
  ),
  ...framerRows.map((r) =>
    compare(
      'framing',
      'MB/s',
      'higher',
      [`SEMI framer, ${r.chunk} chunks`, r.mbPerSecond],
      ['JSON.parse, pre-split', parseMbPerSecond],
    ),
  ),
];
writeResult({
  bench: 'codecs',
  title: `Codecs: ${MESSAGES} exchanges per codec; SEMI framer on ${FRAMER_OBJECTS} objects`,
  seconds: (performance.now() - started) / 1000,
  parameters: { exchanges: MESSAGES, rounds: ROUNDS, framerObjects: FRAMER_OBJECTS, megabytes },
  figures,
  ratios,
});
