/** A handle `Clock.setTimeout` returns, only ever given back to `Clock.clearTimeout`. */
export type ClockTimer = unknown;

/**
 * Time, injected (house style 8): code that waits or measures takes one, so that a test can use
 * fake time instead of sleeping.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale (not the date): only differences mean something. */
  now(): number;
  /** Calls `callback` once, `ms` from now. The timer keeps no process alive. */
  setTimeout(callback: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

/** The process's own clock: `performance.now()` (immune to wall-clock steps) and Node's timers. */
export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  setTimeout: (callback: () => void, ms: number): ClockTimer => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clearTimeout: (timer: ClockTimer): void => clearTimeout(timer as NodeJS.Timeout),
});
