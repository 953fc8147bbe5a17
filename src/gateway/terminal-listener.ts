import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { z } from 'zod';
import { EcrError, toEcrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { redactPans } from '../core/pan.js';
import { loggerOption, MAX_TIMER_MS, parseOptions, wholeNumber } from '../core/options.js';
import {
  ECONDUIT_MAX_FRAME_BYTES,
  EconduitFramer,
  encodeFrame,
} from '../protocols/econduit/framer.js';
import {
  decodeRegisterCommand,
  decodeTerminalMessage,
  HEARTBEAT_ACK,
  type Registration,
  type RegistrationResult,
} from '../protocols/econduit/messages.js';
import {
  Inbox,
  type LinkClosed,
  type LinkSource,
  type MessageLink,
} from '../transports/message-link.js';
import type { Awaitable } from '../core/journal-port.js';
import type { ListeningServer } from '../transports/serve.js';
import { listenTcp } from '../transports/tcp.js';
import {
  loadTlsServer,
  tlsServerOption,
  type TlsServerConfig,
  type TlsServerInput,
} from '../transports/tls.js';
import {
  judgeRegistration,
  maskRegistration,
  type PayloadProtocol,
  type ProvisionedTerminal,
} from './provisioning.js';
import { AddressRateLimiter } from './rate-limit.js';
import {
  checkClientCa,
  identityOptionShape,
  judgeIdentity,
  refusalCounts,
  type IdentityRefusal,
  type TerminalIdentityOptions,
} from './terminal-identity.js';

export {
  PAYLOAD_PROTOCOLS,
  type PayloadProtocol,
  type ProvisionedTerminal,
} from './provisioning.js';

/** Where terminals connect (seed 002's testing endpoint port). */
export const GATEWAY_TERMINAL_PORT = 9001;
/** How often an idle terminal sends a heartbeat (seed 002: "once per minute"). */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 60_000;
/** A terminal silent for this many heartbeat intervals is offline and its socket closed. */
export const DEFAULT_MISSED_HEARTBEATS = 3;
/** A connection must register within this long, or it is closed. */
export const DEFAULT_REGISTER_TIMEOUT_MS = 10_000;
/** Terminal connections held at most (20,000 open files per process here). */
export const DEFAULT_MAX_TERMINAL_CONNECTIONS = 18_000;
/** Connections one address may hold open before they register. */
export const DEFAULT_MAX_UNREGISTERED_PER_ADDRESS = 64;
/** Largest message before Register (a Register is a few hundred bytes). */
export const UNREGISTERED_MAX_FRAME_BYTES = 4 * 1024;
/** Answers a terminal has not read past this many bytes: it is not reading, its socket is closed. */
export const MAX_UNREAD_BYTES = 64 * 1024;
/** A refused connection gets this long to read its answer before its socket is dropped. */
const REFUSAL_GRACE_MS = 1_000;
/** Messages a connection may send while its Register is being checked; more drops it. */
const MAX_EARLY_MESSAGES = 8;
/** Registrations one address may make at once, then per second. */
export const DEFAULT_REGISTRATION_BURST = 100;
export const DEFAULT_REGISTRATIONS_PER_SECOND = 20;

export interface TerminalListenerOptions extends TerminalIdentityOptions {
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** 0 picks a free one. @default GATEWAY_TERMINAL_PORT */
  readonly port?: number;
  /**
   * An allow-list: only these terminal types may register (FAILED-INVALID-TERMINAL-TYPE for any
   * other, provisioned or not). Each terminal's own type and payload format come from its
   * provisioning. @default any type (the one each terminal is provisioned with)
   */
  readonly terminalTypes?: readonly string[];
  /** The provisioned terminal with this id, or undefined (it gets FAILED-REGISTRATION). */
  readonly lookup: (terminalId: string) => Awaitable<ProvisionedTerminal | undefined>;
  /** @default DEFAULT_HEARTBEAT_INTERVAL_MS */
  readonly heartbeatIntervalMs?: number;
  /** @default DEFAULT_MISSED_HEARTBEATS */
  readonly missedHeartbeats?: number;
  /** @default DEFAULT_REGISTER_TIMEOUT_MS */
  readonly registerTimeoutMs?: number;
  /** @default ECONDUIT_MAX_FRAME_BYTES */
  readonly maxFrameBytes?: number;
  /** @default DEFAULT_MAX_TERMINAL_CONNECTIONS */
  readonly maxConnections?: number;
  /** @default DEFAULT_REGISTRATION_BURST */
  readonly registrationBurst?: number;
  /** @default DEFAULT_REGISTRATIONS_PER_SECOND */
  readonly registrationsPerSecond?: number;
  /** @default DEFAULT_MAX_UNREGISTERED_PER_ADDRESS */
  readonly maxUnregisteredPerAddress?: number;
  /**
   * Speak TLS only, with this certificate and key (files or PEM text): a plain TCP connection
   * is refused at its first bytes, and the TLS handshake must be done within
   * `registerTimeoutMs`. @default plain TCP
   */
  readonly tls?: TlsServerInput;
  readonly logger?: Logger;
}

const OPTIONS = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: wholeNumber(0, 65_535).default(GATEWAY_TERMINAL_PORT),
  terminalTypes: z
    .array(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'type names: 1-64 letters, digits, . _ -'))
    .min(1, 'must name at least one type (leave it out to accept any provisioned type)')
    .max(1_000)
    .optional(),
  lookup: z.custom<(terminalId: string) => Awaitable<ProvisionedTerminal | undefined>>(
    (value) => typeof value === 'function',
    'must be a function',
  ),
  heartbeatIntervalMs: wholeNumber(10, MAX_TIMER_MS).default(DEFAULT_HEARTBEAT_INTERVAL_MS),
  missedHeartbeats: wholeNumber(1, 100).default(DEFAULT_MISSED_HEARTBEATS),
  registerTimeoutMs: wholeNumber(10, MAX_TIMER_MS).default(DEFAULT_REGISTER_TIMEOUT_MS),
  maxFrameBytes: wholeNumber(256, 16 * 1024 * 1024).default(ECONDUIT_MAX_FRAME_BYTES),
  maxConnections: wholeNumber(1, 1_000_000).default(DEFAULT_MAX_TERMINAL_CONNECTIONS),
  registrationBurst: wholeNumber(1, 1_000_000).default(DEFAULT_REGISTRATION_BURST),
  registrationsPerSecond: wholeNumber(1, 1_000_000).default(DEFAULT_REGISTRATIONS_PER_SECOND),
  maxUnregisteredPerAddress: wholeNumber(1, 1_000_000).default(
    DEFAULT_MAX_UNREGISTERED_PER_ADDRESS,
  ),
  tls: tlsServerOption().optional(),
  ...identityOptionShape(),
  logger: loggerOption(),
});

