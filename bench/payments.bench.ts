/**
 * 1,000 sequential payments against the PAYable simulator (zero added latency), measured as
 * (a) raw driver calls — the baseline — and (b) the same through TransactionService with the
 * SQLite journal (WAL, synchronous=FULL). Prints a table and writes bench/results/payments.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { TransactionService } from '../src/core/transaction-service.js';
import { PayableDriver } from '../src/drivers/payable.js';
import { SqliteJournal } from '../src/journal/sqlite-journal.js';
import { PayableSimulator } from '../src/simulators/payable/simulator.js';

const PAYMENTS = Number(process.env.BENCH_PAYMENTS ?? 1000);
const WARMUP = 50;
const AMOUNT = { minor: 2000, currency: 'LKR' };

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function summarise(samples: number[]): { p50: number; p99: number; mean: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: samples.reduce((a, b) => a + b, 0) / samples.length,
  };
}

async function measure(run: (i: number) => Promise<unknown>, count: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await run(i);
    samples.push(performance.now() - start);
  }
  return samples;
}

const simulator = await new PayableSimulator({ port: 0, statusPort: 0, token: 'bench' }).start();
const dir = mkdtempSync(join(tmpdir(), 'ecr-bridge-bench-'));
try {
  // (a) baseline: the driver alone, one connection, no journal.
  const raw = new PayableDriver({ url: simulator.url, token: 'bench', posName: 'BENCH-RAW' });
  // (b) the same payments through the service and the journal, on a connection of its own.
  const journal = new SqliteJournal({ path: join(dir, 'ecr-bridge.db') });
  const service = new TransactionService({ journal });
  service.addTerminal(
    'bench',
    new PayableDriver({ url: simulator.url, token: 'bench', posName: 'BENCH-SVC' }),
  );
  let wireId = 1;
  const payRaw = (): Promise<unknown> =>
    raw.execute({ kind: 'sale', reference: `RAW-${wireId}`, amount: AMOUNT, wireId: wireId++ });
  const payService = (i: number): Promise<unknown> =>
    service.pay('bench', { kind: 'sale', reference: `PAY-${i}`, amount: AMOUNT });
  for (let i = 0; i < WARMUP; i++) {
    await payRaw();
    await payService(-1 - i);
  }
  // Interleaved, one of each in turn, so that both paths see the same machine noise (fsync
  // latency on a shared disk varies from minute to minute).
  const rawSamples: number[] = [];
  const serviceSamples: number[] = [];
  for (let i = 0; i < PAYMENTS; i++) {
    rawSamples.push(...(await measure(payRaw, 1)));
    serviceSamples.push(...(await measure(() => payService(i), 1)));
  }
  await raw.close();
  await service.close();
  journal.close();

  const a = summarise(rawSamples);
  const b = summarise(serviceSamples);
  const rows = [
    ['(a) raw driver', a],
    ['(b) TransactionService + journal', b],
  ] as const;
  console.log(
    `\n${PAYMENTS} sequential payments, PAYable simulator on 127.0.0.1, zero added latency\n`,
  );
  console.log('path                                 p50 ms   p99 ms   mean ms');
  for (const [name, s] of rows) {
    console.log(
      `${name.padEnd(36)} ${s.p50.toFixed(3).padStart(7)}  ${s.p99.toFixed(3).padStart(7)}  ${s.mean.toFixed(3).padStart(8)}`,
    );
  }
  const ratio = { p50: b.p50 / a.p50, p99: b.p99 / a.p99, mean: b.mean / a.mean };
  console.log(
    `${'ratio b/a'.padEnd(36)} ${ratio.p50.toFixed(2).padStart(7)}  ${ratio.p99.toFixed(2).padStart(7)}  ${ratio.mean.toFixed(2).padStart(8)}`,
  );
  console.log(
    `charges made by the simulator: ${simulator.ledger.count} (expected ${2 * (PAYMENTS + WARMUP)})`,
  );
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/payments.json',
    `${JSON.stringify({ payments: PAYMENTS, node: process.version, rawDriver: a, serviceWithJournal: b, ratio }, null, 2)}\n`,
  );
} finally {
  await simulator.stop();
  rmSync(dir, { recursive: true, force: true });
}
