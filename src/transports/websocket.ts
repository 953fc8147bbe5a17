import { createServer, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { EcrError } from '../core/errors.js';
import { withoutSecrets } from '../core/terminal-address.js';
import { serve, type ListeningServer } from './serve.js';

export type { ListeningServer } from './serve.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
  type LinkClosed,
  Inbox,
  type MessageLink,
} from './message-link.js';

/** A WebSocket as a MessageLink. Text frames only; binary frames are decoded as UTF-8. */
class WebSocketLink implements MessageLink {
  readonly closed: Promise<LinkClosed>;
  private readonly inbox: Inbox;
  private failure: EcrError | undefined;

  constructor(
    private readonly socket: WebSocket,
    readonly remote: string,
  ) {
    this.inbox = new Inbox(remote, (error) => {
      this.failure ??= error;
      this.close(1008, 'too many unread messages');
    });
    socket.on('message', (data: RawData) => this.inbox.deliver(rawToText(data)));
    socket.on('error', (error: Error & { code?: string }) => {
      this.failure ??=
        error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
          ? new EcrError('FRAME_TOO_LARGE', `a message from ${remote} exceeded the size bound`, {
              cause: error,
            })
          : new EcrError('LINK_LOST', `link to ${remote} failed: ${error.message}`, {
              cause: error,
            });
    });
    this.closed = new Promise((resolve) => {
      socket.once('close', (code: number, reason: Buffer) => {
        const closed: LinkClosed = { code, reason: reason.toString('utf8') };
        resolve(this.failure === undefined ? closed : { ...closed, error: this.failure });
      });
    });
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  send(text: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.isOpen) {
        reject(new EcrError('LINK_LOST', `link to ${this.remote} is closed`));
        return;
      }
      this.socket.send(text, (error) =>
        error === undefined || error === null
          ? resolve()
          : reject(
              new EcrError('LINK_LOST', `send to ${this.remote} failed: ${error.message}`, {
                cause: error,
              }),
            ),
      );
    });
  }

  onMessage(handler: ((text: string) => void) | undefined): void {
    this.inbox.setHandler(handler);
  }

  close(code = 1000, reason = ''): void {
    if (
      this.socket.readyState === WebSocket.CONNECTING ||
      this.socket.readyState === WebSocket.OPEN
    ) {
      this.socket.close(code, reason);
    }
  }

  terminate(): void {
    this.socket.terminate();
  }
}

function rawToText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
}

export interface WebSocketConnectOptions {
  /** @default DEFAULT_CONNECT_TIMEOUT_MS */
  readonly connectTimeoutMs?: number;
  /** @default DEFAULT_MAX_MESSAGE_BYTES */
  readonly maxMessageBytes?: number;
  readonly signal?: AbortSignal;
}

/**
 * Opens a WebSocket client link (permessage-deflate offered, RFC 7692). Fails with
 * TERMINAL_UNREACHABLE when no connection can be made in time, TERMINAL_AUTH_FAILED when the
 * server answers the handshake with an HTTP error status (PAYable: 404 for a bad token).
 */
export function connectWebSocket(
  url: string,
  options: WebSocketConnectOptions = {},
): Promise<MessageLink> {
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted === true) {
      reject(new EcrError('ABORTED', 'cancelled before connecting'));
      return;
    }
    const socket = new WebSocket(url, {
      handshakeTimeout: timeoutMs,
      maxPayload: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      perMessageDeflate: true,
    });
    const target = withoutSecrets(url);
    let settled = false;
    const fail = (error: EcrError): void => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      socket.terminate();
      reject(error);
    };
    const onAbort = (): void => fail(new EcrError('ABORTED', 'cancelled while connecting'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('unexpected-response', (_request, response) => {
      response.resume();
      fail(
        new EcrError(
          'TERMINAL_AUTH_FAILED',
          `${target} refused the handshake with HTTP ${response.statusCode}`,
        ),
      );
    });
    socket.once('error', (error: Error) =>
      fail(
        new EcrError('TERMINAL_UNREACHABLE', `cannot connect to ${target}: ${error.message}`, {
          cause: error,
        }),
      ),
    );
    socket.once('open', () => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      const raw = (socket as unknown as { _socket?: Socket })._socket;
      resolve(
        new WebSocketLink(
          socket,
          raw === undefined ? target : `${raw.remoteAddress}:${raw.remotePort}`,
        ),
      );
    });
  });
}

/** What a server learns about a connecting client before accepting it. */
export interface UpgradeRequest {
  readonly url: URL;
  readonly remote: string;
}

export type UpgradeDecision<C> =
  | { readonly accept: true; readonly context: C }
  | { readonly accept: false; readonly status: number };

export interface WebSocketServerOptions<C> {
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** @default DEFAULT_MAX_MESSAGE_BYTES */
  readonly maxMessageBytes?: number;
  /** Decides, from the handshake request, whether to accept (and with what context). */
  readonly authorize: (request: UpgradeRequest) => UpgradeDecision<C>;
  readonly onConnection: (link: MessageLink, context: C) => void;
}

/** A WebSocket server whose handshake can be refused with any HTTP status (PAYable: 404). */
export async function listenWebSocket<C>(
  options: WebSocketServerOptions<C>,
): Promise<ListeningServer> {
  const host = options.host ?? '127.0.0.1';
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    perMessageDeflate: true,
  });
  const http = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket only\n');
  });
  http.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    const remote = `/${socket.remoteAddress}:${socket.remotePort}`;
    let decision: UpgradeDecision<C>;
    try {
      decision = options.authorize({ url: new URL(request.url ?? '/', 'ws://localhost'), remote });
    } catch {
      decision = { accept: false, status: 400 };
    }
    if (!decision.accept) {
      socket.end(
        `HTTP/1.1 ${decision.status} Refused\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      );
      return;
    }
    const context = decision.context;
    wss.handleUpgrade(request, socket, head, (ws) =>
      options.onConnection(new WebSocketLink(ws, remote), context),
    );
  });
  return serve(http, {
    port: options.port,
    host,
    beforeClose: () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
    },
  });
}
