import type { Logger } from 'pino';
import { z } from 'zod';
import {
  requireSupported,
  type DriverRequest,
  type ExecuteOptions,
  type TerminalDriver,
} from '../core/driver.js';
import { invalid, toEcrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { requireCurrency } from '../core/money.js';
import { MAX_TIMER_MS, networkDriverOptions, parseOptions, wholeNumber } from '../core/options.js';
import type {
  DriverOutcome,
  MoneyKind,
  PaymentRequest,
  TransactionKind,
} from '../core/transaction.js';
import {
  decodeAnswer,
  encodeRequest,
  type ConcertAnswer,
  type ConcertRequest,
} from '../protocols/concert/messages.js';
import { CONCERT_ACK_TIMEOUT_MS } from '../protocols/concert/link.js';
import { connectWithRetries } from '../transports/backoff.js';
import type { ByteStream } from '../transports/byte-stream.js';
import { openSerial, SERIAL_DEFAULT_BAUD_RATE } from '../transports/serial.js';
import { connectTcpStream } from '../transports/tcp-stream.js';
import { ConcertSession } from './concert-session.js';

/** Concert over IP's usual port (protocols.md). */
export const CONCERT_DEFAULT_PORT = 8888;
/** HiPay's terminals are set up in euros unless configured otherwise. */
export const CONCERT_DEFAULT_CURRENCY = 'EUR';
/** Bound on opening the serial port or the TCP connection. */
export const CONCERT_CONNECT_TIMEOUT_MS = 5_000;
/** Bound on the card step: the result can take up to about 120 s (protocols.md), plus margin. */
export const CONCERT_ANSWER_TIMEOUT_MS = 150_000;
/** Opening attempts before TERMINAL_UNREACHABLE (safe: nothing has been sent yet). */
export const CONCERT_CONNECT_ATTEMPTS = 2;
/** This POS's number on the terminal when the configuration names none. */
export const CONCERT_DEFAULT_POS_NUMBER = 1;

export interface ConcertDriverOptions {
  /** `serial:///dev/ttyACM0?baud=9600` or `tcp://host:8888`. */
  readonly url: string;
  /** @default CONCERT_DEFAULT_CURRENCY */
  readonly currency?: string;
  /** 1–99, as set up on the terminal. @default CONCERT_DEFAULT_POS_NUMBER */
  readonly posNumber?: number;
  /** `end`: the terminal answers at the end of the transaction (A010); `immediate` (A011). @default 'end' */
  readonly answerDelay?: 'end' | 'immediate';
  /**
   * Force an online authorisation (B011) on every request; a request's own
   * `forceAuthorization` wins. @default false
   */
  readonly forceAuthorization?: boolean;
  /** @default CONCERT_CONNECT_TIMEOUT_MS */
  readonly connectTimeoutMs?: number;
  /** @default CONCERT_ANSWER_TIMEOUT_MS */
  readonly answerTimeoutMs?: number;
  /** The terminal must ACK within this (protocols.md: about 2 s). @default CONCERT_ACK_TIMEOUT_MS */
  readonly ackTimeoutMs?: number;
  /** @default CONCERT_CONNECT_ATTEMPTS */
  readonly connectAttempts?: number;
  readonly logger?: Logger;
}

const OPTIONS = z.strictObject({
  ...networkDriverOptions({
    currency: CONCERT_DEFAULT_CURRENCY,
    connectTimeoutMs: CONCERT_CONNECT_TIMEOUT_MS,
    answerTimeoutMs: CONCERT_ANSWER_TIMEOUT_MS,
    connectAttempts: CONCERT_CONNECT_ATTEMPTS,
  }),
  posNumber: wholeNumber(1, 99).default(CONCERT_DEFAULT_POS_NUMBER),
  answerDelay: z.enum(['end', 'immediate'], { error: 'must be end or immediate' }).default('end'),
  forceAuthorization: z.boolean({ error: 'must be true or false' }).default(false),
  ackTimeoutMs: wholeNumber(1, MAX_TIMER_MS).default(CONCERT_ACK_TIMEOUT_MS),
});

/** The Concert transaction type of each money kind (protocols.md). */
const TYPE_OF_KIND: Partial<Record<MoneyKind, ConcertRequest['transactionType']>> = {
  sale: 'debit',
  refund: 'credit',
  void: 'cancel',
  auth: 'preauth',
};

const CAPABILITIES: ReadonlySet<TransactionKind> = new Set([
  'sale',
  'refund',
  'void',
  'auth',
  'force-authorization',
]);

type Target =
  | { readonly kind: 'serial'; readonly path: string; readonly baudRate: number }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

function parseTarget(value: string): Target {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url?.protocol === 'serial:' && url.host === '' && url.pathname.length > 1) {
    const baud = url.searchParams.get('baud');
    const baudRate = baud === null ? SERIAL_DEFAULT_BAUD_RATE : Number(baud);
    if (!/^\d+$/.test(baud ?? '0'))
      throw invalid('INVALID_TERMINAL_ADDRESS', 'baud', 'must be a whole number', baud ?? '');
    return { kind: 'serial', path: decodeURIComponent(url.pathname), baudRate };
  }
  if (url?.protocol === 'tcp:' && url.hostname !== '' && url.port !== '') {
    return { kind: 'tcp', host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port) };
  }
  throw invalid(
    'INVALID_TERMINAL_ADDRESS',
    'url',
    'must be serial:///dev/ttyACM0?baud=9600 or tcp://host:port',
    value.replace(/\?[\s\S]*/, ''),
  );
}

