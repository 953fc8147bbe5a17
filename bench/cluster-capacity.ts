/**
 * The cluster bench's part (2): TERMINALS terminals held by the three node processes, in
 * `ecr-bridge simulate econduit --count` child processes, a third on each node.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { startChild, type RunningChild } from './children.js';
import {
  onlineOn,
  rssOf,
  stop,
  terminalsSeenBy,
  until,
  type ClusterNodeChild,
} from './cluster-nodes.js';
import {
  BIN,
  HEARTBEAT_MS,
  HOST,
  log,
  NODES,
  ONLINE_TIMEOUT_MS,
  PROBE_IDS,
  SETTLE_MS,
  simulatorsOf,
  TERMINALS,
} from './cluster-setup.js';
import { perSecond, readMetrics, type Credentials, type GatewayMetrics } from './gateway-http.js';

/** Per node of the terminals: how many a holder answered for over NATS, how many got no answer. */
export interface Reachability {
  readonly reachable: number[];
  readonly unanswered: number[];
  readonly seconds: number;
}

interface NodeCapacity {
  readonly node: string;
  readonly online: number;
  readonly rssBeforeKiB: number;
  readonly rssWithTerminalsKiB: number;
  readonly rssPerTerminalKiB: number;
  readonly heartbeatsPerSecond: number;
  readonly registrationsOk: number;
  readonly simulatorProcesses: number;
  readonly simulatorRssKiB: number;
  /** Of this node's terminals, those that answered through NATS (held by some node). */
  readonly reachable: number;
  /** Of this node's terminals, those whose holder did not answer in time. */
  readonly unanswered: number;
  readonly onlineAfterHeartbeatWindow: number;
}

export interface CapacityResult {
  readonly nodes: NodeCapacity[];
  readonly online: number;
  /** From the first simulator process spawned to every terminal online. */
  readonly connectSeconds: number;
  /** The slowest node's, simulator process starts left out. */
  readonly connectingSeconds: number;
  readonly heartbeatsPerSecond: number;
  /** Terminals that answered through NATS, all nodes. */
  readonly reachable: number;
  readonly scanSeconds: number;
  /** Node a's first terminals (merchant `probe`): how many each node's list shows online. */
  readonly probe: {
    readonly terminals: number;
    readonly onlineAsSeenBy: Record<string, number>;
    readonly msPerList: number;
  };
}

/**
 * Brings TERMINALS terminals online over the nodes (simulator processes, a third on each), then
 * reads what the nodes hold: memory, presence from every node, reachability (`scan`), heartbeats.
 */
