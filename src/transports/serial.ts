import { existsSync } from 'node:fs';
import { readdir, readFile, realpath } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SerialPort } from 'serialport';
import { EcrError, invalid } from '../core/errors.js';
import {
  ByteInbox,
  DEFAULT_MAX_UNREAD_BYTES,
  type ByteStream,
  type StreamClosed,
} from './byte-stream.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from './message-link.js';

/** Baud rate when the address names none: what most payment terminals ship with. */
export const SERIAL_DEFAULT_BAUD_RATE = 9600;
/** The rates `openSerial` accepts: the standard ones a terminal's setup menu offers. */
export const SERIAL_BAUD_RATES = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] as const;
/** Bound on opening a port (the open runs in libuv's thread pool and could stall on a bad driver). */
export const SERIAL_DEFAULT_OPEN_TIMEOUT_MS = DEFAULT_CONNECT_TIMEOUT_MS;
/**
 * How often an open port checks that its device node still exists. A vanished device usually
 * shows as a read error at once, but not always (seen with pty pairs under load): the device
 * node disappearing (USB unplugged, socat gone) is the sure sign.
 */
export const SERIAL_PRESENCE_CHECK_MS = 500;
/** Largest accepted `openTimeoutMs`. */
const MAX_OPEN_TIMEOUT_MS = 600_000;

export interface SerialOptions {
  /** The device, e.g. `/dev/ttyACM0` (`ecr-bridge ports` lists them). */
  readonly path: string;
  /** One of SERIAL_BAUD_RATES; always 8 data bits, no parity, 1 stop bit. @default SERIAL_DEFAULT_BAUD_RATE */
  readonly baudRate?: number;
  /** Cancels the open (not the stream once open). */
  readonly signal?: AbortSignal;
  /** @default SERIAL_DEFAULT_OPEN_TIMEOUT_MS */
  readonly openTimeoutMs?: number;
  /** Bytes kept while no data handler is set. @default DEFAULT_MAX_UNREAD_BYTES */
  readonly maxUnreadBytes?: number;
}

/** A serial port the system knows of; fields the system does not report are null. */
export interface SerialPortInfo {
  readonly path: string;
  readonly manufacturer: string | null;
  /** USB vendor id, 4 hex digits (`0b00` is Ingenico). */
  readonly vendorId: string | null;
  readonly productId: string | null;
  readonly serialNumber: string | null;
}

const FIELD = 'terminal';

/**
 * What a failed open means, for the person at the till. The binding's errors carry no `code`,
 * only strerror text ("Error: Permission denied, cannot open /dev/ttyACM0"; a port another
 * process holds fails its flock with "Resource temporarily unavailable Cannot lock port"), so the
 * text is matched as well as any `code`. All are refusals before a byte was sent.
 */
export function serialOpenError(path: string, error: unknown): EcrError {
  const code = (error as { code?: unknown } | null)?.code;
  const text = error instanceof Error ? error.message : String(error);
  const is = (codes: readonly string[], pattern: RegExp): boolean =>
    (typeof code === 'string' && codes.includes(code)) || pattern.test(text);
  const refuse = (message: string, rule: string): EcrError =>
    new EcrError('TERMINAL_UNREACHABLE', message, { field: FIELD, rule, cause: error });
  if (is(['ENOENT'], /no such file or directory/i))
    return refuse(
      `serial port ${path} does not exist: is the terminal plugged in? \`ecr-bridge ports\` lists the ports`,
      'must be an existing serial port',
    );
  if (is(['EACCES', 'EPERM'], /permission denied|operation not permitted/i))
    return refuse(
      `no permission to open ${path}: add your user to the dialout group (sudo usermod -a -G dialout $USER, then log in again)`,
      'must be a port this user may open',
    );
  if (is(['EBUSY', 'EAGAIN'], /resource busy|cannot lock port|resource temporarily unavailable/i))
    return refuse(
      `serial port ${path} is in use by another program: close it (\`fuser -v ${path}\` names it) and try again`,
      'must be a port no other program holds',
    );
  if (is(['ENOTTY', 'EISDIR'], /inappropriate ioctl|is a directory/i))
    return refuse(
      `${path} is not a serial port: \`ecr-bridge ports\` lists the ports`,
      'must be a serial port',
    );
  if (is(['ENXIO', 'ENODEV'], /no such device/i))
    return refuse(
      `serial port ${path} has no device behind it: unplug the terminal, plug it in again, and check \`ecr-bridge ports\``,
      'must be a connected serial port',
    );
  return refuse(`cannot open serial port ${path}: ${text.replace(/^Error: /, '')}`, 'must open');
}

