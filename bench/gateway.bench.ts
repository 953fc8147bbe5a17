/**
 * The cloud gateway with a fleet connected (issue 6): BENCH_GATEWAY_TERMINALS simulated eConduit
 * terminals (10,000) hold a connection each and heartbeat at a shortened interval while
 * BENCH_GATEWAY_TX sales (3,000) run with BENCH_GATEWAY_CONCURRENCY POS calls in flight (32), each
 * on a terminal of its own. (b) `ecr-bridge gateway start` as a real child process, called over
 * keep-alive HTTP (`runTransaction`); (a) the baseline, in the same run: bench/relay.ts, a bare
 * node:net relay as a child process, carrying the same SEMI request bytes to the same kind of
 * simulated terminals and their answers back over raw TCP. Reported as ratios b/a: POS→terminal→POS
 * latency (p50 / p99 / mean), transactions per second, and RSS per connected terminal (VmRSS from
 * /proc before any terminal connects and with all connected); plus the gateway's heartbeats per
 * second from its /metrics. The runs are one after the other, each with the machine to itself.
 * Prints a table and writes bench/results/gateway.json. Never a timed assertion: the bench fails
 * only on a wrong answer (not Approved, or charges on the terminals ≠ sales sent).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once, setMaxListeners } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { SqliteTenantStore } from '../src/gateway/tenants.js';
import { JOURNAL_FILE_NAME, SqliteJournal } from '../src/journal/sqlite-journal.js';
import { POS_ONLINE } from '../src/protocols/econduit/messages.js';
import { decodeResponse, encodeRequest } from '../src/protocols/semi/codec.js';
import {
  ECONDUIT_SIMULATOR_MAX_COUNT,
  EconduitSimulator,
} from '../src/simulators/econduit/simulator.js';
import { printTable, ratio, summarise, type Summary } from './stats.js';

function envCount(name: string, fallback: number, min: number, max: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`${name} must be a whole number from ${min} to ${max} (got ${text})`);
    process.exit(1);
  }
  return value;
}

/** Simulated terminals connected to each side. */
const TERMINALS = envCount('BENCH_GATEWAY_TERMINALS', 10_000, 1, ECONDUIT_SIMULATOR_MAX_COUNT);
/** Sales timed on each side, after WARMUP. */
const TX = envCount('BENCH_GATEWAY_TX', 3_000, 1, 1_000_000);
/** POS calls in flight at once; each worker has terminals of its own. */
const CONCURRENCY = envCount(
  'BENCH_GATEWAY_CONCURRENCY',
  Math.min(32, TERMINALS),
  1,
  Math.min(1_000, TERMINALS),
);
/** The heartbeat interval, shortened from the seed's 60 s: TERMINALS / this many per second. */
const HEARTBEAT_MS = envCount('BENCH_GATEWAY_HEARTBEAT_MS', 10_000, 100, 600_000);
const WARMUP = 200;
/** Terminals started at once: more could overflow the listen backlog (511). */
const BATCH = 250;
const BATCH_ONLINE_TIMEOUT_MS = 60_000;
/** Bound on one POS call (a sale at zero card delay takes milliseconds). */
const CALL_TIMEOUT_MS = 30_000;
/** Bound on a child's start (tsx compiles the sources first) and on its stop. */
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
/** Quiet time before an RSS reading, so that the last connections' work is done. */
const SETTLE_MS = 2_000;
/** Everything, both runs: past this the bench gives up (children killed, exit 1). */
const BENCH_TIMEOUT_MS = 15 * 60_000;
const FIRST_TERMINAL_ID = '10000000';
const MERCHANT = 'bench';
const AMOUNT = '1.00';
const AMOUNT_MINOR = 100;
const HOST = '127.0.0.1';
const TERMINATOR = Buffer.from([0x04, 0x04]);
const BIN = fileURLToPath(new URL('../bin/ecr-bridge.js', import.meta.url));
const RELAY = fileURLToPath(new URL('./relay.ts', import.meta.url));
/** The losing timer of a race must not keep the bench alive once done. */
const UNREF = { ref: false } as const;

// ---------------------------------------------------------------------------------------------
// Child processes

interface RunningChild {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Its first stdout line, parsed. */
  readonly info: Record<string, unknown>;
  readonly stderr: () => string;
}

const children = new Set<RunningChild>();

