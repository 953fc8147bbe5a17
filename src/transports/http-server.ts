import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { EcrError } from '../core/errors.js';
import { serve, type ListeningServer } from './serve.js';

export interface HttpReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/** What a handler sees of a request besides its path and query. */
export interface HttpRequestInfo {
  readonly method: string;
  /** The body as UTF-8 text; empty for GET and HEAD (their bodies are never read). */
  readonly body: string;
}

/** Largest request body read where bodies are taken (413 past it). */
export const HTTP_SERVER_MAX_BODY_BYTES = 4 * 1024;
/** Time a client has to send a whole request, headers and body (slow uploads are cut off). */
export const HTTP_SERVER_REQUEST_TIMEOUT_MS = 10_000;

/** Methods whose bodies a server may take, besides GET and HEAD. */
export type HttpBodyMethod = 'POST' | 'PUT' | 'DELETE';

function errorReply(status: number, error: EcrError): HttpReply {
  return {
    status,
    contentType: 'application/json',
    body: `${JSON.stringify({ error: error.toJSON() })}\n`,
  };
}

/**
 * A small HTTP server for simulators' status and control pages. GET and HEAD, plus the methods
 * named in `bodyMethods`, whose bodies are read up to `maxBodyBytes` (413 past it, without
 * reading the rest into memory). Services with real APIs use Fastify instead.
 */
export async function listenHttp(options: {
  readonly host?: string;
  readonly port: number;
  /** Name of the port setting, for the error when the port is taken. @default 'port' */
  readonly field?: string;
  /** Methods besides GET and HEAD whose requests reach `handle`, with their body. @default [] */
  readonly bodyMethods?: readonly HttpBodyMethod[];
  /** @default HTTP_SERVER_MAX_BODY_BYTES */
  readonly maxBodyBytes?: number;
  readonly handle: (path: string, query: URLSearchParams, request: HttpRequestInfo) => HttpReply;
}): Promise<ListeningServer> {
  const host = options.host ?? '127.0.0.1';
  const bodyMethods: readonly string[] = options.bodyMethods ?? [];
  const maxBodyBytes = options.maxBodyBytes ?? HTTP_SERVER_MAX_BODY_BYTES;
  const allowed = ['GET', ...bodyMethods].join(' or ');
  const server = createServer(
    {
      requestTimeout: HTTP_SERVER_REQUEST_TIMEOUT_MS,
      headersTimeout: HTTP_SERVER_REQUEST_TIMEOUT_MS,
    },
    (req: IncomingMessage, res: ServerResponse) => {
      const send = (reply: HttpReply): void => {
        res.writeHead(reply.status, {
          'content-type': reply.contentType,
          'cache-control': 'no-store',
        });
        res.end(req.method === 'HEAD' ? undefined : reply.body);
      };
      const method = req.method ?? 'GET';
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (method === 'GET' || method === 'HEAD') {
        send(options.handle(url.pathname, url.searchParams, { method, body: '' }));
        return;
      }
      if (!bodyMethods.includes(method)) {
        send({
          status: 405,
          contentType: 'text/plain; charset=utf-8',
          body: `method: must be ${allowed}\n`,
        });
        return;
      }
      // Answered at once; the rest of the body is read and dropped (within the request timeout)
      // rather than left unread, which would reset the connection under the answer.
      const tooLarge = (): void =>
        send(
          errorReply(
            413,
            new EcrError('INVALID_INPUT', `body: must be at most ${maxBodyBytes} bytes`, {
              field: 'body',
              rule: `at most ${maxBodyBytes} bytes`,
            }),
          ),
        );
      const chunks: Buffer[] = [];
      let size = 0;
      let refused = Number(req.headers['content-length'] ?? 0) > maxBodyBytes;
      if (refused) tooLarge();
      req.on('data', (chunk: Buffer) => {
        if (refused) return;
        size += chunk.length;
        if (size > maxBodyBytes) {
          refused = true;
          chunks.length = 0;
          tooLarge();
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => {
        if (refused) return;
        const body = Buffer.concat(chunks).toString('utf8');
        send(options.handle(url.pathname, url.searchParams, { method, body }));
      });
      req.on('error', () => res.destroy());
    },
  );
  return serve(server, {
    port: options.port,
    host,
    ...(options.field === undefined ? {} : { field: options.field }),
  });
}
