import { ClientOnlineLink, type OnlineAction } from './client-online-link.js';
import { encodeFrame } from './framer.js';
import {
  decodeGatewayMessage,
  encodeRegister,
  type Registration,
  type RegistrationResult,
} from './messages.js';

export interface ClientSessionOptions<E> {
  /** Tried in this order each cycle: the primary first, then the next ones. */
  readonly endpoints: readonly E[];
  /** What the terminal registers as; `ackHeartbeat` asks the gateway to ack each heartbeat. */
  readonly registration: Registration;
  /** Sent as the Register's `TerminalSecret` when set. */
  readonly terminalSecret?: string;
  /** Heartbeat period while idle; a registration that lasted this long was a working one. */
  readonly heartbeatIntervalMs: number;
  /** Wait for the answer to Register, and for a heartbeat's ack. */
  readonly ackTimeoutMs: number;
  /** The first reconnect after a working connection dropped comes within this (random spread). */
  readonly reconnectSpreadMs: number;
  /** How long an orderly close waits for the gateway's side before the link is dropped. */
  readonly closeGraceMs: number;
  /** The wait before the next cycle after `failures` failed ones in a row (jittered back-off). */
  readonly backoffDelay: (failures: number) => number;
  /** In [0, 1): the heartbeat jitter and the reconnect spread. @default Math.random */
  readonly random?: () => number;
}

/** What the runner must do, or what happened, in order. */
export type ClientAction<E> =
  | OnlineAction
  /** Open a link to this endpoint; then call `connected` or `connectFailed`. */
  | { readonly type: 'connect'; readonly endpoint: E }
  | { readonly type: 'connect-failed'; readonly endpoint: E; readonly reason: string }
  | { readonly type: 'register-failed'; readonly endpoint: E; readonly reason: string }
  /** The gateway answered Register with a failure: no other endpoint is tried this cycle. */
  | { readonly type: 'refused'; readonly endpoint: E; readonly result: RegistrationResult }
  /** Registered: "POS Online"; the link now carries transaction payloads. */
  | { readonly type: 'online'; readonly endpoint: E }
  /** The online link ended without this side asking (the gateway or the network did). */
  | { readonly type: 'lost'; readonly endpoint: E }
  /** "POS Offline": after every online link ends, and after every cycle that failed. */
  | { readonly type: 'offline'; readonly endpoint?: E; readonly reason: string }
  /** The next cycle starts after `delayMs` (`failures` cycles failed in a row). */
  | { readonly type: 'backoff'; readonly delayMs: number; readonly failures: number }
  /** `stop` is complete: no link, nothing pending. */
  | { readonly type: 'stopped' };

/** Where a link being ended leads once it has closed. */
type AfterClose =
  | { readonly type: 'next'; readonly index: number; readonly reasons: readonly string[] }
  | { readonly type: 'failed'; readonly reason: string };

export type ClientSessionState =
  | { readonly type: 'idle' }
  | { readonly type: 'connecting'; readonly index: number; readonly reasons: readonly string[] }
  | {
      readonly type: 'registering';
      readonly index: number;
      readonly reasons: readonly string[];
      readonly deadline: number;
    }
  /** A link that never went online is being ended; what follows waits for it to close. */
  | { readonly type: 'closing'; readonly after: AfterClose; deadline: number | undefined }
  | { readonly type: 'online'; readonly index: number; readonly link: ClientOnlineLink }
  /** Between two cycles. */
  | { readonly type: 'waiting'; readonly until: number };

/**
 * The terminal's side of the eConduit cloud channel (seed 002) as a pure state machine, over
 * one link at a time: connect to the endpoints in order until one registers the terminal,
 * heartbeat while idle (not while a payload waits for its answer, nor when something else went
 * out within the interval), take an unacked heartbeat for a dead link, and decide when to come
 * back: at once (within a random spread) after losing a working registration, after a jittered
 * back-off after a failed cycle or a registration that did not last. A refusal is the gateway's
 * own answer: the next endpoint would say the same, so the cycle ends there.
 *
 * No sockets, no timers: the runner (agent/econduit-agent.ts) opens links when asked
 * (`connect`), reports them (`connected`, `connectFailed`, `linkClosed`), feeds messages
 * (`receive`) and calls `tick` at `nextDeadline()`; every call returns the actions to take.
 */
export class EconduitClientSession<E> {
  private st: ClientSessionState = { type: 'idle' };
  /** Cycles since the last working registration: the back-off grows with it. */
  private failures = 0;
  private stopping = false;
  private readonly registerFrame: string;
  private readonly random: () => number;