/** A registered terminal, as the rest of the gateway sees it. */
export interface TerminalInfo extends Registration {
  readonly payload: PayloadProtocol;
  /** The terminal's address, `host:port`. */
  readonly remote: string;
  /** When this connection registered (ms since the epoch). */
  readonly registeredAt: number;
  /** When the terminal last sent anything. */
  readonly lastSeenAt: number;
  /** A transaction is on its way to or from the terminal. */
  readonly busy: boolean;
}

/** Counters for `/metrics`. */
export interface ListenerStats {
  readonly registrations: Record<RegistrationResult | 'rate-limited', number>;
  heartbeats: number;
  /** Transaction answers that came with no request waiting (ignored). */
  unexpectedAnswers: number;
  /**
   * Registrations from another address that replaced a connection of the same terminal gone
   * silent past its heartbeat window (a terminal that moved), before the sweep dropped it.
   */
  replacedFromElsewhere: number;
  /**
   * Registrations refused because the terminal is live on another address (an impostor, or two
   * devices sharing a serial): the live connection keeps its place.
   */
  refusedFromElsewhere: number;
  /**
   * Registrations of a terminal provisioned with a secret or a certificate requirement that did
   * not prove it, by why (terminal-identity.ts): refused FAILED-REGISTRATION.
   */
  readonly refusedCredentials: Record<IdentityRefusal, number>;
  /**
   * Registrations that proved the terminal's identity and replaced a live connection of it from
   * another address (a terminal that moved; repeated, two holders of one terminal's credentials).
   */
  replacedVerified: number;
  /** TLS listener: connections closed for a failed or missing TLS handshake (plain TCP, …). */
  tlsRefused: number;
}

