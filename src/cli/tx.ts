import { EcrError, invalid } from '../core/errors.js';
import { redactPans } from '../core/pan.js';
import { formatMoney } from '../core/money.js';
import {
  chargedNothing,
  hasControlCharacters,
  validateReference,
  type Outcome,
} from '../core/transaction.js';
import type { JournalRow } from '../core/journal-port.js';
import { isPublicId } from '../journal/public-id.js';
import { openContext } from './context.js';
import type { CommandOutput, CommonOptions } from './main.js';
import { rowJson } from './output.js';

function table(rows: readonly JournalRow[]): string {
  const header = ['created', 'terminal', 'reference', 'kind', 'amount', 'state', 'error'];
  const body = rows.map((r) => [
    new Date(r.createdAt).toISOString().slice(0, 19).replace('T', ' '),
    r.terminalId,
    // A later attempt under the same reference (a new card after a decline) is marked #2, #3…
    r.attempt > 1 ? `${r.reference} #${r.attempt}` : r.reference,
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
        : table(rows);
    return { exitCode: 0, text, json: { count: rows.length, transactions: rows.map(rowJson) } };
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
      json: {
        reference: first.reference,
        outcome: first.outcome ?? null,
        transactions: rows.map(rowJson),
      },
    };
  } finally {
    await context.close();
  }
}

export interface ResolveOptions extends CommonOptions {
  readonly outcome: Exclude<Outcome, 'unknown'>;
  readonly note: string;
  readonly terminal?: string;
}

/** Longest reconciliation note kept. */
const MAX_NOTE_LENGTH = 500;

/**
 * A person reconciled an `unknown` transaction (terminal receipt, acquirer report): record what
 * really happened. Only `unknown` rows can be resolved, and only once.
 */
export async function runTxResolve(
  options: ResolveOptions,
  reference: string,
): Promise<CommandOutput> {
  validateReference(reference);
  // A note may quote a receipt: card numbers in it are masked before anything keeps it.
  const note = redactPans(options.note.trim());
  if (note.length === 0 || note.length > MAX_NOTE_LENGTH || hasControlCharacters(note)) {
    throw invalid('INVALID_INPUT', 'note', `must be 1–${MAX_NOTE_LENGTH} printable characters`);
  }
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
    const row = rows[0] as JournalRow;
    const resolved = await context.journal.resolveByHand(row.id, options.outcome, note);
    if (resolved === undefined) {
      throw invalid(
        'INVALID_INPUT',
        'reference',
        'must name an unknown transaction',
        `it is ${row.state}`,
      );
    }
    context.logger.warn(
      { reference, terminalId: row.terminalId, outcome: options.outcome },
      'unknown transaction resolved by hand',
    );
    return {
      exitCode: 0,
      // Recording "nothing was charged" reopens the reference: the POS's next retry is a new
      // attempt (invariant 1). The person deciding should know that.
      text: `${reference}: unknown → ${resolved.state} (${note})${chargedNothing(resolved.state) ? `\nNothing charged: the same reference sent again is a new attempt, which may charge.` : ''}`,
      json: { reference, outcome: resolved.outcome ?? null, transaction: rowJson(resolved) },
    };
  } finally {
    await context.close();
  }
}
