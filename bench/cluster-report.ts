/**
 * The cluster bench's report: its tables on stdout, the checks that make a wrong answer fail the
 * bench, and its results file (bench/results.ts).
 */
import type { CapacityResult } from './cluster-capacity.js';
import type { LatencyResult } from './cluster-latency.js';
import {
  AMOUNT,
  CONCURRENCY,
  HEARTBEAT_MS,
  NODES,
  PROBE_IDS,
  SIMULATORS_PER_NODE,
  TERMINALS,
  TX,
  WARMUP,
} from './cluster-setup.js';
import { compare, figure, writeResult } from './results.js';
import { printTable, ratio } from './stats.js';

/** The tables: latency on each path, then what each node held. */
export function printClusterTables(
  latency: LatencyResult,
  capacity: CapacityResult,
  nodes: readonly { readonly nodeId: string }[],
  exitCodes: Readonly<Record<string, number | string | null>>,
): void {
  const names = ['(a) terminal on the node called', '(b) terminal on another node'] as const;
  console.log(
    `\n${TX} sales of ${AMOUNT} (${latency.samples.same} via node a, ${latency.samples.cross} ` +
      `via node b, interleaved), ${CONCURRENCY} in flight, each on a terminal of its own; all ` +
      'terminals on node a; POS→terminal→POS latency\n',
  );
  printTable([
    [names[0], latency.same],
    [names[1], latency.cross],
  ]);
  const row = (name: string, ...values: string[]) =>
    console.log(`${name.padEnd(40)} ${values.map((v) => v.padStart(10)).join('')}`);
  console.log('');
  row('sales/s, both paths together', latency.salesPerSecond.toFixed(0));
  row(
    'CPU in the timed sales, % of a core',
    ...nodes.map((n) => `${n.nodeId} ${(latency.cpuPercent[n.nodeId] ?? 0).toFixed(0)}`),
  );
  console.log('');
  row(`${TERMINALS} terminals`, ...capacity.nodes.map((n) => n.node), 'total');
  row('terminals online', ...capacity.nodes.map((n) => String(n.online)), String(capacity.online));
  row(
    'VmRSS before (MiB)',
    ...capacity.nodes.map((n) => (n.rssBeforeKiB / 1024).toFixed(1)),
    (capacity.nodes.reduce((s, n) => s + n.rssBeforeKiB, 0) / 1024).toFixed(1),
  );
  row(
    'VmRSS with the terminals (MiB)',
    ...capacity.nodes.map((n) => (n.rssWithTerminalsKiB / 1024).toFixed(1)),
    (capacity.nodes.reduce((s, n) => s + n.rssWithTerminalsKiB, 0) / 1024).toFixed(1),
  );
  row('VmRSS per terminal (KiB)', ...capacity.nodes.map((n) => n.rssPerTerminalKiB.toFixed(2)));
  row(
    `heartbeats/s (expected ${Math.round((TERMINALS * 1000) / HEARTBEAT_MS)})`,
    ...capacity.nodes.map((n) => n.heartbeatsPerSecond.toFixed(0)),
    capacity.heartbeatsPerSecond.toFixed(0),
  );
  row(
    'registrations',
    ...capacity.nodes.map((n) => String(n.registrationsOk)),
    String(capacity.nodes.reduce((s, n) => s + n.registrationsOk, 0)),
  );
  row(
    'simulator processes (VmRSS MiB)',
    ...capacity.nodes.map(
      (n) => `${n.simulatorProcesses} (${(n.simulatorRssKiB / 1024).toFixed(0)})`,
    ),
  );
  row('time to connect all (s)', '', '', '', capacity.connectSeconds.toFixed(1));
  row('  simulator process starts left out', '', '', '', capacity.connectingSeconds.toFixed(1));
  row(
    'reachable through NATS (held)',
    ...capacity.nodes.map((n) => String(n.reachable)),
    String(capacity.reachable),
  );
  row('  holder did not answer', ...capacity.nodes.map((n) => String(n.unanswered)));
  row(
    'online after one heartbeat interval',
    ...capacity.nodes.map((n) => String(n.onlineAfterHeartbeatWindow)),
  );
  row(
    `node a's first ${PROBE_IDS.length}: online in each list`,
    ...nodes.map((n) => String(capacity.probe.onlineAsSeenBy[n.nodeId])),
  );
  row('node exit codes', ...nodes.map((n) => String(exitCodes[n.nodeId])));
}

