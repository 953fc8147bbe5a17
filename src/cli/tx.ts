import { EcrError, invalid } from '../core/errors.js';
import { formatMoney } from '../core/money.js';
import { journalRowJson } from '../http/transaction-json.js';
import { handResolution, resolveByHand, type HandOutcome } from '../core/settlement.js';
import { chargedNothing, validateReference } from '../core/transaction.js';
import type { JournalRow } from '../core/journal-port.js';
import { isPublicId } from '../journal/public-id.js';
import { openContext } from './context.js';
import { shortDate, table } from './output.js';
import type { CommandOutput, CommonOptions } from './main.js';

function rowsTable(rows: readonly JournalRow[]): string {
  const header = ['created', 'terminal', 'reference', 'kind', 'amount', 'state', 'error'];
  const body = rows.map((r) => [
    shortDate(r.createdAt),
    r.terminalId,
    // A later attempt under the same reference (a new card after a decline) is marked #2, #3…
    r.attempt > 1 ? `${r.reference} #${r.attempt}` : r.reference,
    r.kind,
    formatMoney({ minor: r.amountMinor, currency: r.currency }),
    r.state,
    r.errorCode ?? '',
  ]);
  return table(header, body);
}

export async function runTxList(
  options: CommonOptions & { unresolved: boolean; limit: number },
): Promise<CommandOutput> {
  const context = await openContext(options);
  try {
    const rows = await context.journal.list({
      unresolved: options.unresolved,
      limit: options.limit,
    });
    const text =
      rows.length === 0
        ? options.unresolved
          ? 'No unresolved transactions.'
          : 'No transactions yet.'
        : rowsTable(rows);
    return {
      exitCode: 0,
      text,
      json: { count: rows.length, transactions: rows.map(journalRowJson) },
    };
  } finally {
    await context.close();
  }
}

export async function runTxShow(options: CommonOptions, reference: string): Promise<CommandOutput> {
  validateReference(reference);
  const context = await openContext(options);
  try {
    // A public id (`tx_…`, what a merchant sees in the dashboard) names one attempt; anything
    // else is a reference, with all its attempts on every terminal.
    const named = isPublicId(reference)
      ? await context.journal.getByPublicId(reference)
      : undefined;
    const rows = named === undefined ? await context.journal.findByReference(reference) : [named];
    if (rows.length === 0)
      throw new EcrError('NOT_FOUND', `no transaction has reference ${reference}`, {
        field: 'reference',
      });
    const text = rows
      .map((row) =>
        Object.entries(journalRowJson(row))
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
      json: {
        reference: first.reference,
        outcome: first.outcome ?? null,
        transactions: rows.map(journalRowJson),
      },
    };
  } finally {
    await context.close();
  }
}

export interface ResolveOptions extends CommonOptions {
  readonly outcome: HandOutcome;
  readonly note: string;
  readonly terminal?: string;
}

/**
 * A person reconciled an `unknown` transaction (terminal receipt, acquirer report): record what
 * really happened. Only `unknown` rows can be resolved, and only once (core/settlement.ts).
 */
export async function runTxResolve(
  options: ResolveOptions,
  reference: string,
): Promise<CommandOutput> {
  validateReference(reference);
  // Checked before the journal is opened: a bad note changes nothing anywhere.
  const resolution = handResolution({ outcome: options.outcome, note: options.note });
  const context = await openContext(options);
  try {
    // The latest attempt per merchant and terminal (newest first): an `unknown` attempt is
    // always its reference's latest, since nothing is tried again after it.
    const seen = new Set<string>();
    const rows = (await context.journal.findByReference(reference)).filter((row) => {
      const key = `${row.merchantId}\u0000${row.terminalId}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return options.terminal === undefined || row.terminalId === options.terminal;
    });
    if (rows.length === 0) {
      throw new EcrError(
        'NOT_FOUND',
        `no transaction has reference ${reference}${options.terminal === undefined ? '' : ` on ${options.terminal}`}`,
        { field: 'reference' },
      );
    }
    if (rows.length > 1) {
      throw invalid(
        'INVALID_INPUT',
        'terminal',
        `must name one of ${rows.map((r) => r.terminalId).join(', ')}: the reference exists on several terminals`,
      );
    }
    const resolved = await resolveByHand(context.journal, rows[0] as JournalRow, resolution, {
      rowField: 'reference',
      logger: context.logger,
    });
    return {
      exitCode: 0,
      // Recording "nothing was charged" reopens the reference: the POS's next retry is a new
      // attempt (invariant 1). The person deciding should know that.
      text: `${reference}: unknown → ${resolved.state} (${resolution.note})${chargedNothing(resolved.state) ? `\nNothing charged: the same reference sent again is a new attempt, which may charge.` : ''}`,
      json: { reference, outcome: resolved.outcome ?? null, transaction: journalRowJson(resolved) },
    };
  } finally {
    await context.close();
  }
}
