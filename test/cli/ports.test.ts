import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { diffPorts } from '../../src/cli/ports.js';
import { json, runCli, startCli } from './run-cli.js';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

describe('ecr-bridge ports', () => {
  it('--json exits 0 with a `ports` array whose entries name path, manufacturer, ids and serial', async () => {
    const run = await runCli(['ports', '--json']);
    expect(run.code).toBe(0);
    const out = json(run) as { ports: Record<string, unknown>[] };
    expect(Array.isArray(out.ports)).toBe(true);
    for (const port of out.ports)
      expect(Object.keys(port).sort()).toEqual(
        ['manufacturer', 'path', 'productId', 'serialNumber', 'vendorId'].sort(),
      );
  });

  it('as text, exits 0 with a table, or says there are none and how to watch for the terminal', async () => {
    const run = await runCli(['ports']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /^PATH\s+MANUFACTURER\s+VENDOR:PRODUCT\s+SERIAL\n|no serial ports found: plug the terminal in and run `ecr-bridge ports --watch`/,
    );
  });

  it('--watch keeps looking until SIGTERM, right after its first line, then exits 0', async () => {
    const { child, done } = startCli(['ports', '--watch', '--interval', '100']);
    children.push(child);
    await new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
    child.kill('SIGTERM');
    const run = await done;
    expect(run.code).toBe(0);
    expect(run.signal).toBeNull();
    expect(run.stdout).toMatch(/^watching serial ports every 100 ms/);
  });

  it('--watch --json prints a `watching` line, then one `added` object per port present, and exits 0 on SIGINT', async () => {
    const { child, done } = startCli(['ports', '--watch', '--json', '--interval', '100']);
    children.push(child);
    await new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
    // Let it look a few times: ports that stay are not printed again.
    await new Promise((resolve) => setTimeout(resolve, 350));
    child.kill('SIGINT');
    const run = await done;
    expect(run.code).toBe(0);
    const [head, ...events] = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; port?: { path: string } });
    expect(head).toEqual({ event: 'watching', intervalMs: 100 });
    for (const event of events) expect(event.event).toBe('added');
    expect(new Set(events.map((e) => e.port?.path)).size).toBe(events.length);
  });

  it('a port that appears is `added`, one that goes is `removed`, one whose details change is both', () => {
    const port = (path: string, serialNumber: string | null = null) => ({
      path,
      manufacturer: 'Ingenico',
      vendorId: '0b00',
      productId: '0061',
      serialNumber,
    });
    expect(diffPorts([port('/dev/ttyACM0')], [port('/dev/ttyACM0'), port('/dev/ttyACM1')])).toEqual(
      { added: [port('/dev/ttyACM1')], removed: [] },
    );
    expect(diffPorts([port('/dev/ttyACM0')], [])).toEqual({
      added: [],
      removed: [port('/dev/ttyACM0')],
    });
    expect(diffPorts([port('/dev/ttyACM0', 'A')], [port('/dev/ttyACM0', 'B')])).toEqual({
      added: [port('/dev/ttyACM0', 'B')],
      removed: [port('/dev/ttyACM0', 'A')],
    });
  });

  it('--interval 0 is a usage error naming the bound (exit 64)', async () => {
    const run = await runCli(['ports', '--watch', '--interval', '0']);
    expect(run.code).toBe(64);
    expect(run.stderr).toContain('--interval must be a whole number from 100 to 60000');
  });

  it('--interval without --watch is refused (exit 64)', async () => {
    const run = await runCli(['ports', '--interval', '500']);
    expect(run.code).toBe(64);
    expect(run.stderr).toContain('--interval: only applies with --watch');
  });
});