function validate(options: SerialOptions): { baudRate: number; openTimeoutMs: number } {
  if (typeof options.path !== 'string' || options.path.trim() === '')
    throw invalid('INVALID_INPUT', 'path', 'must name a serial device such as /dev/ttyACM0');
  const baudRate = options.baudRate ?? SERIAL_DEFAULT_BAUD_RATE;
  if (!(SERIAL_BAUD_RATES as readonly number[]).includes(baudRate))
    throw invalid(
      'INVALID_INPUT',
      'baudRate',
      `must be one of ${SERIAL_BAUD_RATES.join(', ')}`,
      String(baudRate),
    );
  const openTimeoutMs = options.openTimeoutMs ?? SERIAL_DEFAULT_OPEN_TIMEOUT_MS;
  if (!Number.isInteger(openTimeoutMs) || openTimeoutMs < 1 || openTimeoutMs > MAX_OPEN_TIMEOUT_MS)
    throw invalid(
      'INVALID_INPUT',
      'openTimeoutMs',
      `must be a whole number of milliseconds from 1 to ${MAX_OPEN_TIMEOUT_MS}`,
      String(openTimeoutMs),
    );
  return { baudRate, openTimeoutMs };
}

/**
 * An open port as a ByteStream. serialport notices a vanished device only while a read is
 * pending, so the data listener is attached from the start (bytes wait in the inbox). A device
 * that disappears can surface as a read error, a write error (EIO) or both, and serialport may
 * then emit `close` twice (the stream's own, then the binding's): `closed` settles once the
 * binding is closed.
 */
class SerialStream implements ByteStream {
  readonly closed: Promise<StreamClosed>;
  private readonly inbox: ByteInbox;
  private failure: EcrError | undefined;
  /** Rejecters of writes under way: a write never outlives the port. */
  private readonly pending = new Set<(error: EcrError) => void>();
  private ended = false;
  private resolveClosed: (closed: StreamClosed) => void = () => {};
  private readonly presence: NodeJS.Timeout | undefined;

  constructor(
    private readonly port: SerialPort,
    readonly remote: string,
    maxUnreadBytes: number,
  ) {
    this.inbox = new ByteInbox(remote, (error) => this.fail(error), maxUnreadBytes);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    // A Windows port (`COM8`, seed 003) has no device node to watch: its errors alone tell.
    this.presence = remote.startsWith('/')
      ? setInterval(() => {
          if (!existsSync(remote)) this.fail(this.lost(new Error('the device node disappeared')));
        }, SERIAL_PRESENCE_CHECK_MS)
      : undefined;
    this.presence?.unref();
    port.on('data', (chunk: Buffer) => {
      if (this.failure === undefined && !this.ended) this.inbox.deliver(chunk);
    });
    port.on('error', (error: Error) => this.fail(this.lost(error)));
    // A zero-byte read (EOF) ends the readable side: the device is gone.
    port.on('end', () => this.fail(this.lost(new Error('the device hung up'))));
    port.on('close', (error?: Error | null) => {
      if (error instanceof Error) this.failure ??= this.lost(error);
      if (port.port?.isOpen === true) this.closeBinding();
      else this.finish();
    });
  }

  get isOpen(): boolean {
    return !this.ended && this.port.isOpen;
  }

  write(bytes: Uint8Array): Promise<void> {
    if (!this.isOpen) return Promise.reject(this.closedError());
    return new Promise<void>((resolve, reject) => {
      const settle = (error?: EcrError): void => {
        if (!this.pending.delete(settle)) return;
        if (error === undefined) resolve();
        else reject(error);
      };
      this.pending.add(settle);
      // Copied: the caller may reuse its buffer before the port has taken every byte.
      this.port.write(Buffer.from(bytes), (error) => {
        if (error !== undefined && error !== null) return settle(this.lost(error));
        // serialport's drain waits for a reopen when the port is closed: never call it then.
        if (!this.port.isOpen) return settle(this.closedError());
        // tcdrain: the bytes have left the UART, so timers started now (ACK waits) are fair.
        this.port.drain((e) => settle(e === null || e === undefined ? undefined : this.lost(e)));
      });
    });
  }

  onData(handler: ((chunk: Uint8Array) => void) | undefined): void {
    this.inbox.setHandler(handler);
  }

  async close(): Promise<void> {
    this.closeBinding();
    await this.closed;
  }

  private closedError(): EcrError {
    return this.failure ?? new EcrError('LINK_LOST', `serial port ${this.remote} is closed`);
  }

  private lost(error: Error): EcrError {
    return new EcrError(
      'LINK_LOST',
      `serial port ${this.remote} went away: was the terminal unplugged or switched off? (${error.message})`,
      { cause: error },
    );
  }

  private fail(error: EcrError): void {
    this.failure ??= error;
    this.closeBinding();
  }

