import { describe, expect, it } from 'vitest';
import type { JournalRow } from '../../src/core/journal-port.js';
import type { Charge } from '../../src/simulators/ledger.js';
import { noViolations } from './harness.js';
import {
  checkAttemptNotifications,
  checkAttempts,
  checkNotifications,
  checkRun,
  type AttemptEvidence,
} from './invariants.js';

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
    publicId: 'tx_abcdefghijklmnopabcdefgh',
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

/** Attempt `n` (row id 10 + n) of reference R, and its events (ids `at`, one per state). */
function attempt(n: number, states: readonly JournalRow['state'][], at: number) {
  const state = states.at(-1) as JournalRow['state'];
  return {
    row: { ...row('R', state), id: 10 + n, attempt: n },
    events: states.map((s, i) => ({
      id: at + i,
      transactionId: 10 + n,
      state: s,
      at: 0,
      note: undefined,
    })),
  };
}

function attemptEvidence(
  list: readonly ReturnType<typeof attempt>[],
  more: Partial<AttemptEvidence> = {},
): AttemptEvidence {
  return {
    run: 2,
    seed: 7,
    attempts: new Map([['R', list.map((a) => a.row)]]),
    events: new Map(list.map((a) => [a.row.id, a.events])),
    charges: [],
    // Wire id "w<n>" was sent for attempt n.
    rowOfWireId: (wire) => (/^w\d+$/.test(wire) ? 10 + Number(wire.slice(1)) : undefined),
    calls: [],
    ...more,
  };
}

describe('fault-run invariants: attempts under one reference', () => {
  const declined = attempt(1, ['received', 'sent', 'declined'], 1);
  const approved = attempt(2, ['received', 'sent', 'approved'], 4);

  it('declined, then approved and charged once by the latest attempt, replays answered as such: no violation', () => {
    const violations = noViolations();
    const unknownRetries = checkAttempts(
      violations,
      attemptEvidence([declined, approved], {
        charges: [{ ...charge('R'), requestId: 'w2' }],
        calls: [
          { reference: 'R', before: undefined, attempt: 1, replayed: false },
          {
            reference: 'R',
            before: { attempt: 1, state: 'declined' },
            attempt: 2,
            replayed: false,
          },
          { reference: 'R', before: { attempt: 2, state: 'approved' }, attempt: 2, replayed: true },
        ],
        terminalRecord: new Set(['w1', 'w2']),
      }),
      (r) => [`w${r.attempt}`],
    );
    expect(violations).toEqual(noViolations());
    expect(unknownRetries).toBe(0);
  });

  it('a gap, an earlier attempt left unknown, a new attempt begun before the last one ended', () => {
    const violations = noViolations();
    checkAttempts(
      violations,
      attemptEvidence([
        attempt(1, ['received', 'sent', 'unknown'], 1),
        // Settled declined (event 9) only after attempt 3 began (event 6).
        attempt(3, ['received', 'sent', 'unknown', 'declined'], 4),
        { ...attempt(4, ['received', 'sent', 'approved'], 6) },
      ]),
    );
    // Attempts 3 and 4 stand 2nd and 3rd (a gap); attempt 1 is unknown (a second charge was
    // possible); attempt 4 began (event 6) before attempt 3 ended (event 7).
    expect(violations).toMatchObject({ lost: 2, duplicated: 2, unresolved: 0 });
    expect(violations.details.join('\n')).toMatch(
      /run 2 \(seed 7\), reference R: attempt 1 is unknown/,
    );
  });

  it('a charge by an earlier attempt, a retry of unknown that started a new attempt, a declined reference not tried again, a phantom decline', () => {
    const violations = noViolations();
    const unknownRetries = checkAttempts(
      violations,
      attemptEvidence([declined, attempt(2, ['received', 'sent', 'unknown'], 4)], {
        // Attempt 1 charged the card, though it is journaled declined.
        charges: [{ ...charge('R'), requestId: 'w1' }],
        calls: [
          // The retry met attempt 2 unknown and was driven again.
          { reference: 'R', before: { attempt: 2, state: 'unknown' }, attempt: 2, replayed: false },
          // The retry met attempt 1 declined and got it again, not a new attempt.
          { reference: 'R', before: { attempt: 1, state: 'declined' }, attempt: 1, replayed: true },
        ],
        // The terminal never ran attempt 1's request.
        terminalRecord: new Set(['w2']),
      }),
      (r) => [`w${r.attempt}`],
    );
    expect(violations).toMatchObject({ lost: 2, duplicated: 1, unresolved: 1 });
    expect(unknownRetries).toBe(1);
  });

  it('notifications per attempt: each once under its own key, none for a failed attempt', () => {
    const violations = noViolations();
    const evidence = attemptEvidence([
      declined,
      attempt(2, ['received', 'sent', 'failed'], 4),
      attempt(3, ['received', 'sent', 'approved'], 7),
    ]);
    checkAttemptNotifications(violations, evidence, [
      { reference: 'R', attempt: 1, outcome: 'declined', idempotencyKey: 'k1' },
      { reference: 'R', attempt: 1, outcome: 'declined', idempotencyKey: 'k1' },
      { reference: 'R', attempt: 3, outcome: 'approved', idempotencyKey: 'k3' },
    ]);
    expect(violations).toEqual(noViolations());
    checkAttemptNotifications(violations, evidence, [
      // Attempt 1 never notified; attempt 2 (failed) notified; attempt 3 under attempt 2's key.
      { reference: 'R', attempt: 2, outcome: 'failed', idempotencyKey: 'k2' },
      { reference: 'R', attempt: 3, outcome: 'approved', idempotencyKey: 'k2' },
    ]);
    expect(violations).toMatchObject({ lost: 3, duplicated: 0, unresolved: 0 });
  });
});
