import { afterEach, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import pg from 'pg';
import { ClusterNode } from '../../src/gateway/cluster/node.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { PostgresTenantStore } from '../../src/gateway/postgres-tenants.js';
import { PostgresJournal } from '../../src/journal/postgres-journal.js';
import { EconduitSimulator } from '../../src/simulators/econduit/simulator.js';
import { runCli } from '../cli/run-cli.js';
import { tempDir, waitFor, waitForAsync } from '../helpers.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { letters, NATS_URL, PG_URL, pos, requireClusterServers } from './cluster-support.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const TERMINAL = 'FX-one';

/** Two in-process nodes on one fresh schema; node b reaches NATS through a proxy we can cut. */
async function twoNodes() {
  await requireClusterServers();
  const schema = `t_${letters(12)}`;
  const prefix = `ecrt${letters(10)}`;
  const nats = new URL(NATS_URL);
  const proxy = await new FaultProxy({ host: nats.hostname, port: Number(nats.port) }).start();
  cleanups.push(async () => {
    await proxy.stop();
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });
  const node = async (name: string, servers: string) => {
    const journal = await PostgresJournal.open({ url: PG_URL, schema });
    const tenants = new PostgresTenantStore(journal.pool);
    const cluster = await ClusterNode.connect({ servers, nodeId: name, subjectPrefix: prefix });
    const gateway = await new Gateway({
      journal,
      tenants,
      cluster,
      tcpPort: 0,
      httpPort: 0,
      terminals: { heartbeatIntervalMs: 1_000 },
    }).start();
    cleanups.push(async () => {
      await gateway.close();
      await cluster.close();
      await journal.close();
    });
    return { journal, tenants, cluster, gateway, base: `http://127.0.0.1:${gateway.httpPort}` };
  };
  const a = await node('node-a', NATS_URL);
  const b = await node('node-b', `nats://127.0.0.1:${proxy.port}`);
  const merchant = await a.tenants.addMerchant('shop');
  await a.tenants.addTerminal({ terminalId: TERMINAL, merchant: 'shop', terminalType: 'Valor' });
  const simulator = await new EconduitSimulator({
    endpoints: [{ host: '127.0.0.1', port: a.gateway.tcpPort }],
    terminalId: TERMINAL,
    heartbeatIntervalMs: 1_000,
  }).start(10_000);
  cleanups.push(() => simulator.stop());
  await waitForAsync(() => b.gateway.isOnline(TERMINAL), 10_000, 'the terminal seen from b');
  const sale = (base: string, refID: string) =>
    pos(base, 'runTransaction', {
      command: 'Sale',
      key: merchant.key,
      password: merchant.password,
      amount: '5.00',
      refID,
      terminalId: TERMINAL,
    });
  return { a, b, proxy, prefix, simulator, sale };
}

describe('gateway cluster: faults', () => {
  it('NATS lost on a node: its new payments are refused with CLUSTER_UNAVAILABLE, nothing journaled; it recovers when NATS returns', async () => {
    const { a, b, proxy, simulator, sale } = await twoNodes();
    expect(await sale(b.base, 'NATS-one')).toMatchObject({ ResultCode: 'Approved' });

    await proxy.cut();
    await waitFor(() => !b.cluster.isConnected, 10_000, 'node b to notice');
    const refused = await sale(b.base, 'NATS-two');
    expect(refused).toMatchObject({ ResultCode: 'Error', ErrorCode: 'CLUSTER_UNAVAILABLE' });
    expect(await a.journal.findByReference('NATS-two')).toEqual([]);
    expect(simulator.ledger.forReference('NATS-two')).toHaveLength(0);
    // The other node, still connected, goes on paying.
    expect(await sale(a.base, 'NATS-three')).toMatchObject({ ResultCode: 'Approved' });

    await proxy.resume();
    await waitFor(() => b.cluster.isConnected, 15_000, 'node b to reconnect');
    expect(await sale(b.base, 'NATS-two')).toMatchObject({ ResultCode: 'Approved' });
    expect(simulator.ledger.forReference('NATS-two')).toHaveLength(1);
  });

  it('a NATS message that does not parse is refused with a coded error; the holder goes on serving', async () => {
    const { b, prefix, sale } = await twoNodes();
    const nc = await connect({ servers: NATS_URL });
    cleanups.push(() => nc.close());
    const subject = `${prefix}.terminal.${TERMINAL}.rpc`;
    for (const garbage of [
      'not json',
      '{"op":"execute"}',
      '{"op":"execute","request":{"kind":"sale","reference":"X","amount":{"minor":-1,"currency":"USD"},"wireId":1}}',
      '{"op":"steal"}',
      'x'.repeat(20_000),
    ]) {
      const reply = JSON.parse(
        new TextDecoder().decode(
          (await nc.request(subject, new TextEncoder().encode(garbage), { timeout: 2_000 })).data,
        ),
      ) as { ok: boolean; code: string; message: string };
      expect(reply).toMatchObject({ ok: false, code: 'INVALID_INPUT' });
      expect(reply.message.length).toBeLessThan(300);
    }
    expect(await sale(b.base, 'PARSE-one')).toMatchObject({ ResultCode: 'Approved' });
  });
});

describe('gateway cluster: node names', () => {
  it('a node name already running in the cluster is refused, naming nodeId', async () => {
    await requireClusterServers();
    const prefix = `ecrt${letters(10)}`;
    const first = await ClusterNode.connect({
      servers: NATS_URL,
      nodeId: 'twin',
      subjectPrefix: prefix,
    });
    cleanups.push(() => first.close());
    await expect(
      ClusterNode.connect({ servers: NATS_URL, nodeId: 'twin', subjectPrefix: prefix }),
    ).rejects.toMatchObject({ code: 'INVALID_INPUT', field: 'nodeId' });
    // Another cluster (prefix) may use the name.
    const other = await ClusterNode.connect({
      servers: NATS_URL,
      nodeId: 'twin',
      subjectPrefix: `ecrt${letters(10)}`,
    });
    await other.close();
  });
});

describe('ecr-bridge gateway start --cluster: bad configuration and servers down', () => {
  const start = (args: readonly string[]) =>
    runCli([
      'gateway',
      'start',
      '--data-dir',
      tempDir('cluster-cli-'),
      '--tcp-port',
      '0',
      '--http-port',
      '0',
      ...args,
    ]);

  it('names what is missing or unreachable, and where', async () => {
    await requireClusterServers();
    const schema = `t_${letters(12)}`;
    const journal = `${PG_URL}?schema=${schema}`;
    cleanups.push(async () => {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    });

    const noNats = await start(['--cluster', '--journal', journal]);
    expect(noNats.code).toBe(64);
    expect(noNats.stderr).toMatch(/nats.*required with --cluster/);

    const sqlite = await start(['--cluster', '--nats', NATS_URL]);
    expect(sqlite.code).toBe(64);
    expect(sqlite.stderr).toMatch(/journal.*postgres/);

    const natsDown = await start([
      '--cluster',
      '--nats',
      'nats://127.0.0.1:1',
      '--journal',
      journal,
    ]);
    expect(natsDown.code).not.toBe(0);
    expect(natsDown.stderr).toContain('NATS at nats://127.0.0.1:1 cannot be reached');

    const pgDown = await start([
      '--cluster',
      '--nats',
      NATS_URL,
      '--journal',
      'postgres://postgres:Secret@127.0.0.1:1/test',
    ]);
    expect(pgDown.code).not.toBe(0);
    expect(pgDown.stderr).toContain('PostgreSQL at 127.0.0.1:1/test');
    expect(pgDown.stderr + pgDown.stdout).not.toContain('Secret');

    const badNats = await start(['--cluster', '--nats', 'http://x', '--journal', journal]);
    expect(badNats.code).toBe(64);
    expect(badNats.stderr).toContain('nats');
  });
});
