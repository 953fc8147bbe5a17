import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  requireCapability,
  type DriverRequest,
  type ExecuteOptions,
  type TerminalDriver,
} from '../core/driver.js';
import { EcrError, invalid, toEcrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { requireCurrency } from '../core/money.js';
import { withoutSecrets } from '../core/terminal-address.js';
import type { DriverOutcome, PaymentRequest, TransactionKind } from '../core/transaction.js';
import {
  decodeTerminalMessage,
  encodePayment,
  encodeStop,
  MAX_MESSAGE_BYTES,
  type PaymentAnswer,
} from '../protocols/payable/codec.js';
import { outcomeOf } from '../protocols/payable/statuses.js';
import { backoffDelay } from '../transports/backoff.js';
import type { MessageLink } from '../transports/message-link.js';
import { connectWebSocket } from '../transports/websocket.js';

/** PAYable's ECR port (seed 000). */
export const PAYABLE_DEFAULT_PORT = 45454;
/** Currency of PAYable terminals (Sri Lanka) unless configured otherwise. */
export const PAYABLE_DEFAULT_CURRENCY = 'LKR';
/** Bound on TCP connect + WebSocket handshake + greeting. */
export const PAYABLE_CONNECT_TIMEOUT_MS = 5_000;
/** Bound on the card step: a cardholder may take up to about two minutes. */
export const PAYABLE_ANSWER_TIMEOUT_MS = 180_000;
/** Timed-out requests remembered for a late answer. */
export const PAYABLE_MAX_LATE_ANSWERS = 32;
/** Connection attempts before TERMINAL_UNREACHABLE (safe: no payment byte has left yet). */
export const PAYABLE_CONNECT_ATTEMPTS = 3;

export interface PayableDriverOptions {
  /** `ws://host:port`; a `token` and `pos` in its query string are used unless given below. */
  readonly url: string;
  /** Newer firmware's access token; omit for old firmware. */
  readonly token?: string;
  /** This POS's name, unique among the terminal's connected POS programs. */
  readonly posName?: string;
  /** @default PAYABLE_DEFAULT_CURRENCY */
  readonly currency?: string;
  /** @default PAYABLE_CONNECT_TIMEOUT_MS */
  readonly connectTimeoutMs?: number;
  /** @default PAYABLE_ANSWER_TIMEOUT_MS */
  readonly answerTimeoutMs?: number;
  /** @default PAYABLE_CONNECT_ATTEMPTS */
  readonly connectAttempts?: number;
  /** @default MAX_MESSAGE_BYTES (64 KiB) */
  readonly maxMessageBytes?: number;
  readonly logger?: Logger;
}

interface Pending {
  readonly id: number;
  readonly settle: (outcome: DriverOutcome) => void;
}

const CAPABILITIES: ReadonlySet<TransactionKind> = new Set(['sale', 'cancel-current']);

/**
 * A PAYable terminal: the POS is a WebSocket client of the terminal. PAYable has no status
 * query, refund or void; an answer that is not seen leaves the outcome `unknown`, for
 * reconciliation from the journal (protocols.md).
 */
export class PayableDriver implements TerminalDriver {
  readonly protocol = 'payable';
  readonly capabilities = CAPABILITIES;
  private readonly url: string;
  private readonly currency: string;
  private readonly connectTimeoutMs: number;
  private readonly answerTimeoutMs: number;
  private readonly connectAttempts: number;
  private readonly maxMessageBytes: number;
  private readonly logger: Logger;
  private link: MessageLink | undefined;
  private connecting: Promise<MessageLink> | undefined;
  private pending: Pending | undefined;
  /** Timed-out requests by wire id, oldest first: a late answer on the same link settles them. */
  private readonly late = new Map<number, (outcome: DriverOutcome) => void>();
  /** A payment is between connect and outcome: the driver takes one at a time. */
  private busy = false;
  /** Serial number the terminal announced in its greeting. */
  serial: string | undefined;

  constructor(options: PayableDriverOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
      throw invalid(
        'INVALID_TERMINAL_ADDRESS',
        'url',
        'must be a ws:// or wss:// address',
        withoutSecrets(options.url),
      );
    }
    if (options.token !== undefined) url.searchParams.set('token', options.token);
    if (options.posName !== undefined) url.searchParams.set('pos', options.posName);
    this.url = url.toString();
    this.currency = requireCurrency(options.currency ?? PAYABLE_DEFAULT_CURRENCY).code;
    this.connectTimeoutMs = options.connectTimeoutMs ?? PAYABLE_CONNECT_TIMEOUT_MS;
    this.answerTimeoutMs = options.answerTimeoutMs ?? PAYABLE_ANSWER_TIMEOUT_MS;
    this.connectAttempts = options.connectAttempts ?? PAYABLE_CONNECT_ATTEMPTS;
    this.maxMessageBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    this.logger = (options.logger ?? silentLogger).child({
      protocol: 'payable',
      terminal: withoutSecrets(this.url),
    });
  }

  /** Refuses what this terminal can never take, before anything is journaled. */
  validate(request: PaymentRequest): void {
    requireCapability(this, request.kind);
    if (request.amount.currency !== this.currency) {
      throw invalid(
        'INVALID_CURRENCY',
        'currency',
        `must be ${this.currency}, the currency this terminal is set up for`,
        request.amount.currency,
      );
    }
  }

  async execute(request: DriverRequest, options: ExecuteOptions = {}): Promise<DriverOutcome> {
    this.validate(request);
    if (this.busy) {
      return {
        outcome: 'failed',
        errorCode: 'TERMINAL_BUSY',
        message: 'this driver already has a payment in flight',
      };
    }
    this.busy = true;
    try {
      return await this.pay(request, options);
    } finally {
      this.busy = false;
    }
  }

  private async pay(request: DriverRequest, options: ExecuteOptions): Promise<DriverOutcome> {
    let link: MessageLink;
    try {
      link = await this.connect(options.signal);
    } catch (error) {
      const e = toEcrError(error, 'TERMINAL_UNREACHABLE');
      return { outcome: 'failed', errorCode: e.code, message: e.message };
    }
    const frame = encodePayment({
      id: request.wireId,
      amountMinor: request.amount.minor,
      exponent: requireCurrency(this.currency).exponent,
      method: request.method === 'wallet' ? 'WALLET' : 'CARD',
      orderTracking: request.reference,
      ...(request.receiptEmail === undefined ? {} : { receiptEmail: request.receiptEmail }),
      ...(request.receiptSms === undefined ? {} : { receiptSms: request.receiptSms }),
    });
    try {
      options.beforeSend?.();
    } catch (error) {
      const e = toEcrError(error, 'JOURNAL_ERROR');
      return { outcome: 'failed', errorCode: e.code, message: `not sent: ${e.message}` };
    }
    const answered = new Promise<DriverOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.settle({
          outcome: 'unknown',
          errorCode: 'OUTCOME_UNKNOWN',
          message: `no answer within ${this.answerTimeoutMs} ms`,
        });
        if (options.onLateOutcome !== undefined)
          this.awaitLate(request.wireId, options.onLateOutcome);
      }, this.answerTimeoutMs);
      this.pending = {
        id: request.wireId,
        settle: (outcome) => {
          clearTimeout(timer);
          resolve(outcome);
        },
      };
    });
    link.send(frame).catch((error: unknown) => {
      const e = toEcrError(error, 'LINK_LOST');
      this.settle({
        outcome: 'unknown',
        errorCode: 'OUTCOME_UNKNOWN',
        message: `sending may have failed part way: ${e.message}`,
      });
    });
    return answered;
  }

  async cancelCurrent(): Promise<void> {
    const link = await this.connect();
    await link.send(encodeStop(this.serial ?? ''));
  }

  async close(): Promise<void> {
    const link = this.link;
    this.link = undefined;
    if (link !== undefined) {
      link.close();
      await link.closed;
    }
  }

  /** Remembers a timed-out request so that a late answer can still settle it (bounded). */
  private awaitLate(wireId: number, onLate: (outcome: DriverOutcome) => void): void {
    this.late.set(wireId, onLate);
    for (const oldest of this.late.keys()) {
      if (this.late.size <= PAYABLE_MAX_LATE_ANSWERS) break;
      this.late.delete(oldest);
    }
  }

  private settle(outcome: DriverOutcome): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.settle(outcome);
  }

  private connect(signal?: AbortSignal): Promise<MessageLink> {
    if (this.link?.isOpen === true) return Promise.resolve(this.link);
    this.connecting ??= this.connectWithRetries(signal).finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connectWithRetries(signal?: AbortSignal): Promise<MessageLink> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.open(signal);
      } catch (error) {
        const e = toEcrError(error, 'TERMINAL_UNREACHABLE');
        if (e.code !== 'TERMINAL_UNREACHABLE' || attempt + 1 >= this.connectAttempts) throw e;
        this.logger.warn(
          { attempt: attempt + 1, err: e.message },
          'terminal unreachable, retrying',
        );
        await sleep(
          backoffDelay(attempt),
          undefined,
          signal === undefined ? undefined : { signal },
        );
      }
    }
  }

  /** Connects and waits for the greeting (old text or STATUS_TERMINAL_AUTHORIZED). */
  private async open(signal?: AbortSignal): Promise<MessageLink> {
    const deadline = Date.now() + this.connectTimeoutMs;
    const link = await connectWebSocket(this.url, {
      connectTimeoutMs: this.connectTimeoutMs,
      maxMessageBytes: this.maxMessageBytes,
      ...(signal === undefined ? {} : { signal }),
    });
    const greeted = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      void link.closed.then(() => resolve(false));
      link.onMessage((frame) => {
        if (this.link !== link) {
          clearTimeout(timer);
          resolve(this.greeting(link, frame));
          return;
        }
        this.receive(frame);
      });
    });
    if (!greeted) {
      link.terminate();
      const closed = await link.closed;
      throw new EcrError(
        'TERMINAL_UNREACHABLE',
        `no greeting from the terminal within ${this.connectTimeoutMs} ms${closed.error ? `: ${closed.error.message}` : ''}`,
      );
    }
    void link.closed.then((closed) => {
      if (this.link === link) this.link = undefined;
      // Answers come back on the connection that carried the request; that one is gone.
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
    return link;
  }

  /** First message of a connection: true when it is a greeting. */
  private greeting(link: MessageLink, frame: string): boolean {
    try {
      const message = decodeTerminalMessage(frame);
      if (message.type !== 'greeting')
        throw new EcrError('PROTOCOL_ERROR', 'expected a greeting first');
      this.serial = message.serial;
      this.link = link;
      this.logger.info({ serial: message.serial, legacy: message.legacy }, 'terminal connected');
      return true;
    } catch (error) {
      this.logger.warn({ err: toEcrError(error).message }, 'bad greeting from terminal');
      return false;
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
      this.link?.terminate();
      return;
    }
    if (message.type !== 'answer') return;
    const answer = message.answer;
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
    if (this.pending === undefined || answer.id !== this.pending.id) {
      this.logger.warn(
        { id: answer.id, expected: this.pending?.id, status: answer.status },
        'answer matches no request in flight; ignored',
      );
      return;
    }
    this.settle(toOutcome(answer));
  }
}

function toOutcome(answer: PaymentAnswer): DriverOutcome {
  const { outcome, errorCode } = outcomeOf(answer.status, answer.error);
  const details: Record<string, string | number> = { status: answer.status };
  for (const [key, value] of [
    ['mid', answer.mid],
    ['tid', answer.tid],
    ['cardName', answer.cardName],
    ['transactionType', answer.transactionType],
    ['serverTime', answer.serverTime],
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
    ...(answer.txid === undefined ? {} : { terminalTxId: String(answer.txid) }),
    details,
  };
}
