import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP man-in-the-middle on 127.0.0.1 for fault tests and benches: it forwards between a client
 * and `target` and, per connection and direction, can delay, fragment, duplicate, drop, blackhole
 * or cut the stream at a chosen byte offset or message number. Messages are found by a framing:
 * raw bytes (each chunk), a delimiter (eConduit's 0x04 0x04, SEMI's newline), or WebSocket frames
 * after the HTTP upgrade (the WebSocket-aware variant).
 */

/** `up`: client → target; `down`: target → client. */
export type Direction = 'up' | 'down';

export type FaultKind =
  /** Holds each message `ms` before passing it on. */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Passes each message on in pieces of `bytes`, `gapMs` apart. */
  | { readonly kind: 'fragment'; readonly bytes: number; readonly gapMs?: number }
  /** Passes each message on twice. */
  | { readonly kind: 'duplicate' }
  /** Swallows messages (the connection stays up). */
  | { readonly kind: 'drop' }
  /** Swallows everything from here on, both directions, and never closes: a half-dead peer. */
  | { readonly kind: 'blackhole' }
  /** Destroys both sockets (an RST-like end) right there. */
  | { readonly kind: 'cut' };

export type Fault = FaultKind & {
  readonly direction: Direction;
  /**
   * Where it starts: after `byte` bytes passed in this direction (cut and blackhole then split the
   * message at exactly that byte), or at message number `message` (0-based), or at the first
   * message holding the text `contains` (cut and blackhole then let its first `offset` bytes
   * through). Default: at once.
   */
  readonly at?: {
    readonly byte?: number;
    readonly message?: number;
    readonly contains?: string;
    readonly offset?: number;
  };
  /** How many messages it applies to, once started (delay, fragment, duplicate, drop). @default all */
  readonly count?: number;
};

export type Framing =
  | { readonly type: 'chunks' }
  | { readonly type: 'delimiter'; readonly delimiter: Uint8Array }
  | { readonly type: 'websocket' };

export interface ProxyStats {
  connections: number;
  bytes: Record<Direction, number>;
  messages: Record<Direction, number>;
  faultsApplied: number;
}

/** Splits a byte stream into messages, keeping what is not complete yet. */
class Splitter {
  private buffer = Buffer.alloc(0);
  private upgraded = false;

  constructor(private readonly framing: Framing) {}

  push(chunk: Buffer): Buffer[] {
    if (this.framing.type === 'chunks') return [chunk];
    this.buffer = Buffer.concat([this.buffer, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      const end = this.nextEnd();
      if (end === undefined) return out;
      out.push(this.buffer.subarray(0, end));
      this.buffer = this.buffer.subarray(end);
    }
  }

  /** Bytes held back because no message boundary came yet. */
  get pending(): number {
    return this.buffer.length;
  }

  private nextEnd(): number | undefined {
    if (this.framing.type === 'delimiter') {
      const at = this.buffer.indexOf(this.framing.delimiter);
      return at < 0 ? undefined : at + this.framing.delimiter.length;
    }
    // WebSocket: the HTTP upgrade (request up, 101 answer down) is one message, then frames.
    if (!this.upgraded) {
      const at = this.buffer.indexOf('\r\n\r\n');
      if (at < 0) return undefined;
      this.upgraded = true;
      return at + 4;
    }
    if (this.buffer.length < 2) return undefined;
    const second = this.buffer[1] as number;
    const masked = (second & 0x80) !== 0;
    let length = second & 0x7f;
    let header = 2;
    if (length === 126) {
      if (this.buffer.length < 4) return undefined;
      length = this.buffer.readUInt16BE(2);
      header = 4;
    } else if (length === 127) {
      if (this.buffer.length < 10) return undefined;
      length = Number(this.buffer.readBigUInt64BE(2));
      header = 10;
    }
    const total = header + (masked ? 4 : 0) + length;
    return this.buffer.length < total ? undefined : total;
  }
}

export class FaultProxy {
  readonly stats: ProxyStats = {
    connections: 0,
    bytes: { up: 0, down: 0 },
    messages: { up: 0, down: 0 },
    faultsApplied: 0,
  };
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** The open connections' directions, each taking faults injected while it is open. */
  private readonly pipes = new Set<{ readonly direction: Direction; inject(fault: Fault): void }>();
  private faults: readonly Fault[];
  private readonly framing: Framing;
  port = 0;

  constructor(
    private readonly target: { readonly host: string; readonly port: number },
    options: { readonly faults?: readonly Fault[]; readonly framing?: Framing } = {},
  ) {
    this.faults = options.faults ?? [];
    this.framing = options.framing ?? { type: 'chunks' };
  }

  /** Faults for connections made from now on (each connection counts bytes and messages anew). */
  setFaults(faults: readonly Fault[]): void {
    this.faults = faults;
  }

  /**
   * Faults for the connections open now only (new connections are not affected): their `byte`
   * and `message` positions count from this moment. What a test uses to break a long-lived link
   * (a terminal's connection to the gateway) once, at a point of its choosing.
   */
  injectFaults(faults: readonly Fault[]): void {
    for (const pipe of this.pipes)
      for (const fault of faults) if (fault.direction === pipe.direction) pipe.inject(fault);
  }

