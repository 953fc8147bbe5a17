import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { z } from 'zod';
import { EcrError, invalid } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { loggerOption, MAX_TIMER_MS, parseOptions, wholeNumber } from '../core/options.js';
import {
  ECONDUIT_MAX_FRAME_BYTES,
  EconduitFramer,
  encodeFrame,
} from '../protocols/econduit/framer.js';
import {
  decodeGatewayMessage,
  decodeRegister,
  encodeRegister,
  HEARTBEAT,
  MAX_TERMINAL_SECRET_LENGTH,
  POS_OFFLINE,
  POS_ONLINE,
  type Registration,
  type RegistrationResult,
} from '../protocols/econduit/messages.js';
import { backoffDelay } from '../transports/backoff.js';
import { Inbox, type LinkClosed, type MessageLink } from '../transports/message-link.js';
import { connectTcp } from '../transports/tcp.js';
import {
  checkTlsCa,
  loadTlsClientCertificate,
  tlsFailureReason,
  type TlsClientConfig,
} from '../transports/tls.js';

/** Seed 002: "we recommend once per minute" while the terminal is idle. */
export const AGENT_HEARTBEAT_INTERVAL_MS = 60_000;
/** Bound on the wait for the answer to Register, and for a heartbeat's ack. */
export const AGENT_ACK_TIMEOUT_MS = 10_000;
/** Bound on opening the TCP connection to one endpoint. */
export const AGENT_CONNECT_TIMEOUT_MS = 5_000;
/** Ceiling of the first jittered back-off after a failed cycle; it doubles per failure. */
export const AGENT_BACKOFF_BASE_MS = 250;
/** Longest back-off between two cycles. */
export const AGENT_BACKOFF_MAX_MS = 30_000;
/** The first reconnect after a working connection drops comes within this (random spread). */
export const AGENT_RECONNECT_SPREAD_MS = 500;
/** Endpoints tried per cycle at most (seed 002 has two: primary, then secondary). */
export const AGENT_MAX_ENDPOINTS = 8;
/** How long an orderly close waits for the gateway's side before the socket is dropped. */
export const AGENT_CLOSE_GRACE_MS = 2_000;

/** One eConduit cloud endpoint (seed 002: configurable from the terminal management system). */
export interface AgentEndpoint {
  readonly host: string;
  readonly port: number;
}

export interface EconduitAgentOptions {
  /** Tried in this order each cycle: the primary first, then the secondary (1 to 8). */
  readonly endpoints: readonly AgentEndpoint[];
  /** What the terminal registers as; `ackHeartbeat` asks the gateway to ack each heartbeat. */
  readonly registration: Registration;
  /**
   * The terminal's registration secret, sent as its Register's `TerminalSecret` (for a terminal
   * provisioned with one; see docs/gateway.md). Never logged. @default none sent
   */
  readonly terminalSecret?: string;
  /** Heartbeat period while idle. @default AGENT_HEARTBEAT_INTERVAL_MS */
  readonly heartbeatIntervalMs?: number;
  /** Wait for OK-REGISTRATION, and for a heartbeat's ack. @default AGENT_ACK_TIMEOUT_MS */
  readonly ackTimeoutMs?: number;
  /** @default AGENT_CONNECT_TIMEOUT_MS */
  readonly connectTimeoutMs?: number;
  /** @default AGENT_BACKOFF_BASE_MS */
  readonly backoffBaseMs?: number;
  /** @default AGENT_BACKOFF_MAX_MS */
  readonly backoffMaxMs?: number;
  /** Largest message accepted from the gateway. @default ECONDUIT_MAX_FRAME_BYTES (64 KiB) */
  readonly maxFrameBytes?: number;
  /**
   * Connect over TLS only, verifying the gateway's certificate against `ca` (PEM; the system's
   * CAs without it) and its host name: an endpoint that does not speak TLS or whose certificate
   * is not trusted is never registered with (the agent never falls back to plain TCP). With
   * `cert` and `key` (PEM), it presents that client certificate (mutual TLS).
   * @default plain TCP
   */
  readonly tls?: TlsClientConfig;
  readonly logger?: Logger;
}

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

const text = z.string({ error: 'must be a string' });

