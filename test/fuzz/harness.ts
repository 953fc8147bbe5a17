import { EcrError, type ErrorCode } from '../../src/core/errors.js';
import { containsPan } from '../../src/core/pan.js';
import { parseConfigText } from '../../src/connector/config.js';
import { parsePayment, type ConnectorFlavour } from '../../src/connector/shapes.js';
import {
  CONCERT_CONTROL,
  CONCERT_MAX_DATA_BYTES,
  isDataByte,
} from '../../src/protocols/concert/frame.js';
import type { ConcertFrameReader } from '../../src/protocols/concert/frame-reader.js';
import { ConcertLink, type ConcertRole } from '../../src/protocols/concert/link.js';
import {
  decodeAnswer as decodeConcertAnswer,
  decodeRequest as decodeConcertRequest,
  encodeRequest as encodeConcertRequest,
} from '../../src/protocols/concert/messages.js';
import { ECONDUIT_MAX_FRAME_BYTES, EconduitFramer } from '../../src/protocols/econduit/framer.js';
import { decodeTerminalMessage as decodeEconduitMessage } from '../../src/protocols/econduit/messages.js';
import { decodeResponse } from '../../src/protocols/semi/codec.js';
import { JsonObjectFramer, SEMI_MAX_FRAME_BYTES } from '../../src/protocols/semi/framer.js';

/**
 * What the fuzz targets (`targets.ts`) run besides the call under test: the invariant checks
 * (a broken one throws FuzzInvariantError, a failure like any throw that is not a typed
 * rejection), and the drivers of the stateful targets, which feed a framer or a link its input
 * and check its bounds after every chunk.
 */

/** A broken invariant (not a rejection): always a fuzzing failure. */
export class FuzzInvariantError extends Error {
  override readonly name = 'FuzzInvariantError';
}

export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new FuzzInvariantError(message);
}

/** Runs a decoder downstream of the target (a framer's frames): its typed rejections are fine. */
export function downstream(codes: readonly ErrorCode[], decode: () => unknown): unknown {
  try {
    return decode();
  } catch (error) {
    if (!(error instanceof EcrError)) throw error;
    invariant(codes.includes(error.code), `downstream decoder rejected with ${error.code}`);
    return undefined;
  }
}

/** Decoded results are masked (ARCHITECTURE.md invariant 3): no string in them holds a PAN. */
export function assertNoPan(value: unknown, path = 'result'): void {
  if (typeof value === 'string') {
    // Results are short; past 4 KiB the check itself would crawl (redactPans is quadratic on a
    // long digit run: its track 2 pattern).
    invariant(value.length <= 4096, `${path} is ${value.length} characters`);
    invariant(!containsPan(value), `${path} holds a card number`);
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      assertNoPan(key, `${path} key`);
      assertNoPan(item, `${path}.${key}`);
    }
  }
}

export const FRAME_CODES: readonly ErrorCode[] = ['PROTOCOL_ERROR', 'FRAME_TOO_LARGE'];
const { STX, ETX, EOT, ENQ, ACK, NAK } = CONCERT_CONTROL;

// ---------------------------------------------------------------- Concert helpers

/** How the link drives the reader: STX starts a frame, every later byte goes to `push`. */
export function readFrames(reader: ConcertFrameReader, bytes: Uint8Array, out: string[]): void {
  for (const byte of bytes) {
    if (!reader.reading) {
      if (byte === STX) reader.begin();
      continue;
    }
    const result = reader.push(byte);
    invariant(reader.buffered <= CONCERT_MAX_DATA_BYTES, `reader holds ${reader.buffered} bytes`);
    if (result.kind === 'more') continue;
    if (result.kind === 'frame') {
      invariant(result.data.length <= CONCERT_MAX_DATA_BYTES, 'frame data over the bound');
      invariant(
        [...result.data].every((c) => isDataByte(c.charCodeAt(0))),
        'data not printable',
      );
      downstream(['PROTOCOL_ERROR'], () => assertNoPan(decodeConcertAnswer(result.data)));
      downstream(['PROTOCOL_ERROR'], () => decodeConcertRequest(result.data));
      out.push(`frame ${result.data}`);
    } else {
      invariant(result.error instanceof EcrError, `${result.kind} without an EcrError`);
      invariant(FRAME_CODES.includes(result.error.code), `${result.kind}: ${result.error.code}`);
      out.push(`${result.kind} ${result.error.code}`);
    }
  }
}

