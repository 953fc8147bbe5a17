import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  requireSupported,
  type BatchTotals,
  type DriverRequest,
  type ExecuteOptions,
  type StatusQueryOptions,
  type StatusTarget,
  type TerminalDriver,
} from '../core/driver.js';
import { EcrError, invalid, toEcrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { formatMoney, requireCurrency } from '../core/money.js';
import { MAX_TIMER_MS, networkDriverOptions, parseOptions, wholeNumber } from '../core/options.js';
import { withoutSecrets } from '../core/terminal-address.js';
import type {
  DriverOutcome,
  MoneyKind,
  PaymentRequest,
  TransactionKind,
} from '../core/transaction.js';
import { decodeBatchTotals, type SemiRequest } from '../protocols/semi/codec.js';
import { isBusyAnswer, semiOutcome, type SemiTranCode } from '../protocols/semi/codes.js';
import { JsonObjectFramer, SEMI_MAX_FRAME_BYTES } from '../protocols/semi/framer.js';
import { backoffDelay, connectWithRetries } from '../transports/backoff.js';
import type { LinkSource, MessageLink } from '../transports/message-link.js';
import { connectTcp } from '../transports/tcp.js';
import { connectWebSocket } from '../transports/websocket.js';
import { statusOutcome, toOutcome } from './semi-answer.js';
import { SemiConnection, type SemiExchange } from './semi-connection.js';

/** The SEMI terminal's port, on either transport (seed 004). */
export const SEMI_DEFAULT_PORT = 5000;
/** Valor terminals are set up in US dollars unless configured otherwise. */
export const SEMI_DEFAULT_CURRENCY = 'USD';
/** Bound on opening the link (TCP connect, plus the handshake for WebSocket). */
export const SEMI_CONNECT_TIMEOUT_MS = 5_000;
/** Bound on the card step: a cardholder may take up to about two minutes. */
export const SEMI_ANSWER_TIMEOUT_MS = 180_000;
/** Bound on one status query or batch close answer (no cardholder involved). */
export const SEMI_STATUS_TIMEOUT_MS = 10_000;
/**
 * How long a patient status query keeps asking after a lost answer: long enough for a card step
 * that was still running to end.
 */
export const SEMI_RECOVERY_MS = 180_000;
/**
 * The longest a terminal's card step can run. A status query naming another transaction proves
 * ours never completed only once this much time has passed since ours was sent: a terminal that
 * reports its last *completed* transaction while still at our card step must not make a charge
 * look like "not charged".
 */
export const SEMI_CARD_STEP_MS = 180_000;
/** Connection attempts before TERMINAL_UNREACHABLE (safe: no payment byte has left yet). */
export const SEMI_CONNECT_ATTEMPTS = 3;

export interface SemiDriverOptions {
  /** `ws://host:port` or `tcp://host:port`: the scheme picks the transport. Or `source`. */
  readonly url?: string;
  /**
   * Instead of `url`: where each request's link comes from when the terminal holds its own
   * connection (the eConduit gateway's channel to it).
   */
  readonly source?: LinkSource;
  /** @default SEMI_DEFAULT_CURRENCY */
  readonly currency?: string;
  /** @default SEMI_CONNECT_TIMEOUT_MS */
  readonly connectTimeoutMs?: number;
  /** @default SEMI_ANSWER_TIMEOUT_MS */
  readonly answerTimeoutMs?: number;
  /** @default SEMI_STATUS_TIMEOUT_MS */
  readonly statusTimeoutMs?: number;
  /** @default SEMI_RECOVERY_MS */
  readonly recoveryMs?: number;
  /** @default SEMI_CARD_STEP_MS */
  readonly cardStepMs?: number;
  /** @default SEMI_CONNECT_ATTEMPTS */
  readonly connectAttempts?: number;
  /** @default SEMI_MAX_FRAME_BYTES (64 KiB) */
  readonly maxFrameBytes?: number;
  readonly logger?: Logger;
}

const OPTIONS = z.strictObject({
  ...networkDriverOptions({
    currency: SEMI_DEFAULT_CURRENCY,
    connectTimeoutMs: SEMI_CONNECT_TIMEOUT_MS,
    answerTimeoutMs: SEMI_ANSWER_TIMEOUT_MS,
    connectAttempts: SEMI_CONNECT_ATTEMPTS,
  }),
  statusTimeoutMs: wholeNumber(1, MAX_TIMER_MS).default(SEMI_STATUS_TIMEOUT_MS),
  recoveryMs: wholeNumber(0, MAX_TIMER_MS).default(SEMI_RECOVERY_MS),
  cardStepMs: wholeNumber(0, MAX_TIMER_MS).default(SEMI_CARD_STEP_MS),
  maxFrameBytes: wholeNumber(1024, SEMI_MAX_FRAME_BYTES).default(SEMI_MAX_FRAME_BYTES),
  url: z.string().max(2048, 'must be at most 2048 characters').optional(),
  source: z
    .custom<LinkSource>(
      (value) => typeof value === 'object' && value !== null && 'open' in value,
      'must be a LinkSource',
    )
    .optional(),
});

/** The SEMI request for each money kind (codes in `protocols/semi/codes.ts`). */
const CODE_OF_KIND: Readonly<Record<MoneyKind, SemiTranCode>> = {
  sale: 'sale',
  refund: 'refund',
  void: 'void',
  auth: 'auth',
  capture: 'capture',
  'tip-adjust': 'tipAdjust',
};

const CAPABILITIES: ReadonlySet<TransactionKind> = new Set([
  'sale',
  'refund',
  'void',
  'auth',
  'capture',
  'tip-adjust',
  'cancel-current',
  'status',
  'batch-close',
]);

/**
 * A terminal speaking the POS SEMI integration (seed 004) over WebSocket or raw TCP; the POS is
 * the client. SEMI has a last-transaction status query, so an answer that is lost is never sent
 * again: `queryOutcome` asks the terminal instead (ARCHITECTURE.md invariant 1).
 */
export class SemiDriver implements TerminalDriver {
  readonly protocol = 'semi';
  readonly capabilities = CAPABILITIES;
  readonly endpoint: string;
  /** Where links come from: dialled at `url`, or given by a `source`. */
  private readonly links: { readonly url: URL } | { readonly source: LinkSource };
  private readonly currency: string;
  private readonly options: Readonly<z.output<typeof OPTIONS>>;
  private readonly logger: Logger;
  /** The link of the request in flight, if any: what `cancelCurrent` uses. */
  private connection: SemiConnection | undefined;
  /** An exchange is between connect and outcome: the driver takes one at a time. */
  private busy = false;
  /** The terminal's serial number (SERIAL_NO), from its last answer. */
  serial: string | undefined;

  constructor(input: SemiDriverOptions) {
    this.options = parseOptions(OPTIONS, input, 'SemiDriver');
    const { url: text, source } = this.options;
    if ((text === undefined) === (source === undefined))
      throw invalid('INVALID_INPUT', 'url', 'give either url or source, not both');
    if (source !== undefined) {
      this.links = { source };
      this.endpoint = source.endpoint;
    } else {
      const url = parseTerminalUrl(text as string);
      this.links = { url };
      this.endpoint = `semi+${url.protocol.slice(0, -1)}://${url.host}`;
    }
    this.currency = requireCurrency(this.options.currency).code;
    this.logger = (this.options.logger ?? silentLogger).child({
      protocol: 'semi',
      terminal: this.endpoint,
    });
  }

  validate(request: PaymentRequest): void {
    requireSupported(this, this.currency, request);
  }

  async execute(request: DriverRequest, options: ExecuteOptions = {}): Promise<DriverOutcome> {
    this.validate(request);
    const original = request.original;
    if (
      request.kind !== 'sale' &&
      request.kind !== 'auth' &&
      request.kind !== 'refund' &&
      original?.terminalTxId === undefined
    ) {
      return {
        outcome: 'failed',
        errorCode: 'TERMINAL_REFUSED',
        message: `a ${request.kind} needs the terminal's id of the original transaction, and none is known`,
      };
    }
    const semi: SemiRequest = {
      code: CODE_OF_KIND[request.kind],
      mode: 'credit',
      // A tip adjust carries the tip; its AMOUNT is the original's, as the terminal knows it.
      ...(request.kind === 'tip-adjust'
        ? { tipMinor: request.amount.minor, amountMinor: original?.amount.minor ?? 0 }
        : { amountMinor: request.amount.minor }),
      merTxnId: request.reference,
      reqTxnId: String(request.wireId),
      ...(original?.terminalTxId === undefined ? {} : { origTxnId: original.terminalTxId }),
    };
    const exchange = await this.run(semi, this.options.answerTimeoutMs, options);
    if (exchange.type === 'answer') return toOutcome(exchange.response, semi.amountMinor);
    return exchange.sent
      ? {
          outcome: 'unknown',
          errorCode: 'OUTCOME_UNKNOWN',
          message: `no answer seen: ${exchange.error.message}`,
        }
      : { outcome: 'failed', errorCode: exchange.error.code, message: exchange.error.message };
  }

  /**
   * Asks the terminal for its last transaction (TRAN_CODE 9). If that is `target` (same
   * MER_TXN_ID, and REQ_TXN_ID when echoed), its outcome; if it is another transaction, the
   * request never completed on the terminal: `failed`, nothing charged; if the answer names none,
   * `unknown` / OUTCOME_UNKNOWN (it proves nothing). While the terminal is busy or unreachable a
   * patient query asks again with back-off until the recovery window ends; with no answer at all
   * the result is `unknown` / TERMINAL_UNREACHABLE.
   */
  async queryOutcome(
    target: StatusTarget,
    options: StatusQueryOptions = {},
  ): Promise<DriverOutcome> {
    const deadline = Date.now() + (options.patient === true ? this.options.recoveryMs : 0);
    let why = 'no status query was answered';
    // TERMINAL_UNREACHABLE: no status answer at all; TERMINAL_BUSY: answers that may still change.
    let code: 'TERMINAL_UNREACHABLE' | 'TERMINAL_BUSY' = 'TERMINAL_UNREACHABLE';
    for (let attempt = 0; ; attempt++) {
      const exchange = await this.run({ code: 'lastStatus' }, this.options.statusTimeoutMs, {
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      if (exchange.type === 'answer') {
        const response = exchange.response;
        const found = isBusyAnswer(response.state, response.message)
          ? undefined
          : statusOutcome(target, response);
        const mayStillRun = Date.now() - (target.sentAt ?? 0) < this.options.cardStepMs;
        if (found !== undefined && !(found.outcome === 'failed' && mayStillRun)) return found;
        code = 'TERMINAL_BUSY';
        why =
          found === undefined
            ? 'the terminal is busy'
            : `${found.message ?? ''}, but its card step may still be running`;
      } else {
        why = exchange.error.message;
      }
      if (options.signal?.aborted === true || Date.now() >= deadline) break;
      this.logger.info({ attempt: attempt + 1, why }, 'status query not answered; asking again');
      const wait = Math.min(backoffDelay(attempt, 250, 5_000), Math.max(0, deadline - Date.now()));
      await sleep(
        wait,
        undefined,
        options.signal === undefined ? {} : { signal: options.signal },
      ).catch(() => {});
    }
    return {
      outcome: 'unknown',
      errorCode: code,
      message: `the terminal did not say what became of ${target.reference}: ${why}`,
    };
  }

  async batchClose(options: { readonly signal?: AbortSignal } = {}): Promise<BatchTotals> {
    const exchange = await this.run({ code: 'batchClose' }, this.options.statusTimeoutMs, options);
    if (exchange.type !== 'answer') {
      throw new EcrError(
        exchange.sent ? 'OUTCOME_UNKNOWN' : exchange.error.code,
        `batch close: ${exchange.error.message}${exchange.sent ? ' (closing again is safe)' : ''}`,
      );
    }
    const response = exchange.response;
    if (response.state !== '0') {
      const { errorCode } = semiOutcome(response.state, response.message);
      throw new EcrError(
        errorCode ?? 'TERMINAL_REFUSED',
        `the terminal refused to close the batch: ${response.message ?? `STATE ${response.state}`}`,
      );
    }
    const totals = decodeBatchTotals(response);
    const money = (minor: number) => ({ minor, currency: this.currency });
    this.logger.info(
      { batch: totals.batchNumber, net: formatMoney(money(totals.netMinor)) },
      'batch closed',
    );
    return {
      batchNumber: totals.batchNumber,
      saleCount: totals.saleCount,
      sales: money(totals.saleMinor),
      refundCount: totals.refundCount,
      refunds: money(totals.refundMinor),
      net: money(totals.netMinor),
    };
  }

  /**
   * Asks the terminal to abandon the request this driver has in flight. Never opens a link: a
   * cancel on a new one would cancel whatever another POS is doing.
   */
  async cancelCurrent(): Promise<boolean> {
    return (await this.connection?.cancel()) ?? false;
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    await connection?.close();
  }

  /**
   * One request, one at a time: connect (with retries), then the exchange. A link that could not
   * be opened reports `sent: false`.
   */
  private async run(
    request: SemiRequest,
    timeoutMs: number,
    options: ExecuteOptions,
  ): Promise<SemiExchange> {
    if (this.busy) {
      return {
        type: 'no-answer',
        sent: false,
        error: new EcrError('TERMINAL_BUSY', 'this driver already has a request in flight'),
      };
    }
    this.busy = true;
    try {
      let connection: SemiConnection;
      try {
        connection = await this.connect(options.signal);
      } catch (error) {
        return { type: 'no-answer', sent: false, error: toEcrError(error, 'TERMINAL_UNREACHABLE') };
      }
      if (options.signal?.aborted === true) {
        return {
          type: 'no-answer',
          sent: false,
          error: new EcrError('ABORTED', 'cancelled before the request was sent'),
        };
      }
      this.connection = connection;
      try {
        const exchange = await connection.exchange(request, timeoutMs, options.beforeSend);
        if (exchange.type === 'answer')
          this.serial = exchange.response.fields.SERIAL_NO ?? this.serial;
        return exchange;
      } catch (error) {
        // `beforeSend` refused (the journal could not record `sent`): nothing left.
        const e = toEcrError(error, 'JOURNAL_ERROR');
        return {
          type: 'no-answer',
          sent: false,
          error: new EcrError(e.code, `not sent: ${e.message}`),
        };
      }
    } finally {
      // One link per request: a terminal that restarts between transactions is met by the next
      // connect (retried, nothing sent yet), never by a request written into a dead socket.
      const connection = this.connection;
      this.connection = undefined;
      void connection?.close();
      this.busy = false;
    }
  }

  private connect(signal?: AbortSignal): Promise<SemiConnection> {
    return connectWithRetries(() => this.open(signal), {
      attempts: this.options.connectAttempts,
      ...(signal === undefined ? {} : { signal }),
      onRetry: (attempt, e) =>
        this.logger.warn({ attempt, err: e.message }, 'terminal unreachable, retrying'),
    });
  }

  private async open(signal?: AbortSignal): Promise<SemiConnection> {
    const common = {
      connectTimeoutMs: this.options.connectTimeoutMs,
      ...(signal === undefined ? {} : { signal }),
    };
    let link: MessageLink;
    if ('source' in this.links) {
      link = await this.links.source.open(signal);
    } else {
      const url = this.links.url;
      link =
        url.protocol === 'ws:'
          ? await connectWebSocket(`ws://${url.host}`, {
              ...common,
              maxMessageBytes: this.options.maxFrameBytes,
            })
          : await connectTcp({
              ...common,
              // An IPv6 literal keeps its brackets in a URL, never in a socket address.
              host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
              port: Number(url.port),
              framer: new JsonObjectFramer(this.options.maxFrameBytes),
              // Broken bytes where an answer belongs: never read on past them.
              garbage: 'close',
            });
      this.logger.info({ remote: link.remote }, 'terminal connected');
    }
    return new SemiConnection(link, this.logger);
  }
}

/** `ws://host:port` or `tcp://host:port`, or INVALID_TERMINAL_ADDRESS. */
function parseTerminalUrl(text: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (
    url === undefined ||
    (url.protocol !== 'ws:' && url.protocol !== 'tcp:') ||
    url.hostname === '' ||
    url.port === ''
  ) {
    throw invalid(
      'INVALID_TERMINAL_ADDRESS',
      'url',
      'must be ws://host:port or tcp://host:port',
      withoutSecrets(text),
    );
  }
  return url;
}