/** Spawns `node <args>` and resolves with its first stdout line (a JSON object). */
async function startChild(name: string, args: readonly string[]): Promise<RunningChild> {
  // ECR_BRIDGE_<KEY> variables would override the command line's settings.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('ECR_BRIDGE_')),
  );
  // stdin a pipe: the relay ends when it closes (this process gone); the gateway ignores it.
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-4_000);
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  try {
    const first = await Promise.race([
      once(lines, 'line').then(([line]) => line as string),
      once(child, 'exit').then(([code]) => {
        throw new Error(`${name} exited with ${String(code)} before starting: ${stderr}`);
      }),
      sleep(START_TIMEOUT_MS, undefined, UNREF).then(() => {
        throw new Error(`${name} did not start within ${START_TIMEOUT_MS} ms: ${stderr}`);
      }),
    ]);
    const running: RunningChild = {
      name,
      child,
      pid: child.pid as number,
      info: JSON.parse(first) as Record<string, unknown>,
      stderr: () => stderr,
    };
    children.add(running);
    return running;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    lines.close();
  }
}

/** SIGTERM, then SIGKILL. Returns its exit code (or signal). */
async function stopChild(running: RunningChild): Promise<number | string | null> {
  const { child } = running;
  children.delete(running);
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  if (!exited()) {
    const exit = once(child, 'exit');
    child.kill('SIGTERM');
    const stopped = await Promise.race([
      exit.then(() => true),
      sleep(STOP_TIMEOUT_MS, undefined, UNREF).then(() => false),
    ]);
    if (!stopped) {
      child.kill('SIGKILL');
      await exit;
    }
  }
  child.stdin?.destroy();
  return child.exitCode ?? child.signalCode;
}

/** VmRSS and VmHWM of a process, in KiB. */
function memoryOf(pid: number): { rssKiB: number; hwmKiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rssKiB: kb('VmRSS'), hwmKiB: kb('VmHWM') };
}

/** Clock ticks per second of /proc/<pid>/stat's CPU times (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/** CPU seconds (user + system) a process has used so far. */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name: state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/** CPU used by the child and by this process (the terminals and the POS) while `run` runs. */
async function withCpu(pid: number, run: () => Promise<Phase>): Promise<Phase & { cpu: CpuShare }> {
  const child = cpuSecondsOf(pid);
  const own = process.cpuUsage();
  const result = await run();
  const used = process.cpuUsage(own);
  return {
    ...result,
    cpu: {
      childPercent: ((cpuSecondsOf(pid) - child) * 100) / result.seconds,
      benchPercent: (used.user + used.system) / 1e4 / result.seconds,
    },
  };
}

/** CPU over a phase, in % of one core (the machine has two). */
interface CpuShare {
  readonly childPercent: number;
  readonly benchPercent: number;
}

// ---------------------------------------------------------------------------------------------
// Simulated terminals

/**
 * Starts the simulator's terminals BATCH at a time, each batch online before the next. The
 * batches are spread over one heartbeat interval at least, so that the fleet's heartbeats arrive
 * evenly, not in bursts (any window then shows the rate). Resolves with the milliseconds the
 * batches took to come online, the waits between them left out. Fails when a batch is not all
 * online within its bound.
 */
async function connectAll(simulator: EconduitSimulator, side: string): Promise<number> {
  const started = performance.now();
  let busyMs = 0;
  let refused = 0;
  const all = simulator.terminals;
  const batches = Math.ceil(all.length / BATCH);
  for (const t of all) t.agent.on('registrationRefused', () => refused++);
  for (let from = 0, k = 0; from < all.length; from += BATCH, k++) {
    const due = started + (k * HEARTBEAT_MS) / batches - performance.now();
    if (due > 0) await sleep(due);
    const batch = all.slice(from, from + BATCH);
    const signal = AbortSignal.timeout(BATCH_ONLINE_TIMEOUT_MS);
    setMaxListeners(batch.length + 1, signal);
    const batchStarted = performance.now();
    const online = Promise.all(
      batch.map((t) =>
        t.agent.status === POS_ONLINE ? undefined : once(t.agent, 'online', { signal }),
      ),
    );
    for (const t of batch) t.agent.start();
    try {
      await online;
    } catch {
      throw new Error(
        `${side}: terminals ${from + 1}–${from + batch.length} not all online within ` +
          `${BATCH_ONLINE_TIMEOUT_MS} ms (${simulator.onlineCount} of ${all.length} online, ` +
          `${refused} registrations refused)`,
      );
    }
    busyMs += performance.now() - batchStarted;
  }
  return busyMs;
}

