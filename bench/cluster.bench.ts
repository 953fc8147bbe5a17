/**
 * The gateway cluster (issue 8): three `ecr-bridge gateway start --cluster` nodes as child
 * processes, sharing a fresh PostgreSQL schema and NATS subject prefix.
 *
 * (1) POS→terminal→POS latency with the terminal on the node the POS calls, against the terminal
 * on another node (the request crosses NATS to the holder and back), in the same run, interleaved
 * call by call: BENCH_CLUSTER_CONCURRENCY simulated eConduit terminals (8, in this process, all
 * registered on node a) and as many POS calls in flight, each on a terminal of its own; of the
 * BENCH_CLUSTER_TX sales (1,000, after 100 warm-up) every other one calls node a (same node) and
 * the rest node b (the terminal is on node a). Reported: p50 / p99 / mean of each and the ratios
 * cross/same. In cluster mode every node sends through the terminal's holder, itself included, so
 * the same-node path goes through NATS too: the ratio is the cost of the holder being elsewhere.
 *
 * (2) Terminals held by the three node processes: BENCH_CLUSTER_TERMINALS (15,000) simulated
 * terminals in `ecr-bridge simulate econduit --count` child processes (a process holds 20,000
 * open files at most here), a third on each node, each simulator process's terminals all
 * starting at once (a node's processes one after the other). Reported: the time until every
 * node's /healthz counts them all, each node's VmRSS and VmRSS per terminal (against its VmRSS
 * before), the heartbeats per second from the nodes' /metrics over one interval, registrations
 * (more than terminals: some registered again), that every node's /api/v1/terminals shows node
 * a's first terminals (merchant `probe`) as online, and how many of the terminals the nodes count
 * online answer through NATS (the bench asks every one's holder, as a node would): a terminal
 * online on its node but held on no subject is unreachable for every POS, and is warned about.
 *
 * Prints a table and writes its results (bench/results.ts). Never a timed assertion: the bench fails
 * only on a wrong answer (a sale not Approved, a refID charged other than once, a terminal not
 * online on its node, node a's terminals shown offline by every node or differently by two).
 * Needs PostgreSQL and NATS on this machine (see requireServers). Each run has a PostgreSQL
 * schema and NATS subject prefix of its own, dropped / forgotten at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterNode } from '../src/gateway/cluster/node.js';
import { terminalIds } from '../src/simulators/econduit/simulator.js';
import { benchMain, running } from './children.js';
import { capacityRun, type Reachability } from './cluster-capacity.js';
import { latencyRun, stopLatencyTerminals } from './cluster-latency.js';
import { onlineOn, startNode, stop, until, type ClusterNodeChild } from './cluster-nodes.js';
import { checkHeld, printClusterTables, writeClusterResult } from './cluster-report.js';
import {
  BENCH_TIMEOUT_MS,
  CONCURRENCY,
  dropSchema,
  HEARTBEAT_MS,
  log,
  NATS_URL,
  NODES,
  PREFIX,
  provision,
  PROVISION_CONCURRENCY,
  requireServers,
  SCAN_CONCURRENCY,
  SCHEMA,
  SETTLE_MS,
  SIMULATORS_PER_NODE,
  simulatorsOf,
  TERMINALS,
  TX,
  WARMUP,
} from './cluster-setup.js';

/**
 * Asks every capacity terminal's holder for its state over NATS, as any node would (the bench
 * joins the cluster's subjects as a node of its own, holding nothing): per node of the terminals,
 * how many a holder answered for and how many got no answer in time.
 */
