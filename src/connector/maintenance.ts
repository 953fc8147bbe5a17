import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { BatchTotals, TerminalDriver } from '../core/driver.js';
import { toEcrError, type ErrorCode } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { formatMoney } from '../core/money.js';
import { isOwnerAlive } from '../core/owner.js';
import type { TransactionService } from '../core/transaction-service.js';
import type { Journal } from '../core/journal-port.js';

/**
 * UPDATE_TIME (kiosk seed 003, "Connector update time with hh:mm format"): once a day at that
 * local time the connector closes the terminal's batch (the seed's `/tlc` telecollection) and
 * tidies its journal. The scheduler takes its clock and timers as parameters (house style 8).
 */

/** A local time of day, as config.txt's UPDATE_TIME gives it. */
export interface TimeOfDay {
  /** 0–23. */
  readonly hour: number;
  /** 0–59. */
  readonly minute: number;
}

/**
 * Longest single timer the scheduler sets: it wakes at least this often to re-read the clock, so
 * a wall-clock change (NTP step, the machine set right by hand) or a suspend shifts a run by at
 * most this much.
 */
export const MAINTENANCE_RECHECK_MS = 10 * 60_000;
/**
 * A run this late (the machine slept, or was off, through UPDATE_TIME) is skipped for the day:
 * the hour was chosen because the shop is shut then, and a batch close in opening hours would
 * hold the terminal while customers wait.
 */
export const MAINTENANCE_MAX_LATENESS_MS = 2 * 60 * 60_000;
/** Tries of the batch close while a payment holds the terminal (the connector queues none). */
export const MAINTENANCE_BUSY_ATTEMPTS = 10;
/** Wait between those tries. */
export const MAINTENANCE_BUSY_RETRY_MS = 30_000;

