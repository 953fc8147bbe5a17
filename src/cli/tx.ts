import { EcrError } from '../core/errors.js';
import { formatMoney } from '../core/money.js';
import { validateReference } from '../core/transaction.js';
import type { JournalRow } from '../journal/journal.js';
import { openContext } from './context.js';
import type { CommandOutput, CommonOptions } from './main.js';
import { rowJson } from './output.js';

function table(rows: readonly JournalRow[]): string {
  const header = ['created', 'terminal', 'reference', 'kind', 'amount', 'state', 'error'];
  const body = rows.map((r) => [
    new Date(r.createdAt).toISOString().slice(0, 19).replace('T', ' '),
    r.terminalId,
    r.reference,
    r.kind,
    formatMoney({ minor: r.amountMinor, currency: r.currency }),
    r.state,
    r.errorCode ?? '',
  ]);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...body.map((row) => (row[i] as string).length)),
  );
  return [header, ...body]
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] as number))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export async function runTxList(
  options: CommonOptions & { unresolved: boolean; limit: number },
): Promise<CommandOutput> {
  const context = openContext(options);
  try {
    const rows = context.journal.list({ unresolved: options.unresolved, limit: options.limit });
    const text =
      rows.length === 0
        ? options.unresolved
          ? 'No unresolved transactions.'
          : 'No transactions yet.'
        : table(rows);
    return { exitCode: 0, text, json: { count: rows.length, transactions: rows.map(rowJson) } };
  } finally {
    await context.close();
  }
}

export async function runTxShow(options: CommonOptions, reference: string): Promise<CommandOutput> {
  validateReference(reference);
  const context = openContext(options);
  try {
    const rows = context.journal.findByReference(reference);
    if (rows.length === 0)
      throw new EcrError('NOT_FOUND', `no transaction has reference ${reference}`, {
        field: 'reference',
      });
    const text = rows
      .map((row) =>
        Object.entries(rowJson(row))
          .filter(
            ([key, value]) => value !== undefined && key !== 'ownerPid' && key !== 'ownerToken',
          )
          .map(
            ([key, value]) =>
              `${key.padEnd(18)} ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`,
          )
          .join('\n'),
      )
      .join('\n\n');
    const first = rows[0] as JournalRow;
    return {
      exitCode: 0,
      text,
      json: { reference, outcome: first.outcome ?? null, transactions: rows.map(rowJson) },
    };
  } finally {
    await context.close();
  }
}
