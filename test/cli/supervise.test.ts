import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closedPort, tempDir, waitFor } from '../helpers.js';
import { startCli, type CliRun } from './run-cli.js';

const AUTH = `Basic ${Buffer.from('log:pwd').toString('base64')}`;

interface Setup {
  readonly config: string;
  readonly port: number;
  readonly dataDir: string;
}

const configs: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

/** A config.txt for a connector over the built-in Concert simulator, on a free port. */
async function setup(lines: Record<string, string> = {}): Promise<Setup> {
  const dir = tempDir('supervise-');
  const port = await closedPort();
  const dataDir = join(dir, 'data');
  const config = join(dir, 'config.txt');
  writeFileSync(
    config,
    Object.entries({
      LOCAL_PORT: String(port),
      TERMINAL_MANAGER_LOGIN: 'log',
      TERMINAL_MANAGER_PWD: 'pwd',
      TERMINAL_URL: 'simulator:concert',
      DATA_DIR: dataDir,
      ...lines,
    })
      .map(([key, value]) => `${key}=${value}`)
      .join('\n'),
  );
  configs.push(config);
  return { config, port, dataDir };
}

/** The ecr-bridge processes of one config, by role, from the process list. */
function processesOf(config: string): { pid: number; role: string }[] {
  const found: { pid: number; role: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const at = args.indexOf('connector');
    if (at === -1 || args[at + 3] !== config || !args.some((a) => a.endsWith('ecr-bridge.js')))
      continue;
    found.push({ pid: Number(name), role: args[at + 1] as string });
  }
  return found;
}

const supervisorsOf = (config: string) =>
  processesOf(config)
    .filter((p) => p.role === 'supervise')
    .map((p) => p.pid);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The process group of a pid (field 5 of /proc/<pid>/stat). */
function processGroup(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone already
  }
}

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  // Every process a test started, detached or not: SIGTERM to each supervisor's group (a detached
  // one leads its own) and to each process, then SIGKILL whatever is left after 10 s.
  for (const config of configs.splice(0)) {
    const left = () => processesOf(config).map((p) => p.pid);
    for (const pid of supervisorsOf(config)) signal(-pid, 'SIGTERM');
    for (const pid of left()) signal(pid, 'SIGTERM');
    await waitFor(() => left().length === 0, 10_000, 'processes to stop').catch(() => {
      for (const pid of left()) signal(pid, 'SIGKILL');
    });
  }
});

/** Runs the CLI, killing it if it has not finished within `ms`. */
async function runBounded(args: readonly string[], ms = 40_000): Promise<CliRun> {
  const { child, done } = startCli(args);
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  try {
    return await done;
  } finally {
    clearTimeout(timer);
  }
}

/** GET /version: the HTTP status, or undefined when nothing answers. */
async function version(port: number): Promise<number | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/version`, {
      headers: { authorization: AUTH, connection: 'close' },
      signal: AbortSignal.timeout(2_000),
    });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return undefined;
  }
}

async function waitUp(port: number, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await version(port)) !== 200) {
    if (Date.now() > deadline) throw new Error(`nothing answered on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The supervisor's stderr as it comes, and the pids of the connectors it started. */
function watch(child: ChildProcess) {
  let text = '';
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  const pids = () =>
    [...text.matchAll(/connector started \(pid (\d+)\)/g)].map((m) => Number(m[1]));
  return {
    text: () => text,
    pid: async (n: number): Promise<number> => {
      await waitFor(() => pids().length >= n, 20_000, `connector start ${n}`);
      return pids()[n - 1] as number;
    },
  };
}

function startSupervise(config: string) {
  const { child, done } = startCli(['connector', 'supervise', '--config', config]);
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  });
  return { child, done, out: watch(child) };
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('ecr-bridge connector supervise (real processes)', () => {
  it('the connector answers; SIGKILLed it is restarted (new pid) and answers again; GET /stop → it exits 0 → the supervisor exits 0', async () => {
    const { config, port } = await setup();
    const { done, out } = startSupervise(config);
    const first = await out.pid(1);
    await waitUp(port);
    process.kill(first, 'SIGKILL');
    const second = await out.pid(2);
    expect(second).not.toBe(first);
    await waitUp(port);
    const stop = await fetch(`http://127.0.0.1:${port}/stop`, { headers: { authorization: AUTH } });
    expect(stop.status).toBe(200);
    const run = await within(done, 15_000, 'the supervisor to exit');
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`connector (pid ${first}) was killed by SIGKILL`);
    expect(run.stderr).toMatch(/restart 1 in (0\.[5-9]|1\.0) s/);
    expect(run.stderr).toContain(`connector (pid ${second}) exited with code 0`);
    expect(run.stderr).toContain('supervisor done (the connector stopped cleanly), exit 0');
    // The connector's own output passed through.
    expect(run.stdout).toContain(`ecr-bridge connector (desktop) on http://127.0.0.1:${port}`);
    expect(alive(second)).toBe(false);
    expect(processesOf(config)).toEqual([]);
  });

  it('SIGTERM to the supervisor: the connector stops cleanly, then the supervisor exits 0; no process left', async () => {
    const { config, port } = await setup();
    const { child, done, out } = startSupervise(config);
    const connector = await out.pid(1);
    await waitUp(port);
    child.kill('SIGTERM');
    const run = await within(done, 15_000, 'the supervisor to exit');
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`SIGTERM received: stopping connector (pid ${connector})`);
    expect(run.stderr).toContain(`connector (pid ${connector}) exited with code 0`);
    expect(alive(connector)).toBe(false);
    expect(await version(port)).toBeUndefined();
    expect(processesOf(config)).toEqual([]);
  });

  it('a second supervise for the same DATA_DIR is refused (exit 64) naming the running supervisor’s pid', async () => {
    const { config, port, dataDir } = await setup();
    const { child } = startSupervise(config);
    await waitUp(port);
    const second = await runBounded(['connector', 'supervise', '--config', config]);
    expect(second.code).toBe(64);
    expect(second.stderr).toContain(
      `DATA_DIR ${dataDir}: a supervisor (pid ${child.pid}) already runs for this data directory`,
    );
    expect(supervisorsOf(config)).toEqual([child.pid]);
  });

  it('bad input is refused before anything starts (exit 64): the error names the config file and key, or the DATA_DIR', async () => {
    const { config } = await setup({ LOCAL_PORT: '99999' });
    for (const command of ['supervise', 'always-up']) {
      const run = await runBounded(['connector', command, '--config', config]);
      expect(run.code).toBe(64);
      expect(run.stderr).toContain(`${config} line 1: LOCAL_PORT: must be a whole number`);
    }
    // DATA_DIR under a file: it can never be created.
    const blocked = await setup({ DATA_DIR: join(config, 'data') });
    const notDir = await runBounded(['connector', 'always-up', '--config', blocked.config]);
    expect(notDir.code).toBe(64);
    expect(notDir.stderr).toContain(
      `DATA_DIR ${join(config, 'data')}: cannot be written (ENOTDIR)`,
    );
    const missing = join(tempDir('supervise-missing-'), 'nope.txt');
    const run = await runBounded(['connector', 'always-up', '--config', missing]);
    expect(run.code).toBe(64);
    expect(run.stderr).toContain(`${missing}: cannot be read: no such file`);
    expect(processesOf(config)).toEqual([]);
  });
});

