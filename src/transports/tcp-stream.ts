import { createServer, type Socket } from 'node:net';
import { EcrError } from '../core/errors.js';
import {
  ByteInbox,
  DEFAULT_MAX_UNREAD_BYTES,
  type ByteStream,
  type StreamClosed,
} from './byte-stream.js';
import { serve, type ListeningServer } from './serve.js';
import { connectSocket } from './tcp.js';

/** How long `close()` waits for the peer to acknowledge the orderly close before dropping. */
export const TCP_STREAM_CLOSE_TIMEOUT_MS = 1_000;

/**
 * A TCP socket as a raw ByteStream: no framing, Nagle off (protocols such as Concert send
 * one-byte ACK/NAK and wait on them).
 */
class TcpByteStream implements ByteStream {
  readonly closed: Promise<StreamClosed>;
  private readonly inbox: ByteInbox;
  private failure: EcrError | undefined;

  constructor(
    private readonly socket: Socket,
    readonly remote: string,
    maxUnreadBytes: number,
  ) {
    this.inbox = new ByteInbox(remote, (error) => this.fail(error), maxUnreadBytes);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.failure === undefined) this.inbox.deliver(chunk);
    });
    socket.on('error', (error: Error) => {
      this.failure ??= new EcrError('LINK_LOST', `link to ${remote} failed: ${error.message}`, {
        cause: error,
      });
    });
    this.closed = new Promise((resolve) => {
      socket.once('close', () =>
        resolve(this.failure === undefined ? {} : { error: this.failure }),
      );
    });
  }

  get isOpen(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  write(bytes: Uint8Array): Promise<void> {
    if (!this.isOpen)
      return Promise.reject(
        this.failure ?? new EcrError('LINK_LOST', `link to ${this.remote} is closed`),
      );
    return new Promise((resolve, reject) => {
      // Copied: the caller may reuse its buffer before the kernel has taken every byte.
      this.socket.write(Buffer.from(bytes), (error) => {
        if (error === undefined || error === null) resolve();
        else
          reject(
            new EcrError('LINK_LOST', `send to ${this.remote} failed: ${error.message}`, {
              cause: error,
            }),
          );
      });
    });
  }

  onData(handler: ((chunk: Uint8Array) => void) | undefined): void {
    this.inbox.setHandler(handler);
  }

  async close(): Promise<void> {
    this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), TCP_STREAM_CLOSE_TIMEOUT_MS);
    await this.closed;
    clearTimeout(timer);
  }

  private fail(error: EcrError): void {
    this.failure ??= error;
    this.socket.destroy();
  }
}

export interface TcpStreamConnectOptions {
  readonly host: string;
  readonly port: number;
  /** @default DEFAULT_CONNECT_TIMEOUT_MS */
  readonly connectTimeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Bytes kept while no data handler is set. @default DEFAULT_MAX_UNREAD_BYTES */
  readonly maxUnreadBytes?: number;
}

/** Opens a raw TCP byte stream; TERMINAL_UNREACHABLE when no connection can be made in time. */
export function connectTcpStream(options: TcpStreamConnectOptions): Promise<ByteStream> {
  return connectSocket(
    options,
    (socket) =>
      new TcpByteStream(
        socket,
        `${socket.remoteAddress}:${socket.remotePort}`,
        options.maxUnreadBytes ?? DEFAULT_MAX_UNREAD_BYTES,
      ),
  );
}

export interface TcpStreamServerOptions {
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly onConnection: (stream: ByteStream) => void;
  /** Bytes kept per connection while no data handler is set. @default DEFAULT_MAX_UNREAD_BYTES */
  readonly maxUnreadBytes?: number;
}

/** A TCP server whose connections are raw ByteStreams (simulators). */
export function listenTcpStream(options: TcpStreamServerOptions): Promise<ListeningServer> {
  const server = createServer((socket) => {
    options.onConnection(
      new TcpByteStream(
        socket,
        `${socket.remoteAddress}:${socket.remotePort}`,
        options.maxUnreadBytes ?? DEFAULT_MAX_UNREAD_BYTES,
      ),
    );
  });
  return serve(server, { port: options.port, host: options.host ?? '127.0.0.1' });
}
