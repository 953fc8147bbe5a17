import { encodeFrame } from './framer.js';
import { decodeGatewayMessage, HEARTBEAT, type RegistrationResult } from './messages.js';

const HEARTBEAT_FRAME = encodeFrame(HEARTBEAT);

export interface OnlineLinkTimings {
  /** Heartbeat period while idle. */
  readonly heartbeatIntervalMs: number;
  /** Wait for a heartbeat's ack (when `ackHeartbeat`). */
  readonly ackTimeoutMs: number;
  /** How long an orderly close waits for the gateway's side before the link is dropped. */
  readonly closeGraceMs: number;
  /** The terminal registered asking for heartbeat acks. */
  readonly ackHeartbeat: boolean;
  /** In [0, 1): the heartbeat jitter. */
  readonly random: () => number;
}

/** What the runner must do on the registered link, or what happened on it, in order. */
export type OnlineAction =
  /** Write this frame (text and 0x04 0x04) on the link. */
  | { readonly type: 'send'; readonly frame: string }
  /** Close the link in order (FIN); `terminate` follows after the grace. */
  | { readonly type: 'close' }
  /** Drop the link at once. */
  | { readonly type: 'terminate' }
  /** A transaction payload from the gateway, for the terminal to answer. */
  | { readonly type: 'payload'; readonly text: string }
  /** A registration answer while registered: ignored. */
  | { readonly type: 'stray-answer'; readonly result: RegistrationResult }
  /** This side is ending the link, and why (reported once). */
  | { readonly type: 'dropping'; readonly reason: string };

/**
 * The terminal's registered link (seed 002), pure: heartbeats "when the terminal is idle" — not
 * while a payload waits for its answer, nor when something else went out within the interval —
 * an unacked heartbeat taken for a half-open link, payloads counted until answered, and an
 * orderly close bounded by a grace. Part of `EconduitClientSession`.
 */
export class ClientOnlineLink {
  /** When a message was last written (Register, an answer, a heartbeat). */
  private lastSentAt: number;
  /** Payloads received and not yet answered. */
  private pending = 0;
  private heartbeatAt: number | undefined;
  private ackDeadline: number | undefined;
  private closeDeadline: number | undefined;
  /** Why this side ended it; undefined while up, or when the gateway or the network did. */
  private reason: string | undefined;

  /** `since`: when it registered (Register was the last message written). */
  constructor(
    private readonly timings: OnlineLinkTimings,
    readonly since: number,
  ) {
    this.lastSentAt = since;
    this.scheduleBeat(since, timings.heartbeatIntervalMs);
  }

  /** Why this side ended the link, if it did. */
  get dropReason(): string | undefined {
    return this.reason;
  }

  /** The registration lasted a heartbeat interval: it was a working one. */
  held(now: number): boolean {
    return now - this.since >= this.timings.heartbeatIntervalMs;
  }

  nextDeadline(): number | undefined {
    let first: number | undefined;
    for (const time of [this.heartbeatAt, this.ackDeadline, this.closeDeadline])
      if (time !== undefined && (first === undefined || time < first)) first = time;
    return first;
  }

  receive(text: string): OnlineAction[] {
    const message = decodeGatewayMessage(text);
    if (message.type === 'heartbeat-ack') {
      this.ackDeadline = undefined;
      return [];
    }
    if (message.type === 'registration') return [{ type: 'stray-answer', result: message.result }];
    this.pending++;
    return [{ type: 'payload', text }];
  }

  /**
   * The terminal answers the oldest payload not yet answered: the frame to write. Throws
   * INVALID_INPUT for text with a 0x04 in it (it would end the message early), counting nothing.
   */
  answer(text: string, now: number): string {
    const frame = encodeFrame(text);
    if (this.pending > 0) this.pending--;
    this.lastSentAt = now;
    return frame;
  }

  /** Ends the link from this side: in order (FIN first) or at once. */
  drop(reason: string, orderly: boolean, now: number): OnlineAction[] {
    const actions: OnlineAction[] = [];
    if (this.reason === undefined) {
      this.reason = reason;
      actions.push({ type: 'dropping', reason });
    }
    if (!orderly) return [...actions, { type: 'terminate' }];
    this.closeDeadline ??= now + this.timings.closeGraceMs;
    return [...actions, { type: 'close' }];
  }

  /** Applies the deadlines that have passed. */
  tick(now: number): OnlineAction[] {
    const actions: OnlineAction[] = [];
    if (this.closeDeadline !== undefined && now >= this.closeDeadline) {
      this.closeDeadline = undefined;
      actions.push({ type: 'terminate' });
    }
    if (this.ackDeadline !== undefined && now >= this.ackDeadline) {
      // No ack in time: the connection is half-open (a pulled cable upstream); drop it.
      this.ackDeadline = undefined;
      return [...actions, ...this.drop('heartbeat not acknowledged', false, now)];
    }
    if (this.heartbeatAt !== undefined && now >= this.heartbeatAt) actions.push(...this.beat(now));
    return actions;
  }

  private beat(now: number): OnlineAction[] {
    const interval = this.timings.heartbeatIntervalMs;
    const quietMs = now - this.lastSentAt;
    if (this.pending > 0) return this.scheduleBeat(now, interval);
    if (quietMs < interval) return this.scheduleBeat(now, interval - quietMs);
    this.lastSentAt = now;
    if (this.timings.ackHeartbeat) this.ackDeadline ??= now + this.timings.ackTimeoutMs;
    // ±10%: terminals that registered together drift apart instead of beating in lockstep.
    this.scheduleBeat(now, Math.round(interval * (0.9 + this.timings.random() * 0.2)));
    return [{ type: 'send', frame: HEARTBEAT_FRAME }];
  }

  private scheduleBeat(now: number, delayMs: number): OnlineAction[] {
    this.heartbeatAt = now + Math.max(1, Math.ceil(delayMs));
    return [];
  }
}