type ListenerEvents = {
  /** A terminal registered (again): a fresh connection, ready for transactions. */
  online: [TerminalInfo];
  /** A terminal's connection ended (closed, silent, replaced by a newer one). */
  offline: [TerminalInfo, string];
  /** TLS listener: a connection was refused for its handshake (its address, and why). */
  tlsRefused: [string, string];
};

/**
 * The transaction channel to one registered terminal, for one request: a MessageLink whose
 * messages are the terminal's transaction answers. Closing it releases the channel and keeps the
 * terminal's connection; terminating it drops the connection (an answer that cannot be trusted
 * means the connection is out of step). It closes when the connection does.
 */
class Channel implements MessageLink {
  readonly closed: Promise<LinkClosed>;
  readonly inbox: Inbox;
  private done = false;
  private resolveClosed!: (closed: LinkClosed) => void;

  constructor(private readonly session: Session) {
    this.inbox = new Inbox(session.link.remote, (error) => this.session.drop(error.message));
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  get remote(): string {
    return this.session.link.remote;
  }

  get isOpen(): boolean {
    return !this.done && this.session.link.isOpen;
  }

  send(text: string): Promise<void> {
    if (!this.isOpen)
      return Promise.reject(new EcrError('LINK_LOST', `the terminal's connection is closed`));
    return this.session.link.send(encodeFrame(text));
  }

  onMessage(handler: ((text: string) => void) | undefined): void {
    this.inbox.setHandler(handler);
  }

  close(): void {
    this.end({ code: 1000, reason: 'request done' });
  }

  terminate(): void {
    this.session.drop('an answer could not be trusted');
  }

  end(closed: LinkClosed): void {
    if (this.done) return;
    this.done = true;
    this.session.releaseChannel(this);
    this.resolveClosed(closed);
  }
}

/** One registered connection. */
class Session {
  channel: Channel | undefined;
  lastSeenAt: number;
  readonly registeredAt: number;
  /** Warned about an answer with no request waiting (once per connection). */
  warnedUnexpected = false;
  /** Warned about a bad command (once per connection). */
  warnedBadCommand = false;

  constructor(
    readonly link: MessageLink,
    readonly registration: Registration,
    readonly payload: PayloadProtocol,
    private readonly onDrop: (session: Session, reason: string) => void,
  ) {
    this.registeredAt = Date.now();
    this.lastSeenAt = this.registeredAt;
  }

  info(): TerminalInfo {
    return {
      ...this.registration,
      payload: this.payload,
      remote: this.link.remote,
      registeredAt: this.registeredAt,
      lastSeenAt: this.lastSeenAt,
      busy: this.channel !== undefined,
    };
  }

  openChannel(): Channel {
    if (this.channel !== undefined) {
      throw new EcrError(
        'TERMINAL_BUSY',
        `terminal ${this.registration.terminalId} has a request in flight`,
      );
    }
    this.channel = new Channel(this);
    return this.channel;
  }

  releaseChannel(channel: Channel): void {
    if (this.channel === channel) this.channel = undefined;
  }