/**
 * A terminal speaking Caisse Concert V2 (protocol E / E+) over a serial port or TCP: what the
 * HiPay connectors drive (seeds 001, 003). Concert V2 has no status query and no way to abort a
 * transaction from the POS: an answer that is not seen leaves the outcome `unknown`, for
 * reconciliation.
 */
export class ConcertDriver implements TerminalDriver {
  readonly protocol = 'concert';
  readonly capabilities = CAPABILITIES;
  readonly endpoint: string;
  private readonly target: Target;
  private readonly currency: string;
  private readonly options: Readonly<z.output<typeof OPTIONS>>;
  private readonly logger: Logger;
  private busy = false;

  constructor(input: ConcertDriverOptions) {
    this.options = parseOptions(OPTIONS, input, 'ConcertDriver');
    this.target = parseTarget(this.options.url);
    this.endpoint =
      this.target.kind === 'serial'
        ? `concert+serial://${this.target.path}`
        : `concert+tcp://${new URL(this.options.url).host}`;
    this.currency = requireCurrency(this.options.currency).code;
    this.logger = (this.options.logger ?? silentLogger).child({
      protocol: 'concert',
      terminal: this.endpoint,
    });
  }

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

  /** Concert V2 cannot abort a transaction from the POS: there is nothing to send. */
  async cancelCurrent(): Promise<boolean> {
    return false;
  }

  async close(): Promise<void> {}

  private async pay(request: DriverRequest, options: ExecuteOptions): Promise<DriverOutcome> {
    const frame = encodeRequest({
      posNumber: this.options.posNumber,
      amountMinor: request.amount.minor,
      answer: 'full',
      paymentMode: 'card',
      transactionType: TYPE_OF_KIND[request.kind] ?? 'debit',
      currencyNumeric: requireCurrency(this.currency).numeric,
      // The wire id, which terminals echo in the answer (*assumed*): ties the answer to this very
      // request, beyond the POS number.
      privateData: wireTag(request.wireId),
      delay: this.options.answerDelay,
      authorization:
        (request.forceAuthorization ?? this.options.forceAuthorization) ? 'force' : 'terminal',
    });
    let stream: ByteStream;
    try {
      stream = await connectWithRetries(() => this.open(options.signal), {
        attempts: this.options.connectAttempts,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        onRetry: (attempt, e) =>
          this.logger.warn({ attempt, err: e.message }, 'terminal unreachable, retrying'),
      });
    } catch (error) {
      const e = toEcrError(error, 'TERMINAL_UNREACHABLE');
      return { outcome: 'failed', errorCode: e.code, message: e.message };
    }
    if (options.signal?.aborted === true) {
      await stream.close();
      return {
        outcome: 'failed',
        errorCode: 'ABORTED',
        message: 'cancelled before the request was sent',
      };
    }
    try {
      return await this.exchange(
        stream,
        frame,
        {
          tag: wireTag(request.wireId),
          amountMinor: request.amount.minor,
          currencyNumeric: requireCurrency(this.currency).numeric,
        },
        options,
      );
    } finally {
      await stream.close().catch(() => {});
    }
  }

