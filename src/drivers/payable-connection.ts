import type { Logger } from 'pino';
import { EcrError, toEcrError } from '../core/errors.js';
import { redactPans } from '../core/pan.js';
import type { DriverOutcome } from '../core/transaction.js';
import {
  decodeTerminalMessage,
  encodeStop,
  type PaymentAnswer,
} from '../protocols/payable/codec.js';
import { outcomeOf } from '../protocols/payable/statuses.js';
import type { MessageLink } from '../transports/message-link.js';

/** Timed-out requests remembered per connection for a late answer. */
export const PAYABLE_MAX_LATE_ANSWERS = 32;

interface Pending {
  readonly id: number;
  readonly timer: NodeJS.Timeout;
  readonly settle: (outcome: DriverOutcome) => void;
}

/**
 * One greeted connection to a PAYable terminal and everything that belongs to it: the request in
 * flight and the timed-out requests a late answer may still settle. When the link closes, only
 * what this connection carried is affected — never a request on a newer connection.
 */
export class PayableConnection {
  private pending: Pending | undefined;
  private readonly late = new Map<number, (outcome: DriverOutcome) => void>();

  constructor(
    readonly link: MessageLink,
    readonly serial: string,
    private readonly logger: Logger,
  ) {
    link.onMessage((frame) => this.receive(frame));
    void link.closed.then((closed) => {
      this.late.clear();
      const reason = closed.error?.message ?? `the terminal closed the link (code ${closed.code})`;
      if (this.pending !== undefined) {
        this.logger.warn({ code: closed.code, reason }, 'link lost with a payment in flight');
        this.settle({
          outcome: 'unknown',
          errorCode: 'OUTCOME_UNKNOWN',
          message: `link lost before the answer: ${reason}`,
        });
      }
    });
  }

  get isOpen(): boolean {
    return this.link.isOpen;
  }

  /**
   * Sends a payment frame and resolves with its outcome: the terminal's answer, or `unknown` on
   * timeout, link loss or bad bytes. After a timeout `onLate` receives the answer if it comes
   * after all.
   */
  request(
    id: number,
    frame: string,
    timeoutMs: number,
    onLate: ((outcome: DriverOutcome) => void) | undefined,
  ): Promise<DriverOutcome> {
    if (this.pending !== undefined)
      throw new EcrError('INTERNAL', 'two requests on one PAYable connection');
    const answered = new Promise<DriverOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.settle({
          outcome: 'unknown',
          errorCode: 'OUTCOME_UNKNOWN',
          message: `no answer within ${timeoutMs} ms`,
        });
        if (onLate !== undefined) this.awaitLate(id, onLate);
        // No STOP here: the terminal may by now serve another POS, whose payment it would cancel.
        // If ours is still running, the next request is refused with STATUS_BUSY (not charged).
      }, timeoutMs);
      this.pending = { id, timer, settle: resolve };
    });
    this.link.send(frame).catch((error: unknown) => {
      this.settle({
        outcome: 'unknown',
        errorCode: 'OUTCOME_UNKNOWN',
        message: `sending may have failed part way: ${toEcrError(error, 'LINK_LOST').message}`,
      });
    });
    return answered;
  }

  /** Sends STOP for the request this connection has in flight; false when there is none. */
  async stop(): Promise<boolean> {
    if (this.pending === undefined || !this.link.isOpen) return false;
    await this.link.send(encodeStop(this.serial));
    return true;
  }

  close(): Promise<unknown> {
    this.link.close();
    return this.link.closed;
  }

  private settle(outcome: DriverOutcome): void {
    const pending = this.pending;
    this.pending = undefined;
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    pending.settle(outcome);
  }

  private awaitLate(id: number, onLate: (outcome: DriverOutcome) => void): void {
    this.late.set(id, onLate);
    for (const oldest of this.late.keys()) {
      if (this.late.size <= PAYABLE_MAX_LATE_ANSWERS) break;
      this.late.delete(oldest);
    }
  }

  private receive(frame: string): void {
    let message;
    try {
      message = decodeTerminalMessage(frame);
    } catch (error) {
      const e = toEcrError(error, 'PROTOCOL_ERROR');
      this.logger.warn(
        { err: e.message },
        'bad message from terminal; dropping the link to resynchronise',
      );
      // The answer may have been this very message: the outcome is not known.
      this.settle({ outcome: 'unknown', errorCode: e.code, message: e.message });
      this.link.terminate();
      return;
    }
    if (message.type !== 'answer') return;
    const answer = message.answer;
    if (this.pending !== undefined && answer.id === this.pending.id) {
      this.settle(toOutcome(answer));
      return;
    }
    const late = answer.id === undefined ? undefined : this.late.get(answer.id);
    if (late !== undefined && answer.id !== undefined) {
      this.late.delete(answer.id);
      this.logger.warn(
        { id: answer.id, status: answer.status },
        'late answer settles an unknown outcome',
      );
      late(toOutcome(answer));
      return;
    }
    this.logger.warn(
      { id: answer.id, expected: this.pending?.id, status: answer.status },
      'answer matches no request in flight; ignored',
    );
  }
}

/** A PAYable answer as a driver outcome; every free text was masked by the codec. */
export function toOutcome(answer: PaymentAnswer): DriverOutcome {
  const { outcome, errorCode } = outcomeOf(answer.status, answer.error);
  const details: Record<string, string | number> = { status: answer.status };
  for (const [key, value] of [
    ['mid', answer.mid],
    ['tid', answer.tid],
    ['cardName', answer.cardName],
    ['transactionType', answer.transactionType],
    ['serverTime', answer.serverTime],
    ['terminalTime', answer.terminalTime],
    ['terminalSerial', answer.origin],
  ] as const) {
    if (value !== undefined) details[key] = value;
  }
  return {
    outcome,
    ...(errorCode === undefined ? {} : { errorCode }),
    ...(answer.error === undefined ? {} : { message: answer.error }),
    ...(answer.approvalCode === undefined ? {} : { approvalCode: answer.approvalCode }),
    ...(answer.cardType === undefined ? {} : { cardBrand: answer.cardType }),
    ...(answer.txid === undefined ? {} : { terminalTxId: redactPans(String(answer.txid)) }),
    details,
  };
}
