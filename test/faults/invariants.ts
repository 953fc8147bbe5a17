import Database from 'better-sqlite3';
import type { JournalRow, TransactionEvent } from '../../src/core/journal-port.js';
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

/**
 * Retried references (a reference declined or busy-refused, then paid again under the same
 * reference while faults are injected): ARCHITECTURE.md invariant 1, "a payment may take several
 * attempts". What a run of such a scenario left, for `checkAttempts`.
 */
export interface AttemptEvidence {
  readonly run: number;
  readonly seed: number;
  /** Every attempt of each reference of the run, the first one first (`Journal.attemptsOf`). */
  readonly attempts: ReadonlyMap<string, readonly JournalRow[]>;
  /** The state changes of each attempt, by row id (`Journal.eventsOf`; ids grow with time). */
  readonly events: ReadonlyMap<number, readonly TransactionEvent[]>;
  /** Charges the terminal made during the run. */
  readonly charges: readonly Charge[];
  /**
   * The journal row a wire id was handed out for (a charge's `requestId`), from the journal's
   * `attempts` table; undefined when it names none.
   */
  readonly rowOfWireId: (wireId: string) => number | undefined;
  /** What the POS's calls met and got, in order. */
  readonly calls: readonly RetryCall[];
  /**
   * What the terminal itself recorded (SEMI's batch: every card request it ran, approved or
   * not, by the wire id it came with); undefined when the simulator does not expose it.
   */
  readonly terminalRecord?: ReadonlySet<string> | undefined;
}

/** One POS call under a retried reference. */
export interface RetryCall {
  readonly reference: string;
  /** The latest attempt in the journal right before the call (undefined: none yet). */
  readonly before: Pick<JournalRow, 'attempt' | 'state'> | undefined;
  /**
   * The attempt the answer was about: the answer's own `attempt` where the API gives one, else
   * the journal's latest attempt right after the answer. Undefined: no answer came.
   */
  readonly attempt: number | undefined;
  /** The answer's `replayed`, where the API gives it. */
  readonly replayed?: boolean | undefined;
}

const NOTHING_CHARGED = new Set<string>(['declined', 'cancelled', 'failed']);
const HAPPENED_AT_TERMINAL = new Set<string>(['approved', 'declined', 'cancelled']);

/**
 * The attempt invariants for a run's retried references; counted into the existing columns:
 * - every attempt is in the journal, numbered 1..n with no gap; every attempt an answer named
 *   exists (else `lost`);
 * - all but the latest ended with nothing charged, and each new attempt began only after the
 *   one before it had ended so (its last event precedes the new one's first): else a second
 *   charge was possible (`duplicated`). A retry that met an `unknown` latest attempt and started
 *   a new one is caught here, unless the unknown was settled (nothing charged) before it began;
 * - every charge belongs to the reference's latest attempt (by its wire id), journaled approved
 *   or unknown (else `lost`);
 * - a call that met an approved, in-flight or unknown latest attempt got that attempt again,
 *   `replayed` (else `duplicated`: driven again); one that met a nothing-charged latest attempt
 *   got a new attempt (else `unresolved`: the cashier could not try another card);
 * - with the terminal's own record, every attempt journaled approved, declined or cancelled
 *   happened at the terminal under its own wire id (else `lost`: a journal row, and the
 *   notification sent for it, for a transaction that did not happen).
 * Returns how many calls met an `unknown` latest attempt (the table's column).
 */
