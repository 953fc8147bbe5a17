import type { ByteStream } from '../../src/transports/byte-stream.js';
import { openPtyPair, type PtyPair } from '../../src/transports/pty.js';
import { openSerial } from '../../src/transports/serial.js';

/** `up`: POS → terminal; `down`: terminal → POS (as in the FaultProxy). */
export type SerialDirection = 'up' | 'down';

/**
 * The serial line's FaultProxy: a relay between two real socat pseudo-terminal pairs. The POS
 * opens `posPath`; the relay passes bytes on to the terminal's device and back, counting them,
 * and can pull the cable — go silent both ways — at once or after a given number of bytes in one
 * direction (mid-frame), until `plug()`. A serial line has no connection to drop: silence is what
 * a pulled cable or a terminal that stopped looks like to the other end.
 */
export class SerialRelay {
  readonly bytes: Record<SerialDirection, number> = { up: 0, down: 0 };
  /** Times the cable was pulled. */
  pulls = 0;
  private silent = false;
  private trip: { readonly direction: SerialDirection; readonly at: number } | undefined;
  private terminal: ByteStream | undefined;

  private constructor(
    private readonly pair: PtyPair,
    private readonly pos: ByteStream,
  ) {
    pos.onData((chunk) => this.forward('up', chunk, this.terminal));
  }

  /** The device the POS (the driver) opens. */
  get posPath(): string {
    return this.pair.posPath;
  }

  static async open(terminalDevice: string): Promise<SerialRelay> {
    const pair = await openPtyPair();
    const relay = new SerialRelay(pair, await openSerial({ path: pair.terminalPath }));
    await relay.attach(terminalDevice);
    return relay;
  }

  /** Plugs the line into a terminal's device (a restarted terminal has a new one). */
  async attach(terminalDevice: string): Promise<void> {
    const terminal = await openSerial({ path: terminalDevice });
    this.terminal = terminal;
    terminal.onData((chunk) => this.forward('down', chunk, this.pos));
    void terminal.closed.then(() => {
      if (this.terminal === terminal) this.terminal = undefined;
    });
  }

  /** Pulls the cable once `bytes` more bytes went `direction` (0: before the next byte). */
  pullAfter(direction: SerialDirection, bytes: number): void {
    this.trip = { direction, at: this.bytes[direction] + bytes };
  }

  pull(): void {
    this.trip = undefined;
    if (!this.silent) this.pulls++;
    this.silent = true;
  }

  plug(): void {
    this.trip = undefined;
    this.silent = false;
  }

  async close(): Promise<void> {
    await this.terminal?.close().catch(() => {});
    await this.pos.close().catch(() => {});
    await this.pair.close();
  }

  private forward(direction: SerialDirection, chunk: Uint8Array, to: ByteStream | undefined): void {
    if (this.silent) return;
    const start = this.bytes[direction];
    this.bytes[direction] += chunk.length;
    let pass = chunk;
    const trip = this.trip;
    if (trip?.direction === direction && this.bytes[direction] > trip.at) {
      pass = chunk.subarray(0, Math.max(0, trip.at - start));
      this.pull();
    }
    if (pass.length > 0 && to?.isOpen === true) void to.write(pass).catch(() => {});
  }
}