  /** Drops the connection (its channel ends with LINK_LOST). */
  drop(reason: string): void {
    this.onDrop(this, reason);
    this.link.terminate();
  }
}

/**
 * The gateway's TCP listener for terminals (seed 002): every message ends with 0x04 0x04. A
 * connection must first `Register` (OK-REGISTRATION, FAILED-REGISTRATION for anything malformed,
 * unknown or unprovisioned, FAILED-INVALID-TERMINAL-TYPE for a type other than the one
 * provisioned or outside the `terminalTypes` allow-list; a failed registration is answered, then
 * closed). Registered terminals
 * heartbeat (`{"Status":"OK"}` when they asked for acks); one silent for `missedHeartbeats`
 * intervals while idle is offline and its socket closed. A terminal that registers again on a
 * new connection replaces the old one, half-open or not. Transactions go out through
 * `linkSource(id)`, one at a time per terminal.
 */
export class TerminalListener extends EventEmitter<ListenerEvents> {
  readonly stats: ListenerStats = {
    registrations: {
      'OK-REGISTRATION': 0,
      'FAILED-REGISTRATION': 0,
      'FAILED-INVALID-TERMINAL-TYPE': 0,
      'rate-limited': 0,
    },
    heartbeats: 0,
    unexpectedAnswers: 0,
    replacedFromElsewhere: 0,
    refusedFromElsewhere: 0,
    refusedCredentials: refusalCounts(),
    replacedVerified: 0,
    tlsRefused: 0,
  };
  private readonly options: Readonly<z.output<typeof OPTIONS>>;
  private readonly logger: Logger;
  private readonly sessions = new Map<string, Session>();
  private readonly limiter: AddressRateLimiter;
  /** Addresses already warned about hitting the registration limit (once each until it clears). */
  private readonly warnedLimited = new Set<string>();
  /** Connections not registered yet, per address. */
  private readonly unregistered = new Map<string, number>();
  /** The framer of the connection being accepted (made just before `accept` runs). */
  private accepting: EconduitFramer | undefined;
  private server: ListeningServer | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  /** The checked certificate and key, when the listener speaks TLS. */
  private readonly tls: TlsServerConfig | undefined;

  constructor(input: TerminalListenerOptions) {
    super();
    this.options = parseOptions(OPTIONS, input, 'TerminalListener');
    this.tls = this.options.tls === undefined ? undefined : loadTlsServer(this.options.tls);
    checkClientCa(this.options.tlsClientCa, this.tls !== undefined);
    this.logger = (this.options.logger ?? silentLogger).child({ component: 'terminal-listener' });
    this.limiter = new AddressRateLimiter(
      this.options.registrationBurst,
      this.options.registrationsPerSecond,
    );
  }

  get port(): number {
    return this.server?.port ?? 0;
  }

  get host(): string {
    return this.options.host;
  }

  /** Whether terminals must connect over TLS. */
  get secure(): boolean {
    return this.tls !== undefined;
  }

  /** Whether terminals can connect: started and not closed. */
  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  /** Terminal connections open now, registered or not. */
  get connectionCount(): number {
    return this.server?.connections ?? 0;
  }

  /** Terminals registered now. */
  get onlineCount(): number {
    return this.sessions.size;
  }

  async start(): Promise<this> {
    this.server = await listenTcp({
      host: this.options.host,
      port: this.options.port,
      framer: () => {
        this.accepting = new EconduitFramer(
          Math.min(UNREGISTERED_MAX_FRAME_BYTES, this.options.maxFrameBytes),
        );
        return this.accepting;
      },
      onConnection: (link) => this.accept(link),
      maxConnections: this.options.maxConnections,
      ...(this.tls === undefined
        ? {}
        : {
            // A connection that never finishes its handshake is bound like one that never
            // registers (slow-loris).
            tls: {
              ...this.tls,
              handshakeTimeoutMs: this.options.registerTimeoutMs,
              maxHandshakesPerAddress: this.options.maxUnregisteredPerAddress,
              ...(this.options.tlsClientCa === undefined
                ? {}
                : { clientCa: this.options.tlsClientCa }),
            },
            onTlsError: (remote: string, reason: string) => {
              this.stats.tlsRefused++;
              // Debug only: a plain client retrying would flood the log; the metric counts them.
              this.logger.debug({ remote, reason }, 'TLS handshake failed: connection closed');
              this.emit('tlsRefused', remote, reason);
            },
          }),
    });
    const every = Math.min(this.options.heartbeatIntervalMs, 5_000);
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
    this.logger.info({ port: this.port, tls: this.secure }, 'listening for terminals');
    return this;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const session of [...this.sessions.values()]) session.drop('the gateway is stopping');
    await this.server?.close();
  }

  /** The registered terminal with this id, if it is online. */
  terminal(terminalId: string): TerminalInfo | undefined {
    return this.sessions.get(terminalId)?.info();
  }

