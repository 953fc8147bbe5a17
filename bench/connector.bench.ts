/**
 * The connector's HTTP API against its own floor. The terminal is the SEMI simulator on TCP at
 * zero delay, the cheapest simulator to reach (one JSON object each way; Concert adds ENQ/ACK/EOT
 * round trips per message). (a) the baseline: TransactionService.pay in-process with a SQLite
 * journal of its own; (b) the same sales through `ecr-bridge connector start` run as a real child
 * process (desktop flavour, Basic Auth, one keep-alive HTTP connection). Interleaved; latency and
 * payments per second as ratios b/a. The connector then goes on alone to BENCH_CONNECTOR_PAYMENTS
 * payments in all, its RSS read from /proc/<pid>/status every 1,000, so growth shows.
 * Prints a table and writes its results (bench/results.ts).
 */
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseConfigText, type ConnectorConfig } from '../src/connector/config.js';
import { TransactionService } from '../src/core/transaction-service.js';
import { SemiDriver } from '../src/drivers/semi.js';
import { SqliteJournal } from '../src/journal/sqlite-journal.js';
import { SemiSimulator } from '../src/simulators/semi/simulator.js';
import { childrenOf, memoryOf, startChild, stopChild, type RunningChild } from './children.js';
import { compare, figure, writeResult } from './results.js';
import { interleave, printTable, ratio, summarise, timeOne } from './stats.js';

/** Connector payments in all, warm-up and interleaved ones included. */
const TOTAL = Number(process.env.BENCH_CONNECTOR_PAYMENTS ?? 10_000);
const WARMUP = 50;
/** Interleaved with the baseline; the rest of TOTAL runs on the connector alone. */
const INTERLEAVED = Math.max(1, Math.min(1_000, TOTAL - WARMUP));
/** RSS (and the throughput of the block just ended) is read every this many connector payments. */
const RSS_EVERY = 1_000;
const AMOUNT = { minor: 2000, currency: 'USD' };
const BIN = fileURLToPath(new URL('../bin/ecr-bridge.js', import.meta.url));

interface RssSample {
  readonly payments: number;
  readonly rssMiB: number;
  readonly hwmMiB: number;
  /** Payments per second since the previous sample, once the connector runs alone (client clock). */
  readonly blockPerSecond?: number;
}

/** VmRSS and VmHWM of a process, in MiB. */
function memoryMiB(pid: number): { rssMiB: number; hwmMiB: number } {
  const { rssKiB, hwmKiB } = memoryOf(pid);
  return { rssMiB: rssKiB / 1024, hwmMiB: hwmKiB / 1024 };
}

/** LOCAL_PORT must be 1–65535 (no 0): ask the OS for a free one, then let it go. */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** One keep-alive connection for every request: the cost measured is the connector's. */
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const sockets = new Set<Socket>();

function http(
  url: URL,
  authorization: string,
  method: 'GET' | 'POST',
  path: string,
  body?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        agent,
        headers: {
          authorization,
          ...(body === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('socket', (socket) => sockets.add(socket));
    req.on('error', reject);
    req.end(body);
  });
}

