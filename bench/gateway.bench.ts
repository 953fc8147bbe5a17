/**
 * The cloud gateway with a fleet connected (issue 6), against two baselines in the same run
 * (issue 9): BENCH_GATEWAY_TERMINALS simulated terminals (10,000) hold a connection each and
 * heartbeat at a shortened interval while BENCH_GATEWAY_TX sales (3,000) run with
 * BENCH_GATEWAY_CONCURRENCY POS calls in flight (32), each on a terminal of its own.
 *
 * (b) `ecr-bridge gateway start` as a real child process, called over keep-alive HTTP
 * (`runTransaction`), the terminals simulated eConduit terminals;
 * (a) bench/relay.ts, a bare node:net relay as a child process, carrying the same SEMI request
 * bytes to the same kind of simulated terminals and their answers back over raw TCP;
 * (c) MQTT request/response through mosquitto (bench/mqtt-baseline.ts): as many terminals as
 * MQTT clients (BENCH_MQTT_TERMINALS, the same count by default), the same SEMI terminal engine
 * behind each, keepalive pings as heartbeats, QoS BENCH_MQTT_QOS (1).
 *
 * Reported as ratios b/a and b/c: POS→terminal→POS latency (p50 / p99 / mean), sales per second,
 * memory per connected terminal (VmRSS of the gateway, the relay, the broker from /proc before any
 * terminal connects and with all connected), time to connect them all, heartbeats per second
 * answered (the gateway's /metrics, the relay's counter, the MQTT terminals' PINGRESPs). The runs
 * are one after the other, each with the machine to itself. Prints a table and writes its results
 * (bench/results.ts). Never a timed assertion: the bench fails only on a wrong answer (not
 * Approved, or charges on the terminals ≠ sales sent).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { SqliteTenantStore } from '../src/gateway/tenants.js';
import { JOURNAL_FILE_NAME, SqliteJournal } from '../src/journal/sqlite-journal.js';
import { decodeResponse, encodeRequest } from '../src/protocols/semi/codec.js';
import {
  ECONDUIT_SIMULATOR_MAX_COUNT,
  EconduitSimulator,
} from '../src/simulators/econduit/simulator.js';
import {
  benchMain,
  memoryOf,
  openFileLimitOf,
  running,
  startChild,
  stopChild,
  STOP_TIMEOUT_MS,
  UNREF,
} from './children.js';
import {
  connectAll,
  econduitFleet,
  mqttFleet,
  posDriver,
  withCpu,
  type CpuShare,
  type Pacing,
  type PosCall,
} from './fleet.js';
import {
  MqttRequester,
  MqttTerminalFleet,
  startBroker,
  type Broker,
  type Qos,
} from './mqtt-baseline.js';
import { RelayConnection } from './relay-client.js';
import { compare, figure, writeResult, type Figure, type Ratio } from './results.js';
import { envCount, printTable, summarise, type Summary } from './stats.js';

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
/** MQTT terminals: as many as the others unless told (capped by the broker's open files). */
const MQTT_TERMINALS = envCount('BENCH_MQTT_TERMINALS', TERMINALS, 1, 100_000);
/** QoS of the MQTT requests and answers: 1 (acknowledged), what a payment would use; or 0. */
const MQTT_QOS = envCount('BENCH_MQTT_QOS', 1, 0, 1) as Qos;
const WARMUP = 200;
/** Terminals started at once: more could overflow the listen backlog (511). */
const BATCH = 250;
const BATCH_ONLINE_TIMEOUT_MS = 60_000;
const PACING: Pacing = {
  batch: BATCH,
  spreadMs: HEARTBEAT_MS,
  batchTimeoutMs: BATCH_ONLINE_TIMEOUT_MS,
};
/** Bound on one POS call (a sale at zero card delay takes milliseconds). */
const CALL_TIMEOUT_MS = 30_000;
/** Quiet time before an RSS reading, so that the last connections' work is done. */
const SETTLE_MS = 2_000;
/** Everything, both runs: past this the bench gives up (children killed, exit 1). */
const BENCH_TIMEOUT_MS = 15 * 60_000;
const FIRST_TERMINAL_ID = '10000000';
const MERCHANT = 'bench';
const AMOUNT = '1.00';
const AMOUNT_MINOR = 100;
const HOST = '127.0.0.1';
const BIN = fileURLToPath(new URL('../bin/ecr-bridge.js', import.meta.url));
const RELAY = fileURLToPath(new URL('./relay.ts', import.meta.url));

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

