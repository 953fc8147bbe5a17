import { describe, expect, it } from 'vitest';
import type { ClaimInput, JournalRow } from '../../src/core/journal-port.js';
import { MIGRATIONS } from '../../src/journal/migrations.js';
import {
  decideClaim,
  DEFAULT_LIST_LIMIT,
  LIST_SHAPES,
  listQuery,
  listSql,
  OPEN_SQL,
  recoveryOf,
} from '../../src/journal/policy.js';
import { POSTGRES_MIGRATIONS } from '../../src/journal/postgres-migrations.js';

const input: ClaimInput = {
  merchantId: 'm',
  terminalId: 't',
  reference: 'R1',
  kind: 'sale',
  amountMinor: 2000,
  currency: 'EUR',
  method: 'card',
  owner: { pid: 1, token: 'a' },
};

function latest(state: JournalRow['state'], attempt = 1): JournalRow {
  return { ...input, state, attempt, amountMinor: 2000 } as unknown as JournalRow;
}

describe('journal policy', () => {
  it('a list filter becomes one of a bounded set of statements, its values bound in placeholder order', () => {
    expect(listQuery({})).toEqual({ shape: 0, values: [], limit: DEFAULT_LIST_LIMIT });
    const query = listQuery({ unresolved: true, state: 'unknown', merchantId: 'm', limit: 5 });
    expect(query.values).toEqual(['m', 'unknown']);
    expect(query.limit).toBe(5);
    expect(listSql(query.shape, (n) => `$${n}`).replace(/\s+/g, ' ')).toBe(
      "SELECT * FROM transactions WHERE state IN ('received', 'sent', 'unknown') AND merchant_id = $1 AND state = $2 ORDER BY id DESC LIMIT $3",
    );
    const shapes = new Set<number>();
    for (const unresolved of [false, true])
      for (const terminalId of [undefined, 't'])
        for (const merchantId of [undefined, 'm'])
          for (const state of [undefined, 'approved'] as const) {
            const { shape, values } = listQuery({ unresolved, terminalId, merchantId, state });
            shapes.add(shape);
            const sqlite = listSql(shape, () => '?');
            expect(sqlite.match(/\?/g)?.length).toBe(values.length + 1);
            expect(listSql(shape, (n) => `$${n}`)).toContain(`LIMIT $${values.length + 1}`);
          }
    expect(shapes.size).toBe(LIST_SHAPES);
    expect(Math.max(...shapes)).toBe(LIST_SHAPES - 1);
  });

  it('the unresolved condition is written as the partial index transactions_state is, in both dialects', () => {
    const index = `CREATE INDEX transactions_state ON transactions (state) WHERE state IN (${OPEN_SQL});`;
    expect(MIGRATIONS.filter((sql) => sql.includes(index)).length).toBeGreaterThan(0);
    expect(POSTGRES_MIGRATIONS.filter((sql) => sql.includes(index)).length).toBeGreaterThan(0);
  });

  it('a claim gets attempt 1, the next attempt after one that charged nothing, or the latest as it is', () => {
    expect(decideClaim(undefined, input)).toEqual({ type: 'new', attempt: 1 });
    expect(decideClaim(latest('declined', 2), input)).toEqual({ type: 'new', attempt: 3 });
    for (const state of ['approved', 'unknown', 'sent'] as const) {
      const row = latest(state);
      expect(decideClaim(row, input)).toEqual({ type: 'existing', row });
    }
    const other = latest('failed');
    expect(decideClaim(other, { ...input, amountMinor: 2001 })).toEqual({
      type: 'existing',
      row: other,
    });
  });

  it('recovery: never sent is failed (ABORTED), sent is unknown (OUTCOME_UNKNOWN)', () => {
    expect(recoveryOf('received')).toMatchObject({ state: 'failed', errorCode: 'ABORTED' });
    expect(recoveryOf('sent')).toMatchObject({ state: 'unknown', errorCode: 'OUTCOME_UNKNOWN' });
  });
});
