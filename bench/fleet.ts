/**
 * The gateway bench's two sides of every run: the terminal fleet brought online in paced batches
 * (simulated eConduit terminals, or the MQTT baseline's clients), the POS workers driving sales
 * (each worker on terminals of its own), and the CPU each process used meanwhile.
 */
import { once, setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { POS_ONLINE } from '../src/protocols/econduit/messages.js';
import type { EconduitSimulator } from '../src/simulators/econduit/simulator.js';
import { cpuSecondsOf } from './children.js';
import type { MqttTerminalFleet } from './mqtt-baseline.js';

// ---------------------------------------------------------------------------------------------
// CPU

/** CPU used by the child and by this process (the terminals and the POS) while `run` runs. */
export async function withCpu(
  pid: number,
  run: () => Promise<Phase>,
): Promise<Phase & { cpu: CpuShare }> {
  const child = cpuSecondsOf(pid);
  const own = process.cpuUsage();
  const result = await run();
  const used = process.cpuUsage(own);
  return {
    ...result,
    cpu: {
      childPercent: ((cpuSecondsOf(pid) - child) * 100) / result.seconds,
      benchPercent: (used.user + used.system) / 1e4 / result.seconds,
    },
  };
}

/** CPU over a phase, in % of one core (the machine has two). */
export interface CpuShare {
  readonly childPercent: number;
  readonly benchPercent: number;
}

// ---------------------------------------------------------------------------------------------
// Simulated terminals

/** A fleet of terminals to bring online: an EconduitSimulator's, or the MQTT baseline's. */
export interface Fleet {
  readonly count: number;
  /**
   * Starts the terminals `from` to `to` (excluded); resolves once all are online. `signal`
   * aborts the wait (the batch's bound).
   */
  startBatch(from: number, to: number, signal: AbortSignal): Promise<unknown>;
  /** For the message when a batch is late. */
  status(): string;
}

export function econduitFleet(simulator: EconduitSimulator): Fleet {
  let refused = 0;
  for (const t of simulator.terminals) t.agent.on('registrationRefused', () => refused++);
  return {
    count: simulator.terminals.length,
    startBatch: (from, to, signal) => {
      const batch = simulator.terminals.slice(from, to);
      setMaxListeners(batch.length + 1, signal);
      const online = Promise.all(
        batch.map((t) =>
          t.agent.status === POS_ONLINE ? undefined : once(t.agent, 'online', { signal }),
        ),
      );
      for (const t of batch) t.agent.start();
      return online;
    },
    status: () =>
      `${simulator.onlineCount} of ${simulator.terminals.length} online, ` +
      `${refused} registrations refused`,
  };
}

export function mqttFleet(fleet: MqttTerminalFleet): Fleet {
  return {
    count: fleet.terminals.length,
    startBatch: (from, to, signal) => {
      const started = Promise.all(fleet.terminals.slice(from, to).map((t) => t.start()));
      const aborted = new Promise((_resolve, reject) =>
        signal.addEventListener('abort', () => reject(new Error('timed out')), { once: true }),
      );
      return Promise.race([started, aborted]);
    },
    status: () =>
      `${fleet.onlineCount} of ${fleet.terminals.length} connected and subscribed, ` +
      `${fleet.connectedCount} connections up`,
  };
}

/** How connectAll brings a fleet online. */
export interface Pacing {
  /** Terminals started at once: more could overflow the listen backlog (511). */
  readonly batch: number;
  /** The batches spread over this long (one heartbeat interval). */
  readonly spreadMs: number;
  /** Bound on one batch coming online. */
  readonly batchTimeoutMs: number;
}

/**
 * Starts the fleet's terminals `batch` at a time, each batch online before the next. The batches
 * are spread over `spreadMs` (one heartbeat interval) at least, so that the fleet's heartbeats arrive evenly,
 * not in bursts (any window then shows the rate). Resolves with the milliseconds the batches took
 * to come online, the waits between them left out. Fails when a batch is not all online within
 * its bound.
 */
export async function connectAll(
  fleet: Fleet,
  side: string,
  { batch, spreadMs, batchTimeoutMs }: Pacing,
): Promise<number> {
  const started = performance.now();
  let busyMs = 0;
  const batches = Math.ceil(fleet.count / batch);
  for (let from = 0, k = 0; from < fleet.count; from += batch, k++) {
    const due = started + (k * spreadMs) / batches - performance.now();
    if (due > 0) await sleep(due);
    const to = Math.min(fleet.count, from + batch);
    const batchStarted = performance.now();
    try {
      await fleet.startBatch(from, to, AbortSignal.timeout(batchTimeoutMs));
    } catch (error) {
      throw new Error(
        `${side}: terminals ${from + 1}–${to} not all online within ` +
          `${batchTimeoutMs} ms (${fleet.status()}): ${(error as Error).message}`,
      );
    }
    busyMs += performance.now() - batchStarted;
  }
  return busyMs;
}

// ---------------------------------------------------------------------------------------------
// The POS side: workers, each with terminals of its own

export interface Phase {
  readonly samples: number[];
  readonly seconds: number;
}

/** One POS call on a terminal; resolves with its latency in ms once the answer is checked. */
export type PosCall = (
  worker: number,
  seq: number,
  terminalId: string,
  refId: string,
) => Promise<number>;

/**
 * `concurrency` workers, worker w using terminals w, w+C, w+2C, … in turn (never two calls in
 * flight on one terminal); `seq` numbers every call of the run (warm-up included).
 */
export function posDriver(terminalIds: readonly string[], concurrency: number) {
  const own = Array.from({ length: concurrency }, (_, w) =>
    terminalIds.filter((_id, i) => i % concurrency === w),
  );
  const cursor = new Array<number>(concurrency).fill(0);
  let seq = 0;
  return async (count: number, refPrefix: string, call: PosCall): Promise<Phase> => {
    const samples: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      own.map(async (ids, w) => {
        while (next < count) {
          const i = next++;
          const terminalId = ids[(cursor[w] as number) % ids.length] as string;
          cursor[w] = (cursor[w] as number) + 1;
          try {
            samples.push(await call(w, seq++, terminalId, `${refPrefix}${i}`));
          } catch (error) {
            next = count; // the other workers stop after their call in flight
            throw error;
          }
        }
      }),
    );
    return { samples, seconds: (performance.now() - started) / 1000 };
  };
}