// ---------------------------------------------------------------------------------------------
// The POS side: workers, each with terminals of its own

interface Phase {
  readonly samples: number[];
  readonly seconds: number;
}

/** One POS call on a terminal; resolves with its latency in ms once the answer is checked. */
type PosCall = (worker: number, seq: number, terminalId: string, refId: string) => Promise<number>;

/**
 * CONCURRENCY workers, worker w using terminals w, w+C, w+2C, … in turn (never two calls in
 * flight on one terminal); `seq` numbers every call of the run (warm-up included).
 */
function posDriver(terminalIds: readonly string[]) {
  const own = Array.from({ length: CONCURRENCY }, (_, w) =>
    terminalIds.filter((_id, i) => i % CONCURRENCY === w),
  );
  const cursor = new Array<number>(CONCURRENCY).fill(0);
  let seq = 0;
  return async (count: number, refPrefix: string, call: PosCall): Promise<Phase> => {
    const samples: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      own.map(async (ids, w) => {
        while (next < count) {
          const i = next++;
          const terminalId = ids[(cursor[w] as number) % ids.length] as string;
          cursor[w] = (cursor[w] as number) + 1;
          try {
            samples.push(await call(w, seq++, terminalId, `${refPrefix}${i}`));
          } catch (error) {
            next = count; // the other workers stop after their call in flight
            throw error;
          }
        }
      }),
    );
    return { samples, seconds: (performance.now() - started) / 1000 };
  };
}

/** Keep-alive HTTP to the gateway: one socket per worker at most. */
const httpAgent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const httpSockets = new Set<Socket>();

function httpGet(base: URL, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: base.hostname, port: base.port, method: 'GET', path, agent: httpAgent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.setTimeout(CALL_TIMEOUT_MS, () =>
      req.destroy(new Error(`no answer to GET ${path.split('?')[0]} within ${CALL_TIMEOUT_MS} ms`)),
    );
    req.on('socket', (socket) => httpSockets.add(socket));
    req.on('error', reject);
    req.end();
  });
}

interface GatewayMetrics {
  readonly heartbeats: number;
  readonly online: number;
  readonly registrationsOk: number;
  readonly at: number;
}

async function readMetrics(base: URL): Promise<GatewayMetrics> {
  const { status, text } = await httpGet(base, '/metrics');
  if (status !== 200) throw new Error(`GET /metrics: HTTP ${status}`);
  const value = (pattern: string) => {
    const match = new RegExp(`^${pattern} (\\d+)`, 'm').exec(text);
    if (match === null) throw new Error(`GET /metrics: no ${pattern}`);
    return Number(match[1]);
  };
  return {
    heartbeats: value('ecr_gateway_heartbeats_total'),
    online: value('ecr_gateway_terminals_online'),
    registrationsOk: value('ecr_gateway_registrations_total\\{result="OK-REGISTRATION"\\}'),
    at: performance.now(),
  };
}

const perSecond = (from: GatewayMetrics, to: GatewayMetrics) =>
  ((to.heartbeats - from.heartbeats) * 1000) / (to.at - from.at);

/** A raw TCP connection to the relay's POS port: one request at a time, answers end 0x04 0x04. */
class RelayConnection {
  private held: Buffer | undefined;
  private waiting: ((frame: Buffer) => void) | undefined;
  private failed: Error | undefined;
  private fail: ((error: Error) => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.data(chunk));
    socket.on('error', (error) => this.end(error));
    socket.on('close', () => this.end(new Error('the relay closed the POS connection')));
  }

  static async open(port: number): Promise<RelayConnection> {
    const socket = connect({ host: HOST, port });
    const timer = setTimeout(
      () =>
        socket.destroy(
          new Error(`cannot connect to the relay's POS port within ${CALL_TIMEOUT_MS} ms`),
        ),
      CALL_TIMEOUT_MS,
    );
    try {
      await once(socket, 'connect');
    } finally {
      clearTimeout(timer);
    }
    return new RelayConnection(socket);
  }

  /** Writes `bytes` and resolves with the next message (0x04 0x04 excluded). */
  request(bytes: Buffer): Promise<Buffer> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        this.fail = undefined;
        reject(new Error(`no answer from the relay within ${CALL_TIMEOUT_MS} ms`));
        this.socket.destroy();
      }, CALL_TIMEOUT_MS);
      this.waiting = (frame) => {
        clearTimeout(timer);
        resolve(frame);
      };
      this.fail = (error) => {
        clearTimeout(timer);
        reject(error);
      };
      this.socket.write(bytes);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private data(chunk: Buffer): void {
    const bytes = this.held === undefined ? chunk : Buffer.concat([this.held, chunk]);
    this.held = undefined;
    const at = bytes.indexOf(TERMINATOR);
    if (at < 0) {
      this.held = bytes;
      return;
    }
    if (at + 2 < bytes.length) {
      this.end(new Error('the relay sent more than one answer'));
      return;
    }
    const waiting = this.waiting;
    this.waiting = undefined;
    this.fail = undefined;
    if (waiting === undefined) this.end(new Error('the relay sent an answer nobody asked for'));
    else waiting(bytes.subarray(0, at));
  }

  private end(error: Error): void {
    this.failed ??= error;
    const fail = this.fail;
    this.waiting = undefined;
    this.fail = undefined;
    fail?.(error);
  }
}

