/**
 * The gateway bench's two baselines, each run with the machine to itself: (a) bench/relay.ts, a
 * bare node:net relay as a child process, carrying the same SEMI request bytes to the same kind of
 * simulated terminals and their answers back over raw TCP; (c) MQTT request/response through
 * mosquitto (bench/mqtt-baseline.ts), keepalive pings as heartbeats.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { decodeResponse, encodeRequest } from '../src/protocols/semi/codec.js';
import { memoryOf, openFileLimitOf, startChild, stopChild } from './children.js';
import { connectAll, mqttFleet, posDriver, withCpu, type PosCall } from './fleet.js';
import { CALL_TIMEOUT_MS, perSecond, type HeartbeatCount } from './gateway-http.js';
import {
  AMOUNT_MINOR,
  checkCharges,
  CONCURRENCY,
  connectFleet,
  fleetIds,
  HEARTBEAT_MS,
  inUse,
  log,
  MQTT_QOS,
  MQTT_TERMINALS,
  PACING,
  runResult,
  SETTLE_MS,
  TERMINALS,
  terminalIdsOf,
  TX,
  WARMUP,
  type RunResult,
} from './gateway-setup.js';
import {
  MqttRequester,
  MqttTerminalFleet,
  startBroker,
  type Broker,
  type Qos,
} from './mqtt-baseline.js';
import { RelayConnection } from './relay-client.js';

const RELAY = fileURLToPath(new URL('./relay.ts', import.meta.url));

export interface RelayExtras {
  readonly heartbeatsPerSecondIdle: number;
  readonly heartbeatsPerSecondUnderLoad: number;
}

export async function relayRun(): Promise<RunResult & RelayExtras> {
  const relay = await startChild('relay', ['--import', 'tsx', RELAY]);
  const terminalPort = Number(relay.info.terminal);
  const posPort = Number(relay.info.pos);
  const { sim, before, withTerminals, connectMs } = await connectFleet(
    'relay',
    relay.pid,
    terminalPort,
  );
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
    inUse.simulator = undefined;
    for (const c of connections) c.close();
    statsConnection.close();
    const exitCode = await stopChild(relay);
    return {
      ...runResult({
        timed,
        connectMs,
        terminalsOnline: online,
        terminals: TERMINALS,
        before,
        withTerminals,
        atEnd,
        charges,
        exitCode,
      }),
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

export interface MqttExtras {
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

export async function mqttRun(dir: string): Promise<RunResult & MqttExtras> {
  const broker: Broker = await startBroker(dir);
  inUse.broker = broker;
  const limit = broker.pid === undefined ? Infinity : openFileLimitOf(broker.pid);
  const count = Math.min(MQTT_TERMINALS, limit - CONCURRENCY - BROKER_SPARE_FILES);
  if (count < MQTT_TERMINALS)
    log(`mqtt: the broker may open ${limit} files: ${count} terminals, not ${MQTT_TERMINALS}`);
  await sleep(SETTLE_MS);
  const memory = () =>
    broker.pid === undefined ? { rssKiB: NaN, hwmKiB: NaN } : memoryOf(broker.pid);
  const before = memory();

  const ids = fleetIds(count);
  const fleet = new MqttTerminalFleet(broker, ids, HEARTBEAT_MS / 1000, MQTT_QOS);
  inUse.mqttFleet = fleet;
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
    inUse.mqttFleet = undefined;
    inUse.broker = undefined;
    const exitCode = await broker.stop();
    return {
      ...runResult({
        timed,
        connectMs,
        terminalsOnline: online,
        terminals: count,
        before,
        withTerminals,
        atEnd,
        charges,
        exitCode,
      }),
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
