import { setTimeout as sleep } from 'node:timers/promises';
import { invalid } from '../core/errors.js';
import { listSerialPorts, type SerialPortInfo } from '../transports/serial.js';
import type { CommandOutput, CommonOptions } from './main.js';
import { table } from './output.js';

/** How often `ports --watch` looks, when `--interval` does not say. */
export const PORTS_DEFAULT_INTERVAL_MS = 1_000;
/** Bounds of `--interval`: often enough to catch a plug-in, rarely enough to cost nothing. */
export const PORTS_MIN_INTERVAL_MS = 100;
export const PORTS_MAX_INTERVAL_MS = 60_000;

export interface PortsOptions extends CommonOptions {
  readonly watch?: boolean;
  /** Milliseconds between looks with `--watch`. @default PORTS_DEFAULT_INTERVAL_MS */
  readonly interval?: number;
}

const NO_PORTS_HINT = 'plug the terminal in and run `ecr-bridge ports --watch`';

/** `0b00:0061`, or null when the system does not say. */
function usbId(port: SerialPortInfo): string | null {
  return port.vendorId === null && port.productId === null
    ? null
    : `${port.vendorId ?? '?'}:${port.productId ?? '?'}`;
}

/** The ports as a table for people, one row per port. */
export function describePorts(ports: readonly SerialPortInfo[]): string {
  if (ports.length === 0) return `no serial ports found: ${NO_PORTS_HINT}`;
  return table(
    ['PATH', 'MANUFACTURER', 'VENDOR:PRODUCT', 'SERIAL'],
    ports.map((p) => [p.path, p.manufacturer ?? '-', usbId(p) ?? '-', p.serialNumber ?? '-']),
  );
}

/** One `--watch` line: `+ /dev/ttyACM0  Ingenico  0b00:0061  SN 1234` or `- /dev/ttyACM0`. */
function watchLine(sign: '+' | '-', port: SerialPortInfo): string {
  if (sign === '-') return `- ${port.path}`;
  const facts = [
    port.manufacturer,
    usbId(port),
    port.serialNumber === null ? null : `SN ${port.serialNumber}`,
  ];
  return [`+ ${port.path}`, ...facts.filter((fact) => fact !== null)].join('  ');
}

/** What changed between two looks; a port whose reported details change counts as both. */
export function diffPorts(
  before: readonly SerialPortInfo[],
  after: readonly SerialPortInfo[],
): { readonly added: SerialPortInfo[]; readonly removed: SerialPortInfo[] } {
  // A port is the same port while its path and what the system reports about it are the same.
  const key = (port: SerialPortInfo): string => JSON.stringify(port);
  const was = new Set(before.map(key));
  const is = new Set(after.map(key));
  return {
    added: after.filter((port) => !was.has(key(port))),
    removed: before.filter((port) => !is.has(key(port))),
  };
}

/**
 * Prints the ports that appear and disappear until SIGINT/SIGTERM; the ports present at the start
 * count as appearing. With --json, one object per line: `{"event":"watching","intervalMs":1000}`
 * first, then `{"event":"added"|"removed","port":{…}}`.
 */
async function watchPorts(options: PortsOptions, intervalMs: number): Promise<CommandOutput> {
  // Listen before printing anything: a supervisor may signal as soon as it reads the first line.
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const print = (line: string): void => void process.stdout.write(`${line}\n`);
  try {
    print(
      options.json
        ? JSON.stringify({ event: 'watching', intervalMs })
        : `watching serial ports every ${intervalMs} ms (+ appeared, - disappeared); Ctrl-C stops`,
    );
    let known: SerialPortInfo[] = [];
    let first = true;
    while (!stop.signal.aborted) {
      const now = await listSerialPorts();
      const { added, removed } = diffPorts(known, now);
      for (const port of removed)
        print(options.json ? JSON.stringify({ event: 'removed', port }) : watchLine('-', port));
      for (const port of added)
        print(options.json ? JSON.stringify({ event: 'added', port }) : watchLine('+', port));
      if (first && now.length === 0 && !options.json)
        print(`no serial ports yet: ${NO_PORTS_HINT}`);
      first = false;
      known = now;
      await sleep(intervalMs, undefined, { signal: stop.signal }).catch(() => {});
    }
    return { exitCode: 0 };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `ecr-bridge ports`: the serial ports of this machine, once or (`--watch`) as they come and go. */
export async function runPorts(options: PortsOptions): Promise<CommandOutput> {
  if (options.interval !== undefined && options.watch !== true)
    throw invalid('INVALID_INPUT', '--interval', 'only applies with --watch');
  if (options.watch === true)
    return watchPorts(options, options.interval ?? PORTS_DEFAULT_INTERVAL_MS);
  const ports = await listSerialPorts();
  return { exitCode: 0, text: describePorts(ports), json: { ports } };
}
