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
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { connect as natsConnect } from 'nats';
import pg from 'pg';
import { ClusterNode } from '../src/gateway/cluster.js';
import { PostgresTenantStore } from '../src/gateway/postgres-tenants.js';
import { PostgresJournal } from '../src/journal/postgres-journal.js';
import {
  ECONDUIT_SIMULATOR_MAX_COUNT,
  EconduitSimulator,
  terminalIds,
} from '../src/simulators/econduit/simulator.js';
import {
  cpuSecondsOf,
  benchMain,
  memoryOf,
  running,
  startChild,
  stopChild,
  UNREF,
  type RunningChild,
} from './children.js';
import { compare, figure, writeResult } from './results.js';
import { envCount, printTable, ratio, summarise, type Summary } from './stats.js';

const NODES = ['a', 'b', 'c'] as const;
/** Sales timed, half on each path, after WARMUP. */
const TX = envCount('BENCH_CLUSTER_TX', 1_000, 2, 1_000_000);
const WARMUP = 100;
/** POS calls in flight at once, each on a terminal of its own (as many terminals). */
const CONCURRENCY = envCount('BENCH_CLUSTER_CONCURRENCY', 8, 1, 256);
/** Terminals held by the three nodes, a third each. */
const TERMINALS = envCount(
  'BENCH_CLUSTER_TERMINALS',
  15_000,
  NODES.length,
  NODES.length * ECONDUIT_SIMULATOR_MAX_COUNT,
);
const PER_NODE = Math.ceil(TERMINALS / NODES.length);
/** Simulator processes per node, each started once the previous one's terminals are online. */
const SIMULATORS_PER_NODE = envCount(
  'BENCH_CLUSTER_SIMULATORS_PER_NODE',
  Math.max(1, Math.ceil(PER_NODE / 2_500)),
  1,
  Math.min(26, PER_NODE),
);
/** The terminals' heartbeat interval (and the gateways'): TERMINALS / this many per second. */
const HEARTBEAT_MS = envCount('BENCH_CLUSTER_HEARTBEAT_MS', 10_000, 1_000, 600_000);
/** Every terminal connects from 127.0.0.1: the per-address limit (20/s) would refuse most. */
const REGISTRATION_RATE = Math.max(5_000, PER_NODE);

/** The machine's PostgreSQL and NATS (the same variables as the cluster tests'). */
const PG_URL = process.env.ECR_BRIDGE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const NATS_URL = process.env.ECR_BRIDGE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const HOST = '127.0.0.1';
const AMOUNT = '1.00';
const BIN = fileURLToPath(new URL('../bin/ecr-bridge.js', import.meta.url));
/** Bound on one POS call (a sale at zero card delay takes milliseconds). */
const CALL_TIMEOUT_MS = 30_000;
/** Bound on each step of a child's stop. */
const STOP_TIMEOUT_MS = 15_000;
/** Bound on one simulator process's terminals all coming online. */
const ONLINE_TIMEOUT_MS = 180_000;
/** Quiet time before an RSS reading, so that the last connections' work is done. */
const SETTLE_MS = 2_000;
/** Everything: past this the bench gives up (children killed, schema dropped, exit 1). */
const BENCH_TIMEOUT_MS = 15 * 60_000;
/** Terminal provisioning calls in flight (the journal's pool has 10 connections). */
const PROVISION_CONCURRENCY = 16;

function letters(count: number): string {
  let text = '';
  for (let i = 0; i < count; i++) text += String.fromCharCode(97 + randomInt(26));
  return text;
}

const SCHEMA = `bench_cluster_${letters(10)}`;
const PREFIX = `ecrbench${letters(8)}`;
const JOURNAL_URL = (() => {
  const url = new URL(PG_URL);
  url.searchParams.set('schema', SCHEMA);
  return url.toString();
})();

/** The POS sales' merchant and its terminals, on node a (in this process). */
const SHOP = 'shop';
const LATENCY_IDS = terminalIds('LAT', CONCURRENCY);
/** The capacity terminals' merchant: its /api/v1/terminals list would be TERMINALS long. */
const FLEET = 'fleet';
/** A merchant of a few capacity terminals (node a's first), for the presence check from node c. */
const PROBE = 'probe';
const PROBE_COUNT = 20;

