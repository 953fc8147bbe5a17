/**
 * The connector's HTTP API against its own floor. The terminal is the SEMI simulator on TCP at
 * zero delay, the cheapest simulator to reach (one JSON object each way; Concert adds ENQ/ACK/EOT
 * round trips per message). (a) the baseline: TransactionService.pay in-process with a SQLite
 * journal of its own; (b) the same sales through `ecr-bridge connector start` run as a real child
 * process (desktop flavour, Basic Auth, one keep-alive HTTP connection). Interleaved; latency and
 * payments per second as ratios b/a. The connector then goes on alone to BENCH_CONNECTOR_PAYMENTS
 * payments in all, its RSS read from /proc/<pid>/status every 1,000, so growth shows.
 * Prints a table and writes bench/results/connector.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseConfigText, type ConnectorConfig } from '../src/connector/config.js';
import { TransactionService } from '../src/core/transaction-service.js';
import { SemiDriver } from '../src/drivers/semi.js';
import { SqliteJournal } from '../src/journal/sqlite-journal.js';
import { SemiSimulator } from '../src/simulators/semi/simulator.js';
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
/** Bound on the child's start (tsx compiles the sources first) and on its stop. */
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
/** The losing timer of a race must not keep the bench alive for its full length once done. */
const UNREF = { ref: false } as const;

interface RssSample {
  readonly payments: number;
  readonly rssMiB: number;
  readonly hwmMiB: number;
  /** Payments per second since the previous sample, once the connector runs alone (client clock). */
  readonly blockPerSecond?: number;
}

/** VmRSS and VmHWM of a process, in MiB. */
function memoryOf(pid: number): { rssMiB: number; hwmMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
}

/** Child processes of a process (tsx may run esbuild beside node): their VmRSS is not in its own. */
function childrenOf(pid: number): { pid: number; name: string; rssMiB: number }[] {
  const path = `/proc/${pid}/task/${pid}/children`;
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split(' ')
    .filter((s) => s !== '')
    .map(Number)
    .flatMap((child) => {
      try {
        const name = readFileSync(`/proc/${child}/comm`, 'utf8').trim();
        return [{ pid: child, name, rssMiB: memoryOf(child).rssMiB }];
      } catch {
        return [];
      }
    });
}

/** LOCAL_PORT must be 1–65535 (no 0): ask the OS for a free one, then let it go. */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface RunningChild {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly url: URL;
  readonly stderr: () => string;
}

/** `node bin/ecr-bridge.js connector start --config <file> --json`; resolves on its first line. */
async function startConnectorProcess(configPath: string): Promise<RunningChild> {
  // ECR_BRIDGE_<KEY> variables would override the file: the bench's config is the file alone.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('ECR_BRIDGE_')),
  );
  const child = spawn(
    process.execPath,
    [BIN, 'connector', 'start', '--config', configPath, '--json'],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-4_000);
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  try {
    const first = await Promise.race([
      once(lines, 'line').then(([line]) => line as string),
      once(child, 'exit').then(([code]) => {
        throw new Error(`connector exited with ${String(code)} before starting: ${stderr}`);
      }),
      sleep(START_TIMEOUT_MS, undefined, UNREF).then(() => {
        throw new Error(`connector did not start within ${START_TIMEOUT_MS} ms: ${stderr}`);
      }),
    ]);
    const info = JSON.parse(first) as { url: string };
    return { child, pid: child.pid as number, url: new URL(info.url), stderr: () => stderr };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    lines.close();
  }
}

/** Asks the child to stop (GET /stop when given), then SIGTERM, then SIGKILL. Returns its exit code. */
async function stopChild(
  child: ChildProcess,
  askToStop?: () => Promise<unknown>,
): Promise<number | string | null> {
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  if (exited()) return child.exitCode ?? child.signalCode;
  const exit = once(child, 'exit');
  const within = (ms: number) =>
    Promise.race([exit.then(() => true), sleep(ms, undefined, UNREF).then(() => false)]);
  if (askToStop !== undefined) await askToStop().catch(() => {});
  if (!(askToStop !== undefined && (await within(STOP_TIMEOUT_MS)))) {
    child.kill('SIGTERM');
    if (!(await within(STOP_TIMEOUT_MS))) {
      child.kill('SIGKILL');
      await exit;
    }
  }
  return child.exitCode ?? child.signalCode;
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
  const running = await startConnectorProcess(configPath);
  connector = running;
  const rss: RssSample[] = [{ payments: 0, ...memoryOf(running.pid) }];
  let paid = 0;
  /** Set when the connector runs alone: block throughput is only meaningful then. */
  let block: { from: number; at: number } | undefined;
  const payConnector = async (): Promise<void> => {
    const orderId = `B-${paid + 1}`;
    const answer = await http(
      running.url,
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
        ...memoryOf(running.pid),
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
  const children = childrenOf(running.pid);
  const exitCode = await stopChild(running.child, () =>
    http(running.url, authorization, 'GET', '/stop'),
  );
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

  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/connector.json',
    `${JSON.stringify(
      {
        terminal: 'SEMI simulator, TCP, zero delay',
        payments: { interleaved: INTERLEAVED, warmup: WARMUP, connectorTotal: TOTAL },
        node: process.version,
        latencyMs: { inProcess: a, connector: b, connectorAlone: solo ?? null },
        ratio: ratio(b, a),
        paymentsPerSecond: { ...throughput, ratio: throughput.connector / throughput.inProcess },
        connectorMemory: rss,
        connectorChildProcesses: children,
        journalMiB,
        httpConnections: sockets.size,
        seconds,
      },
      null,
      2,
    )}\n`,
  );
} finally {
  agent.destroy();
  // A child still running here means an error: no graceful stop, it is killed.
  if (connector !== undefined) await stopChild(connector.child);
  await service?.close();
  journal?.close();
  await simulator.stop();
  rmSync(dir, { recursive: true, force: true });
}
