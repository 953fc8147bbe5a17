/**
 * The child processes the benches run (the gateway, the relay, the connector, cluster nodes,
 * simulator processes, the MQTT broker) and what they read from /proc about them: one mechanism
 * for every bench. A child is "started" once it says so — by default its first stdout line, a
 * JSON object (`--json` on every `ecr-bridge … start`), or a `ready` check of its own — and every
 * child still running is in `running`, so that a bench's way out can kill what is left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

/** Bound on a child's start (tsx compiles the sources first). */
export const START_TIMEOUT_MS = 60_000;
/** Bound on each step of a stop (asked, SIGTERM), before the next. */
export const STOP_TIMEOUT_MS = 10_000;
/** The losing timer of a race must not keep the bench alive once done. */
export const UNREF = { ref: false } as const;
/** Clock ticks per second of /proc/<pid>/stat's CPU times (USER_HZ: 100 on Linux). */
const USER_HZ = 100;
/** The stderr kept per child, for the message when it fails. */
const STDERR_TAIL = 4_000;

export interface RunningChild {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Its first stdout line, parsed (or what its `ready` check resolved with). */
  readonly info: Record<string, unknown>;
  /** The last few KiB it wrote to stderr. */
  readonly stderr: () => string;
}

export interface StartOptions {
  /** @default process.execPath (node) */
  readonly command?: string;
  /**
   * Resolves once the child is ready to be measured; the default reads its first stdout line
   * as a JSON object.
   */
  readonly ready?: (child: ChildProcess) => Promise<Record<string, unknown>>;
  /** @default START_TIMEOUT_MS */
  readonly timeoutMs?: number;
}

/** Every child started and not yet stopped. */
export const running = new Set<RunningChild>();

/** The first stdout line, as a JSON object; later lines are read and dropped. */
async function firstJsonLine(child: ChildProcess): Promise<Record<string, unknown>> {
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  try {
    const [line] = (await once(lines, 'line')) as [string];
    return JSON.parse(line) as Record<string, unknown>;
  } finally {
    lines.close();
    // A simulator process goes on printing: a full pipe would block it.
    child.stdout?.resume();
  }
}

/**
 * Spawns `command <args>` (node by default) without the bench's ECR_BRIDGE_<KEY> variables
 * (they would override the child's command line), stdin a pipe (the relay ends when it closes:
 * this process gone), and resolves once it is ready. Fails, the child killed, when it exits
 * first or is not ready within the bound.
 */
