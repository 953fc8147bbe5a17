import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { closedPort, tempDir } from '../helpers.js';
import { json, runCli, startCli } from './run-cli.js';

/** `ecr-bridge simulate <protocol> --control-port 0`: real child processes, real HTTP. */

const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGTERM');
});

/** Starts `simulate …  --json` and resolves with the info line it prints first. */
function simulate(args: string[]): Promise<Record<string, unknown>> {
  const { child } = startCli(['simulate', ...args, '--json']);
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const end = out.indexOf('\n');
      if (end !== -1) resolve(JSON.parse(out.slice(0, end)) as Record<string, unknown>);
    });
    child.once('close', (code) => reject(new Error(`simulator exited (${code}): ${out}`)));
  });
}

async function post(url: string, scenario: string): Promise<{ status: number; json: unknown }> {
  const response = await fetch(url, { method: 'POST', body: JSON.stringify({ scenario }) });
  return { status: response.status, json: await response.json() };
}

describe('ecr-bridge simulate --control-port', () => {
  it('payable: the control port serves /next apart from the status page; the queued decline takes the next `pay` of 20.00, the next one is approved', async () => {
    const info = await simulate([
      'payable',
      '--port',
      '0',
      '--status-port',
      '0',
      '--control-port',
      '0',
    ]);
    expect(info.controlPort).not.toBe(info.statusPort);
    const nextUrl = info.nextUrl as string;
    expect(nextUrl).toBe(`http://127.0.0.1:${String(info.controlPort)}/next`);
    expect(await post(nextUrl, 'declined')).toEqual({
      status: 200,
      json: { queued: ['decline'], capacity: 16 },
    });
    // The terminal's own status page takes no POST: /next is on the control port only.
    const onStatusPort = await fetch(`http://127.0.0.1:${String(info.statusPort)}/next`, {
      method: 'POST',
      body: '{"scenario":"declined"}',
    });
    expect(onStatusPort.status).toBe(405);

    const dataDir = tempDir('next-cli-');
    const pay = (reference: string) =>
      runCli([
        'pay',
        '--terminal',
        info.url as string,
        '--amount',
        '20.00',
        '--currency',
        'LKR',
        '--reference',
        reference,
        '--data-dir',
        dataDir,
        '--json',
      ]);
    const declined = await pay('NC-1');
    expect([declined.code, json(declined).outcome]).toEqual([2, 'declined']);
    const approved = await pay('NC-2');
    expect([approved.code, json(approved).outcome]).toEqual([0, 'approved']);
    const ledger = (await (await fetch(info.ledgerUrl as string)).json()) as { count: number };
    expect(ledger.count).toBe(1);
    expect(await (await fetch(nextUrl)).json()).toEqual({ queued: [], capacity: 16 });
  });

  it('econduit: --control-port serves /next and /ledger while its terminal looks for a gateway', async () => {
    const info = await simulate([
      'econduit',
      '--gateway',
      `127.0.0.1:${await closedPort()}`,
      '--control-port',
      '0',
    ]);
    const nextUrl = info.nextUrl as string;
    expect(await post(nextUrl, 'slow-approve')).toMatchObject({ status: 200 });
    expect(await (await fetch(nextUrl)).json()).toEqual({ queued: ['slow-approve'], capacity: 16 });
    const bad = await post(nextUrl, 'sometimes');
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: { code: 'INVALID_INPUT', field: 'scenario' } });
    expect(await (await fetch(info.ledgerUrl as string)).json()).toEqual({ count: 0, charges: [] });
  });
});
