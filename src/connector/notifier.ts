import type { Logger } from 'pino';
import { z } from 'zod';
import { EcrError, invalid, toEcrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { formatAmount } from '../core/money.js';
import { loggerOption, MAX_TIMER_MS, parseOptions, wholeNumber } from '../core/options.js';
import { containsPan, maskPan, redactPans } from '../core/pan.js';
import type { MoneyKind, Outcome, TransactionState } from '../core/transaction.js';
import {
  NOTIFIED_STATES,
  type Journal,
  type JournalRow,
  type NotificationAttempt,
  type NotificationRow,
} from '../core/journal-port.js';
import { backoffDelay } from '../transports/backoff.js';

/** How long one POST may take, connection included, before it counts as failed. */
export const DEFAULT_NOTIFY_REQUEST_TIMEOUT_MS = 5_000;
/** Ceiling of the first retry's jittered delay; it doubles with each failed POST. */
export const DEFAULT_NOTIFY_RETRY_BASE_MS = 1_000;
/** Ceiling of any retry's jittered delay. */
export const DEFAULT_NOTIFY_RETRY_MAX_MS = 300_000;
/** Most POSTs the background loop keeps in flight at once. */
export const DEFAULT_NOTIFY_BATCH_SIZE = 10;
/** How often the background loop looks for due notifications. */
export const DEFAULT_NOTIFY_POLL_INTERVAL_MS = 1_000;
/** Largest body POSTed; a bigger payload is recorded as an error and retried, never cut. */
export const MAX_NOTIFY_BODY_BYTES = 64 * 1024;

export interface NotifierOptions {
  /** Where the outbox lives: what is enqueued there survives crashes and restarts. */
  readonly journal: Journal;
  /** The back office's endpoint: `http://` or `https://`, without credentials in it. */
  readonly url: string;
  /** HTTP Basic Auth user (config.txt `HIPAY_LOGIN`); without it no Authorization is sent. */
  readonly login?: string;
  /** HTTP Basic Auth password (config.txt `HIPAY_PWD`); never logged. @default '' */
  readonly password?: string;
  readonly logger?: Logger;
  /** @default DEFAULT_NOTIFY_REQUEST_TIMEOUT_MS */
  readonly requestTimeoutMs?: number;
  /** @default DEFAULT_NOTIFY_RETRY_BASE_MS */
  readonly retryBaseMs?: number;
  /** @default DEFAULT_NOTIFY_RETRY_MAX_MS */
  readonly retryMaxMs?: number;
  /** @default DEFAULT_NOTIFY_BATCH_SIZE */
  readonly batchSize?: number;
  /** @default DEFAULT_NOTIFY_POLL_INTERVAL_MS */
  readonly pollIntervalMs?: number;
  /**
   * The JSON body for a transaction. Whatever it returns, string values that hold a card
   * number are masked before sending. @default defaultNotificationPayload
   */
  readonly payload?: (row: JournalRow) => unknown;
}

/** What a notification reports to the POS (seed 001's `notificationHipaySent` and count). */
export interface NotifyResult {
  /** The back office acknowledged it (2xx) before `notify` returned. */
  readonly sent: boolean;
  /** POSTs made for it so far, including one still waiting for its answer. */
  readonly attempts: number;
}

/** The default body: the transaction as the back office needs it, masked PAN only. */
export interface NotificationPayload {
  readonly reference: string;
  readonly terminalId: string;
  readonly kind: MoneyKind;
  /** Decimal string in the currency's exponent: `"10.23"`, `"500"` (JPY). */
  readonly amount: string;
  readonly currency: string;
  readonly outcome: Outcome;
  /**
   * Which attempt under the reference: a declined attempt and the approved one after it are two
   * notifications with the same reference, told apart by this.
   */
  readonly attempt: number;
  /** The transaction a void, capture, tip adjust or linked refund applies to. */
  readonly originalReference?: string;
  readonly approvalCode?: string;
  /** First 6 / last 4 at most. */
  readonly maskedPan?: string;
  readonly cardBrand?: string;
  readonly terminalTxId?: string;
  /** ISO 8601. */
  readonly createdAt: string;
  readonly completedAt?: string;
}

/** The default payload of a journaled transaction (absent fields are left out). */
export function defaultNotificationPayload(row: JournalRow): NotificationPayload {
  return {
    reference: row.reference,
    terminalId: row.terminalId,
    kind: row.kind,
    amount: formatAmount({ minor: row.amountMinor, currency: row.currency }),
    currency: row.currency,
    outcome: row.outcome ?? 'unknown',
    attempt: row.attempt,
    ...(row.originalReference === undefined ? {} : { originalReference: row.originalReference }),
    ...(row.approvalCode === undefined ? {} : { approvalCode: row.approvalCode }),
    ...(row.maskedPan === undefined ? {} : { maskedPan: row.maskedPan }),
    ...(row.cardBrand === undefined ? {} : { cardBrand: row.cardBrand }),
    ...(row.terminalTxId === undefined ? {} : { terminalTxId: row.terminalTxId }),
    createdAt: new Date(row.createdAt).toISOString(),
    ...(row.completedAt === undefined
      ? {}
      : { completedAt: new Date(row.completedAt).toISOString() }),
  };
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (
      (url.protocol === 'http:' || url.protocol === 'https:') &&
      url.username === '' &&
      url.password === ''
    );
  } catch {
    return false;
  }
}

