import { EcrError } from '../../core/errors.js';

/** Every eConduit message, both directions, ends with these two bytes (seed 002). */
export const ECONDUIT_TERMINATOR = '\x04\x04';
/** Largest message accepted, terminator excluded. */
export const ECONDUIT_MAX_FRAME_BYTES = 64 * 1024;

const EOT = 0x04;
const TERMINATOR_BYTES = Buffer.from(ECONDUIT_TERMINATOR, 'latin1');

/** What the framer found in the bytes it was given, in order. */
export type EconduitFramerEvent =
  | { readonly type: 'frame'; readonly text: string }
  /** A message past the bound: dropped whole (its bytes are never kept). */
  | { readonly type: 'oversize'; readonly error: EcrError };

/**
 * Cuts a byte stream into messages ending with 0x04 0x04 (protocols.md, "econduit"). Sans-I/O:
 * `push` takes bytes and returns events. A message may arrive in any number of pieces, several
 * may arrive in one; a single 0x04 is an ordinary byte. Memory is bounded: past `maxFrameBytes`
 * without a terminator the message is reported once as oversize and its bytes dropped up to the
 * next terminator.
 */
export class EconduitFramer {
  private held: Buffer[] = [];
  private size = 0;
  /** The last byte held is 0x04: a 0x04 at the start of the next chunk ends the message. */
  private endsWithEot = false;
  private dropping = false;

  constructor(private maxFrameBytes: number = ECONDUIT_MAX_FRAME_BYTES) {}

  /** Changes the bound for the messages to come (a gateway allows little before Register). */
  setMaxFrameBytes(bytes: number): void {
    this.maxFrameBytes = bytes;
  }

  /** Bytes held for an unfinished message. */
  get buffered(): number {
    return this.size;
  }

  push(chunk: Uint8Array): EconduitFramerEvent[] {
    const bytes = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const events: EconduitFramerEvent[] = [];
    let start = 0;
    if (this.endsWithEot && bytes.length > 0 && bytes[0] === EOT) {
      // The terminator was split between two reads: the held 0x04 is its first byte.
      this.end(events, Buffer.alloc(0), 1);
      start = 1;
    }
    for (;;) {
      const at = bytes.indexOf(TERMINATOR_BYTES, start);
      if (at < 0) break;
      this.end(events, bytes.subarray(start, at), 0);
      start = at + 2;
    }
    this.hold(events, bytes.subarray(start));
    return events;
  }

  /** A terminator was found: `tail` is the message's last bytes, `trim` held bytes to drop. */
  private end(events: EconduitFramerEvent[], tail: Buffer, trim: number): void {
    if (this.dropping) {
      this.dropping = false;
    } else if (this.size - trim + tail.length > this.maxFrameBytes) {
      events.push(this.oversize());
    } else {
      const whole = Buffer.concat([...this.held, tail]);
      events.push({
        type: 'frame',
        text: whole.toString('utf8', 0, whole.length - trim),
      });
    }
    this.held = [];
    this.size = 0;
    this.endsWithEot = false;
  }

  private hold(events: EconduitFramerEvent[], rest: Buffer): void {
    if (rest.length === 0) return;
    this.endsWithEot = rest[rest.length - 1] === EOT;
    if (this.dropping) return;
    // One byte of slack: the held 0x04 may be the first half of the terminator.
    if (this.size + rest.length > this.maxFrameBytes + 1) {
      events.push(this.oversize());
      this.held = [];
      this.size = 0;
      this.dropping = true;
      return;
    }
    // A copy: a slice would keep the socket's whole read buffer alive.
    this.held.push(Buffer.from(rest));
    this.size += rest.length;
  }

  private oversize(): EconduitFramerEvent {
    return {
      type: 'oversize',
      error: new EcrError(
        'FRAME_TOO_LARGE',
        `no 0x04 0x04 within ${this.maxFrameBytes} bytes: the message is too large`,
        { field: 'message', rule: `at most ${this.maxFrameBytes} bytes, ending with 0x04 0x04` },
      ),
    };
  }
}

/** A message as it goes on the wire: the text, then 0x04 0x04. */
export function encodeFrame(text: string): string {
  if (text.includes('\x04')) {
    // A 0x04 inside (or at the end of) the text would end the message early on the other side.
    throw new EcrError('INVALID_INPUT', 'message: must not contain the byte 0x04', {
      field: 'message',
      rule: 'no 0x04 inside a message',
    });
  }
  return text + ECONDUIT_TERMINATOR;
}
