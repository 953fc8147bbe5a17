import type { ErrorCode } from '../core/errors.js';
import { redactPans } from '../core/pan.js';
import {
  chargedNothing,
  type MoneyKind,
  type Outcome,
  type PaymentMethod,
  type TransactionState,
} from '../core/transaction.js';
import type {
  ClaimInput,
  JournalRow,
  NotificationRow,
  NotificationState,
  Owner,
  TransactionEvent,
} from '../core/journal-port.js';

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

const IN_FLIGHT = new Set<TransactionState>(['received', 'sent']);

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

/**
 * Whether a claim may start a new attempt after `latest`, the reference's latest attempt: only
 * when that one certainly charged nothing (`chargedNothing`) and the request is the same payment again (same kind,
 * amount and currency; anything else is a DUPLICATE_REFERENCE for the caller to refuse). The
 * one rule both journals apply (ARCHITECTURE.md invariant 1).
 */
export function mayTryAgain(latest: JournalRow, input: ClaimInput): boolean {
  return (
    chargedNothing(latest.state) &&
    latest.kind === input.kind &&
    latest.amountMinor === input.amountMinor &&
    latest.currency === input.currency
  );
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

/** One line of text, card numbers masked, at most `max` characters. */
export function oneLine(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const controls = /[\u0000-\u001f\u007f-\u009f]+/g;
  return redactPans(text).replace(controls, ' ').slice(0, max);
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
 * The owner as `isAlive` sees it. `heartbeatAt` is this process's now minus the age measured by
 * the database's clock, so `isOwnerAlive`'s `now - heartbeatAt` is that age: the difference of
 * two readings of one clock, whatever this machine's clock says.
 */
export function ownerOf(row: OwnedRow): Owner | undefined {
  if (row.owner_pid === null || row.owner_token === null) return undefined;
  return {
    pid: row.owner_pid,
    token: row.owner_token,
    ...(row.heartbeat_age === null ? {} : { heartbeatAt: Date.now() - row.heartbeat_age }),
  };
}

export function rowOrUndefined(row: Row | undefined): JournalRow | undefined {
  return row === undefined ? undefined : toJournalRow(row);
}
