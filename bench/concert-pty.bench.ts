/**
 * Concert V2 over a real pseudo-terminal pair (socat): (a) the raw byte round trip of the same
 * pty — one byte written at the POS end, echoed by the far end — the floor; (b) one whole payment
 * (ENQ/ACK, request frame, ACK, EOT, then the answer the same way back) through the driver
 * against the simulator at zero delay. Interleaved; the figure is the ratio b/a, measured in the
 * same run. Writes its results (bench/results.ts).
 */
import { performance } from 'node:perf_hooks';
import { ConcertDriver } from '../src/drivers/concert.js';
import { ConcertSimulator } from '../src/simulators/concert/simulator.js';
import { openPtyPair } from '../src/transports/pty.js';
import { openSerial } from '../src/transports/serial.js';
import { compare, figure, writeResult } from './results.js';
import { interleave, printTable, ratio, summarise } from './stats.js';

const PAYMENTS = Number(process.env.BENCH_PAYMENTS ?? 300);
const WARMUP = 20;

const started = performance.now();
// (a) the floor: a pty pair whose far end echoes every byte.
const pair = await openPtyPair();
const pos = await openSerial({ path: pair.posPath });
const far = await openSerial({ path: pair.terminalPath });
far.onData((chunk) => void far.write(chunk));
let echoed: (() => void) | undefined;
pos.onData(() => echoed?.());
const rawRoundTrip = (): Promise<unknown> =>
  new Promise<void>((resolve) => {
    echoed = resolve;
    void pos.write(Uint8Array.of(0x05));
  });

// (b) one payment through the driver, the simulator on its own pty pair.
const simulator = await new ConcertSimulator({ pty: true }).start();
const driver = new ConcertDriver({ url: `serial://${simulator.device}` });
let wireId = 1;
const payment = (): Promise<unknown> =>
  driver.execute({
    kind: 'sale',
    reference: `B-${wireId}`,
    amount: { minor: 2000, currency: 'EUR' },
    wireId: wireId++,
  });
try {
  await interleave([rawRoundTrip, payment], WARMUP);
  const [rawSamples, paySamples] = await interleave([rawRoundTrip, payment], PAYMENTS);
  const a = summarise(rawSamples as number[]);
  const b = summarise(paySamples as number[]);
  console.log(`\n${PAYMENTS} Concert payments over a pty pair (socat), simulator at zero delay\n`);
  printTable([
    ['(a) raw byte round trip, same pty kind', a],
    ['(b) payment: driver ↔ simulator', b],
  ]);
  console.log(
    `charges made by the simulator: ${simulator.ledger.count} (expected ${PAYMENTS + WARMUP})`,
  );
  const rawName = 'one-byte round trip, same pty kind';
  const payName = 'Concert payment, driver ↔ simulator';
  writeResult({
    bench: 'concert-pty',
    title: `Concert: ${PAYMENTS} payments over a pty against a one-byte round trip`,
    seconds: (performance.now() - started) / 1000,
    parameters: { payments: PAYMENTS, warmup: WARMUP, link: 'socat pty pair' },
    figures: [
      figure('pty: one-byte round trip p50', a.p50, 'ms'),
      figure('Concert payment: latency p50', b.p50, 'ms'),
      figure('Concert payment: latency p99', b.p99, 'ms'),
    ],
    ratios: [
      compare('latency p50', 'ms', 'lower', [payName, b.p50], [rawName, a.p50]),
      compare('latency p99', 'ms', 'lower', [payName, b.p99], [rawName, a.p99]),
    ],
    details: { rawRoundTrip: a, payment: b, ratio: ratio(b, a), charges: simulator.ledger.count },
  });
} finally {
  await Promise.all([pos.close(), far.close(), driver.close()]);
  await Promise.all([pair.close(), simulator.stop()]);
}
