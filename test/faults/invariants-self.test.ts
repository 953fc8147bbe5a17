import { describe, expect, it } from 'vitest';
import type { JournalRow } from '../../src/journal/journal.js';
import type { Charge } from '../../src/simulators/ledger.js';
import { noViolations } from './harness.js';
import { checkNotifications, checkRun } from './invariants.js';

/** The checks themselves: each kind of broken evidence lands in its column. */

function charge(reference: string): Charge {
  return {
    reference,
    amountMinor: 1000,
    currency: 'USD',
    maskedPan: '476173******0010',
    approvalCode: 'OK',
    terminalTxId: 'T',
    requestId: 'R',
    at: new Date(0).toISOString(),
  };
}

function row(reference: string, state: JournalRow['state']): JournalRow {
  return {
    id: 1,
    merchantId: 'default',
    terminalId: 't1',
    reference,
    attempt: 1,
    kind: 'sale',
    amountMinor: 1000,
    currency: 'USD',
    method: 'card',
    originalReference: undefined,
    state,
    outcome: state === 'received' || state === 'sent' ? undefined : state,
    errorCode: undefined,
    message: undefined,
    approvalCode: undefined,
    maskedPan: undefined,
    cardBrand: undefined,
    terminalTxId: undefined,
    details: undefined,
    ownerPid: undefined,
    ownerToken: undefined,
    createdAt: 0,
    updatedAt: 0,
    completedAt: undefined,
  };
}

describe('fault-run invariants', () => {
  it('clean evidence → no violation; approved or unknown charges pass (unknown only without a status query)', () => {
    const violations = noViolations();
    const rows = new Map([
      ['A', row('A', 'approved')],
      ['B', row('B', 'unknown')],
      ['C', row('C', 'declined')],
    ]);
    checkRun(violations, {
      run: 0,
      seed: 1,
      references: ['A', 'B', 'C'],
      charges: [charge('A'), charge('B')],
      rows,
      statusQuery: false,
    });
    checkNotifications(violations, { run: 0, seed: 1, rows }, [
      { reference: 'A', outcome: 'approved', idempotencyKey: 'k1' },
      { reference: 'A', outcome: 'approved', idempotencyKey: 'k1' },
      { reference: 'C', outcome: 'declined', idempotencyKey: 'k2' },
    ]);
    expect(violations).toEqual(noViolations());
  });

  it('a double charge, a lost or misjournaled charge, a phantom approval, unresolved rows', () => {
    const violations = noViolations();
    checkRun(violations, {
      run: 3,
      seed: 99,
      references: ['A', 'B', 'C', 'D', 'E'],
      charges: [charge('A'), charge('A'), charge('B'), charge('X')],
      rows: new Map([
        ['A', row('A', 'approved')],
        ['B', row('B', 'failed')],
        ['C', row('C', 'approved')],
        ['D', row('D', 'unknown')],
        ['E', row('E', 'sent')],
      ]),
      statusQuery: true,
    });
    expect(violations).toMatchObject({ duplicated: 1, lost: 3, unresolved: 2 });
    expect(violations.details.join('\n')).toMatch(
      /run 3 \(seed 99\), reference A: charged 2 times/,
    );
  });

  it('a lost notification, one for a failed transaction, a wrong outcome, two keys for one', () => {
    const violations = noViolations();
    const rows = new Map([
      ['A', row('A', 'approved')],
      ['B', row('B', 'failed')],
      ['C', row('C', 'declined')],
      ['D', row('D', 'cancelled')],
    ]);
    checkNotifications(violations, { run: 0, seed: 1, rows }, [
      { reference: 'B', outcome: 'failed', idempotencyKey: 'k1' },
      { reference: 'C', outcome: 'approved', idempotencyKey: 'k2' },
      { reference: 'D', outcome: 'cancelled', idempotencyKey: 'k3' },
      { reference: 'D', outcome: 'cancelled', idempotencyKey: 'k4' },
    ]);
    expect(violations).toMatchObject({ lost: 3, duplicated: 1, unresolved: 0 });
  });
});
