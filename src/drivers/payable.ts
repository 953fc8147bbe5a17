import type { Logger } from 'pino';
import { z } from 'zod';
import {
  requireSupported,
  type DriverRequest,
  type ExecuteOptions,
  type TerminalDriver,
} from '../core/driver.js';
import { EcrError, invalid, toEcrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { requireCurrency } from '../core/money.js';
import { networkDriverOptions, parseOptions, wholeNumber } from '../core/options.js';
import { withoutSecrets } from '../core/terminal-address.js';
import type { DriverOutcome, PaymentRequest, TransactionKind } from '../core/transaction.js';
import {
  decodeTerminalMessage,
  encodePayment,
  MAX_MESSAGE_BYTES,
} from '../protocols/payable/codec.js';
import { connectWithRetries } from '../transports/backoff.js';
import { connectWebSocket } from '../transports/websocket.js';
import { PayableConnection } from './payable-connection.js';

/** PAYable's ECR port (seed 000). */
export const PAYABLE_DEFAULT_PORT = 45454;
/** Currency of PAYable terminals (Sri Lanka) unless configured otherwise. */
export const PAYABLE_DEFAULT_CURRENCY = 'LKR';
/** Bound on TCP connect + WebSocket handshake + greeting. */
export const PAYABLE_CONNECT_TIMEOUT_MS = 5_000;
/** Bound on the card step: a cardholder may take up to about two minutes. */
export const PAYABLE_ANSWER_TIMEOUT_MS = 180_000;
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

const OPTIONS = z.strictObject({
  ...networkDriverOptions({
    currency: PAYABLE_DEFAULT_CURRENCY,
    connectTimeoutMs: PAYABLE_CONNECT_TIMEOUT_MS,
    answerTimeoutMs: PAYABLE_ANSWER_TIMEOUT_MS,
    connectAttempts: PAYABLE_CONNECT_ATTEMPTS,
  }),
  token: z.string().max(256, 'must be at most 256 characters').optional(),
  posName: z.string().max(64, 'must be at most 64 characters').optional(),
  maxMessageBytes: wholeNumber(1024, MAX_MESSAGE_BYTES).default(MAX_MESSAGE_BYTES),
});

const CAPABILITIES: ReadonlySet<TransactionKind> = new Set(['sale', 'cancel-current']);

/**
 * A PAYable terminal: the POS is a WebSocket client of the terminal. PAYable has no status
 * query, refund or void; an answer that is not seen leaves the outcome `unknown`, for
 * reconciliation from the journal (protocols.md).
 */
export class PayableDriver implements TerminalDriver {
  readonly protocol = 'payable';
  readonly capabilities = CAPABILITIES;
  readonly endpoint: string;
  private readonly url: string;
  private readonly currency: string;
  private readonly connectTimeoutMs: number;
  private readonly answerTimeoutMs: number;
  private readonly connectAttempts: number;
  private readonly maxMessageBytes: number;
  private readonly logger: Logger;
  private connection: PayableConnection | undefined;
  private connecting: Promise<PayableConnection> | undefined;
  /** A payment is between connect and outcome: the driver takes one at a time. */
  private busy = false;
  /** Serial number the terminal announced in its greeting. */
  serial: string | undefined;

  constructor(input: PayableDriverOptions) {
    const options = parseOptions(OPTIONS, input, 'PayableDriver');
    let url: URL | undefined;
    try {
      url = new URL(options.url);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'ws:' && url.protocol !== 'wss:')) {
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
    this.endpoint = `payable+${url.protocol.slice(0, -1)}://${url.host}`;
    this.currency = requireCurrency(options.currency).code;
    this.connectTimeoutMs = options.connectTimeoutMs;
    this.answerTimeoutMs = options.answerTimeoutMs;
    this.connectAttempts = options.connectAttempts;
    this.maxMessageBytes = options.maxMessageBytes;
    this.logger = (options.logger ?? silentLogger).child({
      protocol: 'payable',
      terminal: withoutSecrets(this.url),
    });
  }

  /** Refuses what this terminal can never take, before anything is journaled. */
  validate(request: PaymentRequest): void {
    requireSupported(this, this.currency, request);
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
    let connection: PayableConnection;
    try {
      connection = await this.connect(options.signal);
    } catch (error) {
      const e = toEcrError(error, 'TERMINAL_UNREACHABLE');
      return { outcome: 'failed', errorCode: e.code, message: e.message };
    }
    if (options.signal?.aborted === true) {
      return {
        outcome: 'failed',
        errorCode: 'ABORTED',
        message: 'cancelled before the request was sent',
      };
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
      await options.beforeSend?.();
    } catch (error) {
      const e = toEcrError(error, 'JOURNAL_ERROR');
      return { outcome: 'failed', errorCode: e.code, message: `not sent: ${e.message}` };
    }
    return connection.request(request.wireId, frame, this.answerTimeoutMs, options.onLateOutcome);
  }

  /**
   * Sends STOP for the payment this driver has in flight. Never opens a connection: a STOP on
   * a new one would cancel whatever another POS is doing on the terminal.
   */
  async cancelCurrent(): Promise<boolean> {
    return (await this.connection?.stop()) ?? false;
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    await connection?.close();
  }

  private connect(signal?: AbortSignal): Promise<PayableConnection> {
    if (this.connection?.isOpen === true) return Promise.resolve(this.connection);
    this.connecting ??= this.connectWithRetries(signal).finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connectWithRetries(signal?: AbortSignal): Promise<PayableConnection> {
    const connection = await connectWithRetries(() => this.open(signal), {
      attempts: this.connectAttempts,
      ...(signal === undefined ? {} : { signal }),
      onRetry: (attempt, e) =>
        this.logger.warn({ attempt, err: e.message }, 'terminal unreachable, retrying'),
    });
    this.connection = connection;
    return connection;
  }

  /** Connects and waits for the greeting (old text or STATUS_TERMINAL_AUTHORIZED). */
  private async open(signal?: AbortSignal): Promise<PayableConnection> {
    const deadline = Date.now() + this.connectTimeoutMs;
    const link = await connectWebSocket(this.url, {
      connectTimeoutMs: this.connectTimeoutMs,
      maxMessageBytes: this.maxMessageBytes,
      ...(signal === undefined ? {} : { signal }),
    });
    let timer: NodeJS.Timeout | undefined;
    const greeting = await new Promise<string | EcrError>((resolve) => {
      timer = setTimeout(
        () =>
          resolve(
            new EcrError(
              'TERMINAL_UNREACHABLE',
              `no greeting from the terminal within ${this.connectTimeoutMs} ms`,
            ),
          ),
        Math.max(0, deadline - Date.now()),
      );
      void link.closed.then((closed) =>
        resolve(
          new EcrError(
            'TERMINAL_UNREACHABLE',
            `the terminal closed the link before greeting: ${closed.error?.message ?? `code ${closed.code}${closed.reason === '' ? '' : `, ${closed.reason}`}`}`,
          ),
        ),
      );
      link.onMessage((frame) => {
        // Anything after the greeting waits in the link's buffer for the connection's handler.
        link.onMessage(undefined);
        try {
          const message = decodeTerminalMessage(frame);
          resolve(
            message.type === 'greeting'
              ? message.serial
              : new EcrError('TERMINAL_UNREACHABLE', 'the terminal did not greet first'),
          );
        } catch (error) {
          resolve(
            new EcrError(
              'TERMINAL_UNREACHABLE',
              `bad greeting from the terminal: ${toEcrError(error).message}`,
            ),
          );
        }
      });
    });
    clearTimeout(timer);
    if (greeting instanceof EcrError) {
      link.terminate();
      await link.closed;
      throw greeting;
    }
    this.serial = greeting;
    this.logger.info({ serial: greeting }, 'terminal connected');
    return new PayableConnection(link, greeting, this.logger);
  }
}