const OPTIONS = z
  .strictObject({
    journal: z.custom<Journal>(
      (value) => typeof value === 'object' && value !== null,
      'must be a Journal',
    ),
    url: z
      .string({ error: 'must be a string' })
      .max(2048, 'must be at most 2048 characters')
      .refine(
        isHttpUrl,
        'must be an http:// or https:// URL without credentials (give them as login and password)',
      ),
    login: z
      .string({ error: 'must be a string' })
      .min(1, 'must not be empty')
      .max(256, 'must be at most 256 characters')
      // RFC 7617: the user id of Basic Auth cannot hold a colon.
      .refine((value) => !value.includes(':'), 'must not contain ":"')
      .optional(),
    password: z
      .string({ error: 'must be a string' })
      .max(256, 'must be at most 256 characters')
      .optional(),
    logger: loggerOption(),
    requestTimeoutMs: wholeNumber(1, MAX_TIMER_MS).default(DEFAULT_NOTIFY_REQUEST_TIMEOUT_MS),
    retryBaseMs: wholeNumber(1, MAX_TIMER_MS).default(DEFAULT_NOTIFY_RETRY_BASE_MS),
    retryMaxMs: wholeNumber(1, MAX_TIMER_MS).default(DEFAULT_NOTIFY_RETRY_MAX_MS),
    batchSize: wholeNumber(1, 1_000).default(DEFAULT_NOTIFY_BATCH_SIZE),
    pollIntervalMs: wholeNumber(1, 3_600_000).default(DEFAULT_NOTIFY_POLL_INTERVAL_MS),
    payload: z
      .custom<(row: JournalRow) => unknown>(
        (value) => typeof value === 'function',
        'must be a function',
      )
      .optional(),
  })
  .superRefine((options, context) => {
    if (options.password !== undefined && options.login === undefined)
      context.addIssue({ code: 'custom', path: ['password'], message: 'needs a login' });
    if (options.retryMaxMs < options.retryBaseMs)
      context.addIssue({
        code: 'custom',
        path: ['retryMaxMs'],
        message: 'must be at least retryBaseMs',
      });
  });

const NOTIFIED: ReadonlySet<TransactionState> = new Set(NOTIFIED_STATES);

/** A failure of ours, before any byte left: recorded by its short text, retried like the rest. */
class PayloadError extends Error {}

/** JSON.stringify replacer: no card number leaves in a body, whatever `payload` returned. */
function maskCardNumbers(_key: string, value: unknown): unknown {
  if (typeof value === 'string') return redactPans(value);
  if (typeof value === 'number' && containsPan(String(value))) return maskPan(String(value));
  return value;
}

function errorCodeOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || !('code' in value)) return undefined;
  return typeof value.code === 'string' && /^[A-Z][A-Z0-9_]{1,63}$/.test(value.code)
    ? value.code
    : undefined;
}

/** A POST that got no answer, in a few words: an error code, never a message from a peer. */
function describeFailure(error: unknown, timeoutMs: number): string {
  if (error instanceof PayloadError) return error.message;
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
    return `TIMEOUT: no answer within ${timeoutMs} ms`;
  const cause = error instanceof Error ? error.cause : undefined;
  return errorCodeOf(cause) ?? errorCodeOf(error) ?? 'NETWORK_ERROR';
}

/** Waits for `promise`, or `ms`, whichever comes first. */
async function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The back-office notifier (seed 001, step 5: "Transaction request is sent to HiPay's server"):
 * each transaction that happened (approved, declined, cancelled) is POSTed as JSON to `url`
 * with HTTP Basic Auth until a 2xx answer acknowledges it, from a durable outbox in the journal.
 *
 * Delivery is **at least once**, never exactly once: a POST that reached the back office but
 * whose answer was lost (timeout, dropped connection, crash before the acknowledgement was
 * recorded) is sent again. That is what seed 001 means by `numberOfNotificationSent` "can be 2 in
 * order to ensure the financial reconciliation". Every POST of one notification carries the same
 * `Idempotency-Key` header, so the back office can drop the duplicates. Several processes
 * sharing a journal may each POST the same notification; within one process it is never in
 * flight twice. A `failed` transaction (certainly nothing happened) is never notified, and an
 * `unknown` one only once it is resolved to something that happened.
 *
 * Nothing here logs the password, the URL's query or a response body; bodies carry a masked PAN
 * at most.
 */
