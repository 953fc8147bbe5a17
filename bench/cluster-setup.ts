/**
 * The cluster bench's settings (BENCH_CLUSTER_…), the terminals each node holds, and the shared
 * servers: PostgreSQL and NATS checked, a schema of its own provisioned with the merchants and
 * every terminal, and dropped at the end.
 */
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { connect as natsConnect } from 'nats';
import pg from 'pg';
import { PostgresTenantStore } from '../src/gateway/postgres-tenants.js';
import { PostgresJournal } from '../src/journal/postgres-journal.js';
import { ECONDUIT_SIMULATOR_MAX_COUNT, terminalIds } from '../src/simulators/econduit/simulator.js';
import type { Credentials } from './gateway-http.js';
import { envCount } from './stats.js';

export const NODES = ['a', 'b', 'c'] as const;
/** Sales timed, half on each path, after WARMUP. */
export const TX = envCount('BENCH_CLUSTER_TX', 1_000, 2, 1_000_000);
export const WARMUP = 100;
/** POS calls in flight at once, each on a terminal of its own (as many terminals). */
export const CONCURRENCY = envCount('BENCH_CLUSTER_CONCURRENCY', 8, 1, 256);
/** Terminals held by the three nodes, a third each. */
export const TERMINALS = envCount(
  'BENCH_CLUSTER_TERMINALS',
  15_000,
  NODES.length,
  NODES.length * ECONDUIT_SIMULATOR_MAX_COUNT,
);
const PER_NODE = Math.ceil(TERMINALS / NODES.length);
/** Simulator processes per node, each started once the previous one's terminals are online. */
export const SIMULATORS_PER_NODE = envCount(
  'BENCH_CLUSTER_SIMULATORS_PER_NODE',
  Math.max(1, Math.ceil(PER_NODE / 2_500)),
  1,
  Math.min(26, PER_NODE),
);
/** The terminals' heartbeat interval (and the gateways'): TERMINALS / this many per second. */
export const HEARTBEAT_MS = envCount('BENCH_CLUSTER_HEARTBEAT_MS', 10_000, 1_000, 600_000);
/** Every terminal connects from 127.0.0.1: the per-address limit (20/s) would refuse most. */
export const REGISTRATION_RATE = Math.max(5_000, PER_NODE);

/** The machine's PostgreSQL and NATS (the same variables as the cluster tests'). */
const PG_URL = process.env.ECR_BRIDGE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const NATS_URL = process.env.ECR_BRIDGE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
export const HOST = '127.0.0.1';
export const AMOUNT = '1.00';
export const BIN = fileURLToPath(new URL('../bin/ecr-bridge.js', import.meta.url));
/** Bound on each step of a child's stop. */
export const STOP_TIMEOUT_MS = 15_000;
/** Bound on one simulator process's terminals all coming online. */
export const ONLINE_TIMEOUT_MS = 180_000;
/** Quiet time before an RSS reading, so that the last connections' work is done. */
export const SETTLE_MS = 2_000;
/** Everything: past this the bench gives up (children killed, schema dropped, exit 1). */
export const BENCH_TIMEOUT_MS = 15 * 60_000;
/** Terminal provisioning calls in flight (the journal's pool has 10 connections). */
export const PROVISION_CONCURRENCY = 16;

function letters(count: number): string {
  let text = '';
  for (let i = 0; i < count; i++) text += String.fromCharCode(97 + randomInt(26));
  return text;
}

export const SCHEMA = `bench_cluster_${letters(10)}`;
export const PREFIX = `ecrbench${letters(8)}`;
export const JOURNAL_URL = (() => {
  const url = new URL(PG_URL);
  url.searchParams.set('schema', SCHEMA);
  return url.toString();
})();

/** The POS sales' merchant and its terminals, on node a (in this process). */
const SHOP = 'shop';
export const LATENCY_IDS = terminalIds('LAT', CONCURRENCY);
/** The capacity terminals' merchant: its /api/v1/terminals list would be TERMINALS long. */
const FLEET = 'fleet';
/** A merchant of a few capacity terminals (node a's first), for the presence check from node c. */
const PROBE = 'probe';
const PROBE_COUNT = 20;

/** Simulator process k of node `node`: its first terminal id and its count. */
export function simulatorsOf(node: number): { first: string; count: number }[] {
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
export const PROBE_IDS = (() => {
  const first = simulatorsOf(0)[0] as { first: string; count: number };
  return terminalIds(first.first, Math.min(PROBE_COUNT, first.count));
})();
/** Terminals reached through NATS at once by the bench's own reachability scan. */
export const SCAN_CONCURRENCY = 64;

// ---------------------------------------------------------------------------------------------
// PostgreSQL and NATS

/** Exits 1, saying how to start them, when the cluster's servers are not running. */
export async function requireServers(): Promise<void> {
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

export async function dropSchema(): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  } finally {
    await client.end();
  }
}

/** The merchants and every terminal, in this process: one statement per terminal. */
export async function provision(): Promise<{
  shop: Credentials;
  probe: Credentials;
  seconds: number;
}> {
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

export const log = (text: string) => console.log(`  ${text}`);
