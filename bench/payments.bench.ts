/**
 * 1,000 sequential payments against the PAYable simulator (zero added latency), measured as
 * (a) raw driver calls — the baseline — and (b) the same through TransactionService with the
 * SQLite journal (WAL, synchronous=FULL). Prints a table and writes bench/results/payments.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TransactionService } from '../src/core/transaction-service.js';
import { PayableDriver } from '../src/drivers/payable.js';
import { SqliteJournal } from '../src/journal/sqlite-journal.js';
import { PayableSimulator } from '../src/simulators/payable/simulator.js';
import { interleave, printTable, ratio as ratioOf, summarise } from './stats.js';

const PAYMENTS = Number(process.env.BENCH_PAYMENTS ?? 1000);
const WARMUP = 50;
const AMOUNT = { minor: 2000, currency: 'LKR' };

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
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/payments.json',
    `${JSON.stringify({ payments: PAYMENTS, node: process.version, rawDriver: a, serviceWithJournal: b, ratio }, null, 2)}\n`,
  );
} finally {
  await simulator.stop();
  rmSync(dir, { recursive: true, force: true });
}