/** Simulator process k of node `node`: its first terminal id and its count. */
function simulatorsOf(node: number): { first: string; count: number }[] {
  const share = Math.min(PER_NODE, TERMINALS - node * PER_NODE);
  const per = Math.ceil(share / SIMULATORS_PER_NODE);
  const out: { first: string; count: number }[] = [];
  for (let k = 0, left = share; left > 0; k++, left -= per) {
    // Letters, then a short counter (CAPab, CAPab-2, …): no digit run that could pass for a PAN.
    out.push({
      first: `CAP${NODES[node]}${String.fromCharCode(97 + k)}`,
      count: Math.min(per, left),
    });
  }
  return out;
}
const PROBE_IDS = (() => {
  const first = simulatorsOf(0)[0] as { first: string; count: number };
  return terminalIds(first.first, Math.min(PROBE_COUNT, first.count));
})();
/** Terminals reached through NATS at once by the bench's own reachability scan. */
const SCAN_CONCURRENCY = 64;

// ---------------------------------------------------------------------------------------------
// PostgreSQL and NATS

/** Exits 1, saying how to start them, when the cluster's servers are not running. */
async function requireServers(): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.end();
  } catch (error) {
    console.error(
      `cluster bench: PostgreSQL at ${PG_URL} is needed (${(error as Error).message}); start it ` +
        'with: pg_ctlcluster --skip-systemctl-redirect 15 main start',
    );
    process.exit(1);
  }
  try {
    const nc = await natsConnect({ servers: NATS_URL, timeout: 3_000 });
    await nc.close();
  } catch (error) {
    console.error(
      `cluster bench: NATS at ${NATS_URL} is needed (${(error as Error).message}); start it ` +
        'with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- ' +
        '-a 127.0.0.1 -p 4222 -js',
    );
    process.exit(1);
  }
}

async function dropSchema(): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  } finally {
    await client.end();
  }
}

interface Credentials {
  readonly key: string;
  readonly password: string;
}

