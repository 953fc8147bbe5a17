import { spawn } from 'node:child_process';
import { backoffDelay } from '../transports/backoff.js';

/**
 * Keeps one child process running (kiosk seed 003's tp-manager + supervisor pair as one
 * command): restarts it when it exits abnormally, after a jittered exponential back-off; a clean
 * exit 0 (the connector's `GET /stop`) ends the supervisor too; `stop()` (SIGINT / SIGTERM)
 * asks the child to stop and ends once it has. Process spawning, clock and timers are
 * parameters, so the policy is tested with fake children and fake time.
 */

/** First restart delay's ceiling: the first restart comes 0.5–1 s after a crash. */
export const SUPERVISOR_BACKOFF_BASE_MS = 1_000;
/** Longest restart delay: a connector that cannot start is tried at least once a minute. */
export const SUPERVISOR_BACKOFF_MAX_MS = 60_000;
/** A child that ran this long was healthy: its crash restarts the back-off from the base. */
export const SUPERVISOR_HEALTHY_AFTER_MS = 60_000;
/**
 * How long a stopping child may take before it is killed: the connector finishes a payment in
 * flight before it exits (a card step takes up to ~2 min), so this is generous.
 */
export const SUPERVISOR_STOP_TIMEOUT_MS = 150_000;

/** How a child ended. `code` null: killed by `signal`; both null: it could not be started. */
export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Why it could not be started (ENOENT, EACCES). */
  readonly error?: string;
}

/** A started child, as the supervisor sees it. */
export interface SupervisedChild {
  readonly pid: number | undefined;
  kill(signal: NodeJS.Signals): void;
  /** Settles once, when the child has exited. Never rejects. */
  readonly exited: Promise<ChildExit>;
}

/** What the supervisor did, for its log (house style 6). */
export type SupervisorEvent =
  | { readonly type: 'started'; readonly pid: number | undefined; readonly start: number }
  | {
      readonly type: 'exited';
      readonly pid: number | undefined;
      readonly exit: ChildExit;
      readonly ranMs: number;
    }
  | { readonly type: 'restarting'; readonly delayMs: number; readonly restart: number }
  | {
      readonly type: 'stopping';
      readonly signal: NodeJS.Signals;
      readonly pid: number | undefined;
    }
  | { readonly type: 'killed'; readonly pid: number | undefined; readonly afterMs: number }
  | { readonly type: 'finished'; readonly reason: SupervisorEndReason; readonly exitCode: number };

/** `clean-exit`: the child exited 0 by itself; `stopped`: `stop()` was called. */
export type SupervisorEndReason = 'clean-exit' | 'stopped';

export interface SupervisorResult {
  readonly reason: SupervisorEndReason;
  /** 0, or 1 when a stopping child had to be killed after SUPERVISOR_STOP_TIMEOUT_MS. */
  readonly exitCode: number;
  /** Children started, the first included. */
  readonly starts: number;
}

export interface SupervisorOptions {
  /** Starts the child; called again for every restart. */
  readonly start: () => SupervisedChild;
  readonly onEvent?: (event: SupervisorEvent) => void;
  /** @default SUPERVISOR_BACKOFF_BASE_MS */
  readonly backoffBaseMs?: number;
  /** @default SUPERVISOR_BACKOFF_MAX_MS */
  readonly backoffMaxMs?: number;
  /** @default SUPERVISOR_HEALTHY_AFTER_MS */
  readonly healthyAfterMs?: number;
  /** @default SUPERVISOR_STOP_TIMEOUT_MS */
  readonly stopTimeoutMs?: number;
  /** @default Math.random */
  readonly random?: () => number;
  /** Milliseconds, for run times. @default Date.now */
  readonly now?: () => number;
  /** @default setTimeout */
  readonly setTimer?: (callback: () => void, ms: number) => unknown;
  /** @default clearTimeout */
  readonly clearTimer?: (handle: unknown) => void;
}

/**
 * The delay before restart number `restart` (0 for the first): "equal jitter", a random delay in
 * [ceiling/2, ceiling) with ceiling = min(max, base·2^restart). Random, so that many kiosks
 * whose connectors fell over together do not come back in lock-step; never near zero, so that a
 * connector that dies at once never turns into a tight loop.
 */
export function restartDelay(
  restart: number,
  base = SUPERVISOR_BACKOFF_BASE_MS,
  max = SUPERVISOR_BACKOFF_MAX_MS,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(max, base * 2 ** Math.max(0, restart));
  return Math.floor(ceiling / 2 + backoffDelay(restart, base, max, random) / 2);
}

