import type { Clock, ClockTimer } from '../../src/core/clock.js';

/** Lets every promise chain that can move on do so (one turn of the event loop). */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Fake time for code that takes a `Clock`: timers fire only when the test moves the clock, in
 * the order they fall due, and what a timer starts (the next poll of a loop) fires within the
 * same `advance` when it falls due before its end.
 */
export class FakeClock implements Clock {
  private time = 0;
  private nextId = 1;
  private readonly timers = new Map<
    number,
    { readonly at: number; readonly callback: () => void }
  >();

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): ClockTimer {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(timer: ClockTimer): void {
    this.timers.delete(timer as number);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }

  /**
   * Moves time on by `ms`: each timer that falls due fires at its own time, earliest first, and
   * the promises it starts settle before the next one fires.
   */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    await settle();
    for (;;) {
      const due = [...this.timers]
        .filter(([, t]) => t.at <= end)
        .sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (due === undefined) break;
      const [id, timer] = due;
      this.timers.delete(id);
      this.time = timer.at;
      timer.callback();
      await settle();
    }
    this.time = end;
    await settle();
  }
}