// ---------------------------------------------------------------------------------------------
// The two runs

interface RunResult {
  readonly latency: Summary;
  readonly perSecond: number;
  readonly timedSeconds: number;
  readonly connectSeconds: number;
  readonly terminalsOnline: number;
  readonly rssBeforeKiB: number;
  readonly rssWithTerminalsKiB: number;
  /** After the sales. */
  readonly rssAtEndKiB: number;
  readonly hwmKiB: number;
  readonly rssPerTerminalKiB: number;
  readonly charges: number;
  readonly exitCode: number | string | null;
  /** During the timed sales. */
  readonly cpu: CpuShare;
}

interface GatewayExtras {
  readonly heartbeatsPerSecondIdle: number;
  readonly heartbeatsPerSecondUnderLoad: number;
  readonly registrationsOk: number;
  readonly terminalsOnlineAtEnd: number;
  readonly httpConnections: number;
}

const terminalIdsOf = (simulator: EconduitSimulator) =>
  simulator.terminals.map((t) => t.terminalId);

const newSimulator = (port: number) =>
  new EconduitSimulator({
    endpoints: [{ host: HOST, port }],
    terminalId: FIRST_TERMINAL_ID,
    count: TERMINALS,
    heartbeatIntervalMs: HEARTBEAT_MS,
  });

function checkCharges(side: string, simulator: EconduitSimulator): number {
  const count = simulator.ledger.count;
  if (count !== TX + WARMUP)
    throw new Error(`${side}: the terminals made ${count} charges, ${TX + WARMUP} expected`);
  return count;
}

let simulator: EconduitSimulator | undefined;
const log = (text: string) => console.log(`  ${text}`);

