/**
 * SEMI raw-TCP framer throughput (MB/s) on 1-byte, 7-byte and 64 KiB chunks, against the
 * baseline of JSON.parse on the same objects already split, measured in the same run.
 * Prints a table and writes bench/results/semi-framer.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { JsonObjectFramer } from '../src/protocols/semi/framer.js';

const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 2000);
const ROUNDS = 5;

const objects = Array.from({ length: OBJECTS }, (_, i) =>
  JSON.stringify({
    STATE: '0',
    EPI: '2501000001',
    MER_TXN_ID: `ORDER-${i}`,
    TRAN_TYPE: 'SALE',
    CARD_TYPE: 'VISA',
    TXN_ID: String(100000 + i),
    AMOUNT: String(100 + i),
    TOTAL_AMOUNT: String(100 + i),
    MASKED_PAN: '4111 **** **** 1111',
    CODE: 'A1B2C3',
    AUTH_RSP_TEXT: 'APPROVED "with quotes" and {braces}',
    DATE: '23112026 10:00:00',
  }),
);
const stream = new TextEncoder().encode(objects.join(''));
const megabytes = stream.length / 1e6;

function best(run: () => void): number {
  let fastest = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const start = performance.now();
    run();
    fastest = Math.min(fastest, performance.now() - start);
  }
  return fastest;
}

function chunks(size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < stream.length; at += size) out.push(stream.subarray(at, at + size));
  return out;
}

const baselineMs = best(() => {
  for (const text of objects) JSON.parse(text);
});
const baseline = megabytes / (baselineMs / 1000);
const rows: { chunk: string; mbPerSecond: number; ratio: number }[] = [];
for (const [name, size] of [
  ['1 B', 1],
  ['7 B', 7],
  ['64 KiB', 64 * 1024],
] as const) {
  const pieces = chunks(size);
  const ms = best(() => {
    const framer = new JsonObjectFramer();
    let frames = 0;
    for (const piece of pieces) frames += framer.push(piece).length;
    if (frames !== OBJECTS) throw new Error(`framed ${frames} of ${OBJECTS}`);
  });
  const mbPerSecond = megabytes / (ms / 1000);
  rows.push({ chunk: name, mbPerSecond, ratio: mbPerSecond / baseline });
}

console.log(`\nSEMI framer, ${OBJECTS} objects (${megabytes.toFixed(2)} MB), best of ${ROUNDS}\n`);
console.log('input                               MB/s   ratio to baseline');
console.log(
  `${'JSON.parse, pre-split (baseline)'.padEnd(33)} ${baseline.toFixed(1).padStart(7)}   1.00`,
);
for (const row of rows) {
  console.log(
    `${`framer, ${row.chunk} chunks`.padEnd(33)} ${row.mbPerSecond.toFixed(1).padStart(7)}   ${row.ratio.toFixed(2)}`,
  );
}
mkdirSync('bench/results', { recursive: true });
writeFileSync(
  'bench/results/semi-framer.json',
  `${JSON.stringify({ objects: OBJECTS, megabytes, baseline, rows }, null, 2)}\n`,
);
