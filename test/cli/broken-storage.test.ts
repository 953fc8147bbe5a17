import { mkdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JOURNAL_FILE_NAME } from '../../src/journal/sqlite-journal.js';
import { closedPort, tempDir } from '../helpers.js';
import { startCli } from './run-cli.js';

// Issue 17, part 3: "with the log file unwritable during a sale, the POS got Fastify's raw 500",
// and "with the journal files unwritable the process died of SIGBUS with nothing printed".

const AUTH = `Basic ${Buffer.from('log:pwd').toString('base64')}`;
const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

/** `connector start` on `dir` (a config.txt on a free port, the built-in simulator). */
async function startConnector(dir: string) {
  const port = await closedPort();
  writeFileSync(
    join(dir, 'config.txt'),
    [
      `LOCAL_PORT=${port}`,
      'TERMINAL_MANAGER_LOGIN=log',
      'TERMINAL_MANAGER_PWD=pwd',
      'TERMINAL_URL=simulator:concert',
      '',
    ].join('\n'),
  );
  const { child, done } = startCli(['connector', 'start', '--data-dir', dir]);
  stops.push(async () => {
    child.kill('SIGKILL');
    await done;
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('GET /stop stops it.\n')) resolve();
    });
    void done.then((run) => reject(new Error(`connector exited ${run.code}: ${run.stderr}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  const pay = (orderId: string) =>
    fetch(`${url}/payment`, {
      method: 'POST',
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 4, currency: 'EUR', order_id: orderId }),
    });
  return { url, pay, done };
}

type Answer = { ecrBridge?: { outcome?: string; errorCode?: string } };

describe('a connector whose storage fails under it', () => {
  it('log on a full disk (/dev/full): takes payments, answers a retry from the journal, and says once on stderr that log lines are dropped', async () => {
    const dir = tempDir('log-failure-');
    mkdirSync(join(dir, 'logs'));
    symlinkSync('/dev/full', join(dir, 'logs', 'ecr-bridge.log'));
    const { url, pay, done } = await startConnector(dir);
    const first = await pay('LOGFULL-1');
    expect(first.status).toBe(200);
    expect(((await first.json()) as Answer).ecrBridge?.outcome).toBe('approved');
    const again = await pay('LOGFULL-1');
    expect(again.status).toBe(200);
    expect(((await again.json()) as Answer).ecrBridge?.outcome).toBe('approved');
    const ready = (await (await fetch(`${url}/readyz`)).json()) as { logWriteFailures?: number };
    expect(ready.logWriteFailures).toBeGreaterThan(0);

    const stop = await fetch(`${url}/stop`, { headers: { authorization: AUTH } });
    expect(stop.status).toBe(200);
    const run = await done;
    expect(run.code).toBe(0);
    const reports = run.stderr.split('\n').filter((l) => l.includes('could not be written'));
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatch(/ENOSPC/);
  }, 30_000);

  it("journal's shared memory cut under it: no SIGBUS; the next payment is refused JOURNAL_ERROR, and the process says why on stderr and exits 74", async () => {
    const dir = tempDir('shm-cut-');
    const { pay, done } = await startConnector(dir);
    const first = await pay('SHM-1');
    expect(((await first.json()) as Answer).ecrBridge?.outcome).toBe('approved');
    truncateSync(join(dir, JOURNAL_FILE_NAME + '-shm'), 0);
    const second = await pay('SHM-2').catch((error: unknown) => error);
    if (second instanceof Response) {
      expect(second.status).toBeGreaterThanOrEqual(500);
      expect(JSON.stringify(await second.json())).toContain('JOURNAL_ERROR');
    }
    const run = await done;
    expect(run.signal).toBeNull();
    expect(run.code).toBe(74);
    expect(run.stderr).toMatch(/shared-memory file .*ecr-bridge\.db-shm was cut/);
  }, 30_000);
});
