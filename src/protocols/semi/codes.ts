import type { ErrorCode } from '../../core/errors.js';
import type { Outcome } from '../../core/transaction.js';

/**
 * SEMI integration (Valor Connect, seed 004) codes: one table for the driver and the simulator.
 * Every entry is *assumed* (protocols.md, "semi"): no public source pins the numbers down, so
 * they are corrected here, in one place, if a terminal proves them wrong.
 */

/** TRAN_MODE: which kind of tender. */
export const SEMI_TRAN_MODES = {
  credit: '1',
  debit: '2',
  ebtFood: '3',
  ebtCash: '4',
  gift: '5',
} as const;
export type SemiTranMode = keyof typeof SEMI_TRAN_MODES;

/**
 * The tender as an answer names it in TRAN_TYPE and CARD_TYPE: `CREDIT` in a terminal's answer a
 * public POS captured, `Credit` in the vendor's published sample; the others *assumed*.
 */
export const SEMI_TENDER_NAMES: Readonly<Record<SemiTranMode, string>> = {
  credit: 'CREDIT',
  debit: 'DEBIT',
  ebtFood: 'EBT FOOD',
  ebtCash: 'EBT CASH',
  gift: 'GIFT',
};

/** TRAN_CODE: what to do. */
export const SEMI_TRAN_CODES = {
  sale: '1',
  auth: '2',
  capture: '3',
  refund: '4',
  void: '5',
  tipAdjust: '6',
  cancelCurrent: '7',
  batchClose: '8',
  lastStatus: '9',
} as const;
export type SemiTranCode = keyof typeof SEMI_TRAN_CODES;

/**
 * STATE in a response. For a cancel request "0" means cancelled and "-2" nothing to clear;
 * for every other request "0" approved, "1" partially approved, "-1" cancelled or timed out
 * at the terminal (nothing charged).
 */
export const SEMI_STATES = {
  '0': 'ok',
  '1': 'partial',
  '-1': 'cancelled',
  '-2': 'nothing-to-clear',
} as const;
export type SemiState = keyof typeof SEMI_STATES;

export function isSemiState(value: string): value is SemiState {
  return Object.hasOwn(SEMI_STATES, value);
}

const BY_CODE: ReadonlyMap<string, SemiTranCode> = new Map(
  Object.entries(SEMI_TRAN_CODES).map(([name, code]) => [code, name as SemiTranCode]),
);
const BY_MODE: ReadonlyMap<string, SemiTranMode> = new Map(
  Object.entries(SEMI_TRAN_MODES).map(([name, code]) => [code, name as SemiTranMode]),
);

export function tranCodeName(code: string): SemiTranCode | undefined {
  return BY_CODE.get(code);
}

export function tranModeName(mode: string): SemiTranMode | undefined {
  return BY_MODE.get(mode);
}

/**
 * ERROR_MSG texts that say what an unsuccessful answer (STATE "-1") means. The vendor's response
 * reference puts every unsuccessful end under "-1" with the reason in ERROR_MSG, nothing charged;
 * the texts are *assumed* beyond "Transaction Timeout/Cancelled". The simulator writes exactly
 * these; the driver matches them case-insensitively and by the patterns in `SEMI_FAILURE_PATTERNS`.
 */
export const SEMI_ERROR_MESSAGES = {
  declined: 'DECLINED',
  cancelled: 'Transaction Timeout/Cancelled',
  busy: 'TERMINAL BUSY',
  invalid: 'INVALID REQUEST',
  notFound: 'NO TRANSACTION FOUND',
} as const;

/** What a "-1" means, by its ERROR_MSG; the first pattern that matches wins, else `declined`. */
export const SEMI_FAILURE_PATTERNS: readonly {
  readonly pattern: RegExp;
  readonly outcome: Outcome;
  readonly errorCode?: ErrorCode;
}[] = [
  { pattern: /busy/i, outcome: 'failed', errorCode: 'TERMINAL_BUSY' },
  { pattern: /invalid/i, outcome: 'failed', errorCode: 'TERMINAL_REFUSED' },
  { pattern: /cancel|time ?out|timed out|abort/i, outcome: 'cancelled' },
];

/**
 * The money outcome of a response to a money request (or of the transaction a status answer
 * describes). "-2" belongs to cancel and status requests only: here it means the terminal did
 * not take the request, so nothing was charged.
 */
export function semiOutcome(
  state: SemiState,
  errorMessage: string | undefined,
): { readonly outcome: Outcome; readonly errorCode?: ErrorCode } {
  if (state === '0' || state === '1') return { outcome: 'approved' };
  if (state === '-2') return { outcome: 'failed', errorCode: 'TERMINAL_REFUSED' };
  const text = errorMessage ?? '';
  const match = SEMI_FAILURE_PATTERNS.find((entry) => entry.pattern.test(text));
  if (match === undefined) return { outcome: 'declined' };
  return match.errorCode === undefined
    ? { outcome: match.outcome }
    : { outcome: match.outcome, errorCode: match.errorCode };
}

/** True when a "-1" answer only says the terminal is busy with another transaction. */
export function isBusyAnswer(state: SemiState, errorMessage: string | undefined): boolean {
  return state === '-1' && /busy/i.test(errorMessage ?? '');
}
