import { EcrError, invalid } from '../../core/errors.js';
import { CONCERT_CONTROL, CONCERT_MAX_DATA_BYTES, encodeFrame } from './frame.js';
import { ConcertFrameReader } from './frame-reader.js';

const { STX, EOT, ENQ, ACK, NAK } = CONCERT_CONTROL;

/** Wait for the ACK to our ENQ, and for the ACK or NAK to our frame (protocols.md: about 2 s). */
export const CONCERT_ACK_TIMEOUT_MS = 2_000;
/** After we ACKed an ENQ (or NAKed a frame), the whole frame must arrive within this. */
export const CONCERT_FRAME_TIMEOUT_MS = 2_000;
/** After we ACKed a frame, wait this long for EOT before the exchange is taken as over. */
export const CONCERT_EOT_TIMEOUT_MS = 2_000;
/** Resends of a NAKed frame (and retries of a NAKed ENQ) before giving up (protocols.md: 3). */
export const CONCERT_MAX_RESENDS = 3;
/** Largest `maxDataBytes` accepted: the receive buffer is allocated at that size. */
export const CONCERT_DATA_BYTES_CEILING = 4_096;

/**
 * ENQ collision (both sides send ENQ at once): the terminal wins. The POS, while waiting for the
 * ACK to its own ENQ, answers the terminal's ENQ with ACK, receives the terminal's frame, and
 * once that exchange is over (EOT, or a timeout) starts its own send again from ENQ with a fresh
 * resend budget. The terminal, while waiting for the ACK to its ENQ, ignores an incoming ENQ.
 * Why the terminal: its frame is the answer to a transaction already under way (money may have
 * moved), while the POS's frame has not reached the terminal yet and can wait.
 */
export const CONCERT_COLLISION_RULE =
  'ENQ collision: the terminal wins. A POS waiting for the ACK to its ENQ answers the ' +
  "terminal's ENQ with ACK, receives its frame, then sends again from ENQ with a fresh resend " +
  "budget; a terminal waiting for the ACK to its ENQ ignores the POS's ENQ.";

export type ConcertRole = 'pos' | 'terminal';

export interface ConcertLinkOptions {
  /** Which end of the line this is: decides who wins an ENQ collision. */
  readonly role: ConcertRole;
  /** Wait for the ACK to an ENQ and for the ACK/NAK to a frame. @default CONCERT_ACK_TIMEOUT_MS */
  readonly ackTimeoutMs?: number;
  /** After we ACKed an ENQ or NAKed a frame, the frame must arrive within this. @default CONCERT_FRAME_TIMEOUT_MS */
  readonly frameTimeoutMs?: number;
  /** After we ACKed a frame, wait this long for EOT. @default CONCERT_EOT_TIMEOUT_MS */
  readonly eotTimeoutMs?: number;
  /** Resends of a NAKed frame, retries of a NAKed ENQ. @default CONCERT_MAX_RESENDS */
  readonly maxResends?: number;
  /** Largest frame data, both ways; the receive buffer never holds more. @default CONCERT_MAX_DATA_BYTES */
  readonly maxDataBytes?: number;
}

export type ConcertSendFailure = 'no-answer-to-enq' | 'nak-limit' | 'no-answer-to-frame';

export type ConcertLinkEvent =
  /** A frame received with a good LRC and ACKed; once, even when the sender resends it. */
  | { readonly type: 'message'; readonly data: string }
  /** Our frame was ACKed (and we sent EOT). */
  | { readonly type: 'delivered' }
  /**
   * Our frame did not get through (we sent EOT). `no-answer-to-enq` (TERMINAL_UNREACHABLE) and
   * `nak-limit` (PROTOCOL_ERROR): the peer did not take it. `no-answer-to-frame`
   * (OUTCOME_UNKNOWN): the peer may have taken it, its ACK was not seen.
   */
  | {
      readonly type: 'send-failed';
      readonly reason: ConcertSendFailure;
      readonly error: EcrError;
    }
  /** A frame we refused (NAKed, or dropped when it never ended): informational. */
  | { readonly type: 'rejected'; readonly error: EcrError };

export interface ConcertLinkStep {
  /** Bytes to write now, possibly none. */
  readonly write: Uint8Array;
  readonly events: readonly ConcertLinkEvent[];
}

