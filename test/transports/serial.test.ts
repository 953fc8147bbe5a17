import { spawn } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { EcrError } from '../../src/core/errors.js';
import { DEFAULT_MAX_UNREAD_BYTES, type ByteStream } from '../../src/transports/byte-stream.js';
import { openPtyPair, type PtyPair } from '../../src/transports/pty.js';
import {
  listSerialPorts,
  openSerial,
  serialOpenError,
  SERIAL_BAUD_RATES,
  type SerialOptions,
} from '../../src/transports/serial.js';
import { waitFor } from '../helpers.js';

const closers: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function ptyPair(): Promise<PtyPair> {
  const pair = await openPtyPair();
  closers.push(() => pair.close());
  return pair;
}

async function open(path: string, options: Partial<SerialOptions> = {}): Promise<ByteStream> {
  const stream = await openSerial({ path, ...options });
  closers.push(() => stream.close());
  return stream;
}

/** Both ends of a fresh pty pair, opened as serial ports. */
async function cable(): Promise<{ pair: PtyPair; pos: ByteStream; terminal: ByteStream }> {
  const pair = await ptyPair();
  return { pair, pos: await open(pair.posPath), terminal: await open(pair.terminalPath) };
}

/** Everything a stream delivers, as one growing buffer. */
function collect(stream: ByteStream): { bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  stream.onData((chunk) => chunks.push(Buffer.from(chunk)));
  return { bytes: () => Buffer.concat(chunks) };
}

async function refusal(promise: Promise<unknown>): Promise<EcrError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EcrError);
  return error as EcrError;
}

const allByteValues = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

describe('serial ports over a socat pty pair', () => {
  it('every byte value 0x00–0xFF crosses unchanged, in both directions', async () => {
    const { pos, terminal } = await cable();
    const atTerminal = collect(terminal);
    const atPos = collect(pos);
    await pos.write(allByteValues);
    await terminal.write(Buffer.from(allByteValues).reverse());
    await waitFor(() => atTerminal.bytes().length >= 256 && atPos.bytes().length >= 256);
    expect(atTerminal.bytes()).toEqual(allByteValues);
    expect(atPos.bytes()).toEqual(Buffer.from(allByteValues).reverse());
  });

  it('a 64 KiB burst arrives whole and in order', async () => {
    const { pos, terminal } = await cable();
    const burst = Buffer.alloc(64 * 1024, 0);
    for (let i = 0; i < burst.length; i++) burst[i] = (i * 31 + (i >> 8)) & 0xff;
    const atTerminal = collect(terminal);
    await pos.write(burst);
    await waitFor(() => atTerminal.bytes().length >= burst.length);
    expect(atTerminal.bytes().equals(burst)).toBe(true);
  });

  it('bytes that arrive before a data handler is set wait, then reach it first, in order', async () => {
    const { pos, terminal } = await cable();
    await pos.write(Buffer.from('early '));
    await pos.write(Buffer.from('bytes'));
    // Give them time to cross socat and land in the stream's backlog.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const atTerminal = collect(terminal);
    expect(atTerminal.bytes().toString()).toBe('early bytes');
    await pos.write(Buffer.from(' then live'));
    await waitFor(() => atTerminal.bytes().length >= 21);
    expect(atTerminal.bytes().toString()).toBe('early bytes then live');
  });

  it('more unread bytes than the bound, with no handler, close the stream with FRAME_TOO_LARGE', async () => {
    const { pair, pos, terminal } = await cable();
    // Not awaited: once the reader has closed, the rest of the burst has nowhere to go.
    pos.write(Buffer.alloc(DEFAULT_MAX_UNREAD_BYTES + 1024, 0x55)).catch(() => {});
    const closed = await terminal.closed;
    expect(closed.error?.code).toBe('FRAME_TOO_LARGE');
    expect(closed.error?.message).toContain(pair.terminalPath);
    expect(terminal.isOpen).toBe(false);
  });

  it('pulling the cable (socat killed mid-use) resolves `closed` with LINK_LOST; later writes reject with LINK_LOST', async () => {
    const { pair, pos, terminal } = await cable();
    collect(terminal);
    await pos.write(Buffer.from('before'));
    await pair.close();
    const closed = await pos.closed;
    expect(closed.error?.code).toBe('LINK_LOST');
    expect(closed.error?.message).toContain(pair.posPath);
    expect(closed.error?.message).toMatch(/unplugged/);
    expect(pos.isOpen).toBe(false);
    await expect(pos.write(Buffer.from('after'))).rejects.toMatchObject({ code: 'LINK_LOST' });
    expect((await terminal.closed).error?.code).toBe('LINK_LOST');
  });

  it('close() settles `closed` without an error; later writes reject with LINK_LOST', async () => {
    const { pos } = await cable();
    await pos.close();
    expect(await pos.closed).toEqual({});
    expect(pos.isOpen).toBe(false);
    await expect(pos.write(Buffer.from('x'))).rejects.toMatchObject({ code: 'LINK_LOST' });
  });

  it('a port another program holds is refused as in use (TERMINAL_UNREACHABLE), naming the path', async () => {
    const pair = await ptyPair();
    await open(pair.posPath);
    const error = await refusal(openSerial({ path: pair.posPath }));
    expect(error.code).toBe('TERMINAL_UNREACHABLE');
    expect(error.field).toBe('terminal');
    expect(error.message).toContain(pair.posPath);
    expect(error.message).toContain('in use by another program');
  });
});

