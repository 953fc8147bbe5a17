import type { ErrorCode } from './errors.js';
import type {
  DriverOutcome,
  MoneyKind,
  Outcome,
  PaymentMethod,
  TransactionState,
} from './transaction.js';

/** A value, or a promise of it: the SQLite journal answers at once, the PostgreSQL one later. */
export type Awaitable<T> = T | Promise<T>;

/**
 * The durable store behind TransactionService. The embedded implementation is SQLite
 * (`sqlite-journal.ts`); a multi-node gateway gets a PostgreSQL one with the same interface.
 * Every method is one atomic step: a crash between two calls leaves a state the recovery
 * understands, never half a row.
 */
export interface Journal {
  /**
   * Claims `reference` for a new attempt. Atomic across processes: the unique key (merchant,
   * terminal, reference, attempt) decides. A reference with no row yet gets attempt 1. A
   * reference whose latest attempt ended with nothing charged (`chargedNothing`) and that
   * asks for the same kind, amount and currency gets the next attempt: the cashier's "try another
   * card" (ARCHITECTURE.md invariant 1). Returns `claimed` with a fresh wire id when a row was
   * written and this caller must drive the terminal, otherwise the `existing` latest attempt,
   * whatever its state (approved, in flight, `unknown`, or a request that differs).
   */
  claim(input: ClaimInput): Awaitable<ClaimResult>;
  /** `received → sent`, right before the first byte goes to the terminal. */
  markSent(id: number, owner: Owner): Awaitable<void>;
  /** Writes the outcome of the attempt `owner` holds. */
  complete(id: number, owner: Owner, outcome: DriverOutcome): Awaitable<JournalRow>;
  /**
   * `unknown → outcome`, when the terminal's own answer arrives after all (a late answer, or a
   * status query). Returns the row, or undefined when it was not `unknown`.
   */
  resolveUnknown(id: number, outcome: DriverOutcome): Awaitable<JournalRow | undefined>;
  /**
   * `unknown → outcome` recorded by a person after reconciling. Only the state and the message
   * change (the message keeps what was known before); every other column stays as evidence.
   * Returns the row, or undefined when it was not `unknown`.
   */
  resolveByHand(
    id: number,
    outcome: Exclude<Outcome, 'unknown'>,
    note: string,
  ): Awaitable<JournalRow | undefined>;
  get(id: number): Awaitable<JournalRow | undefined>;
  /**
   * The row with this public id (`JournalRow.publicId`), what the dashboard names transactions
   * by. Undefined for none, and for a value not of the public id's form.
   */
  getByPublicId(publicId: string): Awaitable<JournalRow | undefined>;
  /** The latest attempt of a reference on a terminal. */
  find(key: TransactionKey): Awaitable<JournalRow | undefined>;
  /** Every attempt of a reference on a terminal, the first one first. */
  attemptsOf(key: TransactionKey): Awaitable<JournalRow[]>;
  /**
   * The wire id a transaction was claimed with (what the protocols number its request with, e.g.
   * SEMI's REQ_TXN_ID), so that a status query can name that very request.
   */
  wireIdOf(transactionId: number): Awaitable<number | undefined>;
  /** Every row (every attempt) with this reference, across terminals and merchants, newest first. */
  findByReference(reference: string): Awaitable<JournalRow[]>;
  list(filter?: ListFilter): Awaitable<JournalRow[]>;
  /**
   * The newest row of a terminal before `beforeId` that may have reached the terminal: not
   * `received` (never sent) and not `failed` (certainly refused before the card step).
   */
  latestSentBefore(
    merchantId: string,
    terminalId: string,
    beforeId: number,
  ): Awaitable<JournalRow | undefined>;
  /** Every row of a terminal that names `originalReference` (refunds, voids, captures of it). */
  followUpsOf(
    merchantId: string,
    terminalId: string,
    originalReference: string,
  ): Awaitable<JournalRow[]>;
  /**
   * Rows left by an owner that is gone (crash, kill): `received` ones become `failed` (ABORTED,
   * never sent: nothing was charged), `sent` ones `unknown`. Returns the rows it changed.
   */
  recoverOrphans(isAlive: (owner: Owner) => boolean): Awaitable<JournalRow[]>;
  /**
   * Takes the cross-process lock of a terminal for `owner`, if free or held by a dead owner.
   * Keeps ARCHITECTURE.md invariant 2 when several processes share one data directory.
   */
  tryLockTerminal(
    terminalId: string,
    owner: Owner,
    isAlive: (owner: Owner) => boolean,
  ): Awaitable<boolean>;
  unlockTerminal(terminalId: string, owner: Owner): Awaitable<void>;
  /** The owner is alive: refreshes the heartbeat of its in-flight rows and terminal locks. */
  heartbeat(owner: Owner): Awaitable<void>;
  /**
   * Daily upkeep (the connector's UPDATE_TIME): folds the write-ahead log back into the database
   * and drops terminal locks whose owner is gone. Never touches transactions or notifications.
   * `checkpointed` is false when another connection kept the log busy (tried again next time).
   */
  housekeeping(isAlive: (owner: Owner) => boolean): Awaitable<HousekeepingResult>;