export class Notifier {
  private readonly journal: Journal;
  private readonly url: string;
  private readonly authorization: string | undefined;
  private readonly logger: Logger;
  private readonly requestTimeoutMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly payload: (row: JournalRow) => unknown;
  /** Deliveries running in this process, by notification id. */
  private readonly inFlight = new Map<number, Promise<void>>();
  private state: 'idle' | 'running' | 'stopped' = 'idle';
  private timer: NodeJS.Timeout | undefined;

  constructor(input: NotifierOptions) {
    const options = parseOptions(OPTIONS, input, 'Notifier');
    this.journal = options.journal;
    this.url = options.url;
    this.authorization =
      options.login === undefined
        ? undefined
        : `Basic ${Buffer.from(`${options.login}:${options.password ?? ''}`, 'utf8').toString('base64')}`;
    this.logger = (options.logger ?? silentLogger).child({
      component: 'notifier',
      backOffice: new URL(options.url).origin,
    });
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.retryBaseMs = options.retryBaseMs;
    this.retryMaxMs = options.retryMaxMs;
    this.batchSize = options.batchSize;
    this.pollIntervalMs = options.pollIntervalMs;
    this.payload = options.payload ?? defaultNotificationPayload;
  }

  /**
   * Enqueues the notification of a transaction (idempotent) and POSTs it now, waiting at most
   * `waitMs` for the acknowledgement; a POST still running then goes on in the background and
   * its end is recorded. A notification already waiting for a retry is POSTed now only if its
   * retry is due (a POS repeating a request does not defeat the back-off); after `stop()` it is
   * only enqueued. A transaction that did not happen (`failed`, `unknown`, in flight) gets no
   * notification: `{ sent: false, attempts: 0 }`. Throws NOT_FOUND for an unknown id and
   * JOURNAL_ERROR when the outbox cannot be written (the sweep enqueues it later).
   */
  async notify(transactionId: number, waitMs: number): Promise<NotifyResult> {
    if (!Number.isSafeInteger(waitMs) || waitMs < 0 || waitMs > MAX_TIMER_MS)
      throw invalid('INVALID_INPUT', 'waitMs', `must be a whole number from 0 to ${MAX_TIMER_MS}`);
    const transaction = await this.journal.get(transactionId);
    if (transaction === undefined)
      throw new EcrError('NOT_FOUND', `no transaction ${transactionId} to notify`);
    if (!NOTIFIED.has(transaction.state)) return { sent: false, attempts: 0 };
    const notification = await this.journal.enqueueNotification(transactionId);
    if (notification.state === 'sent') return { sent: true, attempts: notification.attempts };
    let delivery = this.inFlight.get(notification.id);
    if (
      delivery === undefined &&
      this.state !== 'stopped' &&
      (notification.attempts === 0 || notification.nextAttemptAt <= Date.now())
    ) {
      delivery = this.deliver(notification);
    }
    if (delivery !== undefined && waitMs > 0) await within(delivery, waitMs);
    const now = (await this.journal.notificationFor(transactionId)) ?? notification;
    return {
      sent: now.state === 'sent',
      attempts: now.attempts + (this.inFlight.has(now.id) ? 1 : 0),
    };
  }

  /**
   * Sweeps the journal once for transactions that happened without a notification (a crash
   * between journaling an outcome and enqueueing it, an `unknown` resolved since), then runs the
   * background loop: every `pollIntervalMs` it sweeps again (incrementally: cheap) and POSTs the
   * due notifications, at most `batchSize` at once. After an unacknowledged POST number n the
   * next one waits a random delay in [0, min(retryMaxMs, retryBaseMs·2^(n-1))] (full jitter).
   * The timer does not keep the process alive. Throws JOURNAL_ERROR when the first sweep fails.
   */
  async start(): Promise<void> {
    if (this.state === 'running') return;
    const before = this.state;
    this.state = 'running';
    let created: NotificationRow[];
    try {
      created = await this.journal.enqueueMissingNotifications();
    } catch (error) {
      this.state = before;
      throw error;
    }
    if (created.length > 0)
      this.logger.warn(
        { count: created.length },
        'transactions that happened had no notification: enqueued',
      );
    if (this.state === 'running') this.schedule(0);
  }

