import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { systemClock, type Clock, type ClockTimer } from '../core/clock.js';
import { EcrError, toEcrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { parseOptions } from '../core/options.js';
import { redactPans } from '../core/pan.js';
import { EconduitFramer } from '../protocols/econduit/framer.js';
import type { Registration, RegistrationResult } from '../protocols/econduit/messages.js';
import { EconduitServerSession } from '../protocols/econduit/session-server.js';
import type { LinkSource, MessageLink } from '../transports/message-link.js';
import type { ListeningServer } from '../transports/serve.js';
import { listenTcp } from '../transports/tcp.js';
import { loadTlsServer, type TlsServerConfig } from '../transports/tls.js';
import { newListenerStats, type ListenerStats } from './listener-stats.js';
import type { PayloadProtocol } from './provisioning.js';
import { checkClientCa } from './terminal-identity.js';
import { TerminalConnection, type ConnectionHost } from './terminal-connection.js';
import {
  LISTENER_OPTIONS,
  MAX_SWEEP_INTERVAL_MS,
  UNREGISTERED_MAX_FRAME_BYTES,
  type ListenerSettings,
  type TerminalListenerOptions,
} from './terminal-listener-options.js';
import { AddressWarnings, judgeTakeover, RegistrationChecks } from './terminal-registration.js';

export {
  PAYLOAD_PROTOCOLS,
  type PayloadProtocol,
  type ProvisionedTerminal,
} from './provisioning.js';

/** A registered terminal, as the rest of the gateway sees it. */
export interface TerminalInfo extends Registration {
  readonly payload: PayloadProtocol;
  /** The terminal's address, `host:port`. */
  readonly remote: string;
  /** When this connection registered (ms since the epoch). */
  readonly registeredAt: number;
  /** When the terminal last sent anything (ms since the epoch). */
  readonly lastSeenAt: number;
  /** A transaction is on its way to or from the terminal. */
  readonly busy: boolean;
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
 * The gateway's TCP listener for terminals (seed 002): every message ends with 0x04 0x04. A
 * connection must first `Register` (OK-REGISTRATION, FAILED-REGISTRATION for anything malformed,
 * unknown or unprovisioned, FAILED-INVALID-TERMINAL-TYPE for a type other than the one
 * provisioned or outside the `terminalTypes` allow-list; a failed registration is answered, then
 * closed). Registered terminals heartbeat (`{"Status":"OK"}` when they asked for acks); one silent
 * for `missedHeartbeats` intervals while idle is offline and its socket closed. A terminal that
 * registers again on a new connection replaces the old one, half-open or not. Transactions go out
 * through `linkSource(id)`, one at a time per terminal.
 *
 * A runner: each connection's protocol is the pure `EconduitServerSession`; this class holds the
 * sockets, the timers (one per connection before it registers, one sweep for the registered) and
 * what spans connections (the terminals online, the allowance per address, the checks).
 */
export class TerminalListener extends EventEmitter<ListenerEvents> {
  readonly stats: ListenerStats = newListenerStats();
  private readonly options: ListenerSettings;
  private readonly clock: Clock;
  private readonly logger: Logger;
  /** Registered connections, by TerminalID. */
  private readonly online = new Map<string, TerminalConnection>();
  private readonly warnings: AddressWarnings;
  private readonly checks: RegistrationChecks;
  /** Connections not registered yet, per address. */
  private readonly unregistered = new Map<string, number>();
  /** The connections counted in `unregistered`. */
  private readonly waiting = new Set<TerminalConnection>();
  /** What each connection's runner is lent. */
  private readonly connectionHost: ConnectionHost;
  /** The framer of the connection being accepted (made just before `accept` runs). */
  private accepting: EconduitFramer | undefined;
  private server: ListeningServer | undefined;
  private sweeper: ClockTimer | undefined;
  /** The checked certificate and key, when the listener speaks TLS. */
  private readonly tls: TlsServerConfig | undefined;

  constructor(input: TerminalListenerOptions) {
    super();
    this.options = parseOptions(LISTENER_OPTIONS, input, 'TerminalListener');
    this.clock = this.options.clock ?? systemClock;
    this.tls = this.options.tls === undefined ? undefined : loadTlsServer(this.options.tls);
    checkClientCa(this.options.tlsClientCa, this.tls !== undefined);
    this.logger = (this.options.logger ?? silentLogger).child({ component: 'terminal-listener' });
    this.warnings = new AddressWarnings(this.logger);
    this.checks = new RegistrationChecks(this.options, this.stats, this.warnings, this.logger, () =>
      this.clock.now(),
    );
    this.connectionHost = {
      clock: this.clock,
      stats: this.stats,
      logger: this.logger,
      maxFrameBytes: this.options.maxFrameBytes,
      released: (connection) => this.released(connection),
      register: (connection, text) => void this.register(connection, text),
      online: (connection) => this.emit('online', infoOf(connection)),
      ended: (connection, reason) => this.ended(connection, reason),
    };
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
    return this.online.size;
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
    this.scheduleSweep();
    this.logger.info({ port: this.port, tls: this.secure }, 'listening for terminals');
    return this;
  }

  async close(): Promise<void> {
    this.clock.clearTimeout(this.sweeper);
    for (const connection of [...this.online.values()]) connection.drop('the gateway is stopping');
    await this.server?.close();
  }

  /** The registered terminal with this id, if it is online. */
  terminal(terminalId: string): TerminalInfo | undefined {
    const connection = this.online.get(terminalId);
    return connection === undefined ? undefined : infoOf(connection);
  }

  /** Whether terminals of this type may register here (the `terminalTypes` allow-list, if any). */
  accepts(terminalType: string): boolean {
    return this.checks.accepts(terminalType);
  }

  isOnline(terminalId: string): boolean {
    return this.online.has(terminalId);
  }

  /** Every terminal online now. */
  terminals(): TerminalInfo[] {
    return [...this.online.values()].map(infoOf);
  }

  /** Drops a terminal's connection (an operator's action, or a newer registration elsewhere). */
  disconnect(terminalId: string, reason: string): boolean {
    const connection = this.online.get(terminalId);
    connection?.drop(reason);
    return connection !== undefined;
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
        const connection = this.online.get(terminalId);
        if (connection === undefined || !connection.link.isOpen) {
          return Promise.reject(
            new EcrError(
              'TERMINAL_OFFLINE',
              `terminal ${terminalId} is offline: it holds no connection to the gateway (nothing was sent)`,
            ),
          );
        }
        try {
          return Promise.resolve(connection.openChannel());
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
      this.warnings.warn(address, 'too many unregistered connections from this address: refusing');
      link.terminate();
      return;
    }
    this.unregistered.set(address, pending);
    const machine = new EconduitServerSession(
      { registerTimeoutMs: this.options.registerTimeoutMs, silenceLimitMs: this.silenceLimitMs() },
      this.clock.now(),
    );
    const connection = new TerminalConnection(link, address, machine, framer, this.connectionHost);
    this.waiting.add(connection);
    connection.start();
  }

  /** A connection no longer waits to register: its address's allowance gets its slot back. */
  private released(connection: TerminalConnection): void {
    if (!this.waiting.delete(connection)) return;
    const left = (this.unregistered.get(connection.address) ?? 1) - 1;
    if (left > 0) this.unregistered.set(connection.address, left);
    else this.unregistered.delete(connection.address);
  }

  /** The first message on a connection: a Register, or the connection ends after the answer. */
  private async register(connection: TerminalConnection, text: string): Promise<void> {
    const { link, machine } = connection;
    const verdict = await this.checks.judge(text, connection.address, link.tlsPeer);
    if (verdict.type === 'unjudged') return connection.apply(machine.abandon());
    if (verdict.type === 'refused')
      return this.refuse(connection, verdict.result, verdict.why, verdict.terminalId);
    // The connection may have ended while the terminal was looked up.
    if (!link.isOpen) return;
    const { terminalId, terminalType } = verdict.registration;
    const previous = this.online.get(terminalId);
    const now = this.clock.now();
    const takeover = judgeTakeover(
      previous === undefined
        ? undefined
        : {
            address: previous.address,
            busy: previous.channel !== undefined,
            silentForMs: previous.machine.silentFor(now),
          },
      connection.address,
      verdict.proven,
      this.silenceLimitMs(),
    );
    const shown = { terminalId: redactPans(terminalId), remote: link.remote };
    switch (takeover.type) {
      case 'refuse':
        this.stats.refusedFromElsewhere++;
        return this.refuse(connection, 'FAILED-REGISTRATION', takeover.why, terminalId);
      case 'take-verified':
        this.stats.replacedVerified++;
        this.logger.warn(
          { ...shown, before: takeover.before },
          'the terminal proved its identity from another address: its old connection is replaced',
        );
        break;
      case 'take-silent':
        this.stats.replacedFromElsewhere++;
        this.logger.warn(
          { ...shown, before: takeover.before, silentFor: Math.round(takeover.silentForMs) },
          'a silent terminal registered from another address: its old connection is replaced',
        );
        break;
      case 'take':
        break;
    }
    connection.payload = verdict.payload;
    connection.registeredDate = Date.now();
    this.online.set(terminalId, connection);
    previous?.drop('replaced by a new registration of the same terminal');
    this.stats.registrations['OK-REGISTRATION']++;
    this.logger.info({ terminalId, remote: link.remote, terminalType }, 'terminal online');
    connection.apply(machine.accept(verdict.registration, now));
  }

  /** Counts and logs a refusal; the machine answers it and closes the connection. */
  private refuse(
    connection: TerminalConnection,
    result: Exclude<RegistrationResult, 'OK-REGISTRATION'> | 'rate-limited',
    why: string,
    terminalId?: string,
  ): void {
    this.stats.registrations[result]++;
    if (result !== 'rate-limited') {
      const serial = terminalId === undefined ? undefined : redactPans(terminalId);
      this.logger.warn({ remote: connection.link.remote, terminalId: serial, why }, result);
    }
    // What the peer sends now waits unread in the link (bounded) until the socket goes.
    connection.link.onMessage(undefined);
    const answer = result === 'rate-limited' ? 'FAILED-REGISTRATION' : result;
    connection.apply(connection.machine.refuse(answer, this.clock.now()));
  }

  /** A connection ended (or is being dropped): its terminal is offline unless already replaced. */
  private ended(connection: TerminalConnection, reason: string): void {
    const id = connection.terminalId ?? '';
    connection.channel?.end({
      code: 1006,
      reason,
      error: new EcrError('LINK_LOST', `the terminal's connection ended: ${reason}`),
    });
    if (this.online.get(id) !== connection) return;
    this.online.delete(id);
    this.logger.info({ terminalId: id, reason }, 'terminal offline');
    this.emit('offline', infoOf(connection), reason);
  }

  /** How long an idle terminal may stay silent before its connection counts as gone. */
  private silenceLimitMs(): number {
    return this.options.heartbeatIntervalMs * this.options.missedHeartbeats;
  }

  /** Closes the connections of terminals silent too long while idle, every so often. */
  private scheduleSweep(): void {
    const every = Math.min(this.options.heartbeatIntervalMs, MAX_SWEEP_INTERVAL_MS);
    this.sweeper = this.clock.setTimeout(() => {
      const now = this.clock.now();
      for (const connection of [...this.online.values()])
        connection.apply(connection.machine.tick(now));
      this.scheduleSweep();
    }, every);
  }
}

/** The view of a registered connection; its times as dates. */
function infoOf(connection: TerminalConnection): TerminalInfo {
  const terminal = connection.machine.terminal;
  if (terminal === undefined) throw new EcrError('INTERNAL', 'the connection never registered');
  return {
    ...terminal.registration,
    payload: connection.payload,
    remote: connection.link.remote,
    registeredAt: connection.registeredDate,
    lastSeenAt: connection.registeredDate + Math.round(terminal.lastSeenAt - terminal.registeredAt),
    busy: connection.channel !== undefined,
  };
}

/** The host part of a `host:port` remote (IPv6 hosts keep their colons). */
function addressOf(remote: string): string {
  return remote.slice(0, remote.lastIndexOf(':'));
}