  // The back-office notification outbox (seed 001: "the transaction request is sent to the
  // provider's server"). A notification exists only for a transaction that happened (see
  // NOTIFIED_STATES); it is written durably before any POST, so none is lost to a crash.

  /**
   * Puts the transaction in the outbox, due at once. Idempotent: the same transaction again
   * returns its existing row, whatever its state. Throws NOT_FOUND when there is no such
   * transaction and INVALID_INPUT when its state is not one of NOTIFIED_STATES (`failed`,
   * `unknown` and in-flight rows are never notified: nothing happened, or nobody knows yet).
   */
  enqueueNotification(transactionId: number): Awaitable<NotificationRow>;
  /**
   * The crash-proof sweep: every transaction in one of NOTIFIED_STATES that has no notification
   * row yet gets one, due at once — a process killed between journaling an outcome and
   * enqueueing its notification, an `unknown` resolved later (by a late answer, a status query
   * or a person), a transaction completed by another process sharing the journal. Returns the
   * rows it created, oldest transaction first. Cheap to call often: after the first call an
   * implementation may look only at what could have changed since.
   */
  enqueueMissingNotifications(): Awaitable<NotificationRow[]>;
  /**
   * Pending notifications whose `nextAttemptAt` is at or before `now`, the most overdue first
   * (ties by id), at most `limit` of them.
   */
  dueNotifications(now: number, limit: number): Awaitable<NotificationRow[]>;
  /** The notification of a transaction, if it has one. */
  notificationFor(transactionId: number): Awaitable<NotificationRow | undefined>;
  /**
   * Records how one POST ended: `attempts` goes up by one either way. Acknowledged: the row
   * becomes `sent` for good (a later failure recorded by a slower duplicate delivery never
   * reverts it). Not acknowledged: `lastError` (cut to MAX_NOTIFICATION_ERROR_LENGTH, card
   * numbers masked) and, while the row is pending, `nextAttemptAt` are set. Throws
   * JOURNAL_ERROR when there is no notification `id`.
   */
  recordNotificationAttempt(id: number, outcome: NotificationAttempt): Awaitable<NotificationRow>;
  /** The states a transaction went through, oldest first (kept for good, never deleted). */
  eventsOf(transactionId: number): Awaitable<TransactionEvent[]>;
  /**
   * State changes of any transaction after event `afterId`, oldest first, at most `limit`: a
   * change feed that sees what every process writes (the dashboard's live updates).
   */
  eventsAfter(afterId: number, limit: number): Awaitable<TransactionEvent[]>;
  /**
   * The journal's clock (ms since the epoch): what its row times are read on. The age of a row is
   * `now() - updatedAt`, whatever the calling machine's clock says.
   */
  now(): Awaitable<number>;
  /** The id of the latest state change, 0 when there is none. */
  latestEventId(): Awaitable<number>;
  /**
   * Adds a note to a transaction's timeline without changing its state (card numbers masked):
   * what a terminal said that contradicts the recorded outcome, kept where a person will look.
   */
  annotate(transactionId: number, note: string): Awaitable<void>;
  /**
   * Readiness (`/readyz`): proves a write could be committed now, by opening a write transaction
   * of its own and ending it within `timeoutMs`; writes no row. Rejects with JOURNAL_ERROR
   * naming the journal and why (its write lock held elsewhere, the server gone or too slow). Never
   * blocks the event loop for more than a few tens of milliseconds at a time.
   */
  probe(timeoutMs: number): Promise<void>;
  close(): Awaitable<void>;
}

/** What one `housekeeping` run did. */
export interface HousekeepingResult {
  readonly checkpointed: boolean;
  readonly locksRemoved: number;
}

/** One state a transaction entered. */
export interface TransactionEvent {
  readonly id: number;
  readonly transactionId: number;
  readonly state: TransactionState;
  /** Milliseconds since the epoch. */
  readonly at: number;
  /** Why, for a final state (the transaction's message then). */
  readonly note: string | undefined;
}

/** Transaction states that mean something happened at the terminal: these get notified. */
export const NOTIFIED_STATES = ['approved', 'declined', 'cancelled'] as const;

/**
 * Longest `lastError` kept: an HTTP status or an error code, never a response body. Migration 3's
 * CHECK holds the same bound.
 */
export const MAX_NOTIFICATION_ERROR_LENGTH = 200;