  /** Whether terminals of this type may register here (the `terminalTypes` allow-list, if any). */
  accepts(terminalType: string): boolean {
    return this.options.terminalTypes?.includes(terminalType) ?? true;
  }

  isOnline(terminalId: string): boolean {
    return this.sessions.has(terminalId);
  }

  /** Every terminal online now. */
  terminals(): TerminalInfo[] {
    return [...this.sessions.values()].map((s) => s.info());
  }

  /** Drops a terminal's connection (an operator's action, or a newer registration elsewhere). */
  disconnect(terminalId: string, reason: string): boolean {
    const session = this.sessions.get(terminalId);
    session?.drop(reason);
    return session !== undefined;
  }

  /**
   * How a driver reaches `terminalId`: each `open` takes the channel of the connection the
   * terminal holds at that moment, or fails with TERMINAL_OFFLINE (nothing sent).
   */
  linkSource(terminalId: string): LinkSource {
    return {
      endpoint: `econduit://${terminalId}`,
      open: (signal?: AbortSignal) => {
        if (signal?.aborted === true)
          return Promise.reject(new EcrError('ABORTED', 'cancelled before the request was sent'));
        const session = this.sessions.get(terminalId);
        if (session === undefined || !session.link.isOpen) {
          return Promise.reject(
            new EcrError(
              'TERMINAL_OFFLINE',
              `terminal ${terminalId} is offline: it holds no connection to the gateway (nothing was sent)`,
            ),
          );
        }
        try {
          return Promise.resolve(session.openChannel());
        } catch (error) {
          return Promise.reject(toEcrError(error));
        }
      },
    };
  }

  private accept(link: MessageLink): void {
    const framer = this.accepting;
    this.accepting = undefined;
    const address = addressOf(link.remote);
    const pending = (this.unregistered.get(address) ?? 0) + 1;
    if (pending > this.options.maxUnregisteredPerAddress) {
      this.warnOnce(address, 'too many unregistered connections from this address: refusing');
      link.terminate();
      return;
    }
    this.unregistered.set(address, pending);
    let waiting = true;
    const registered = () => {
      if (!waiting) return;
      waiting = false;
      const left = (this.unregistered.get(address) ?? 1) - 1;
      if (left > 0) this.unregistered.set(address, left);
      else this.unregistered.delete(address);
    };
    let session: Session | undefined;
    const timer = setTimeout(() => {
      this.logger.warn({ remote: link.remote }, 'no Register in time: connection closed');
      link.terminate();
    }, this.options.registerTimeoutMs);
    void link.closed.then((closed) => {
      clearTimeout(timer);
      registered();
      if (closed.error !== undefined) {
        // Once per connection: an oversize message or broken socket ends it here.
        this.logger.warn(
          { remote: link.remote, err: closed.error.message },
          'terminal connection failed',
        );
      }
      if (session !== undefined) this.ended(session, closed.error?.message ?? 'connection closed');
    });
    /** What arrives while the Register is checked (a heartbeat sent without waiting). */
    let early: string[] | undefined;
    link.onMessage((text) => {
      if (session !== undefined) {
        this.receive(session, text);
        return;
      }
      if (early !== undefined) {
        if (early.length >= MAX_EARLY_MESSAGES) link.terminate();
        else early.push(text);
        return;
      }
      if (!waiting) return;
      clearTimeout(timer);
      registered();
      early = [];
      void this.register(link, address, text).then((accepted) => {
        const queued = early ?? [];
        early = undefined;
        session = accepted;
        if (accepted === undefined) {
          // Refused: the answer gets a moment to be read, then the socket goes (a peer that
          // never closes its side must not keep the slot).
          setTimeout(() => link.terminate(), REFUSAL_GRACE_MS).unref();
          return;
        }
        framer?.setMaxFrameBytes(this.options.maxFrameBytes);
        for (const message of queued) this.receive(accepted, message);
      });
    });
  }