const LINK_EVENT_CODES: readonly ErrorCode[] = [
  'PROTOCOL_ERROR',
  'FRAME_TOO_LARGE',
  'TIMEOUT',
  'TERMINAL_UNREACHABLE',
  'OUTCOME_UNKNOWN',
];
const LINK_REQUEST = encodeConcertRequest({
  posNumber: 1,
  amountMinor: 1000,
  answer: 'full',
  paymentMode: 'card',
  transactionType: 'debit',
  currencyNumeric: '978',
  privateData: 'fuzz',
  delay: 'end',
  authorization: 'terminal',
});

/**
 * A link fed the other end's bytes, all at one instant, then ticked past every deadline. When
 * the input's first byte is odd, the link first sends a frame of its own, so that ACK, NAK and
 * ENQ collisions meet a frame in flight.
 */
export function feedLink(role: ConcertRole, chunks: readonly Uint8Array[]): string[] {
  const link = new ConcertLink({ role });
  const out: string[] = [];
  const written: number[] = [];
  const record = (step: ReturnType<ConcertLink['push']>): void => {
    invariant(link.buffered <= CONCERT_MAX_DATA_BYTES, `link holds ${link.buffered} bytes`);
    assertLinkWrite(step.write);
    written.push(...step.write);
    for (const event of step.events) {
      if (event.type === 'message') {
        const decode = role === 'pos' ? decodeConcertAnswer : decodeConcertRequest;
        downstream(['PROTOCOL_ERROR'], () => assertNoPan(decode(event.data)));
        out.push(`message ${event.data}`);
      } else if (event.type === 'delivered') {
        out.push('delivered');
      } else {
        invariant(event.error instanceof EcrError, `${event.type} without an EcrError`);
        invariant(
          LINK_EVENT_CODES.includes(event.error.code),
          `${event.type}: ${event.error.code}`,
        );
        out.push(`${event.type} ${event.error.code}`);
      }
    }
  };
  const first = chunks.find((chunk) => chunk.length > 0)?.[0] ?? 0;
  if (first % 2 === 1) record(link.send(LINK_REQUEST, 0));
  for (const chunk of chunks) record(link.push(chunk, 0));
  for (let i = 0; i < 16; i++) {
    const deadline = link.nextDeadline();
    if (deadline === undefined) break;
    record(link.tick(deadline));
  }
  invariant(link.state === 'idle', `the link is still ${link.state} after 16 deadlines`);
  return [...out, `written ${written.join(',')}`];
}

/** What a link writes is control bytes and whole frames of printable data, nothing else. */
function assertLinkWrite(write: Uint8Array): void {
  for (let i = 0; i < write.length;) {
    const byte = write[i] as number;
    if (byte === ACK || byte === NAK || byte === ENQ || byte === EOT) {
      i++;
      continue;
    }
    invariant(byte === STX, `the link wrote byte ${byte} outside a frame`);
    const etx = write.indexOf(ETX, i + 1);
    invariant(etx > i + 1 && etx + 1 < write.length, 'the link wrote an unfinished frame');
    for (let j = i + 1; j < etx; j++) invariant(isDataByte(write[j] as number), 'frame data');
    i = etx + 2;
  }
}

// ---------------------------------------------------------------- framer helpers

