import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { EconduitSimulator } from '../../src/simulators/econduit/simulator.js';
import { waitFor, waitForAsync } from '../helpers.js';
import { letters, pos, startCluster, type TestCluster } from './cluster-support.js';

// Real gateway processes (the CLI), the machine's PostgreSQL and NATS, simulated terminals over
// real TCP. Each test has a schema and subject prefix of its own.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Terminal `i` registers with node i % n first, and fails over to the next node. */
async function terminalsFor(cluster: TestCluster, ids: readonly string[], cardDelayMs = 0) {
  const n = cluster.nodes.length;
  const simulators = await Promise.all(
    ids.map((terminalId, i) =>
      new EconduitSimulator({
        endpoints: [0, 1, 2]
          .slice(0, n)
          .map((k) => cluster.nodes[(i + k) % n])
          .map((node) => ({ host: '127.0.0.1', port: node?.tcpPort ?? 0 })),
        terminalId,
        heartbeatIntervalMs: 1_000,
        cardDelayMs,
      }).start(20_000),
    ),
  );
  cleanups.push(async () => {
    await Promise.all(simulators.map((s) => s.stop()));
  });
  return simulators;
}

async function onlineEverywhere(cluster: TestCluster, ids: readonly string[]) {
  const auth = `Basic ${Buffer.from(`${cluster.merchant.key}:${cluster.merchant.password}`).toString('base64')}`;
  await waitForAsync(
    async () => {
      for (const node of cluster.nodes) {
        const body = (await (
          await fetch(`${node.base}/api/v1/terminals`, { headers: { authorization: auth } })
        ).json()) as { terminals: { terminalId: string; online: boolean }[] };
        const online = body.terminals.filter((t) => t.online).map((t) => t.terminalId);
        if (!ids.every((id) => online.includes(id))) return false;
      }
      return true;
    },
    30_000,
    'every terminal online as every node sees it',
  );
}