/** What the link is doing, for tests and logs. */
export type ConcertLinkStateKind =
  | 'idle'
  | 'enq-sent'
  | 'frame-sent'
  | 'receiving'
  /** A frame was ACKed; EOT (or a resend of the same frame, if our ACK was lost) is due. */
  | 'awaiting-eot';

type State =
  | { kind: 'idle' }
  | { kind: 'enq-sent'; enqs: number; deadline: number }
  | {
      kind: 'frame-sent';
      sendings: number;
      deadline: number;
      /**
       * A reply that was not a clean NAK came back (garbled on the line): it may have been the
       * peer's ACK, so the peer may have taken the frame.
       */
      garbled?: boolean;
    }
  | {
      kind: 'receiving';
      deadline: number;
      /** Frames NAKed in this exchange: past `maxResends` the exchange is abandoned. */
      naks: number;
      /** The data we ACKed in this exchange, to recognise a resend after a lost ACK. */
      delivered: string | undefined;
    };
type Receiving = Extract<State, { kind: 'receiving' }>;

function positiveInteger(
  field: string,
  value: number | undefined,
  fallback: number,
  min = 1,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) {
    throw invalid('INVALID_INPUT', field, `must be an integer of at least ${min}`);
  }
  return value;
}

/**
 * The Concert V2 link layer (protocols.md, "concert") as a pure state machine, for both ends:
 * `ENQ → ACK → STX data ETX LRC → ACK (or NAK, resend) → EOT`. No I/O, no timers: bytes and the
 * time come in through `push`, `tick` and `send`; bytes to write and events come out in a
 * `ConcertLinkStep`. The caller runs one timer to `nextDeadline()`. A deadline that passed is
 * applied before the bytes of a later `push`, so late bytes never rescue an exchange.
 *
 * Receiving: bytes before STX are ignored; the data are held in a buffer of `maxDataBytes`
 * allocated once, so a peer that never stops sending costs no memory (the excess is counted,
 * never kept). The byte after ETX is the LRC, whatever its value. EOT inside a frame means the
 * sender gave up. Sending: a reply to our frame that is neither ACK nor NAK (line noise hit it)
 * counts as a NAK: resending is safe because the receiver ACKs a resend of the frame it already
 * took without a second `message`. Every failed send ends with EOT so the peer returns to idle.
 * A `send` while a frame is being received waits for that exchange to end. See
 * `CONCERT_COLLISION_RULE` for two ENQs crossing.
 */
export class ConcertLink {
  private readonly role: ConcertRole;
  private readonly ackTimeoutMs: number;
  private readonly frameTimeoutMs: number;
  private readonly eotTimeoutMs: number;
  private readonly maxResends: number;
  private readonly maxDataBytes: number;
  private st: State = { kind: 'idle' };
  /** The frame being sent, or waiting for the exchange we are receiving to end. */
  private outgoing: Uint8Array | undefined;
  /** The frame being received, between STX and LRC. */
  private readonly reader: ConcertFrameReader;
  // What the current call produces.
  private writes: Uint8Array[] = [];
  private events: ConcertLinkEvent[] = [];

  constructor(options: ConcertLinkOptions) {
    if (options.role !== 'pos' && options.role !== 'terminal') {
      throw invalid('INVALID_INPUT', 'role', 'must be pos or terminal');
    }
    this.role = options.role;
    const option = (field: Exclude<keyof ConcertLinkOptions, 'role'>, fallback: number, min = 1) =>
      positiveInteger(field, options[field], fallback, min);
    this.ackTimeoutMs = option('ackTimeoutMs', CONCERT_ACK_TIMEOUT_MS);
    this.frameTimeoutMs = option('frameTimeoutMs', CONCERT_FRAME_TIMEOUT_MS);
    this.eotTimeoutMs = option('eotTimeoutMs', CONCERT_EOT_TIMEOUT_MS);
    this.maxResends = option('maxResends', CONCERT_MAX_RESENDS, 0);
    this.maxDataBytes = option('maxDataBytes', CONCERT_MAX_DATA_BYTES);
    if (this.maxDataBytes > CONCERT_DATA_BYTES_CEILING) {
      const rule = `must be at most ${CONCERT_DATA_BYTES_CEILING}`;
      throw invalid('INVALID_INPUT', 'maxDataBytes', rule);
    }
    this.reader = new ConcertFrameReader(this.maxDataBytes);
  }

