import type { Logger } from 'pino';
import type { Clock, ClockTimer } from '../core/clock.js';
import { EcrError } from '../core/errors.js';
import { encodeFrame, type EconduitFramer } from '../protocols/econduit/framer.js';
import type { EconduitServerSession, ServerAction } from '../protocols/econduit/session-server.js';
import { Inbox, type LinkClosed, type MessageLink } from '../transports/message-link.js';
import type { ListenerStats } from './listener-stats.js';
import { DEFAULT_PAYLOAD, type PayloadProtocol } from './provisioning.js';

/** What a connection needs from its listener: the shared clock, counters and log, and the hooks. */
export interface ConnectionHost {
  readonly clock: Clock;
  readonly stats: ListenerStats;
  readonly logger: Logger;
  /** Largest message once registered (before, the framer allows a small one). */
  readonly maxFrameBytes: number;
  /** The first message arrived (or the connection ended first): it no longer waits to register. */
  released(connection: TerminalConnection): void;
  /** The first message, to judge; the verdict goes back to the machine. */
  register(connection: TerminalConnection, text: string): void;
  online(connection: TerminalConnection): void;
  /** A registered connection ended, or is being dropped. */
  ended(connection: TerminalConnection, reason: string): void;
}

/**
 * The transaction channel to one registered terminal, for one request: a MessageLink whose
 * messages are the terminal's transaction answers. Closing it releases the channel and keeps the
 * terminal's connection; terminating it drops the connection (an answer that cannot be trusted
 * means the connection is out of step). It closes when the connection does.
 */
export class Channel implements MessageLink {
  readonly closed: Promise<LinkClosed>;
  readonly inbox: Inbox;
  private done = false;
  private resolveClosed!: (closed: LinkClosed) => void;

  constructor(private readonly connection: TerminalConnection) {
    this.inbox = new Inbox(connection.link.remote, (error) => this.connection.drop(error.message));
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  get remote(): string {
    return this.connection.link.remote;
  }

  get isOpen(): boolean {
    return !this.done && this.connection.link.isOpen;
  }

  send(text: string): Promise<void> {
    if (!this.isOpen)
      return Promise.reject(new EcrError('LINK_LOST', `the terminal's connection is closed`));
    return this.connection.link.send(encodeFrame(text));
  }

  onMessage(handler: ((text: string) => void) | undefined): void {
    this.inbox.setHandler(handler);
  }

  close(): void {
    this.end({ code: 1000, reason: 'request done' });
  }

  terminate(): void {
    this.connection.drop('an answer could not be trusted');
  }

  end(closed: LinkClosed): void {
    if (this.done) return;
    this.done = true;
    this.connection.releaseChannel(this);
    this.resolveClosed(closed);
  }
}

/**
 * Runs one terminal connection: messages and deadlines go to its pure session machine
 * (protocols/econduit/session-server.ts), and what it asks for is done here — frames written,
 * the socket closed or dropped, the listener told. Holds what only a runner can: the socket's
 * link, the request channel, the last write, the deadline timer.
 */
export class TerminalConnection {
  channel: Channel | undefined;
  /** Its payload format: set from its provisioning when its Register is accepted. */
  payload: PayloadProtocol = DEFAULT_PAYLOAD;
  /** When it registered, as a date (views show it): `machine.terminal.registeredAt` is clock time. */
  registeredDate = 0;
  private timer: ClockTimer | undefined;
  /** The last write: a refusal closes the connection once its answer is written. */
  private lastWrite: Promise<void> = Promise.resolve();

  constructor(
    readonly link: MessageLink,
    /** Its host, without the port. */
    readonly address: string,
    readonly machine: EconduitServerSession,
    /** Allows a full-size message once registered. */
    private readonly framer: EconduitFramer | undefined,
    private readonly host: ConnectionHost,
  ) {}

  /** Starts the register bound and listens to the link. */
  start(): void {
    const { link, machine } = this;
    this.arm();
    void link.closed.then((closed) => {
      this.host.clock.clearTimeout(this.timer);
      this.host.released(this);
      if (closed.error !== undefined) {
        // Once per connection: an oversize message or broken socket ends it here.
        this.host.logger.warn(
          { remote: link.remote, err: closed.error.message },
          'terminal connection failed',
        );
      }
      if (machine.terminal !== undefined)
        this.host.ended(this, closed.error?.message ?? 'connection closed');
      machine.ended();
    });
    link.onMessage((text) =>
      this.apply(machine.receive(text, this.host.clock.now(), link.bufferedBytes ?? 0)),
    );
  }

  /** The terminal's id, once it registered. */
  get terminalId(): string | undefined {
    return this.machine.terminal?.registration.terminalId;
  }

  /** Does what the machine asked for, in order. */
  apply(actions: readonly ServerAction[]): void {
    const { link, host } = this;
    for (const action of actions) {
      switch (action.type) {
        case 'send':
          this.lastWrite = link.send(action.frame).catch(() => {});
          break;
        case 'register':
          host.clock.clearTimeout(this.timer);
          host.released(this);
          host.register(this, action.text);
          break;
        case 'online':
          this.framer?.setMaxFrameBytes(host.maxFrameBytes);
          host.online(this);
          break;
        case 'heartbeat':
          host.stats.heartbeats++;
          break;
        case 'answer':
          this.channel?.inbox.deliver(action.text);
          break;
        case 'unexpected-answer':
          host.stats.unexpectedAnswers++;
          if (action.first) {
            host.logger.warn(
              { terminalId: this.terminalId },
              'a transaction answer came with no request waiting; ignored',
            );
          }
          break;
        case 'bad-command':
          host.logger.warn(
            { terminalId: this.terminalId, err: action.error.message },
            'bad command from the terminal; ignored (further ones are not logged)',
          );
          break;
        case 'register-timeout':
          host.logger.warn({ remote: link.remote }, 'no Register in time: connection closed');
          link.terminate();
          break;
        case 'close':
          // Refused: the answer is written, then the connection closed.
          void this.lastWrite.finally(() => link.close());
          break;
        case 'drop':
          this.drop(action.reason);
          break;
      }
    }
    this.arm();
  }

  openChannel(): Channel {
    if (!this.machine.beginRequest()) {
      throw new EcrError('TERMINAL_BUSY', `terminal ${this.terminalId} has a request in flight`);
    }
    this.channel = new Channel(this);
    return this.channel;
  }

  releaseChannel(channel: Channel): void {
    if (this.channel !== channel) return;
    this.channel = undefined;
    this.machine.endRequest();
  }

  /** Drops the connection; a registered one goes offline first (its channel ends LINK_LOST). */
  drop(reason: string): void {
    if (this.machine.terminal !== undefined) this.host.ended(this, reason);
    this.machine.ended();
    this.link.terminate();
  }

  /**
   * Sets the timer to the machine's next deadline before the terminal registers (the register
   * bound, the refusal grace). A registered connection is checked by the listener's sweep
   * instead: one timer for all, rather than one re-armed by every heartbeat.
   */
  private arm(): void {
    const { clock } = this.host;
    if (this.timer !== undefined) {
      clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    const type = this.machine.state.type;
    if (type !== 'unregistered' && type !== 'refused') return;
    const deadline = this.machine.nextDeadline();
    if (deadline === undefined) return;
    this.timer = clock.setTimeout(
      () => this.apply(this.machine.tick(clock.now())),
      Math.max(0, deadline - clock.now()),
    );
  }
}
