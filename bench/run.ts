/**
 * `npm run bench`: every bench in turn, each in a process of its own (`node --import tsx`), then
 * the report (bench/report.ts). A failing bench does not stop the others; the run exits 1 when
 * any failed, after the report of those that ran. `npm run bench -- gateway codecs` runs only
 * those (their earlier results of the others stay in the report); a full run first clears the
 * earlier results, so that the report is of one run.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { BENCH_ORDER } from './report.js';
import { rawDir } from './results.js';

const path = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const asked = process.argv.slice(2);
const unknown = asked.filter((name) => !(BENCH_ORDER as readonly string[]).includes(name));
if (unknown.length > 0) {
  console.error(
    `bench: no such bench: ${unknown.join(', ')} (there are ${BENCH_ORDER.join(', ')})`,
  );
  process.exit(1);
}
const benches = asked.length === 0 ? [...BENCH_ORDER] : asked;
if (asked.length === 0) rmSync(rawDir(), { recursive: true, force: true });

const failed: string[] = [];
const took: string[] = [];
for (const name of benches) {
  console.log(`\n=== bench/${name}.bench.ts ===`);
  const started = performance.now();
  const run = spawnSync(process.execPath, ['--import', 'tsx', path(`./${name}.bench.ts`)], {
    stdio: 'inherit',
  });
  const seconds = (performance.now() - started) / 1000;
  took.push(`${name} ${seconds.toFixed(0)} s`);
  if (run.status !== 0) {
    failed.push(name);
    console.error(`bench ${name} failed (exit ${String(run.status ?? run.signal)})`);
  }
}
console.log(`\n=== bench/report.ts ===`);
const report = spawnSync(process.execPath, ['--import', 'tsx', path('./report.ts')], {
  stdio: 'inherit',
});
console.log(`\ntimes: ${took.join(', ')}`);
if (failed.length > 0) console.error(`failed: ${failed.join(', ')}`);
process.exit(failed.length > 0 || report.status !== 0 ? 1 : 0);
