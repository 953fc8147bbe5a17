import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, TLSSocket } from 'node:tls';
import { EcrError } from '../core/errors.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  type LinkClosed,
  Inbox,
  type MessageLink,
} from './message-link.js';
import { serve, type ListeningServer } from './serve.js';
import {
  TLS_MIN_VERSION,
  tlsFailureReason,
  tlsPeerCertificate,
  type TlsClientConfig,
  type TlsPeerCertificate,
  type TlsServerConfig,
} from './tls.js';

/** What a stream framer reports; the protocol layer supplies the framer (e.g. SEMI's JSON objects). */
export type StreamEvent =
  | { readonly type: 'frame'; readonly text: string }
  | { readonly type: 'garbage' | 'oversize'; readonly error: EcrError };

export interface StreamFramer {
  push(chunk: Uint8Array): readonly StreamEvent[];
}

/** Hook for tests and simulators: how each outgoing message is cut into writes. */
export type WriteSplitter = (bytes: Uint8Array) => readonly Uint8Array[];

/**
 * What a link does with garbage between frames: `skip` it (the framer resynchronises on the next
 * frame), or `close` the link with the framer's PROTOCOL_ERROR — for a client that must not take
 * anything after broken bytes as an answer.
 */
export type GarbagePolicy = 'skip' | 'close';

/**
 * A raw TCP connection as a MessageLink: bytes in go through the injected framer, messages out
 * are written as UTF-8 with nothing added (the protocol's own encoding delimits them). Garbage
 * is skipped (the framer resynchronises); an oversize frame ends the link with FRAME_TOO_LARGE.
 */
class TcpLink implements MessageLink {
  readonly closed: Promise<LinkClosed>;
  private readonly inbox: Inbox;
  private failure: EcrError | undefined;

  constructor(
    private readonly socket: Socket,
    readonly remote: string,
    framer: StreamFramer,
    private readonly split: WriteSplitter | undefined,
    garbage: GarbagePolicy,
    readonly tlsPeer?: TlsPeerCertificate,
  ) {
    this.inbox = new Inbox(remote, (error) => this.fail(error));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      for (const event of framer.push(chunk)) {
        if (this.failure !== undefined) return;
        if (event.type === 'frame') this.inbox.deliver(event.text);
        else if (event.type === 'oversize' || garbage === 'close') this.fail(event.error);
      }
    });
    socket.on('error', (error: Error) => {
      this.failure ??= new EcrError('LINK_LOST', `link to ${remote} failed: ${error.message}`, {
        cause: error,
      });
    });
    this.closed = new Promise((resolve) => {
      socket.once('close', (hadError: boolean) => {
        const closed: LinkClosed = {
          code: hadError ? 1006 : 1000,
          reason: hadError ? 'transmission error' : '',
        };
        resolve(this.failure === undefined ? closed : { ...closed, error: this.failure });
      });
    });
  }

  get isOpen(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  send(text: string): Promise<void> {
    if (!this.isOpen)
      return Promise.reject(new EcrError('LINK_LOST', `link to ${this.remote} is closed`));
    const bytes = Buffer.from(text, 'utf8');
    const pieces = this.split === undefined ? [bytes] : this.split(bytes);
    return new Promise((resolve, reject) => {
      pieces.forEach((piece, i) => {
        const last = i === pieces.length - 1;
        this.socket.write(piece, (error) => {
          if (error !== undefined && error !== null) {
            reject(
              new EcrError('LINK_LOST', `send to ${this.remote} failed: ${error.message}`, {
                cause: error,
              }),
            );
          } else if (last) resolve();
        });
      });
    });
  }

  onMessage(handler: ((text: string) => void) | undefined): void {
    this.inbox.setHandler(handler);
  }

  close(): void {
    this.socket.end();
  }

  terminate(): void {
    this.socket.destroy();
  }

  private fail(error: EcrError): void {
    this.failure ??= error;
    this.socket.destroy();
  }
}

export interface TcpConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly framer: StreamFramer;
  /** @default DEFAULT_CONNECT_TIMEOUT_MS */
  readonly connectTimeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly split?: WriteSplitter;
  /** @default 'skip' */
  readonly garbage?: GarbagePolicy;
  /** Speak TLS, verifying the server's certificate (see TlsClientConfig). @default plain TCP */
  readonly tls?: TlsClientConfig;
}

