import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { serve, type ListeningServer } from './serve.js';

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
  return serve(server, {
    port: options.port,
    host,
    ...(options.field === undefined ? {} : { field: options.field }),
  });
}
