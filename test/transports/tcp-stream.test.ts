import { spawn } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_UNREAD_BYTES, type ByteStream } from '../../src/transports/byte-stream.js';
import type { ListeningServer } from '../../src/transports/serve.js';
import { connectTcpStream, listenTcpStream } from '../../src/transports/tcp-stream.js';
import { closedPort, waitFor } from '../helpers.js';

const closers: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function server(onConnection: (stream: ByteStream) => void): Promise<ListeningServer> {
  const listening = await listenTcpStream({ port: 0, onConnection });
  closers.push(() => listening.close());
  return listening;
}

async function client(port: number): Promise<ByteStream> {
  const stream = await connectTcpStream({ host: '127.0.0.1', port });
  closers.push(() => stream.close());
  return stream;
}

function collect(stream: ByteStream): { bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  stream.onData((chunk) => chunks.push(Buffer.from(chunk)));
  return { bytes: () => Buffer.concat(chunks) };
}

/**
 * A port where connecting hangs: a listener in a child process whose event loop is blocked, so
 * it never accepts; once its backlog is full the kernel drops further SYNs.
 */
async function unansweredPort(): Promise<number> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
        process.stdout.write(s.address().port + '\\n');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise((resolve) => child.once('close', resolve));
  closers.push(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  const port = await new Promise<number>((resolve) =>
    child.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))),
  );
  // Fill the backlog: connect until a connection no longer completes.
  for (let i = 0; i < 16; i++) {
    const socket: Socket = connect(port, '127.0.0.1');
    closers.push(() => void socket.destroy());
    const connected = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      setTimeout(() => resolve(false), 300);
    });
    if (!connected) return port;
  }
  throw new Error('the backlog never filled');
}

const allByteValues = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

describe('raw TCP byte streams', () => {
  it('bytes round-trip unchanged (all 256 values and a 64 KiB burst) through an echo server', async () => {
    const echo = await server((stream) => stream.onData((chunk) => void stream.write(chunk)));
    const stream = await client(echo.port);
    const got = collect(stream);
    const burst = Buffer.alloc(64 * 1024);
    for (let i = 0; i < burst.length; i++) burst[i] = (i * 7 + (i >> 9)) & 0xff;
    await stream.write(allByteValues);
    await stream.write(burst);
    await waitFor(() => got.bytes().length >= 256 + burst.length);
    expect(got.bytes().equals(Buffer.concat([allByteValues, burst]))).toBe(true);
    expect(stream.remote).toBe(`127.0.0.1:${echo.port}`);
  });

  it('bytes that arrive before a data handler is set wait, then reach it first, in order', async () => {
    const greeter = await server((stream) => {
      void stream.write(Buffer.from([0x05])); // ENQ, as a terminal might greet
      void stream.write(Buffer.from('hello'));
    });
    const stream = await client(greeter.port);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const got = collect(stream);
    expect(got.bytes()).toEqual(Buffer.from('\x05hello', 'latin1'));
  });

  it('the server side also keeps bytes until its handler is set', async () => {
    let accepted: ByteStream | undefined;
    const listening = await server((stream) => (accepted = stream));
    const stream = await client(listening.port);
    await stream.write(Buffer.from('early'));
    await waitFor(() => accepted !== undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const got = collect(accepted as ByteStream);
    expect(got.bytes().toString()).toBe('early');
  });

  it('more unread bytes than the bound, with no handler, close the stream with FRAME_TOO_LARGE', async () => {
    const flood = await server(
      (stream) => void stream.write(Buffer.alloc(DEFAULT_MAX_UNREAD_BYTES + 1, 1)).catch(() => {}),
    );
    const stream = await client(flood.port);
    const closed = await stream.closed;
    expect(closed.error?.code).toBe('FRAME_TOO_LARGE');
    await expect(stream.write(Buffer.from('x'))).rejects.toMatchObject({ code: 'FRAME_TOO_LARGE' });
  });

  it('the peer hanging up resolves `closed`; later writes reject with LINK_LOST', async () => {
    const hangUp = await server((stream) => void stream.close());
    const stream = await client(hangUp.port);
    expect(await stream.closed).toEqual({});
    expect(stream.isOpen).toBe(false);
    await expect(stream.write(Buffer.from('x'))).rejects.toMatchObject({ code: 'LINK_LOST' });
  });

  it('close() ends the stream even when the peer never hangs up its side', async () => {
    const raw = createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('data', () => {});
      closers.push(() => void socket.destroy());
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => raw.close(resolve)));
    const stream = await client((raw.address() as AddressInfo).port);
    const started = Date.now();
    await stream.close();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(stream.isOpen).toBe(false);
  });

  it('nothing listening → TERMINAL_UNREACHABLE naming host:port', async () => {
    const port = await closedPort();
    await expect(connectTcpStream({ host: '127.0.0.1', port })).rejects.toMatchObject({
      code: 'TERMINAL_UNREACHABLE',
      message: expect.stringContaining(`127.0.0.1:${port}`),
    });
  });

  it('a connection that never completes → TERMINAL_UNREACHABLE after connectTimeoutMs', async () => {
    const port = await unansweredPort();
    const started = Date.now();
    await expect(
      connectTcpStream({ host: '127.0.0.1', port, connectTimeoutMs: 300 }),
    ).rejects.toMatchObject({
      code: 'TERMINAL_UNREACHABLE',
      message: `cannot connect to 127.0.0.1:${port} within 300 ms`,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('aborting a connection that hangs → ABORTED at once', async () => {
    const port = await unansweredPort();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(
      connectTcpStream({ host: '127.0.0.1', port, signal: controller.signal }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
  });
});
