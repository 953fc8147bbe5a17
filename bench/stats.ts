/** Latency statistics, the table every payments bench prints, and bench settings. */
import { performance } from 'node:perf_hooks';

export interface Summary {
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

export function summarise(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: samples.reduce((a, b) => a + b, 0) / samples.length,
  };
}

/** Milliseconds one call of `run` takes. */
export async function timeOne(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

/**
 * Runs the paths interleaved, one call of each in turn, so that all see the same machine noise
 * (fsync latency on a shared disk varies from minute to minute); returns the samples per path.
 */
export async function interleave(
  paths: readonly ((i: number) => Promise<unknown>)[],
  count: number,
): Promise<number[][]> {
  const samples = paths.map(() => [] as number[]);
  for (let i = 0; i < count; i++) {
    for (const [p, run] of paths.entries()) samples[p]?.push(await timeOne(() => run(i)));
  }
  return samples;
}

/** Prints `name p50 p99 mean` rows, then each row's ratio to the first (the baseline). */
export function printTable(rows: readonly (readonly [string, Summary])[]): void {
  const line = (name: string, values: Summary, digits: number) =>
    console.log(
      `${name.padEnd(40)} ${values.p50.toFixed(digits).padStart(7)}  ${values.p99.toFixed(digits).padStart(7)}  ${values.mean.toFixed(digits).padStart(8)}`,
    );
  console.log(`${'path'.padEnd(40)}  p50 ms   p99 ms   mean ms`);
  for (const [name, s] of rows) line(name, s, 3);
  const [, base] = rows[0] as readonly [string, Summary];
  for (const [name, s] of rows.slice(1)) {
    line(`ratio ${name.slice(0, 3)}/${rows[0]?.[0].slice(0, 3) ?? ''}`, ratio(s, base), 2);
  }
}

export function ratio(s: Summary, base: Summary): Summary {
  return { p50: s.p50 / base.p50, p99: s.p99 / base.p99, mean: s.mean / base.mean };
}

/** A whole-number setting from the environment (`BENCH_…`), or `fallback`; exits 1 when out of range. */
export function envCount(name: string, fallback: number, min: number, max: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`${name} must be a whole number from ${min} to ${max} (got ${text})`);
    process.exit(1);
  }
  return value;
}
