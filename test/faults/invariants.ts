import type { JournalRow } from '../../src/journal/journal.js';
import type { Charge } from '../../src/simulators/ledger.js';
import type { Rng, Violations } from './harness.js';

/**
 * The checks every run of the driver and connector scenarios ends with, against the simulators'
 * charge ledgers (the ground truth), the journal and, for the connector, the notifications a real
 * HTTP receiver got. Each violation is counted into its column and described on a line naming the
 * run, its seed and the reference.
 */

/** What one run left behind, for the checks. */
export interface RunEvidence {
  readonly run: number;
  readonly seed: number;
  /** Every reference the run used (warm-up and closing payments included). */
  readonly references: readonly string[];
  /** Charges the terminal(s) recorded during the run, by reference. */
  readonly charges: readonly Charge[];
  /** The journal row of each reference (undefined: never journaled). */
  readonly rows: ReadonlyMap<string, JournalRow | undefined>;
  /** The protocol has a status query: an `unknown` must end resolved (invariant c). */
  readonly statusQuery: boolean;
}

/** Invariants (a), (b) and (c). */
export function checkRun(violations: Violations, evidence: RunEvidence): void {
  const where = (reference: string) =>
    `run ${evidence.run} (seed ${evidence.seed}), reference ${reference}`;
  const byReference = new Map<string, Charge[]>();
  for (const charge of evidence.charges) {
    const list = byReference.get(charge.reference) ?? [];
    list.push(charge);
    byReference.set(charge.reference, list);
  }
  for (const [reference, charges] of byReference) {
    // (a) charged at most once.
    if (charges.length > 1) {
      violations.duplicated++;
      violations.details.push(`${where(reference)}: charged ${charges.length} times`);
    }
    // (b) every charge is in the journal as approved or unknown.
    const row = evidence.rows.get(reference);
    if (row === undefined) {
      violations.lost++;
      violations.details.push(`${where(reference)}: charged, but not in the journal`);
    } else if (row.state !== 'approved' && row.state !== 'unknown') {
      violations.lost++;
      violations.details.push(`${where(reference)}: charged, but journaled ${row.state}`);
    }
  }
  for (const reference of evidence.references) {
    const row = evidence.rows.get(reference);
    if (row === undefined) continue;
    // The other way round: an approval the terminal never made is a payment lost too.
    if (row.state === 'approved' && !byReference.has(reference)) {
      violations.lost++;
      violations.details.push(`${where(reference)}: journaled approved, never charged`);
    }
    // (c) nothing stays in flight; with a status query, nothing stays unknown.
    if (row.state === 'received' || row.state === 'sent') {
      violations.unresolved++;
      violations.details.push(`${where(reference)}: left ${row.state}`);
    } else if (row.state === 'unknown' && evidence.statusQuery) {
      violations.unresolved++;
      violations.details.push(
        `${where(reference)}: unknown after recovery (${row.message ?? 'no message'})`,
      );
    }
  }
}

/** One POST the notification receiver got. */
export interface Delivery {
  readonly reference: string;
  readonly outcome: string;
  readonly idempotencyKey: string;
}

/**
 * Invariant (d): every transaction journaled approved, declined or cancelled was delivered (its
 * outcome as journaled), and nothing else was: no notification for a transaction that failed,
 * is unknown or was never made. At-least-once delivery may repeat one, always under one key.
 */
export function checkNotifications(
  violations: Violations,
  evidence: Pick<RunEvidence, 'run' | 'seed' | 'rows'>,
  deliveries: readonly Delivery[],
): void {
  const where = (reference: string) =>
    `run ${evidence.run} (seed ${evidence.seed}), reference ${reference}`;
  const got = new Map<string, Delivery[]>();
  for (const delivery of deliveries) {
    const list = got.get(delivery.reference) ?? [];
    list.push(delivery);
    got.set(delivery.reference, list);
  }
  const notified = new Set(['approved', 'declined', 'cancelled']);
  for (const [reference, row] of evidence.rows) {
    if (row === undefined || !notified.has(row.state)) continue;
    const list = got.get(reference) ?? [];
    if (list.length === 0) {
      violations.lost++;
      violations.details.push(`${where(reference)}: ${row.state}, but never notified`);
    }
  }
  for (const [reference, list] of got) {
    const row = evidence.rows.get(reference);
    const outcomes = new Set(list.map((d) => d.outcome));
    if (row === undefined || !notified.has(row.state)) {
      violations.lost++;
      violations.details.push(
        `${where(reference)}: notified ${[...outcomes].join('/')}, but journaled ${row?.state ?? 'nothing'}`,
      );
      continue;
    }
    if (outcomes.size !== 1 || !outcomes.has(row.state)) {
      violations.lost++;
      violations.details.push(
        `${where(reference)}: notified ${[...outcomes].join('/')}, journaled ${row.state}`,
      );
    }
    const keys = new Set(list.map((d) => d.idempotencyKey));
    if (keys.size > 1) {
      violations.duplicated++;
      violations.details.push(`${where(reference)}: notified under ${keys.size} different keys`);
    }
  }
}

/**
 * A payment amount in minor units: mostly plain approvals, now and then one of the simulators'
 * scenarios (decline, cancel, busy, no answer, drop after the card, slow, invalid, partial).
 */
export function randomAmount(
  rng: Rng,
  scenarios: readonly number[] = [51, 52, 53, 54, 55, 56, 57, 58],
): number {
  const units = rng.int(1, 90) * 100;
  if (rng.next() < 0.3) return units + rng.pick(scenarios);
  // Cents 0–49: never a scenario ending.
  return units + rng.int(0, 49);
}

/**
 * Endings of the scenarios that charge the card and answer (slowly, or partially): a faulted
 * payment reaches the card read and has an answer to break, whatever the fault.
 */
export const CHARGING_SCENARIOS = [56, 58];

/** A reference for the run: letters only, with a prefix saying what it is for. */
export function referenceFor(rng: Rng, prefix: string): string {
  return `${prefix}-${rng.letters(10)}`;
}
