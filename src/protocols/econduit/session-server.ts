import { type EcrError, toEcrError } from '../../core/errors.js';
import { encodeFrame } from './framer.js';
import {
  decodeTerminalMessage,
  HEARTBEAT_ACK,
  type Registration,
  type RegistrationResult,
} from './messages.js';

/** Answers a registered terminal has not read past this many bytes: it is not reading. */
export const MAX_UNREAD_BYTES = 64 * 1024;
/** Messages a connection may send while its Register is being checked; more drops it. */
export const MAX_EARLY_MESSAGES = 8;
/** A refused connection gets this long to read its answer before it is dropped. */
export const REFUSAL_GRACE_MS = 1_000;

export interface ServerSessionOptions {
  /** The first message must come within this long of the connection. */
  readonly registerTimeoutMs: number;
  /** An idle registered terminal silent for longer is gone (heartbeat interval × missed). */
  readonly silenceLimitMs: number;
  /** @default MAX_EARLY_MESSAGES */
  readonly maxEarlyMessages?: number;
  /** @default REFUSAL_GRACE_MS */
  readonly refusalGraceMs?: number;
  /** @default MAX_UNREAD_BYTES */
  readonly maxUnreadBytes?: number;
}

/** What the runner must do, in this order. */
export type ServerAction =
  /** Write this frame (text and 0x04 0x04). */
  | { readonly type: 'send'; readonly frame: string }
  /**
   * The first message, to be judged (rate, provisioning, identity: the gateway's business,
   * possibly slow); the answer comes back through `accept`, `refuse` or `abandon`.
   */
  | { readonly type: 'register'; readonly text: string }
  /** Registered: the terminal is online on this connection. */
  | { readonly type: 'online' }
  | { readonly type: 'heartbeat' }
  /** A transaction answer, for the request in flight. */
  | { readonly type: 'answer'; readonly text: string }
  /** A transaction answer with no request in flight: ignored; `first` once per connection. */
  | { readonly type: 'unexpected-answer'; readonly first: boolean }
  /** A command that breaks a rule: ignored (reported the first time only). */
  | { readonly type: 'bad-command'; readonly error: EcrError }
  /** No Register within the bound: drop the connection. */
  | { readonly type: 'register-timeout' }
  /** Close in order once what was sent is written (a refused registration). */
  | { readonly type: 'close' }
  /** Drop the connection at once (a registered terminal goes offline with `reason`). */
  | { readonly type: 'drop'; readonly reason: string };

/** A registered terminal on this connection, as the machine keeps it. */
export interface RegisteredTerminal {
  readonly registration: Registration;
  readonly registeredAt: number;
  /** When it last sent anything. */
  lastSeenAt: number;
  /** A request is in flight: the terminal is at the card step and does not heartbeat. */
  busy: boolean;
  /** Reported an answer with no request waiting, or a bad command (once per connection each). */
  warnedUnexpected: boolean;
  warnedBadCommand: boolean;
}

export type ServerSessionState =
  | { readonly type: 'unregistered'; readonly deadline: number }
  /** The Register is being judged; what else arrives meanwhile waits (bounded). */
  | { readonly type: 'checking'; readonly early: string[] }
  | { readonly type: 'refused'; readonly deadline: number }
  | { readonly type: 'registered'; readonly terminal: RegisteredTerminal }
  | { readonly type: 'ended' };

/**
 * The gateway's side of one eConduit connection (seed 002) as a pure state machine: messages
 * and the time come in (`receive`, `tick`, and the verdict on the Register), frames to write and
 * what happened come out as an ordered list of actions. No sockets, no timers: the runner
 * (gateway/terminal-listener.ts) calls `tick` at or after `nextDeadline()`.
 *
 * The first message must be a Register within `registerTimeoutMs`; it is handed out to be judged
 * and a few messages sent without waiting for its answer are held meanwhile. A refusal is
 * answered, then the connection is closed, and dropped after `refusalGraceMs` if the peer keeps
 * it open. Registered: heartbeats are acked when the terminal asked for it; its Register again
 * is answered OK (another TerminalID drops it); anything else is a transaction answer for the
 * request in flight. Idle and silent past `silenceLimitMs`, it is gone.
 */
export class EconduitServerSession {
  private st: ServerSessionState;
  /** Kept once registered, after the connection ended too (its offline view). */
  private term: RegisteredTerminal | undefined;
  private readonly silenceLimitMs: number;
  private readonly maxEarlyMessages: number;
  private readonly refusalGraceMs: number;
  private readonly maxUnreadBytes: number;

  constructor(options: ServerSessionOptions, now: number) {
    this.silenceLimitMs = options.silenceLimitMs;
    this.maxEarlyMessages = options.maxEarlyMessages ?? MAX_EARLY_MESSAGES;
    this.refusalGraceMs = options.refusalGraceMs ?? REFUSAL_GRACE_MS;
    this.maxUnreadBytes = options.maxUnreadBytes ?? MAX_UNREAD_BYTES;
    this.st = { type: 'unregistered', deadline: now + options.registerTimeoutMs };
  }

  get state(): Readonly<ServerSessionState> {
    return this.st;
  }

  /** The terminal registered on this connection, if it ever was (also once it ended). */
  get terminal(): Readonly<RegisteredTerminal> | undefined {
    return this.term;
  }