/** Opens a TCP link; TERMINAL_UNREACHABLE when no connection can be made in time. */
export function connectTcp(options: TcpConnectOptions): Promise<MessageLink> {
  return connectSocket(
    options,
    (socket) =>
      new TcpLink(
        socket,
        `${socket.remoteAddress}:${socket.remotePort}`,
        options.framer,
        options.split,
        options.garbage ?? 'skip',
      ),
  );
}

export interface SocketConnectOptions {
  readonly host: string;
  readonly port: number;
  /** @default DEFAULT_CONNECT_TIMEOUT_MS */
  readonly connectTimeoutMs?: number;
  readonly signal?: AbortSignal;
  /**
   * Speak TLS: the link is up only once the handshake is done and the server's certificate
   * verified (chain and host name); a server that does not speak TLS, or whose certificate is
   * not trusted, is TERMINAL_UNREACHABLE. @default plain TCP
   */
  readonly tls?: TlsClientConfig;
}

/**
 * Connects a TCP socket and hands it to `wrap` in the same tick as `connect`, so the wrapper's
 * listeners are in place before any byte can arrive. TERMINAL_UNREACHABLE when no connection can
 * be made in time; ABORTED when `signal` fires first.
 */
export function connectSocket<T>(
  options: SocketConnectOptions,
  wrap: (socket: Socket) => T,
): Promise<T> {
  const target = `${options.host}:${options.port}`;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted === true) {
      reject(new EcrError('ABORTED', 'cancelled before connecting'));
      return;
    }
    const tls = options.tls;
    const socket =
      tls === undefined
        ? createConnection({ host: options.host, port: options.port })
        : tlsConnect({
            host: options.host,
            port: options.port,
            minVersion: TLS_MIN_VERSION,
            rejectUnauthorized: true,
            ...(tls.ca === undefined ? {} : { ca: tls.ca }),
            ...(tls.cert === undefined || tls.key === undefined
              ? {}
              : { cert: tls.cert, key: tls.key }),
          });
    let settled = false;
    const finish = (error?: EcrError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      if (error === undefined) {
        resolve(wrap(socket));
      } else {
        socket.destroy();
        reject(error);
      }
    };
    const onError = (error: Error): void => {
      const why = tlsFailureReason((error as NodeJS.ErrnoException).code);
      finish(
        new EcrError(
          'TERMINAL_UNREACHABLE',
          `cannot connect to ${target}: ${why === undefined ? error.message : `${why} (${error.message})`}`,
          { cause: error },
        ),
      );
    };
    const onAbort = (): void => finish(new EcrError('ABORTED', 'cancelled while connecting'));
    const timer = setTimeout(
      () =>
        finish(
          new EcrError(
            'TERMINAL_UNREACHABLE',
            `cannot connect to ${target} within ${options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS} ms`,
          ),
        ),
      options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    );
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
    // Over TLS the link is up once the server's certificate is verified, not at the TCP connect.
    socket.once(tls === undefined ? 'connect' : 'secureConnect', () => finish());
  });
}

export interface TcpServerOptions {
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** A fresh framer per connection. */
  readonly framer: () => StreamFramer;
  readonly onConnection: (link: MessageLink) => void;
  readonly split?: WriteSplitter;
  /** Connections held at most; past it new ones are refused (closed at once). */
  readonly maxConnections?: number;
  /**
   * Speak TLS only: a connection is handed to `onConnection` once its handshake is done; one
   * that sends anything else (plain TCP) or does not finish the handshake within
   * `handshakeTimeoutMs` is closed and reported to `onTlsError`. @default plain TCP
   */
  readonly tls?: TlsServerConfig & {
    readonly handshakeTimeoutMs?: number;
    /**
     * Handshakes in progress from one address past which a new connection from it is closed at
     * once: a client that opens connections and never says ClientHello cannot fill the
     * listener. @default DEFAULT_TLS_HANDSHAKES_PER_ADDRESS
     */
    readonly maxHandshakesPerAddress?: number;
    /**
     * Ask every client for a certificate and check it against this CA (PEM): each link then
     * carries `tlsPeer`. A client without one, or with one the CA did not sign, still connects
     * (the protocol above decides what it may do). @default no client certificates asked for
     */
    readonly clientCa?: string;
  };
  /** A connection refused for its TLS handshake: its address and why (no bytes of it). */
  readonly onTlsError?: (remote: string, reason: string) => void;
}