const OPTIONS = z
  .strictObject({
    endpoints: z
      .array(
        z.strictObject({
          host: text.min(1, 'must not be empty').max(253, 'must be at most 253 characters'),
          port: wholeNumber(1, 65_535),
        }),
        { error: 'must be a list of { host, port }' },
      )
      .min(1, 'must name at least one endpoint')
      .max(AGENT_MAX_ENDPOINTS, `must name at most ${AGENT_MAX_ENDPOINTS} endpoints`),
    registration: z.strictObject({
      terminalType: text,
      terminalModel: text,
      terminalId: text,
      softwareVersion: text,
      ackHeartbeat: z.boolean({ error: 'must be true or false' }),
    }),
    terminalSecret: text
      .min(1, 'must not be empty')
      .max(MAX_TERMINAL_SECRET_LENGTH, `must be at most ${MAX_TERMINAL_SECRET_LENGTH} characters`)
      .optional(),
    heartbeatIntervalMs: wholeNumber(1, MAX_TIMER_MS).default(AGENT_HEARTBEAT_INTERVAL_MS),
    ackTimeoutMs: wholeNumber(1, MAX_TIMER_MS).default(AGENT_ACK_TIMEOUT_MS),
    connectTimeoutMs: wholeNumber(1, MAX_TIMER_MS).default(AGENT_CONNECT_TIMEOUT_MS),
    backoffBaseMs: wholeNumber(1, MAX_TIMER_MS).default(AGENT_BACKOFF_BASE_MS),
    backoffMaxMs: wholeNumber(1, MAX_TIMER_MS).default(AGENT_BACKOFF_MAX_MS),
    maxFrameBytes: wholeNumber(1024, ECONDUIT_MAX_FRAME_BYTES).default(ECONDUIT_MAX_FRAME_BYTES),
    tls: z
      .strictObject({
        ca: z.string().min(1, 'must be PEM text').optional(),
        cert: z.string().min(1, 'must be PEM text').optional(),
        key: z.string().min(1, 'must be PEM text').optional(),
      })
      .optional(),
    logger: loggerOption(),
  })
  .refine((o) => o.backoffMaxMs >= o.backoffBaseMs, {
    path: ['backoffMaxMs'],
    message: 'must be at least backoffBaseMs',
  });

/** The Register fields on the wire, by option name, for errors that name the option. */
const OPTION_OF_WIRE_FIELD: Readonly<Record<string, keyof Registration>> = {
  TerminalType: 'terminalType',
  TerminalModel: 'terminalModel',
  TerminalID: 'terminalId',
  SoftwareVersion: 'softwareVersion',
};

/** The gateway's own rules for Register (messages.ts), so a registration it would refuse is refused here. */
function checkRegistration(registration: Registration): void {
  try {
    decodeRegister(encodeRegister(registration));
  } catch (error) {
    if (!(error instanceof EcrError)) throw error;
    const field = OPTION_OF_WIRE_FIELD[error.field ?? ''];
    throw invalid(
      'INVALID_INPUT',
      field === undefined ? 'registration' : `registration.${field}`,
      error.rule ?? 'must be a valid registration',
    );
  }
}

/** One registered connection: its link, its session's inbox, its heartbeat bookkeeping. */
interface Connection {
  readonly link: MessageLink;
  readonly endpoint: AgentEndpoint;
  readonly inbox: Inbox;
  /** Payloads received from the gateway and not yet answered through the session. */
  pending: number;
  /** `performance.now()` when a message was last written. */
  lastSentAt: number;
  heartbeatTimer: NodeJS.Timeout | undefined;
  ackTimer: NodeJS.Timeout | undefined;
  closeTimer: NodeJS.Timeout | undefined;
  /** Why this side ended it; undefined while up, or when the gateway or the network did. */
  dropReason: string | undefined;
  ended: boolean;
}

/** Where the agent is (house style 6). */
type AgentState =
  | { readonly type: 'idle' }
  | { readonly type: 'connecting'; readonly endpoint: AgentEndpoint }
  | { readonly type: 'registering'; readonly endpoint: AgentEndpoint; readonly link: MessageLink }
  | { readonly type: 'online'; readonly connection: Connection }
  | { readonly type: 'offline'; readonly reason: string };

