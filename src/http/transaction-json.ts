import { z } from 'zod';
import type { JournalRow } from '../core/journal-port.js';
import { formatAmount } from '../core/money.js';
import { redactPans } from '../core/pan.js';
import { MONEY_KINDS, OUTCOMES, type TransactionResult } from '../core/transaction.js';

/**
 * A transaction as JSON, one module for every edge that answers with one: the project's own
 * `/api/v1` (connector and gateway), the dashboard's page and the CLI's `tx --json`. Amounts in
 * major units (`"10.23"`), times as ISO 8601 text. The zod schemas describe the `/api/v1` shape
 * for the OpenAPI documents.
 */

/** One attempt under a reference: the cashier's first card, then another after a decline… */
export const AttemptJson = z.object({
  attempt: z.number().int().min(1),
  outcome: z.enum(OUTCOMES),
  state: z.string(),
  errorCode: z.string().optional(),
  message: z.string().optional(),
  approvalCode: z.string().optional(),
  maskedPan: z.string().optional(),
  terminalTxId: z.string().optional(),
  createdAt: z.string(),
  completedAt: z.string().optional(),
});

export const TransactionJson = z.object({
  reference: z.string(),
  terminalId: z.string(),
  kind: z.enum(MONEY_KINDS),
  amount: z.string().describe('Major units, e.g. "10.23".'),
  currency: z.string(),
  outcome: z.enum(OUTCOMES),
  state: z.string(),
  attempt: z
    .number()
    .int()
    .min(1)
    .describe('Which attempt under the reference this is (a new one after nothing was charged).'),
  attempts: z
    .array(AttemptJson)
    .optional()
    .describe('Every attempt under the reference, the first first (on lookups by reference).'),
  replayed: z.boolean(),
  errorCode: z.string().optional(),
  message: z.string().optional(),
  approvalCode: z.string().optional(),
  maskedPan: z.string().optional(),
  cardBrand: z.string().optional(),
  terminalTxId: z.string().optional(),
  createdAt: z.string(),
  completedAt: z.string().optional(),
});

/**
 * The query of a transaction list (the gateway's `/api/v1/transactions` and the dashboard's):
 * an outcome, only the unresolved, at most `limit` rows.
 */
export const TransactionListQuery = z.strictObject({
  outcome: z.enum(OUTCOMES).optional(),
  unresolved: z.enum(['true', 'false']).optional(),
  limit: z
    .string()
    .regex(/^\d{1,3}$/, 'must be a whole number from 1 to 500')
    .optional(),
});

/** A transaction in the project's own JSON model (the connector's and the gateway's /api/v1). */
export function transactionJson(result: TransactionResult): z.infer<typeof TransactionJson> {
  return {
    reference: result.reference,
    terminalId: result.terminalId,
    kind: result.kind,
    amount: formatAmount(result.amount),
    currency: result.amount.currency,
    outcome: result.outcome,
    state: result.state,
    attempt: result.attempt,
    replayed: result.replayed,
    createdAt: result.createdAt,
    ...(result.completedAt === undefined ? {} : { completedAt: result.completedAt }),
    ...(result.errorCode === undefined ? {} : { errorCode: result.errorCode }),
    ...(result.message === undefined ? {} : { message: result.message }),
    ...(result.approvalCode === undefined ? {} : { approvalCode: result.approvalCode }),
    ...(result.maskedPan === undefined ? {} : { maskedPan: result.maskedPan }),
    ...(result.cardBrand === undefined ? {} : { cardBrand: result.cardBrand }),
    ...(result.terminalTxId === undefined ? {} : { terminalTxId: result.terminalTxId }),
  };
}

/** A transaction with the list of its reference's attempts (`attempts` from the journal). */
export function transactionWithAttemptsJson(
  latest: TransactionResult,
  attempts: readonly TransactionResult[],
): z.infer<typeof TransactionJson> {
  return {
    ...transactionJson(latest),
    attempts: attempts.map((a) => ({
      attempt: a.attempt,
      outcome: a.outcome,
      state: a.state,
      createdAt: a.createdAt,
      ...(a.completedAt === undefined ? {} : { completedAt: a.completedAt }),
      ...(a.errorCode === undefined ? {} : { errorCode: a.errorCode }),
      ...(a.message === undefined ? {} : { message: a.message }),
      ...(a.approvalCode === undefined ? {} : { approvalCode: a.approvalCode }),
      ...(a.maskedPan === undefined ? {} : { maskedPan: a.maskedPan }),
      ...(a.terminalTxId === undefined ? {} : { terminalTxId: a.terminalTxId }),
    })),
  };
}

/** A time (ms since the epoch) as ISO 8601 text, or null when there is none. */
export function isoOrNull(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/**
 * A journal row as the dashboard's page shows it: its public id (never the journal's sequential
 * one, journal/public-id.ts), every field present (null when unset), free text with card-number
 * runs masked.
 */
export function transactionRowJson(row: JournalRow) {
  return {
    id: row.publicId,
    reference: row.reference,
    terminalId: row.terminalId,
    attempt: row.attempt,
    kind: row.kind,
    amount: formatAmount({ minor: row.amountMinor, currency: row.currency }),
    currency: row.currency,
    state: row.state,
    outcome: row.outcome ?? null,
    errorCode: row.errorCode ?? null,
    message: row.message === undefined ? null : redactPans(row.message),
    maskedPan: row.maskedPan ?? null,
    cardBrand: row.cardBrand ?? null,
    approvalCode: row.approvalCode ?? null,
    terminalTxId: row.terminalTxId === undefined ? null : redactPans(row.terminalTxId),
    createdAt: new Date(row.createdAt).toISOString(),
    completedAt: isoOrNull(row.completedAt),
  };
}

/**
 * A journal row whole, for operators (the CLI's `tx list --json`): every field as stored, the
 * amount in major units and the times as ISO 8601 text (`completedAt` undefined until the row
 * is final, so JSON leaves it out).
 */
export function journalRowJson(row: JournalRow): Record<string, unknown> {
  return {
    ...row,
    amount: formatAmount({ minor: row.amountMinor, currency: row.currency }),
    createdAt: new Date(row.createdAt).toISOString(),
    updatedAt: new Date(row.updatedAt).toISOString(),
    completedAt:
      row.completedAt === undefined ? undefined : new Date(row.completedAt).toISOString(),
  };
}
