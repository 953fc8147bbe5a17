import { EcrError, type ErrorCode } from '../core/errors.js';
import { redactPans } from '../core/pan.js';
import { chargedNothing, type DriverOutcome, type TransactionState } from '../core/transaction.js';
import {
  MAX_NOTIFICATION_ERROR_LENGTH,
  NOTIFIED_STATES,
  RECOVERED_AFTER_SENT,
  RECOVERED_BEFORE_SENT,
  type ClaimInput,
  type JournalRow,
  type ListFilter,
  type Owner,
} from '../core/journal-port.js';

// What both journals decide the same way, whatever their SQL: which states count as what, the
// limits, the claim and recovery rules, the outbox's decisions and sweep mark, and the list
// filter. The dialect files (`sqlite-*.ts`, `postgres-*.ts`) keep only SQL and transactions.

/** Driven by a live owner: `sent` is journaled before the first byte goes to the terminal. */
export const IN_FLIGHT_STATES = ['received', 'sent'] as const satisfies readonly TransactionState[];
/**
 * What still needs a person or a recovery: in flight, or `unknown`. The unresolved list, the rows
 * an outbox sweep must look at again, and the WHERE of the partial index `transactions_state`
 * (written the same, so the planners use it).
 */
export const OPEN_STATES = [
  'received',
  'sent',
  'unknown',
] as const satisfies readonly TransactionState[];
/**
 * Rows that certainly never reached the terminal: never sent, or refused before the card step.
 * `latestSentBefore` skips them.
 */
export const NEVER_REACHED_STATES = [
  'received',
  'failed',
] as const satisfies readonly TransactionState[];

/** `'a', 'b'`: a set of these constants for an SQL `IN (…)`. Never for input. */
export function sqlList(values: readonly string[]): string {
  return values.map((value) => `'${value}'`).join(', ');
}

export const IN_FLIGHT_SQL = sqlList(IN_FLIGHT_STATES);
export const OPEN_SQL = sqlList(OPEN_STATES);
export const NEVER_REACHED_SQL = sqlList(NEVER_REACHED_STATES);
export const NOTIFIED_SQL = sqlList(NOTIFIED_STATES);

/** Rows a list returns when the filter names no limit. */
export const DEFAULT_LIST_LIMIT = 100;
/** Longest note `annotate` keeps on a timeline. */
export const MAX_NOTE_LENGTH = 500;

/** One line of text, card numbers masked, at most `max` characters. */
export function oneLine(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const controls = /[\u0000-\u001f\u007f-\u009f]+/g;
  return redactPans(text).replace(controls, ' ').slice(0, max);
}

/** A note as the timeline keeps it. */
export function noteText(note: string): string {
  return oneLine(note, MAX_NOTE_LENGTH);
}

/** An unacknowledged POST's error as the outbox keeps it. */
export function shortError(error: string): string {
  return oneLine(error, MAX_NOTIFICATION_ERROR_LENGTH);
}

/** What a claim does, given the reference's latest attempt. */
export type ClaimDecision =
  | { readonly type: 'existing'; readonly row: JournalRow }
  | { readonly type: 'new'; readonly attempt: number };

/**
 * Whether a claim may start a new attempt after `latest`, the reference's latest attempt: only
 * when that one certainly charged nothing (`chargedNothing`) and the request is the same payment
 * again (same kind, amount and currency; anything else is a DUPLICATE_REFERENCE for the caller to
 * refuse). The one rule both journals apply (ARCHITECTURE.md invariant 1).
 */
export function mayTryAgain(latest: JournalRow, input: ClaimInput): boolean {
  return (
    chargedNothing(latest.state) &&
    latest.kind === input.kind &&
    latest.amountMinor === input.amountMinor &&
    latest.currency === input.currency
  );
}

/** A reference with no row gets attempt 1; one that may try again, the next number. */
export function decideClaim(latest: JournalRow | undefined, input: ClaimInput): ClaimDecision {
  if (latest !== undefined && !mayTryAgain(latest, input)) return { type: 'existing', row: latest };
  return { type: 'new', attempt: (latest?.attempt ?? 0) + 1 };
}

/** Whether an outcome can settle an `unknown` row: `unknown` again settles nothing. */
export function settles(outcome: DriverOutcome): boolean {
  return outcome.outcome !== 'unknown';
}

/** What recovery writes on a row whose owner is gone. */
export interface Recovery {
  readonly state: 'failed' | 'unknown';
  readonly errorCode: ErrorCode;
  readonly message: string;
}

/**
 * `received`: the terminal was certainly never contacted, nothing was charged (ABORTED).
 * `sent`: only the terminal can tell (OUTCOME_UNKNOWN).
 */
