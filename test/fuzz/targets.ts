import type fc from 'fast-check';
import type { ErrorCode } from '../../src/core/errors.js';
import { luhnValid } from '../../src/core/pan.js';
import {
  CONFIG_ENV_PREFIX,
  CONFIG_KEYS,
  CONFIG_MAX_BYTES,
  CONFIG_MAX_VALUE_LENGTH,
  parseConfigText,
} from '../../src/connector/config.js';
import { CONNECTOR_MAX_BODY_BYTES } from '../../src/connector/server.js';
import { UNREGISTERED_MAX_FRAME_BYTES } from '../../src/gateway/terminal-listener-options.js';
import {
  CONCERT_FRAME_OVERHEAD,
  CONCERT_MAX_DATA_BYTES,
  decodeFrame,
} from '../../src/protocols/concert/frame.js';
import { ConcertFrameReader } from '../../src/protocols/concert/frame-reader.js';
import {
  CONCERT_FULL_ANSWER_LENGTH,
  decodeAnswer as decodeConcertAnswer,
  decodeRequest as decodeConcertRequest,
} from '../../src/protocols/concert/messages.js';
import {
  decode,
  MAX_CLUSTER_MESSAGE_BYTES,
  RpcReply,
  RpcRequest,
} from '../../src/gateway/cluster/wire.js';
import { ECONDUIT_MAX_FRAME_BYTES } from '../../src/protocols/econduit/framer.js';
import {
  decodeGatewayMessage,
  decodeRegister,
  decodeTerminalMessage as decodeEconduitMessage,
} from '../../src/protocols/econduit/messages.js';
import {
  decodePosMessage,
  decodeTerminalMessage as decodePayableMessage,
  MAX_MESSAGE_BYTES as PAYABLE_MAX_MESSAGE_BYTES,
} from '../../src/protocols/payable/codec.js';
import {
  decodeBatchTotals,
  decodeRequest as decodeSemiRequest,
  decodeResponse,
} from '../../src/protocols/semi/codec.js';
import { SEMI_MAX_FRAME_BYTES } from '../../src/protocols/semi/framer.js';
import {
  concertAnswer,
  concertFrame,
  concertLine,
  concertRequest,
  configText,
  configOverride,
  desktopBody,
  clusterReply,
  clusterRequest,
  econduitGatewayMessage,
  econduitRegister,
  econduitStream,
  econduitTerminalMessage,
  kioskBody,
  payablePosFrame,
  payableTerminalFrame,
  semiRequest,
  semiResponse,
  semiStream,
} from './frames.js';
import {
  assertNoPan,
  checkConfig,
  CONFIG_BASE,
  CONNECTOR_CODES,
  connectorBody,
  downstream,
  feedEconduitFramer,
  feedLink,
  feedSemiFramer,
  FRAME_CODES,
  invariant,
  readFrames,
} from './harness.js';

/**
 * Every decoder and framer that reads bytes from a peer or a file, as fuzz targets (issue 9):
 * `fuzz.test.ts` feeds each arbitrary input, mutated valid frames, inputs past its documented
 * bound and, for stateful framers, the input in random chunks. The property is always the same:
 * `run` returns, or throws an EcrError with one of `codes`. Invariants a target checks besides
 * (bounded buffers, masked card numbers, well-typed results) throw a FuzzInvariantError, which
 * counts as a failure like any other throw (`harness.ts`).
 *
 * The cluster's NATS payloads (`decode` in src/gateway/cluster/wire.ts) are targets too: a node
 * reads what any other node, or anything else on the NATS server, publishes.
 */

interface TargetCommon {
  readonly name: string;
  /** Codes a rejection may carry; any other code, or a throw that is not an EcrError, fails. */
  readonly codes: readonly ErrorCode[];
  /** The bound the module documents on one input, in bytes: oversize inputs go past it. */
  readonly maxInputBytes?: number;
  /** Delimiters and keywords worth inserting (for byte targets, latin1: one char per byte). */
  readonly dictionary?: readonly string[];
}

export interface BytesTarget extends TargetCommon {
  readonly kind: 'bytes';
  run(input: Uint8Array): void | Promise<void>;
  /** Valid frames (or streams of them) to mutate. */
  valid(): fc.Arbitrary<Uint8Array>;
  /**
   * Stateful framers: one instance fed `chunks` one by one, its bound checked after each;
   * returns what it produced, in a comparable form.
   */
  feed?(chunks: readonly Uint8Array[]): readonly string[];
  /** `feed` must give the same result wherever the input is cut. */
  readonly splitInvariant?: boolean;
}

