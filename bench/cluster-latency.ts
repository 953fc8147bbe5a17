/**
 * The cluster bench's part (1): POS→terminal→POS latency with the terminal on the node the POS
 * calls, against the terminal on another node (the request crosses NATS to its holder and back),
 * interleaved call by call under the same load.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { EconduitSimulator } from '../src/simulators/econduit/simulator.js';
import { cpuSecondsOf, UNREF } from './children.js';
import { type ClusterNodeChild, terminalsSeenBy, until } from './cluster-nodes.js';
import {
  AMOUNT,
  CONCURRENCY,
  HEARTBEAT_MS,
  HOST,
  LATENCY_IDS,
  log,
  STOP_TIMEOUT_MS,
  TX,
  WARMUP,
} from './cluster-setup.js';
import { runTransaction, type Credentials } from './gateway-http.js';
import { summarise, type Summary } from './stats.js';

export interface LatencyResult {
  readonly same: Summary;
  readonly cross: Summary;
  readonly samples: { readonly same: number; readonly cross: number };
  readonly salesPerSecond: number;
  readonly seconds: number;
  readonly charges: number;
  /** CPU of each node during the timed sales, % of one core. */
  readonly cpuPercent: Record<string, number>;
}

let latencySimulator: EconduitSimulator | undefined;

/** Stops the latency run's terminals if it left them running (a bench that failed), bounded. */
export async function stopLatencyTerminals(): Promise<void> {
  const sim = latencySimulator;
  latencySimulator = undefined;
  await Promise.race([sim?.stop(), sleep(STOP_TIMEOUT_MS, undefined, UNREF)]);
}

export async function latencyRun(
  nodes: ClusterNodeChild[],
  shop: Credentials,
): Promise<LatencyResult> {
  const [a, b] = nodes as [ClusterNodeChild, ClusterNodeChild, ClusterNodeChild];
  latencySimulator = new EconduitSimulator({
    endpoints: [{ host: HOST, port: a.tcpPort }],
    terminalId: LATENCY_IDS[0] as string,
    count: CONCURRENCY,
    heartbeatIntervalMs: HEARTBEAT_MS,
  });
  const sim = latencySimulator;
  await sim.start(30_000);
  if (sim.onlineCount !== CONCURRENCY)
    throw new Error(`latency: ${sim.onlineCount} of ${CONCURRENCY} terminals online on node a`);
  // Every node sees them held (by node a) before the first sale.
  for (const node of nodes) {
    await until(
      async () => (await terminalsSeenBy(node, shop)).every((t) => t.online),
      30_000,
      `latency: the terminals online as ${node.nodeId} sees them`,
    );
  }
  log(`latency: ${CONCURRENCY} terminals online on node a, seen by every node`);

  const refIds: string[] = [];
  const sale = (node: ClusterNodeChild, terminalId: string, refId: string) => {
    refIds.push(refId);
    return runTransaction(
      node,
      { merchant: shop, amount: AMOUNT, terminalId, refId },
      `${refId} on ${terminalId} via ${node.nodeId}`,
    );
  };

  /**
   * `count` sales, CONCURRENCY in flight, worker w on terminal w only; call i goes to node a
   * when i is even, node b when odd (the two paths interleaved, under the same load).
   */
  const drive = async (count: number, refPrefix: string) => {
    const samples: [number[], number[]] = [[], []];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      LATENCY_IDS.map(async (terminalId) => {
        while (next < count) {
          const i = next++;
          const path = i % 2;
          try {
            const ms = await sale(path === 0 ? a : b, terminalId, `${refPrefix}${i}`);
            (path === 0 ? samples[0] : samples[1]).push(ms);
          } catch (error) {
            next = count; // the other workers stop after their call in flight
            throw error;
          }
        }
      }),
    );
    return { samples, seconds: (performance.now() - started) / 1000 };
  };

  // refIDs: letters and a short counter, never a digit run that could pass for a card number.
  await drive(WARMUP, 'CLW');
  const cpuBefore = nodes.map((n) => cpuSecondsOf(n.pid));
  const timed = await drive(TX, 'CLT');
  const cpuPercent = Object.fromEntries(
    nodes.map((n, i) => [
      n.nodeId,
      ((cpuSecondsOf(n.pid) - (cpuBefore[i] as number)) * 100) / timed.seconds,
    ]),
  );
  log(`latency: ${TX} sales in ${timed.seconds.toFixed(1)} s`);

  // Exactly one charge per refID sent, and nothing else charged.
  const charged = new Map<string, number>();
  for (const c of sim.ledger.all()) charged.set(c.reference, (charged.get(c.reference) ?? 0) + 1);
  const wrong = refIds.filter((r) => charged.get(r) !== 1);
  if (wrong.length > 0 || sim.ledger.count !== refIds.length)
    throw new Error(
      `latency: ${sim.ledger.count} charges for ${refIds.length} refIDs; not charged exactly ` +
        `once: ${wrong.slice(0, 5).join(', ')}${wrong.length > 5 ? ', …' : ''}`,
    );

  await sim.stop();
  latencySimulator = undefined;
  return {
    same: summarise(timed.samples[0]),
    cross: summarise(timed.samples[1]),
    samples: { same: timed.samples[0].length, cross: timed.samples[1].length },
    salesPerSecond: TX / timed.seconds,
    seconds: timed.seconds,
    charges: sim.ledger.count,
    cpuPercent,
  };
}