/** How one pass over the endpoints ended. */
type CycleResult =
  | { readonly type: 'stopped' }
  /** No endpoint registered the terminal. */
  | { readonly type: 'failed'; readonly reason: string }
  /**
   * A registration that ended: `held` when it lasted a heartbeat interval (a working one, after
   * which the agent reconnects at once); a shorter one counts as a failure, so a gateway that
   * accepts and drops at once cannot make its terminals hammer it.
   */
  | { readonly type: 'ended'; readonly held: boolean };

type RegisterAnswer =
  | { readonly type: 'ok' }
  | { readonly type: 'stopped' }
  | { readonly type: 'refused'; readonly result: RegistrationResult }
  /** No usable answer from this endpoint: the next one is tried at once. */
  | { readonly type: 'failed'; readonly reason: string };

const HEARTBEAT_FRAME = encodeFrame(HEARTBEAT);

/**
 * The terminal side of the eConduit cloud channel (seed 002), for a terminal maker to embed:
 * keeps one TCP connection registered with the gateway, failing over from the primary endpoint
 * to the next ones, heartbeats while idle, reconnects at once after losing a working connection
 * and with jittered back-off after failures. Each registration yields a `session` MessageLink
 * carrying the transaction payloads; the agent handles Register, heartbeats and their acks.
 */
export class EconduitAgent extends EventEmitter<EconduitAgentEvents> {
  private readonly options: Readonly<z.output<typeof OPTIONS>>;
  private readonly endpoints: readonly AgentEndpoint[];
  private readonly registerFrame: string;
  private readonly logger: Logger;
  private state: AgentState = { type: 'idle' };
  private run: { readonly controller: AbortController; readonly done: Promise<void> } | undefined;
  private stopping: Promise<void> | undefined;

  constructor(input: EconduitAgentOptions) {
    super();
    this.options = parseOptions(OPTIONS, input, 'EconduitAgent');
    checkRegistration(this.options.registration);
    if (this.options.tls?.ca !== undefined) checkTlsCa(this.options.tls.ca, 'tls.ca');
    if (this.options.tls !== undefined) {
      loadTlsClientCertificate(
        { cert: this.options.tls.cert, key: this.options.tls.key },
        { cert: 'tls.cert', key: 'tls.key' },
      );
    }
    this.endpoints = Object.freeze(this.options.endpoints.map((e) => Object.freeze({ ...e })));
    this.registerFrame = encodeFrame(
      encodeRegister(this.options.registration, this.options.terminalSecret),
    );
    this.logger = (this.options.logger ?? silentLogger).child({
      component: 'econduit-agent',
      terminalId: this.options.registration.terminalId,
    });
  }

  /** "POS Online" only while registered on an open connection. */
  get status(): AgentStatus {
    return this.state.type === 'online' && this.state.connection.link.isOpen
      ? POS_ONLINE
      : POS_OFFLINE;
  }

  /** The endpoint the terminal is registered on now. */
  get endpoint(): AgentEndpoint | undefined {
    return this.state.type === 'online' ? this.state.connection.endpoint : undefined;
  }

  /**
   * Begins connecting, and keeps connected until `stop`. Network trouble never throws: it shows
   * as `offline` events. Does nothing when already started; throws while a `stop` is finishing.
   */
  start(): this {
    if (this.stopping !== undefined)
      throw new EcrError('INVALID_INPUT', 'start: the agent is stopping; await stop() first');
    if (this.run !== undefined) return this;
    const controller = new AbortController();
    this.run = { controller, done: this.loop(controller.signal) };
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
    const state = this.state;
    if (state.type === 'online') this.drop(state.connection, 'connection dropped', false);
    else if (state.type === 'registering') state.link.terminate();
  }

  private async halt(): Promise<void> {
    const run = this.run;
    if (run === undefined) return;
    run.controller.abort();
    // Connecting and back-off waits end on the abort; an open socket is dropped here.
    this.dropConnection();
    await run.done;
    this.run = undefined;
    this.state = { type: 'idle' };
    this.logger.info('stopped');
  }