/** A count of heartbeats answered, and when it was read. */
interface HeartbeatCount {
  readonly heartbeats: number;
  readonly at: number;
}

const perSecond = (from: HeartbeatCount, to: HeartbeatCount) =>
  ((to.heartbeats - from.heartbeats) * 1000) / (to.at - from.at);

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

interface RelayExtras {
  readonly heartbeatsPerSecondIdle: number;
  readonly heartbeatsPerSecondUnderLoad: number;
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

function checkCharges(side: string, simulator: { readonly ledger: { count: number } }): number {
  const count = simulator.ledger.count;
  if (count !== TX + WARMUP)
    throw new Error(`${side}: the terminals made ${count} charges, ${TX + WARMUP} expected`);
  return count;
}

let simulator: EconduitSimulator | undefined;
let mqttFleetInUse: MqttTerminalFleet | undefined;
let brokerInUse: Broker | undefined;
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
  const connectMs = await connectAll(econduitFleet(sim), 'gateway', PACING);
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
  const drive = posDriver(terminalIdsOf(sim), CONCURRENCY);
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

async function relayRun(): Promise<RunResult & RelayExtras> {
  const relay = await startChild('relay', ['--import', 'tsx', RELAY]);
  const terminalPort = Number(relay.info.terminal);
  const posPort = Number(relay.info.pos);
  await sleep(SETTLE_MS);
  const before = memoryOf(relay.pid);

  simulator = newSimulator(terminalPort);
  const sim = simulator;
  const connectMs = await connectAll(econduitFleet(sim), 'relay', PACING);
  log(`relay: ${TERMINALS} terminals online (${(connectMs / 1000).toFixed(1)} s connecting)`);
  await sleep(SETTLE_MS);
  const withTerminals = memoryOf(relay.pid);
  const online = sim.onlineCount;

  const connections = await Promise.all(
    Array.from({ length: CONCURRENCY }, () => RelayConnection.open(posPort)),
  );
  const statsConnection = await RelayConnection.open(posPort);
  const stats = async (): Promise<HeartbeatCount> => {
    const frame = await statsConnection.request(Buffer.from('#stats\x04\x04', 'latin1'));
    const { heartbeats } = JSON.parse(frame.toString('utf8')) as { heartbeats: number };
    return { heartbeats, at: performance.now() };
  };
  try {
    // Heartbeats over one whole interval, the fleet idle, as for the gateway.
    const idleFrom = await stats();
    await sleep(HEARTBEAT_MS);
    const idleTo = await stats();
    log(`relay: ${perSecond(idleFrom, idleTo).toFixed(0)} heartbeats/s, idle`);
    // The bytes the gateway's SEMI driver writes for the same sale, behind the terminal's id.
    const sale = baselineSale('relay', (w, terminalId, semi) =>
      (connections[w] as RelayConnection).request(
        Buffer.from(`${terminalId}\n${semi}\x04\x04`, 'utf8'),
      ),
    );
    const drive = posDriver(terminalIdsOf(sim), CONCURRENCY);
    const loadFrom = await stats();
    await drive(WARMUP, 'RLW', sale);
    const timed = await withCpu(relay.pid, () => drive(TX, 'RLT', sale));
    const loadTo = await stats();
    log(`relay: ${TX} sales in ${timed.seconds.toFixed(1)} s`);
    const charges = checkCharges('relay', sim);
    const atEnd = memoryOf(relay.pid);

    await sim.stop();
    simulator = undefined;
    for (const c of connections) c.close();
    statsConnection.close();
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
      heartbeatsPerSecondIdle: perSecond(idleFrom, idleTo),
      heartbeatsPerSecondUnderLoad: perSecond(loadFrom, loadTo),
    };
  } finally {
    for (const c of connections) c.close();
    statsConnection.close();
  }
}

