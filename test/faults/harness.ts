import { expect, type TestContext } from 'vitest';
import { redactPans } from '../../src/core/pan.js';

/**
 * The invariant suite's shared pieces: a seeded random source, how many runs a scenario makes,
 * and the row every scenario reports. The summary reporter (test/summary-reporter.ts) prints the
 * rows as one table: scenario × runs × lost × duplicated × unresolved, and for the scenarios that
 * retry a declined or busy reference, how many attempts they made and how many retries met an
 * `unknown` latest attempt (a dash for the other scenarios: they do not count them).
 *
 * A scenario is one `it` that makes `runs(…)` runs, each with its own seed (`seedFor`), counts
 * violations of the four invariants over all of them, and ends with `report(…)`:
 * (a) no reference charged twice (`duplicated`, from the simulators' ledgers);
 * (b) every charge in a ledger is in the journal as approved or `unknown` (else `lost`);
 * (c) every `unknown` on a protocol with a status query ends resolved (else `unresolved`);
 * (d) no notification lost, none for a transaction that did not happen (counted as `lost`).
 */

declare module '@vitest/runner' {
  interface TaskMeta {
    faults?: FaultRow;
  }
}

export interface FaultRow {
  readonly scenario: string;
  readonly runs: number;
  /** Payments attempted over all runs (context for the table; not an invariant). */
  readonly payments: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly unresolved: number;
  /**
   * Retry scenarios only: journal attempts (rows) under the references they retried, over all
   * runs. Undefined elsewhere (printed as a dash: not counted, not zero).
   */
  readonly attempts?: number;
  /**
   * Retry scenarios only: POS retries sent while the reference's latest attempt was `unknown`
   * (each must replay it, never start a new attempt).
   */
  readonly unknownRetries?: number;
  /** The base seed: `ECR_BRIDGE_FAULT_SEED=<seed>` repeats the same runs. */
  readonly seed: number;
}

/** `long` under `npm run test:faults`; `short` (a few runs per scenario) inside `npm test`. */
export const FAULT_MODE: 'short' | 'long' =
  process.env.ECR_BRIDGE_FAULTS === 'long' ? 'long' : 'short';

const DEFAULT_SEED = 20_261_124;

/** The base seed: from `ECR_BRIDGE_FAULT_SEED`, else a fixed one (so every run is reproducible). */
export const FAULT_SEED: number = (() => {
  const raw = process.env.ECR_BRIDGE_FAULT_SEED;
  if (raw === undefined || raw === '') return DEFAULT_SEED;
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new Error(`ECR_BRIDGE_FAULT_SEED: must be a whole number ≥ 0, got "${raw}"`);
  return seed;
})();

/** How many runs a scenario makes in the current mode. */
export function runs(counts: { short: number; long: number }): number {
  return FAULT_MODE === 'long' ? counts.long : counts.short;
}

/** The seed of run `index` of a scenario: distinct per scenario name, stable across releases. */
export function seedFor(scenario: string, index: number): number {
  let hash = FAULT_SEED >>> 0;
  for (let i = 0; i < scenario.length; i++)
    hash = Math.imul(hash ^ scenario.charCodeAt(i), 0x01000193);
  return (hash + Math.imul(index, 0x9e3779b1)) >>> 0;
}

/**
 * With `ECR_BRIDGE_FAULT_TRACE=1`, one line on stdout about a run (a faulted payment's outcome,
 * a step taken): card numbers masked, as in every log of the project.
 */
export function trace(run: number, seed: number, ...parts: readonly unknown[]): void {
  if (process.env.ECR_BRIDGE_FAULT_TRACE !== '1') return;
  const text = parts.map((part) => String(part)).join(' ');
  process.stdout.write(`run ${run} (seed ${seed}): ${redactPans(text)}\n`);
}

/** A small seeded generator (mulberry32): the same seed, the same faults. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }

  /** A whole number in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(values: readonly T[]): T {
    if (values.length === 0) throw new Error('Rng.pick: no values');
    return values[Math.floor(this.next() * values.length)] as T;
  }

  /** Letters only (the after-suite card-data scan never mistakes them for a card number). */
  letters(length: number): string {
    let out = '';
    for (let i = 0; i < length; i++) out += String.fromCharCode(65 + this.int(0, 25));
    return out;
  }
}

export interface Violations {
  lost: number;
  duplicated: number;
  unresolved: number;
  /** One line per violation: run, seed, reference and what was wrong. Printed on failure. */
  details: string[];
}

export function noViolations(): Violations {
  return { lost: 0, duplicated: 0, unresolved: 0, details: [] };
}

/**
 * Records the scenario's row for the table and fails the test unless every count is zero. The
 * failure lists each violation with its run's seed.
 */
export function report(
  context: TestContext,
  row: Omit<FaultRow, 'seed' | 'lost' | 'duplicated' | 'unresolved'>,
  violations: Violations,
): void {
  context.task.meta.faults = {
    ...row,
    lost: violations.lost,
    duplicated: violations.duplicated,
    unresolved: violations.unresolved,
    seed: FAULT_SEED,
  };
  expect(
    violations.details,
    `${row.scenario}: invariants broken (ECR_BRIDGE_FAULT_SEED=${FAULT_SEED} repeats it)`,
  ).toEqual([]);
  expect({
    lost: violations.lost,
    duplicated: violations.duplicated,
    unresolved: violations.unresolved,
  }).toEqual({ lost: 0, duplicated: 0, unresolved: 0 });
}

/** The table the reporter prints, one line per scenario plus a total. */
export function faultTable(rows: readonly FaultRow[]): string {
  const header = [
    'scenario',
    'runs',
    'payments',
    'lost',
    'duplicated',
    'unresolved',
    'attempts',
    'unknown retries',
  ];
  const optional = (value: number | undefined): string =>
    value === undefined ? '-' : String(value);
  const body = rows.map((r) => [
    r.scenario,
    String(r.runs),
    String(r.payments),
    String(r.lost),
    String(r.duplicated),
    String(r.unresolved),
    optional(r.attempts),
    optional(r.unknownRetries),
  ]);
  const sum = (pick: (r: FaultRow) => number): string =>
    String(rows.reduce((total, r) => total + pick(r), 0));
  // The optional columns add up the scenarios that count them; a dash when none does.
  const sumOptional = (pick: (r: FaultRow) => number | undefined): string => {
    const counted = rows.map(pick).filter((v): v is number => v !== undefined);
    return counted.length === 0 ? '-' : String(counted.reduce((a, b) => a + b, 0));
  };
  body.push([
    'total',
    sum((r) => r.runs),
    sum((r) => r.payments),
    sum((r) => r.lost),
    sum((r) => r.duplicated),
    sum((r) => r.unresolved),
    sumOptional((r) => r.attempts),
    sumOptional((r) => r.unknownRetries),
  ]);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...body.map((line) => line[i]?.length ?? 0)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ');
  const seeds = [...new Set(rows.map((r) => r.seed))].join(', ');
  return [
    `Fault runs (seed ${seeds}):`,
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.slice(0, -1).map(line),
    line(widths.map((w) => '-'.repeat(w))),
    line(body[body.length - 1] ?? []),
  ].join('\n');
}
