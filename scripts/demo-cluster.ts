/**
 * `npm run demo:cluster`: a gateway cluster on this machine. Three `ecr-bridge gateway start
 * --cluster` processes share the PostgreSQL journal and the NATS server given in the environment
 * (ECR_BRIDGE_JOURNAL_URL, default postgres://postgres@127.0.0.1:5432/test?schema=ecr_demo_cluster;
 * ECR_BRIDGE_NATS_URL, default nats://127.0.0.1:4222). Six simulated eConduit terminals register,
 * two with each node, each failing over to the next node. Prints how to pay through any node and
 * where the dashboards are; Ctrl-C stops everything (the journal stays: run it again to go on).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PostgresTenantStore } from '../src/gateway/postgres-tenants.js';
import { PostgresJournal } from '../src/journal/postgres-journal.js';
import { EconduitSimulator } from '../src/simulators/econduit/simulator.js';

const JOURNAL =
  process.env.ECR_BRIDGE_JOURNAL_URL ??
  'postgres://postgres@127.0.0.1:5432/test?schema=ecr_demo_cluster';
const NATS = process.env.ECR_BRIDGE_NATS_URL ?? 'nats://127.0.0.1:4222';
const DATA_DIR = resolve(process.env.ECR_BRIDGE_DATA_DIR ?? './data/cluster-demo');
const BIN = fileURLToPath(new URL('../bin/ecr-bridge.js', import.meta.url));
const MERCHANT = 'demo-cluster';
const TERMINALS = ['CLUSTER-1', 'CLUSTER-2', 'CLUSTER-3', 'CLUSTER-4', 'CLUSTER-5', 'CLUSTER-6'];
const NODES = [
  { nodeId: 'node-a', tcpPort: 9011, httpPort: 8091 },
  { nodeId: 'node-b', tcpPort: 9012, httpPort: 8092 },
  { nodeId: 'node-c', tcpPort: 9013, httpPort: 8093 },
];

/** The demo merchant's credentials, kept (owner-only) next to the demo's logs. */
async function provision(): Promise<{ key: string; password: string }> {
  const url = new URL(JOURNAL);
  const schema = url.searchParams.get('schema') ?? undefined;
  url.searchParams.delete('schema');
  const journal = await PostgresJournal.open({
    url: url.toString(),
    ...(schema === undefined ? {} : { schema }),
  });
  try {
    const tenants = new PostgresTenantStore(journal.pool);
    const file = join(DATA_DIR, 'demo-merchant.json');
    if ((await tenants.merchant(MERCHANT)) !== undefined) {
      if (existsSync(file))
        return JSON.parse(readFileSync(file, 'utf8')) as { key: string; password: string };
      throw new Error(
        `${journal.where} holds a demo merchant whose password is lost: drop the demo's schema or use another (?schema=…)`,
      );
    }
    const added = await tenants.addMerchant(MERCHANT);
    for (const terminalId of TERMINALS)
      await tenants.addTerminal({ terminalId, merchant: MERCHANT, terminalType: 'Valor' });
    const credentials = { key: added.key, password: added.password };
    writeFileSync(file, JSON.stringify(credentials), { mode: 0o600 });
    return credentials;
  } finally {
    await journal.close();
  }
}

/** One node; resolves once it says where it listens. */
async function startNode(node: (typeof NODES)[number]): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'gateway',
      'start',
      '--cluster',
      '--nats',
      NATS,
      '--journal',
      JOURNAL,
      '--node-id',
      node.nodeId,
      '--tcp-port',
      String(node.tcpPort),
      '--http-port',
      String(node.httpPort),
      '--data-dir',
      join(DATA_DIR, node.nodeId),
      '--json',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string | undefined>((done) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.once('line', done);
    child.once('exit', () => done(undefined));
  });
  if (line === undefined) throw new Error(`${node.nodeId} did not start (see above)`);
  return child;
}

async function main(): Promise<void> {
  mkdirSync(DATA_DIR, { recursive: true, mode: 0o700 });
  const credentials = await provision();
  const children: ChildProcess[] = [];
  const simulators: EconduitSimulator[] = [];
  const stop = async () => {
    await Promise.all(simulators.map((s) => s.stop()));
    for (const child of children) child.kill('SIGTERM');
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  try {
    for (const node of NODES) children.push(await startNode(node));
    // Terminal i registers with node i % 3 and fails over to the next ones.
    for (const [i, terminalId] of TERMINALS.entries()) {
      const simulator = new EconduitSimulator({
        endpoints: [0, 1, 2].map((k) => ({
          host: '127.0.0.1',
          port: (NODES[(i + k) % NODES.length] as (typeof NODES)[number]).tcpPort,
        })),
        terminalId,
        cardDelayMs: 1_500,
      });
      simulators.push(simulator);
      await simulator.start(10_000);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const query = (node: (typeof NODES)[number], terminalId: string) =>
    `http://127.0.0.1:${node.httpPort}/services/api.asmx/runTransaction?${new URLSearchParams({
      command: 'Sale',
      key: credentials.key,
      password: credentials.password,
      amount: '1.00',
      refID: `demo-${Date.now().toString(36)}`,
      terminalId,
    }).toString()}`;
  process.stdout.write(
    [
      `ecr-bridge gateway cluster: 3 nodes on ${NATS} and ${JOURNAL.replace(/\/\/[^@/]*@/, '//')}`,
      ...NODES.map(
        (n) =>
          `  ${n.nodeId}: terminals on tcp://127.0.0.1:${n.tcpPort}, POS and dashboard on http://127.0.0.1:${n.httpPort}/ui/`,
      ),
      `  6 simulated terminals: ${TERMINALS.join(', ')} (CLUSTER-1 and -4 on node-a, -2 and -5 on node-b, -3 and -6 on node-c)`,
      `  merchant ${MERCHANT}: key ${credentials.key}  password ${credentials.password}`,
      '',
      'Pay on a terminal held by node-a through node-c (the request crosses NATS):',
      `  curl '${query(NODES[2] as (typeof NODES)[number], 'CLUSTER-1')}'`,
      'Stop a node (kill its process): its terminals move to the next node; payments go on.',
      'Ctrl-C stops the demo.',
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  console.error(`demo:cluster failed: ${(error as Error).message}`);
  process.exit(1);
});