  private closeBinding(): void {
    // `isOpen` is false while a close is under way: that close ends in a 'close' event too.
    // A failed close has still released the descriptor (the binding forgets it first).
    if (!this.port.isOpen) return;
    this.port.close((error) => {
      if (error !== null && error !== undefined) this.finish();
    });
  }

  /** The binding is closed: settle `closed` once, and fail the writes still waiting. */
  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.presence);
    const error = this.closedError();
    for (const settle of [...this.pending]) settle(error);
    this.resolveClosed(this.failure === undefined ? {} : { error: this.failure });
  }
}

/** Opens a serial port, 8N1; TERMINAL_UNREACHABLE (naming the path and the fix) when it cannot. */
export function openSerial(options: SerialOptions): Promise<ByteStream> {
  const { baudRate, openTimeoutMs } = validate(options);
  const path = options.path;
  const maxUnreadBytes = options.maxUnreadBytes ?? DEFAULT_MAX_UNREAD_BYTES;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted === true) {
      reject(new EcrError('ABORTED', `cancelled before opening ${path}`));
      return;
    }
    const port = new SerialPort({
      path,
      baudRate,
      dataBits: 8,
      parity: 'none',
      stopBits: 1,
      autoOpen: false,
    });
    let settled = false;
    const finish = (error?: EcrError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve(new SerialStream(port, path, maxUnreadBytes));
      else reject(error);
    };
    const onAbort = (): void => finish(new EcrError('ABORTED', `cancelled while opening ${path}`));
    const timer = setTimeout(
      () =>
        finish(
          new EcrError(
            'TERMINAL_UNREACHABLE',
            `serial port ${path} did not open within ${openTimeoutMs} ms`,
            { field: FIELD, rule: 'must open in time' },
          ),
        ),
      openTimeoutMs,
    );
    options.signal?.addEventListener('abort', onAbort, { once: true });
    port.open((error) => {
      if (error !== null && error !== undefined) return finish(serialOpenError(path, error));
      // Opened after a timeout or an abort: nobody will use it.
      if (settled) port.close(() => {});
      else finish();
    });
  });
}

/**
 * The serial ports of this machine. serialport asks `udevadm`; where udev is missing
 * (containers, minimal installs) `udevadm` cannot run, and sysfs is read instead.
 */
export async function listSerialPorts(): Promise<SerialPortInfo[]> {
  let ports: SerialPortInfo[];
  try {
    ports = (await SerialPort.list()).map((p) => ({
      path: p.path,
      manufacturer: p.manufacturer ?? null,
      vendorId: p.vendorId ?? null,
      productId: p.productId ?? null,
      serialNumber: p.serialNumber ?? null,
    }));
  } catch {
    ports = await listFromSysfs();
  }
  return ports.sort((a, b) => a.path.localeCompare(b.path, 'en', { numeric: true }));
}

/** The device families serialport lists (its linux-list.js), by kernel name. */
const SERIAL_NAME = /^(?:tty(?:S|WCH|ACM|USB|AMA|MFD|O|XRUSB)\d+|rfcomm\d+)$/;
const SYS_TTY = '/sys/class/tty';

async function readAttribute(dir: string, name: string): Promise<string | null> {
  try {
    const value = (await readFile(join(dir, name), 'utf8')).trim();
    return value === '' ? null : value;
  } catch {
    return null;
  }
}

async function listFromSysfs(): Promise<SerialPortInfo[]> {
  let names: string[];
  try {
    names = (await readdir(SYS_TTY)).filter((name) => SERIAL_NAME.test(name));
  } catch {
    return [];
  }
  const ports: SerialPortInfo[] = [];
  for (const name of names) {
    const path = `/dev/${name}`;
    let device: string;
    try {
      device = await realpath(join(SYS_TTY, name, 'device'));
    } catch {
      continue; // no device behind it: a virtual tty
    }
    // The kernel makes ttyS0…ttyS31 whether or not a UART is there; type 0 means none.
    if (name.startsWith('ttyS') && (await readAttribute(join(SYS_TTY, name), 'type')) === '0')
      continue;
    if (!existsSync(path)) continue;
    // USB attributes sit on the USB device: the tty's parent (ACM) or grandparent (usb-serial).
    let usb: string | undefined;
    for (let dir = device, up = 0; up < 4 && dir !== '/'; up++, dir = dirname(dir)) {
      if (existsSync(join(dir, 'idVendor'))) {
        usb = dir;
        break;
      }
    }
    ports.push({
      path,
      manufacturer: usb === undefined ? null : await readAttribute(usb, 'manufacturer'),
      vendorId: usb === undefined ? null : await readAttribute(usb, 'idVendor'),
      productId: usb === undefined ? null : await readAttribute(usb, 'idProduct'),
      serialNumber: usb === undefined ? null : await readAttribute(usb, 'serial'),
    });
  }
  return ports;
}