  /** Every open connection ends now (an RST-like end); new ones are still accepted. */
  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async start(port = 0): Promise<this> {
    const server = createServer((client) => this.accept(client));
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    this.port = typeof address === 'object' && address !== null ? address.port : 0;
    this.server = server;
    return this;
  }

  /** Every connection through the proxy ends now, and none is accepted until `resume()`. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server !== undefined) await new Promise((resolve) => server.close(resolve));
  }

  async resume(): Promise<void> {
    await this.start(this.port);
  }

  async stop(): Promise<void> {
    await this.cut();
  }

  private accept(client: Socket): void {
    this.stats.connections++;
    const upstream = connect(this.target.port, this.target.host);
    const sockets = [client, upstream];
    for (const socket of sockets) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
      socket.setNoDelay(true);
    }
    let holed = false;
    const end = () => {
      for (const socket of sockets) socket.destroy();
    };
    client.on('close', () => {
      if (!holed) upstream.destroy();
    });
    upstream.on('close', () => {
      if (!holed) client.destroy();
    });
    const faults = this.faults;
    const pipe = (from: Socket, to: Socket, direction: Direction) => {
      const splitter = new Splitter(this.framing);
      // Each fault with the position it counts from (0 unless injected into an open connection).
      const mine: { fault: Fault; bytes: number; messages: number }[] = faults
        .filter((f) => f.direction === direction)
        .map((fault) => ({ fault, bytes: 0, messages: 0 }));
      const applied = new Map<Fault, number>();
      /** Faults keyed on `contains` whose message came. */
      const matched = new Set<Fault>();
      let bytes = 0;
      let messages = 0;
      const live = {
        direction,
        inject: (fault: Fault) => void mine.push({ fault, bytes, messages }),
      };
      this.pipes.add(live);
      from.on('close', () => this.pipes.delete(live));
      // Writes keep their order even when some are delayed.
      let queue: Promise<void> = Promise.resolve();
      const write = (data: Buffer, delayMs = 0) => {
        queue = queue.then(async () => {
          if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
          // Resolved once the bytes reached the kernel: a cut right after keeps them.
          if (!holed && !to.destroyed)
            await new Promise<void>((resolve) => to.write(data, () => resolve()));
        });
      };
      from.on('data', (chunk: Buffer) => {
        if (holed) return;
        for (const message of splitter.push(chunk)) {
          if (holed) return;
          const startByte = bytes;
          bytes += message.length;
          const index = messages++;
          this.stats.bytes[direction] += message.length;
          this.stats.messages[direction]++;
          let out: Buffer[] = [message];
          let delayMs = 0;
          for (const entry of mine) {
            const { fault } = entry;
            const at = fault.at ?? {};
            const byteStart = entry.bytes + (at.byte ?? 0);
            const started =
              (at.message === undefined || index - entry.messages >= at.message) &&
              bytes > byteStart;
            if (!started) continue;
            let firstMatch = false;
            if (at.contains !== undefined && !matched.has(fault)) {
              if (!message.includes(at.contains)) continue;
              matched.add(fault);
              firstMatch = true;
            }
            const used = applied.get(fault) ?? 0;
            if (fault.count !== undefined && used >= fault.count) continue;
            applied.set(fault, used + 1);
            this.stats.faultsApplied++;
            // How much of this message goes through before a cut or blackhole takes effect.
            const keep = firstMatch
              ? Math.min(message.length, Math.max(0, at.offset ?? 0))
              : at.byte === undefined
                ? 0
                : Math.max(0, byteStart - startByte);
            switch (fault.kind) {
              case 'cut':
                if (keep > 0) write(message.subarray(0, keep));
                queue = queue.then(end);
                return;
              case 'blackhole':
                if (keep > 0) write(message.subarray(0, keep));
                queue = queue.then(() => {
                  holed = true;
                });
                return;
              case 'drop':
                out = [];
                break;
              case 'duplicate':
                out = out.flatMap((m) => [m, m]);
                break;
              case 'delay':
                delayMs += fault.ms;
                break;
              case 'fragment': {
                const pieces: Buffer[] = [];
                for (const m of out)
                  for (let i = 0; i < m.length; i += Math.max(1, fault.bytes))
                    pieces.push(m.subarray(i, i + Math.max(1, fault.bytes)));
                out = pieces;
                for (const [i, piece] of out.entries())
                  write(piece, i === 0 ? delayMs : (fault.gapMs ?? 1));
                out = [];
                delayMs = 0;
                break;
              }
            }
          }
          for (const [i, m] of out.entries()) write(m, i === 0 ? delayMs : 0);
        }
      });
    };
    pipe(client, upstream, 'up');
    pipe(upstream, client, 'down');
  }
}

/**
 * A fault proxy in front of the server a URL names (`defaultPort` when it names none), stopped by
 * `cleanups`, and the same URL pointed at the proxy instead.
 */
export async function proxyInFront(
  url: string,
  defaultPort: number,
  cleanups: (() => unknown)[],
): Promise<{ readonly proxy: FaultProxy; readonly url: string }> {
  const server = new URL(url);
  const proxy = await new FaultProxy({
    host: server.hostname,
    port: Number(server.port || defaultPort),
  }).start();
  cleanups.push(() => proxy.stop());
  const proxied = new URL(url);
  proxied.port = String(proxy.port);
  return { proxy, url: proxied.toString() };
}