  constructor(private readonly options: ClientSessionOptions<E>) {
    this.registerFrame = encodeFrame(encodeRegister(options.registration, options.terminalSecret));
    this.random = options.random ?? Math.random;
  }

  get state(): Readonly<ClientSessionState> {
    return this.st;
  }

  /** The endpoint registered with now. */
  get endpoint(): E | undefined {
    return this.st.type === 'online' ? this.options.endpoints[this.st.index] : undefined;
  }

  nextDeadline(): number | undefined {
    const st = this.st;
    switch (st.type) {
      case 'registering':
      case 'closing':
        return st.deadline;
      case 'waiting':
        return st.until;
      case 'online':
        return st.link.nextDeadline();
      default:
        return undefined;
    }
  }

  /** Begins the first cycle; nothing while already started. */
  start(): ClientAction<E>[] {
    if (this.st.type !== 'idle') return [];
    this.stopping = false;
    this.failures = 0;
    return this.connectTo(0, []);
  }

  /**
   * Ends for good: the link is dropped and `stopped` follows once it has closed (an online link
   * reports `offline` "stopped" first). A connect under way must be abandoned by the runner.
   */
  stop(now: number): ClientAction<E>[] {
    const st = this.st;
    if (st.type === 'idle') return [];
    this.stopping = true;
    if (st.type === 'waiting') return this.halt();
    if (st.type === 'online') return this.drop('connection dropped', false, now);
    if (st.type === 'registering' || st.type === 'closing') return [{ type: 'terminate' }];
    return [];
  }

  /** Drops the link as a pulled cable would; the machine then reconnects as after any drop. */
  dropConnection(now: number): ClientAction<E>[] {
    if (this.st.type === 'online') return this.drop('connection dropped', false, now);
    if (this.st.type === 'registering' || this.st.type === 'closing')
      return [{ type: 'terminate' }];
    return [];
  }

  connected(now: number): ClientAction<E>[] {
    const st = this.st;
    if (st.type !== 'connecting') return [];
    if (this.stopping) {
      this.st = {
        type: 'closing',
        after: { type: 'failed', reason: 'stopped' },
        deadline: undefined,
      };
      return [{ type: 'terminate' }];
    }
    this.st = { ...st, type: 'registering', deadline: now + this.options.ackTimeoutMs };
    return [{ type: 'send', frame: this.registerFrame }];
  }

  connectFailed(reason: string, now: number): ClientAction<E>[] {
    const st = this.st;
    if (st.type !== 'connecting') return [];
    if (this.stopping) return this.halt();
    const endpoint = this.endpointAt(st.index);
    return [
      { type: 'connect-failed', endpoint, reason },
      ...this.next(st.index + 1, [...st.reasons, reason], now),
    ];
  }

  receive(text: string, now: number): ClientAction<E>[] {
    const st = this.st;
    if (st.type === 'registering') return this.answered(st, text, now);
    return st.type === 'online' ? st.link.receive(text) : [];
  }

  /**
   * The terminal answers the oldest payload not yet answered: the frame to write. Throws
   * INVALID_INPUT for text with a 0x04 in it (it would end the message early), counting nothing.
   */
  answer(text: string, now: number): string {
    return this.st.type === 'online' ? this.st.link.answer(text, now) : encodeFrame(text);
  }

  /** Ends the online link from this side: in order (FIN first) or at once. */
  drop(reason: string, orderly: boolean, now: number): ClientAction<E>[] {
    return this.st.type === 'online' ? this.st.link.drop(reason, orderly, now) : [];
  }

  /** The current link has closed; `lost`: why, when neither side chose to end it. */
  linkClosed(now: number, lost = 'link lost'): ClientAction<E>[] {
    const st = this.st;
    switch (st.type) {
      case 'registering': {
        if (this.stopping) return this.halt();
        const reason = 'link lost while registering';
        const endpoint = this.endpointAt(st.index);
        return [
          { type: 'register-failed', endpoint, reason },
          ...this.next(st.index + 1, [...st.reasons, reason], now),
        ];
      }
      case 'closing':
        if (this.stopping) return this.halt();
        if (st.after.type === 'next') return this.next(st.after.index, st.after.reasons, now);
        return this.failed(st.after.reason, now);
      case 'online':
        return this.offline(st.index, st.link, now, lost);
      default:
        return [];
    }
  }

