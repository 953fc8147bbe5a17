/**
 * 1,000 sequential payments against the PAYable simulator (zero added latency), measured as
 * (a) raw driver calls — the baseline — and (b) the same through TransactionService with the
 * SQLite journal (WAL, synchronous=FULL). Prints a table and writes its results (bench/results.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { TransactionService } from '../src/core/transaction-service.js';
import { PayableDriver } from '../src/drivers/payable.js';
import { SqliteJournal } from '../src/journal/sqlite-journal.js';
import { PayableSimulator } from '../src/simulators/payable/simulator.js';
import { compare, figure, writeResult } from './results.js';
import { interleave, printTable, ratio as ratioOf, summarise } from './stats.js';

const PAYMENTS = Number(process.env.BENCH_PAYMENTS ?? 1000);
const WARMUP = 50;
const AMOUNT = { minor: 2000, currency: 'LKR' };

const started = performance.now();
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
  // Interleaved, one of each in turn, so that both paths see the same machine noise.
  const [rawSamples, serviceSamples] = await interleave([payRaw, payService], PAYMENTS);
  await raw.close();
  await service.close();
  journal.close();

  const a = summarise(rawSamples as number[]);
  const b = summarise(serviceSamples as number[]);
  console.log(
    `\n${PAYMENTS} sequential payments, PAYable simulator on 127.0.0.1, zero added latency\n`,
  );
  printTable([
    ['(a) raw driver', a],
    ['(b) TransactionService + journal', b],
  ]);
  const ratio = ratioOf(b, a);
  console.log(
    `charges made by the simulator: ${simulator.ledger.count} (expected ${2 * (PAYMENTS + WARMUP)})`,
  );
  const driverName = 'raw PAYable driver';
  const serviceName = 'TransactionService + journal';
  writeResult({
    bench: 'payments',
    title: `PAYable: ${PAYMENTS} sequential payments, service + journal against the raw driver`,
    seconds: (performance.now() - started) / 1000,
    parameters: { payments: PAYMENTS, warmup: WARMUP, terminal: 'PAYable simulator, zero delay' },
    figures: [
      figure('raw driver: latency p50', a.p50, 'ms'),
      figure('service + journal: latency p50', b.p50, 'ms'),
      figure('service + journal: latency p99', b.p99, 'ms'),
    ],
    ratios: [
      compare('latency p50', 'ms', 'lower', [serviceName, b.p50], [driverName, a.p50]),
      compare('latency p99', 'ms', 'lower', [serviceName, b.p99], [driverName, a.p99]),
    ],
    details: { rawDriver: a, serviceWithJournal: b, ratio, charges: simulator.ledger.count },
  });
} finally {
  await simulator.stop();
  rmSync(dir, { recursive: true, force: true });
}