export function feedSemiFramer(chunks: readonly Uint8Array[]): string[] {
  const framer = new JsonObjectFramer();
  const out: string[] = [];
  for (const chunk of chunks) {
    for (const event of framer.push(chunk)) {
      if (event.type === 'frame') {
        // Invalid UTF-8 decodes to U+FFFD: three bytes of text for one byte on the wire.
        const size = Buffer.byteLength(event.text, 'utf8');
        invariant(size <= SEMI_MAX_FRAME_BYTES * 3, `a ${size}-byte frame`);
        downstream(FRAME_CODES, () => assertNoPan(decodeResponse(event.text)));
        out.push(`frame ${event.text}`);
      } else {
        invariant(event.error instanceof EcrError, `${event.type} without an EcrError`);
        invariant(FRAME_CODES.includes(event.error.code), `${event.type}: ${event.error.code}`);
        out.push(event.type);
      }
    }
    invariant(framer.buffered <= SEMI_MAX_FRAME_BYTES, `framer holds ${framer.buffered} bytes`);
  }
  return out;
}

/**
 * The gateway's use of the eConduit framer: a small bound until a Register is read, then the
 * full one (`setMaxFrameBytes`), or the full bound from the start.
 */
export function feedEconduitFramer(chunks: readonly Uint8Array[], initial: number): string[] {
  const framer = new EconduitFramer(initial);
  let bound = initial;
  const out: string[] = [];
  for (const chunk of chunks) {
    for (const event of framer.push(chunk)) {
      if (event.type === 'frame') {
        // Invalid UTF-8 decodes to U+FFFD: three bytes of text for one byte on the wire.
        invariant(Buffer.byteLength(event.text, 'utf8') <= bound * 3, 'a frame over the bound');
        const message = downstream(['PROTOCOL_ERROR'], () => decodeEconduitMessage(event.text));
        if ((message as { type?: string } | undefined)?.type === 'register') {
          bound = ECONDUIT_MAX_FRAME_BYTES;
          framer.setMaxFrameBytes(bound);
        }
        out.push(`frame ${event.text}`);
      } else {
        invariant(event.error instanceof EcrError, 'oversize without an EcrError');
        invariant(event.error.code === 'FRAME_TOO_LARGE', `oversize: ${event.error.code}`);
        out.push(event.type);
      }
    }
    // One byte of slack (documented): a held 0x04 may be the first half of the terminator.
    invariant(framer.buffered <= bound + 1, `framer holds ${framer.buffered} bytes`);
  }
  return out;
}

// ---------------------------------------------------------------- connector helpers

export const CONNECTOR_CODES: readonly ErrorCode[] = [
  'INVALID_INPUT',
  'INVALID_AMOUNT',
  'INVALID_CURRENCY',
  'INVALID_REFERENCE',
];

/** A body as the HTTP layer hands it over: parsed JSON (or, for non-JSON, the text itself). */
export function connectorBody(flavour: ConnectorFlavour, text: string): void {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  const payment = parsePayment(flavour, body, 'EUR');
  invariant(payment.kind === 'sale' || payment.kind === 'refund', `kind ${String(payment.kind)}`);
  invariant(Number.isSafeInteger(payment.amount.minor) && payment.amount.minor > 0, 'amount');
  invariant(typeof payment.reference === 'string' && payment.reference !== '', 'reference');
}

export const CONFIG_BASE =
  'TERMINAL_MANAGER_LOGIN=admin\nTERMINAL_MANAGER_PWD=pw\nTERMINAL_URL=simulator:concert\n';

export function checkConfig(config: ReturnType<typeof parseConfigText>): void {
  invariant(Object.isFrozen(config), 'config not frozen');
  invariant(config.localPort >= 1 && config.localPort <= 65535, 'LOCAL_PORT out of range');
  invariant(config.flavour === 'desktop' || config.flavour === 'kiosk', 'flavour');
  invariant(typeof config.terminalUrl === 'string' && config.terminalUrl !== '', 'terminal URL');
}