/**
 * One sale through a baseline (the relay, MQTT): the SEMI request the gateway's driver would
 * write (its REQ_TXN_ID the journal's row id, a number of the same few digits), carried by
 * `send`, timed, and its answer checked to be the approval of that sale.
 */
function baselineSale(
  name: string,
  send: (worker: number, terminalId: string, semi: string, refId: string) => Promise<Buffer>,
): PosCall {
  return async (w, seq, terminalId, refId) => {
    const semi = encodeRequest({
      code: 'sale',
      mode: 'credit',
      amountMinor: AMOUNT_MINOR,
      merTxnId: refId,
      reqTxnId: String(seq + 1),
    });
    const started = performance.now();
    const answer = await send(w, terminalId, semi, refId).catch((error: unknown) => {
      throw new Error(`${name}: ${refId} on terminal ${terminalId}: ${(error as Error).message}`);
    });
    const ms = performance.now() - started;
    const text = answer.toString('utf8');
    let approved = false;
    try {
      const response = decodeResponse(text, 'sale');
      approved = response.state === '0' && response.merTxnId === refId;
    } catch {
      approved = false;
    }
    if (!approved)
      throw new Error(`${name}: ${refId} on terminal ${terminalId}: ${text.slice(0, 300)}`);
    return ms;
  };
}

interface MqttExtras {
  readonly broker: string;
  readonly version: string | undefined;
  readonly qos: Qos;
  readonly terminals: number;
  readonly brokerOpenFileLimit: number;
  readonly heartbeatsPerSecondIdle: number;
  readonly heartbeatsPerSecondUnderLoad: number;
  /** The bench process holding the MQTT clients (one connection each), for scale. */
  readonly clientProcessRssKiB: number;
}

/** Open files the broker needs besides the terminals' connections (POS clients, its own). */
const BROKER_SPARE_FILES = 64;