async function reachable(): Promise<Reachability> {
  const started = performance.now();
  const probe = await ClusterNode.connect({
    servers: NATS_URL,
    subjectPrefix: PREFIX,
    nodeId: 'bench-scan',
    controlTimeoutMs: 10_000,
  });
  try {
    const found = NODES.map(() => 0);
    const unanswered = NODES.map(() => 0);
    const work = NODES.flatMap((_n, node) =>
      simulatorsOf(node).flatMap((s) => terminalIds(s.first, s.count).map((id) => ({ id, node }))),
    );
    let next = 0;
    await Promise.all(
      Array.from({ length: SCAN_CONCURRENCY }, async () => {
        while (next < work.length) {
          const { id, node } = work[next++] as { id: string; node: number };
          try {
            if ((await probe.presence(id)) !== undefined) found[node] = (found[node] as number) + 1;
          } catch {
            unanswered[node] = (unanswered[node] as number) + 1;
          }
        }
      }),
    );
    return { reachable: found, unanswered, seconds: (performance.now() - started) / 1000 };
  } finally {
    await probe.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Main

const started = performance.now();
const dir = mkdtempSync(join(tmpdir(), 'ecr-bridge-bench-cluster-'));
let nodes: ClusterNodeChild[] = [];
let schemaCreated = false;

/** Kills what is left and drops the schema; used on every path out. */
async function cleanUp(): Promise<void> {
  await stopLatencyTerminals();
  for (const node of nodes) node.agent.destroy();
  // The simulators first: a node stopping would otherwise see them reconnect elsewhere.
  const all = [...running];
  await Promise.all(all.filter((c) => !c.name.startsWith('node-')).map((c) => stop(c)));
  await Promise.all(all.filter((c) => c.name.startsWith('node-')).map((c) => stop(c)));
  if (schemaCreated) await dropSchema();
  rmSync(dir, { recursive: true, force: true });
}

await benchMain(
  'cluster',
  async () => {
    await requireServers();
    console.log(
      `\ncluster bench: 3 nodes (PostgreSQL schema ${SCHEMA}, NATS prefix ${PREFIX}); ` +
        `${TX} sales (+${WARMUP} warm-up), ${CONCURRENCY} in flight; then ${TERMINALS} terminals ` +
        `in ${NODES.length * SIMULATORS_PER_NODE} simulator processes, heartbeat every ${HEARTBEAT_MS} ms`,
    );
    schemaCreated = true;
    const tenants = await provision();
    log(
      `provisioned ${TERMINALS + CONCURRENCY} terminals in ${tenants.seconds.toFixed(1)} s ` +
        `(${PROVISION_CONCURRENCY} at a time)`,
    );
    const startingNodes = performance.now();
    nodes = await Promise.all(NODES.map((letter) => startNode(letter, dir)));
    for (const node of nodes) {
      if (node.info.terminals !== TERMINALS + CONCURRENCY)
        throw new Error(`${node.nodeId}: ${String(node.info.terminals)} terminals provisioned`);
    }
    log(`3 nodes up in ${((performance.now() - startingNodes) / 1000).toFixed(1)} s`);

    const latency = await latencyRun(nodes, tenants.shop);
    // Node a has let the latency terminals go before the capacity run's "before" reading.
    await until(
      async () => (await onlineOn(nodes[0] as ClusterNodeChild)) === 0,
      30_000,
      'node a: the latency terminals gone',
    );
    await sleep(SETTLE_MS);
    const capacity = await capacityRun(nodes, tenants.probe, reachable);

    const exitCodes: Record<string, number | string | null> = {};
    for (const node of nodes) node.agent.destroy();
    for (const node of nodes) exitCodes[node.nodeId] = await stop(node);

    printClusterTables(latency, capacity, nodes, exitCodes);
    checkHeld(capacity);
    const seconds = (performance.now() - started) / 1000;
    console.log(`bench took ${seconds.toFixed(1)} s`);
    writeClusterResult(latency, capacity, tenants.seconds, exitCodes, seconds);
  },
  {
    timeoutMs: BENCH_TIMEOUT_MS,
    cleanUp,
    abandon: async () => {
      rmSync(dir, { recursive: true, force: true });
      if (schemaCreated)
        await dropSchema().catch(() =>
          console.error(`cluster bench: drop schema ${SCHEMA} by hand`),
        );
    },
    logs: () =>
      nodes.map((node) => ({
        label: node.nodeId,
        path: join(dir, node.nodeId, 'logs', 'ecr-bridge.log'),
      })),
  },
);