export interface TextTarget extends TargetCommon {
  readonly kind: 'text';
  run(input: string): void | Promise<void>;
  valid(): fc.Arbitrary<string>;
}

export type FuzzTarget = BytesTarget | TextTarget;

/** A Luhn-valid test card number, built here so that no source file holds one. */
function testPan(prefix: string): string {
  for (let digit = 0; digit <= 9; digit++)
    if (luhnValid(prefix + digit)) return prefix + String(digit);
  throw new Error('unreachable');
}
const PANS = [testPan('411111111111111'), testPan('555555555555444')];

const JSON_TOKENS = [
  '{',
  '}',
  '[',
  ']',
  '"',
  ':',
  ',',
  '\\',
  '\\"',
  '\\u0000',
  '\\ud800',
  'null',
  'true',
  '-0',
  '1e400',
  '9007199254740993',
  '"__proto__"',
  '"constructor"',
  '{}',
  '[]',
  ...PANS,
  ...PANS.map(
    (pan) => `${pan.slice(0, 4)} ${pan.slice(4, 8)} ${pan.slice(8, 12)} ${pan.slice(12)}`,
  ),
  ...PANS.map((pan) => `${pan}=2512101`),
];
// ---------------------------------------------------------------- the list

export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  {
    name: 'payable: terminal message decode',
    kind: 'text',
    codes: FRAME_CODES,
    maxInputBytes: PAYABLE_MAX_MESSAGE_BYTES,
    dictionary: [
      ...JSON_TOKENS,
      'Terminal connection established: ',
      '"status":',
      '"STATUS_SUCCESS"',
    ],
    run(input) {
      const message = decodePayableMessage(input);
      invariant(message.type === 'greeting' || message.type === 'answer', 'message type');
      assertNoPan(message);
    },
    valid: () => payableTerminalFrame,
  },
  {
    name: 'payable: POS message decode',
    kind: 'text',
    codes: FRAME_CODES,
    maxInputBytes: PAYABLE_MAX_MESSAGE_BYTES,
    dictionary: [...JSON_TOKENS, '"endpoint":', '"PAYMENT"', '"STOP"', '"amount":'],
    run(input) {
      const message = decodePosMessage(input);
      invariant(message.type === 'payment' || message.type === 'stop', 'message type');
    },
    valid: () => payablePosFrame,
  },
  {
    name: 'semi: response decode and batch totals',
    kind: 'text',
    codes: FRAME_CODES,
    maxInputBytes: SEMI_MAX_FRAME_BYTES,
    dictionary: [
      ...JSON_TOKENS,
      '"STATE":"0"',
      '"TRAN_CODE":"10"',
      '"TOTAL_AMOUNT":"-',
      '"AMOUNT":',
    ],
    run(input) {
      assertNoPan(decodeResponse(input));
      // The same text read as a batch close answer, then its totals.
      const batch = downstream(['PROTOCOL_ERROR'], () => decodeResponse(input, 'batchClose'));
      if (batch === undefined) return;
      const totals = downstream(['PROTOCOL_ERROR'], () =>
        decodeBatchTotals(batch as ReturnType<typeof decodeResponse>),
      ) as Record<string, unknown> | undefined;
      for (const [key, value] of Object.entries(totals ?? {}))
        if (key !== 'batchNumber') invariant(Number.isSafeInteger(value), `totals.${key}`);
    },
    valid: () => semiResponse,
  },
  {
    name: 'semi: request decode',
    kind: 'text',
    codes: FRAME_CODES,
    maxInputBytes: SEMI_MAX_FRAME_BYTES,
    dictionary: [...JSON_TOKENS, '"TRAN_CODE":"1"', '"TRAN_MODE":"1"', '"AMOUNT":"100"'],
    run(input) {
      decodeSemiRequest(input);
    },
    valid: () => semiRequest,
  },
  {
    name: 'semi: raw-TCP JSON framer',
    kind: 'bytes',
    codes: FRAME_CODES,
    maxInputBytes: SEMI_MAX_FRAME_BYTES,
    dictionary: ['{', '}', '"', '\\', '\\"', '{}', '"STATE":"0"', '\r\n', ' '],
    run(input) {
      feedSemiFramer([input]);
    },
    feed: feedSemiFramer,
    splitInvariant: true,
    valid: () => semiStream,
  },
  {
    name: 'concert: whole frame decode',
    kind: 'bytes',
    codes: FRAME_CODES,
    maxInputBytes: CONCERT_MAX_DATA_BYTES + CONCERT_FRAME_OVERHEAD,
    dictionary: ['\x02', '\x03', '\x04', '\x05', '\x06', '\x15', '978', '00001000', ' '],
    run(input) {
      const data = decodeFrame(input);
      invariant(data.length >= 1 && data.length <= CONCERT_MAX_DATA_BYTES, 'data length');
    },
    valid: () => concertFrame,
  },
  {
    name: 'concert: frame reader',
    kind: 'bytes',
    codes: [],
    maxInputBytes: CONCERT_MAX_DATA_BYTES + CONCERT_FRAME_OVERHEAD,
    dictionary: ['\x02', '\x03', '\x04', '\x05', '\x06', '\x15', '978', '00001000', ' '],
    run(input) {
      readFrames(new ConcertFrameReader(CONCERT_MAX_DATA_BYTES), input, []);
    },
    feed(chunks) {
      const reader = new ConcertFrameReader(CONCERT_MAX_DATA_BYTES);
      const out: string[] = [];
      for (const chunk of chunks) readFrames(reader, chunk, out);
      return out;
    },
    splitInvariant: true,
    valid: () => concertLine,
  },
  ...(['pos', 'terminal'] as const).map((role): BytesTarget => ({
    name: `concert: link state machine (${role})`,
    kind: 'bytes',
    codes: [],
    maxInputBytes: CONCERT_MAX_DATA_BYTES + CONCERT_FRAME_OVERHEAD,
    dictionary: ['\x02', '\x03', '\x04', '\x05', '\x06', '\x15', '\x05\x02', '\x03\x00\x04'],
    run(input) {
      feedLink(role, [input]);
    },
    feed: (chunks) => feedLink(role, chunks),
    splitInvariant: true,
    valid: () => concertLine,
  })),
  {
    name: 'concert: answer decode',
    kind: 'text',
    codes: ['PROTOCOL_ERROR'],
    maxInputBytes: CONCERT_FULL_ANSWER_LENGTH,
    dictionary: ['978', '00001000', '0', '7', '9', ' ', '*', ...PANS],
    run(input) {
      assertNoPan(decodeConcertAnswer(input));
    },
    valid: () => concertAnswer,
  },
  {
    name: 'concert: request decode',
    kind: 'text',
    codes: ['PROTOCOL_ERROR'],
    maxInputBytes: CONCERT_FULL_ANSWER_LENGTH,
    dictionary: ['978', '00001000', 'A010', 'B011', ' '],
    run(input) {
      decodeConcertRequest(input);
    },
    valid: () => concertRequest,
  },
  ...[ECONDUIT_MAX_FRAME_BYTES, UNREGISTERED_MAX_FRAME_BYTES].map((bound): BytesTarget => ({
    name: `econduit: 0x04 0x04 framer (${bound / 1024} KiB bound)`,
    kind: 'bytes',
    codes: [],
    maxInputBytes: bound,
    dictionary: ['\x04', '\x04\x04', '{"Command":"Register"}', '"Command"', 'OK-REGISTRATION'],
    run(input) {
      feedEconduitFramer([input], bound);
    },
    feed: (chunks) => feedEconduitFramer(chunks, bound),
    // Under the small bound, frames after a Register in the same chunk are still framed
    // under it (as in the gateway): where the input is cut then changes what is dropped.
    splitInvariant: bound === ECONDUIT_MAX_FRAME_BYTES,
    valid: () => econduitStream,
  })),
  ...(
    [
      ['request', RpcRequest, clusterRequest],
      ['reply', RpcReply, clusterReply],
    ] as const
  ).map(([what, schema, frames]): BytesTarget => ({
    name: `cluster: ${what} decode`,
    kind: 'bytes',
    codes: ['INVALID_INPUT'],
    maxInputBytes: MAX_CLUSTER_MESSAGE_BYTES,
    dictionary: [...JSON_TOKENS, '"op":', '"execute"', '"ok":', '"outcome":', '"lastReference":'],
    run(input) {
      const message: unknown = decode<unknown>(schema, input, what);
      invariant(typeof message === 'object' && message !== null, 'decoded to an object');
    },
    valid: () => frames,
  })),
  {
    name: 'econduit: terminal message decode',
    kind: 'text',
    codes: ['PROTOCOL_ERROR'],
    maxInputBytes: ECONDUIT_MAX_FRAME_BYTES,
    dictionary: [
      ...JSON_TOKENS,
      '"Command":',
      '"Register"',
      '"TerminalHeartbeat"',
      '"AckHeartbeat":',
    ],
    run(input) {
      const message = decodeEconduitMessage(input);
      invariant(['register', 'heartbeat', 'payload'].includes(message.type), 'message type');
    },
    valid: () => econduitTerminalMessage,
  },
  {
    name: 'econduit: Register decode',
    kind: 'text',
    codes: ['PROTOCOL_ERROR'],
    maxInputBytes: ECONDUIT_MAX_FRAME_BYTES,
    dictionary: [...JSON_TOKENS, '"Command":', '"Register"', '"TerminalID":', '"TerminalType":'],
    run(input) {
      const registration = decodeRegister(input);
      invariant(typeof registration.ackHeartbeat === 'boolean', 'ackHeartbeat');
    },
    valid: () => econduitRegister,
  },
  {
    name: 'econduit: gateway message decode',
    kind: 'text',
    codes: [],
    maxInputBytes: ECONDUIT_MAX_FRAME_BYTES,
    dictionary: [...JSON_TOKENS, 'OK-REGISTRATION', '"Status":"OK"', ' '],
    run(input) {
      const message = decodeGatewayMessage(input);
      invariant(message.type !== 'payload' || message.text === input, 'payload altered');
    },
    valid: () => econduitGatewayMessage,
  },
  ...(['desktop', 'kiosk'] as const).map((flavour): TextTarget => ({
    name: `connector: ${flavour} body parse`,
    kind: 'text',
    codes: CONNECTOR_CODES,
    maxInputBytes: CONNECTOR_MAX_BODY_BYTES,
    dictionary: [
      ...JSON_TOKENS,
      '"amount":',
      '"10,23"',
      '"transaction_type":"constructor"',
      '"cart":',
      '"basket":',
      '"total_amount":',
      '"custom_data":',
      '"customData":',
    ],
    run(input) {
      connectorBody(flavour, input);
    },
    valid: () => (flavour === 'desktop' ? desktopBody : kioskBody),
  })),
  {
    name: 'connector: config.txt parse',
    kind: 'text',
    codes: ['INVALID_INPUT'],
    maxInputBytes: CONFIG_MAX_BYTES,
    dictionary: [
      '=',
      '#',
      '"',
      '\n',
      '\r\n',
      '\uFEFF',
      ' ',
      ':',
      'ECR_BRIDGE_',
      '/dev/',
      '\uD800',
      'COM8',
      '://',
      '%',
      '?',
      '@',
      'serial:///dev/ttyS0',
      'http://',
      ...CONFIG_KEYS.map((k) => `${k}=`),
    ],
    run(input) {
      checkConfig(parseConfigText(input, { baseDir: '/nonexistent' }));
    },
    valid: () => configText,
  },
  {
    name: 'connector: config.txt environment overrides',
    kind: 'text',
    codes: ['INVALID_INPUT'],
    maxInputBytes: CONFIG_MAX_VALUE_LENGTH,
    dictionary: [
      ...['"', ' ', ':', '/dev/', '\uD800', 'COM8', '://', '%', '?', '@', 'http://', 'EUR'],
      ...CONFIG_KEYS.map((key) => `${key}=`),
    ],
    run(input) {
      // `KEY=value` sets ECR_BRIDGE_KEY; any other input is the value of a key picked from it.
      const equals = input.indexOf('=');
      const named = equals === -1 ? '' : input.slice(0, equals);
      const key = (CONFIG_KEYS as readonly string[]).includes(named)
        ? named
        : CONFIG_KEYS[(input.length + (input.charCodeAt(0) || 0)) % CONFIG_KEYS.length];
      const value = key === named ? input.slice(equals + 1) : input;
      const env = { [`${CONFIG_ENV_PREFIX}${key}`]: value };
      checkConfig(parseConfigText(CONFIG_BASE, { env, baseDir: '/nonexistent' }));
    },
    valid: () => configOverride,
  },
];
