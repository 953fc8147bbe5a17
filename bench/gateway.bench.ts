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
import { Agent } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { SqliteTenantStore } from '../src/gateway/tenants.js';
import { JOURNAL_FILE_NAME, SqliteJournal } from '../src/journal/sqlite-journal.js';
import {
  benchMain,
  memoryOf,
  running,
  startChild,
  stopChild,
  STOP_TIMEOUT_MS,
  UNREF,
} from './children.js';
import { posDriver, withCpu, type PosCall } from './fleet.js';
import { mqttRun, relayRun } from './gateway-baselines.js';
import {
  perSecond,
  readMetrics,
  runTransaction,
  type Credentials,
  type HttpTarget,
} from './gateway-http.js';
import { printGatewayTables, writeGatewayResult } from './gateway-report.js';
import {
  AMOUNT,
  checkCharges,
  CONCURRENCY,
  connectFleet,
  fleetIds,
  HEARTBEAT_MS,
  inUse,
  log,
  MQTT_QOS,
  runResult,
  TERMINALS,
  terminalIdsOf,
  TX,
  WARMUP,
  type GatewayExtras,
  type RunResult,
} from './gateway-setup.js';

/** Everything, both runs: past this the bench gives up (children killed, exit 1). */
const BENCH_TIMEOUT_MS = 15 * 60_000;
const MERCHANT = 'bench';
const BIN = fileURLToPath(new URL('../bin/ecr-bridge.js', import.meta.url));

/** Keep-alive HTTP to the gateway: one socket per worker at most. */
const httpAgent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const httpSockets = new Set<Socket>();

async function gatewayRun(dir: string): Promise<RunResult & GatewayExtras> {
  // Tenants first, in-process, in one transaction: one fsync, not one per terminal.
  const dataDir = join(dir, 'gateway');
  const journal = new SqliteJournal({ path: join(dataDir, JOURNAL_FILE_NAME) });
  let credentials: Credentials;
  try {
    const tenants = new SqliteTenantStore(journal);
    credentials = tenants.addMerchant(MERCHANT);
    const ids = fleetIds(TERMINALS);
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
  const target: HttpTarget = {
    base: new URL(String(gateway.info.http)),
    agent: httpAgent,
    sockets: httpSockets,
  };
  const { sim, before, withTerminals, connectMs } = await connectFleet(
    'gateway',
    gateway.pid,
    tcpPort,
  );

  // Heartbeats over one whole interval, the fleet idle.
  const idleFrom = await readMetrics(target);
  await sleep(HEARTBEAT_MS);
  const idleTo = await readMetrics(target);
  log(`gateway: ${perSecond(idleFrom, idleTo).toFixed(0)} heartbeats/s, idle`);

  const sale: PosCall = (_w, _seq, terminalId, refId) =>
    runTransaction(
      target,
      { merchant: credentials, amount: AMOUNT, terminalId, refId },
      `gateway: ${refId} on terminal ${terminalId}`,
    );
  const drive = posDriver(terminalIdsOf(sim), CONCURRENCY);
  const loadFrom = await readMetrics(target);
  await drive(WARMUP, 'GWW', sale);
  const timed = await withCpu(gateway.pid, () => drive(TX, 'GWT', sale));
  const loadTo = await readMetrics(target);
  log(`gateway: ${TX} sales in ${timed.seconds.toFixed(1)} s`);
  const charges = checkCharges('gateway', sim);
  const atEnd = memoryOf(gateway.pid);

  await sim.stop();
  inUse.simulator = undefined;
  httpAgent.destroy();
  const exitCode = await stopChild(gateway);
  return {
    ...runResult({
      timed,
      connectMs,
      terminalsOnline: idleTo.online,
      terminals: TERMINALS,
      before,
      withTerminals,
      atEnd,
      charges,
      exitCode,
    }),
    heartbeatsPerSecondIdle: perSecond(idleFrom, idleTo),
    heartbeatsPerSecondUnderLoad: perSecond(loadFrom, loadTo),
    registrationsOk: loadTo.registrationsOk,
    terminalsOnlineAtEnd: loadTo.online,
    httpConnections: httpSockets.size,
  };
}

// ---------------------------------------------------------------------------------------------
// Main

const started = performance.now();
const dir = mkdtempSync(join(tmpdir(), 'ecr-bridge-bench-gateway-'));

/** Kills what is left; used on every path out. */
async function cleanUp(): Promise<void> {
  httpAgent.destroy();
  const sim = inUse.simulator;
  inUse.simulator = undefined;
  await Promise.race([sim?.stop(), sleep(STOP_TIMEOUT_MS, undefined, UNREF)]);
  const fleet = inUse.mqttFleet;
  inUse.mqttFleet = undefined;
  await Promise.race([fleet?.stop(), sleep(STOP_TIMEOUT_MS, undefined, UNREF)]);
  await inUse.broker?.stop();
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
    printGatewayTables(a, b, c);
    const seconds = (performance.now() - started) / 1000;
    console.log(`bench took ${seconds.toFixed(1)} s`);
    writeGatewayResult(a, b, c, seconds);
  },
  {
    timeoutMs: BENCH_TIMEOUT_MS,
    cleanUp,
    abandon: () => rmSync(dir, { recursive: true, force: true }),
    logs: () => [{ label: 'gateway', path: join(dir, 'gateway', 'logs', 'ecr-bridge.log') }],
  },
);
