import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { EconduitSimulator } from '../../src/simulators/econduit/simulator.js';
import { closedPort, tempDir, waitFor } from '../helpers.js';
import { json, runCli, startCli, startGatewayCli } from './run-cli.js';

const TERMINAL = '29531204';
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** `gateway start` as a real process; resolves once it says where it listens. */
function startGateway(dataDir: string, tcpPort: number, httpPort: number) {
  return startGatewayCli(dataDir, { tcpPort, httpPort }, cleanups);
}

async function checkStatus(base: string, fields: Record<string, string>) {
  const response = await fetch(
    `${base}/services/api.asmx/checkStatus?${new URLSearchParams(fields).toString()}`,
  );
  return (await response.json()) as Record<string, unknown>;
}

describe('ecr-bridge gateway start: a gateway killed mid-transaction', () => {
  it('the transaction is unknown after the restart, settled once the terminal registers again, charged exactly once', async () => {
    const dataDir = tempDir('gateway-restart-');
    const merchant = json(
      await runCli(['gateway', 'merchant', 'add', 'shop', '--json', '--data-dir', dataDir]),
    ) as { key: string; password: string };
    const added = await runCli([
      'gateway',
      'terminal',
      'add',
      TERMINAL,
      '--merchant',
      'shop',
      '--type',
      'Valor',
      '--data-dir',
      dataDir,
    ]);
    expect(added.code).toBe(0);
    const [tcpPort, httpPort] = [await closedPort(), await closedPort()];
    const base = `http://127.0.0.1:${httpPort}`;
    const first = await startGateway(dataDir, tcpPort, httpPort);

    const simulator = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: tcpPort }],
      terminalId: TERMINAL,
      cardDelayMs: 1_500,
    }).start(10_000);
    cleanups.push(() => simulator.stop());
    const virtual = simulator.terminal(TERMINAL);
    if (virtual === undefined) throw new Error('no simulated terminal');

    const fields = {
      command: 'Sale',
      key: merchant.key,
      password: merchant.password,
      amount: '12.34',
      refID: 'RESTART-1',
      terminalId: TERMINAL,
    };
    const paying = fetch(
      `${base}/services/api.asmx/runTransaction?${new URLSearchParams(fields).toString()}`,
    ).then(
      () => 'answered',
      () => 'connection lost',
    );
    await waitFor(() => virtual.terminal.busy, 10_000, 'the card step');
    first.child.kill('SIGKILL');
    await once(first.child, 'close');
    expect(await paying).toBe('connection lost');

    await startGateway(dataDir, tcpPort, httpPort);
    // The new process found the row in flight by a dead one: unknown, until the terminal says.
    const settled = await (async () => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const body = await checkStatus(base, {
          key: merchant.key,
          password: merchant.password,
          refID: 'RESTART-1',
          terminalId: TERMINAL,
        });
        if (body.ResultFinal === true || Date.now() > deadline) return body;
        await sleep(100);
      }
    })();
    expect(settled).toMatchObject({
      ResultCode: 'Approved',
      ResultFinal: true,
      RefID: 'RESTART-1',
    });
    expect(simulator.ledger.forReference('RESTART-1')).toHaveLength(1);

    // The POS retries the same refID: the stored result, no second charge.
    const retry = (await (
      await fetch(
        `${base}/services/api.asmx/runTransaction?${new URLSearchParams(fields).toString()}`,
      )
    ).json()) as Record<string, unknown>;
    expect(retry).toMatchObject({ ResultCode: 'Approved', AuthCode: settled.AuthCode });
    expect(simulator.ledger.forReference('RESTART-1')).toHaveLength(1);
  });
});

describe('ecr-bridge simulate econduit and gateway test', () => {
  it('simulated terminals register with a running gateway; gateway test pays on one (exit codes by outcome)', async () => {
    const dataDir = tempDir('gateway-test-');
    const merchant = json(
      await runCli(['gateway', 'merchant', 'add', 'shop', '--json', '--data-dir', dataDir]),
    ) as { key: string; password: string };
    for (const id of ['50000001', '50000002', '50000003', '50000009']) {
      const added = await runCli([
        'gateway',
        'terminal',
        'add',
        id,
        '--merchant',
        'shop',
        '--type',
        'Valor',
        '--data-dir',
        dataDir,
      ]);
      expect(added.code).toBe(0);
    }
    const [tcpPort, httpPort] = [await closedPort(), await closedPort()];
    await startGateway(dataDir, tcpPort, httpPort);
    const simulate = startCli([
      'simulate',
      'econduit',
      '--gateway',
      `127.0.0.1:${tcpPort}`,
      '--id',
      '50000001',
      '--count',
      '3',
      '--json',
    ]);
    cleanups.push(() => {
      simulate.child.kill('SIGTERM');
    });
    const base = `http://127.0.0.1:${httpPort}`;
    await (async () => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const health = (await (await fetch(`${base}/healthz`)).json()) as {
          terminalsOnline: number;
        };
        if (health.terminalsOnline === 3) return;
        if (Date.now() > deadline) throw new Error('the simulated terminals did not register');
        await sleep(100);
      }
    })();
    const test = (terminal: string, amount: string) =>
      runCli(
        ['gateway', 'test', '--terminal', terminal, '--amount', amount, '--url', base, '--json'],
        { ECR_BRIDGE_GATEWAY_KEY: merchant.key, ECR_BRIDGE_GATEWAY_PASSWORD: merchant.password },
      );
    const approved = await test('50000002', '1.00');
    expect(approved.code).toBe(0);
    expect(json(approved)).toMatchObject({ outcome: 'approved', amount: '1.00' });
    const declined = await test('50000003', '1.51');
    expect(declined.code).toBe(2);
    const offline = await test('50000009', '1.00');
    expect(offline.code).toBe(4);
    expect(offline.stdout).toContain('TERMINAL_OFFLINE');
    const noDecimal = await test('50000002', '1');
    expect(noDecimal.code).toBe(64);
    expect(noDecimal.stdout).toContain('amount');
    const wrongKey = await runCli(
      ['gateway', 'test', '--terminal', '50000002', '--amount', '1.00', '--url', base],
      { ECR_BRIDGE_GATEWAY_KEY: merchant.key, ECR_BRIDGE_GATEWAY_PASSWORD: 'Wrong' },
    );
    expect(wrongKey.code).not.toBe(0);
    expect(wrongKey.stderr + wrongKey.stdout).toContain('UNAUTHORIZED');
    simulate.child.kill('SIGTERM');
    expect((await simulate.done).code).toBe(0);
  });

  it('simulate econduit without --gateway, or with a bad endpoint, is a usage error naming the flag', async () => {
    const missing = await runCli(['simulate', 'econduit']);
    expect(missing.code).toBe(64);
    expect(missing.stderr + missing.stdout).toContain('--gateway');
    const bad = await runCli(['simulate', 'econduit', '--gateway', 'nowhere']);
    expect(bad.code).toBe(64);
    expect(bad.stderr + bad.stdout).toContain('host:port');
    const wrongProtocol = await runCli(['simulate', 'semi', '--count', '3']);
    expect(wrongProtocol.code).toBe(64);
    expect(wrongProtocol.stderr + wrongProtocol.stdout).toContain('--count');
  });
});