async function gatewayRun(dir: string): Promise<RunResult & GatewayExtras> {
  // Tenants first, in-process, in one transaction: one fsync, not one per terminal.
  const dataDir = join(dir, 'gateway');
  const journal = new SqliteJournal({ path: join(dataDir, JOURNAL_FILE_NAME) });
  let credentials: { key: string; password: string };
  try {
    const tenants = new SqliteTenantStore(journal);
    credentials = tenants.addMerchant(MERCHANT);
    const ids = Array.from(
      { length: TERMINALS },
      (_, i) => `${BigInt(FIRST_TERMINAL_ID) + BigInt(i)}`,
    );
    journal.database.transaction(() => {
      for (const terminalId of ids)
        tenants.addTerminal({ terminalId, merchant: MERCHANT, terminalType: 'Valor' });
    })();
  } finally {
    journal.close();
  }

  const gateway = await startChild('gateway', [
    BIN,
    'gateway',
    'start',
    '--data-dir',
    dataDir,
    '--tcp-port',
    '0',
    '--http-port',
    '0',
    '--json',
    '--heartbeat-interval',
    String(HEARTBEAT_MS),
    // Every terminal connects from 127.0.0.1: the per-address limit (20/s) would refuse most.
    '--registration-rate',
    '1000000',
    '--log-level',
    'warn',
  ]);
  if (gateway.info.terminals !== TERMINALS)
    throw new Error(`gateway: ${String(gateway.info.terminals)} terminals provisioned`);
  const tcpPort = Number(String(gateway.info.tcp).split(':').at(-1));
  const base = new URL(String(gateway.info.http));
  await sleep(SETTLE_MS);
  const before = memoryOf(gateway.pid);

  simulator = newSimulator(tcpPort);
  const sim = simulator;
  const connectMs = await connectAll(sim, 'gateway');
  log(`gateway: ${TERMINALS} terminals online (${(connectMs / 1000).toFixed(1)} s connecting)`);
  await sleep(SETTLE_MS);
  const withTerminals = memoryOf(gateway.pid);

  // Heartbeats over one whole interval, the fleet idle.
  const idleFrom = await readMetrics(base);
  await sleep(HEARTBEAT_MS);
  const idleTo = await readMetrics(base);
  log(`gateway: ${perSecond(idleFrom, idleTo).toFixed(0)} heartbeats/s, idle`);

  const query = (terminalId: string, refId: string) =>
    `/services/api.asmx/runTransaction?command=Sale&key=${encodeURIComponent(credentials.key)}` +
    `&password=${encodeURIComponent(credentials.password)}&amount=${AMOUNT}` +
    `&refID=${refId}&terminalId=${terminalId}`;
  const sale: PosCall = async (_w, _seq, terminalId, refId) => {
    const started = performance.now();
    const answer = await httpGet(base, query(terminalId, refId)).catch((error: unknown) => {
      throw new Error(`gateway: ${refId} on terminal ${terminalId}: ${(error as Error).message}`);
    });
    const ms = performance.now() - started;
    let code: unknown;
    try {
      code = (JSON.parse(answer.text) as { ResultCode?: unknown }).ResultCode;
    } catch {
      code = undefined;
    }
    if (answer.status !== 200 || code !== 'Approved')
      throw new Error(
        `gateway: ${refId} on terminal ${terminalId}: HTTP ${answer.status} ${answer.text.slice(0, 300)}`,
      );
    return ms;
  };
  const drive = posDriver(terminalIdsOf(sim));
  const loadFrom = await readMetrics(base);
  await drive(WARMUP, 'GWW', sale);
  const timed = await withCpu(gateway.pid, () => drive(TX, 'GWT', sale));
  const loadTo = await readMetrics(base);
  log(`gateway: ${TX} sales in ${timed.seconds.toFixed(1)} s`);
  const charges = checkCharges('gateway', sim);
  const atEnd = memoryOf(gateway.pid);

  await sim.stop();
  simulator = undefined;
  httpAgent.destroy();
  const exitCode = await stopChild(gateway);
  return {
    latency: summarise(timed.samples),
    perSecond: TX / timed.seconds,
    timedSeconds: timed.seconds,
    connectSeconds: connectMs / 1000,
    terminalsOnline: idleTo.online,
    rssBeforeKiB: before.rssKiB,
    rssWithTerminalsKiB: withTerminals.rssKiB,
    rssAtEndKiB: atEnd.rssKiB,
    hwmKiB: atEnd.hwmKiB,
    rssPerTerminalKiB: (withTerminals.rssKiB - before.rssKiB) / TERMINALS,
    charges,
    exitCode,
    cpu: timed.cpu,
    heartbeatsPerSecondIdle: perSecond(idleFrom, idleTo),
    heartbeatsPerSecondUnderLoad: perSecond(loadFrom, loadTo),
    registrationsOk: loadTo.registrationsOk,
    terminalsOnlineAtEnd: loadTo.online,
    httpConnections: httpSockets.size,
  };
}

