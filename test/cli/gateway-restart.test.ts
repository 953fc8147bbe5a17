import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { EconduitSimulator } from '../../src/simulators/econduit/simulator.js';
import { closedPort, tempDir, waitFor } from '../helpers.js';
import { json, runCli, startCli } from './run-cli.js';

const TERMINAL = '29531204';
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** `gateway start` as a real process; resolves once it says where it listens. */
async function startGateway(dataDir: string, tcpPort: number, httpPort: number) {
  const run = startCli([
    'gateway',
    'start',
    '--data-dir',
    dataDir,
    '--tcp-port',
    String(tcpPort),
    '--http-port',
    String(httpPort),
    '--json',
  ]);
  cleanups.push(() => {
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
  });
  let out = '';
  run.child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  await waitFor(() => out.includes('\n') || run.child.exitCode !== null, 20_000, 'gateway up');
  if (!out.includes('\n')) throw new Error(`gateway did not start: ${(await run.done).stderr}`);
  return run;
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
