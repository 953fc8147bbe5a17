import { EcrError } from '../core/errors.js';

/** Bytes kept while nobody reads a stream yet, before it is closed with FRAME_TOO_LARGE. */
export const DEFAULT_MAX_UNREAD_BYTES = 64 * 1024;

/** How a byte stream ended. `error` is set when it ended because something went wrong. */
export interface StreamClosed {
  readonly error?: EcrError;
}

/**
 * A raw, unframed byte pipe to one peer: a serial port, or a TCP socket carrying a protocol that
 * frames itself with control bytes (Concert). Protocol code talks only to this, never to a port
 * or a socket.
 */
export interface ByteStream {
  /** The device path (`/dev/ttyACM0`) or `host:port`. */
  readonly remote: string;
  readonly isOpen: boolean;
  /** Resolves when the stream has closed, for whatever reason (unplugged, reset, close). Never rejects. */
  readonly closed: Promise<StreamClosed>;
  /** Writes and drains `bytes`; rejects with LINK_LOST when the stream is gone. */
  write(bytes: Uint8Array): Promise<void>;
  /**
   * Sets the one data handler. Bytes that arrived before are delivered to it first; at most
   * DEFAULT_MAX_UNREAD_BYTES are kept before the stream is closed. `undefined` detaches it.
   */
  onData(handler: ((chunk: Uint8Array) => void) | undefined): void;
  /** Closes the stream; resolves once it is closed. */
  close(): Promise<void>;
}

/**
 * The receiving side every ByteStream shares: one handler; bytes that arrive while none is set
 * wait in a bounded backlog. Past the bound, `overflow` gets a FRAME_TOO_LARGE error and the
 * stream is expected to close.
 */
export class ByteInbox {
  private handler: ((chunk: Uint8Array) => void) | undefined;
  private readonly backlog: Uint8Array[] = [];
  private backlogBytes = 0;

  constructor(
    private readonly remote: string,
    private readonly overflow: (error: EcrError) => void,
    private readonly maxUnreadBytes = DEFAULT_MAX_UNREAD_BYTES,
  ) {}

  setHandler(handler: ((chunk: Uint8Array) => void) | undefined): void {
    this.handler = handler;
    while (this.handler !== undefined && this.backlog.length > 0) {
      const chunk = this.backlog.shift() as Uint8Array;
      this.backlogBytes -= chunk.length;
      this.handler(chunk);
    }
  }

  deliver(chunk: Uint8Array): void {
    if (this.handler !== undefined) {
      this.handler(chunk);
      return;
    }
    if (this.backlogBytes + chunk.length > this.maxUnreadBytes) {
      this.overflow(
        new EcrError(
          'FRAME_TOO_LARGE',
          `more than ${this.maxUnreadBytes} unread bytes from ${this.remote}`,
        ),
      );
      return;
    }
    // Copied: the caller may reuse its buffer.
    this.backlog.push(Uint8Array.from(chunk));
    this.backlogBytes += chunk.length;
  }
}