export async function startChild(
  name: string,
  args: readonly string[],
  options: StartOptions = {},
): Promise<RunningChild> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('ECR_BRIDGE_')),
  );
  const child = spawn(options.command ?? process.execPath, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env,
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_TAIL);
  });
  const timeoutMs = options.timeoutMs ?? START_TIMEOUT_MS;
  try {
    const info = await Promise.race([
      (options.ready ?? firstJsonLine)(child),
      once(child, 'exit').then(([code, signal]) => {
        throw new Error(`${name} exited with ${String(code ?? signal)} before starting: ${stderr}`);
      }),
      once(child, 'error').then(([error]) => {
        throw new Error(`${name}: ${(error as Error).message}`);
      }),
      sleep(timeoutMs, undefined, UNREF).then(() => {
        throw new Error(`${name} did not start within ${timeoutMs} ms: ${stderr}`);
      }),
    ]);
    const started: RunningChild = {
      name,
      child,
      pid: child.pid as number,
      info,
      stderr: () => stderr,
    };
    running.add(started);
    return started;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

const hasExited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/**
 * Asks the child to stop (`askToStop`, e.g. the connector's GET /stop) when given, then SIGTERM,
 * then SIGKILL, each step bounded. Resolves with its exit code (or signal).
 */
export async function stopChild(
  started: RunningChild,
  askToStop?: () => Promise<unknown>,
  stepMs: number = STOP_TIMEOUT_MS,
): Promise<number | string | null> {
  const { child } = started;
  running.delete(started);
  if (!hasExited(child)) {
    const exit = once(child, 'exit');
    const within = (ms: number) =>
      Promise.race([exit.then(() => true), sleep(ms, undefined, UNREF).then(() => false)]);
    if (askToStop !== undefined) await askToStop().catch(() => {});
    if (!(askToStop !== undefined && (await within(stepMs)))) {
      child.kill('SIGTERM');
      if (!(await within(stepMs))) {
        child.kill('SIGKILL');
        await exit;
      }
    }
  }
  child.stdin?.destroy();
  return child.exitCode ?? child.signalCode;
}

/** SIGKILL to every child still running: the way out of an interrupted or overlong bench. */
export function killAll(): void {
  for (const c of running) c.child.kill('SIGKILL');
}

/** After a failure: which children had exited, and the tail of each one's stderr. */
export async function describeChildren(): Promise<void> {
  await sleep(500); // a child that died has its exit seen
  for (const c of running) {
    const { exitCode: code, signalCode: signal } = c.child;
    if (code !== null || signal !== null)
      console.error(`${c.name} (pid ${c.pid}) had exited: ${String(code ?? signal)}`);
    const tail = c.stderr().trim();
    if (tail !== '') console.error(`${c.name} stderr:\n${tail}`);
  }
}

export interface BenchMainOptions {
  /** Longest the whole bench may run; past it, or on SIGINT/SIGTERM, every child is killed. */
  readonly timeoutMs: number;
  /** Stops what is left and removes what the bench made: run on every ordinary way out. */
  readonly cleanUp: () => Promise<void>;
  /** On the hard way out (timeout, signal), after SIGKILL to the children: what must not stay. */
  readonly abandon: () => Promise<void> | void;
  /** The logs whose last lines say why a failed bench failed. */
  readonly logs?: () => readonly { readonly label: string; readonly path: string }[];
}

/** How much of each log a failed bench prints. */
const LOG_TAIL = 3_000;

/**
 * Runs a bench that drives child processes, and exits: 0 when `body` and the clean-up went
 * well, 1 otherwise. On a failure it says which children had exited, their stderr and the tail of
 * each log; on a timeout or a signal it kills every child, runs `abandon` (at most 5 s) and
 * exits 1.
 */
export async function benchMain(
  name: string,
  body: () => Promise<void>,
  options: BenchMainOptions,
): Promise<never> {
  const giveUp = (why: string): void => {
    console.error(`${name} bench: ${why}`);
    killAll();
    void Promise.race([Promise.resolve().then(options.abandon), sleep(5_000)])
      .catch((error: unknown) => console.error(`${name} bench: ${(error as Error).message}`))
      .finally(() => process.exit(1));
  };
  const watchdog = setTimeout(
    () => giveUp(`gave up after ${options.timeoutMs / 60_000} min`),
    options.timeoutMs,
  );
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => giveUp(`${signal}, stopping`));
  let exitCode = 0;
  try {
    await body();
  } catch (error) {
    exitCode = 1;
    console.error(`\n${name} bench failed: ${(error as Error).message}`);
    await describeChildren();
    for (const log of options.logs?.() ?? []) {
      try {
        const text = readFileSync(log.path, 'utf8');
        if (text.trim() !== '')
          console.error(`${log.label} log (last lines):\n${text.slice(-LOG_TAIL)}`);
      } catch {
        // No log written.
      }
    }
  } finally {
    await options.cleanUp().catch((error: unknown) => {
      console.error(`${name} bench: clean-up failed: ${(error as Error).message}`);
      exitCode = 1;
    });
  }
  process.exit(exitCode);
}

// ---------------------------------------------------------------------------------------------
// /proc

/** VmRSS and VmHWM of a process, in KiB. */
export function memoryOf(pid: number): { rssKiB: number; hwmKiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rssKiB: kb('VmRSS'), hwmKiB: kb('VmHWM') };
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name: state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/** Child processes of a process (tsx may run esbuild beside node): their VmRSS is not in its own. */
export function childrenOf(pid: number): { pid: number; name: string; rssKiB: number }[] {
  const path = `/proc/${pid}/task/${pid}/children`;
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split(' ')
    .filter((s) => s !== '')
    .map(Number)
    .flatMap((child) => {
      try {
        const name = readFileSync(`/proc/${child}/comm`, 'utf8').trim();
        return [{ pid: child, name, rssKiB: memoryOf(child).rssKiB }];
      } catch {
        return [];
      }
    });
}

/** The most open files a process may hold (its soft RLIMIT_NOFILE). */
export function openFileLimitOf(pid: number | 'self'): number {
  const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
  return Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1] ?? Infinity);
}
