import type { ErrorCode } from '../core/errors.js';
import type {
  DriverOutcome,
  MoneyKind,
  Outcome,
  PaymentMethod,
  TransactionState,
} from '../core/transaction.js';
import type {
  JournalRow,
  NotificationRow,
  NotificationState,
  Owner,
  TransactionEvent,
} from '../core/journal-port.js';
import { IN_FLIGHT_STATES } from './policy.js';

// The journals' rows as their databases give them (`details` already parsed), and the values
// they hand the databases.

export interface Row {
  id: number;
  public_id: string;
  merchant_id: string;
  terminal_id: string;
  reference: string;
  attempt: number;
  kind: string;
  amount_minor: number;
  currency: string;
  method: string;
  original_reference: string | null;
  state: string;
  error_code: string | null;
  message: string | null;
  approval_code: string | null;
  masked_pan: string | null;
  card_brand: string | null;
  terminal_tx_id: string | null;
  details: JournalRow['details'] | null;
  owner_pid: number | null;
  owner_token: string | null;
  heartbeat_at: number | null;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
}

const IN_FLIGHT: ReadonlySet<TransactionState> = new Set(IN_FLIGHT_STATES);

export function toJournalRow(row: Row): JournalRow {
  const state = row.state as TransactionState;
  return {
    id: row.id,
    publicId: row.public_id,
    merchantId: row.merchant_id,
    terminalId: row.terminal_id,
    reference: row.reference,
    attempt: Number(row.attempt),
    kind: row.kind as MoneyKind,
    amountMinor: row.amount_minor,
    currency: row.currency,
    method: row.method as PaymentMethod,
    originalReference: row.original_reference ?? undefined,
    state,
    outcome: IN_FLIGHT.has(state) ? undefined : (state as Outcome),
    errorCode: (row.error_code ?? undefined) as ErrorCode | undefined,
    message: row.message ?? undefined,
    approvalCode: row.approval_code ?? undefined,
    maskedPan: row.masked_pan ?? undefined,
    cardBrand: row.card_brand ?? undefined,
    terminalTxId: row.terminal_tx_id ?? undefined,
    details: row.details ?? undefined,
    ownerPid: row.owner_pid ?? undefined,
    ownerToken: row.owner_token ?? undefined,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    completedAt: row.completed_at ?? undefined,
  };
}

export interface NotificationDbRow {
  id: number;
  transaction_id: number;
  state: string;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  idempotency_key: string;
  created_at: number;
  sent_at: number | null;
}

export function toNotificationRow(row: NotificationDbRow): NotificationRow {
  return {
    id: row.id,
    transactionId: row.transaction_id,
    state: row.state as NotificationState,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error ?? undefined,
    idempotencyKey: row.idempotency_key,
    createdAt: row.created_at,
    sentAt: row.sent_at ?? undefined,
  };
}

export interface EventRow {
  id: number;
  transaction_id: number;
  state: string;
  at: number;
  note: string | null;
}

export function toTransactionEvent(row: EventRow): TransactionEvent {
  return {
    id: row.id,
    transactionId: row.transaction_id,
    state: row.state as TransactionState,
    at: row.at,
    note: row.note ?? undefined,
  };
}

/**
 * PostgreSQL text cannot hold U+0000, which SQLite stores: a terminal's message with one must
 * still be journaled (an approved payment unrecorded is worse), so it becomes U+FFFD.
 */
export function storable(value: string | undefined): string | null {
  return value === undefined ? null : value.replaceAll('\u0000', '\ufffd');
}

/** An id to look up: ids are whole numbers, so anything else finds nothing (as in SQLite). */
export function id(value: number): number | null {
  return Number.isSafeInteger(value) ? value : null;
}

/** A bound for a bigint comparison: whole, within range. */
export function bound(value: number, round: (x: number) => number): number {
  return Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, round(value)));
}

/** A LIMIT: SQLite reads a negative one as "no limit"; so does NULL in PostgreSQL. */
export function limitOf(value: number): number | null {
  return Number.isFinite(value) && value >= 0 ? Math.floor(value) : null;
}

/** The owner columns of a row or lock, and the heartbeat's age by the database's clock. */
export interface OwnedRow {
  owner_pid: number | null;
  owner_token: string | null;
  heartbeat_at: number | null;
  heartbeat_age: number | null;
}

/**
 * The owner as `isAlive` sees it, on PostgreSQL. `heartbeatAt` is `now` (this process's clock)
 * minus the age measured by the database's clock, so `isOwnerAlive`'s `now - heartbeatAt` is that
 * age: the difference of two readings of one clock, whatever this machine's clock says.
 */
export function ownerOf(row: OwnedRow, now: number): Owner | undefined {
  return ownerWith(row, row.heartbeat_age === null ? undefined : now - row.heartbeat_age);
}

/**
 * The owner as `isAlive` sees it, on SQLite: the heartbeat as stored, written by the clocks of
 * the processes sharing one file, on one machine.
 */
export function storedOwnerOf(row: Omit<OwnedRow, 'heartbeat_age'>): Owner | undefined {
  return ownerWith(row, row.heartbeat_at ?? undefined);
}

function ownerWith(
  row: Pick<OwnedRow, 'owner_pid' | 'owner_token'>,
  heartbeatAt: number | undefined,
): Owner | undefined {
  if (row.owner_pid === null || row.owner_token === null) return undefined;
  return {
    pid: row.owner_pid,
    token: row.owner_token,
    ...(heartbeatAt === undefined ? {} : { heartbeatAt }),
  };
}

/** The columns an outcome writes, the same whether it ends an attempt or settles an unknown. */
export interface OutcomeColumns {
  readonly state: string;
  readonly errorCode: string | null;
  readonly message: string | null;
  readonly approvalCode: string | null;
  readonly maskedPan: string | null;
  readonly cardBrand: string | null;
  readonly terminalTxId: string | null;
  /** JSON text. */
  readonly details: string | null;
}

/** `text` turns each text column into what the database stores (see `storable`). */
export function outcomeColumns(
  outcome: DriverOutcome,
  text: (value: string | undefined) => string | null,
): OutcomeColumns {
  return {
    state: outcome.outcome,
    errorCode: outcome.errorCode ?? null,
    message: text(outcome.message),
    approvalCode: text(outcome.approvalCode),
    maskedPan: text(outcome.maskedPan),
    cardBrand: text(outcome.cardBrand),
    terminalTxId: text(outcome.terminalTxId),
    details: outcome.details === undefined ? null : JSON.stringify(outcome.details),
  };
}

export function rowOrUndefined(row: Row | undefined): JournalRow | undefined {
  return row === undefined ? undefined : toJournalRow(row);
}
