import { EcrError } from '../../core/errors.js';
import { CONCERT_CONTROL, CONCERT_MIN_DATA_BYTES, isDataByte } from './frame.js';

const { ETX, EOT } = CONCERT_CONTROL;

/** What one byte did to the frame being read. */
export type FrameReadResult =
  /** The frame goes on. */
  | { readonly kind: 'more' }
  /** STX, data, ETX and a good LRC: the data. */
  | { readonly kind: 'frame'; readonly data: string }
  /** The frame ended (its LRC arrived) but breaks a rule: to be NAKed. */
  | { readonly kind: 'refused'; readonly error: EcrError }
  /** EOT inside the frame: the sender gave up; nothing to answer. */
  | { readonly kind: 'aborted'; readonly error: EcrError };

const MORE: FrameReadResult = Object.freeze({ kind: 'more' });

function refused(
  code: 'PROTOCOL_ERROR' | 'FRAME_TOO_LARGE',
  field: string,
  rule: string,
  detail?: string,
): FrameReadResult {
  // Never the frame's data in the message: it may hold a card number.
  const suffix = detail === undefined ? '' : ` (${detail})`;
  return {
    kind: 'refused',
    error: new EcrError(code, `frame refused (NAK): ${field}: ${rule}${suffix}`, { field, rule }),
  };
}

/**
 * Reads one Concert frame byte by byte, from the byte after STX to the LRC (the link finds the
 * STX). The data are kept in a buffer of `maxDataBytes` allocated once: bytes past it are
 * counted and folded into the LRC, never kept, so a peer that never sends ETX costs no memory.
 * Every rule is checked when the LRC arrives, in this order: LRC, length, printable ASCII, so
 * that line noise is reported as a bad LRC.
 */
export class ConcertFrameReader {
  private readonly buffer: Uint8Array;
  /** Data bytes seen, counted up to `maxDataBytes + 1`. */
  private length = 0;
  private check = 0;
  private badByteAt: number | undefined;
  private afterEtx = false;
  private active = false;

  constructor(private readonly maxDataBytes: number) {
    this.buffer = new Uint8Array(maxDataBytes);
  }

  /** True between STX and the LRC. */
  get reading(): boolean {
    return this.active;
  }

  /** Data bytes held (never more than `maxDataBytes`). */
  get buffered(): number {
    return this.active ? Math.min(this.length, this.maxDataBytes) : 0;
  }

  /** An STX was seen: a new frame starts (any unfinished one is forgotten). */
  begin(): void {
    this.length = 0;
    this.check = 0;
    this.badByteAt = undefined;
    this.afterEtx = false;
    this.active = true;
  }

  /** Forgets the frame being read. */
  reset(): void {
    this.active = false;
    this.length = 0;
  }

  /** One byte after STX. */
  push(byte: number): FrameReadResult {
    if (this.afterEtx) {
      this.active = false;
      return this.end(byte);
    }
    if (byte === ETX) {
      this.check ^= byte;
      this.afterEtx = true;
    } else if (byte === EOT) {
      this.reset();
      return {
        kind: 'aborted',
        error: new EcrError(
          'PROTOCOL_ERROR',
          'frame dropped: EOT before ETX (the sender gave up)',
          {
            field: 'frame',
            rule: 'must end with ETX and LRC',
          },
        ),
      };
    } else {
      this.check ^= byte;
      if (this.length < this.maxDataBytes) this.buffer[this.length] = byte;
      if (this.badByteAt === undefined && !isDataByte(byte)) this.badByteAt = this.length;
      if (this.length <= this.maxDataBytes) this.length++;
    }
    return MORE;
  }

  private end(lrcByte: number): FrameReadResult {
    if (this.check !== lrcByte) {
      return refused(
        'PROTOCOL_ERROR',
        'lrc',
        'must be the XOR of the bytes after STX up to and including ETX',
      );
    }
    if (this.length > this.maxDataBytes) {
      return refused('FRAME_TOO_LARGE', 'frame', `at most ${this.maxDataBytes} data bytes`);
    }
    if (this.length < CONCERT_MIN_DATA_BYTES) {
      return refused('PROTOCOL_ERROR', 'frame', `at least ${CONCERT_MIN_DATA_BYTES} data byte`);
    }
    if (this.badByteAt !== undefined) {
      return refused(
        'PROTOCOL_ERROR',
        'data',
        'must be printable ASCII (0x20–0x7E)',
        `byte ${this.badByteAt}`,
      );
    }
    return { kind: 'frame', data: String.fromCharCode(...this.buffer.subarray(0, this.length)) };
  }
}