export class Supervisor {
  private readonly options: SupervisorOptions;
  private readonly now: () => number;
  private readonly setTimer: (callback: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private current: SupervisedChild | undefined;
  private stopSignal: NodeJS.Signals | undefined;
  private killed = false;
  private stopTimer: unknown;
  private wakeUp: (() => void) | undefined;

  constructor(options: SupervisorOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.setTimer = options.setTimer ?? ((callback, ms) => setTimeout(callback, ms));
    this.clearTimer = options.clearTimer ?? ((handle) => clearTimeout(handle as NodeJS.Timeout));
  }

  /** The pid of the running child, if one runs. */
  get childPid(): number | undefined {
    return this.current?.pid;
  }

  /**
   * Asks the supervisor to end: the child is sent SIGTERM (whatever `signal` the supervisor got,
   * see below) and killed if it has not exited after `stopTimeoutMs`; a restart waiting to
   * happen is cancelled. Calling it again changes nothing.
   *
   * Why always SIGTERM: Ctrl-C in a terminal sends SIGINT to the whole foreground process group,
   * the child included. The connector stops cleanly on its first SIGINT or SIGTERM, but a second
   * signal of the same kind would find Node's default handler and end it mid-close. SIGTERM on
   * top of the terminal's SIGINT is one of each.
   */
  stop(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.stopSignal !== undefined) return;
    this.stopSignal = signal;
    const child = this.current;
    this.emit({ type: 'stopping', signal, pid: child?.pid });
    this.wakeUp?.();
    if (child === undefined) return;
    this.signal(child, 'SIGTERM');
    const timeout = this.options.stopTimeoutMs ?? SUPERVISOR_STOP_TIMEOUT_MS;
    this.stopTimer = this.setTimer(() => {
      this.killed = true;
      this.emit({ type: 'killed', pid: child.pid, afterMs: timeout });
      this.signal(child, 'SIGKILL');
    }, timeout);
  }

  /** Runs until the child exits 0 by itself or `stop()` was called and the child is gone. */
  async run(): Promise<SupervisorResult> {
    let restart = 0;
    let starts = 0;
    for (;;) {
      if (this.stopSignal !== undefined) return this.finish('stopped', starts);
      const child = this.options.start();
      this.current = child;
      starts++;
      const startedAt = this.now();
      this.emit({ type: 'started', pid: child.pid, start: starts });
      const exit = await child.exited;
      this.current = undefined;
      const ranMs = this.now() - startedAt;
      this.emit({ type: 'exited', pid: child.pid, exit, ranMs });
      if (this.stopSignal !== undefined) return this.finish('stopped', starts);
      if (exit.code === 0) return this.finish('clean-exit', starts);
      if (ranMs >= (this.options.healthyAfterMs ?? SUPERVISOR_HEALTHY_AFTER_MS)) restart = 0;
      const delayMs = restartDelay(
        restart,
        this.options.backoffBaseMs,
        this.options.backoffMaxMs,
        this.options.random,
      );
      restart++;
      this.emit({ type: 'restarting', delayMs, restart });
      await this.pause(delayMs);
    }
  }

  private finish(reason: SupervisorEndReason, starts: number): SupervisorResult {
    if (this.stopTimer !== undefined) this.clearTimer(this.stopTimer);
    this.stopTimer = undefined;
    const exitCode = this.killed ? 1 : 0;
    this.emit({ type: 'finished', reason, exitCode });
    return { reason, exitCode, starts };
  }

  /** Waits `ms`, or less when `stop()` is called meanwhile. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.setTimer(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      this.wakeUp = () => {
        this.clearTimer(timer);
        this.wakeUp = undefined;
        resolve();
      };
    });
  }

  private signal(child: SupervisedChild, signal: NodeJS.Signals): void {
    try {
      child.kill(signal);
    } catch {
      // Already gone: its `exited` settles on its own.
    }
  }

  private emit(event: SupervisorEvent): void {
    this.options.onEvent?.(event);
  }
}

/**
 * Spawns `command args` as a supervised child whose stdin is closed and whose stdout and stderr
 * are this process's own (its output passes through).
 */
export function spawnSupervised(
  command: string,
  args: readonly string[],
  options: { readonly env?: NodeJS.ProcessEnv; readonly cwd?: string } = {},
): SupervisedChild {
  const child = spawn(command, [...args], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: options.env ?? process.env,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    windowsHide: true,
  });
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    // 'error' also reports a failed kill of a running child: only a child without a pid (never
    // started) has exited through it.
    child.on('error', (error) => {
      if (child.pid === undefined) resolve({ code: null, signal: null, error: error.message });
    });
  });
  return { pid: child.pid, kill: (signal) => void child.kill(signal), exited };
}
