/**
 * What the gateway bench's three runs share: its settings (BENCH_GATEWAY_…, BENCH_MQTT_…), the
 * figures each run returns, the simulated fleet and the charge check, and what is left to stop
 * when the bench ends early.
 */
import {
  ECONDUIT_SIMULATOR_MAX_COUNT,
  EconduitSimulator,
} from '../src/simulators/econduit/simulator.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { memoryOf } from './children.js';
import { connectAll, econduitFleet, type CpuShare, type Pacing, type Phase } from './fleet.js';
import type { Broker, MqttTerminalFleet, Qos } from './mqtt-baseline.js';
import { envCount, summarise, type Summary } from './stats.js';

/** Simulated terminals connected to each side. */
export const TERMINALS = envCount(
  'BENCH_GATEWAY_TERMINALS',
  10_000,
  1,
  ECONDUIT_SIMULATOR_MAX_COUNT,
);
/** Sales timed on each side, after WARMUP. */
export const TX = envCount('BENCH_GATEWAY_TX', 3_000, 1, 1_000_000);
/** POS calls in flight at once; each worker has terminals of its own. */
export const CONCURRENCY = envCount(
  'BENCH_GATEWAY_CONCURRENCY',
  Math.min(32, TERMINALS),
  1,
  Math.min(1_000, TERMINALS),
);
/** The heartbeat interval, shortened from the seed's 60 s: TERMINALS / this many per second. */
export const HEARTBEAT_MS = envCount('BENCH_GATEWAY_HEARTBEAT_MS', 10_000, 100, 600_000);
/** MQTT terminals: as many as the others unless told (capped by the broker's open files). */
export const MQTT_TERMINALS = envCount('BENCH_MQTT_TERMINALS', TERMINALS, 1, 100_000);
/** QoS of the MQTT requests and answers: 1 (acknowledged), what a payment would use; or 0. */
export const MQTT_QOS = envCount('BENCH_MQTT_QOS', 1, 0, 1) as Qos;
export const WARMUP = 200;
/** Terminals started at once: more could overflow the listen backlog (511). */
export const BATCH = 250;
const BATCH_ONLINE_TIMEOUT_MS = 60_000;
export const PACING: Pacing = {
  batch: BATCH,
  spreadMs: HEARTBEAT_MS,
  batchTimeoutMs: BATCH_ONLINE_TIMEOUT_MS,
};
/** Quiet time before an RSS reading, so that the last connections' work is done. */
export const SETTLE_MS = 2_000;
const FIRST_TERMINAL_ID = '10000000';
export const AMOUNT = '1.00';
export const AMOUNT_MINOR = 100;
const HOST = '127.0.0.1';

export const log = (text: string) => console.log(`  ${text}`);

/** What every side's run measures (the server: the gateway, the relay or the broker). */
export interface RunResult {
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

/** What the gateway's run measures besides (from its /metrics, and its HTTP connections). */
export interface GatewayExtras {
  readonly heartbeatsPerSecondIdle: number;
  readonly heartbeatsPerSecondUnderLoad: number;
  readonly registrationsOk: number;
  readonly terminalsOnlineAtEnd: number;
  readonly httpConnections: number;
}

type Memory = { readonly rssKiB: number; readonly hwmKiB: number };

/** A side's RunResult from its readings: `terminals` connected, the server's memory at each step. */
export function runResult(run: {
  readonly timed: Phase & { readonly cpu: CpuShare };
  readonly connectMs: number;
  readonly terminalsOnline: number;
  readonly terminals: number;
  readonly before: Memory;
  readonly withTerminals: Memory;
  readonly atEnd: Memory;
  readonly charges: number;
  readonly exitCode: number | string | null;
}): RunResult {
  const { timed, before, withTerminals, atEnd } = run;
  return {
    latency: summarise(timed.samples),
    perSecond: TX / timed.seconds,
    timedSeconds: timed.seconds,
    connectSeconds: run.connectMs / 1000,
    terminalsOnline: run.terminalsOnline,
    rssBeforeKiB: before.rssKiB,
    rssWithTerminalsKiB: withTerminals.rssKiB,
    rssAtEndKiB: atEnd.rssKiB,
    hwmKiB: atEnd.hwmKiB,
    rssPerTerminalKiB: (withTerminals.rssKiB - before.rssKiB) / run.terminals,
    charges: run.charges,
    exitCode: run.exitCode,
    cpu: timed.cpu,
  };
}

/** The terminals' ids, from FIRST_TERMINAL_ID up, as the simulator numbers them. */
export const fleetIds = (count: number) =>
  Array.from({ length: count }, (_, i) => `${BigInt(FIRST_TERMINAL_ID) + BigInt(i)}`);

export const terminalIdsOf = (simulator: EconduitSimulator) =>
  simulator.terminals.map((t) => t.terminalId);

/** The simulated eConduit terminals of a run, not started: connectAll brings them online. */
export const newSimulator = (port: number) =>
  new EconduitSimulator({
    endpoints: [{ host: HOST, port }],
    terminalId: FIRST_TERMINAL_ID,
    count: TERMINALS,
    heartbeatIntervalMs: HEARTBEAT_MS,
  });

/**
 * Brings the run's simulated fleet online against `port`, reading the VmRSS of `pid` (the relay
 * or the gateway) once it has settled before, and again after: the steps both runs share.
 */
export async function connectFleet(side: string, pid: number, port: number) {
  await sleep(SETTLE_MS);
  const before = memoryOf(pid);
  inUse.simulator = newSimulator(port);
  const sim = inUse.simulator;
  const connectMs = await connectAll(econduitFleet(sim), side, PACING);
  log(`${side}: ${TERMINALS} terminals online (${(connectMs / 1000).toFixed(1)} s connecting)`);
  await sleep(SETTLE_MS);
  return { sim, before, withTerminals: memoryOf(pid), connectMs };
}

/** The terminals charged once per sale sent (warm-up included), or the run fails. */
export function checkCharges(
  side: string,
  simulator: { readonly ledger: { count: number } },
): number {
  const count = simulator.ledger.count;
  if (count !== TX + WARMUP)
    throw new Error(`${side}: the terminals made ${count} charges, ${TX + WARMUP} expected`);
  return count;
}

/** What a run has running in this process, for the clean-up when the bench ends early. */
export const inUse: {
  simulator?: EconduitSimulator | undefined;
  mqttFleet?: MqttTerminalFleet | undefined;
  broker?: Broker | undefined;
} = {};
