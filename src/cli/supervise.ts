import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { get } from 'node:http';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { loadConfig, type ConnectorConfig } from '../connector/config.js';
import { acquirePidLock, readPidLock, type PidLockHolder } from '../connector/pid-lock.js';
import {
  spawnSupervised,
  Supervisor,
  type ChildExit,
  type SupervisorEvent,
} from '../connector/supervisor.js';
import { EcrError } from '../core/errors.js';
import type { CommandOutput, CommonOptions } from './main.js';

/**
 * `connector supervise` and `connector always-up`: kiosk seed 003's `launch.sh` (tp-manager and
 * its supervisor) and `always-up` (run by cron every 2 minutes, or Task Scheduler every 5).
 */

/** The CLI entry point the supervisor starts `connector start` with (the same bin). */
export const ECR_BRIDGE_BIN = fileURLToPath(new URL('../../bin/ecr-bridge.js', import.meta.url));
/** In DATA_DIR: held by the running supervisor, so one data directory has one supervisor. */
export const SUPERVISOR_LOCK_FILE = 'supervisor.lock';
/** In DATA_DIR: held by an always-up run while it starts a supervisor. */
export const ALWAYS_UP_LOCK_FILE = 'always-up.lock';
/** In DATA_DIR: where a supervisor started by always-up writes (its lines and the connector's). */
export const CONNECTOR_LOG_FILE = join('logs', 'connector.log');
/** How long always-up waits for the connector to answer, in seconds. */
export const ALWAYS_UP_DEFAULT_WAIT_S = 20;
/** Bound of one GET /version probe. */
export const PROBE_TIMEOUT_MS = 2_000;
const PROBE_INTERVAL_MS = 250;

export interface ConnectorSuperviseOptions extends CommonOptions {
  readonly config: string;
}

