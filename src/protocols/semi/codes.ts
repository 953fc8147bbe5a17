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