  /** One request frame out, one answer frame back, through the link state machine. */
  private exchange(
    stream: ByteStream,
    frame: string,
    expected: Expected,
    options: ExecuteOptions,
  ): Promise<DriverOutcome> {
    const { tag, amountMinor, currencyNumeric } = expected;
    return new Promise<DriverOutcome>((resolve) => {
      let delivered = false;
      let settled = false;
      let answerTimer: NodeJS.Timeout | undefined;
      const finish = (outcome: DriverOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(answerTimer);
        // The exchange ends first (our ACK of the answer, the terminal's EOT): a terminal left
        // waiting for our ACK would not hear the next payment's ENQ.
        void session.close().finally(() => resolve(outcome));
      };
      const session = new ConcertSession(stream, {
        role: 'pos',
        ackTimeoutMs: this.options.ackTimeoutMs,
        logger: this.logger,
        onEvent: (event) => {
          switch (event.type) {
            case 'send-failed':
              finish(
                event.reason === 'no-answer-to-enq'
                  ? {
                      outcome: 'failed',
                      errorCode: 'TERMINAL_UNREACHABLE',
                      message: `the terminal did not answer (switched off, or not in cash register mode?): ${event.error.message}`,
                    }
                  : event.reason === 'nak-limit'
                    ? {
                        outcome: 'failed',
                        errorCode: 'TERMINAL_REFUSED',
                        message: `the terminal refused the request frame: ${event.error.message}`,
                      }
                    : {
                        outcome: 'unknown',
                        errorCode: 'OUTCOME_UNKNOWN',
                        message: `the terminal may have taken the request: ${event.error.message}`,
                      },
              );
              return;
            case 'delivered':
              delivered = true;
              answerTimer = setTimeout(
                () =>
                  finish({
                    outcome: 'unknown',
                    errorCode: 'OUTCOME_UNKNOWN',
                    message: `no answer within ${this.options.answerTimeoutMs} ms after the terminal took the request`,
                  }),
                this.options.answerTimeoutMs,
              );
              return;
            case 'message':
              // An answer before our request was taken is a stale one (a previous exchange the
              // terminal is still delivering): never the answer to this request.
              if (!delivered) {
                this.logger.warn('an answer arrived before the terminal took our request; ignored');
                return;
              }
              this.receive(event.data, { tag, amountMinor, currencyNumeric }, finish);
              return;
            case 'rejected':
              this.logger.warn({ err: event.error.message }, 'refused a frame from the terminal');
              return;
          }
        },
      });
      void session.closed.then((closed) => {
        const why = closed.error?.message ?? 'the link closed';
        // Nothing ever came back: the terminal cannot have taken the request.
        finish(
          delivered || session.heardFromPeer
            ? {
                outcome: 'unknown',
                errorCode: 'OUTCOME_UNKNOWN',
                message: `link lost before the answer: ${why}`,
              }
            : { outcome: 'failed', errorCode: 'LINK_LOST', message: `not sent: ${why}` },
        );
      });
      void (async () => {
        try {
          await options.beforeSend?.();
        } catch (error) {
          const e = toEcrError(error, 'JOURNAL_ERROR');
          finish({ outcome: 'failed', errorCode: e.code, message: `not sent: ${e.message}` });
          return;
        }
        // The link may have closed while the journal wrote: then nothing was sent.
        if (!settled) session.send(frame);
      })();
    });
  }

  /**
   * An answer frame: ours (same POS number, and our private data when echoed) settles the
   * payment; another POS's or another request's is ignored.
   */
  private receive(
    data: string,
    expected: Expected,
    finish: (outcome: DriverOutcome) => void,
  ): void {
    let answer: ConcertAnswer;
    try {
      answer = decodeAnswer(data);
    } catch (error) {
      const e = toEcrError(error, 'PROTOCOL_ERROR');
      this.logger.warn({ err: e.message }, 'bad answer from the terminal');
      // It was the answer, and it cannot be read: the money is not known.
      finish({
        outcome: 'unknown',
        errorCode: 'OUTCOME_UNKNOWN',
        message: `unreadable answer: ${e.message}`,
      });
      return;
    }
    const echoed = answer.privateData.trim();
    if (
      answer.posNumber !== this.options.posNumber ||
      (echoed !== '' && echoed !== expected.tag) ||
      answer.currencyNumeric !== expected.currencyNumeric ||
      // A refusal may carry no amount; an approval must be for what was asked.
      (answer.status === 'approved' && answer.amountMinor !== expected.amountMinor)
    ) {
      this.logger.warn(
        {
          posNumber: answer.posNumber,
          ours: this.options.posNumber,
          echoed,
          tag: expected.tag,
          amountMinor: answer.amountMinor,
          expected: expected.amountMinor,
        },
        'answer for another POS or another request; ignored',
      );
      return;
    }
    finish(toOutcome(answer));
  }

  private open(signal?: AbortSignal): Promise<ByteStream> {
    const common = {
      ...(signal === undefined ? {} : { signal }),
    };
    return this.target.kind === 'serial'
      ? openSerial({
          path: this.target.path,
          baudRate: this.target.baudRate,
          openTimeoutMs: this.options.connectTimeoutMs,
          ...common,
        })
      : connectTcpStream({
          host: this.target.host,
          port: this.target.port,
          connectTimeoutMs: this.options.connectTimeoutMs,
          ...common,
        });
  }
}

/** What the answer to a request must match. */
interface Expected {
  /** The request's private data (its wire id), when the terminal echoes it. */
  readonly tag: string;
  readonly amountMinor: number;
  readonly currencyNumeric: string;
}

/** The request's private data: the wire id, at most 10 digits. */
function wireTag(wireId: number): string {
  return String(wireId).slice(-10);
}

/**
 * A Concert answer as a driver outcome (the PAN was masked inside the decoder). Status "9"
 * ("not verified or timed out") does not say whether the card was charged: `unknown`.
 */
export function toOutcome(answer: ConcertAnswer): DriverOutcome {
  const details: Record<string, string | number> = {
    status: answer.status,
    answerSize: answer.size,
    currencyNumeric: answer.currencyNumeric,
    amountMinor: answer.amountMinor,
  };
  const card = answer.maskedPan === undefined ? {} : { maskedPan: answer.maskedPan };
  switch (answer.status) {
    case 'approved':
      return { outcome: 'approved', ...card, details };
    case 'refused':
      return { outcome: 'declined', message: 'refused by the terminal', ...card, details };
    default:
      return {
        outcome: 'unknown',
        errorCode: 'OUTCOME_UNKNOWN',
        message: 'the terminal answered "not verified or timed out" (status 9): reconcile',
        ...card,
        details,
      };
  }
}