  /** Logs a warning about an address once until the set of warned addresses is reset. */
  private warnOnce(address: string, message: string): void {
    if (this.warnedLimited.has(address)) return;
    if (this.warnedLimited.size >= 10_000) this.warnedLimited.clear();
    this.warnedLimited.add(address);
    this.logger.warn({ address }, message);
  }

  /** The first message on a connection: a Register, or the connection ends after the answer. */
  private async register(
    link: MessageLink,
    address: string,
    text: string,
  ): Promise<Session | undefined> {
    const refuse = (
      result: RegistrationResult | 'rate-limited',
      why: string,
      terminalId?: string,
    ) => {
      this.stats.registrations[result]++;
      if (result !== 'rate-limited') {
        const serial = terminalId === undefined ? undefined : redactPans(terminalId);
        this.logger.warn({ remote: link.remote, terminalId: serial, why }, result);
      }
      void link
        .send(encodeFrame(result === 'rate-limited' ? 'FAILED-REGISTRATION' : result))
        .catch(() => {})
        .finally(() => link.close());
      link.onMessage(undefined);
      return undefined;
    };
    if (!this.limiter.take(address)) {
      this.warnOnce(address, 'too many registrations from this address: refusing for now');
      return refuse('rate-limited', 'rate limited');
    }
    this.warnedLimited.delete(address);
    let registration: Registration;
    // The presented secret stays in this function: never in the registration, a log or a view.
    let presentedSecret: string | undefined;
    try {
      const command = decodeRegisterCommand(text);
      registration = maskRegistration(command.registration);
      presentedSecret = command.terminalSecret;
    } catch (error) {
      return refuse('FAILED-REGISTRATION', toEcrError(error).message);
    }
    const { terminalId, terminalType } = registration;
    if (!this.accepts(terminalType)) {
      return refuse(
        'FAILED-INVALID-TERMINAL-TYPE',
        `TerminalType: must be one of ${this.options.terminalTypes?.join(', ')} (this gateway's allow-list)`,
        terminalId,
      );
    }
    let provisioned: ProvisionedTerminal | undefined;
    let proven = false;
    try {
      provisioned = await this.options.lookup(terminalId);
      // A terminal provisioned with a secret or a certificate must prove it before anything
      // else is said about it (its type included).
      if (provisioned !== undefined) {
        const identity = await judgeIdentity({
          terminalId,
          provisioned,
          presentedSecret,
          peer: link.tlsPeer,
          checkSecret: this.options.checkSecret,
        });
        if (identity.type === 'refused') {
          this.stats.refusedCredentials[identity.reason]++;
          return refuse('FAILED-REGISTRATION', identity.why, terminalId);
        }
        proven = identity.type === 'proven';
      }
    } catch (error) {
      // The database is away for a moment: not a verdict on the terminal. The connection just
      // ends, and the terminal registers again after its back-off.
      this.logger.error(
        { terminalId, err: toEcrError(error).message },
        'terminal lookup or secret check failed: connection closed, the terminal will register again',
      );
      link.terminate();
      return undefined;
    }
    const verdict = judgeRegistration(registration, provisioned);
    if ('result' in verdict) return refuse(verdict.result, verdict.why, terminalId);
    // The connection may have ended while the terminal was looked up.
    if (!link.isOpen) return undefined;
    // A live terminal keeps its place: the seed's Register carries no secret, so a registration
    // of a terminal heard within its heartbeat window (or in the middle of a transaction) from
    // another address is refused, whoever sent it. The same address replaces its own half-open
    // connection; another address takes over only once the terminal has gone silent. A terminal
    // that proved its identity (terminal-identity.ts) takes its place from any address at once:
    // no impostor can, so the live connection is its own stale one, or a clone's.
    const previous = this.sessions.get(terminalId);
    if (previous !== undefined) {
      const before = addressOf(previous.link.remote);
      if (before !== address && proven) {
        this.stats.replacedVerified++;
        this.logger.warn(
          { terminalId: redactPans(terminalId), remote: link.remote, before },
          'the terminal proved its identity from another address: its old connection is replaced',
        );
      } else if (before !== address) {
        const silentFor = Date.now() - previous.lastSeenAt;
        if (previous.channel !== undefined || silentFor <= this.silenceLimitMs()) {
          this.stats.refusedFromElsewhere++;
          return refuse(
            'FAILED-REGISTRATION',
            `TerminalID: live from ${before} (heard ${silentFor} ms ago): a registration from another address may take over only after ${this.silenceLimitMs()} ms of silence`,
            terminalId,
          );
        }
        this.stats.replacedFromElsewhere++;
        this.logger.warn(
          { terminalId: redactPans(terminalId), remote: link.remote, before, silentFor },
          'a silent terminal registered from another address: its old connection is replaced',
        );
      }
    }
    const session = new Session(link, registration, verdict.payload, (s, reason) =>
      this.ended(s, reason),
    );
    this.sessions.set(terminalId, session);
    if (previous !== undefined)
      previous.drop('replaced by a new registration of the same terminal');
    this.stats.registrations['OK-REGISTRATION']++;
    void link.send(encodeFrame('OK-REGISTRATION')).catch(() => {});
    this.logger.info({ terminalId, remote: link.remote, terminalType }, 'terminal online');
    this.emit('online', session.info());
    return session;
  }