/**
 * Fails on a terminal online on its node but reachable from no node through the cluster; warns
 * of terminals that went offline while the fleet was idle.
 */
export function checkHeld(capacity: CapacityResult): void {
  const unheld = capacity.online - capacity.reachable;
  const unanswered = capacity.nodes.reduce((sum, n) => sum + n.unanswered, 0);
  const dropped = capacity.nodes.reduce((s, n) => s + n.online - n.onlineAfterHeartbeatWindow, 0);
  // A wrong answer, not a slow one: a terminal online on its node must be reachable from all.
  if (unheld !== 0)
    throw new Error(
      `${unheld} of the terminals counted online by their node's /healthz are not ` +
        `reachable through the cluster (${unanswered} of them: no answer from a holder in time; ` +
        'the others held on no NATS subject, so a POS sale on them is TERMINAL_OFFLINE from ' +
        'every node)',
    );
  if (dropped !== 0)
    console.log(`WARNING: ${dropped} terminals went offline in the idle heartbeat interval`);
}

/** The results file, `seconds` the whole bench's. */
export function writeClusterResult(
  latency: LatencyResult,
  capacity: CapacityResult,
  provisionSeconds: number,
  exitCodes: Readonly<Record<string, number | string | null>>,
  seconds: number,
): void {
  const same = 'terminal on the node called';
  const cross = 'terminal on another node (via NATS)';
  writeResult({
    bench: 'cluster',
    title: `Gateway cluster: 3 nodes, ${TX} sales; ${TERMINALS} terminals held`,
    seconds,
    parameters: {
      nodes: NODES.length,
      sales: TX,
      warmup: WARMUP,
      concurrency: CONCURRENCY,
      terminals: TERMINALS,
      heartbeatIntervalMs: HEARTBEAT_MS,
      simulatorProcessesPerNode: SIMULATORS_PER_NODE,
    },
    figures: [
      figure('cluster: latency p50, same node', latency.same.p50, 'ms'),
      figure('cluster: latency p50, cross node', latency.cross.p50, 'ms'),
      figure('cluster: throughput, both paths', latency.salesPerSecond, 'sales/s'),
      figure('cluster: terminals connected', capacity.online, 'terminals'),
      figure('cluster: terminals reachable through NATS', capacity.reachable, 'terminals'),
      figure('cluster: time to connect', capacity.connectSeconds, 's'),
      figure('cluster: heartbeats/s', capacity.heartbeatsPerSecond, 'heartbeats/s'),
      figure('cluster: heartbeats/s expected', (TERMINALS * 1000) / HEARTBEAT_MS, 'heartbeats/s'),
      ...capacity.nodes.map((n) =>
        figure(`cluster: memory per connection, ${n.node}`, n.rssPerTerminalKiB, 'KiB'),
      ),
    ],
    ratios: [
      compare('latency p50', 'ms', 'lower', [cross, latency.cross.p50], [same, latency.same.p50]),
      compare('latency p99', 'ms', 'lower', [cross, latency.cross.p99], [same, latency.same.p99]),
    ],
    details: {
      latency: {
        samples: latency.samples,
        latencyMs: { sameNode: latency.same, crossNode: latency.cross },
        ratio: ratio(latency.cross, latency.same),
        salesPerSecond: latency.salesPerSecond,
        cpuPercent: latency.cpuPercent,
        charges: latency.charges,
      },
      capacity: { provisionSeconds, ...capacity },
      exitCodes,
    },
  });
}