  /** Cycle after cycle until stopped. Never rejects. */
  private async loop(signal: AbortSignal): Promise<void> {
    /** Cycles since the last working registration: the back-off grows with it. */
    let failures = 0;
    while (!signal.aborted) {
      let result: CycleResult;
      try {
        result = await this.cycle(signal);
      } catch (error) {
        // A bug, not network trouble: log it and carry on with the back-off rather than die.
        this.logger.error({ error: describe(error) }, 'agent cycle failed');
        result = { type: 'failed', reason: 'internal error' };
      }
      if (signal.aborted || result.type === 'stopped') break;
      if (result.type === 'ended' && result.held) {
        // Back at once — within a random fraction of a second, so that a fleet that lost the
        // same gateway does not come back in one burst.
        failures = 0;
        await sleep(Math.floor(Math.random() * AGENT_RECONNECT_SPREAD_MS), signal);
        continue;
      }
      if (result.type === 'failed') {
        this.state = { type: 'offline', reason: result.reason };
        this.logger.info({ reason: result.reason }, POS_OFFLINE);
        this.notify('offline', result.reason);
      }
      const delay = backoffDelay(failures, this.options.backoffBaseMs, this.options.backoffMaxMs);
      failures++;
      this.logger.debug({ delayMs: delay, failures }, 'waiting before the next cycle');
      await sleep(delay, signal);
    }
  }

  /** One pass over the endpoints, in order, until one registers the terminal. */
  private async cycle(signal: AbortSignal): Promise<CycleResult> {
    const reasons: string[] = [];
    for (const endpoint of this.endpoints) {
      if (signal.aborted) return { type: 'stopped' };
      this.state = { type: 'connecting', endpoint };
      let link: MessageLink;
      try {
        link = await connectTcp({
          host: endpoint.host,
          port: endpoint.port,
          framer: new EconduitFramer(this.options.maxFrameBytes),
          connectTimeoutMs: this.options.connectTimeoutMs,
          signal,
          ...(this.options.tls === undefined ? {} : { tls: this.options.tls }),
        });
      } catch (error) {
        if (signal.aborted) return { type: 'stopped' };
        const reason = connectFailure(error);
        this.logger.warn({ endpoint: where(endpoint), reason }, 'cannot connect to the gateway');
        reasons.push(reason);
        continue;
      }
      this.state = { type: 'registering', endpoint, link };
      const answer = await this.register(link, signal);
      if (answer.type === 'ok') return this.serve(link, endpoint, signal);
      if (answer.type === 'stopped') {
        await end(link, false);
        return { type: 'stopped' };
      }
      if (answer.type === 'refused') {
        // An answer from the gateway itself: the next endpoint would say the same. Back off.
        this.logger.warn(
          { endpoint: where(endpoint), result: answer.result },
          'registration refused',
        );
        this.notify('registrationRefused', answer.result);
        await end(link, true);
        return { type: 'failed', reason: `registration refused: ${answer.result}` };
      }
      this.logger.warn({ endpoint: where(endpoint), reason: answer.reason }, 'registration failed');
      await end(link, false);
      reasons.push(answer.reason);
    }
    return { type: 'failed', reason: [...new Set(reasons)].join('; ') };
  }

  /** Sends Register and waits (bounded) for its answer. */
  private register(link: MessageLink, signal: AbortSignal): Promise<RegisterAnswer> {
    if (signal.aborted) return Promise.resolve({ type: 'stopped' });
    return new Promise((resolve) => {
      let settled = false;
      const finish = (answer: RegisterAnswer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        // Whatever follows the answer waits in the link's inbox for the session's handler.
        link.onMessage(undefined);
        resolve(answer);
      };
      const onAbort = (): void => finish({ type: 'stopped' });
      const timer = setTimeout(
        () => finish({ type: 'failed', reason: 'registration not answered' }),
        this.options.ackTimeoutMs,
      );
      signal.addEventListener('abort', onAbort, { once: true });
      void link.closed.then(() =>
        finish({ type: 'failed', reason: 'link lost while registering' }),
      );
      link.onMessage((text) => {
        const message = decodeGatewayMessage(text);
        if (message.type !== 'registration')
          finish({ type: 'failed', reason: `Register answered with a ${message.type}` });
        else if (message.result === 'OK-REGISTRATION') finish({ type: 'ok' });
        else finish({ type: 'refused', result: message.result });
      });
      // A failed write closes the link, which ends the wait.
      link.send(this.registerFrame).catch(() => undefined);
    });
  }

