import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * Byte transcripts for conformance tests: a conversation written from independent sources (the
 * seeds, vendors' samples, public implementations), never produced by our own codecs. One side
 * of a transcript is played by a scripted peer on a real TCP socket; the other side is the code
 * under test, whose bytes must arrive exactly and in order.
 */

export type Role = 'pos' | 'terminal';

/**
 * Positions in an expected step whose bytes the other side chooses (a transaction number, a
 * masked card number): compared by shape instead of by value. `pattern` is tested against the
 * ASCII text of those bytes; `why` appears in failures and says why the bytes may differ.
 */
export interface Vary {
  at: number;
  length: number;
  pattern?: RegExp;
  why: string;
}

export interface BytesStep {
  from: Role;
  bytes: Uint8Array;
  /** Split offsets for writing, e.g. `[1, 5]` writes bytes 0..1, 1..5, then 5..end. */
  chunks?: number[];
  /** What this step is, for failure messages ("answer frame", "ACK of the request"). */
  note?: string;
  /** Bytes that may differ from `bytes`, checked by shape (only when the other side sends). */
  vary?: Vary[];
  /** An extra check on the received bytes (a checksum over varying bytes); returns a problem. */
  check?: (got: Uint8Array) => string | undefined;
  /** How long to wait for this step's bytes, when the default is not right (a slow answer). */
  timeoutMs?: number;
}

export interface CloseStep {
  from: Role;
  close: true;
  note?: string;
  timeoutMs?: number;
}

export type Step = BytesStep | CloseStep;

export interface Transcript {
  /** Where the bytes come from: seed file and line, repository and path, vendor page. */
  source: string;
  /** What the conversation demonstrates. */
  shows: string;
  steps: Step[];
}

/** Named control bytes, as protocol documents spell them. */
export const CONTROL: Readonly<Record<string, number>> = Object.freeze({
  NUL: 0x00,
  SOH: 0x01,
  STX: 0x02,
  ETX: 0x03,
  EOT: 0x04,
  ENQ: 0x05,
  ACK: 0x06,
  BEL: 0x07,
  LF: 0x0a,
  CR: 0x0d,
  DLE: 0x10,
  NAK: 0x15,
  ETB: 0x17,
  FS: 0x1c,
  GS: 0x1d,
  RS: 0x1e,
  US: 0x1f,
});

/** Bytes from hex text: `hex('02 30 31 03')`; spaces, colons and newlines are ignored. */
export function hex(text: string): Uint8Array {
  const digits = text.replace(/[\s:]/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`not hex bytes: ${text}`);
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Bytes from ASCII text with control bytes named in angle brackets: `ascii('<STX>01<ETX>')`,
 * `<x7F>` for any byte by hex. Characters outside ASCII are refused: a transcript says bytes.
 */
export function ascii(text: string): Uint8Array {
  const out: number[] = [];
  const token = /<([A-Z]{2,3}|x[0-9a-fA-F]{2})>/y;
  for (let i = 0; i < text.length;) {
    token.lastIndex = i;
    const match = token.exec(text);
    if (match !== null) {
      const name = match[1] as string;
      const value = name.startsWith('x') ? parseInt(name.slice(1), 16) : CONTROL[name];
      if (value === undefined) throw new Error(`unknown control byte <${name}>`);
      out.push(value);
      i = token.lastIndex;
      continue;
    }
    const code = text.charCodeAt(i);
    if (code > 0x7e) throw new Error(`not ASCII at ${i} in ${JSON.stringify(text)}`);
    out.push(code);
    i++;
  }
  return Uint8Array.from(out);
}

/**
 * Bytes verbatim from a text (UTF-8), for samples that are not ASCII — a seed's typographic
 * quotes are part of what it shows.
 */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Joins byte pieces; a number is one byte. */
export function concat(...parts: (Uint8Array | number)[]): Uint8Array {
  const pieces = parts.map((part) => (typeof part === 'number' ? Uint8Array.of(part) : part));
  const out = new Uint8Array(pieces.reduce((sum, piece) => sum + piece.length, 0));
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

/** `02 30 31 03  |.01.|` — hex and printable ASCII, for failure messages. */
export function showBytes(bytes: Uint8Array): string {
  const hexText = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
  const text = Array.from(bytes, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.'));
  return `${hexText}  |${text.join('')}| (${bytes.length} bytes)`;
}

export const DEFAULT_STEP_TIMEOUT_MS = 5_000;
/** Pause between the chunks of one split write, so the reader sees separate reads. */
export const DEFAULT_CHUNK_DELAY_MS = 15;

/**
 * Accumulates what a socket receives, so a step can wait for exactly the bytes it expects,
 * however the network split them. Other helpers build their own framings (JSON) on it.
 */
export class ByteReader {
  private buffered: Uint8Array = new Uint8Array(0);
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = concat(this.buffered, new Uint8Array(chunk));
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('close', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', (error) => {
      this.failure = error;
      this.notify();
    });
  }

  /** Bytes received and not yet taken. */
  get pending(): Uint8Array {
    return this.buffered;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * Waits until `done(pending)` returns a length to take (or the stream ends, or `timeoutMs`
   * passes), then takes that many bytes. Returns what was taken and why it stopped.
   */
  async takeWhen(
    done: (pending: Uint8Array) => number | undefined,
    timeoutMs: number,
  ): Promise<{ bytes: Uint8Array; stopped: 'ok' | 'timeout' | 'ended' }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const length = done(this.buffered);
      if (length !== undefined) return { bytes: this.take(length), stopped: 'ok' };
      if (this.ended || this.failure !== undefined) {
        return { bytes: this.take(this.buffered.length), stopped: 'ended' };
      }
      const left = deadline - Date.now();
      if (left <= 0) return { bytes: this.take(this.buffered.length), stopped: 'timeout' };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Exactly `length` bytes, or fewer if the stream ended or the time ran out. */
  takeExactly(length: number, timeoutMs: number) {
    return this.takeWhen((pending) => (pending.length >= length ? length : undefined), timeoutMs);
  }

  private take(length: number): Uint8Array {
    const out = this.buffered.slice(0, length);
    this.buffered = this.buffered.slice(length);
    return out;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

export interface PlayOptions {
  /** Default wait for each expected step. @default DEFAULT_STEP_TIMEOUT_MS */
  timeoutMs?: number;
  /** @default DEFAULT_CHUNK_DELAY_MS */
  chunkDelayMs?: number;
  /**
   * After the last step, how long nothing more may arrive: a stray NAK or a resend after the
   * conversation is over is a failure. 0 skips the check. @default 0
   */
  quietMs?: number;
}

export interface PlayResult {
  /** What the other side sent, one entry per expected bytes step, in order. */
  received: Uint8Array[];
}

function describe(transcript: Transcript, index: number, step: Step): string {
  const other = step.from === 'pos' ? 'terminal' : 'pos';
  const note = step.note === undefined ? '' : ` "${step.note}"`;
  return `step ${index + 1}/${transcript.steps.length} (${step.from} → ${other})${note} of transcript [${transcript.shows}]`;
}

function mismatch(step: BytesStep, got: Uint8Array): string | undefined {
  if (got.length !== step.bytes.length) return 'length differs';
  const varying = new Set<number>();
  for (const vary of step.vary ?? []) {
    for (let i = vary.at; i < vary.at + vary.length; i++) varying.add(i);
    if (vary.pattern !== undefined) {
      const text = Buffer.from(got.subarray(vary.at, vary.at + vary.length)).toString('latin1');
      if (!vary.pattern.test(text)) {
        return `bytes ${vary.at}..${vary.at + vary.length} ${JSON.stringify(text)} do not match ${vary.pattern} (${vary.why})`;
      }
    }
  }
  for (let i = 0; i < got.length; i++) {
    if (!varying.has(i) && got[i] !== step.bytes[i]) return `first difference at byte ${i}`;
  }
  return step.check?.(got);
}

async function writeSplit(socket: Socket, step: BytesStep, delayMs: number): Promise<void> {
  const offsets = [0, ...(step.chunks ?? []), step.bytes.length];
  for (let i = 0; i + 1 < offsets.length; i++) {
    const piece = step.bytes.subarray(offsets[i], offsets[i + 1]);
    if (piece.length === 0) continue;
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    await new Promise<void>((resolve, reject) =>
      socket.write(piece, (error) => (error ? reject(error) : resolve())),
    );
  }
}

/**
 * Plays `role` of `transcript` on a connected socket: writes that role's steps (split as given)
 * and requires the other role's bytes to arrive exactly and in order. Throws on the first
 * difference, naming the step and showing expected and received bytes.
 */
export async function playRole(
  socket: Socket,
  transcript: Transcript,
  role: Role,
  options: PlayOptions = {},
  reader: ByteReader = new ByteReader(socket),
): Promise<PlayResult> {
  socket.setNoDelay(true);
  const received: Uint8Array[] = [];
  for (const [index, step] of transcript.steps.entries()) {
    const where = describe(transcript, index, step);
    const timeoutMs = step.timeoutMs ?? options.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
    if (step.from === role) {
      if ('close' in step) {
        socket.end();
        continue;
      }
      await writeSplit(socket, step, options.chunkDelayMs ?? DEFAULT_CHUNK_DELAY_MS);
      continue;
    }
    if ('close' in step) {
      const rest = await reader.takeWhen(() => undefined, timeoutMs);
      if (rest.stopped === 'timeout' || rest.bytes.length > 0) {
        throw new Error(
          `${where}: expected the ${step.from} to close the connection within ${timeoutMs} ms; ` +
            `${rest.stopped === 'timeout' ? 'it stayed open' : 'it closed'}, after sending: ${showBytes(rest.bytes)}`,
        );
      }
      continue;
    }
    const got = await reader.takeExactly(step.bytes.length, timeoutMs);
    const problem =
      got.stopped === 'ok'
        ? mismatch(step, got.bytes)
        : got.stopped === 'timeout'
          ? `nothing more within ${timeoutMs} ms`
          : 'the connection ended';
    if (problem !== undefined) {
      const varies = (step.vary ?? []).map(
        (v) => `\n  may vary: ${v.at}..${v.at + v.length} (${v.why})`,
      );
      throw new Error(
        `${where}: ${problem}\n  expected: ${showBytes(step.bytes)}\n  got:      ${showBytes(got.bytes)}${varies.join('')}`,
      );
    }
    received.push(got.bytes);
  }
  if ((options.quietMs ?? 0) > 0) {
    const extra = await reader.takeWhen(
      (pending) => (pending.length > 0 ? pending.length : undefined),
      options.quietMs ?? 0,
    );
    if (extra.bytes.length > 0) {
      throw new Error(
        `after the last step of transcript [${transcript.shows}], unexpected bytes: ${showBytes(extra.bytes)}`,
      );
    }
  } else if (reader.pending.length > 0) {
    throw new Error(
      `after the last step of transcript [${transcript.shows}], unexpected bytes: ${showBytes(reader.pending)}`,
    );
  }
  return { received };
}

export interface ScriptedPeer {
  host: string;
  port: number;
  /** Settles when the transcript has been played on the first connection (or failed). */
  done: Promise<PlayResult>;
  /** Connections accepted beyond the first (each is closed at once). */
  readonly extraConnections: number;
  close(): Promise<void>;
}

/**
 * A TCP server on 127.0.0.1, port 0, that plays `role` of `transcript` with the first client
 * that connects. After the last step the connection stays open (a terminal that never sends
 * EOT) until the transcript closes it or `close()` is called. Await `done` to see the result.
 */
export async function startScriptedPeer(
  transcript: Transcript,
  role: Role,
  options: PlayOptions & {
    /** How long to wait for the code under test to connect. @default 10_000 */
    connectTimeoutMs?: number;
  } = {},
): Promise<ScriptedPeer> {
  const sockets = new Set<Socket>();
  let extra = 0;
  let first: ((accepted: { socket: Socket; reader: ByteReader }) => void) | undefined;
  const connected = new Promise<{ socket: Socket; reader: ByteReader }>(
    (resolve) => (first = resolve),
  );
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (first === undefined) {
      extra++;
      socket.destroy();
      return;
    }
    const resolve = first;
    first = undefined;
    // Read from the first byte: the code under test may speak before the test looks.
    resolve({ socket, reader: new ByteReader(socket) });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const done = (async () => {
    let timer: NodeJS.Timeout | undefined;
    const { socket, reader } = await Promise.race([
      connected,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(`nobody connected within ${connectTimeoutMs} ms for [${transcript.shows}]`),
            ),
          connectTimeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    try {
      return await playRole(socket, transcript, role, options, reader);
    } catch (error) {
      // The conversation is already wrong: drop the line so the code under test stops waiting.
      socket.destroy();
      throw error;
    }
  })();
  // The test awaits `done`; this only keeps a failure after close() from being "unhandled".
  done.catch(() => {});
  return {
    host: '127.0.0.1',
    port,
    done,
    get extraConnections() {
      return extra;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Connects to `host:port` and plays `role` (the POS, by default) of `transcript`, then closes
 * the connection. Rejects on the first difference.
 */
export async function runScriptedClient(
  transcript: Transcript,
  address: { host?: string; port: number },
  options: PlayOptions & { role?: Role } = {},
): Promise<PlayResult> {
  const socket = connect({ host: address.host ?? '127.0.0.1', port: address.port });
  const reader = new ByteReader(socket);
  await once(socket, 'connect');
  try {
    return await playRole(socket, transcript, options.role ?? 'pos', options, reader);
  } finally {
    socket.destroy();
  }
}