export const NOTIFICATION_STATES = ['pending', 'sent'] as const;
/** `pending` until a POST is acknowledged with a 2xx answer, then `sent` for good. */
export type NotificationState = (typeof NOTIFICATION_STATES)[number];

/** One row of the outbox: the notification of one transaction to the back office. */
export interface NotificationRow {
  readonly id: number;
  readonly transactionId: number;
  readonly state: NotificationState;
  /** POSTs whose end was recorded, acknowledged or not. */
  readonly attempts: number;
  /** When the next POST is due (ms since the epoch); meaningless once `sent`. */
  readonly nextAttemptAt: number;
  /** Why the latest unacknowledged POST failed (`HTTP 500`, `ECONNREFUSED`, `TIMEOUT …`). */
  readonly lastError: string | undefined;
  /**
   * Sent as the `Idempotency-Key` header of every POST of this notification, so that a back
   * office can drop the duplicates at-least-once delivery produces. Random per row: unique
   * across journals, stable across retries and restarts.
   */
  readonly idempotencyKey: string;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  /** When the acknowledgement was recorded. */
  readonly sentAt: number | undefined;
}

/** How one POST of a notification ended, as `recordNotificationAttempt` takes it. */
export type NotificationAttempt =
  | { readonly sent: true; readonly at: number }
  | {
      readonly sent: false;
      readonly at: number;
      /** Short: an HTTP status or an error code; never a response body, never card data. */
      readonly error: string;
      readonly nextAttemptAt: number;
    };

/** Who drives an in-flight row: a process (pid) and a token unique to that process's life. */
export interface Owner {
  readonly pid: number;
  readonly token: string;
  /**
   * When the owner last said it is alive (ms since the epoch), as read from the journal: what
   * decides for owners whose process cannot be checked from here.
   */
  readonly heartbeatAt?: number;
}

export interface TransactionKey {
  readonly merchantId: string;
  readonly terminalId: string;
  readonly reference: string;
}

export interface ClaimInput extends TransactionKey {
  readonly kind: MoneyKind;
  readonly amountMinor: number;
  readonly currency: string;
  readonly method: PaymentMethod;
  readonly originalReference?: string;
  readonly owner: Owner;
}

export type ClaimResult =
  | { readonly type: 'claimed'; readonly row: JournalRow; readonly wireId: number }
  | { readonly type: 'existing'; readonly row: JournalRow };

export interface ListFilter {
  /** Only `unknown` rows and rows still in flight: what needs a person or a recovery. */
  readonly unresolved?: boolean;
  readonly terminalId?: string;
  /** Only this merchant's rows. */
  readonly merchantId?: string;
  /** Only rows in this state. */
  readonly state?: TransactionState;
  /** @default 100 */
  readonly limit?: number;
}

export interface JournalRow extends TransactionKey {
  /** Global and sequential: for the journal and the operator's tools, never shown to a merchant. */
  readonly id: number;
  /**
   * Random and unique (`tx_` and 24 letters, `public-id.ts`): the id the dashboard shows and
   * takes, which tells nothing of how many rows the journal holds.
   */
  readonly publicId: string;
  /** 1 for the first attempt under the reference, then 2, 3… (each attempt its own row). */
  readonly attempt: number;
  readonly kind: MoneyKind;
  readonly amountMinor: number;
  readonly currency: string;
  readonly method: PaymentMethod;
  readonly originalReference: string | undefined;
  readonly state: TransactionState;
  readonly outcome: Outcome | undefined;
  readonly errorCode: ErrorCode | undefined;
  readonly message: string | undefined;
  readonly approvalCode: string | undefined;
  readonly maskedPan: string | undefined;
  readonly cardBrand: string | undefined;
  readonly terminalTxId: string | undefined;
  readonly details: Readonly<Record<string, string | number | boolean>> | undefined;
  readonly ownerPid: number | undefined;
  readonly ownerToken: string | undefined;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly completedAt: number | undefined;
}

/**
 * What recovery writes on a row whose owner died while it was `received`: `sent` is journaled
 * before the first byte, so the terminal was certainly never contacted, and recovery, deciding
 * under the row's lock, settles it `failed` (ABORTED). Earlier versions left such a row
 * `unknown` with this message; `TransactionService` trusts it (with the timeline) to settle
 * those `failed` without asking the terminal.
 */
export const RECOVERED_BEFORE_SENT =
  'interrupted before the request was sent: the terminal was never contacted';
/**
 * Why `markSent` or `complete` refused: the row is no longer this owner's (another process
 * recovered it). It may become an attempt's message, which a merchant reads: no integer id in it.
 */
export const NOT_HELD = 'this transaction is no longer held by this process';
/** What recovery writes on a row whose owner died after `sent`: only the terminal can tell. */
export const RECOVERED_AFTER_SENT =
  'interrupted after the request was sent: the outcome was not seen; reconcile with the terminal';