  /** Online on `link` until it ends. */
  private async serve(
    link: MessageLink,
    endpoint: AgentEndpoint,
    signal: AbortSignal,
  ): Promise<CycleResult> {
    if (signal.aborted) {
      await end(link, false);
      return { type: 'stopped' };
    }
    const remote = where(endpoint);
    const connection: Connection = {
      link,
      endpoint,
      inbox: new Inbox(remote, () => this.drop(connection, 'too many unread payloads', false)),
      pending: 0,
      // Register was the last message written.
      lastSentAt: performance.now(),
      heartbeatTimer: undefined,
      ackTimer: undefined,
      closeTimer: undefined,
      dropReason: undefined,
      ended: false,
    };
    const since = performance.now();
    this.state = { type: 'online', connection };
    this.logger.info({ endpoint: remote }, POS_ONLINE);
    const session = new SessionLink(connection, remote, {
      send: (text) => this.answer(connection, text),
      end: (reason, orderly) => this.drop(connection, reason, orderly),
    });
    // Payloads that came with OK-REGISTRATION move to the session's inbox, kept for its handler.
    link.onMessage((text) => this.received(connection, text));
    this.scheduleHeartbeat(connection, this.options.heartbeatIntervalMs);
    this.notify('online', endpoint);
    this.notify('session', session);

    const closed = await link.closed;
    connection.ended = true;
    clearTimeout(connection.heartbeatTimer);
    clearTimeout(connection.ackTimer);
    clearTimeout(connection.closeTimer);
    const reason = signal.aborted ? 'stopped' : (connection.dropReason ?? lostReason(closed));
    this.state = { type: 'offline', reason };
    if (connection.dropReason === undefined && !signal.aborted)
      this.logger.warn({ endpoint: remote, error: closed.error?.code }, 'link to the gateway lost');
    this.logger.info({ endpoint: remote, reason }, POS_OFFLINE);
    this.notify('offline', reason);
    if (signal.aborted) return { type: 'stopped' };
    return { type: 'ended', held: performance.now() - since >= this.options.heartbeatIntervalMs };
  }

  private received(connection: Connection, text: string): void {
    const message = decodeGatewayMessage(text);
    if (message.type === 'heartbeat-ack') {
      clearTimeout(connection.ackTimer);
      connection.ackTimer = undefined;
    } else if (message.type === 'registration') {
      this.logger.warn({ result: message.result }, 'registration answer while registered: ignored');
    } else {
      connection.pending++;
      try {
        connection.inbox.deliver(text);
      } catch (error) {
        // The embedding code's handler threw: it must not kill the socket's data handler.
        this.logger.error({ error: describe(error) }, 'the session message handler threw');
      }
    }
  }

  /** A payload answer from the session. */
  private answer(connection: Connection, text: string): Promise<void> {
    let frame: string;
    try {
      frame = encodeFrame(text);
    } catch (error) {
      return Promise.reject(error);
    }
    if (connection.pending > 0) connection.pending--;
    connection.lastSentAt = performance.now();
    return connection.link.send(frame);
  }

  private scheduleHeartbeat(connection: Connection, delayMs: number): void {
    connection.heartbeatTimer = setTimeout(
      () => this.heartbeatDue(connection),
      Math.max(1, Math.ceil(delayMs)),
    );
  }

  /**
   * Seed 002: a heartbeat "when the terminal is idle": not while a payload waits for its answer,
   * and not when something else went out within the interval.
   */
  private heartbeatDue(connection: Connection): void {
    connection.heartbeatTimer = undefined;
    if (connection.ended) return;
    const interval = this.options.heartbeatIntervalMs;
    const quietMs = performance.now() - connection.lastSentAt;
    if (connection.pending > 0) return this.scheduleHeartbeat(connection, interval);
    if (quietMs < interval) return this.scheduleHeartbeat(connection, interval - quietMs);
    connection.lastSentAt = performance.now();
    connection.link.send(HEARTBEAT_FRAME).catch(() => undefined);
    // ±10%: terminals that registered together drift apart instead of beating in lockstep.
    const next = Math.round(interval * (0.9 + Math.random() * 0.2));
    if (this.options.registration.ackHeartbeat) {
      // No ack in time: the connection is half-open (a pulled cable upstream); drop it.
      connection.ackTimer ??= setTimeout(() => {
        connection.ackTimer = undefined;
        this.drop(connection, 'heartbeat not acknowledged', false);
      }, this.options.ackTimeoutMs);
    }
    this.scheduleHeartbeat(connection, next);
  }

