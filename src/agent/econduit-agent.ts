import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { systemClock, type Clock, type ClockTimer } from '../core/clock.js';
import { EcrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { parseOptions } from '../core/options.js';
import { EconduitFramer, encodeFrame } from '../protocols/econduit/framer.js';
import {
  POS_OFFLINE,
  POS_ONLINE,
  type RegistrationResult,
} from '../protocols/econduit/messages.js';
import { EconduitClientSession, type ClientAction } from '../protocols/econduit/session-client.js';
import { backoffDelay } from '../transports/backoff.js';
import { Inbox, type LinkClosed, type MessageLink } from '../transports/message-link.js';
import { connectTcp } from '../transports/tcp.js';
import { checkTlsCa, loadTlsClientCertificate } from '../transports/tls.js';
import {
  AGENT_CLOSE_GRACE_MS,
  AGENT_OPTIONS,
  AGENT_RECONNECT_SPREAD_MS,
  checkRegistration,
  type AgentEndpoint,
  type AgentSettings,
  type EconduitAgentOptions,
} from './agent-options.js';
import { logAction, where } from './agent-log.js';
import { connectFailure, describe, lostReason, SessionLink } from './session-link.js';

/** What the terminal shows while idle (seed 002, "User Feedback"). */
export type AgentStatus = typeof POS_ONLINE | typeof POS_OFFLINE;

export interface EconduitAgentEvents {
  /** Registered on this endpoint: show "POS Online". */
  online: [AgentEndpoint];
  /** Not registered, and why: after every drop and every cycle that failed to register. */
  offline: [string];
  /** The transaction channel of a new registration. */
  session: [MessageLink];
  /** The gateway answered Register with a failure. */
  registrationRefused: [RegistrationResult];
}

/** A registered connection: its link and the inbox of the session handed out for it. */
interface Connection {
  readonly link: MessageLink;
  readonly inbox: Inbox;
}

/**
 * Agents running in this process: while any runs, one timer keeps the process alive, as a
 * terminal's program lives by its agent (the clock's own timers keep nothing alive, and between
 * two cycles there is no socket either).
 */
let runningAgents = 0;
let keepAlive: NodeJS.Timeout | undefined;
const KEEP_ALIVE_MS = 1 << 30;

/**
 * The terminal side of the eConduit cloud channel (seed 002), for a terminal maker to embed:
 * keeps one TCP connection registered with the gateway, failing over from the primary endpoint
 * to the next ones, heartbeats while idle, reconnects at once after losing a working connection
 * and with jittered back-off after failures. Each registration yields a `session` MessageLink
 * carrying the transaction payloads; the agent handles Register, heartbeats and their acks.
 *
 * A runner: every decision is the pure `EconduitClientSession`'s (protocols/econduit); this class
 * opens the sockets it asks for, feeds it messages and the time, and runs one timer to its next
 * deadline.
 */
export class EconduitAgent extends EventEmitter<EconduitAgentEvents> {
  private readonly options: AgentSettings;
  private readonly endpoints: readonly AgentEndpoint[];
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly machine: EconduitClientSession<AgentEndpoint>;
  /** The link the machine is working on: registering, online, or being closed. */
  private link: MessageLink | undefined;
  /** How the current link closed, for the log of a lost link. */
  private lastClosed: LinkClosed | undefined;
  private connection: Connection | undefined;
  /** Aborts the connect under way (on stop). */
  private connecting: AbortController | undefined;
  private timer: ClockTimer | undefined;
  /** The deadline `timer` is set for. */
  private timerAt: number | undefined;
  private running = false;
  private stopping: Promise<void> | undefined;
  private whenStopped: (() => void) | undefined;

  constructor(input: EconduitAgentOptions) {
    super();
    this.options = parseOptions(AGENT_OPTIONS, input, 'EconduitAgent');
    checkRegistration(this.options.registration);
    if (this.options.tls?.ca !== undefined) checkTlsCa(this.options.tls.ca, 'tls.ca');
    if (this.options.tls !== undefined) {
      loadTlsClientCertificate(
        { cert: this.options.tls.cert, key: this.options.tls.key },
        { cert: 'tls.cert', key: 'tls.key' },
      );
    }
    this.endpoints = Object.freeze(this.options.endpoints.map((e) => Object.freeze({ ...e })));
    this.clock = this.options.clock ?? systemClock;
    this.logger = (this.options.logger ?? silentLogger).child({
      component: 'econduit-agent',
      terminalId: this.options.registration.terminalId,
    });
    const { backoffBaseMs, backoffMaxMs } = this.options;
    this.machine = new EconduitClientSession({
      endpoints: this.endpoints,
      registration: this.options.registration,
      ...(this.options.terminalSecret === undefined
        ? {}
        : { terminalSecret: this.options.terminalSecret }),
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      ackTimeoutMs: this.options.ackTimeoutMs,
      reconnectSpreadMs: AGENT_RECONNECT_SPREAD_MS,
      closeGraceMs: AGENT_CLOSE_GRACE_MS,
      backoffDelay: (failures) => backoffDelay(failures, backoffBaseMs, backoffMaxMs),
    });
  }

  /** "POS Online" only while registered on an open connection. */
  get status(): AgentStatus {
    return this.machine.state.type === 'online' && this.link?.isOpen === true
      ? POS_ONLINE
      : POS_OFFLINE;
  }

  /** The endpoint the terminal is registered on now. */
  get endpoint(): AgentEndpoint | undefined {
    return this.machine.endpoint;
  }

  /**
   * Begins connecting, and keeps connected until `stop`. Network trouble never throws: it shows
   * as `offline` events. Does nothing when already started; throws while a `stop` is finishing.
   */
  start(): this {
    if (this.stopping !== undefined)
      throw new EcrError('INVALID_INPUT', 'start: the agent is stopping; await stop() first');
    if (this.running) return this;
    this.running = true;
    if (runningAgents++ === 0) keepAlive = setInterval(() => {}, KEEP_ALIVE_MS);
    this.apply(this.machine.start());
    return this;
  }

  /** Closes the connection, for good: no reconnect. Resolves once the socket is closed. */
  stop(): Promise<void> {
    this.stopping ??= this.halt().finally(() => {
      this.stopping = undefined;
    });
    return this.stopping;
  }

  /**
   * Drop the current connection as a pulled cable would (tests, simulators): then reconnect as
   * after any drop. Does nothing while no connection is open.
   */
  dropConnection(): void {
    this.apply(this.machine.dropConnection(this.clock.now()));
  }

  private async halt(): Promise<void> {
    if (!this.running) return;
    const stopped = new Promise<void>((resolve) => (this.whenStopped = resolve));
    // A connect under way ends on the abort; an open socket is dropped by the machine.
    this.connecting?.abort();
    this.apply(this.machine.stop(this.clock.now()));
    await stopped;
    this.logger.info('stopped');
  }

  /** Does what the machine asked for, in order; then waits for its next deadline. */
  private apply(actions: readonly ClientAction<AgentEndpoint>[]): void {
    for (const action of actions) this.act(action);
    const deadline = this.machine.nextDeadline();
    // Most messages (a heartbeat's ack) leave the deadline where it was: keep the timer.
    if (this.timer !== undefined && deadline === this.timerAt) return;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = deadline;
    if (deadline === undefined) return;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.apply(this.machine.tick(this.clock.now()));
      },
      Math.max(0, deadline - this.clock.now()),
    );
  }

  private act(action: ClientAction<AgentEndpoint>): void {
    // Dropped while online: the machine still names the endpoint.
    logAction(this.logger, action, this.machine.endpoint, this.lastClosed);
    switch (action.type) {
      case 'connect':
        void this.open(action.endpoint);
        return;
      case 'send':
        // A failed write closes the link, which the machine hears about.
        this.link?.send(action.frame).catch(() => undefined);
        return;
      case 'close':
        if (this.link?.isOpen === true) this.link.close();
        else this.link?.terminate();
        return;
      case 'terminate':
        this.link?.terminate();
        return;
      case 'refused':
        // An answer from the gateway itself: the next endpoint would say the same. Back off.
        this.notify('registrationRefused', action.result);
        return;
      case 'online':
        this.online(action.endpoint);
        return;
      case 'payload':
        try {
          this.connection?.inbox.deliver(action.text);
        } catch (error) {
          // The embedding code's handler threw: it must not kill the socket's data handler.
          this.logger.error({ error: describe(error) }, 'the session message handler threw');
        }
        return;
      case 'offline':
        this.notify('offline', action.reason);
        return;
      case 'stopped':
        this.running = false;
        if (--runningAgents === 0) clearInterval(keepAlive);
        this.whenStopped?.();
        return;
      default:
        return;
    }
  }

  /** Opens a link to `endpoint` for the machine, and reports it. */
  private async open(endpoint: AgentEndpoint): Promise<void> {
    const controller = new AbortController();
    this.connecting = controller;
    let link: MessageLink;
    try {
      link = await connectTcp({
        host: endpoint.host,
        port: endpoint.port,
        framer: new EconduitFramer(this.options.maxFrameBytes),
        connectTimeoutMs: this.options.connectTimeoutMs,
        signal: controller.signal,
        ...(this.options.tls === undefined ? {} : { tls: this.options.tls }),
      });
    } catch (error) {
      this.connecting = undefined;
      this.apply(this.machine.connectFailed(connectFailure(error), this.clock.now()));
      return;
    }
    this.connecting = undefined;
    this.link = link;
    void link.closed.then((closed) => {
      this.link = undefined;
      this.connection = undefined;
      this.lastClosed = closed;
      this.apply(this.machine.linkClosed(this.clock.now(), lostReason(closed)));
    });
    this.apply(this.machine.connected(this.clock.now()));
    link.onMessage((text) => this.apply(this.machine.receive(text, this.clock.now())));
  }

  /** Registered: the session for the embedding code, then `online` and `session`. */
  private online(endpoint: AgentEndpoint): void {
    const link = this.link as MessageLink;
    const remote = where(endpoint);
    this.logger.info({ endpoint: remote }, POS_ONLINE);
    const connection: Connection = {
      link,
      inbox: new Inbox(remote, () => this.end(connection, 'too many unread payloads', false)),
    };
    this.connection = connection;
    const session = new SessionLink(link, connection.inbox, remote, {
      send: (text) => this.answer(connection, text),
      end: (reason, orderly) => this.end(connection, reason, orderly),
    });
    this.notify('online', endpoint);
    this.notify('session', session);
  }

  /** A payload answer from a session (one of an ended connection just fails on its link). */
  private answer(connection: Connection, text: string): Promise<void> {
    let frame: string;
    try {
      frame =
        this.connection === connection
          ? this.machine.answer(text, this.clock.now())
          : encodeFrame(text);
    } catch (error) {
      return Promise.reject(error);
    }
    return connection.link.send(frame);
  }

  /** A session ends its connection from this side (nothing once that connection has ended). */
  private end(connection: Connection, reason: string, orderly: boolean): void {
    if (this.connection === connection)
      this.apply(this.machine.drop(reason, orderly, this.clock.now()));
  }

  /** Emits without letting a throwing listener break the agent. */
  private notify<K extends keyof EconduitAgentEvents>(
    event: K,
    ...args: EconduitAgentEvents[K]
  ): void {
    try {
      // The generic map does not narrow a generic key; the signature above keeps callers typed.
      (this as EventEmitter).emit(event, ...args);
    } catch (error) {
      this.logger.error({ event, error: describe(error) }, 'an agent event listener threw');
    }
  }
}