async function relayRun(): Promise<RunResult> {
  const relay = await startChild('relay', ['--import', 'tsx', RELAY]);
  const terminalPort = Number(relay.info.terminal);
  const posPort = Number(relay.info.pos);
  await sleep(SETTLE_MS);
  const before = memoryOf(relay.pid);

  simulator = newSimulator(terminalPort);
  const sim = simulator;
  const connectMs = await connectAll(sim, 'relay');
  log(`relay: ${TERMINALS} terminals online (${(connectMs / 1000).toFixed(1)} s connecting)`);
  await sleep(SETTLE_MS);
  const withTerminals = memoryOf(relay.pid);
  const online = sim.onlineCount;

  const connections = await Promise.all(
    Array.from({ length: CONCURRENCY }, () => RelayConnection.open(posPort)),
  );
  try {
    const sale: PosCall = async (w, seq, terminalId, refId) => {
      // The bytes the gateway's SEMI driver writes for the same sale (its REQ_TXN_ID is the
      // journal's row id, a number of the same few digits).
      const semi = encodeRequest({
        code: 'sale',
        mode: 'credit',
        amountMinor: AMOUNT_MINOR,
        merTxnId: refId,
        reqTxnId: String(seq + 1),
      });
      const bytes = Buffer.from(`${terminalId}\n${semi}\x04\x04`, 'utf8');
      const started = performance.now();
      const frame = await (connections[w] as RelayConnection)
        .request(bytes)
        .catch((error: unknown) => {
          throw new Error(`relay: ${refId} on terminal ${terminalId}: ${(error as Error).message}`);
        });
      const ms = performance.now() - started;
      const text = frame.toString('utf8');
      let approved = false;
      try {
        const response = decodeResponse(text, 'sale');
        approved = response.state === '0' && response.merTxnId === refId;
      } catch {
        approved = false;
      }
      if (!approved)
        throw new Error(`relay: ${refId} on terminal ${terminalId}: ${text.slice(0, 300)}`);
      return ms;
    };
    const drive = posDriver(terminalIdsOf(sim));
    await drive(WARMUP, 'RLW', sale);
    const timed = await withCpu(relay.pid, () => drive(TX, 'RLT', sale));
    log(`relay: ${TX} sales in ${timed.seconds.toFixed(1)} s`);
    const charges = checkCharges('relay', sim);
    const atEnd = memoryOf(relay.pid);

    await sim.stop();
    simulator = undefined;
    for (const c of connections) c.close();
    const exitCode = await stopChild(relay);
    return {
      latency: summarise(timed.samples),
      perSecond: TX / timed.seconds,
      timedSeconds: timed.seconds,
      connectSeconds: connectMs / 1000,
      terminalsOnline: online,
      rssBeforeKiB: before.rssKiB,
      rssWithTerminalsKiB: withTerminals.rssKiB,
      rssAtEndKiB: atEnd.rssKiB,
      hwmKiB: atEnd.hwmKiB,
      rssPerTerminalKiB: (withTerminals.rssKiB - before.rssKiB) / TERMINALS,
      charges,
      exitCode,
      cpu: timed.cpu,
    };
  } finally {
    for (const c of connections) c.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Main

const started = performance.now();
const dir = mkdtempSync(join(tmpdir(), 'ecr-bridge-bench-gateway-'));
let exitCode = 0;

/** Kills what is left; used on every path out. */
async function cleanUp(): Promise<void> {
  httpAgent.destroy();
  const sim = simulator;
  simulator = undefined;
  await Promise.race([sim?.stop(), sleep(STOP_TIMEOUT_MS, undefined, UNREF)]);
  await Promise.all([...children].map((c) => stopChild(c)));
  rmSync(dir, { recursive: true, force: true });
}

const watchdog = setTimeout(() => {
  console.error(`gateway bench: gave up after ${BENCH_TIMEOUT_MS / 60_000} min`);
  for (const c of children) c.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
}, BENCH_TIMEOUT_MS);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`gateway bench: ${signal}, stopping`);
    for (const c of children) c.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    process.exit(1);
  });
}

