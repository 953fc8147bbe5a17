import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { json, runCli, startCli } from './run-cli.js';

/** Resolves with the first line `child` prints on stdout. */
function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const end = out.indexOf('\n');
      if (end !== -1) resolve(out.slice(0, end));
    });
    child.once('close', (code) => reject(new Error(`simulator exited (${code}): ${out}`)));
  });
}

let simulator: ChildProcess;
let device: string;

beforeAll(async () => {
  simulator = startCli(['simulate', 'concert', '--pty', '--line-noise', '0.3', '--json']).child;
  device = (JSON.parse(await firstLine(simulator)) as { device: string }).device;
});

afterAll(() => {
  simulator.kill('SIGTERM');
});

describe('ecr-bridge simulate concert and pay over serial://', () => {
  it('--json prints {"device": …} first: a real pty the POS can open', () => {
    expect(device).toMatch(/^\/dev\/pts\/\d+$/);
    expect(existsSync(device)).toBe(true);
  });

  it('pay over serial:// with line noise: approved in EUR, masked card, the retry replayed', async () => {
    const dataDir = tempDir('concert-cli-');
    const args = [
      'pay',
      '--terminal',
      `serial://${device}?baud=9600`,
      '--amount',
      '10.00',
      '--reference',
      'CC-1',
      '--data-dir',
      dataDir,
      '--json',
    ];
    const run = await runCli(args);
    expect(run.code, run.stderr).toBe(0);
    expect(json(run)).toMatchObject({
      outcome: 'approved',
      currency: 'EUR',
      maskedPan: '476173******0010',
      // The simulator, like the terminals public implementations describe, puts its own
      // transaction number in the answer's private field: the payment's terminal tx id.
      terminalTxId: expect.stringMatching(/^\d{10}$/) as unknown,
    });
    expect(json(await runCli(args))).toMatchObject({ outcome: 'approved', replayed: true });
    const declined = await runCli([
      ...args.slice(0, 4),
      '10.51',
      '--reference',
      'CC-2',
      '--data-dir',
      dataDir,
      '--json',
    ]);
    expect([declined.code, json(declined).outcome]).toEqual([2, 'declined']);
  });

  it('--echo-private: the answer echoes our private data (no terminal tx id); ?answer=short&delay=… reach the terminal', async () => {
    const echo = startCli(['simulate', 'concert', '--pty', '--echo-private', '--json']).child;
    try {
      const info = JSON.parse(await firstLine(echo)) as { device: string; echoPrivate: boolean };
      expect(info.echoPrivate).toBe(true);
      const pay = (query: string, reference: string) =>
        runCli([
          'pay',
          '--terminal',
          `serial://${info.device}${query}`,
          '--amount',
          '7.00',
          '--reference',
          reference,
          '--data-dir',
          tempDir('concert-cli-'),
          '--json',
        ]);
      const short = json(await pay('?answer=short', 'CC-ECHO'));
      expect(short).toMatchObject({ outcome: 'approved', details: { answerSize: 'short' } });
      expect(short.terminalTxId).toBeUndefined();
      expect(short.maskedPan).toBeUndefined();
      // A011: the answer comes before the card step and says nothing of the card.
      expect(json(await pay('?delay=immediate', 'CC-A011'))).toMatchObject({
        outcome: 'unknown',
        details: { delay: 'immediate' },
      });
      const bad = await pay('?delay=later', 'CC-BAD');
      expect(bad.stdout + bad.stderr).toMatch(/delay: must be end or immediate/);
    } finally {
      echo.kill('SIGTERM');
    }
  });

  it('--echo-private belongs to the concert simulator: refused for another, naming the flag', async () => {
    const run = await runCli(['simulate', 'semi', '--echo-private']);
    expect(run.code).toBe(64);
    expect(run.stderr + run.stdout).toMatch(
      /INVALID_INPUT: --echo-private: is an option of the concert simulator, not semi/,
    );
  });

  it('without --json the first line is the device path alone', async () => {
    const { child, done } = startCli(['simulate', 'concert']);
    try {
      expect(await firstLine(child)).toMatch(/^\/dev\/pts\/\d+$/);
    } finally {
      child.kill('SIGTERM');
    }
    expect((await done).code).toBe(0);
  });

  it('simulator:concert runs a Concert terminal inside the command', async () => {
    const run = await runCli([
      'pay',
      '--terminal',
      'simulator:concert',
      '--amount',
      '5.00',
      '--reference',
      'CC-SIM',
      '--data-dir',
      tempDir('concert-cli-'),
      '--json',
    ]);
    expect(json(run)).toMatchObject({ outcome: 'approved', terminalId: 'simulator:concert' });
  });

  it('a serial device that does not exist: failed, exit 4, the message names the path and the fix', async () => {
    const run = await runCli([
      'pay',
      '--terminal',
      'serial:///dev/ttyNOPE7',
      '--amount',
      '5.00',
      '--reference',
      'CC-NOPE',
      '--data-dir',
      tempDir('concert-cli-'),
    ]);
    expect(run.code).toBe(4);
    expect(run.stdout).toMatch(/TERMINAL_UNREACHABLE: .*\/dev\/ttyNOPE7.*ecr-bridge ports/);
  });
});
