import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { PayableSimulator } from '../../src/simulators/payable/simulator.js';
import { tempDir, waitFor } from '../helpers.js';
import { json, runCli, startCli, type CliRun } from './run-cli.js';

let simulator: PayableSimulator;

beforeAll(async () => {
  simulator = await new PayableSimulator({
    port: 0,
    statusPort: 0,
    token: 'T',
    cardDelayMs: 150,
  }).start();
});

const cleanup: (() => Promise<void>)[] = [];

afterAll(async () => {
  await simulator.stop();
  for (const stop of cleanup) await stop();
});

function pay(dataDir: string, amount: string, reference: string, ...extra: string[]): string[] {
  return [
    'pay',
    '--terminal',
    simulator.url,
    '--token',
    'T',
    '--pos',
    `POS-${reference}`,
    '--amount',
    amount,
    '--currency',
    'LKR',
    '--reference',
    reference,
    '--data-dir',
    dataDir,
    ...extra,
  ];
}

describe('ecr-bridge pay', () => {
  it('approved → exit 0 with a human summary; --json prints one object with outcome and reference', async () => {
    const dataDir = tempDir('cli-');
    const human = await runCli(pay(dataDir, '20.00', 'CLI-1'));
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/approved\s+20\.00 LKR\s+reference CLI-1/);
    const again = await runCli(pay(dataDir, '20.00', 'CLI-1', '--json'));
    expect(again.code).toBe(0);
    expect(json(again)).toMatchObject({
      outcome: 'approved',
      reference: 'CLI-1',
      amount: '20.00',
      currency: 'LKR',
      replayed: true,
    });
    expect(simulator.ledger.forReference('CLI-1')).toHaveLength(1);
  });

  it('distinct exit codes per outcome: declined 2, cancelled 3, failed 4', async () => {
    const dataDir = tempDir('cli-');
    const runs = await Promise.all([
      runCli(pay(dataDir, '20.51', 'CLI-D', '--json')),
      runCli(pay(dataDir, '20.52', 'CLI-C', '--json')),
      runCli(pay(dataDir, '20.57', 'CLI-F', '--json')),
    ]);
    expect(runs.map((r) => [r.code, json(r).outcome])).toEqual([
      [2, 'declined'],
      [3, 'cancelled'],
      [4, 'failed'],
    ]);
    // Nothing was charged: the same reference again is a new attempt, and tx show lists both.
    const again = await runCli(pay(dataDir, '20.51', 'CLI-D'));
    expect(again.code).toBe(2);
    expect(again.stdout).toContain('reference CLI-D (attempt 2)');
    const shown = json(await runCli(['tx', 'show', 'CLI-D', '--json', '--data-dir', dataDir]));
    expect(
      (shown.transactions as { attempt: number; state: string }[]).map((t) => [t.attempt, t.state]),
    ).toEqual([
      [2, 'declined'],
      [1, 'declined'],
    ]);
  });

  it('tx show takes the public id a merchant sees in the dashboard (tx_…) as well as a reference', async () => {
    const dataDir = tempDir('cli-');
    await runCli(pay(dataDir, '20.51', 'CLI-P'));
    await runCli(pay(dataDir, '20.51', 'CLI-P'));
    const attempts = json(await runCli(['tx', 'show', 'CLI-P', '--json', '--data-dir', dataDir]))
      .transactions as { id: number; publicId: string; attempt: number }[];
    const first = attempts.find((t) => t.attempt === 1);
    expect(first?.publicId).toMatch(/^tx_[a-p]{24}$/);
    const one = await runCli([
      'tx',
      'show',
      first?.publicId ?? '',
      '--json',
      '--data-dir',
      dataDir,
    ]);
    expect(json(one)).toMatchObject({
      reference: 'CLI-P',
      transactions: [{ id: first?.id, publicId: first?.publicId, attempt: 1 }],
    });
    expect((json(one).transactions as unknown[]).length).toBe(1);
    const text = await runCli(['tx', 'show', first?.publicId ?? '', '--data-dir', dataDir]);
    expect(text.stdout).toMatch(/publicId\s+tx_[a-p]{24}/);
    const unknown = await runCli([
      'tx',
      'show',
      'tx_abcdefghijklmnopabcdefgh',
      '--data-dir',
      dataDir,
    ]);
    expect(unknown.code).toBe(66);
  });

  it('ECR_BRIDGE_DATA_DIR sets the data directory; tx list and tx show read it', async () => {
    const dataDir = tempDir('cli-');
    expect(
      (
        await runCli(
          pay(dataDir, '20.00', 'ENV-1').filter(
            (a, i, all) => a !== '--data-dir' && all[i - 1] !== '--data-dir',
          ),
          { ECR_BRIDGE_DATA_DIR: dataDir },
        )
      ).code,
    ).toBe(0);
    const list = await runCli(['tx', 'list', '--data-dir', dataDir, '--json']);
    expect(json(list)).toMatchObject({
      count: 1,
      transactions: [{ reference: 'ENV-1', state: 'approved', amount: '20.00' }],
    });
    const show = await runCli(['tx', 'show', 'ENV-1', '--data-dir', dataDir]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/reference\s+ENV-1/);
    const missing = await runCli(['tx', 'show', 'NOPE', '--data-dir', dataDir]);
    expect(missing.code).toBe(66);
    expect(missing.stderr).toMatch(/NOT_FOUND/);
  });

  it('bad input: a clear error naming the field, no stack trace, exit 64/65, nothing journaled or charged', async () => {
    const dataDir = tempDir('cli-');
    const before = simulator.ledger.count;
    const cases: [string[], RegExp, number][] = [
      [
        pay(dataDir, '1,234.5', 'BAD-1'),
        /INVALID_AMOUNT: amount: must use one decimal separator/,
        64,
      ],
      [pay(dataDir, 'abc', 'BAD-2'), /INVALID_AMOUNT: amount:/, 64],
      [pay(dataDir, '-1', 'BAD-3'), /INVALID_AMOUNT: amount: must not be negative/, 64],
      [
        pay(dataDir, '20.001', 'BAD-4'),
        /INVALID_AMOUNT: amount: must have at most 2 decimals for LKR/,
        64,
      ],
      [pay(dataDir, '20000000000', 'BAD-5'), /INVALID_AMOUNT: amount: must be at most/, 64],
      [
        pay(dataDir, '20.00', 'R'.repeat(65)),
        /INVALID_REFERENCE: reference: must be at most 64 characters/,
        64,
      ],
      [
        pay(dataDir, '20.00', 'BAD\tTAB'),
        /INVALID_REFERENCE: reference: must not contain control characters/,
        64,
      ],
      [pay(dataDir, '20.00', 'BAD-6', '--currency', 'XYZ'), /INVALID_CURRENCY: currency:/, 64],
      [
        [...pay(dataDir, '20.00', 'BAD-7'), '--terminal', 'foo+ws://h:1'],
        /INVALID_TERMINAL_ADDRESS: terminal: names an unknown protocol.*valid forms: payable\+ws/,
        64,
      ],
      [
        [...pay(dataDir, '20.00', 'BAD-8'), '--terminal', 'payable+tcp://h:1'],
        /payable terminals are reached over ws, not tcp/,
        64,
      ],
      [['pay', '--amount', '1'], /required option/, 64],
      [['frobnicate'], /unknown command/, 64],
      [
        ['simulate', 'payable', '--port', String(simulator.port)],
        /INVALID_INPUT: port: \d+ on 127\.0\.0\.1 is already in use/,
        64,
      ],
      [['simulate', 'nfc'], /INVALID_INPUT: protocol: must be payable, semi, concert/, 64],
      [
        ['simulate', 'semi', '--pty'],
        /INVALID_INPUT: --pty: is an option of the concert simulator, not semi/,
        64,
      ],
      [
        ['simulate', 'concert', '--line-noise', '2'],
        /--line-noise must be a number from 0 to 1/,
        64,
      ],
      [
        ['simulate', 'semi', '--token', 'T'],
        /INVALID_INPUT: --token: is an option of the payable simulator, not semi/,
        64,
      ],
      [
        ['simulate', 'semi', '--ws', 'off', '--tcp', 'off'],
        /INVALID_INPUT: ws: at least one of --ws and --tcp must be a port/,
        64,
      ],
      [
        ['simulate', 'semi', '--tcp', 'x'],
        /--tcp must be a whole number from 0 to 65535, or off/,
        64,
      ],
      [
        [...pay(dataDir, '20.00', 'BAD-14'), '--kind', 'void'],
        /INVALID_INPUT: originalReference: is required for a void/,
        64,
      ],
      [[...pay(dataDir, '20.00', 'BAD-15'), '--kind', 'steal'], /argument 'steal' is invalid/, 64],
      [
        [...pay(dataDir, '20.00', 'BAD-16'), '--kind', 'refund'],
        /UNSUPPORTED_OPERATION: payable terminals cannot do "refund"/,
        64,
      ],
      [
        ['batch', 'close', '--terminal', simulator.url, '--data-dir', dataDir],
        /UNSUPPORTED_OPERATION: payable terminals cannot do "batch-close"/,
        64,
      ],
      [
        ['simulate', 'payable', '--port', '70000'],
        /--port must be a whole number from 0 to 65535/,
        64,
      ],
      [
        pay(dataDir, '20.00', 'BAD-12', '--currency', 'USD'),
        /INVALID_CURRENCY: currency: must be LKR, the currency this terminal is set up for \(USD\)/,
        64,
      ],
      [
        pay(dataDir, '2000', 'BAD-13', '--currency', 'JPY'),
        /INVALID_CURRENCY: currency: must be LKR/,
        64,
      ],
      [
        ['tx', 'list', '--limit', '0', '--data-dir', dataDir],
        /--limit must be a whole number from 1/,
        64,
      ],
      [
        [...pay(dataDir, '20.00', 'BAD-9'), '--timeout', '0'],
        /--timeout must be a whole number from 1 to 3600/,
        64,
      ],
      [
        [...pay(dataDir, '20.00', 'BAD-10'), '--receipt-email', 'nope'],
        /INVALID_INPUT: receiptEmail:/,
        64,
      ],
      [
        [...pay(dataDir, '20.00', 'BAD-11'), '--data-dir', '/etc/passwd'],
        /INVALID_INPUT: data-dir: cannot use \/etc\/passwd/,
        64,
      ],
    ];
    // Four at a time: each case is a process start.
    for (let i = 0; i < cases.length; i += 4) {
      const batch = cases.slice(i, i + 4);
      const runs = await Promise.all(batch.map(([args]) => runCli(args)));
      for (const [j, [args, pattern, code]] of batch.entries()) {
        const run = runs[j] as CliRun;
        expect(run.stderr, args.join(' ')).toMatch(pattern);
        expect(run.stderr).not.toMatch(/\n\s+at /);
        expect(run.code, args.join(' ')).toBe(code);
      }
    }
    const list = await runCli(['tx', 'list', '--data-dir', dataDir, '--json']);
    expect(json(list)).toMatchObject({ count: 0 });
    expect(simulator.ledger.count).toBe(before);
  }, 120_000);

  it('--json usage errors are a JSON object on stdout too', async () => {
    const run = await runCli(['pay', '--amount', '1', '--json']);
    expect(run.code).toBe(64);
    expect(json(run)).toMatchObject({ outcome: null, error: { code: 'INVALID_INPUT' } });
    expect(
      json(await runCli(['tx', 'show', 'NOPE', '--json', '--data-dir', tempDir('cli-')])),
    ).toMatchObject({
      reference: 'NOPE',
      error: { code: 'NOT_FOUND' },
    });
  });

  it('--json errors are one JSON object too, with the error code and field', async () => {
    const run = await runCli(pay(tempDir('cli-'), 'abc', 'J-1', '--json'));
    expect(run.code).toBe(64);
    expect(json(run)).toMatchObject({
      outcome: null,
      reference: 'J-1',
      error: { code: 'INVALID_AMOUNT', field: 'amount' },
    });
  });

  it('the same reference with another amount → DUPLICATE_REFERENCE, exit 65', async () => {
    const dataDir = tempDir('cli-');
    expect((await runCli(pay(dataDir, '20.00', 'DUP-1'))).code).toBe(0);
    const run = await runCli(pay(dataDir, '30.00', 'DUP-1'));
    expect(run.code).toBe(65);
    expect(run.stderr).toMatch(/DUPLICATE_REFERENCE/);
  });

  it('a wrong token → failed TERMINAL_AUTH_FAILED, exit 4, never charged', async () => {
    const dataDir = tempDir('cli-');
    const run = await runCli([...pay(dataDir, '20.00', 'TOK-1', '--json'), '--token', 'WRONG']);
    expect(run.code).toBe(4);
    expect(json(run)).toMatchObject({ outcome: 'failed', errorCode: 'TERMINAL_AUTH_FAILED' });
    expect(JSON.stringify(json(run))).not.toContain('WRONG');
  });

  it('references are scoped by --terminal-id, so a terminal reached under another address is not charged twice', async () => {
    const dataDir = tempDir('cli-');
    const byIp = await runCli([
      ...pay(dataDir, '20.00', 'TID-1', '--json'),
      '--terminal-id',
      'counter-1',
    ]);
    const byName = await runCli([
      ...pay(dataDir, '20.00', 'TID-1', '--json'),
      '--terminal',
      simulator.url.replace('127.0.0.1', 'localhost'),
      '--terminal-id',
      'counter-1',
    ]);
    expect(json(byIp)).toMatchObject({
      outcome: 'approved',
      terminalId: 'counter-1',
      replayed: false,
    });
    expect(json(byName)).toMatchObject({
      outcome: 'approved',
      terminalId: 'counter-1',
      replayed: true,
    });
    expect(simulator.ledger.forReference('TID-1')).toHaveLength(1);
  });

  it("the terminal's currency comes from its address: ?currency=JPY pays 2000 JPY on a JPY terminal", async () => {
    const jpy = await new PayableSimulator({ port: 0, statusPort: 0, currency: 'JPY' }).start();
    cleanup.push(() => jpy.stop());
    const run = await runCli([
      'pay',
      '--terminal',
      `${jpy.url}?currency=JPY`,
      '--amount',
      '2000',
      '--reference',
      'JPY-1',
      '--data-dir',
      tempDir('cli-'),
      '--json',
    ]);
    expect(json(run)).toMatchObject({ outcome: 'approved', amount: '2000', currency: 'JPY' });
    expect(jpy.ledger.all()).toMatchObject([{ amountMinor: 2000, currency: 'JPY' }]);
  });

  it('simulator:payable runs a terminal inside the command', async () => {
    const run = await runCli([
      'pay',
      '--terminal',
      'simulator:payable',
      '--amount',
      '12.00',
      '--reference',
      'SIM-1',
      '--data-dir',
      tempDir('cli-'),
      '--json',
    ]);
    expect(run.code).toBe(0);
    expect(json(run)).toMatchObject({ outcome: 'approved', terminalId: 'simulator:payable' });
  });
});

