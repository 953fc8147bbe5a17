import { createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonObjectFramer } from '../../src/protocols/semi/framer.js';
import type { MessageLink } from '../../src/transports/message-link.js';
import { connectTcp, listenTcp } from '../../src/transports/tcp.js';
import type { ListeningServer } from '../../src/transports/websocket.js';
import { waitFor } from '../helpers.js';

const closers: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const oneByteWrites = (bytes: Uint8Array): Uint8Array[] =>
  Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));

async function echoServer(split?: (bytes: Uint8Array) => Uint8Array[]): Promise<ListeningServer> {
  const server = await listenTcp({
    port: 0,
    framer: () => new JsonObjectFramer(),
    onConnection: (link) => link.onMessage((text) => void link.send(text)),
    ...(split === undefined ? {} : { split }),
  });
  closers.push(() => server.close());
  return server;
}

async function client(port: number, maxFrameBytes?: number): Promise<MessageLink> {
  const link = await connectTcp({
    host: '127.0.0.1',
    port,
    framer: new JsonObjectFramer(maxFrameBytes),
  });
  closers.push(() => link.terminate());
  return link;
}

describe('TCP links with the SEMI framer', () => {
  it('messages round-trip, even when every write is a single byte', async () => {
    const server = await echoServer(oneByteWrites);
    const link = await client(server.port);
    const got: string[] = [];
    link.onMessage((text) => got.push(text));
    await link.send('{"TRAN_MODE":"1","TRAN_CODE":"1","AMOUNT":"100"}');
    await link.send('{"STATE":"0","TXT":"{€}"}');
    await waitFor(() => got.length === 2);
    expect(got).toEqual([
      '{"TRAN_MODE":"1","TRAN_CODE":"1","AMOUNT":"100"}',
      '{"STATE":"0","TXT":"{€}"}',
    ]);
  });

  it('garbage from the peer is skipped; an object over the bound ends the link with FRAME_TOO_LARGE', async () => {
    const raw = createServer((socket) => {
      socket.write('junk{"STATE":"0"}\n');
      setTimeout(() => socket.write(JSON.stringify({ BIG: 'x'.repeat(4096) })), 50);
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => raw.close(resolve)));
    const link = await client((raw.address() as AddressInfo).port, 1024);
    const got: string[] = [];
    link.onMessage((text) => got.push(text));
    const closed = await link.closed;
    expect(got).toEqual(['{"STATE":"0"}']);
    expect(closed.error?.code).toBe('FRAME_TOO_LARGE');
  });

  it('nothing listening → TERMINAL_UNREACHABLE; an aborted connect → ABORTED', async () => {
    const server = await echoServer();
    const port = server.port;
    await server.close();
    closers.pop();
    await expect(
      connectTcp({ host: '127.0.0.1', port, framer: new JsonObjectFramer() }),
    ).rejects.toMatchObject({
      code: 'TERMINAL_UNREACHABLE',
    });
    await expect(
      connectTcp({
        host: '127.0.0.1',
        port,
        framer: new JsonObjectFramer(),
        signal: AbortSignal.abort(),
      }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('a closed link refuses to send, with LINK_LOST', async () => {
    const server = await echoServer();
    const link = await client(server.port);
    link.terminate();
    await link.closed;
    await expect(link.send('{}')).rejects.toMatchObject({ code: 'LINK_LOST' });
  });
});