  /** Stops the loop and waits for the POSTs in flight to end and be recorded (bounded by requestTimeoutMs). */
  async stop(): Promise<void> {
    this.state = 'stopped';
    clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.inFlight.values()]);
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => void this.tick(), delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    if (this.state !== 'running') return;
    try {
      const created = await this.journal.enqueueMissingNotifications();
      if (created.length > 0)
        this.logger.info({ count: created.length }, 'newly settled transactions enqueued');
      if (this.inFlight.size < this.batchSize) {
        const due = await this.journal.dueNotifications(
          Date.now(),
          this.batchSize + this.inFlight.size,
        );
        for (const notification of due) {
          if (this.inFlight.size >= this.batchSize) break;
          if (!this.inFlight.has(notification.id)) void this.deliver(notification);
        }
      }
    } catch (error) {
      this.logger.error({ err: toEcrError(error).message }, 'notification loop: journal error');
    }
    if (this.state === 'running') this.schedule(this.pollIntervalMs);
  }

  /** One POST of one notification, tracked so that it is never in flight twice here. */
  private deliver(notification: NotificationRow): Promise<void> {
    const run = this.attempt(notification).finally(() => this.inFlight.delete(notification.id));
    this.inFlight.set(notification.id, run);
    return run;
  }

  private async attempt(notification: NotificationRow): Promise<void> {
    const log = this.logger.child({
      transactionId: notification.transactionId,
      notificationId: notification.id,
    });
    const attempt = notification.attempts + 1;
    let outcome: NotificationAttempt;
    try {
      const status = await this.post(notification);
      outcome =
        status >= 200 && status <= 299
          ? { sent: true, at: Date.now() }
          : this.failure(`HTTP ${status}`, attempt);
      if (status === 401 || status === 403)
        log.error(
          { status },
          'the back office refused the credentials: check HIPAY_LOGIN and HIPAY_PWD',
        );
    } catch (error) {
      if (error instanceof PayloadError)
        log.error({ err: toEcrError(error.cause ?? error).message }, error.message);
      outcome = this.failure(describeFailure(error, this.requestTimeoutMs), attempt);
    }
    try {
      const row = await this.journal.recordNotificationAttempt(notification.id, outcome);
      if (row.state === 'sent')
        log.info({ attempts: row.attempts }, 'the back office acknowledged the notification');
      else
        log.warn(
          { attempts: row.attempts, error: row.lastError, nextAttemptAt: row.nextAttemptAt },
          'the back office did not acknowledge the notification: it will be sent again',
        );
    } catch (error) {
      log.error(
        { err: toEcrError(error).message },
        'could not record a notification attempt: it will be sent again',
      );
    }
  }

  private failure(error: string, attempt: number): NotificationAttempt {
    const at = Date.now();
    const delay = backoffDelay(attempt - 1, this.retryBaseMs, this.retryMaxMs);
    return { sent: false, at, error, nextAttemptAt: at + delay };
  }

  /** POSTs the notification; resolves with the HTTP status, never reading the answer's body. */
  private async post(notification: NotificationRow): Promise<number> {
    const transaction = await this.journal.get(notification.transactionId);
    if (transaction === undefined) throw new PayloadError('PAYLOAD_ERROR: transaction missing');
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'idempotency-key': notification.idempotencyKey,
    };
    if (this.authorization !== undefined) headers.authorization = this.authorization;
    const response = await fetch(this.url, {
      method: 'POST',
      headers,
      body: this.body(transaction),
      // A redirect is no acknowledgement (and a POST must not become a GET elsewhere, with our
      // credentials): 3xx is retried like any other non-2xx answer.
      redirect: 'manual',
      signal: AbortSignal.timeout(this.requestTimeoutMs),
    });
    await response.body?.cancel().catch(() => undefined);
    return response.status;
  }

  private body(transaction: JournalRow): string {
    let text: string | undefined;
    try {
      text = JSON.stringify(this.payload(transaction), maskCardNumbers);
    } catch (error) {
      throw new PayloadError('PAYLOAD_ERROR: the payload could not be built as JSON', {
        cause: error,
      });
    }
    if (text === undefined) throw new PayloadError('PAYLOAD_ERROR: the payload is not JSON');
    if (Buffer.byteLength(text, 'utf8') > MAX_NOTIFY_BODY_BYTES)
      throw new PayloadError(`PAYLOAD_ERROR: larger than ${MAX_NOTIFY_BODY_BYTES} bytes`);
    return text;
  }
}
