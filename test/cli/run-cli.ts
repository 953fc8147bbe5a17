import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

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
