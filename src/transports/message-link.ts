import { EcrError } from '../core/errors.js';
import type { TlsPeerCertificate } from './tls.js';

/** Messages buffered while nobody listens yet (e.g. a greeting sent before a handler is set). */
export const DEFAULT_MAX_BUFFERED_MESSAGES = 64;
/** Largest message accepted from a peer, in bytes. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;
/** Bound on opening a connection (TCP + handshake). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** How a link ended. `error` is set when it ended because something went wrong. */
export interface LinkClosed {
  readonly code: number;
  readonly reason: string;
  readonly error?: EcrError;
}

/**
 * A message pipe to one peer: a WebSocket (`websocket.ts`), a TCP socket through a framer
 * (`tcp.ts`), or an eConduit terminal's channel through its gateway connection, on either end.
 * Serial ports and TCP protocols that frame themselves with control bytes (Concert) carry bytes
 * instead: see `ByteStream`. Protocol code talks only to this, never to a socket.
 */
export interface MessageLink {
  /** Peer address as `host:port`. */
  readonly remote: string;
  readonly isOpen: boolean;
  /** Resolves when the link has closed, for whatever reason. Never rejects. */
  readonly closed: Promise<LinkClosed>;
  /** Bytes sent but not yet taken by the peer's side of the connection, where known. */
  readonly bufferedBytes?: number;
  /**
   * A TLS listener that asks for client certificates: what the peer's certificate proved (checked
   * against the listener's client CA during the handshake). Undefined on every other link.
   */
  readonly tlsPeer?: TlsPeerCertificate;
  send(text: string): Promise<void>;
  /**
   * Sets the one message handler. Messages that arrived before are delivered to it first, in
   * order; at most DEFAULT_MAX_BUFFERED_MESSAGES are kept before the link is closed. `undefined`
   * detaches the handler: messages buffer again until the next one is set.
   */
  onMessage(handler: ((text: string) => void) | undefined): void;
  /** Orderly close. */
  close(code?: number, reason?: string): void;
  /** Drops the connection without a closing handshake (a pulled cable). */
  terminate(): void;
}

/**
 * Where a driver gets a link for each request when it does not dial the terminal itself: a
 * terminal that keeps its own connection open to a gateway (eConduit) is reached through the
 * gateway's channel to it. `open` fails with TERMINAL_OFFLINE when there is none right now.
 */
export interface LinkSource {
  /** The terminal, as one-at-a-time is enforced on (`econduit://29531204`). */
  readonly endpoint: string;
  open(signal?: AbortSignal): Promise<MessageLink>;
}

/**
 * The receiving side every MessageLink shares: one handler; messages that arrive while none is
 * set wait in a bounded backlog. Past the bound, `overflow` gets a FRAME_TOO_LARGE error and
 * the link is expected to close.
 */
export class Inbox {
  private handler: ((text: string) => void) | undefined;
  private readonly backlog: string[] = [];

  constructor(
    private readonly remote: string,
    private readonly overflow: (error: EcrError) => void,
  ) {}

  setHandler(handler: ((text: string) => void) | undefined): void {
    this.handler = handler;
    // A handler may detach itself while the backlog drains: keep the rest for the next one.
    while (this.handler !== undefined && this.backlog.length > 0)
      this.handler(this.backlog.shift() as string);
  }

  deliver(text: string): void {
    if (this.handler !== undefined) {
      this.handler(text);
      return;
    }
    if (this.backlog.length >= DEFAULT_MAX_BUFFERED_MESSAGES) {
      this.overflow(
        new EcrError(
          'FRAME_TOO_LARGE',
          `more than ${DEFAULT_MAX_BUFFERED_MESSAGES} unread messages from ${this.remote}`,
        ),
      );
      return;
    }
    this.backlog.push(text);
  }
}
