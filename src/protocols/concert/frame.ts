import { EcrError, invalid } from '../../core/errors.js';

/**
 * Caisse Concert V2 framing (protocols.md, "concert"): `STX <data> ETX LRC`, the LRC being the
 * XOR of every byte after STX up to and including ETX. Data is printable ASCII, so no control
 * byte can appear inside it; only the LRC byte after ETX may take any value. Pure functions.
 */

/** The link's control bytes. */
export const CONCERT_CONTROL = {
  STX: 0x02,
  ETX: 0x03,
  EOT: 0x04,
  ENQ: 0x05,
  ACK: 0x06,
  NAK: 0x15,
} as const;

/** Longest data of one frame: a full answer (80 characters, 83 bytes framed). */
export const CONCERT_MAX_DATA_BYTES = 80;
/** Shortest data of one frame: a frame with nothing between STX and ETX is refused. */
export const CONCERT_MIN_DATA_BYTES = 1;
/** Lowest byte allowed in data: space. */
export const CONCERT_FIRST_DATA_BYTE = 0x20;
/** Highest byte allowed in data: `~`. */
export const CONCERT_LAST_DATA_BYTE = 0x7e;
/** Bytes a frame adds around its data: STX, ETX and the LRC. */
export const CONCERT_FRAME_OVERHEAD = 3;

/** True for a byte allowed between STX and ETX (printable ASCII, 0x20–0x7E). */
export function isDataByte(byte: number): boolean {
  return byte >= CONCERT_FIRST_DATA_BYTE && byte <= CONCERT_LAST_DATA_BYTE;
}

/**
 * XOR of every byte of `bytes`. Pass what follows STX up to and including ETX to get the byte
 * a frame ends with.
 */
export function lrc(bytes: Uint8Array): number {
  let value = 0;
  for (const byte of bytes) value ^= byte;
  return value;
}

/**
 * `STX <data> ETX LRC`. Throws INVALID_INPUT (field `data`) when `data` is empty, longer than
 * `maxDataBytes`, or holds anything but printable ASCII (a control byte would break the framing).
 */
export function encodeFrame(
  data: string,
  maxDataBytes: number = CONCERT_MAX_DATA_BYTES,
): Uint8Array {
  if (data.length < CONCERT_MIN_DATA_BYTES || data.length > maxDataBytes) {
    throw invalid(
      'INVALID_INPUT',
      'data',
      `must be ${CONCERT_MIN_DATA_BYTES} to ${maxDataBytes} characters`,
      `got ${data.length}`,
    );
  }
  const frame = new Uint8Array(data.length + CONCERT_FRAME_OVERHEAD);
  frame[0] = CONCERT_CONTROL.STX;
  let check = CONCERT_CONTROL.ETX;
  for (let i = 0; i < data.length; i++) {
    const byte = data.charCodeAt(i);
    if (!isDataByte(byte)) {
      throw invalid(
        'INVALID_INPUT',
        'data',
        'must be printable ASCII (0x20–0x7E)',
        `character ${i} is U+${byte.toString(16).toUpperCase().padStart(4, '0')}`,
      );
    }
    frame[i + 1] = byte;
    check ^= byte;
  }
  frame[data.length + 1] = CONCERT_CONTROL.ETX;
  frame[data.length + 2] = check;
  return frame;
}

function frameError(field: string, rule: string, detail?: string): EcrError {
  return invalid('PROTOCOL_ERROR', field, rule, detail);
}

/**
 * The data of one whole frame (`STX <data> ETX LRC`, nothing before or after). Throws
 * PROTOCOL_ERROR naming `frame`, `lrc` or `data`, or FRAME_TOO_LARGE; the message never quotes
 * the data (it may hold a card number). The link parses byte by byte instead; this is for
 * callers holding a complete frame (tests, tools).
 */
export function decodeFrame(
  frame: Uint8Array,
  maxDataBytes: number = CONCERT_MAX_DATA_BYTES,
): string {
  const length = frame.length - CONCERT_FRAME_OVERHEAD;
  if (frame[0] !== CONCERT_CONTROL.STX) throw frameError('frame', 'must start with STX');
  if (length < CONCERT_MIN_DATA_BYTES || frame[frame.length - 2] !== CONCERT_CONTROL.ETX) {
    throw frameError(
      'frame',
      `must be STX, at least ${CONCERT_MIN_DATA_BYTES} data byte, ETX, LRC`,
    );
  }
  if (length > maxDataBytes) {
    throw new EcrError(
      'FRAME_TOO_LARGE',
      `frame: at most ${maxDataBytes} data bytes (got ${length})`,
      {
        field: 'frame',
        rule: `at most ${maxDataBytes} data bytes`,
      },
    );
  }
  if (lrc(frame.subarray(1, frame.length - 1)) !== frame[frame.length - 1]) {
    throw frameError('lrc', 'must be the XOR of the bytes after STX up to and including ETX');
  }
  let data = '';
  for (let i = 1; i <= length; i++) {
    const byte = frame[i] as number;
    if (!isDataByte(byte)) {
      throw frameError('data', 'must be printable ASCII (0x20–0x7E)', `byte ${i - 1}`);
    }
    data += String.fromCharCode(byte);
  }
  return data;
}
