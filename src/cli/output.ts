import { ERROR_CODES, isEcrError, toEcrError, type ErrorCode } from '../core/errors.js';
import { formatMoney, formatAmount } from '../core/money.js';
import type { BatchTotals } from '../core/driver.js';
import { chargedNothing, type Outcome, type TransactionResult } from '../core/transaction.js';

/** Exit code of `ecr-bridge pay` per outcome: 0 only when the money moved as asked. */
export const OUTCOME_EXIT_CODES: Readonly<Record<Outcome, number>> = {
  approved: 0,
  declined: 2,
  cancelled: 3,
  failed: 4,
  unknown: 5,
};

/** Exit codes of errors that stop a command before any outcome (sysexits.h where one fits). */
export const ERROR_EXIT_CODES: Partial<Readonly<Record<ErrorCode, number>>> = {
  INVALID_INPUT: 64,
  INVALID_AMOUNT: 64,
  INVALID_CURRENCY: 64,
  INVALID_REFERENCE: 64,
  INVALID_TERMINAL_ADDRESS: 64,
  UNSUPPORTED_OPERATION: 64,
  DUPLICATE_REFERENCE: 65,
  NOT_FOUND: 66,
  // Refused before anything was sent: the "failed, certainly not charged" code.
  TERMINAL_OFFLINE: 4,
  CLUSTER_UNAVAILABLE: 4,
  TIMEOUT: 75,
  ABORTED: 130,
};
/** Any other error. */
export const GENERIC_ERROR_EXIT_CODE = 1;

export function exitCodeForError(error: unknown): number {
  return isEcrError(error)
    ? (ERROR_EXIT_CODES[error.code] ?? GENERIC_ERROR_EXIT_CODE)
    : GENERIC_ERROR_EXIT_CODE;
}

const MARKS: Readonly<Record<Outcome, string>> = {
  approved: '✔',
  declined: '✖',
  cancelled: '✖',
  failed: '✖',
  unknown: '?',
};

/** One result for people. */
export function describeResult(result: TransactionResult): string {
  const lines = [
    `${MARKS[result.outcome]} ${result.outcome}  ${formatMoney(result.amount)}  reference ${result.reference}${result.attempt > 1 ? ` (attempt ${result.attempt})` : ''}`,
  ];
  const facts = [
    result.approvalCode && `approval ${result.approvalCode}`,
    result.cardBrand,
    result.maskedPan,
    result.terminalTxId && `terminal tx ${result.terminalTxId}`,
  ].filter(Boolean);
  if (facts.length > 0) lines.push(`  ${facts.join('  ')}`);
  if (result.errorCode !== undefined || result.message !== undefined) {
    lines.push(`  ${[result.errorCode, result.message].filter(Boolean).join(': ')}`);
  }
  if (result.replayed)
    lines.push(
      `  (stored result of an earlier request with this reference: nothing was sent again${chargedNothing(result.state) ? '; nothing was charged: send the same reference again to try again' : ''})`,
    );
  if (result.outcome === 'unknown') {
    lines.push(
      '  The terminal may have charged the card. Check the terminal or its back office before taking',
      '  this payment again; `ecr-bridge tx list --unresolved` lists every such transaction.',
    );
  }
  return lines.join('\n');
}

/** A result as the one JSON object `--json` prints. */
export function resultJson(result: TransactionResult): Record<string, unknown> {
  return {
    ...result,
    amount: formatAmount(result.amount),
    currency: result.amount.currency,
    amountMinor: result.amount.minor,
  };
}

/** A time (ms since the epoch) as `YYYY-MM-DD HH:MM:SS` in UTC, for tables. */
export const shortDate = (ms: number): string =>
  new Date(ms).toISOString().slice(0, 19).replace('T', ' ');

/** Text columns for people, each padded to its widest cell (the header's included). */
export function table(header: readonly string[], body: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...body.map((row) => row[i]?.length ?? 0)),
  );
  return [header, ...body]
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** An error for people: the code and message, never a stack trace. */
export function describeError(error: unknown): string {
  const e = toEcrError(error);
  const hint =
    e.code === 'INTERNAL'
      ? ' (this is a bug in ecr-bridge; please report it with the log file)'
      : '';
  return `error ${e.code}: ${e.message}${hint}`;
}

export function errorJson(error: unknown): {
  code: string;
  message: string;
  field?: string;
  rule?: string;
  http: number;
} {
  const e = toEcrError(error);
  return { ...e.toJSON(), http: ERROR_CODES[e.code].http };
}

/** Batch totals for people. */
export function describeTotals(totals: BatchTotals): string {
  const width = Math.max(
    ...[totals.sales, totals.refunds, totals.net].map((m) => formatMoney(m).length),
  );
  const line = (label: string, count: number | undefined, money: BatchTotals['net']) =>
    `  ${label.padEnd(8)} ${count === undefined ? '    ' : String(count).padStart(4)}  ${formatMoney(money).padStart(width)}`;
  return [
    `✔ batch ${totals.batchNumber} closed`,
    line('sales', totals.saleCount, totals.sales),
    line('refunds', totals.refundCount, totals.refunds),
    line('net', undefined, totals.net),
  ].join('\n');
}
