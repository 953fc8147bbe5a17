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
import type { ConcertAnswerSize } from '../protocols/concert/codes.js';
import { CONCERT_ACK_TIMEOUT_MS } from '../protocols/concert/link.js';
import { connectWithRetries } from '../transports/backoff.js';
import type { ByteStream } from '../transports/byte-stream.js';
import { openSerial, SERIAL_DEFAULT_BAUD_RATE } from '../transports/serial.js';
import { connectTcpStream } from '../transports/tcp-stream.js';
import { notOurs, toOutcome, type ConcertExpected } from './concert-answer.js';
import { ConcertSession } from './concert-session.js';

export { toOutcome } from './concert-answer.js';

/** Concert over IP's usual port (protocols.md). */
export const CONCERT_DEFAULT_PORT = 8888;
/** HiPay's terminals are set up in euros unless configured otherwise. */
export const CONCERT_DEFAULT_CURRENCY = 'EUR';
/** Bound on opening the serial port or the TCP connection. */
export const CONCERT_CONNECT_TIMEOUT_MS = 5_000;
/** Bound on the card step: the result can take up to about 120 s (protocols.md), plus margin. */
export const CONCERT_ANSWER_TIMEOUT_MS = 150_000;
/**
 * Bound on the answer when the request asks for it at once (A011): it comes as soon as the
 * terminal has the request, before the card step (OCA/pos `hw_telium_payment_terminal` waits 3 s
 * for its ENQ), so waiting the whole card step for it is pointless. Ten seconds leave margin.
 */
export const CONCERT_IMMEDIATE_ANSWER_TIMEOUT_MS = 10_000;
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
  /**
   * `end`: the terminal answers at the end of the transaction (A010), with its outcome.
   * `immediate` (A011): it answers as soon as it has the request, before the card step, and that
   * answer does not say whether the card was charged: every payment ends `unknown`, to be settled
   * by a person (`concert-answer.ts`). @default 'end'
   */
  readonly answerDelay?: 'end' | 'immediate';
  /**
   * The answer flag: `full` (80 characters, with the report field, usually the card number,
   * masked at once) or `short` (25 characters, no card data). The driver reads either size,
   * whatever it asked for. @default 'full'
   */
  readonly answerSize?: ConcertAnswerSize;
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
  answerSize: z.enum(['full', 'short'], { error: 'must be full or short' }).default('full'),
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
  /** The private data of the latest requests sent (at most EARLIER_TAGS_KEPT), oldest first. */
  private readonly sentTags: string[] = [];

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
    const expected: ConcertExpected = {
      posNumber: this.options.posNumber,
      amountMinor: request.amount.minor,
      currencyNumeric: requireCurrency(this.currency).numeric,
      sentPrivateData: wireTag(request.wireId),
      delay: this.options.answerDelay,
      earlierPrivateData: new Set(this.sentTags),
    };
    this.sentTags.push(expected.sentPrivateData);
    if (this.sentTags.length > EARLIER_TAGS_KEPT) this.sentTags.shift();
    const frame = encodeRequest({
      posNumber: expected.posNumber,
      amountMinor: expected.amountMinor,
      answer: this.options.answerSize,
      paymentMode: 'card',
      transactionType: TYPE_OF_KIND[request.kind] ?? 'debit',
      currencyNumeric: expected.currencyNumeric,
      // The private field is the POS's to fill; the public implementations send blanks. We send
      // the wire id: it ties what the terminal received to the journal's attempt (the simulator's
      // ledger and the fault suite key charges by it; a terminal that echoes it leaves the same
      // trail). Answers are NOT matched on it: terminals put their own data there
      // (`concert-answer.ts`), and an answer is ours whatever its private field holds.
      privateData: expected.sentPrivateData,
      delay: expected.delay,
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
      return await this.exchange(stream, frame, expected, options);
    } finally {
      await stream.close().catch(() => {});
    }
  }

  /** One request frame out, one answer frame back, through the link state machine. */
  private exchange(
    stream: ByteStream,
    frame: string,
    expected: ConcertExpected,
    options: ExecuteOptions,
  ): Promise<DriverOutcome> {
    // An answer asked for at once (A011) comes before the card step: no need to wait for it.
    const answerTimeoutMs =
      expected.delay === 'immediate'
        ? Math.min(this.options.answerTimeoutMs, CONCERT_IMMEDIATE_ANSWER_TIMEOUT_MS)
        : this.options.answerTimeoutMs;
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
                    message: `no answer within ${answerTimeoutMs} ms after the terminal took the request`,
                  }),
                answerTimeoutMs,
              );
              return;
            case 'message':
              // An answer before our request was taken is a stale one (a previous exchange the
              // terminal is still delivering): never the answer to this request.
              if (!delivered) {
                this.logger.warn('an answer arrived before the terminal took our request; ignored');
                return;
              }
              this.receive(event.data, expected, finish);
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
   * An answer frame the link ACKed after the terminal took our request: ours (POS number,
   * currency and amount, whatever its private field holds: `concert-answer.ts`) settles the
   * payment, and nothing after it (a closed line, no EOT) changes that; another POS's or another
   * amount's is ignored.
   */
  private receive(
    data: string,
    expected: ConcertExpected,
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
    const why = notOurs(answer, expected);
    if (why !== undefined) {
      this.logger.warn(
        {
          why,
          posNumber: answer.posNumber,
          ours: expected.posNumber,
          currencyNumeric: answer.currencyNumeric,
          status: answer.status,
          amountMinor: answer.amountMinor,
          expected: expected.amountMinor,
        },
        'answer for another POS or another request; ignored',
      );
      return;
    }
    finish(toOutcome(answer, expected));
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

/**
 * How many earlier requests' private data the driver remembers: an answer echoing one of them is
 * a late answer to that request (only echoing terminals carry it back), never this request's.
 */
export const EARLIER_TAGS_KEPT = 16;

/** The request's private data: the wire id, at most 10 digits. */
function wireTag(wireId: number): string {
  return String(wireId).slice(-10);
}