/** The merchants and every terminal, in this process: one statement per terminal. */
async function provision(): Promise<{ shop: Credentials; probe: Credentials; seconds: number }> {
  const started = performance.now();
  const journal = await PostgresJournal.open({ url: PG_URL, schema: SCHEMA });
  try {
    const tenants = new PostgresTenantStore(journal.pool);
    const shop = await tenants.addMerchant(SHOP);
    const probe = await tenants.addMerchant(PROBE);
    await tenants.addMerchant(FLEET);
    const rows = [
      ...LATENCY_IDS.map((terminalId) => ({ terminalId, merchant: SHOP })),
      ...NODES.flatMap((_n, node) =>
        simulatorsOf(node).flatMap((s) => terminalIds(s.first, s.count)),
      ).map((terminalId) => ({
        terminalId,
        merchant: PROBE_IDS.includes(terminalId) ? PROBE : FLEET,
      })),
    ];
    let next = 0;
    await Promise.all(
      Array.from({ length: PROVISION_CONCURRENCY }, async () => {
        while (next < rows.length) {
          const row = rows[next++] as { terminalId: string; merchant: string };
          await tenants.addTerminal({ ...row, terminalType: 'Valor' });
        }
      }),
    );
    return {
      shop: { key: shop.key, password: shop.password },
      probe: { key: probe.key, password: probe.password },
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await journal.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes

/** VmRSS of a process, in KiB. */
const rssOf = (pid: number): number => memoryOf(pid).rssKiB;

/** SIGTERM, then SIGKILL (a node may take a while to let its terminals go). */
const stop = (child: RunningChild) => stopChild(child, undefined, STOP_TIMEOUT_MS);

interface ClusterNodeChild extends RunningChild {
  readonly nodeId: string;
  readonly tcpPort: number;
  readonly base: URL;
  /** Keep-alive HTTP to this node. */
  readonly agent: Agent;
}

async function startNode(letter: string, dir: string): Promise<ClusterNodeChild> {
  const nodeId = `node-${letter}`;
  const running = await startChild(nodeId, [
    BIN,
    'gateway',
    'start',
    '--cluster',
    '--nats',
    NATS_URL,
    '--journal',
    JOURNAL_URL,
    '--cluster-prefix',
    PREFIX,
    '--node-id',
    nodeId,
    '--data-dir',
    join(dir, nodeId),
    '--tcp-port',
    '0',
    '--http-port',
    '0',
    '--heartbeat-interval',
    String(HEARTBEAT_MS),
    '--registration-rate',
    String(REGISTRATION_RATE),
    '--log-level',
    'warn',
    '--json',
  ]);
  return {
    ...running,
    nodeId,
    tcpPort: Number(String(running.info.tcp).split(':').at(-1)),
    base: new URL(String(running.info.http)),
    agent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY }),
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP

function httpGet(
  node: ClusterNodeChild,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: node.base.hostname,
        port: node.base.port,
        method: 'GET',
        path,
        headers,
        agent: node.agent,
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
    req.setTimeout(CALL_TIMEOUT_MS, () =>
      req.destroy(
        new Error(
          `${node.nodeId}: no answer to GET ${path.split('?')[0]} within ${CALL_TIMEOUT_MS} ms`,
        ),
      ),
    );
    req.on('error', reject);
    req.end();
  });
}

async function onlineOn(node: ClusterNodeChild): Promise<number> {
  const { status, text } = await httpGet(node, '/healthz');
  if (status !== 200) throw new Error(`${node.nodeId}: GET /healthz: HTTP ${status}`);
  return (JSON.parse(text) as { terminalsOnline: number }).terminalsOnline;
}

interface NodeMetrics {
  readonly heartbeats: number;
  readonly online: number;
  readonly registrationsOk: number;
  readonly at: number;
}

async function readMetrics(node: ClusterNodeChild): Promise<NodeMetrics> {
  const { status, text } = await httpGet(node, '/metrics');
  if (status !== 200) throw new Error(`${node.nodeId}: GET /metrics: HTTP ${status}`);
  const value = (pattern: string) => {
    const match = new RegExp(`^${pattern} (\\d+)`, 'm').exec(text);
    if (match === null) throw new Error(`${node.nodeId}: GET /metrics: no ${pattern}`);
    return Number(match[1]);
  };
  return {
    heartbeats: value('ecr_gateway_heartbeats_total'),
    online: value('ecr_gateway_terminals_online'),
    registrationsOk: value('ecr_gateway_registrations_total\\{result="OK-REGISTRATION"\\}'),
    at: performance.now(),
  };
}

const perSecond = (from: NodeMetrics, to: NodeMetrics) =>
  ((to.heartbeats - from.heartbeats) * 1000) / (to.at - from.at);

interface TerminalView {
  readonly terminalId: string;
  readonly online: boolean;
}

/** A merchant's terminals as `node` sees them (GET /api/v1/terminals, Basic auth). */
async function terminalsSeenBy(node: ClusterNodeChild, merchant: Credentials) {
  const auth = Buffer.from(`${merchant.key}:${merchant.password}`).toString('base64');
  const { status, text } = await httpGet(node, '/api/v1/terminals', {
    authorization: `Basic ${auth}`,
  });
  if (status !== 200)
    throw new Error(`${node.nodeId}: GET /api/v1/terminals: HTTP ${status} ${text.slice(0, 300)}`);
  return (JSON.parse(text) as { terminals: TerminalView[] }).terminals;
}

/** Polls `check` every 200 ms until it is true; fails naming `what` past `timeoutMs`. */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------------------------
// (1) Latency: terminal on the called node against on another node

interface LatencyResult {
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
const log = (text: string) => console.log(`  ${text}`);

async function latencyRun(nodes: ClusterNodeChild[], shop: Credentials): Promise<LatencyResult> {
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
  const sale = async (node: ClusterNodeChild, terminalId: string, refId: string) => {
    refIds.push(refId);
    const path =
      `/services/api.asmx/runTransaction?command=Sale&key=${encodeURIComponent(shop.key)}` +
      `&password=${encodeURIComponent(shop.password)}&amount=${AMOUNT}` +
      `&refID=${refId}&terminalId=${terminalId}`;
    const started = performance.now();
    const answer = await httpGet(node, path).catch((error: unknown) => {
      throw new Error(`${refId} on ${terminalId} via ${node.nodeId}: ${(error as Error).message}`);
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
        `${refId} on ${terminalId} via ${node.nodeId}: HTTP ${answer.status} ${answer.text.slice(0, 300)}`,
      );
    return ms;
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

// ---------------------------------------------------------------------------------------------
// (2) Capacity: TERMINALS terminals over the three nodes

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

interface CapacityResult {
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
 * Asks every capacity terminal's holder for its state over NATS, as any node would (the bench
 * joins the cluster's subjects as a node of its own, holding nothing): per node of the terminals,
 * how many a holder answered for and how many got no answer in time.
 */
async function reachable(): Promise<{
  reachable: number[];
  unanswered: number[];
  seconds: number;
}> {
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

async function capacityRun(nodes: ClusterNodeChild[], probe: Credentials): Promise<CapacityResult> {
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
  const scan = await reachable();
  log(
    `capacity: ${scan.reachable.reduce((x, y) => x + y, 0)} of ${TERMINALS} terminals reachable ` +
      `through the cluster (${scan.reachable.join(' + ')}; scan ${scan.seconds.toFixed(1)} s)`,
  );

  // Heartbeats over one whole interval.
  const from = await Promise.all(nodes.map(readMetrics));
  await sleep(HEARTBEAT_MS);
  const to = await Promise.all(nodes.map(readMetrics));
  const rates = nodes.map((_n, i) => perSecond(from[i] as NodeMetrics, to[i] as NodeMetrics));
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
        (to[i] as NodeMetrics).registrationsOk -
        (registrationsBefore[i] as NodeMetrics).registrationsOk,
      simulatorProcesses: simulators[i]?.length ?? 0,
      simulatorRssKiB: (simulators[i] ?? []).reduce((sum, s) => sum + rssOf(s.pid), 0),
      reachable: scan.reachable[i] as number,
      unanswered: scan.unanswered[i] as number,
      onlineAfterHeartbeatWindow: onlineAfter[i] as number,
    })),
    online: total,
    connectSeconds,
    connectingSeconds: Math.max(...connectingMs) / 1000,
    heartbeatsPerSecond: rates.reduce((x, y) => x + y, 0),
    reachable: scan.reachable.reduce((x, y) => x + y, 0),
    scanSeconds: scan.seconds,
    probe: { terminals: PROBE_IDS.length, onlineAsSeenBy: probeOnline, msPerList: probeMs },
  };
  await Promise.all(simulators.flat().map((s) => stop(s)));
  return result;
}

// ---------------------------------------------------------------------------------------------
// Main

const started = performance.now();
const dir = mkdtempSync(join(tmpdir(), 'ecr-bridge-bench-cluster-'));
let nodes: ClusterNodeChild[] = [];
let schemaCreated = false;

/** Kills what is left and drops the schema; used on every path out. */
async function cleanUp(): Promise<void> {
  const sim = latencySimulator;
  latencySimulator = undefined;
  await Promise.race([sim?.stop(), sleep(STOP_TIMEOUT_MS, undefined, UNREF)]);
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
    const capacity = await capacityRun(nodes, tenants.probe);

    const exitCodes: Record<string, number | string | null> = {};
    for (const node of nodes) node.agent.destroy();
    for (const node of nodes) exitCodes[node.nodeId] = await stop(node);

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
    row(
      'terminals online',
      ...capacity.nodes.map((n) => String(n.online)),
      String(capacity.online),
    );
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
    const seconds = (performance.now() - started) / 1000;
    console.log(`bench took ${seconds.toFixed(1)} s`);

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
        capacity: { provisionSeconds: tenants.seconds, ...capacity },
        exitCodes,
      },
    });
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