/** The local day of a date: `2025-03-30`. What "never twice a day" counts by. */
export function localDay(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/**
 * The first `time` of a local day strictly after `after`, skipping the day `doneDay` (already
 * run). Local Date arithmetic: `new Date(y, m, d + 1, hh, mm)` is tomorrow at hh:mm whatever the
 * length of today (23 or 25 hours across a DST change). A time the spring-forward gap skips
 * (02:30 in Europe/Paris on the last Sunday of March) becomes the same wall time after the
 * jump (03:30); one the fall-back repeats is taken at its first occurrence.
 */
export function nextRunAt(time: TimeOfDay, after: Date, doneDay?: string): Date {
  for (let days = 0; ; days++) {
    const candidate = new Date(
      after.getFullYear(),
      after.getMonth(),
      after.getDate() + days,
      time.hour,
      time.minute,
    );
    if (candidate.getTime() > after.getTime() && localDay(candidate) !== doneDay) return candidate;
  }
}

/** Scheduler state (house style 6). */
export type SchedulerState =
  | { readonly type: 'idle' }
  | { readonly type: 'waiting'; readonly next: Date }
  | { readonly type: 'running'; readonly day: string }
  | { readonly type: 'stopped' };

/** Opaque handle of the injected timer functions. */
export type TimerHandle = unknown;

export interface MaintenanceSchedulerOptions<T> {
  /** The daily time, local. */
  readonly time: TimeOfDay;
  /** The daily work. A throw is logged; the next day runs all the same. */
  readonly task: () => Promise<T>;
  /** Whether a result is a success (logged at info) or a failure (error). @default always success */
  readonly succeeded?: (result: T) => boolean;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** @default setTimeout, unref'ed (the scheduler never keeps a process alive alone) */
  readonly setTimer?: (callback: () => void, ms: number) => TimerHandle;
  /** @default clearTimeout */
  readonly clearTimer?: (handle: TimerHandle) => void;
  /** @default MAINTENANCE_RECHECK_MS */
  readonly recheckMs?: number;
  /** @default MAINTENANCE_MAX_LATENESS_MS */
  readonly maxLatenessMs?: number;
  readonly logger?: Logger;
}

const hhmm = (time: TimeOfDay) =>
  `${String(time.hour).padStart(2, '0')}:${String(time.minute).padStart(2, '0')}`;

/**
 * Runs a task once a day at a local time. Never twice for one local day, never two at once; a
 * failed run is logged and the next day runs; `stop()` cancels the timer and waits for a run in
 * progress.
 */
export class MaintenanceScheduler<T> {
  private readonly options: MaintenanceSchedulerOptions<T>;
  private readonly now: () => Date;
  private readonly setTimer: (callback: () => void, ms: number) => TimerHandle;
  private readonly clearTimer: (handle: TimerHandle) => void;
  private readonly logger: Logger;
  private state: SchedulerState = { type: 'idle' };
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  /** The local day of the last run (done, failed or skipped as late). */
  private doneDay: string | undefined;

  constructor(options: MaintenanceSchedulerOptions<T>) {
    this.options = options;
    this.now = options.now ?? (() => new Date());
    this.setTimer =
      options.setTimer ??
      ((callback, ms) => {
        const timer = setTimeout(callback, ms);
        timer.unref();
        return timer;
      });
    this.clearTimer =
      options.clearTimer ?? ((handle) => clearTimeout(handle as NodeJS.Timeout | undefined));
    this.logger = options.logger ?? silentLogger;
  }

  get status(): SchedulerState {
    return this.state;
  }

  /** Arms the timer for the next run: today if hh:mm is still ahead, otherwise tomorrow. */
  start(): void {
    if (this.state.type !== 'idle') return;
    this.arm(true);
  }

  /** Cancels the next run and waits for one in progress. */
  async stop(): Promise<void> {
    this.state = { type: 'stopped' };
    if (this.timer !== undefined) this.clearTimer(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private arm(log: boolean): void {
    if (this.state.type === 'stopped') return;
    const now = this.now();
    const next = nextRunAt(this.options.time, now, this.doneDay);
    this.state = { type: 'waiting', next };
    if (log) {
      this.logger.info(
        { updateTime: hhmm(this.options.time), next: next.toISOString(), localDay: localDay(next) },
        'maintenance scheduled',
      );
    }
    const wait = Math.min(
      Math.max(0, next.getTime() - now.getTime()),
      this.options.recheckMs ?? MAINTENANCE_RECHECK_MS,
    );
    this.timer = this.setTimer(() => this.wake(next), wait);
  }

  private wake(target: Date): void {
    this.timer = undefined;
    if (this.state.type === 'stopped') return;
    const now = this.now();
    // Early (a recheck, or the clock was set back): wait on, for a target recomputed from now.
    if (now.getTime() < target.getTime()) return this.arm(false);
    const day = localDay(target);
    const late = now.getTime() - target.getTime();
    this.doneDay = day;
    if (late > (this.options.maxLatenessMs ?? MAINTENANCE_MAX_LATENESS_MS)) {
      this.logger.warn(
        { localDay: day, lateMinutes: Math.round(late / 60_000) },
        'maintenance skipped: the machine was asleep or off at UPDATE_TIME; next run tomorrow',
      );
      return this.arm(true);
    }
    this.state = { type: 'running', day };
    this.running = this.runOnce(day).finally(() => {
      this.running = undefined;
      this.arm(true);
    });
  }

  private async runOnce(day: string): Promise<void> {
    const started = this.now().getTime();
    this.logger.info({ localDay: day }, 'maintenance run started');
    try {
      const result = await this.options.task();
      const ok = this.options.succeeded?.(result) ?? true;
      const fields = { localDay: day, ms: this.now().getTime() - started, result };
      if (ok) this.logger.info(fields, 'maintenance run done');
      else this.logger.error(fields, 'maintenance run failed');
    } catch (error) {
      const e = toEcrError(error);
      this.logger.error(
        { localDay: day, err: { code: e.code, message: e.message } },
        'maintenance run failed',
      );
    }
  }
}

/** How the batch close of one run went. */
export type BatchCloseStep =
  | {
      readonly status: 'closed';
      readonly batchNumber: string;
      readonly saleCount: number;
      readonly refundCount: number;
      readonly net: string;
    }
  | { readonly status: 'skipped'; readonly reason: string }
  | { readonly status: 'failed'; readonly code: ErrorCode; readonly message: string };

/** How the journal housekeeping of one run went. */
export type HousekeepingStep =
  | { readonly status: 'done'; readonly checkpointed: boolean; readonly locksRemoved: number }
  | { readonly status: 'failed'; readonly code: ErrorCode; readonly message: string };

/** What one maintenance run did: logged as is (no card data, no secrets in it). */
export interface MaintenanceReport {
  readonly ok: boolean;
  readonly batchClose: BatchCloseStep;
  readonly housekeeping: HousekeepingStep;
}

export interface MaintenanceOptions {
  readonly service: TransactionService;
  /** The id the service knows the terminal by. */
  readonly terminalId: string;
  readonly driver: TerminalDriver;
  readonly journal: Journal;
  readonly logger?: Logger;
  /** @default MAINTENANCE_BUSY_ATTEMPTS */
  readonly busyAttempts?: number;
  /** @default MAINTENANCE_BUSY_RETRY_MS */
  readonly busyRetryMs?: number;
  /** Waits between tries. @default node:timers/promises setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

function totalsStep(totals: BatchTotals): BatchCloseStep {
  return {
    status: 'closed',
    batchNumber: totals.batchNumber,
    saleCount: totals.saleCount,
    refundCount: totals.refundCount,
    net: formatMoney(totals.net),
  };
}

async function closeBatch(options: MaintenanceOptions, logger: Logger): Promise<BatchCloseStep> {
  const { driver } = options;
  if (!driver.capabilities.has('batch-close')) {
    const reason = `${driver.protocol} terminals have no batch close from the POS (they telecollect on their own)`;
    logger.info({ protocol: driver.protocol }, `batch close skipped: ${reason}`);
    return { status: 'skipped', reason };
  }
  const attempts = options.busyAttempts ?? MAINTENANCE_BUSY_ATTEMPTS;
  const wait = options.sleep ?? ((ms: number) => sleep(ms));
  for (let attempt = 1; ; attempt++) {
    try {
      return totalsStep(await options.service.batchClose(options.terminalId));
    } catch (error) {
      const e = toEcrError(error);
      // A payment holds the terminal: the batch closes after it, not in its middle.
      if (e.code === 'TERMINAL_BUSY' && attempt < attempts) {
        logger.info({ attempt }, 'batch close: the terminal is busy with a payment; trying again');
        await wait(options.busyRetryMs ?? MAINTENANCE_BUSY_RETRY_MS);
        continue;
      }
      return { status: 'failed', code: e.code, message: e.message };
    }
  }
}

async function tidyJournal(journal: Journal): Promise<HousekeepingStep> {
  try {
    return { status: 'done', ...(await journal.housekeeping((owner) => isOwnerAlive(owner))) };
  } catch (error) {
    const e = toEcrError(error, 'JOURNAL_ERROR');
    return { status: 'failed', code: e.code, message: e.message };
  }
}

/**
 * One maintenance run: the terminal's batch close where its driver has `batch-close` (skipped,
 * with a log line, otherwise), then the journal's housekeeping. Each step runs whatever the
 * other did; never throws: the report says what failed.
 */
export async function runMaintenance(options: MaintenanceOptions): Promise<MaintenanceReport> {
  const logger = options.logger ?? silentLogger;
  const batchClose = await closeBatch(options, logger);
  const housekeeping = await tidyJournal(options.journal);
  return {
    ok: batchClose.status !== 'failed' && housekeeping.status !== 'failed',
    batchClose,
    housekeeping,
  };
}