  private receive(session: Session, text: string): void {
    session.lastSeenAt = Date.now();
    let message;
    try {
      message = decodeTerminalMessage(text);
    } catch (error) {
      if (!session.warnedBadCommand) {
        session.warnedBadCommand = true;
        this.logger.warn(
          { terminalId: session.registration.terminalId, err: toEcrError(error).message },
          'bad command from the terminal; ignored (further ones are not logged)',
        );
      }
      return;
    }
    switch (message.type) {
      case 'heartbeat':
        this.stats.heartbeats++;
        if (!session.registration.ackHeartbeat) return;
        if ((session.link.bufferedBytes ?? 0) > MAX_UNREAD_BYTES) {
          // It sends and never reads: its answers would pile up in memory.
          session.drop(`more than ${MAX_UNREAD_BYTES} bytes of answers left unread`);
          return;
        }
        void session.link.send(encodeFrame(HEARTBEAT_ACK)).catch(() => {});
        return;
      case 'register':
        // The same connection registering again: still the same terminal and connection.
        if (message.terminalId !== session.registration.terminalId) {
          session.drop('registered again as another terminal');
          return;
        }
        void session.link.send(encodeFrame('OK-REGISTRATION')).catch(() => {});
        return;
      case 'payload':
        if (session.channel === undefined) {
          this.stats.unexpectedAnswers++;
          if (!session.warnedUnexpected) {
            session.warnedUnexpected = true;
            this.logger.warn(
              { terminalId: session.registration.terminalId },
              'a transaction answer came with no request waiting; ignored',
            );
          }
          return;
        }
        session.channel.inbox.deliver(message.text);
        return;
    }
  }

  /** A session's connection ended (or is being dropped): it is offline unless already replaced. */
  private ended(session: Session, reason: string): void {
    const id = session.registration.terminalId;
    session.channel?.end({
      code: 1006,
      reason,
      error: new EcrError('LINK_LOST', `the terminal's connection ended: ${reason}`),
    });
    if (this.sessions.get(id) !== session) return;
    this.sessions.delete(id);
    this.logger.info({ terminalId: id, reason }, 'terminal offline');
    this.emit('offline', session.info(), reason);
  }

  /** How long an idle terminal may stay silent before its connection counts as gone. */
  private silenceLimitMs(): number {
    return this.options.heartbeatIntervalMs * this.options.missedHeartbeats;
  }

  /** Closes the connections of terminals silent too long while idle. */
  private sweep(): void {
    const limit = this.silenceLimitMs();
    const now = Date.now();
    for (const session of [...this.sessions.values()]) {
      // A request in flight has its own answer bound; a terminal at the card step does not
      // heartbeat (it is not idle).
      if (session.channel === undefined && now - session.lastSeenAt > limit)
        session.drop(`silent for more than ${limit} ms`);
    }
  }
}

/** The host part of a `host:port` remote (IPv6 hosts keep their colons). */
function addressOf(remote: string): string {
  return remote.slice(0, remote.lastIndexOf(':'));
}
