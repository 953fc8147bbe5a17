import { randomInt } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { connect } from 'nats';
import { closedPort, tempDir, waitFor } from '../helpers.js';
import { json, runCli, startCli } from '../cli/run-cli.js';

/** The machine's PostgreSQL and NATS (`.ci/run` starts them when they are down). */
export const PG_URL =
  process.env.ECR_BRIDGE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const NATS_URL = process.env.ECR_BRIDGE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

export function letters(count: number): string {
  let text = '';
  for (let i = 0; i < count; i++) text += String.fromCharCode(97 + randomInt(26));
  return text;
}

/** Fails with how to start them when the cluster's servers are not running: never skipped. */
export async function requireClusterServers(): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.end();
  } catch (error) {
    throw new Error(
      `PostgreSQL at ${PG_URL} is needed by the cluster tests (${(error as Error).message}); start it with: pg_ctlcluster --skip-systemctl-redirect 15 main start`,
    );
  }
  try {
    const nc = await connect({ servers: NATS_URL, timeout: 3_000 });
    await nc.close();
  } catch (error) {
    throw new Error(
      `NATS at ${NATS_URL} is needed by the cluster tests (${(error as Error).message}); start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js`,
    );
  }
}

/** A cluster of its own: a fresh PostgreSQL schema and NATS subject prefix, dropped after. */
export interface TestCluster {
  readonly journalUrl: string;
  readonly schema: string;
  readonly prefix: string;
  readonly dataDir: string;
  readonly merchant: { key: string; password: string };
  readonly nodes: ClusterNodeProcess[];
  /** Starts (or restarts) node `i` on its ports; resolves once it listens. */
  start(i: number): Promise<ClusterNodeProcess>;
  /** SIGKILL: no goodbye to NATS or PostgreSQL. */
  kill(i: number): Promise<void>;
  close(): Promise<void>;
}

export interface ClusterNodeProcess {
  readonly nodeId: string;
  readonly tcpPort: number;
  readonly httpPort: number;
  readonly base: string;
  child: ChildProcess | undefined;
}

/**
 * A node process whose wall clock is off by `ms` (Date.now shifted before anything loads): no
 * correctness may depend on the nodes' clocks agreeing.
 */
function skewedClock(ms: number): NodeJS.ProcessEnv {
  if (ms === 0) return {};
  const code = `const now = Date.now; Date.now = () => now() + (${ms});`;
  return { NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(code)}` };
}

export async function startCluster(input: {
  nodes: number;
  terminals: readonly string[];
  /** Each node's clock skew in ms. @default none */
  skewsMs?: readonly number[];
}): Promise<TestCluster> {
  await requireClusterServers();
  const schema = `t_${letters(12)}`;
  const prefix = `ecrt${letters(10)}`;
  const journalUrl = `${PG_URL}?schema=${schema}`;
  const dataDir = tempDir('cluster-');
  const common = ['--journal', journalUrl, '--data-dir', dataDir];
  const added = await runCli(['gateway', 'merchant', 'add', 'shop', '--json', ...common]);
  if (added.code !== 0) throw new Error(`merchant add failed: ${added.stderr}${added.stdout}`);
  const merchant = json(added) as { key: string; password: string };
  for (const id of input.terminals) {
    const run = await runCli([
      'gateway',
      'terminal',
      'add',
      id,
      '--merchant',
      'shop',
      '--type',
      'Valor',
      ...common,
    ]);
    if (run.code !== 0) throw new Error(`terminal add failed: ${run.stderr}${run.stdout}`);
  }
  const nodes: ClusterNodeProcess[] = [];
  for (let i = 0; i < input.nodes; i++) {
    const [tcpPort, httpPort] = [await closedPort(), await closedPort()];
    nodes.push({
      nodeId: `node-${String.fromCharCode(97 + i)}`,
      tcpPort,
      httpPort,
      base: `http://127.0.0.1:${httpPort}`,
      child: undefined,
    });
  }
  const start = async (i: number): Promise<ClusterNodeProcess> => {
    const node = nodes[i];
    if (node === undefined) throw new Error(`no node ${i}`);
    const run = startCli(
      [
        'gateway',
        'start',
        '--cluster',
        '--nats',
        NATS_URL,
        '--cluster-prefix',
        prefix,
        '--node-id',
        node.nodeId,
        '--tcp-port',
        String(node.tcpPort),
        '--http-port',
        String(node.httpPort),
        // The simulators heartbeat every second; a node drops a terminal after three intervals of
        // silence. 3 s (9 s of silence) keeps a loaded CI box's stalls from dropping terminals.
        '--heartbeat-interval',
        '3000',
        '--json',
        ...common,
      ],
      skewedClock(input.skewsMs?.[i] ?? 0),
    );
    node.child = run.child;
    let out = '';
    run.child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    await waitFor(() => out.includes('\n') || run.child.exitCode !== null, 30_000, 'node up');
    if (!out.includes('\n'))
      throw new Error(`node ${node.nodeId} did not start: ${(await run.done).stderr}`);
    return node;
  };
  const kill = async (i: number): Promise<void> => {
    const child = nodes[i]?.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const closed = new Promise((resolve) => child.once('close', resolve));
    child.kill('SIGKILL');
    await closed;
  };
  for (let i = 0; i < input.nodes; i++) await start(i);
  return {
    journalUrl,
    schema,
    prefix,
    dataDir,
    merchant,
    nodes,
    start,
    kill,
    async close() {
      for (let i = 0; i < nodes.length; i++) await kill(i);
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    },
  };
}

/** The eConduit POS call (GET with query fields); the parsed JSON answer. */
export async function pos(
  base: string,
  method: 'runTransaction' | 'checkStatus',
  fields: Record<string, string>,
): Promise<Record<string, unknown>> {
  const response = await fetch(
    `${base}/services/api.asmx/${method}?${new URLSearchParams(fields).toString()}`,
  );
  return (await response.json()) as Record<string, unknown>;
}