export interface ConnectorAlwaysUpOptions extends CommonOptions {
  readonly config: string;
  /** Seconds to wait for the connector to answer. @default ALWAYS_UP_DEFAULT_WAIT_S */
  readonly wait?: number;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function describeExit(exit: ChildExit): string {
  if (exit.error !== undefined) return `could not be started (${exit.error})`;
  if (exit.signal !== null) return `was killed by ${exit.signal}`;
  return `exited with code ${String(exit.code)}${exit.code === 0 ? ' (a clean stop)' : ''}`;
}

/** One supervisor event for people; the pid stays first after "connector" for scripts. */
export function describeSupervisorEvent(event: SupervisorEvent): string {
  switch (event.type) {
    case 'started':
      return `connector started (pid ${String(event.pid)}), start ${event.start}`;
    case 'exited':
      return `connector (pid ${String(event.pid)}) ${describeExit(event.exit)} after ${seconds(event.ranMs)}`;
    case 'restarting':
      return `restart ${event.restart} in ${seconds(event.delayMs)}`;
    case 'stopping':
      return `${event.signal} received: stopping${event.pid === undefined ? '' : ` connector (pid ${event.pid})`}`;
    case 'killed':
      return `connector (pid ${String(event.pid)}) still running ${seconds(event.afterMs)} after SIGTERM: killed`;
    case 'finished':
      return `supervisor done (${event.reason === 'clean-exit' ? 'the connector stopped cleanly' : 'stopped'}), exit ${event.exitCode}`;
  }
}

function configPath(options: { readonly config: string }): {
  path: string;
  config: ConnectorConfig;
} {
  const path = resolve(options.config);
  return { path, config: loadConfig(path) };
}

/** Runs `fn` on DATA_DIR (and its logs folder); a folder that cannot be written is bad input. */
async function inDataDir<T>(config: ConnectorConfig, fn: () => Promise<T>): Promise<T> {
  try {
    mkdirSync(join(config.dataDir, 'logs'), { recursive: true });
    return await fn();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === undefined || !['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'ENOSPC'].includes(code))
      throw error;
    throw new EcrError(
      'INVALID_INPUT',
      `DATA_DIR ${config.dataDir}: cannot be written (${code}); fix its permissions or choose another in config.txt`,
      { field: 'DATA_DIR', rule: 'must be a writable directory', cause: error },
    );
  }
}

/**
 * `ecr-bridge connector supervise --config <file>`: runs `connector start` as a child, restarts
 * it when it exits abnormally (jittered back-off, 0.5–1 s growing to at most 60 s), ends when it
 * exits 0 (GET /stop); SIGINT / SIGTERM stop the child, then the supervisor. One per DATA_DIR.
 */
export async function runConnectorSupervise(
  options: ConnectorSuperviseOptions,
): Promise<CommandOutput> {
  const { path, config } = configPath(options);
  const lockPath = join(config.dataDir, SUPERVISOR_LOCK_FILE);
  const lock = await inDataDir(config, () => acquirePidLock(lockPath));
  if (!lock.acquired) {
    throw new EcrError(
      'INVALID_INPUT',
      `DATA_DIR ${config.dataDir}: a supervisor (pid ${String(lock.holder?.pid ?? 'unknown')}) already runs for this data directory (${lockPath}); stop it first`,
      { field: 'DATA_DIR', rule: 'one supervisor per data directory' },
    );
  }
  // A supervisor outlives whoever started it: a closed stderr (EPIPE) must not end it.
  process.stderr.on('error', () => {});
  const say = (line: string, event?: SupervisorEvent): void => {
    process.stderr.write(
      options.json
        ? `${JSON.stringify({ time: new Date().toISOString(), supervisorPid: process.pid, ...(event ?? { type: 'info', message: line }) })}\n`
        : `${new Date().toISOString()} supervise[${process.pid}]: ${line}\n`,
    );
  };
  const supervisor = new Supervisor({
    start: () =>
      spawnSupervised(process.execPath, [
        ECR_BRIDGE_BIN,
        'connector',
        'start',
        '--config',
        path,
        '--log-level',
        options.logLevel,
      ]),
    onEvent: (event) => say(describeSupervisorEvent(event), event),
  });
  // Listen before the first line: whoever reads it may signal at once (simulate.ts does the same).
  const onSignal = (signal: NodeJS.Signals) => supervisor.stop(signal);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (lock.tookOver !== undefined) {
      say(`took over the lock of a supervisor that is gone (pid ${lock.tookOver.pid})`);
    }
    say(
      `supervising connector start --config ${path} (http://127.0.0.1:${config.localPort}, DATA_DIR ${config.dataDir})`,
    );
    const result = await supervisor.run();
    return { exitCode: result.exitCode };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    lock.release();
  }
}

/** What a GET /version on the local port gave: any HTTP answer (401 too) means up. */
export type Probe =
  { readonly up: true; readonly status: number } | { readonly up: false; readonly reason: string };

/**
 * One bounded GET /version on 127.0.0.1:`port`, with the config's Basic Auth. node:http rather
 * than fetch: a peer that accepts and hangs up must read as "down" at once, and the timeout must
 * hold the process open (fetch's AbortSignal.timeout timer does not).
 */
export function probeConnector(
  port: number,
  credentials?: { readonly login: string; readonly password: string },
): Promise<Probe> {
  return new Promise((resolvePromise) => {
    const request = get(
      {
        host: '127.0.0.1',
        port,
        path: '/version',
        agent: false,
        headers: {
          connection: 'close',
          ...(credentials === undefined
            ? {}
            : {
                authorization: `Basic ${Buffer.from(`${credentials.login}:${credentials.password}`).toString('base64')}`,
              }),
        },
      },
      (response) => {
        response.resume();
        resolvePromise({ up: true, status: response.statusCode ?? 0 });
        request.destroy();
      },
    );
    const timer = setTimeout(() => request.destroy(new Error('TIMEOUT')), PROBE_TIMEOUT_MS);
    request.once('close', () => clearTimeout(timer));
    request.once('error', (error: NodeJS.ErrnoException) =>
      resolvePromise({ up: false, reason: error.code ?? error.message }),
    );
  });
}

/** Polls until the connector answers, `deadline` passes, or `gaveUp` says to stop looking. */
async function waitUntilUp(
  config: ConnectorConfig,
  deadline: number,
  gaveUp: () => boolean = () => false,
): Promise<Probe> {
  for (;;) {
    const probe = await probeConnector(config.localPort, config);
    if (probe.up || gaveUp() || Date.now() >= deadline) return probe;
    await sleep(PROBE_INTERVAL_MS);
  }
}

interface UpReport {
  readonly state: 'already-up' | 'started' | 'started-elsewhere';
  readonly url: string;
  readonly status: number;
  readonly supervisorPid?: number;
  readonly log?: string;
}

function upOutput(report: UpReport, text: string): CommandOutput {
  return { exitCode: 0, text, json: report };
}

function notUp(url: string, waitS: number, what: string, log: string): EcrError {
  return new EcrError(
    'TIMEOUT',
    `LOCAL_PORT: the connector did not answer on ${url}/version within ${waitS} s (${what}); see ${log}`,
    { field: 'LOCAL_PORT', rule: `must answer within ${waitS} s` },
  );
}

/**
 * `ecr-bridge connector always-up --config <file>`, for cron (`*\/2 * * * *`) or Task Scheduler:
 * exits 0 at once when a connector answers on 127.0.0.1:LOCAL_PORT; otherwise starts
 * `connector supervise` detached (its own process group, output to DATA_DIR/logs/connector.log)
 * and exits 0 once the connector answers. An O_EXCL lock in DATA_DIR makes two runs at once
 * start one supervisor; a supervisor already running (restarting its connector) is waited for,
 * not doubled.
 */
export async function runConnectorAlwaysUp(
  options: ConnectorAlwaysUpOptions,
): Promise<CommandOutput> {
  const { path, config } = configPath(options);
  const url = `http://127.0.0.1:${config.localPort}`;
  const waitS = options.wait ?? ALWAYS_UP_DEFAULT_WAIT_S;
  const log = join(config.dataDir, CONNECTOR_LOG_FILE);
  const alreadyUp = (status: number) =>
    upOutput(
      { state: 'already-up', url, status },
      `connector already up on ${url} (GET /version: HTTP ${status})`,
    );

  const first = await probeConnector(config.localPort, config);
  if (first.up) return alreadyUp(first.status);

  const deadline = Date.now() + waitS * 1000;
  const lock = await inDataDir(config, () =>
    acquirePidLock(join(config.dataDir, ALWAYS_UP_LOCK_FILE)),
  );
  if (!lock.acquired) {
    // Another always-up is starting it right now: wait for its result instead of doubling it.
    const holder = `always-up (pid ${String(lock.holder?.pid ?? 'unknown')})`;
    const probe = await waitUntilUp(config, deadline);
    if (!probe.up) throw notUp(url, waitS, `${holder} is starting it`, log);
    return upOutput(
      { state: 'started-elsewhere', url, status: probe.status },
      `connector up on ${url} (GET /version: HTTP ${probe.status}), started by another ${holder}`,
    );
  }
  try {
    const took = lock.tookOver === undefined ? '' : tookOverText(lock.tookOver);
    const again = await probeConnector(config.localPort, config);
    if (again.up) return alreadyUp(again.status);

    const supervisorLock = readPidLock(join(config.dataDir, SUPERVISOR_LOCK_FILE));
    if (supervisorLock?.alive === true) {
      const pid = supervisorLock.holder?.pid;
      const probe = await waitUntilUp(config, deadline);
      if (!probe.up) {
        throw notUp(url, waitS, `its supervisor (pid ${String(pid)}) runs, restarting it`, log);
      }
      return upOutput(
        {
          state: 'started-elsewhere',
          url,
          status: probe.status,
          ...(pid === undefined ? {} : { supervisorPid: pid }),
        },
        `connector up on ${url} (GET /version: HTTP ${probe.status}), kept up by its supervisor (pid ${String(pid)})${took}`,
      );
    }

    const started = Date.now();
    const child = startDetachedSupervisor(path, log, options.logLevel);
    let exited: ChildExit | undefined;
    child.exited.then((exit) => (exited = exit)).catch(() => undefined);
    const probe = await waitUntilUp(config, deadline, () => exited !== undefined);
    if (!probe.up) {
      const why =
        exited === undefined
          ? `the supervisor (pid ${String(child.pid)}) started but the connector is not up yet`
          : `the supervisor (pid ${String(child.pid)}) ${describeExit(exited)}`;
      throw notUp(url, waitS, why, log);
    }
    return upOutput(
      {
        state: 'started',
        url,
        status: probe.status,
        ...(child.pid === undefined ? {} : { supervisorPid: child.pid }),
        log,
      },
      `started a supervisor (pid ${String(child.pid)}); connector up on ${url} after ${seconds(Date.now() - started)} (GET /version: HTTP ${probe.status}); log ${log}${took}`,
    );
  } finally {
    lock.release();
  }
}

function tookOverText(holder: PidLockHolder): string {
  return `; took over the stale lock of always-up pid ${holder.pid}`;
}

/**
 * `connector supervise` in its own process group (and session), detached from this process:
 * cron's job ends, the supervisor stays. Output is appended to the log file.
 */
function startDetachedSupervisor(
  config: string,
  log: string,
  logLevel: string,
): { pid: number | undefined; exited: Promise<ChildExit> } {
  const fd = openSync(log, 'a');
  try {
    const child = spawn(
      process.execPath,
      [ECR_BRIDGE_BIN, 'connector', 'supervise', '--config', config, '--log-level', logLevel],
      { detached: true, stdio: ['ignore', fd, fd], windowsHide: true },
    );
    const exited = new Promise<ChildExit>((resolvePromise) => {
      child.once('exit', (code, signal) => resolvePromise({ code, signal }));
      child.on('error', (error) => {
        if (child.pid === undefined)
          resolvePromise({ code: null, signal: null, error: error.message });
      });
    });
    child.unref();
    return { pid: child.pid, exited };
  } finally {
    closeSync(fd);
  }
}