describe('ecr-bridge connector always-up (real processes, as cron runs it)', () => {
  it('nothing running → starts a detached supervisor in its own process group and exits 0 once the connector answers; again → already up, no second supervisor', async () => {
    const { config, port, dataDir } = await setup();
    const first = await runBounded(['connector', 'always-up', '--config', config]);
    expect(first.code).toBe(0);
    const pid = Number(/started a supervisor \(pid (\d+)\)/.exec(first.stdout)?.[1]);
    expect(first.stdout).toContain(`connector up on http://127.0.0.1:${port}`);
    expect(await version(port)).toBe(200);
    expect(supervisorsOf(config)).toEqual([pid]);
    expect(processGroup(pid)).toBe(pid);
    expect(processGroup(pid)).not.toBe(processGroup(process.pid));
    expect(readFileSync(join(dataDir, 'supervisor.lock'), 'utf8').split('\n')[0]).toBe(String(pid));
    // always-up released its own lock; the supervisor and the connector write to the log.
    expect(existsSync(join(dataDir, 'always-up.lock'))).toBe(false);
    const log = readFileSync(join(dataDir, 'logs', 'connector.log'), 'utf8');
    expect(log).toMatch(/supervise\[\d+\]: connector started \(pid \d+\)/);
    expect(log).toContain(`ecr-bridge connector (desktop) on http://127.0.0.1:${port}`);

    const again = await runBounded(['connector', 'always-up', '--config', config]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(
      `connector already up on http://127.0.0.1:${port} (GET /version: HTTP 200)\n`,
    );
    expect(supervisorsOf(config)).toEqual([pid]);
  });

  it('two always-up runs at once start exactly one supervisor; both exit 0', async () => {
    const { config, port } = await setup();
    const runs = await Promise.all([
      runBounded(['connector', 'always-up', '--config', config]),
      runBounded(['connector', 'always-up', '--config', config]),
    ]);
    expect(runs.map((run) => run.code)).toEqual([0, 0]);
    expect(runs.filter((run) => run.stdout.startsWith('started a supervisor'))).toHaveLength(1);
    expect(await version(port)).toBe(200);
    expect(supervisorsOf(config)).toHaveLength(1);
    expect(processesOf(config).filter((p) => p.role === 'start')).toHaveLength(1);
  });

  it('a stale always-up.lock whose pid is dead is taken over (said so) and removed afterwards', async () => {
    const { config, port, dataDir } = await setup();
    mkdirSync(dataDir, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', '']).pid as number;
    writeFileSync(join(dataDir, 'always-up.lock'), `${dead}\n`);
    const run = await runBounded(['connector', 'always-up', '--config', config]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`took over the stale lock of always-up pid ${dead}`);
    expect(await version(port)).toBe(200);
    expect(existsSync(join(dataDir, 'always-up.lock'))).toBe(false);
    expect(supervisorsOf(config)).toHaveLength(1);
  });

  it('the port held by something that is no connector: exit 75 within --wait, naming the port and the log; the supervisor keeps retrying', async () => {
    const { config, port, dataDir } = await setup();
    // Accepts and hangs up at once: no HTTP answer, and LOCAL_PORT cannot be listened on.
    const squatter: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
    const started = Date.now();
    const run = await runBounded(['connector', 'always-up', '--config', config, '--wait', '3']);
    expect(run.code).toBe(75);
    // --wait bounds the wait for an answer, not the CLI's own start-up: a loose bound only proves
    // it gave up rather than waiting for the test's timeout (a loaded CI box starts node slowly).
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(run.stderr).toContain(
      `error TIMEOUT: LOCAL_PORT: the connector did not answer on http://127.0.0.1:${port}/version within 3 s`,
    );
    expect(run.stderr).toContain(join(dataDir, 'logs', 'connector.log'));
    expect(supervisorsOf(config)).toHaveLength(1);
    await waitFor(
      () =>
        /exited with code 64/.test(readFileSync(join(dataDir, 'logs', 'connector.log'), 'utf8')),
      30_000,
      'the connector to fail on the taken port',
    );
  });
});