export function recoveryOf(state: string): Recovery {
  return state === 'received'
    ? { state: 'failed', errorCode: 'ABORTED', message: RECOVERED_BEFORE_SENT }
    : { state: 'unknown', errorCode: 'OUTCOME_UNKNOWN', message: RECOVERED_AFTER_SENT };
}

/** An in-flight row with no owner, or one that is gone, is recovered. */
export function isOrphan(owner: Owner | undefined, isAlive: (owner: Owner) => boolean): boolean {
  return owner === undefined || !isAlive(owner);
}

/** A terminal lock may be taken when free, already `owner`'s, or held by an owner that is gone. */
export function mayTakeLock(
  holder: Owner | undefined,
  owner: Owner,
  isAlive: (owner: Owner) => boolean,
): boolean {
  return holder === undefined || holder.token === owner.token || !isAlive(holder);
}

/** Housekeeping drops a lock only when its owner is known and gone. */
export function isDeadLock(holder: Owner | undefined, isAlive: (owner: Owner) => boolean): boolean {
  return holder !== undefined && !isAlive(holder);
}

/**
 * Why `enqueueNotification` wrote nothing for a transaction without a notification: NOT_FOUND
 * when there is no such transaction (`state` undefined), INVALID_INPUT when it did not happen.
 */
export function notificationRefused(transactionId: number, state: string | undefined): EcrError {
  if (state === undefined) {
    return new EcrError('NOT_FOUND', `no transaction ${transactionId} to notify`, {
      field: 'transactionId',
      rule: 'must name a journaled transaction',
    });
  }
  const rule = 'must name an approved, declined or cancelled transaction';
  return new EcrError(
    'INVALID_INPUT',
    `transactionId: ${rule} (transaction ${transactionId} is ${state})`,
    { field: 'transactionId', rule },
  );
}

/**
 * What the previous outbox sweep saw: the highest transaction id, and the transactions that could
 * still become notifiable (OPEN_STATES). Every other row was final then — notified already, or
 * `failed`, which never changes — so the next sweep need look only at these and newer ids.
 */
export interface SweepMark {
  readonly maxId: number;
  readonly open: readonly number[];
}

/** Where a sweep looks: everywhere the first time, then at the previous mark's open ids and newer. */
export type SweepScope =
  | { readonly all: true }
  | { readonly all: false; readonly open: readonly number[]; readonly afterId: number };

/** The mark one journal carries from sweep to sweep. */
export class SweepMarks {
  private last: SweepMark | undefined;

  scope(): SweepScope {
    const last = this.last;
    return last === undefined
      ? { all: true }
      : { all: false, open: last.open, afterId: last.maxId };
  }

  /** After a sweep: the next one starts from what this one saw. */
  advance(mark: SweepMark): void {
    this.last = mark;
  }
}

/** The equality conditions of a list, in the order they are written, each with its column. */
const LIST_CONDITIONS = [
  { key: 'terminalId', column: 'terminal_id' },
  { key: 'merchantId', column: 'merchant_id' },
  { key: 'state', column: 'state' },
] as const;
/** Bit 0 is `unresolved`, then one bit per LIST_CONDITIONS entry. */
export const LIST_SHAPES = 2 ** (LIST_CONDITIONS.length + 1);

/** A list filter as parameters: which shape of statement, and the values it binds. */
export interface ListQuery {
  /** Which conditions apply, one bit each: the key a dialect keeps one statement under. */
  readonly shape: number;
  /** The conditions' values, in placeholder order; the limit is bound after them. */
  readonly values: readonly string[];
  /** As the filter gives it, or DEFAULT_LIST_LIMIT; each dialect binds it its own way. */
  readonly limit: number;
}

export function listQuery(filter: ListFilter): ListQuery {
  let shape = filter.unresolved === true ? 1 : 0;
  const values: string[] = [];
  LIST_CONDITIONS.forEach(({ key }, i) => {
    const value = filter[key];
    if (value === undefined) return;
    shape |= 2 << i;
    values.push(value);
  });
  return { shape, values, limit: filter.limit ?? DEFAULT_LIST_LIMIT };
}

/**
 * The statement of a list shape, newest first; `placeholder(n)` writes the dialect's n-th
 * parameter (from 1: `?` for SQLite, `$n` for PostgreSQL). The limit is the last parameter.
 */
export function listSql(shape: number, placeholder: (n: number) => string): string {
  const where: string[] = [];
  let parameters = 0;
  if ((shape & 1) !== 0) where.push(`state IN (${OPEN_SQL})`);
  LIST_CONDITIONS.forEach(({ column }, i) => {
    if ((shape & (2 << i)) !== 0) where.push(`${column} = ${placeholder(++parameters)}`);
  });
  return `SELECT * FROM transactions ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY id DESC LIMIT ${placeholder(parameters + 1)}`;
}
