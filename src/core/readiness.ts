import { systemClock, type Clock, type ClockTimer } from './clock.js';
import { redactPans } from './pan.js';

/**
 * Readiness: whether this process can serve a payment now, from checks of what a payment needs
 * (the journal takes a write, NATS carries a message, terminals can connect). Shared by the
 * connector and the gateway, which serve it as `/readyz` (and `/healthz`); `/livez` checks
 * nothing. Every check is bounded, they run at once, and a flood of calls runs them at most
 * once per `cacheMs`: a load balancer polling every node cannot turn the probes into load.
 */

/**
 * How long one check may take before it counts as failed. Below the 5 s a load balancer's health
 * probe usually waits, so that /readyz answers 503 naming the check rather than timing out.
 */
export const DEFAULT_READINESS_TIMEOUT_MS = 2_000;
/** How long a readiness answer is given again without checking anew. */
export const DEFAULT_READINESS_CACHE_MS = 1_000;
/**
 * A check is reported failed this long after its bound when it has not ended by itself: checks
 * bound their own waits (and then name what failed), this is the backstop for one that does not.
 */
export const READINESS_BACKSTOP_MARGIN_MS = 250;
/** Longest error text a check reports: a reason, never a dump. */
export const MAX_READINESS_ERROR_LENGTH = 300;

/** One thing a payment needs, and how to prove it works now. */
export interface ReadinessCheck {
  /** Stable, short, lowercase: what a load balancer's operator reads (`journal`, `nats`). */
  readonly name: string;
  /**
   * Resolves when the dependency works; rejects (or throws) with why not. `timeoutMs` is the
   * bound it should keep (then rejecting with a reason that names the dependency); one that has
   * not ended READINESS_BACKSTOP_MARGIN_MS later is reported failed anyway.
   */
  run(timeoutMs: number): Promise<void> | void;
}

/** How one check ended; `ms` is how long it took. */
export type ReadinessCheckResult =
  | { readonly name: string; readonly ok: true; readonly ms: number }
  | { readonly name: string; readonly ok: false; readonly ms: number; readonly error: string };

export interface ReadinessReport {
  /** True when every check passed (and when there is none). */
  readonly ready: boolean;
  /** Every check, in the order they were given. */
  readonly checks: readonly ReadinessCheckResult[];
}

export interface ReadinessOptions {
  /** Bound of each check. @default DEFAULT_READINESS_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /** How long a report is reused. @default DEFAULT_READINESS_CACHE_MS */
  readonly cacheMs?: number;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** `error`'s reason on one short line, card-number-like runs masked. */
function reasonOf(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  const line = redactPans(text.replace(/\s+/g, ' ').trim());
  return line.length <= MAX_READINESS_ERROR_LENGTH
    ? line
    : `${line.slice(0, MAX_READINESS_ERROR_LENGTH - 1)}…`;
}

/**
 * Runs readiness checks, bounded and concurrent. Concurrent callers share one run; a report is
 * reused for `cacheMs` after it was made; a check still running from an earlier report (it
 * outlived its bound) is joined, not started again, so that a hung dependency never accumulates
 * probes.
 */
export class Readiness {
  private readonly checks: readonly ReadinessCheck[];
  private readonly timeoutMs: number;
  private readonly cacheMs: number;
  private readonly clock: Clock;
  private last: { readonly report: ReadinessReport; readonly at: number } | undefined;
  private running: Promise<ReadinessReport> | undefined;
  /** Runs not ended yet, by check name: what a new report joins instead of starting another. */
  private readonly unfinished = new Map<string, Promise<void>>();

  constructor(checks: readonly ReadinessCheck[], options: ReadinessOptions = {}) {
    const names = checks.map((check) => check.name);
    const twice = names.find((name, i) => names.indexOf(name) !== i);
    if (twice !== undefined) throw new Error(`readiness check ${twice} given twice`);
    this.checks = [...checks];
    this.timeoutMs = Math.max(1, options.timeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS);
    this.cacheMs = Math.max(0, options.cacheMs ?? DEFAULT_READINESS_CACHE_MS);
    this.clock = options.clock ?? systemClock;
  }

  /** The check names, in order. */
  get names(): readonly string[] {
    return this.checks.map((check) => check.name);
  }

  /** The current report: reused while fresh, shared with the callers waiting for the same run. */
  report(): Promise<ReadinessReport> {
    const last = this.last;
    if (last !== undefined) {
      const age = this.clock.now() - last.at;
      if (age >= 0 && age < this.cacheMs) return Promise.resolve(last.report);
    }
    this.running ??= this.runAll().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async runAll(): Promise<ReadinessReport> {
    const checks = await Promise.all(this.checks.map((check) => this.bounded(check)));
    const report: ReadinessReport = { ready: checks.every((c) => c.ok), checks };
    this.last = { report, at: this.clock.now() };
    return report;
  }

  /** One check's result within the bound; never rejects. */
  private bounded(check: ReadinessCheck): Promise<ReadinessCheckResult> {
    const started = this.clock.now();
    const elapsed = () => Math.max(0, Math.round(this.clock.now() - started));
    let run = this.unfinished.get(check.name);
    if (run === undefined) {
      const fresh = Promise.resolve().then(() => check.run(this.timeoutMs));
      run = fresh;
      this.unfinished.set(check.name, fresh);
      const forget = () => {
        if (this.unfinished.get(check.name) === fresh) this.unfinished.delete(check.name);
      };
      fresh.then(forget, forget);
    }
    return new Promise((resolve) => {
      let settled = false;
      const settle = (result: ReadinessCheckResult) => {
        if (settled) return;
        settled = true;
        this.clock.clearTimeout(timer);
        resolve(result);
      };
      const timer: ClockTimer = this.clock.setTimeout(
        () =>
          settle({
            name: check.name,
            ok: false,
            ms: elapsed(),
            error: `no answer within ${this.timeoutMs} ms`,
          }),
        this.timeoutMs + READINESS_BACKSTOP_MARGIN_MS,
      );
      run.then(
        () => settle({ name: check.name, ok: true, ms: elapsed() }),
        (error: unknown) =>
          settle({ name: check.name, ok: false, ms: elapsed(), error: reasonOf(error) }),
      );
    });
  }
}

/** The journal takes a write now (`Journal.probe`): what every payment needs first. */
export function journalCheck(journal: { probe(timeoutMs: number): Promise<void> }): ReadinessCheck {
  return { name: 'journal', run: (timeoutMs) => journal.probe(timeoutMs) };
}