export async function capacityRun(
  nodes: ClusterNodeChild[],
  probe: Credentials,
  scan: () => Promise<Reachability>,
): Promise<CapacityResult> {
  const rssBefore = nodes.map((n) => rssOf(n.pid));
  const registrationsBefore = await Promise.all(nodes.map(readMetrics));
  const simulators: RunningChild[][] = nodes.map(() => []);
  /** Per node: from each simulator's first line (its agents started) to its terminals online. */
  const connectingMs = nodes.map(() => 0);

  // Each node's simulator processes one after the other (each online before the next); the
  // three nodes at once.
  const started = performance.now();
  await Promise.all(
    nodes.map(async (node, n) => {
      let expected = 0;
      for (const [k, s] of simulatorsOf(n).entries()) {
        const sim = await startChild(`simulator ${NODES[n]}${k + 1}`, [
          BIN,
          'simulate',
          'econduit',
          '--gateway',
          `${HOST}:${node.tcpPort}`,
          '--id',
          s.first,
          '--count',
          String(s.count),
          '--heartbeat',
          String(HEARTBEAT_MS),
          '--log-level',
          'warn',
          '--json',
        ]);
        simulators[n]?.push(sim);
        if (sim.info.terminals !== s.count)
          throw new Error(`${sim.name}: ${String(sim.info.terminals)} terminals, ${s.count} asked`);
        expected += s.count;
        const from = performance.now();
        await until(
          async () => {
            if (sim.child.exitCode !== null || sim.child.signalCode !== null)
              throw new Error(`${sim.name} exited: ${sim.stderr()}`);
            return (await onlineOn(node)) >= expected;
          },
          ONLINE_TIMEOUT_MS,
          `${node.nodeId}: ${expected} terminals online`,
        );
        connectingMs[n] = (connectingMs[n] as number) + performance.now() - from;
      }
    }),
  );
  // A terminal can drop again after it was counted (its agent gave up on a slow answer and
  // reconnects): all nodes must hold their share at the same time.
  let online: number[] = [];
  await until(
    async () => {
      online = await Promise.all(nodes.map(onlineOn));
      return online.reduce((x, y) => x + y, 0) === TERMINALS;
    },
    ONLINE_TIMEOUT_MS,
    `capacity: ${TERMINALS} terminals online at once`,
  );
  const connectSeconds = (performance.now() - started) / 1000;
  const total = online.reduce((x, y) => x + y, 0);
  if (total !== TERMINALS)
    throw new Error(
      `capacity: ${total} terminals online (${online.join(' + ')}), ${TERMINALS} sent`,
    );
  log(
    `capacity: ${TERMINALS} terminals online (${online.join(' + ')}) in ${connectSeconds.toFixed(1)} s`,
  );
  await sleep(SETTLE_MS);
  const rssWith = nodes.map((n) => rssOf(n.pid));

  // Presence: every node (node c above all) sees node a's terminals as node a holds them.
  const probeStarted = performance.now();
  const probeOnline: Record<string, number> = {};
  let probeSeen: string | undefined;
  for (const node of [...nodes].reverse()) {
    const seen = await terminalsSeenBy(node, probe);
    const online = seen
      .filter((t) => t.online)
      .map((t) => t.terminalId)
      .sort()
      .join(' ');
    if (seen.length !== PROBE_IDS.length || online === '')
      throw new Error(
        `capacity: ${node.nodeId} shows node a's terminals as ${JSON.stringify(seen)}`,
      );
    if (probeSeen !== undefined && online !== probeSeen)
      throw new Error(`capacity: the nodes disagree on which of node a's terminals are online`);
    probeSeen = online;
    probeOnline[node.nodeId] = seen.filter((t) => t.online).length;
  }
  const probeMs = (performance.now() - probeStarted) / nodes.length;

  // Every terminal a node counts online should be reachable through the cluster (held on NATS).
  const reach = await scan();
  log(
    `capacity: ${reach.reachable.reduce((x, y) => x + y, 0)} of ${TERMINALS} terminals reachable ` +
      `through the cluster (${reach.reachable.join(' + ')}; scan ${reach.seconds.toFixed(1)} s)`,
  );

  // Heartbeats over one whole interval.
  const from = await Promise.all(nodes.map(readMetrics));
  await sleep(HEARTBEAT_MS);
  const to = await Promise.all(nodes.map(readMetrics));
  const rates = nodes.map((_n, i) => perSecond(from[i] as GatewayMetrics, to[i] as GatewayMetrics));
  log(`capacity: ${rates.reduce((x, y) => x + y, 0).toFixed(0)} heartbeats/s`);
  const onlineAfter = to.map((m) => m.online);

  const result: CapacityResult = {
    nodes: nodes.map((node, i) => ({
      node: node.nodeId,
      online: online[i] as number,
      rssBeforeKiB: rssBefore[i] as number,
      rssWithTerminalsKiB: rssWith[i] as number,
      rssPerTerminalKiB:
        ((rssWith[i] as number) - (rssBefore[i] as number)) / (online[i] as number),
      heartbeatsPerSecond: rates[i] as number,
      registrationsOk:
        (to[i] as GatewayMetrics).registrationsOk -
        (registrationsBefore[i] as GatewayMetrics).registrationsOk,
      simulatorProcesses: simulators[i]?.length ?? 0,
      simulatorRssKiB: (simulators[i] ?? []).reduce((sum, s) => sum + rssOf(s.pid), 0),
      reachable: reach.reachable[i] as number,
      unanswered: reach.unanswered[i] as number,
      onlineAfterHeartbeatWindow: onlineAfter[i] as number,
    })),
    online: total,
    connectSeconds,
    connectingSeconds: Math.max(...connectingMs) / 1000,
    heartbeatsPerSecond: rates.reduce((x, y) => x + y, 0),
    reachable: reach.reachable.reduce((x, y) => x + y, 0),
    scanSeconds: reach.seconds,
    probe: { terminals: PROBE_IDS.length, onlineAsSeenBy: probeOnline, msPerList: probeMs },
  };
  await Promise.all(simulators.flat().map((s) => stop(s)));
  return result;
}