describe('across processes sharing one data directory', () => {
  it('twenty CLI processes paying the same reference at once charge the terminal once and agree', async () => {
    const dataDir = tempDir('cli-many-');
    const runs = await Promise.all(
      Array.from({ length: 20 }, () =>
        runCli([...pay(dataDir, '20.00', 'MANY-1', '--json'), '--pos', 'POS-MANY']),
      ),
    );
    expect(simulator.ledger.forReference('MANY-1')).toHaveLength(1);
    const results = runs.map(json);
    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    expect(new Set(results.map((r) => r.approvalCode)).size).toBe(1);
    expect(results.filter((r) => r.replayed === false)).toHaveLength(1);
  }, 120_000);

  it('killed with SIGKILL after the card was read → unknown on restart, listed as unresolved, never charged again', async () => {
    const dataDir = tempDir('cli-crash-');
    // Its own terminal: it stays busy for the 20 s of the slow answer after the kill.
    const terminal = await new PayableSimulator({
      port: 0,
      statusPort: 0,
      slowAnswerMs: 20_000,
    }).start();
    cleanup.push(() => terminal.stop());
    const crashPay = [
      'pay',
      '--terminal',
      terminal.url,
      '--amount',
      '20.56',
      '--reference',
      'CRASH-1',
      '--data-dir',
      dataDir,
    ];
    // Amount ending in 56: charged at the card read, answered 20 s later — the kill lands in between.
    const { child, done } = startCli(crashPay);
    await waitFor(
      () => terminal.ledger.forReference('CRASH-1').length === 1,
      20_000,
      'the card read',
    );
    child.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');

    const unresolved = await runCli([
      'tx',
      'list',
      '--unresolved',
      '--data-dir',
      dataDir,
      '--json',
    ]);
    expect(json(unresolved)).toMatchObject({
      count: 1,
      transactions: [{ reference: 'CRASH-1', state: 'unknown', errorCode: 'OUTCOME_UNKNOWN' }],
    });
    const human = await runCli(['tx', 'list', '--unresolved', '--data-dir', dataDir]);
    expect(human.stdout).toMatch(/CRASH-1.*unknown/);

    const retry = await runCli([...crashPay, '--json']);
    expect(retry.code).toBe(5);
    expect(json(retry)).toMatchObject({ outcome: 'unknown', replayed: true });
    expect(terminal.ledger.forReference('CRASH-1')).toHaveLength(1);

    // A person checks the acquirer's report and records what happened.
    const tx = (...args: string[]) => runCli(['tx', ...args, '--data-dir', dataDir]);
    expect((await tx('resolve', 'CRASH-1', '--outcome', 'approved', '--note', '')).stderr).toMatch(
      /INVALID_INPUT: note:/,
    );
    const resolved = await tx(
      'resolve',
      'CRASH-1',
      '--outcome',
      'approved',
      '--note',
      'acquirer report 23/11, card 4761 7390 0101 0010',
      '--json',
    );
    expect(resolved.code).toBe(0);
    expect(json(resolved)).toMatchObject({
      outcome: 'approved',
      transaction: {
        state: 'approved',
        message: expect.stringMatching(
          /^resolved by hand: acquirer report 23\/11, card 476173\*{6}0010 \(was unknown: OUTCOME_UNKNOWN: interrupted after the request was sent/,
        ),
      },
    });
    expect(json(await tx('list', '--unresolved', '--json'))).toMatchObject({ count: 0 });
    const again = await tx(
      'resolve',
      'CRASH-1',
      '--outcome',
      'declined',
      '--note',
      'second thoughts',
    );
    expect(again.code).toBe(64);
    expect(again.stderr).toMatch(/reference: must name an unknown transaction \(it is approved\)/);
    expect((await tx('resolve', 'NOPE-1', '--outcome', 'approved', '--note', 'x')).code).toBe(66);
    expect((await tx('resolve', 'CRASH-1', '--outcome', 'unknown', '--note', 'x')).code).toBe(64);
  }, 60_000);
});

describe('Ctrl-C', () => {
  it('while waiting for another process that holds the terminal: abandoned (failed, ABORTED), the other payment untouched', async () => {
    const slow = await new PayableSimulator({ port: 0, statusPort: 0, cardDelayMs: 6_000 }).start();
    try {
      const dataDir = tempDir('cli-int2-');
      const args = (reference: string, pos: string) => [
        'pay',
        '--terminal',
        slow.url,
        '--amount',
        '20.00',
        '--reference',
        reference,
        '--pos',
        pos,
        '--data-dir',
        dataDir,
        '--json',
      ];
      const holder = startCli(args('HOLD-1', 'POS-A'));
      await waitFor(() => slow.busy, 10_000, 'the first card step');
      const waiter = startCli(args('WAIT-1', 'POS-B'));
      // Its row is journaled after its Ctrl-C handler is installed: then it waits for the lock.
      const journal = new SqliteJournal({ path: join(dataDir, 'ecr-bridge.db') });
      try {
        await waitFor(
          () => journal.findByReference('WAIT-1').length === 1,
          20_000,
          'the second request',
        );
      } finally {
        journal.close();
      }
      waiter.child.kill('SIGINT');
      const waited = await waiter.done;
      expect(waited.code).toBe(4);
      expect(json(waited)).toMatchObject({
        outcome: 'failed',
        errorCode: 'ABORTED',
        reference: 'WAIT-1',
      });
      const held = await holder.done;
      expect(json(held)).toMatchObject({ outcome: 'approved', reference: 'HOLD-1' });
      expect(slow.ledger.all().map((c) => c.reference)).toEqual(['HOLD-1']);
    } finally {
      await slow.stop();
    }
  });
});

describe('Ctrl-C during the card step', () => {
  it('asks the terminal to stop: cancelled, exit 3, nothing charged', async () => {
    const slow = await new PayableSimulator({
      port: 0,
      statusPort: 0,
      cardDelayMs: 10_000,
    }).start();
    try {
      const dataDir = tempDir('cli-int-');
      const { child, done } = startCli([
        'pay',
        '--terminal',
        slow.url,
        '--amount',
        '20.00',
        '--reference',
        'INT-1',
        '--data-dir',
        dataDir,
        '--json',
      ]);
      await waitFor(() => slow.busy, 10_000, 'the card step');
      child.kill('SIGINT');
      const run = await done;
      expect(run.code).toBe(3);
      expect(json(run)).toMatchObject({ outcome: 'cancelled', reference: 'INT-1' });
      expect(run.stderr).toMatch(/cancelling/);
      expect(slow.ledger.count).toBe(0);
    } finally {
      await slow.stop();
    }
  });
});