async function mqttRun(dir: string): Promise<RunResult & MqttExtras> {
  const broker: Broker = await startBroker(dir);
  brokerInUse = broker;
  const limit = broker.pid === undefined ? Infinity : openFileLimitOf(broker.pid);
  const count = Math.min(MQTT_TERMINALS, limit - CONCURRENCY - BROKER_SPARE_FILES);
  if (count < MQTT_TERMINALS)
    log(`mqtt: the broker may open ${limit} files: ${count} terminals, not ${MQTT_TERMINALS}`);
  await sleep(SETTLE_MS);
  const memory = () =>
    broker.pid === undefined ? { rssKiB: NaN, hwmKiB: NaN } : memoryOf(broker.pid);
  const before = memory();

  const ids = Array.from({ length: count }, (_, i) => `${BigInt(FIRST_TERMINAL_ID) + BigInt(i)}`);
  const fleet = new MqttTerminalFleet(broker, ids, HEARTBEAT_MS / 1000, MQTT_QOS);
  mqttFleetInUse = fleet;
  const connectMs = await connectAll(mqttFleet(fleet), 'mqtt', PACING);
  log(`mqtt: ${count} terminals connected and subscribed (${(connectMs / 1000).toFixed(1)} s)`);
  await sleep(SETTLE_MS);
  const withTerminals = memory();
  const online = fleet.onlineCount;
  const clientProcessRssKiB = process.memoryUsage().rss / 1024;

  // Keepalive pings over one whole interval, the fleet idle: the MQTT heartbeats.
  const pings = () => ({ count: fleet.heartbeatsAnswered, at: performance.now() });
  const idleFrom = pings();
  await sleep(HEARTBEAT_MS);
  const idleTo = pings();
  const rate = (from: typeof idleFrom, to: typeof idleFrom) =>
    ((to.count - from.count) * 1000) / (to.at - from.at);
  log(`mqtt: ${rate(idleFrom, idleTo).toFixed(0)} keepalive pings answered/s, idle`);

  const requester = await MqttRequester.open(broker, CONCURRENCY, MQTT_QOS);
  try {
    const sale = baselineSale('mqtt', (w, terminalId, semi, refId) =>
      requester.request(w, terminalId, semi, refId, CALL_TIMEOUT_MS),
    );
    const drive = posDriver(ids, CONCURRENCY);
    const loadFrom = pings();
    await drive(WARMUP, 'MQW', sale);
    const timed =
      broker.pid === undefined
        ? { ...(await drive(TX, 'MQT', sale)), cpu: { childPercent: NaN, benchPercent: NaN } }
        : await withCpu(broker.pid, () => drive(TX, 'MQT', sale));
    const loadTo = pings();
    log(`mqtt: ${TX} sales in ${timed.seconds.toFixed(1)} s`);
    const charges = checkCharges('mqtt', fleet);
    const atEnd = memory();

    await requester.close();
    await fleet.stop();
    mqttFleetInUse = undefined;
    brokerInUse = undefined;
    const exitCode = await broker.stop();
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
      rssPerTerminalKiB: (withTerminals.rssKiB - before.rssKiB) / count,
      charges,
      exitCode,
      cpu: timed.cpu,
      broker: broker.describe,
      version: broker.version,
      qos: MQTT_QOS,
      terminals: count,
      brokerOpenFileLimit: limit,
      heartbeatsPerSecondIdle: rate(idleFrom, idleTo),
      heartbeatsPerSecondUnderLoad: rate(loadFrom, loadTo),
      clientProcessRssKiB,
    };
  } finally {
    await requester.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Main

const started = performance.now();
const dir = mkdtempSync(join(tmpdir(), 'ecr-bridge-bench-gateway-'));

/** Kills what is left; used on every path out. */
async function cleanUp(): Promise<void> {
  httpAgent.destroy();
  const sim = simulator;
  simulator = undefined;
  await Promise.race([sim?.stop(), sleep(STOP_TIMEOUT_MS, undefined, UNREF)]);
  const fleet = mqttFleetInUse;
  mqttFleetInUse = undefined;
  await Promise.race([fleet?.stop(), sleep(STOP_TIMEOUT_MS, undefined, UNREF)]);
  await brokerInUse?.stop();
  await Promise.all([...running].map((c) => stopChild(c)));
  rmSync(dir, { recursive: true, force: true });
}

await benchMain(
  'gateway',
  async () => {
    console.log(
      `\ngateway bench: ${TERMINALS} simulated terminals, heartbeat every ${HEARTBEAT_MS} ms; ` +
        `${TX} sales (+${WARMUP} warm-up), ${CONCURRENCY} in flight; MQTT QoS ${MQTT_QOS}`,
    );
    const b = await gatewayRun(dir);
    const a = await relayRun();
    const c = await mqttRun(dir);

    const names = [
      '(a) bare TCP relay (node:net)',
      '(b) gateway, HTTP runTransaction',
      `(c) MQTT via ${c.version ?? 'mosquitto'}, QoS ${c.qos}`,
    ] as const;
    console.log(
      `\n${TX} sales of ${AMOUNT} each, ${CONCURRENCY} in flight (each on a terminal of its own), ` +
        `${TERMINALS} terminals connected (MQTT: ${c.terminals}) and heartbeating every ` +
        `${HEARTBEAT_MS / 1000} s; POS→terminal→POS latency\n`,
    );
    printTable([
      [names[0], a.latency],
      [names[1], b.latency],
    ]);
    printTable([
      [names[2], c.latency],
      [names[1], b.latency],
    ]);
    const row = (name: string, ...values: string[]) =>
      console.log(`${name.padEnd(40)} ${values.map((v) => v.padStart(13)).join('')}`);
    const both = (x: number, base: number, digits = 2) => (x / base).toFixed(digits);
    console.log('');
    row('', '(a) relay', '(b) gateway', '(c) MQTT', 'ratio b/a', 'ratio b/c');
    row(
      `sales/s, ${CONCURRENCY} in flight`,
      a.perSecond.toFixed(0),
      b.perSecond.toFixed(0),
      c.perSecond.toFixed(0),
      both(b.perSecond, a.perSecond),
      both(b.perSecond, c.perSecond),
    );
    row(
      'terminals online',
      String(a.terminalsOnline),
      String(b.terminalsOnline),
      String(c.terminalsOnline),
    );
    row(
      `time to connect all, ${BATCH} at a time (s)`,
      a.connectSeconds.toFixed(1),
      b.connectSeconds.toFixed(1),
      c.connectSeconds.toFixed(1),
      both(b.connectSeconds, a.connectSeconds),
      both(b.connectSeconds, c.connectSeconds),
    );
    row(
      'VmRSS, no terminal (MiB)',
      (a.rssBeforeKiB / 1024).toFixed(1),
      (b.rssBeforeKiB / 1024).toFixed(1),
      (c.rssBeforeKiB / 1024).toFixed(1),
    );
    row(
      'VmRSS, all terminals (MiB)',
      (a.rssWithTerminalsKiB / 1024).toFixed(1),
      (b.rssWithTerminalsKiB / 1024).toFixed(1),
      (c.rssWithTerminalsKiB / 1024).toFixed(1),
    );
    row(
      'VmRSS per connected terminal (KiB)',
      a.rssPerTerminalKiB.toFixed(2),
      b.rssPerTerminalKiB.toFixed(2),
      c.rssPerTerminalKiB.toFixed(2),
      both(b.rssPerTerminalKiB, a.rssPerTerminalKiB),
      both(b.rssPerTerminalKiB, c.rssPerTerminalKiB),
    );
    row(
      `heartbeats/s, idle (expected ${Math.round((TERMINALS * 1000) / HEARTBEAT_MS)})`,
      a.heartbeatsPerSecondIdle.toFixed(0),
      b.heartbeatsPerSecondIdle.toFixed(0),
      c.heartbeatsPerSecondIdle.toFixed(0),
      both(b.heartbeatsPerSecondIdle, a.heartbeatsPerSecondIdle),
      both(b.heartbeatsPerSecondIdle, c.heartbeatsPerSecondIdle),
    );
    row(
      'heartbeats/s, during the sales',
      a.heartbeatsPerSecondUnderLoad.toFixed(0),
      b.heartbeatsPerSecondUnderLoad.toFixed(0),
      c.heartbeatsPerSecondUnderLoad.toFixed(0),
    );
    row('  (MQTT: keepalive PINGRESPs the terminals got)');
    row(
      'registrations / online at the end',
      '',
      `${b.registrationsOk} / ${b.terminalsOnlineAtEnd}`,
    );
    row('HTTP connections opened', '', String(b.httpConnections));
    row(
      'CPU in the timed sales, % of a core',
      a.cpu.childPercent.toFixed(0),
      b.cpu.childPercent.toFixed(0),
      c.cpu.childPercent.toFixed(0),
    );
    row(
      '  bench process (terminals and POS)',
      a.cpu.benchPercent.toFixed(0),
      b.cpu.benchPercent.toFixed(0),
      c.cpu.benchPercent.toFixed(0),
    );
    row(
      'VmRSS after the sales (MiB)',
      (a.rssAtEndKiB / 1024).toFixed(1),
      (b.rssAtEndKiB / 1024).toFixed(1),
      (c.rssAtEndKiB / 1024).toFixed(1),
    );
    row(
      'VmHWM (MiB)',
      (a.hwmKiB / 1024).toFixed(1),
      (b.hwmKiB / 1024).toFixed(1),
      (c.hwmKiB / 1024).toFixed(1),
    );
    row('charges on the terminals', String(a.charges), String(b.charges), String(c.charges));
    row('child exit code', String(a.exitCode), String(b.exitCode), String(c.exitCode));
    row(
      'MQTT: bench process VmRSS with its clients',
      '',
      '',
      `${(c.clientProcessRssKiB / 1024).toFixed(0)} MiB`,
    );
    const seconds = (performance.now() - started) / 1000;
    console.log(`bench took ${seconds.toFixed(1)} s`);

    const gw = 'gateway';
    const against = (
      measure: string,
      unit: string,
      better: 'lower' | 'higher',
      pick: (r: RunResult) => number,
    ): Ratio[] => [
      compare(measure, unit, better, [gw, pick(b)], ['bare TCP relay', pick(a)]),
      compare(measure, unit, better, [gw, pick(b)], [`MQTT (mosquitto, QoS ${c.qos})`, pick(c)]),
    ];
    const ratios: Ratio[] = [
      ...against('latency p50', 'ms', 'lower', (r) => r.latency.p50),
      ...against('latency p99', 'ms', 'lower', (r) => r.latency.p99),
      ...against('throughput', 'sales/s', 'higher', (r) => r.perSecond),
      ...against('memory per connection', 'KiB', 'lower', (r) => r.rssPerTerminalKiB),
      ...against('time to connect', 's', 'lower', (r) => r.connectSeconds),
      compare(
        'heartbeats/s answered',
        'heartbeats/s',
        'higher',
        [gw, b.heartbeatsPerSecondIdle],
        ['bare TCP relay', a.heartbeatsPerSecondIdle],
      ),
      compare(
        'heartbeats/s answered',
        'heartbeats/s',
        'higher',
        [gw, b.heartbeatsPerSecondIdle],
        [`MQTT keepalive pings (QoS ${c.qos})`, c.heartbeatsPerSecondIdle],
      ),
    ];
    const sides = [
      ['relay', a],
      ['gateway', b],
      ['mqtt', c],
    ] as const;
    const figures: Figure[] = [
      ...sides.flatMap(([side, r]) => [
        figure(`${side}: terminals connected`, r.terminalsOnline, 'terminals'),
        figure(`${side}: latency p50`, r.latency.p50, 'ms'),
        figure(`${side}: latency p99`, r.latency.p99, 'ms'),
        figure(`${side}: latency mean`, r.latency.mean, 'ms'),
        figure(`${side}: throughput`, r.perSecond, 'sales/s'),
        figure(`${side}: memory per connection`, r.rssPerTerminalKiB, 'KiB'),
        figure(`${side}: VmRSS with all connected`, r.rssWithTerminalsKiB / 1024, 'MiB'),
        figure(`${side}: time to connect`, r.connectSeconds, 's'),
        figure(`${side}: CPU during the sales`, r.cpu.childPercent, '% of a core'),
      ]),
      figure('relay: heartbeats/s idle', a.heartbeatsPerSecondIdle, 'heartbeats/s'),
      figure('gateway: heartbeats/s idle', b.heartbeatsPerSecondIdle, 'heartbeats/s'),
      figure(
        'gateway: heartbeats/s during the sales',
        b.heartbeatsPerSecondUnderLoad,
        'heartbeats/s',
      ),
      figure('mqtt: keepalive pings/s idle', c.heartbeatsPerSecondIdle, 'heartbeats/s'),
      figure(
        'mqtt: keepalive pings/s during the sales',
        c.heartbeatsPerSecondUnderLoad,
        'heartbeats/s',
      ),
    ];
    writeResult({
      bench: 'gateway',
      title: `Gateway: ${TERMINALS} terminals, ${TX} sales, ${CONCURRENCY} in flight`,
      seconds,
      parameters: {
        terminals: TERMINALS,
        mqttTerminals: c.terminals,
        heartbeatIntervalMs: HEARTBEAT_MS,
        sales: TX,
        warmup: WARMUP,
        concurrency: CONCURRENCY,
        amount: AMOUNT,
        mqttQos: c.qos,
        mqttBroker: `${c.broker}${c.version === undefined ? '' : `, ${c.version}`}`,
      },
      figures,
      ratios,
      details: { relay: a, gateway: b, mqtt: c },
    });
  },
  {
    timeoutMs: BENCH_TIMEOUT_MS,
    cleanUp,
    abandon: () => rmSync(dir, { recursive: true, force: true }),
    logs: () => [{ label: 'gateway', path: join(dir, 'gateway', 'logs', 'ecr-bridge.log') }],
  },
);