  /** When `tick` must be called next; undefined when nothing is awaited. */
  nextDeadline(): number | undefined {
    const st = this.st;
    if (st.type === 'unregistered' || st.type === 'refused') return st.deadline;
    // `tick` drops it once strictly past the limit.
    if (st.type === 'registered' && !st.terminal.busy)
      return st.terminal.lastSeenAt + this.silenceLimitMs + 1;
    return undefined;
  }

  /**
   * A message from the terminal. `unreadBytes`: what it has left unread of our writes, where the
   * transport knows (a terminal that never reads must not make the gateway hold its acks).
   */
  receive(text: string, now: number, unreadBytes = 0): ServerAction[] {
    const st = this.st;
    switch (st.type) {
      case 'unregistered':
        this.st = { type: 'checking', early: [] };
        return [{ type: 'register', text }];
      case 'checking':
        if (st.early.length >= this.maxEarlyMessages) return this.end('too many early messages');
        st.early.push(text);
        return [];
      case 'registered':
        return this.receiveRegistered(st.terminal, text, now, unreadBytes);
      case 'refused':
      case 'ended':
        return [];
    }
  }

  /**
   * The Register passed: OK-REGISTRATION, online, then what arrived meanwhile, in order. Does
   * nothing unless the Register is being judged (the connection may have ended meanwhile).
   */
  accept(registration: Registration, now: number): ServerAction[] {
    if (this.st.type !== 'checking') return [];
    const early = this.st.early;
    this.term = {
      registration,
      registeredAt: now,
      lastSeenAt: now,
      busy: false,
      warnedUnexpected: false,
      warnedBadCommand: false,
    };
    this.st = { type: 'registered', terminal: this.term };
    const actions: ServerAction[] = [
      { type: 'send', frame: encodeFrame('OK-REGISTRATION') },
      { type: 'online' },
    ];
    for (const text of early) actions.push(...this.receive(text, now));
    return actions;
  }

  /** The Register failed: `result` is answered, then the connection closed. */
  refuse(result: Exclude<RegistrationResult, 'OK-REGISTRATION'>, now: number): ServerAction[] {
    if (this.st.type !== 'checking') return [];
    this.st = { type: 'refused', deadline: now + this.refusalGraceMs };
    return [{ type: 'send', frame: encodeFrame(result) }, { type: 'close' }];
  }

  /** No verdict could be reached (the database is away): the connection just ends. */
  abandon(): ServerAction[] {
    if (this.st.type !== 'checking') return [];
    return this.end('registration not judged');
  }

  /** Applies a deadline that has passed. */
  tick(now: number): ServerAction[] {
    const st = this.st;
    if (st.type === 'unregistered' && now >= st.deadline) {
      this.st = { type: 'ended' };
      return [{ type: 'register-timeout' }];
    }
    if (st.type === 'refused' && now >= st.deadline) return this.end('refused');
    // A request in flight has its own answer bound; a terminal at the card step does not
    // heartbeat (it is not idle).
    if (
      st.type === 'registered' &&
      !st.terminal.busy &&
      now - st.terminal.lastSeenAt > this.silenceLimitMs
    )
      return this.end(`silent for more than ${this.silenceLimitMs} ms`);
    return [];
  }

  /** How long a registered terminal has been silent (0 otherwise). */
  silentFor(now: number): number {
    return this.st.type === 'registered' ? now - this.st.terminal.lastSeenAt : 0;
  }

  /** A request goes out: false when the terminal is not registered or has one in flight. */
  beginRequest(): boolean {
    if (this.st.type !== 'registered' || this.st.terminal.busy) return false;
    this.st.terminal.busy = true;
    return true;
  }

  /** The request is over: the terminal is idle again (its silence counts from its last word). */
  endRequest(): void {
    if (this.st.type === 'registered') this.st.terminal.busy = false;
  }

  /** The connection is being dropped by the runner, or ended. */
  ended(): void {
    this.st = { type: 'ended' };
  }

  private receiveRegistered(
    st: RegisteredTerminal,
    text: string,
    now: number,
    unreadBytes: number,
  ): ServerAction[] {
    st.lastSeenAt = now;
    let message;
    try {
      message = decodeTerminalMessage(text);
    } catch (error) {
      if (st.warnedBadCommand) return [];
      st.warnedBadCommand = true;
      return [{ type: 'bad-command', error: toEcrError(error) }];
    }
    switch (message.type) {
      case 'heartbeat':
        if (!st.registration.ackHeartbeat) return [{ type: 'heartbeat' }];
        // It sends and never reads: its answers would pile up in memory.
        if (unreadBytes > this.maxUnreadBytes) {
          const reason = `more than ${this.maxUnreadBytes} bytes of answers left unread`;
          return [{ type: 'heartbeat' }, ...this.end(reason)];
        }
        return [{ type: 'heartbeat' }, { type: 'send', frame: encodeFrame(HEARTBEAT_ACK) }];
      case 'register':
        // The same connection registering again: still the same terminal and connection.
        if (message.terminalId !== st.registration.terminalId)
          return this.end('registered again as another terminal');
        return [{ type: 'send', frame: encodeFrame('OK-REGISTRATION') }];
      case 'payload':
        if (st.busy) return [{ type: 'answer', text: message.text }];
        if (st.warnedUnexpected) return [{ type: 'unexpected-answer', first: false }];
        st.warnedUnexpected = true;
        return [{ type: 'unexpected-answer', first: true }];
    }
  }

  private end(reason: string): ServerAction[] {
    this.st = { type: 'ended' };
    return [{ type: 'drop', reason }];
  }
}
