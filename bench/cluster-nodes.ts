/**
 * The cluster bench's nodes: `ecr-bridge gateway start --cluster` child processes sharing the
 * run's PostgreSQL schema and NATS prefix, and what the bench reads from them over HTTP.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'node:http';
import { memoryOf, startChild, stopChild, type RunningChild } from './children.js';
import {
  BIN,
  CONCURRENCY,
  HEARTBEAT_MS,
  JOURNAL_URL,
  NATS_URL,
  PREFIX,
  REGISTRATION_RATE,
  STOP_TIMEOUT_MS,
} from './cluster-setup.js';
import { httpGet, type Credentials, type HttpTarget } from './gateway-http.js';

/** VmRSS of a process, in KiB. */
export const rssOf = (pid: number): number => memoryOf(pid).rssKiB;

/** SIGTERM, then SIGKILL (a node may take a while to let its terminals go). */
export const stop = (child: RunningChild) => stopChild(child, undefined, STOP_TIMEOUT_MS);

export interface ClusterNodeChild extends RunningChild, HttpTarget {
  readonly nodeId: string;
  readonly tcpPort: number;
}

export async function startNode(letter: string, dir: string): Promise<ClusterNodeChild> {
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
    label: nodeId,
    tcpPort: Number(String(running.info.tcp).split(':').at(-1)),
    base: new URL(String(running.info.http)),
    agent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY }),
  };
}

/**
 * The terminals online on `node` (its /healthz). A 503 still counts them: during the connect
 * storm of thousands of terminals a node's readiness probe can miss its 2 s bound (its journal
 * pool is busy with their registrations), which is what /healthz then honestly says; the bench
 * wants the count, and logs the check that failed.
 */
export async function onlineOn(node: ClusterNodeChild): Promise<number> {
  const { status, text } = await httpGet(node, '/healthz');
  if (status !== 200 && status !== 503)
    throw new Error(`${node.nodeId}: GET /healthz: HTTP ${status} ${text.slice(0, 300)}`);
  const health = JSON.parse(text) as {
    terminalsOnline: number;
    checks?: { name: string; ok: boolean }[];
  };
  if (status === 503) {
    const failing = (health.checks ?? []).filter((c) => !c.ok).map((c) => c.name);
    console.log(`  ${node.nodeId}: /healthz unready (${failing.join(', ')}) while counting`);
  }
  return health.terminalsOnline;
}

interface TerminalView {
  readonly terminalId: string;
  readonly online: boolean;
}

/** A merchant's terminals as `node` sees them (GET /api/v1/terminals, Basic auth). */
export async function terminalsSeenBy(node: ClusterNodeChild, merchant: Credentials) {
  const auth = Buffer.from(`${merchant.key}:${merchant.password}`).toString('base64');
  const { status, text } = await httpGet(node, '/api/v1/terminals', {
    authorization: `Basic ${auth}`,
  });
  if (status !== 200)
    throw new Error(`${node.nodeId}: GET /api/v1/terminals: HTTP ${status} ${text.slice(0, 300)}`);
  return (JSON.parse(text) as { terminals: TerminalView[] }).terminals;
}

/** Polls `check` every 200 ms until it is true; fails naming `what` past `timeoutMs`. */
export async function until(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(200);
  }
}
