/**
 * The one JSON shape every bench writes (bench/results/raw/<bench>.json, or the folder in
 * BENCH_RESULTS_DIR) and bench/report.ts gathers: the bench's parameters, its figures with their
 * units, and each ratio beside the baseline figure it divides by, measured in the same run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the benches write and the report reads, unless BENCH_RESULTS_DIR says otherwise. */
export const DEFAULT_RAW_DIR = fileURLToPath(new URL('./results/raw', import.meta.url));
export const RESULT_FORMAT = 'ecr-bridge-bench/1';

export type Better = 'lower' | 'higher';

export interface Figure {
  /** What was measured, on what: `gateway: latency p50`. */
  readonly name: string;
  readonly value: number;
  /** `ms`, `sales/s`, `KiB`, `MB/s`, `messages/s`, `s`, `terminals`, … */
  readonly unit: string;
}

/** A figure against its baseline: `ratio` = value / baseline.value. */
export interface Ratio {
  /** The measure compared: `latency p50`. */
  readonly measure: string;
  readonly unit: string;
  readonly subject: { readonly name: string; readonly value: number };
  readonly baseline: { readonly name: string; readonly value: number };
  readonly ratio: number;
  /** Which way is good for the subject: a ratio above 1 is worse when `lower`. */
  readonly better: Better;
}

export interface BenchResult {
  readonly format: typeof RESULT_FORMAT;
  /** The file's name: `gateway` for bench/gateway.bench.ts. */
  readonly bench: string;
  readonly title: string;
  readonly finishedAt: string;
  readonly node: string;
  /** The machine's 1, 5 and 15-minute load averages as the bench ended (others' work shows). */
  readonly loadavg?: readonly number[];
  readonly seconds: number;
  readonly parameters: Readonly<Record<string, string | number | boolean>>;
  readonly figures: readonly Figure[];
  readonly ratios: readonly Ratio[];
  /** Anything else the bench prints (per-sample tables, CPU, exit codes); free-form. */
  readonly details?: unknown;
}

export function figure(name: string, value: number, unit: string): Figure {
  return { name, value, unit };
}

/** `subject` against `baseline` on one measure. */
export function compare(
  measure: string,
  unit: string,
  better: Better,
  subject: readonly [name: string, value: number],
  baseline: readonly [name: string, value: number],
): Ratio {
  return {
    measure,
    unit,
    subject: { name: subject[0], value: subject[1] },
    baseline: { name: baseline[0], value: baseline[1] },
    ratio: subject[1] / baseline[1],
    better,
  };
}

/** The folder the benches write into. */
export function rawDir(): string {
  const dir = process.env.BENCH_RESULTS_DIR;
  return dir === undefined || dir === '' ? DEFAULT_RAW_DIR : dir;
}

/** Writes `<rawDir>/<bench>.json`; returns its path. */
export function writeResult(
  result: Omit<BenchResult, 'format' | 'finishedAt' | 'node' | 'loadavg'>,
): string {
  const full: BenchResult = {
    format: RESULT_FORMAT,
    finishedAt: new Date().toISOString(),
    node: process.version,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    ...result,
  };
  const dir = rawDir();
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${result.bench}.json`);
  writeFileSync(path, `${JSON.stringify(full, null, 2)}\n`);
  console.log(`results: ${path}`);
  return path;
}