  /** Ends a connection from this side; `serve` then reports it offline with `reason`. */
  private drop(connection: Connection, reason: string, orderly: boolean): void {
    if (connection.ended) return;
    if (connection.dropReason === undefined) {
      connection.dropReason = reason;
      if (reason === 'heartbeat not acknowledged' || reason === 'too many unread payloads')
        this.logger.warn({ endpoint: where(connection.endpoint), reason }, 'dropping the link');
      else this.logger.info({ endpoint: where(connection.endpoint), reason }, 'closing the link');
    }
    if (orderly && connection.link.isOpen) {
      connection.link.close();
      connection.closeTimer ??= setTimeout(() => connection.link.terminate(), AGENT_CLOSE_GRACE_MS);
    } else {
      connection.link.terminate();
    }
  }

  /** Emits without letting a throwing listener break the agent's cycle. */
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

/** The session link handed to the embedding code: payloads only, on one connection. */
class SessionLink implements MessageLink {
  readonly closed: Promise<LinkClosed>;

  constructor(
    private readonly connection: Connection,
    readonly remote: string,
    private readonly agent: {
      readonly send: (text: string) => Promise<void>;
      readonly end: (reason: string, orderly: boolean) => void;
    },
  ) {
    this.closed = connection.link.closed;
  }

  get isOpen(): boolean {
    return this.connection.link.isOpen;
  }

  /** Writes `text` and 0x04 0x04; it answers the oldest payload not yet answered. */
  send(text: string): Promise<void> {
    return this.agent.send(text);
  }

  onMessage(handler: ((text: string) => void) | undefined): void {
    this.connection.inbox.setHandler(handler);
  }

  /** Ends the connection (FIN, then dropped after AGENT_CLOSE_GRACE_MS); the agent reconnects. */
  close(): void {
    this.agent.end('session closed', true);
  }

  /** Drops the connection at once; the agent reconnects. */
  terminate(): void {
    this.agent.end('session terminated', false);
  }
}

/** Closes a link that never went online (orderly: FIN first) and waits until it is closed. */
async function end(link: MessageLink, orderly: boolean): Promise<void> {
  if (!orderly || !link.isOpen) {
    link.terminate();
    await link.closed;
    return;
  }
  link.close();
  const timer = setTimeout(() => link.terminate(), AGENT_CLOSE_GRACE_MS);
  await link.closed;
  clearTimeout(timer);
}

/** Waits `ms`, or less when `signal` fires. Never rejects. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

function where(endpoint: AgentEndpoint): string {
  return `${endpoint.host}:${endpoint.port}`;
}

/** Reasons for `offline` events, by the socket error under connectTcp's TERMINAL_UNREACHABLE. */
const CONNECT_FAILURES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ETIMEDOUT: 'connection timed out',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  ENETUNREACH: 'network unreachable',
  EHOSTUNREACH: 'network unreachable',
};

function connectFailure(error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined;
  const code =
    typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : undefined;
  // connectTcp's own bound (connectTimeoutMs) has no cause.
  if (code === undefined)
    return error instanceof EcrError && error.code === 'TERMINAL_UNREACHABLE'
      ? 'connection timed out'
      : 'connection failed';
  return CONNECT_FAILURES[code] ?? tlsFailureReason(code) ?? `connection failed (${code})`;
}

function lostReason(closed: LinkClosed): string {
  return closed.error?.code === 'FRAME_TOO_LARGE' ? 'message too large' : 'link lost';
}

/** An error for the log: its name and code, never its message (it may quote a payload). */
function describe(error: unknown): string {
  if (error instanceof EcrError) return `${error.name} ${error.code}`;
  return error instanceof Error ? error.name : typeof error;
}
