import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { waitFor } from '../helpers.js';
import { FaultProxy, type Fault, type Framing } from './fault-proxy.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A server that records what it receives and echoes it; and a client through the proxy. */
async function through(faults: readonly Fault[], framing?: Framing) {
  const received: Buffer[] = [];
  let serverClosed = false;
  const server: Server = createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      socket.write(chunk);
    });
    socket.on('close', () => (serverClosed = true));
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const proxy = await new FaultProxy(
    { host: '127.0.0.1', port },
    { faults, ...(framing === undefined ? {} : { framing }) },
  ).start();
  cleanups.push(async () => {
    await proxy.stop();
    server.close();
  });
  const client: Socket = connect(proxy.port, '127.0.0.1');
  client.on('error', () => {});
  await once(client, 'connect');
  const echoed: Buffer[] = [];
  let clientClosed = false;
  client.on('data', (chunk: Buffer) => echoed.push(chunk));
  client.on('close', () => (clientClosed = true));
  cleanups.push(() => void client.destroy());
  return {
    proxy,
    client,
    received: () => Buffer.concat(received).toString('latin1'),
    receivedChunks: () => received.length,
    echoed: () => Buffer.concat(echoed).toString('latin1'),
    serverClosed: () => serverClosed,
    clientClosed: () => clientClosed,
  };
}

const EOT = { type: 'delimiter', delimiter: Buffer.from([0x04, 0x04]) } as const;

describe('FaultProxy', () => {
  it('passes bytes both ways untouched without faults', async () => {
    const t = await through([]);
    t.client.write('hello');
    await waitFor(() => t.echoed() === 'hello', 5_000, 'the echo');
    expect(t.proxy.stats).toMatchObject({ connections: 1, bytes: { up: 5, down: 5 } });
  });

  it('cuts the connection at a chosen byte offset: exactly those bytes arrive, both ends close', async () => {
    const t = await through([{ direction: 'up', kind: 'cut', at: { byte: 7 } }]);
    t.client.write('0123');
    t.client.write('456789');
    await waitFor(() => t.serverClosed() && t.clientClosed(), 5_000, 'both ends closed');
    expect(t.received()).toBe('0123456');
  });

  it('cuts at a message number in the answer direction (delimited messages)', async () => {
    const t = await through([{ direction: 'down', kind: 'cut', at: { message: 1 } }], EOT);
    t.client.write('one\x04\x04two\x04\x04three\x04\x04');
    await waitFor(() => t.clientClosed(), 5_000, 'the cut');
    expect(t.echoed()).toBe('one\x04\x04');
    expect(t.received()).toContain('three');
  });

  it('duplicates, drops and delays messages', async () => {
    const dup = await through(
      [{ direction: 'up', kind: 'duplicate', at: { message: 1 }, count: 1 }],
      EOT,
    );
    dup.client.write('a\x04\x04b\x04\x04c\x04\x04');
    await waitFor(() => dup.received().length === 12, 5_000, 'the duplicate');
    expect(dup.received()).toBe('a\x04\x04b\x04\x04b\x04\x04c\x04\x04');

    const drop = await through(
      [{ direction: 'up', kind: 'drop', at: { message: 0 }, count: 1 }],
      EOT,
    );
    drop.client.write('a\x04\x04b\x04\x04');
    await waitFor(() => drop.received().length === 3, 5_000, 'the rest');
    expect(drop.received()).toBe('b\x04\x04');

    const slow = await through([{ direction: 'down', kind: 'delay', ms: 300 }]);
    const sent = Date.now();
    slow.client.write('x');
    await waitFor(() => slow.echoed() === 'x', 5_000, 'the delayed echo');
    expect(Date.now() - sent).toBeGreaterThanOrEqual(280);
  });

  it('injects a fault into an open connection only: cut inside the first message holding a text', async () => {
    const t = await through([], EOT);
    t.client.write('idle\x04\x04');
    await waitFor(() => t.echoed() === 'idle\x04\x04', 5_000, 'the first echo');
    t.proxy.injectFaults([{ direction: 'up', kind: 'cut', at: { contains: 'KEY', offset: 4 } }]);
    t.client.write('plain\x04\x04ref=KEY;rest\x04\x04after\x04\x04');
    await waitFor(() => t.serverClosed() && t.clientClosed(), 5_000, 'the cut');
    expect(t.received()).toBe('idle\x04\x04plain\x04\x04ref=');
    // A new connection does not get the injected fault.
    const again = connect(t.proxy.port, '127.0.0.1');
    again.on('error', () => {});
    cleanups.push(() => void again.destroy());
    const echoed: Buffer[] = [];
    again.on('data', (chunk: Buffer) => echoed.push(chunk));
    again.write('ref=KEY\x04\x04');
    await waitFor(() => Buffer.concat(echoed).toString() === 'ref=KEY\x04\x04', 5_000, 'the echo');
  });

  it('drops every open connection and keeps accepting new ones', async () => {
    const t = await through([]);
    t.proxy.dropConnections();
    await waitFor(() => t.clientClosed() && t.serverClosed(), 5_000, 'both ends closed');
    const again = connect(t.proxy.port, '127.0.0.1');
    again.on('error', () => {});
    cleanups.push(() => void again.destroy());
    await once(again, 'connect');
    expect(t.proxy.stats.connections).toBe(2);
  });

  it('fragments a message into pieces that arrive apart', async () => {
    const t = await through([{ direction: 'up', kind: 'fragment', bytes: 2, gapMs: 20 }]);
    t.client.write('abcdefgh');
    await waitFor(() => t.received() === 'abcdefgh', 5_000, 'all pieces');
    expect(t.receivedChunks()).toBeGreaterThanOrEqual(3);
  });

  it('blackholes: nothing passes any more and nobody is told', async () => {
    const t = await through([{ direction: 'up', kind: 'blackhole', at: { byte: 3 } }]);
    t.client.write('abcdef');
    await sleep(300);
    t.client.write('more');
    await sleep(300);
    expect(t.received()).toBe('abc');
    expect(t.echoed()).toBe('');
    expect(t.clientClosed()).toBe(false);
    expect(t.serverClosed()).toBe(false);
  });

  it('the WebSocket-aware variant counts frames after the upgrade: cut after the second answer', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`echo:${String(data)}`)));
    cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    const address = wss.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    // Down messages: 0 is the 101 answer, then one frame per echo.
    const proxy = await new FaultProxy(
      { host: '127.0.0.1', port },
      {
        framing: { type: 'websocket' },
        faults: [{ direction: 'down', kind: 'cut', at: { message: 3 } }],
      },
    ).start();
    cleanups.push(() => proxy.stop());
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}`);
    const answers: string[] = [];
    ws.on('message', (data) => answers.push(String(data)));
    ws.on('error', () => {});
    await once(ws, 'open');
    for (const text of ['one', 'two', 'three']) ws.send(text);
    await once(ws, 'close');
    expect(answers).toEqual(['echo:one', 'echo:two']);
    expect(proxy.stats.messages.up).toBeGreaterThanOrEqual(4);
  });
});
