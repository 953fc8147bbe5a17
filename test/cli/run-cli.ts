import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../helpers.js';

export const BIN = fileURLToPath(new URL('../../bin/ecr-bridge.js', import.meta.url));

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts the real CLI (bin/ecr-bridge.js) as a child process. */
export function startCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): { child: ChildProcess; done: Promise<CliRun> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const done = new Promise<CliRun>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return startCli(args, env).done;
}

/** The one JSON object `--json` prints. */
export function json(run: CliRun): Record<string, unknown> {
  const lines = run.stdout.trim().split('\n');
  if (lines.length !== 1)
    throw new Error(`expected one line of JSON, got: ${run.stdout}\n${run.stderr}`);
  return JSON.parse(lines[0] as string) as Record<string, unknown>;
}

/**
 * `gateway start --json` as a real process on the given ports (and `extra` options); resolves
 * once it says where it listens, and registers its SIGKILL with `cleanups`.
 */
export async function startGatewayCli(
  dataDir: string,
  ports: { readonly tcpPort: number; readonly httpPort: number },
  cleanups: (() => Promise<void> | void)[],
  ...extra: string[]
): Promise<{ child: ChildProcess; done: Promise<CliRun> }> {
  const run = startCli([
    'gateway',
    'start',
    '--data-dir',
    dataDir,
    '--tcp-port',
    String(ports.tcpPort),
    '--http-port',
    String(ports.httpPort),
    '--json',
    ...extra,
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