  get state(): ConcertLinkStateKind {
    if (this.st.kind !== 'receiving') return this.st.kind;
    return this.st.delivered !== undefined && !this.reader.reading ? 'awaiting-eot' : 'receiving';
  }

  /** True from `send` until its `delivered` or `send-failed`. */
  get sending(): boolean {
    return this.outgoing !== undefined;
  }

  /** Data bytes held for a frame being received (never more than `maxDataBytes`). */
  get buffered(): number {
    return this.reader.buffered;
  }

  /** When `tick` must be called next, or undefined when nothing is awaited. */
  nextDeadline(): number | undefined {
    return this.st.kind === 'idle' ? undefined : this.st.deadline;
  }

  /**
   * Starts the exchange that carries `data` in one frame; while a frame is being received it
   * starts when that exchange ends. Throws INVALID_INPUT for data `encodeFrame` refuses (or
   * longer than `maxDataBytes`), INTERNAL when a frame is already being sent.
   */
  send(data: string, now: number): ConcertLinkStep {
    if (this.outgoing !== undefined) {
      const message = 'a Concert frame is already being sent: wait for its outcome';
      throw new EcrError('INTERNAL', message, { field: 'send', rule: 'one frame at a time' });
    }
    const frame = encodeFrame(data, this.maxDataBytes);
    this.expire(now);
    this.outgoing = frame;
    if (this.st.kind === 'idle') this.sendEnq(1, now);
    return this.flush();
  }

  push(bytes: Uint8Array, now: number): ConcertLinkStep {
    this.expire(now);
    for (const byte of bytes) this.receive(byte, now);
    return this.flush();
  }

  /** Applies a deadline that has passed; call at or after `nextDeadline()`. */
  tick(now: number): ConcertLinkStep {
    this.expire(now);
    return this.flush();
  }

  // ---- one byte at a time ----

  private receive(byte: number, now: number): void {
    const st = this.st;
    switch (st.kind) {
      case 'idle':
        if (byte === ENQ) this.acceptEnq(now);
        return;
      case 'enq-sent':
        if (byte === ACK) {
          this.write(this.outgoing as Uint8Array);
          this.st = {
            kind: 'frame-sent',
            sendings: 1,
            deadline: now + this.ackTimeoutMs,
            garbled: false,
          };
        } else if (byte === NAK) {
          if (st.enqs <= this.maxResends) this.sendEnq(st.enqs + 1, now);
          else this.fail('no-answer-to-enq', 'ENQ refused (NAK) on every try', st.enqs);
        } else if (byte === ENQ && this.role === 'pos') {
          // CONCERT_COLLISION_RULE: the terminal wins; our frame stays in `outgoing`.
          this.acceptEnq(now);
        }
        return;
      case 'frame-sent':
        if (byte === ACK) {
          this.outgoing = undefined;
          this.write(Uint8Array.of(EOT));
          this.st = { kind: 'idle' };
          this.events.push({ type: 'delivered' });
        } else if (byte !== ENQ) {
          // NAK, or a reply garbled on the line: resend within the budget.
          const garbled = st.garbled === true || byte !== NAK;
          if (st.sendings <= this.maxResends) {
            this.write(this.outgoing as Uint8Array);
            this.st = {
              kind: 'frame-sent',
              sendings: st.sendings + 1,
              deadline: now + this.ackTimeoutMs,
              garbled,
            };
          } else if (garbled) {
            // Only clean NAKs prove the peer never took the frame; a garbled reply may have
            // been its ACK.
            this.fail(
              'no-answer-to-frame',
              'no clean ACK or NAK to the frame: the peer may have taken it',
              st.sendings,
            );
          } else {
            this.fail('nak-limit', 'frame refused (NAK) on every resend', st.sendings);
          }
        }
        return;
      case 'receiving':
        this.receiveFrameByte(st, byte, now);
        return;
    }
  }

