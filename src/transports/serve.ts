import type { AddressInfo, Server, Socket } from 'node:net';
import { EcrError } from '../core/errors.js';

/** A server that is listening, and how to stop it. */
export interface ListeningServer {
  readonly port: number;
  readonly host: string;
  /** Connections open now. */
  readonly connections: number;
  /** Whether it still accepts connections (false once closed, whoever closed it). */
  readonly listening: boolean;
  /** Stops accepting, drops every open connection, and resolves once closed. */
  close(): Promise<void>;
}

/**
 * Starts `server` on host:port and tracks its connections, so that `close` ends them instead of
 * waiting for peers to hang up. A port in use or not allowed is an INVALID_INPUT naming `field`.
 * `beforeClose` runs first (e.g. a WebSocket server terminating its clients).
 */
export async function serve(
  server: Server,
  options: {
    readonly port: number;
    readonly host: string;
    readonly field?: string;
    readonly beforeClose?: () => void;
  },
): Promise<ListeningServer> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const field = options.field ?? 'port';
  await new Promise<void>((resolve, reject) => {
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
          `${field}: ${options.port} on ${options.host} ${why}; choose another (0 picks a free one)`,
          {
            field,
            rule: 'must be a free port',
          },
        ),
      );
    };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    host: options.host,
    get connections() {
      return sockets.size;
    },
    get listening() {
      return server.listening;
    },
    close: () =>
      new Promise<void>((resolve) => {
        options.beforeClose?.();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