export function checkAttempts(
  violations: Violations,
  evidence: AttemptEvidence,
  wireIdsOf?: (row: JournalRow) => readonly string[],
): number {
  const where = (reference: string) =>
    `run ${evidence.run} (seed ${evidence.seed}), reference ${reference}`;
  const attemptRow = new Map<number, JournalRow>();
  for (const [reference, list] of evidence.attempts) {
    list.forEach((row, index) => {
      attemptRow.set(row.id, row);
      if (row.attempt !== index + 1) {
        violations.lost++;
        violations.details.push(
          `${where(reference)}: attempts numbered ${list.map((r) => r.attempt).join(', ')}`,
        );
      }
    });
    for (let i = 0; i + 1 < list.length; i++) {
      const earlier = list[i] as JournalRow;
      const later = list[i + 1] as JournalRow;
      if (!NOTHING_CHARGED.has(earlier.state)) {
        violations.duplicated++;
        violations.details.push(
          `${where(reference)}: attempt ${earlier.attempt} is ${earlier.state}, yet attempt ${later.attempt} was started`,
        );
        continue;
      }
      const ended = evidence.events.get(earlier.id)?.at(-1);
      const began = evidence.events.get(later.id)?.[0];
      if (ended === undefined || began === undefined || ended.id > began.id) {
        violations.duplicated++;
        violations.details.push(
          `${where(reference)}: attempt ${later.attempt} began (event ${began?.id ?? 'none'}) before attempt ${earlier.attempt} ended ${earlier.state} (event ${ended?.id ?? 'none'}, after ${
            evidence.events
              .get(earlier.id)
              ?.map((e) => e.state)
              .join(' → ') ?? 'no events'
          })`,
        );
      }
    }
    if (evidence.terminalRecord !== undefined && wireIdsOf !== undefined) {
      for (const row of list) {
        if (!HAPPENED_AT_TERMINAL.has(row.state)) continue;
        const ids = wireIdsOf(row);
        if (!ids.some((id) => evidence.terminalRecord?.has(id) === true)) {
          violations.lost++;
          violations.details.push(
            `${where(reference)}: attempt ${row.attempt} journaled ${row.state} (${row.message ?? ''}), but the terminal never ran its request (wire id ${ids.join('/') || 'none'})`,
          );
        }
      }
    }
  }
  for (const charge of evidence.charges) {
    const list = evidence.attempts.get(charge.reference);
    if (list === undefined) continue;
    const id = evidence.rowOfWireId(charge.requestId);
    const row = id === undefined ? undefined : attemptRow.get(id);
    const latest = list.at(-1);
    if (row === undefined) {
      violations.lost++;
      violations.details.push(
        `${where(charge.reference)}: charged under wire id ${charge.requestId}, which no attempt of it was sent with`,
      );
    } else if (row !== latest || (row.state !== 'approved' && row.state !== 'unknown')) {
      violations.lost++;
      violations.details.push(
        `${where(charge.reference)}: charged by attempt ${row.attempt}, journaled ${row.state} (latest attempt ${latest?.attempt ?? 'none'})`,
      );
    }
  }
  let unknownRetries = 0;
  for (const call of evidence.calls) {
    const { before, attempt } = call;
    if (attempt === undefined) continue;
    const list = evidence.attempts.get(call.reference) ?? [];
    if (!list.some((row) => row.attempt === attempt)) {
      violations.lost++;
      violations.details.push(
        `${where(call.reference)}: an answer named attempt ${attempt}, which the journal does not hold`,
      );
    }
    if (before === undefined) continue;
    if (before.state === 'unknown') unknownRetries++;
    if (NOTHING_CHARGED.has(before.state)) {
      if (attempt <= before.attempt) {
        violations.unresolved++;
        violations.details.push(
          `${where(call.reference)}: attempt ${before.attempt} ended ${before.state}, but the retry got attempt ${attempt}, not a new one`,
        );
      } else if (call.replayed === true) {
        violations.lost++;
        violations.details.push(
          `${where(call.reference)}: the new attempt ${attempt} was answered as replayed`,
        );
      }
      continue;
    }
    // Approved, in flight or unknown: the same attempt again (a new one only if it was settled
    // with nothing charged before the new one began: the pair check above judges that).
    if (attempt < before.attempt) {
      violations.lost++;
      violations.details.push(
        `${where(call.reference)}: a retry meeting attempt ${before.attempt} (${before.state}) got the older attempt ${attempt}`,
      );
    } else if (attempt === before.attempt && call.replayed === false) {
      violations.duplicated++;
      violations.details.push(
        `${where(call.reference)}: a retry meeting attempt ${before.attempt} (${before.state}) was driven again`,
      );
    }
  }
  return unknownRetries;
}

/** One notification the back office got, with the attempt it named. */
export interface AttemptDelivery extends Delivery {
  readonly attempt: number | undefined;
}

/**
 * Invariant (d) with attempts: every attempt journaled approved, declined or cancelled was
 * delivered with its reference, attempt and outcome, and nothing else was; one key per attempt,
 * and never one key for two attempts (the back office would drop the second as a repeat).
 */