  private receiveFrameByte(st: Receiving, byte: number, now: number): void {
    if (!this.reader.reading) {
      if (byte === STX) this.reader.begin();
      // The sender missed our ACK to its ENQ, or (after a frame) its EOT was lost and this is
      // the next exchange: either way, ACK and wait for a frame.
      else if (byte === ENQ) this.acceptEnq(now);
      else if (byte === EOT) this.endExchange(now);
      return;
    }
    const read = this.reader.push(byte);
    switch (read.kind) {
      case 'more':
        return;
      case 'aborted':
        this.events.push({ type: 'rejected', error: read.error });
        this.endExchange(now);
        return;
      case 'refused':
        this.refuse(st, read.error, now);
        return;
      case 'frame':
        if (st.delivered === undefined) {
          this.write(Uint8Array.of(ACK));
          this.events.push({ type: 'message', data: read.data });
          st.delivered = read.data;
        } else if (read.data === st.delivered) {
          // A resend of the frame we took (our ACK was lost): ACK again, no second message.
          this.write(Uint8Array.of(ACK));
        } else {
          const message = 'frame refused (NAK): another frame without a new ENQ';
          const rule = 'one frame per exchange';
          this.refuse(st, new EcrError('PROTOCOL_ERROR', message, { field: 'frame', rule }), now);
          return;
        }
        st.deadline = now + this.eotTimeoutMs;
        return;
    }
  }

  /** NAKs a frame; a peer that keeps sending bad ones does not hold the line past the budget. */
  private refuse(st: Receiving, error: EcrError, now: number): void {
    this.write(Uint8Array.of(NAK));
    this.events.push({ type: 'rejected', error });
    st.naks++;
    if (st.naks > this.maxResends) this.endExchange(now);
    else st.deadline = now + this.frameTimeoutMs;
  }

  // ---- transitions ----

  private expire(now: number): void {
    while (this.st.kind !== 'idle' && now >= this.st.deadline) {
      const st = this.st;
      if (st.kind === 'enq-sent') {
        this.fail('no-answer-to-enq', `no ACK to ENQ within ${this.ackTimeoutMs} ms`, st.enqs);
      } else if (st.kind === 'frame-sent') {
        this.fail(
          'no-answer-to-frame',
          `no ACK or NAK to the frame within ${this.ackTimeoutMs} ms`,
          st.sendings,
        );
      } else {
        // After an ACKed frame the exchange simply ends (its EOT was lost); else it never came.
        if (st.delivered === undefined) {
          const rule = `complete within ${this.frameTimeoutMs} ms`;
          const error = new EcrError('TIMEOUT', `frame dropped: not ${rule}`, {
            field: 'frame',
            rule,
          });
          this.events.push({ type: 'rejected', error });
        }
        this.endExchange(now);
      }
    }
  }

  private sendEnq(enqs: number, now: number): void {
    this.write(Uint8Array.of(ENQ));
    this.st = { kind: 'enq-sent', enqs, deadline: now + this.ackTimeoutMs };
  }

  private acceptEnq(now: number): void {
    this.write(Uint8Array.of(ACK));
    this.reader.reset();
    this.st = {
      kind: 'receiving',
      deadline: now + this.frameTimeoutMs,
      naks: 0,
      delivered: undefined,
    };
  }

  /** Back to idle after receiving; a send that waited (collision, or `send` meanwhile) starts. */
  private endExchange(now: number): void {
    this.reader.reset();
    this.st = { kind: 'idle' };
    if (this.outgoing !== undefined) this.sendEnq(1, now);
  }

  private fail(reason: ConcertSendFailure, what: string, tries: number): void {
    this.outgoing = undefined;
    this.write(Uint8Array.of(EOT));
    this.st = { kind: 'idle' };
    const error =
      reason === 'no-answer-to-enq'
        ? new EcrError('TERMINAL_UNREACHABLE', `${what} (${tries} ENQ sent)`, {
            field: 'enq',
            rule: `ACK within ${this.ackTimeoutMs} ms, at most ${this.maxResends} retries`,
          })
        : reason === 'nak-limit'
          ? new EcrError('PROTOCOL_ERROR', `${what} (${tries} sendings)`, {
              field: 'frame',
              rule: `accepted within ${this.maxResends} resends`,
            })
          : new EcrError('OUTCOME_UNKNOWN', `${what}: the peer may have taken it`, {
              field: 'frame',
              rule: `ACK or NAK within ${this.ackTimeoutMs} ms`,
            });
    this.events.push({ type: 'send-failed', reason, error });
  }

  private write(bytes: Uint8Array): void {
    this.writes.push(bytes);
  }

  private flush(): ConcertLinkStep {
    const total = this.writes.reduce((sum, bytes) => sum + bytes.length, 0);
    const write = new Uint8Array(total);
    let at = 0;
    for (const bytes of this.writes) {
      write.set(bytes, at);
      at += bytes.length;
    }
    const step = { write, events: this.events };
    this.writes = [];
    this.events = [];
    return step;
  }
}
