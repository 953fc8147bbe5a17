import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { EcrError } from '../core/errors.js';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { ListeningServer } from './websocket.js';

export interface HttpReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/**
 * A small read-only HTTP server for simulators' status and control pages. GET and HEAD only;
 * request bodies are not read. Services with real APIs use Fastify instead.
 */
export async function listenHttp(options: {
  readonly host?: string;
  readonly port: number;
  /** Name of the port setting, for the error when the port is taken. @default 'port' */
  readonly field?: string;
  readonly handle: (path: string, query: URLSearchParams) => HttpReply;
}): Promise<ListeningServer> {
  const host = options.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let reply: HttpReply;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply = {
        status: 405,
        contentType: 'text/plain; charset=utf-8',
        body: 'method: must be GET\n',
      };
    } else {
      const url = new URL(req.url ?? '/', 'http://localhost');
      reply = options.handle(url.pathname, url.searchParams);
    }
    res.writeHead(reply.status, { 'content-type': reply.contentType, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : reply.body);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await listen(server, options.port, host, options.field);
  return {
    port: (server.address() as AddressInfo).port,
    host,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** `server.listen` as a promise, with a clear error for a port in use or not allowed. */
export function listen(server: Server, port: number, host: string, field = 'port'): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const why =
        error.code === 'EADDRINUSE'
          ? 'is already in use'
          : error.code === 'EACCES'
            ? 'needs privileges'
            : `cannot be used (${error.message})`;
      reject(
        new EcrError(
          'INVALID_INPUT',
          `${field}: ${port} on ${host} ${why}; choose another (0 picks a free one)`,
          { field, rule: 'must be a free port' },
        ),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
