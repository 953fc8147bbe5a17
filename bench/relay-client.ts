/** The bench's POS side of bench/relay.ts: a raw TCP connection to its POS port. */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

const HOST = '127.0.0.1';
const TERMINATOR = Buffer.from([0x04, 0x04]);
/** Bound on the connect and on each answer. */
const CALL_TIMEOUT_MS = 30_000;

/** A raw TCP connection to the relay's POS port: one request at a time, answers end 0x04 0x04. */
export class RelayConnection {
  private held: Buffer | undefined;
  private waiting: ((frame: Buffer) => void) | undefined;
  private failed: Error | undefined;
  private fail: ((error: Error) => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.data(chunk));
    socket.on('error', (error) => this.end(error));
    socket.on('close', () => this.end(new Error('the relay closed the POS connection')));
  }

  static async open(port: number): Promise<RelayConnection> {
    const socket = connect({ host: HOST, port });
    const timer = setTimeout(
      () =>
        socket.destroy(
          new Error(`cannot connect to the relay's POS port within ${CALL_TIMEOUT_MS} ms`),
        ),
      CALL_TIMEOUT_MS,
    );
    try {
      await once(socket, 'connect');
    } finally {
      clearTimeout(timer);
    }
    return new RelayConnection(socket);
  }

  /** Writes `bytes` and resolves with the next message (0x04 0x04 excluded). */
  request(bytes: Buffer): Promise<Buffer> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        this.fail = undefined;
        reject(new Error(`no answer from the relay within ${CALL_TIMEOUT_MS} ms`));
        this.socket.destroy();
      }, CALL_TIMEOUT_MS);
      this.waiting = (frame) => {
        clearTimeout(timer);
        resolve(frame);
      };
      this.fail = (error) => {
        clearTimeout(timer);
        reject(error);
      };
      this.socket.write(bytes);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private data(chunk: Buffer): void {
    const bytes = this.held === undefined ? chunk : Buffer.concat([this.held, chunk]);
    this.held = undefined;
    const at = bytes.indexOf(TERMINATOR);
    if (at < 0) {
      this.held = bytes;
      return;
    }
    if (at + 2 < bytes.length) {
      this.end(new Error('the relay sent more than one answer'));
      return;
    }
    const waiting = this.waiting;
    this.waiting = undefined;
    this.fail = undefined;
    if (waiting === undefined) this.end(new Error('the relay sent an answer nobody asked for'));
    else waiting(bytes.subarray(0, at));
  }

  private end(error: Error): void {
    this.failed ??= error;
    const fail = this.fail;
    this.waiting = undefined;
    this.fail = undefined;
    fail?.(error);
  }
}