describe('gateway cluster: three nodes on PostgreSQL and NATS', () => {
  it('POS requests to random nodes reach each terminal once, wherever it is connected', async () => {
    const ids = ['TA-one', 'TA-two', 'TA-three', 'TA-four', 'TA-five', 'TA-six'];
    // Node b's clock is ten minutes behind, node c's ten minutes ahead.
    const cluster = await startCluster({
      nodes: 3,
      terminals: [...ids, 'TA-off'],
      skewsMs: [0, -600_000, 600_000],
    });
    cleanups.push(() => cluster.close());
    const simulators = await terminalsFor(cluster, ids);
    await onlineEverywhere(cluster, ids);

    const payments = Array.from({ length: 30 }, (_, i) => ({
      refID: `CL-${letters(10)}`,
      terminalId: ids[i % ids.length] as string,
      node: cluster.nodes[(i * 7 + 1) % 3]?.base as string,
      amount: `${(i % 9) + 1}.${String(10 + i).padStart(2, '0')}`,
    }));
    // Six at a time: one per terminal in flight, the rest wait their turn across nodes.
    for (let i = 0; i < payments.length; i += 6) {
      const answers = await Promise.all(
        payments.slice(i, i + 6).map((p) =>
          pos(p.node, 'runTransaction', {
            command: 'Sale',
            key: cluster.merchant.key,
            password: cluster.merchant.password,
            amount: p.amount,
            refID: p.refID,
            terminalId: p.terminalId,
          }),
        ),
      );
      for (const answer of answers) expect(answer).toMatchObject({ ResultCode: 'Approved' });
    }
    const charges = simulators.flatMap((s) => s.ledger.all());
    expect(charges).toHaveLength(payments.length);
    for (const p of payments) {
      const charged = simulators.flatMap((s) => s.ledger.forReference(p.refID));
      expect(charged, p.refID).toHaveLength(1);
      expect(simulators[ids.indexOf(p.terminalId)]?.ledger.forReference(p.refID)).toHaveLength(1);
    }
    // A provisioned terminal connected to no node: offline at once (NATS: no responders).
    const offline = await pos(cluster.nodes[2]?.base as string, 'runTransaction', {
      command: 'Sale',
      key: cluster.merchant.key,
      password: cluster.merchant.password,
      amount: '1.00',
      refID: `CL-${letters(10)}`,
      terminalId: 'TA-off',
    });
    expect(offline).toMatchObject({ ResultCode: 'Error', ResultFinal: true });
    expect(JSON.stringify(offline)).toContain('TERMINAL_OFFLINE');
  });

  it('the same refID sent to two nodes at the same instant: one charge, both answers equal', async () => {
    const ids = ['TB-one'];
    const cluster = await startCluster({ nodes: 3, terminals: ids });
    cleanups.push(() => cluster.close());
    const [simulator] = await terminalsFor(cluster, ids, 300);
    await onlineEverywhere(cluster, ids);
    for (let round = 0; round < 5; round++) {
      const refID = `SAME-${letters(8)}`;
      const fields = {
        command: 'Sale',
        key: cluster.merchant.key,
        password: cluster.merchant.password,
        amount: '4.20',
        refID,
        terminalId: 'TB-one',
      };
      const [a, b] = await Promise.all([
        pos(cluster.nodes[1]?.base as string, 'runTransaction', fields),
        pos(cluster.nodes[2]?.base as string, 'runTransaction', fields),
      ]);
      expect(a).toMatchObject({ ResultCode: 'Approved', ResultFinal: true });
      expect(b).toMatchObject({ ResultCode: 'Approved', ResultFinal: true });
      expect(b.AuthCode).toBe(a.AuthCode);
      expect(simulator?.ledger.forReference(refID)).toHaveLength(1);
    }
  });

  it('SIGKILL the node holding the terminal mid-transaction, then restart it: charged once, unknown resolved', async () => {
    const ids = ['TC-one'];
    // The nodes' clocks disagree by minutes: nothing below may depend on them.
    const cluster = await startCluster({
      nodes: 3,
      terminals: ids,
      skewsMs: [0, 300_000, -300_000],
    });
    cleanups.push(() => cluster.close());
    // Terminal 0 registers with node a first and fails over to node b.
    const [simulator] = await terminalsFor(cluster, ids, 2_000);
    await onlineEverywhere(cluster, ids);
    const virtual = simulator?.terminal('TC-one');
    if (simulator === undefined || virtual === undefined) throw new Error('no terminal');
    const fields = {
      command: 'Sale',
      key: cluster.merchant.key,
      password: cluster.merchant.password,
      amount: '12.34',
      refID: 'KILL-one',
      terminalId: 'TC-one',
    };
    // The POS calls node c; the terminal is on node a.
    const paying = pos(cluster.nodes[2]?.base as string, 'runTransaction', fields);
    await waitFor(() => virtual.terminal.busy, 10_000, 'the card step');
    await cluster.kill(0);
    const first = await paying;
    // Node c lost the holder mid-card-step: it kept asking the terminal until it came back on
    // node b, or answers unknown (ResultFinal false) and settles it later.
    expect(['Approved', 'Error']).toContain(first.ResultCode);
    const settled = await (async () => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const body = await pos(cluster.nodes[1]?.base as string, 'checkStatus', {
          key: cluster.merchant.key,
          password: cluster.merchant.password,
          refID: 'KILL-one',
          terminalId: 'TC-one',
        });
        if (body.ResultFinal === true || Date.now() > deadline) return body;
        await sleep(200);
      }
    })();
    expect(settled).toMatchObject({ ResultCode: 'Approved', ResultFinal: true });
    expect(simulator.ledger.forReference('KILL-one')).toHaveLength(1);

    await cluster.start(0);
    // The POS retries on the restarted node: the stored result, never a second charge.
    const retry = await pos(cluster.nodes[0]?.base as string, 'runTransaction', fields);
    expect(retry).toMatchObject({ ResultCode: 'Approved', AuthCode: settled.AuthCode });
    expect(simulator.ledger.forReference('KILL-one')).toHaveLength(1);
    // And the cluster still pays on it, through any node.
    const after = await pos(cluster.nodes[0]?.base as string, 'runTransaction', {
      ...fields,
      refID: 'KILL-two',
      amount: '2.00',
    });
    expect(after).toMatchObject({ ResultCode: 'Approved' });
    expect(simulator.ledger.forReference('KILL-two')).toHaveLength(1);
  });

  it('a terminal registering on a second node takes over; the first drops its socket', async () => {
    const ids = ['TD-one'];
    const cluster = await startCluster({ nodes: 2, terminals: ids });
    cleanups.push(() => cluster.close());
    const first = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: cluster.nodes[0]?.tcpPort ?? 0 }],
      terminalId: 'TD-one',
      heartbeatIntervalMs: 1_000,
    }).start(20_000);
    cleanups.push(() => first.stop());
    await onlineEverywhere(cluster, ids);
    const dropped = new Promise<void>((resolve) =>
      first.terminal('TD-one')?.agent.once('offline', () => resolve()),
    );
    // The same terminal id now registers on node b (a device moved; a half-open socket left).
    const second = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: cluster.nodes[1]?.tcpPort ?? 0 }],
      terminalId: 'TD-one',
      heartbeatIntervalMs: 1_000,
    }).start(20_000);
    cleanups.push(() => second.stop());
    await dropped;
    // The stale one is gone for good (its agent would otherwise take the id back).
    await first.stop();
    const answer = await pos(cluster.nodes[0]?.base as string, 'runTransaction', {
      command: 'Sale',
      key: cluster.merchant.key,
      password: cluster.merchant.password,
      amount: '3.00',
      refID: 'MOVE-one',
      terminalId: 'TD-one',
    });
    expect(answer).toMatchObject({ ResultCode: 'Approved' });
    expect(second.ledger.forReference('MOVE-one')).toHaveLength(1);
    expect(first.ledger.forReference('MOVE-one')).toHaveLength(0);
  });
});