export function checkAttemptNotifications(
  violations: Violations,
  evidence: Pick<AttemptEvidence, 'run' | 'seed' | 'attempts'>,
  deliveries: readonly AttemptDelivery[],
): void {
  const where = (reference: string, attempt: number | undefined) =>
    `run ${evidence.run} (seed ${evidence.seed}), reference ${reference} attempt ${attempt ?? '(none given)'}`;
  const keyOf = (reference: string, attempt: number | undefined) => `${reference}#${attempt}`;
  const got = new Map<string, AttemptDelivery[]>();
  for (const delivery of deliveries) {
    if (!evidence.attempts.has(delivery.reference)) continue;
    const key = keyOf(delivery.reference, delivery.attempt);
    got.set(key, [...(got.get(key) ?? []), delivery]);
  }
  const rows = new Map<string, JournalRow>();
  for (const [reference, list] of evidence.attempts)
    for (const row of list) rows.set(keyOf(reference, row.attempt), row);
  for (const [key, row] of rows) {
    if (HAPPENED_AT_TERMINAL.has(row.state) && (got.get(key) ?? []).length === 0) {
      violations.lost++;
      violations.details.push(`${where(row.reference, row.attempt)}: ${row.state}, never notified`);
    }
  }
  // Which attempt each idempotency key was first used for.
  const owners = new Map<string, string>();
  for (const [key, list] of got)
    for (const delivery of list)
      if (!owners.has(delivery.idempotencyKey)) owners.set(delivery.idempotencyKey, key);
  for (const [key, list] of got) {
    const first = list[0] as AttemptDelivery;
    const row = rows.get(key);
    const outcomes = new Set(list.map((d) => d.outcome));
    const keys = new Set(list.map((d) => d.idempotencyKey));
    for (const idempotencyKey of keys) {
      const owner = owners.get(idempotencyKey) as string;
      if (owner !== key) {
        violations.lost++;
        violations.details.push(
          `${where(first.reference, first.attempt)}: notified under the key of ${owner.replace('#', ' attempt ')}`,
        );
      }
    }
    if (row === undefined || !HAPPENED_AT_TERMINAL.has(row.state)) {
      violations.lost++;
      violations.details.push(
        `${where(first.reference, first.attempt)}: notified ${[...outcomes].join('/')}, but journaled ${row?.state ?? 'nothing'}`,
      );
      continue;
    }
    if (outcomes.size !== 1 || !outcomes.has(row.state)) {
      violations.lost++;
      violations.details.push(
        `${where(first.reference, first.attempt)}: notified ${[...outcomes].join('/')}, journaled ${row.state}`,
      );
    }
    if (keys.size > 1) {
      violations.duplicated++;
      violations.details.push(
        `${where(first.reference, first.attempt)}: notified under ${keys.size} different keys`,
      );
    }
  }
}

/**
 * Queues `scenario` (a name of the simulators' table, or declined/cancelled/approved) for the
 * next payment of the simulator whose control port is `port`: `POST /next`, over HTTP.
 */
export async function queueNext(port: number, scenario: string): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${port}/next`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ scenario }),
  });
  if (response.status !== 200)
    throw new Error(`POST /next ${scenario}: HTTP ${response.status} ${await response.text()}`);
}

/** Drops scenarios no payment took (a request a fault kept from the terminal): `DELETE /next`. */
export async function clearNext(port: number): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${port}/next`, { method: 'DELETE' });
  if (response.status !== 200) throw new Error(`DELETE /next: HTTP ${response.status}`);
}

/** Scenarios a first attempt is refused with: nothing charged, so the reference may be retried. */
export const REFUSALS = ['declined', 'cancelled', 'busy'] as const;

/**
 * The wire ids the journal at `path` handed out for each attempt row (its `attempts` table), read
 * through a read-only handle of its own; `close` when done.
 */
export function wireIdsAt(path: string): {
  rowOf: (wireId: string) => number | undefined;
  idsOf: (row: JournalRow) => string[];
  close: () => void;
} {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  const rowOf = db.prepare<[number], { transaction_id: number }>(
    'SELECT transaction_id FROM attempts WHERE id = ?',
  );
  const idsOf = db.prepare<[number], { id: number }>(
    'SELECT id FROM attempts WHERE transaction_id = ? ORDER BY id',
  );
  return {
    rowOf: (wireId) =>
      /^\d+$/.test(wireId) ? rowOf.get(Number(wireId))?.transaction_id : undefined,
    idsOf: (row) => idsOf.all(row.id).map((r) => String(r.id)),
    close: () => db.close(),
  };
}

/**
 * The POS's retry of a reference with the same amount, judged by what its latest attempt was
 * right before (`before`): approved, in flight or `unknown` → the same result, `replayed` (else
 * `duplicated`: driven again); declined, cancelled or failed → a new attempt (else `unresolved`:
 * the cashier could not try again). ARCHITECTURE.md invariant 1.
 */
export function checkRetry(
  violations: Violations,
  where: string,
  before: Pick<JournalRow, 'attempt' | 'state'> | undefined,
  again: { readonly replayed?: boolean | undefined; readonly attempt?: number | undefined },
): void {
  if (before !== undefined && NOTHING_CHARGED.has(before.state)) {
    if (
      again.replayed !== false ||
      (again.attempt !== undefined && again.attempt !== before.attempt + 1)
    ) {
      violations.unresolved++;
      violations.details.push(
        `${where}: a retry after attempt ${before.attempt} ended ${before.state} got ${again.replayed === true ? 'it replayed' : `attempt ${again.attempt ?? '?'}`}, not a new attempt`,
      );
    }
  } else if (again.replayed !== true) {
    violations.duplicated++;
    violations.details.push(`${where}: a retry was driven again`);
  }
}
