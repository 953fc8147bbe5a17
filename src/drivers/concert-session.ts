import type { Logger } from 'pino';
import {
  CONCERT_EOT_TIMEOUT_MS,
  ConcertLink,
  type ConcertLinkEvent,
  type ConcertLinkOptions,
  type ConcertLinkStep,
} from '../protocols/concert/link.js';
import type { ByteStream, StreamClosed } from '../transports/byte-stream.js';

export interface ConcertSessionOptions extends ConcertLinkOptions {
  readonly onEvent: (event: ConcertLinkEvent) => void;
  readonly logger: Logger;
  /** Hook for the simulator's line noise: what each write really puts on the wire. */
  readonly corrupt?: (bytes: Uint8Array) => Uint8Array;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * Runs the pure Concert link state machine (`protocols/concert/link.ts`) over a byte stream:
 * bytes in are pushed to it, the bytes it asks for are written, and its deadlines become one
 * timer. Shared by the driver (role `pos`) and the simulator (role `terminal`), so that both
 * ends run the very same link code.
 */
export class ConcertSession {
  readonly link: ConcertLink;
  /** True once any byte came from the peer: a terminal that never answered cannot have charged. */
  heardFromPeer = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /** The last write: closing waits for it, so a final ACK or EOT is not cut off. */
  private lastWrite: Promise<void> = Promise.resolve();
  /** Called after each step; `close` uses it to wait for the exchange in progress to end. */
  private onStep: (() => void) | undefined;

  constructor(
    private readonly stream: ByteStream,
    private readonly options: ConcertSessionOptions,
  ) {
    this.link = new ConcertLink(options);
    this.now = options.now ?? Date.now;
    stream.onData((chunk) => {
      this.heardFromPeer = true;
      this.apply(this.link.push(chunk, this.now()));
    });
    void stream.closed.then(() => clearTimeout(this.timer));
  }

  get closed(): Promise<StreamClosed> {
    return this.stream.closed;
  }

  get isOpen(): boolean {
    return this.stream.isOpen;
  }

  /** Starts the exchange that carries `data` in one frame. */
  send(data: string): void {
    this.apply(this.link.send(data, this.now()));
  }

  /**
   * Lets the exchange in progress end first (the peer's EOT after our last ACK, or our EOT
   * after its ACK), within the EOT bound, and the last bytes drain; then closes the stream.
   * Closing in the middle would leave the peer waiting for an ACK it never gets, deaf to the
   * next ENQ for its whole ACK timeout.
   */
  async close(): Promise<void> {
    if (this.stream.isOpen && this.link.state !== 'idle') {
      await new Promise<void>((resolve) => {
        const bound = setTimeout(resolve, this.options.eotTimeoutMs ?? CONCERT_EOT_TIMEOUT_MS);
        const done = (): void => {
          clearTimeout(bound);
          resolve();
        };
        this.onStep = () => {
          if (this.link.state === 'idle') done();
        };
        // A peer that hangs up instead of sending EOT ends the exchange too: nothing to wait for.
        void this.stream.closed.then(done);
      });
      this.onStep = undefined;
    }
    await this.lastWrite;
    clearTimeout(this.timer);
    await this.stream.close();
  }

  private apply(step: ConcertLinkStep): void {
    if (step.write.length > 0) {
      const bytes = this.options.corrupt?.(step.write) ?? step.write;
      this.lastWrite = this.stream.write(bytes).catch((error: unknown) => {
        // The stream's `closed` reports the loss; the outcome is decided there.
        this.options.logger.debug({ err: (error as Error).message }, 'write to peer failed');
      });
    }
    for (const event of step.events) this.options.onEvent(event);
    clearTimeout(this.timer);
    const deadline = this.link.nextDeadline();
    if (deadline !== undefined && this.stream.isOpen) {
      this.timer = setTimeout(
        () => this.apply(this.link.tick(this.now())),
        Math.max(0, deadline - this.now()),
      );
    }
    this.onStep?.();
  }
}
