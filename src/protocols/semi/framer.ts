import { EcrError } from '../../core/errors.js';

/** Largest JSON object accepted from a SEMI terminal over raw TCP. */
export const SEMI_MAX_FRAME_BYTES = 64 * 1024;

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c;

/** What the framer found in the bytes it was given, in order. */
export type FramerEvent =
  | { readonly type: 'frame'; readonly text: string }
  /** Bytes outside any object that are not whitespace: skipped up to the next `{`. */
  | { readonly type: 'garbage'; readonly error: EcrError }
  /** An object past the bound: dropped whole (its bytes are counted, never kept). */
  | { readonly type: 'oversize'; readonly error: EcrError };

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/**
 * Frames JSON objects written back to back on a byte stream (protocols.md, "semi": no length
 * prefix, no delimiter, a read may hold part of one object or several). Sans-I/O: `push` takes
 * bytes and returns events. Tracks brace depth outside strings, escape-aware; whitespace
 * (newlines included) between objects is allowed. Resynchronisation: bytes between objects that
 * are not whitespace are reported once per run and skipped up to the next `{`; an object past
 * `maxFrameBytes` is reported and skipped to its end without being kept, so memory never grows
 * past the bound whatever the peer sends.
 */
export class JsonObjectFramer {
  private readonly maxFrameBytes: number;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  /** Bytes of the unfinished object from earlier chunks (grows to at most the bound). */
  private held = new Uint8Array(256);
  private heldLength = 0;
  private size = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Dropping an oversize object: keep tracking its end, keep none of its bytes. */
  private dropping = false;
  /** Inside a run of garbage between objects (reported once). */
  private inGarbage = false;

  constructor(maxFrameBytes: number = SEMI_MAX_FRAME_BYTES) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes held for an unfinished object. */
  get buffered(): number {
    return this.dropping ? 0 : this.size;
  }

  push(chunk: Uint8Array): FramerEvent[] {
    const events: FramerEvent[] = [];
    let start = -1; // where the current object's bytes begin in this chunk
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      if (this.depth === 0) {
        if (byte === OPEN) {
          this.depth = 1;
          this.inGarbage = false;
          this.size = 1;
          this.dropping = false;
          start = i;
        } else if (!isWhitespace(byte) && !this.inGarbage) {
          this.inGarbage = true;
          events.push({
            type: 'garbage',
            error: new EcrError(
              'PROTOCOL_ERROR',
              'bytes between JSON objects that are not JSON: skipped to the next "{"',
              {
                field: 'stream',
                rule: 'objects separated by nothing or whitespace',
              },
            ),
          });
        }
        continue;
      }
      this.size++;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (byte === BACKSLASH) this.escaped = true;
        else if (byte === QUOTE) this.inString = false;
      } else if (byte === QUOTE) {
        this.inString = true;
      } else if (byte === OPEN) {
        this.depth++;
      } else if (byte === CLOSE) {
        this.depth--;
      }
      if (!this.dropping && this.size > this.maxFrameBytes) {
        this.dropping = true;
        this.heldLength = 0;
        start = -1;
        events.push({
          type: 'oversize',
          error: new EcrError(
            'FRAME_TOO_LARGE',
            `a JSON object over ${this.maxFrameBytes} bytes: dropped`,
            {
              field: 'frame',
              rule: `at most ${this.maxFrameBytes} bytes`,
            },
          ),
        });
      }
      if (this.depth === 0) {
        if (!this.dropping) {
          const tail = chunk.subarray(start === -1 ? 0 : start, i + 1);
          events.push({ type: 'frame', text: this.decode(tail) });
        }
        this.reset();
        start = -1;
      }
    }
    if (this.depth > 0 && !this.dropping) {
      // Keep the unfinished object's bytes of this chunk (copied: the caller may reuse it).
      this.hold(chunk.subarray(start === -1 ? 0 : start));
    }
    return events;
  }

  private hold(bytes: Uint8Array): void {
    const needed = this.heldLength + bytes.length;
    if (needed > this.held.length) {
      const grown = new Uint8Array(
        Math.min(Math.max(needed, this.held.length * 2), this.maxFrameBytes),
      );
      grown.set(this.held.subarray(0, this.heldLength));
      this.held = grown;
    }
    this.held.set(bytes, this.heldLength);
    this.heldLength = needed;
  }

  private decode(tail: Uint8Array): string {
    if (this.heldLength === 0) return this.decoder.decode(tail);
    this.hold(tail);
    return this.decoder.decode(this.held.subarray(0, this.heldLength));
  }

  private reset(): void {
    this.heldLength = 0;
    this.size = 0;
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
    this.dropping = false;
  }
}
