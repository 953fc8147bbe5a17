import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { json, runCli, startCli } from './run-cli.js';

/** The simulator as a user runs it: `ecr-bridge simulate semi`, a real child process. */
let child: ChildProcess;
let info: { tcpUrl: string; wsUrl: string; ledgerUrl: string; batchUrl: string };

/** Resolves with the first line `child` prints on stdout. */
function firstLine(process: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    process.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const end = out.indexOf('\n');
      if (end !== -1) resolve(out.slice(0, end));
    });
    process.once('close', (code) => reject(new Error(`simulator exited (${code}): ${out}`)));
  });
}

beforeAll(async () => {
  const started = startCli([
    'simulate',
    'semi',
    '--ws',
    '0',
    '--tcp',
    '0',
    '--control-port',
    '0',
    '--fragment',
    '--json',
  ]);
  child = started.child;
  info = JSON.parse(await firstLine(child)) as typeof info;
});

afterAll(() => {
  child.kill('SIGTERM');
});

async function ledger(reference: string): Promise<unknown[]> {
  const body = (await (await fetch(info.ledgerUrl)).json()) as {
    charges: { reference: string }[];
  };
  return body.charges.filter((c) => c.reference === reference);
}

function pay(
  dataDir: string,
  terminal: string,
  amount: string,
  reference: string,
  ...extra: string[]
) {
  return runCli([
    'pay',
    '--terminal',
    terminal,
    '--amount',
    amount,
    '--reference',
    reference,
    '--data-dir',
    dataDir,
    '--json',
    ...extra,
  ]);
}

describe('ecr-bridge simulate semi', () => {
  it('without --json says "Server is Waiting for Transaction" first, like the terminal', async () => {
    const { child: human, done } = startCli([
      'simulate',
      'semi',
      '--ws',
      'off',
      '--tcp',
      '0',
      '--control-port',
      '0',
    ]);
    try {
      expect(await firstLine(human)).toBe('Server is Waiting for Transaction');
    } finally {
      human.kill('SIGTERM');
    }
    const ended = await done;
    expect(ended.code, ended.stderr).toBe(0);
  });
});

describe('ecr-bridge pay and batch close on a SEMI terminal', () => {
  it('over tcp:// and semi+ws://: approved once each, the stored result on a retry, ledger over HTTP', async () => {
    const dataDir = tempDir('semi-cli-');
    const [tcp, ws] = await Promise.all([
      pay(dataDir, info.tcpUrl, '12.00', 'SC-TCP'),
      pay(dataDir, `semi+${info.wsUrl}`, '13.00', 'SC-WS'),
    ]);
    expect([tcp.code, ws.code]).toEqual([0, 0]);
    expect(json(tcp)).toMatchObject({ outcome: 'approved', currency: 'USD', amount: '12.00' });
    expect(json(ws)).toMatchObject({ outcome: 'approved', amount: '13.00' });
    const again = await pay(dataDir, info.tcpUrl, '12.00', 'SC-TCP');
    expect(json(again)).toMatchObject({ outcome: 'approved', replayed: true });
    expect(await ledger('SC-TCP')).toHaveLength(1);
    expect(await ledger('SC-WS')).toHaveLength(1);
  });

  it('exit codes by outcome; the link dropped after the card read still ends approved (status query)', async () => {
    const dataDir = tempDir('semi-cli-');
    const runs = await Promise.all([
      pay(dataDir, info.tcpUrl, '20.51', 'SC-D'),
      pay(dataDir, info.tcpUrl, '20.52', 'SC-C'),
      pay(dataDir, info.tcpUrl, '20.57', 'SC-F'),
    ]);
    expect(runs.map((r) => [r.code, json(r).outcome])).toEqual([
      [2, 'declined'],
      [3, 'cancelled'],
      [4, 'failed'],
    ]);
    const dropped = await pay(dataDir, info.tcpUrl, '20.55', 'SC-DROP');
    expect(dropped.code).toBe(0);
    expect(json(dropped)).toMatchObject({ outcome: 'approved' });
    expect(String(json(dropped).message)).toMatch(/status query/);
    expect(await ledger('SC-DROP')).toHaveLength(1);
  });

  it('refund, auth and capture, void by --original; batch close prints the totals, then an empty batch', async () => {
    const dataDir = tempDir('semi-cli-');
    // Settle what other tests left in the simulator's batch first.
    expect(
      (await runCli(['batch', 'close', '--terminal', info.tcpUrl, '--data-dir', dataDir])).code,
    ).toBe(0);
    expect((await pay(dataDir, info.tcpUrl, '30.00', 'SB-SALE')).code).toBe(0);
    expect((await pay(dataDir, info.tcpUrl, '5.00', 'SB-SALE2')).code).toBe(0);
    expect((await pay(dataDir, info.tcpUrl, '2.50', 'SB-REF', '--kind', 'refund')).code).toBe(0);
    expect((await pay(dataDir, info.tcpUrl, '40.00', 'SB-AUTH', '--kind', 'auth')).code).toBe(0);
    const capture = await pay(
      dataDir,
      info.tcpUrl,
      '35.00',
      'SB-CAP',
      '--kind',
      'capture',
      '--original',
      'SB-AUTH',
    );
    expect(json(capture)).toMatchObject({ outcome: 'approved', kind: 'capture' });
    const voided = await pay(
      dataDir,
      info.tcpUrl,
      '5.00',
      'SB-VOID',
      '--kind',
      'void',
      '--original',
      'SB-SALE2',
    );
    expect(json(voided)).toMatchObject({ outcome: 'approved', kind: 'void' });
    const badVoid = await pay(
      dataDir,
      info.tcpUrl,
      '1.00',
      'SB-VOID2',
      '--kind',
      'void',
      '--original',
      'SB-SALE',
    );
    expect(badVoid.code).toBe(64);
    expect(json(badVoid)).toMatchObject({ error: { code: 'INVALID_AMOUNT', field: 'amount' } });

    const human = await runCli([
      'batch',
      'close',
      '--terminal',
      info.tcpUrl,
      '--data-dir',
      dataDir,
    ]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/batch \d+ closed/);
    expect(human.stdout).toMatch(/sales\s+2\s+65\.00 USD/);
    expect(human.stdout).toMatch(/refunds\s+1\s+2\.50 USD/);
    expect(human.stdout).toMatch(/net\s+62\.50 USD/);
    const empty = await runCli([
      'batch',
      'close',
      '--terminal',
      info.tcpUrl,
      '--data-dir',
      dataDir,
      '--json',
    ]);
    expect(json(empty)).toMatchObject({
      saleCount: 0,
      refundCount: 0,
      net: '0.00',
      currency: 'USD',
    });
  });

  it('simulator:semi runs a SEMI terminal inside the command', async () => {
    const run = await pay(tempDir('semi-cli-'), 'simulator:semi', '9.99', 'SC-SIM');
    expect(run.code).toBe(0);
    expect(json(run)).toMatchObject({
      outcome: 'approved',
      currency: 'USD',
      terminalId: 'simulator:semi',
    });
  });
});
