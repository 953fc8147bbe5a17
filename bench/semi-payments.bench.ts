/**
 * Sequential SEMI sales against the SEMI simulator (zero added latency): (a) a bare client on one
 * persistent TCP socket — the floor: the same codec and framer, no driver, no journal — then
 * (b) the driver over TCP, which opens one link per request, (c) the driver over WebSocket, and
 * (d) the driver through TransactionService with the SQLite journal. Interleaved; every figure is
 * a ratio to (a) measured in the same run. Writes its results (bench/results.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { TransactionService } from '../src/core/transaction-service.js';
import { SemiDriver } from '../src/drivers/semi.js';
import { SqliteJournal } from '../src/journal/sqlite-journal.js';
import { decodeResponse, encodeRequest } from '../src/protocols/semi/codec.js';
import { JsonObjectFramer } from '../src/protocols/semi/framer.js';
import { SemiSimulator } from '../src/simulators/semi/simulator.js';
import { compare, figure, writeResult } from './results.js';
import { interleave, printTable, ratio, summarise } from './stats.js';

const PAYMENTS = Number(process.env.BENCH_PAYMENTS ?? 500);
const WARMUP = 50;
const AMOUNT = { minor: 2000, currency: 'USD' };

const started = performance.now();
const simulator = await new SemiSimulator({ wsPort: 0, tcpPort: 0, controlPort: 0 }).start();
const dir = mkdtempSync(join(tmpdir(), 'ecr-bridge-bench-'));
try {
  const tcpUrl = new URL(simulator.tcpUrl as string);
  // (a) the floor: one socket, the protocol layer only.
  const socket = createConnection({ host: tcpUrl.hostname, port: Number(tcpUrl.port) });
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once('connect', resolve));
  const framer = new JsonObjectFramer();
  let waiting: ((text: string) => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    for (const event of framer.push(chunk)) if (event.type === 'frame') waiting?.(event.text);
  });
  const bare = (i: number): Promise<unknown> =>
    new Promise((resolve) => {
      waiting = (text) => resolve(decodeResponse(text));
      socket.write(encodeRequest({ code: 'sale', amountMinor: 2000, merTxnId: `BARE-${i}` }));
    });

  const tcp = new SemiDriver({ url: simulator.tcpUrl as string });
  const ws = new SemiDriver({ url: simulator.wsUrl as string });
  const journal = new SqliteJournal({ path: join(dir, 'ecr-bridge.db') });
  const service = new TransactionService({ journal });
  service.addTerminal('bench', new SemiDriver({ url: simulator.tcpUrl as string }));
  let wireId = 1;
  const viaDriver = (driver: SemiDriver, prefix: string) => (): Promise<unknown> =>
    driver.execute({
      kind: 'sale',
      reference: `${prefix}-${wireId}`,
      amount: AMOUNT,
      wireId: wireId++,
    });
  const viaService = (i: number): Promise<unknown> =>
    service.pay('bench', { kind: 'sale', reference: `SVC-${i}`, amount: AMOUNT });
  const paths = [bare, viaDriver(tcp, 'TCP'), viaDriver(ws, 'WS'), viaService];
  await interleave(
    paths.map((run) => (i: number) => run(-1 - i)),
    WARMUP,
  );
  const samples = await interleave(paths, PAYMENTS);
  socket.destroy();
  await Promise.all([tcp.close(), ws.close(), service.close()]);
  journal.close();

  const [a, b, c, d] = samples.map((s) => summarise(s));
  const names = [
    '(a) bare client, one TCP socket',
    '(b) driver, TCP, link per request',
    '(c) driver, WebSocket, link per request',
    '(d) TransactionService + journal, TCP',
  ];
  console.log(`\n${PAYMENTS} sequential SEMI sales, simulator on 127.0.0.1, zero added latency\n`);
  const summaries = [a, b, c, d].map((s, i) => [names[i] as string, s!] as const);
  printTable(summaries);
  console.log(
    `charges made by the simulator: ${simulator.ledger.count} (expected ${4 * (PAYMENTS + WARMUP)})`,
  );
  const bareName = 'bare client, one TCP socket';
  writeResult({
    bench: 'semi-payments',
    title: `SEMI: ${PAYMENTS} sequential sales against a bare client`,
    seconds: (performance.now() - started) / 1000,
    parameters: { payments: PAYMENTS, warmup: WARMUP, terminal: 'SEMI simulator, zero delay' },
    figures: summaries.map(([name, s]) => figure(`${name.slice(4)}: latency p50`, s.p50, 'ms')),
    ratios: summaries
      .slice(1)
      .map(([name, s]) =>
        compare('latency p50', 'ms', 'lower', [name.slice(4), s.p50], [bareName, a!.p50]),
      ),
    details: {
      paths: Object.fromEntries(summaries),
      ratioToBare: Object.fromEntries(summaries.map(([n, s]) => [n, ratio(s, a!)])),
      charges: simulator.ledger.count,
    },
  });
} finally {
  await simulator.stop();
  rmSync(dir, { recursive: true, force: true });
}