  /** Applies the deadlines that have passed. */
  tick(now: number): ClientAction<E>[] {
    const st = this.st;
    switch (st.type) {
      case 'registering':
        if (now < st.deadline) return [];
        return this.registerFailed(st, 'registration not answered');
      case 'closing':
        if (st.deadline === undefined || now < st.deadline) return [];
        st.deadline = undefined;
        return [{ type: 'terminate' }];
      case 'waiting':
        return now < st.until ? [] : this.connectTo(0, []);
      case 'online':
        return st.link.tick(now);
      default:
        return [];
    }
  }

  private answered(
    st: Extract<ClientSessionState, { type: 'registering' }>,
    text: string,
    now: number,
  ): ClientAction<E>[] {
    const message = decodeGatewayMessage(text);
    if (message.type !== 'registration')
      return this.registerFailed(st, `Register answered with a ${message.type}`);
    const endpoint = this.endpointAt(st.index);
    if (message.result !== 'OK-REGISTRATION') {
      this.st = {
        type: 'closing',
        after: { type: 'failed', reason: `registration refused: ${message.result}` },
        deadline: now + this.options.closeGraceMs,
      };
      return [{ type: 'refused', endpoint, result: message.result }, { type: 'close' }];
    }
    const { heartbeatIntervalMs, ackTimeoutMs, closeGraceMs } = this.options;
    const timings = {
      heartbeatIntervalMs,
      ackTimeoutMs,
      closeGraceMs,
      ackHeartbeat: this.options.registration.ackHeartbeat,
      random: this.random,
    };
    this.st = { type: 'online', index: st.index, link: new ClientOnlineLink(timings, now) };
    return [{ type: 'online', endpoint }];
  }

  /** No usable answer from this endpoint: the next one is tried once this link has closed. */
  private registerFailed(
    st: Extract<ClientSessionState, { type: 'registering' }>,
    reason: string,
  ): ClientAction<E>[] {
    const endpoint = this.endpointAt(st.index);
    this.st = {
      type: 'closing',
      after: { type: 'next', index: st.index + 1, reasons: [...st.reasons, reason] },
      deadline: undefined,
    };
    return [{ type: 'register-failed', endpoint, reason }, { type: 'terminate' }];
  }

  /** The registered link has closed: offline, then back at once or after a back-off. */
  private offline(
    index: number,
    link: ClientOnlineLink,
    now: number,
    lost: string,
  ): ClientAction<E>[] {
    const endpoint = this.endpointAt(index);
    const reason = this.stopping ? 'stopped' : (link.dropReason ?? lost);
    const actions: ClientAction<E>[] = [];
    if (link.dropReason === undefined && !this.stopping) actions.push({ type: 'lost', endpoint });
    actions.push({ type: 'offline', endpoint, reason });
    if (this.stopping) return [...actions, ...this.halt()];
    if (link.held(now)) {
      // Back at once — within a random fraction of a second, so that a fleet that lost the
      // same gateway does not come back in one burst.
      this.failures = 0;
      const spread = Math.floor(this.random() * this.options.reconnectSpreadMs);
      this.st = { type: 'waiting', until: now + spread };
      return actions;
    }
    // A registration that did not last counts as a failure, so that a gateway that accepts and
    // drops at once cannot make its terminals hammer it.
    return [...actions, ...this.backoff(now)];
  }

  private next(index: number, reasons: readonly string[], now: number): ClientAction<E>[] {
    if (index < this.options.endpoints.length) return this.connectTo(index, reasons);
    return this.failed([...new Set(reasons)].join('; '), now);
  }

  /** No endpoint registered the terminal this cycle. */
  private failed(reason: string, now: number): ClientAction<E>[] {
    return [{ type: 'offline', reason }, ...this.backoff(now)];
  }

  private backoff(now: number): ClientAction<E>[] {
    const delayMs = this.options.backoffDelay(this.failures);
    this.failures++;
    this.st = { type: 'waiting', until: now + delayMs };
    return [{ type: 'backoff', delayMs, failures: this.failures }];
  }

  private connectTo(index: number, reasons: readonly string[]): ClientAction<E>[] {
    this.st = { type: 'connecting', index, reasons };
    return [{ type: 'connect', endpoint: this.endpointAt(index) }];
  }

  private halt(): ClientAction<E>[] {
    this.st = { type: 'idle' };
    this.stopping = false;
    return [{ type: 'stopped' }];
  }

  private endpointAt(index: number): E {
    return this.options.endpoints[index] as E;
  }
}
