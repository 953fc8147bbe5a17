import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { EconduitFramer } from '../../src/protocols/econduit/framer.js';

/** Seed 002's own Register sample, verbatim: typographic quotes, no opening brace, a comment. */
export const SEED_REGISTER_SAMPLE = [
  '“Command”:”Register”,',
  '“TerminalType”:”TerminalManufacturer”,',
  '“TerminalModel”:”Model1″,',
  '“TerminalID”:”29531204″, // This should be the device serial number',
  '“SoftwareVersion”:”SomeProcessor v1.2″,',
  '“AckHeartbeat”:”true”',
  '}',
].join('\n');

/** The same Register as a terminal sends it: straight JSON quotes, both braces, no comment. */
export const SEED_REGISTER = `{${SEED_REGISTER_SAMPLE.replace(/[“”″]/g, '"').replace(/ \/\/.*$/m, '')}`;

/**
 * A hand-driven terminal on a raw TCP socket, for what the agent never sends: malformed
 * registrations, lone 0x04 bytes, floods, silence.
 */
export class RawTerminal {
  readonly frames: string[] = [];
  readonly closed: Promise<void>;
  private readonly framer = new EconduitFramer(1024 * 1024);
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const event of this.framer.push(chunk)) {
        if (event.type === 'frame') this.frames.push(event.text);
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.closed.then(() => {
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async connect(port: number, localAddress?: string): Promise<RawTerminal> {
    const socket = connect({
      host: '127.0.0.1',
      port,
      ...(localAddress === undefined ? {} : { localAddress }),
    });
    await once(socket, 'connect');
    return new RawTerminal(socket);
  }

  get isClosed(): boolean {
    return this.socket.destroyed || this.socket.readyState === 'closed';
  }

  /** Sends `text` followed by 0x04 0x04. */
  send(text: string): void {
    this.socket.write(`${text}\x04\x04`);
  }

  sendRaw(bytes: string | Uint8Array): void {
    this.socket.write(bytes);
  }

  /** The next frame from the gateway (in arrival order), or an error after `timeoutMs`. */
  async next(timeoutMs = 5_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.frames.shift();
      if (frame !== undefined) return frame;
      if (this.isClosed) throw new Error('closed without another frame');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no frame in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Registers and returns the gateway's answer. */
  async register(terminalId: string, terminalType = 'Valor', ack = true): Promise<string> {
    this.send(
      JSON.stringify({
        Command: 'Register',
        TerminalType: terminalType,
        TerminalModel: 'Model1',
        TerminalID: terminalId,
        SoftwareVersion: 'SomeProcessor v1.2',
        AckHeartbeat: ack ? 'true' : 'false',
      }),
    );
    return this.next();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