const started = performance.now();
const simulator = await new SemiSimulator({ wsPort: null, tcpPort: 0, controlPort: 0 }).start();
const dir = mkdtempSync(join(tmpdir(), 'ecr-bridge-bench-'));
let connector: RunningChild | undefined;
let journal: SqliteJournal | undefined;
let service: TransactionService | undefined;
try {
  const terminalUrl = simulator.tcpUrl as string;
  const configPath = join(dir, 'config.txt');
  const configText = [
    'CONNECTOR_FLAVOUR=desktop',
    `LOCAL_PORT=${await freePort()}`,
    'TERMINAL_MANAGER_LOGIN=bench',
    'TERMINAL_MANAGER_PWD=bench-password',
    `TERMINAL_URL=${terminalUrl}`,
    'CURRENCY=USD',
    `DATA_DIR=${join(dir, 'connector-data')}`,
    '',
  ].join('\n');
  // Parsed here too, so that a bad config fails before a process is spawned.
  const config: ConnectorConfig = parseConfigText(configText, { source: configPath });
  writeFileSync(configPath, configText);
  const authorization = `Basic ${Buffer.from(`${config.login}:${config.password}`).toString('base64')}`;

  // (a) the baseline, set up as the connector sets up its own: one at a time, no queue.
  journal = new SqliteJournal({ path: join(dir, 'baseline', 'ecr-bridge.db') });
  service = new TransactionService({ journal, maxQueue: 0 });
  service.addTerminal('bench', new SemiDriver({ url: terminalUrl, currency: 'USD' }));
  const inService = service;
  const payInProcess = async (i: number): Promise<void> => {
    const result = await inService.pay('bench', {
      kind: 'sale',
      reference: `A-${i}`,
      amount: AMOUNT,
    });
    if (result.outcome !== 'approved') throw new Error(`A-${i}: ${result.outcome}`);
  };

  // (b) the connector as a real process.
  const running = await startChild('connector', [
    BIN,
    'connector',
    'start',
    '--config',
    configPath,
    '--json',
  ]);
  connector = running;
  const url = new URL(String(running.info.url));
  const rss: RssSample[] = [{ payments: 0, ...memoryMiB(running.pid) }];
  let paid = 0;
  /** Set when the connector runs alone: block throughput is only meaningful then. */
  let block: { from: number; at: number } | undefined;
  const payConnector = async (): Promise<void> => {
    const orderId = `B-${paid + 1}`;
    const answer = await http(
      url,
      authorization,
      'POST',
      '/',
      `{ "amount": 20.00, "currency": "USD", "order_id": "${orderId}" }`,
    );
    const status = (JSON.parse(answer.text) as { paymentStatus?: string }).paymentStatus;
    if (answer.status !== 200 || status !== 'SUCCESS')
      throw new Error(`${orderId}: HTTP ${answer.status} ${answer.text.slice(0, 300)}`);
    paid++;
    if (paid % RSS_EVERY === 0 || paid === TOTAL) {
      const now = performance.now();
      rss.push({
        payments: paid,
        ...memoryMiB(running.pid),
        ...(block === undefined
          ? {}
          : { blockPerSecond: ((paid - block.from) * 1000) / (now - block.at) }),
      });
      if (block !== undefined) block = { from: paid, at: performance.now() };
    }
  };

  await interleave([(i) => payInProcess(-1 - i), payConnector], WARMUP);
  const [inProcessSamples, connectorSamples] = (await interleave(
    [payInProcess, payConnector],
    INTERLEAVED,
  )) as [number[], number[]];

  // The connector alone, up to TOTAL: RSS growth and whether latency drifts as the journal grows.
  const soloFrom = paid + 1;
  const soloSamples: number[] = [];
  const soloStarted = performance.now();
  block = { from: paid, at: soloStarted };
  while (paid < TOTAL) soloSamples.push(await timeOne(payConnector));
  const soloSeconds = (performance.now() - soloStarted) / 1000;
  const children = childrenOf(running.pid).map((c) => ({ ...c, rssMiB: c.rssKiB / 1024 }));
  const exitCode = await stopChild(running, () => http(url, authorization, 'GET', '/stop'));
  agent.destroy();
  const journalMiB =
    ['ecr-bridge.db', 'ecr-bridge.db-wal']
      .map((name) => join(config.dataDir, name))
      .filter((path) => existsSync(path))
      .reduce((sum, path) => sum + statSync(path).size, 0) /
    2 ** 20;

  const a = summarise(inProcessSamples);
  const b = summarise(connectorSamples);
  const perSecond = (samples: number[]) =>
    (samples.length * 1000) / samples.reduce((x, y) => x + y, 0);
  const throughput = {
    inProcess: perSecond(inProcessSamples),
    connector: perSecond(connectorSamples),
    connectorSolo: soloSamples.length === 0 ? undefined : soloSamples.length / soloSeconds,
  };
  const names = ['(a) TransactionService.pay in-process', '(b) connector HTTP API, keep-alive'];
  const solo = soloSamples.length === 0 ? undefined : summarise(soloSamples);
  console.log(
    `\n${INTERLEAVED} sequential SEMI sales interleaved (+${WARMUP} warm-up), simulator on TCP ` +
      `127.0.0.1, zero delay; connector ${TOTAL} payments in all\n`,
  );
  printTable([
    [names[0] as string, a],
    [names[1] as string, b],
  ]);
  if (solo !== undefined) {
    const line = `(b) alone, payments ${soloFrom}–${TOTAL}`.padEnd(40);
    console.log(
      `${line} ${solo.p50.toFixed(3).padStart(7)}  ${solo.p99.toFixed(3).padStart(7)}  ${solo.mean.toFixed(3).padStart(8)}`,
    );
    // fsync latency swings from minute to minute (p50 2.1–3.1 ms between runs on the same disk).
    console.log('  (alone: a later time window with no baseline beside it; only a/b are a ratio)');
  }
  const row = (name: string, value: string) => console.log(`${name.padEnd(40)} ${value}`);
  console.log(`\n${'throughput (sequential)'.padEnd(40)} payments/s`);
  row(names[0] as string, throughput.inProcess.toFixed(0).padStart(7));
  row(names[1] as string, throughput.connector.toFixed(0).padStart(7));
  row('ratio b/a', (throughput.connector / throughput.inProcess).toFixed(2).padStart(7));
  if (throughput.connectorSolo !== undefined)
    row(
      `(b) alone, payments ${soloFrom}–${TOTAL}`,
      throughput.connectorSolo.toFixed(0).padStart(7),
    );
  console.log(
    `\n${'connector memory (/proc/<pid>/status)'.padEnd(40)} VmRSS MiB  VmHWM MiB  block/s`,
  );
  // Every sample, not only start / 1,000 / TOTAL: growth and plateaus show in between.
  for (const s of rss) {
    row(
      s.payments === 0 ? 'at start' : `after ${s.payments} payments`,
      `${s.rssMiB.toFixed(1).padStart(9)}  ${s.hwmMiB.toFixed(1).padStart(9)}  ${s.blockPerSecond?.toFixed(0).padStart(7) ?? ''}`,
    );
  }
  const afterFirst = rss.find((s) => s.payments === RSS_EVERY);
  const last = rss.at(-1) as RssSample;
  if (afterFirst !== undefined && last !== afterFirst)
    row(
      `VmRSS growth ${RSS_EVERY} → ${last.payments}`,
      `${(last.rssMiB - afterFirst.rssMiB).toFixed(1).padStart(9)} MiB`,
    );
  for (const c of children)
    row(`child process ${c.name} (not in VmRSS)`, c.rssMiB.toFixed(1).padStart(9));
  row('journal + WAL on disk', `${journalMiB.toFixed(1).padStart(9)} MiB`);
  row('HTTP connections opened', String(sockets.size).padStart(9));
  row('connector exit code', String(exitCode).padStart(9));
  const expected = WARMUP + INTERLEAVED + TOTAL;
  console.log(`charges made by the simulator: ${simulator.ledger.count} (expected ${expected})`);
  const seconds = (performance.now() - started) / 1000;
  console.log(`bench took ${seconds.toFixed(1)} s`);

  const inProc = 'TransactionService.pay in-process';
  const viaHttp = 'connector HTTP API';
  writeResult({
    bench: 'connector',
    title: `Connector: ${INTERLEAVED} sequential SEMI sales, HTTP against in-process`,
    seconds,
    parameters: {
      terminal: 'SEMI simulator, TCP, zero delay',
      interleaved: INTERLEAVED,
      warmup: WARMUP,
      connectorPayments: TOTAL,
    },
    figures: [
      figure('connector: latency p50', b.p50, 'ms'),
      figure('connector: latency p99', b.p99, 'ms'),
      figure('connector: throughput (sequential)', throughput.connector, 'payments/s'),
      figure('in-process: latency p50', a.p50, 'ms'),
      figure('in-process: throughput (sequential)', throughput.inProcess, 'payments/s'),
      figure('connector: VmRSS at start', (rss[0] as RssSample).rssMiB, 'MiB'),
      figure(`connector: VmRSS after ${last.payments} payments`, last.rssMiB, 'MiB'),
    ],
    ratios: [
      compare('latency p50', 'ms', 'lower', [viaHttp, b.p50], [inProc, a.p50]),
      compare('latency p99', 'ms', 'lower', [viaHttp, b.p99], [inProc, a.p99]),
      compare(
        'throughput',
        'payments/s',
        'higher',
        [viaHttp, throughput.connector],
        [inProc, throughput.inProcess],
      ),
    ],
    details: {
      latencyMs: { inProcess: a, connector: b, connectorAlone: solo ?? null },
      ratio: ratio(b, a),
      paymentsPerSecond: throughput,
      connectorMemory: rss,
      connectorChildProcesses: children,
      journalMiB,
      httpConnections: sockets.size,
      exitCode,
    },
  });
} finally {
  agent.destroy();
  // A child still running here means an error: no graceful stop, it is killed.
  if (connector !== undefined) await stopChild(connector);
  await service?.close();
  journal?.close();
  await simulator.stop();
  rmSync(dir, { recursive: true, force: true });
}