describe('opening a serial port: refusals that name the fix', () => {
  it('a path that does not exist → TERMINAL_UNREACHABLE naming the path and `ecr-bridge ports`', async () => {
    const error = await refusal(openSerial({ path: '/dev/ttyACM-nonexistent' }));
    expect(error.code).toBe('TERMINAL_UNREACHABLE');
    expect(error.field).toBe('terminal');
    expect(error.message).toBe(
      'serial port /dev/ttyACM-nonexistent does not exist: is the terminal plugged in? `ecr-bridge ports` lists the ports',
    );
  });

  it('a port this user may not open → TERMINAL_UNREACHABLE with the dialout-group fix (real EACCES)', async () => {
    const pair = await ptyPair();
    let result: { code?: string; message?: string; field?: string };
    if (process.getuid?.() === 0) {
      // root ignores file modes: ask a child running as `nobody`, whom the pty's 0600 mode refuses.
      const module = fileURLToPath(new URL('../../src/transports/serial.ts', import.meta.url));
      const script = `import { openSerial } from ${JSON.stringify(module)};
        try { await openSerial({ path: ${JSON.stringify(pair.posPath)} }); console.log('{}'); }
        catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, field: e.field })); }`;
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script],
        {
          uid: 65534,
          gid: 65534,
          cwd: fileURLToPath(new URL('../..', import.meta.url)),
          env: { ...process.env, HOME: '/tmp' },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await new Promise((resolve) => child.once('close', resolve));
      result = JSON.parse(out) as typeof result;
    } else {
      chmodSync(pair.posPath, 0o000);
      const error = await refusal(openSerial({ path: pair.posPath }));
      result = { code: error.code, message: error.message, field: error.field ?? '' };
    }
    expect(result).toEqual({
      code: 'TERMINAL_UNREACHABLE',
      field: 'terminal',
      message: `no permission to open ${pair.posPath}: add your user to the dialout group (sudo usermod -a -G dialout $USER, then log in again)`,
    });
  });

  it('the error mapping also goes by errno code, and keeps the cause', () => {
    const withCode = (code: string): Error => Object.assign(new Error('x'), { code });
    expect(serialOpenError('/dev/ttyUSB0', withCode('EACCES')).message).toMatch(/^no permission/);
    expect(serialOpenError('/dev/ttyUSB0', withCode('EBUSY')).message).toMatch(
      /in use by another program/,
    );
    expect(serialOpenError('/dev/ttyUSB0', withCode('ENOENT')).message).toMatch(/does not exist/);
    const cause = new Error(
      'Error: Inappropriate ioctl for device setting custom baud rate of 9600',
    );
    const odd = serialOpenError('/tmp/file', cause);
    expect(odd).toMatchObject({ code: 'TERMINAL_UNREACHABLE', field: 'terminal', cause });
    expect(odd.message).toBe('/tmp/file is not a serial port: `ecr-bridge ports` lists the ports');
  });

  it('a baud rate outside 1200…115200 standard rates is refused naming baudRate, before any open', async () => {
    const error = await refusal(
      (async () => openSerial({ path: '/dev/ttyACM-nonexistent', baudRate: 14_400 }))(),
    );
    expect(error).toMatchObject({ code: 'INVALID_INPUT', field: 'baudRate' });
    expect(error.message).toContain('14400');
    expect(error.message).toContain(SERIAL_BAUD_RATES.join(', '));
  });

  it('every standard baud rate opens a pty', async () => {
    const pair = await ptyPair();
    for (const baudRate of SERIAL_BAUD_RATES) {
      const stream = await openSerial({ path: pair.posPath, baudRate });
      await stream.close();
    }
  });

  it('an already-aborted signal → ABORTED, and nothing is left open', async () => {
    const pair = await ptyPair();
    await expect(
      openSerial({ path: pair.posPath, signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    // The port is free: a later open takes its lock.
    await open(pair.posPath);
  });

  it('listSerialPorts lists ports with path, manufacturer, vendor/product id and serial number', async () => {
    const ports = await listSerialPorts();
    expect(Array.isArray(ports)).toBe(true);
    for (const port of ports) {
      expect(port.path).toMatch(/^\/dev\//);
      expect(Object.keys(port).sort()).toEqual(
        ['manufacturer', 'path', 'productId', 'serialNumber', 'vendorId'].sort(),
      );
    }
  });
});