/** Longest wait for a TLS handshake when none is given (Node's own default is 120 s). */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** TLS handshakes in progress allowed from one address when no other bound is given. */
export const DEFAULT_TLS_HANDSHAKES_PER_ADDRESS = 64;

/**
 * The TLS side of `listenTcp`: each connection is counted against its address from its first
 * moment (not only once the handshake is done, as a listening `tls.Server` would), must finish
 * its handshake within `handshakeTimeoutMs`, and only then reaches `accept`. A plain client, a
 * failed or late handshake, or one address past its bound is closed and reported.
 *
 * The handshake itself is run by a `tls.Server` that never listens: each raw connection is handed
 * to it (its `connection` event), and it answers with `secureConnection` or `tlsClientError`. Only
 * a `tls.Server` records whether a client certificate was verified (`authorized`); a TLSSocket
 * made by hand never does. Its two answers are matched to the connection by the peer's address
 * and port, which name one open TCP connection to this port.
 */
function handshakeFirst(
  tls: NonNullable<TcpServerOptions['tls']>,
  options: TcpServerOptions,
  accept: (socket: TLSSocket) => void,
): (raw: Socket) => void {
  const timeoutMs = tls.handshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS;
  const perAddress = tls.maxHandshakesPerAddress ?? DEFAULT_TLS_HANDSHAKES_PER_ADDRESS;
  const pending = new Map<string, number>();
  const handshakes = new Map<
    string,
    { readonly done: (secure: TLSSocket) => void; readonly failed: (reason: string) => void }
  >();
  const peer = (socket: Socket) => `${socket.remoteAddress}|${socket.remotePort}`;
  const server = createTlsServer({
    cert: tls.cert,
    key: tls.key,
    minVersion: TLS_MIN_VERSION,
    // Our own timer below bounds it; this one only keeps Node's 120 s default out of the way.
    handshakeTimeout: timeoutMs,
    ...(tls.clientCa === undefined
      ? {}
      : { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false }),
  });
  server.on('secureConnection', (secure: TLSSocket) => handshakes.get(peer(secure))?.done(secure));
  server.on('tlsClientError', (error: NodeJS.ErrnoException, secure: TLSSocket) =>
    handshakes.get(peer(secure))?.failed(error.code ?? error.message),
  );
  return (raw) => {
    const address = raw.remoteAddress ?? '';
    const remote = `${raw.remoteAddress}:${raw.remotePort}`;
    const count = (pending.get(address) ?? 0) + 1;
    if (count > perAddress) {
      options.onTlsError?.(remote, 'too many TLS handshakes in progress from this address');
      raw.destroy();
      return;
    }
    pending.set(address, count);
    const key = peer(raw);
    let open = true;
    // Settling removes the entry: neither answer of the TLS server reaches a settled connection.
    const settle = (): void => {
      if (!open) return;
      open = false;
      clearTimeout(timer);
      if (handshakes.get(key) === entry) handshakes.delete(key);
      const left = (pending.get(address) ?? 1) - 1;
      if (left > 0) pending.set(address, left);
      else pending.delete(address);
    };
    const refuse = (reason: string): void => {
      if (!open) return;
      settle();
      options.onTlsError?.(remote, reason);
      // The TLS socket the server made runs on this socket's handle: it goes with it.
      raw.destroy();
    };
    const entry = {
      done: (socket: TLSSocket): void => {
        settle();
        accept(socket);
      },
      failed: refuse,
    };
    handshakes.set(key, entry);
    const timer = setTimeout(() => refuse('TLS handshake not done in time'), timeoutMs);
    raw.once('close', () => refuse('closed during the TLS handshake'));
    server.emit('connection', raw);
  };
}

/** A TCP server whose connections are MessageLinks (simulators). */
export async function listenTcp(options: TcpServerOptions): Promise<ListeningServer> {
  const host = options.host ?? '127.0.0.1';
  const accept = (socket: Socket) => {
    options.onConnection(
      new TcpLink(
        socket,
        `${socket.remoteAddress}:${socket.remotePort}`,
        options.framer(),
        options.split,
        'skip',
        options.tls?.clientCa !== undefined && socket instanceof TLSSocket
          ? tlsPeerCertificate(socket)
          : undefined,
      ),
    );
  };
  const tls = options.tls;
  const server: Server = createServer(
    tls === undefined ? accept : handshakeFirst(tls, options, accept),
  );
  if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections;
  return serve(server, { port: options.port, host });
}