try {
  console.log(
    `\ngateway bench: ${TERMINALS} simulated terminals, heartbeat every ${HEARTBEAT_MS} ms; ` +
      `${TX} sales (+${WARMUP} warm-up), ${CONCURRENCY} in flight`,
  );
  const b = await gatewayRun(dir);
  const a = await relayRun();

  const names = ['(a) bare TCP relay (node:net)', '(b) gateway, HTTP runTransaction'] as const;
  console.log(
    `\n${TX} sales of ${AMOUNT} each, ${CONCURRENCY} in flight (each on a terminal of its own), ` +
      `${TERMINALS} terminals connected and heartbeating every ${HEARTBEAT_MS / 1000} s; ` +
      'POS→terminal→POS latency\n',
  );
  printTable([
    [names[0], a.latency],
    [names[1], b.latency],
  ]);
  const row = (name: string, ...values: string[]) =>
    console.log(`${name.padEnd(40)} ${values.map((v) => v.padStart(14)).join('')}`);
  console.log('');
  row(`throughput (${CONCURRENCY} in flight)`, 'sales/s');
  row(names[0], a.perSecond.toFixed(0));
  row(names[1], b.perSecond.toFixed(0));
  row('ratio b/a', (b.perSecond / a.perSecond).toFixed(2));
  console.log('');
  row('connected terminals', '(a) relay', '(b) gateway', 'ratio b/a');
  row('terminals online', String(a.terminalsOnline), String(b.terminalsOnline));
  row(
    `time to connect all, ${BATCH} at a time (s)`,
    a.connectSeconds.toFixed(1),
    b.connectSeconds.toFixed(1),
    (b.connectSeconds / a.connectSeconds).toFixed(2),
  );
  row(
    'VmRSS, no terminal (MiB)',
    (a.rssBeforeKiB / 1024).toFixed(1),
    (b.rssBeforeKiB / 1024).toFixed(1),
  );
  row(
    `VmRSS, ${TERMINALS} terminals (MiB)`,
    (a.rssWithTerminalsKiB / 1024).toFixed(1),
    (b.rssWithTerminalsKiB / 1024).toFixed(1),
  );
  row(
    'VmRSS per connected terminal (KiB)',
    a.rssPerTerminalKiB.toFixed(2),
    b.rssPerTerminalKiB.toFixed(2),
    (b.rssPerTerminalKiB / a.rssPerTerminalKiB).toFixed(2),
  );
  row(
    `heartbeats/s, idle (expected ${Math.round((TERMINALS * 1000) / HEARTBEAT_MS)})`,
    '',
    b.heartbeatsPerSecondIdle.toFixed(0),
  );
  row('heartbeats/s, during the sales', '', b.heartbeatsPerSecondUnderLoad.toFixed(0));
  row('registrations / online at the end', '', `${b.registrationsOk} / ${b.terminalsOnlineAtEnd}`);
  row('HTTP connections opened', '', String(b.httpConnections));
  row(
    'CPU in the timed sales, % of a core',
    a.cpu.childPercent.toFixed(0),
    b.cpu.childPercent.toFixed(0),
  );
  row(
    '  bench process (terminals and POS)',
    a.cpu.benchPercent.toFixed(0),
    b.cpu.benchPercent.toFixed(0),
  );
  row(
    'VmRSS after the sales (MiB)',
    (a.rssAtEndKiB / 1024).toFixed(1),
    (b.rssAtEndKiB / 1024).toFixed(1),
  );
  row('VmHWM (MiB)', (a.hwmKiB / 1024).toFixed(1), (b.hwmKiB / 1024).toFixed(1));
  row('charges on the terminals', String(a.charges), String(b.charges));
  row('child exit code', String(a.exitCode), String(b.exitCode));
  const seconds = (performance.now() - started) / 1000;
  console.log(`bench took ${seconds.toFixed(1)} s`);

  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/gateway.json',
    `${JSON.stringify(
      {
        terminals: TERMINALS,
        heartbeatIntervalMs: HEARTBEAT_MS,
        sales: { timed: TX, warmup: WARMUP, concurrency: CONCURRENCY, amount: AMOUNT },
        node: process.version,
        latencyMs: { relay: a.latency, gateway: b.latency },
        ratio: ratio(b.latency, a.latency),
        salesPerSecond: {
          relay: a.perSecond,
          gateway: b.perSecond,
          ratio: b.perSecond / a.perSecond,
        },
        rssPerTerminalKiB: {
          relay: a.rssPerTerminalKiB,
          gateway: b.rssPerTerminalKiB,
          ratio: b.rssPerTerminalKiB / a.rssPerTerminalKiB,
        },
        relay: a,
        gateway: b,
        seconds,
      },
      null,
      2,
    )}\n`,
  );
} catch (error) {
  exitCode = 1;
  console.error(`\ngateway bench failed: ${(error as Error).message}`);
  await sleep(500); // a child that died has its exit seen
  for (const c of children) {
    const { exitCode: code, signalCode: signal } = c.child;
    if (code !== null || signal !== null)
      console.error(`${c.name} (pid ${c.pid}) had exited: ${String(code ?? signal)}`);
    const tail = c.stderr().trim();
    if (tail !== '') console.error(`${c.name} stderr:\n${tail}`);
  }
  try {
    const logText = readFileSync(join(dir, 'gateway', 'logs', 'ecr-bridge.log'), 'utf8');
    if (logText.trim() !== '') console.error(`gateway log (last lines):\n${logText.slice(-3_000)}`);
  } catch {
    // No log written.
  }
} finally {
  await cleanUp().catch((error: unknown) => {
    console.error(`gateway bench: clean-up failed: ${(error as Error).message}`);
    exitCode = 1;
  });
}
process.exit(exitCode);
