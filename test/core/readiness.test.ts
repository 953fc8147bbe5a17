import { describe, expect, it } from 'vitest';
import type { Clock, ClockTimer } from '../../src/core/clock.js';
import {
  Readiness,
  READINESS_BACKSTOP_MARGIN_MS,
  type ReadinessCheck,
} from '../../src/core/readiness.js';

/** Fake time: timers fire only when the test moves the clock. */
class FakeClock implements Clock {
  private time = 0;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();
  private nextId = 1;

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): ClockTimer {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, callback });
    return id;
  }

  clearTimeout(timer: ClockTimer): void {
    this.timers.delete(timer as number);
  }

  /** Moves time on, firing what falls due, then lets the promises that follow settle. */
  async advance(ms: number): Promise<void> {
    this.time += ms;
    for (const [id, timer] of [...this.timers]) {
      if (timer.at > this.time) continue;
      this.timers.delete(id);
      timer.callback();
    }
    await settle();
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

/** A check the test ends by hand; counts its runs. */
function manualCheck(name: string) {
  const runs: { resolve: () => void; reject: (error: Error) => void }[] = [];
  const check: ReadinessCheck = {
    name,
    run: () =>
      new Promise<void>((resolve, reject) => {
        runs.push({ resolve, reject });
      }),
  };
  return { check, runs };
}

describe('readiness checks', () => {
  it('every check passes → ready, each listed in order with its time', async () => {
    const clock = new FakeClock();
    const readiness = new Readiness(
      [
        { name: 'journal', run: () => undefined },
        { name: 'nats', run: async () => undefined },
      ],
      { clock },
    );
    expect(await readiness.report()).toEqual({
      ready: true,
      checks: [
        { name: 'journal', ok: true, ms: 0 },
        { name: 'nats', ok: true, ms: 0 },
      ],
    });
  });

  it('a failing check makes it unready and is named with its reason on one line; the others still run', async () => {
    const readiness = new Readiness(
      [
        {
          name: 'journal',
          run: () => {
            throw new Error('locked\n  by another process');
          },
        },
        { name: 'nats', run: () => Promise.reject(new Error('connection lost')) },
        { name: 'terminal-listener', run: () => undefined },
      ],
      { clock: new FakeClock() },
    );
    const report = await readiness.report();
    expect(report.ready).toBe(false);
    expect(report.checks).toEqual([
      { name: 'journal', ok: false, ms: 0, error: 'locked by another process' },
      { name: 'nats', ok: false, ms: 0, error: 'connection lost' },
      { name: 'terminal-listener', ok: true, ms: 0 },
    ]);
  });

  it('a check that hangs fails just past its bound, and the report does not wait for it', async () => {
    const clock = new FakeClock();
    const hung = manualCheck('nats');
    const readiness = new Readiness([hung.check, { name: 'journal', run: () => undefined }], {
      clock,
      timeoutMs: 500,
    });
    let report: Awaited<ReturnType<Readiness['report']>> | undefined;
    void readiness.report().then((r) => (report = r));
    await settle();
    // The check was given 500 ms; the backstop waits a margin more for its own reason.
    await clock.advance(500 + READINESS_BACKSTOP_MARGIN_MS - 1);
    expect(report).toBeUndefined();
    await clock.advance(1);
    expect(report).toEqual({
      ready: false,
      checks: [
        {
          name: 'nats',
          ok: false,
          ms: 500 + READINESS_BACKSTOP_MARGIN_MS,
          error: 'no answer within 500 ms',
        },
        { name: 'journal', ok: true, ms: 0 },
      ],
    });
  });

  it('concurrent calls share one run, and an answer is reused for cacheMs', async () => {
    const clock = new FakeClock();
    const probe = manualCheck('journal');
    const readiness = new Readiness([probe.check], { clock, cacheMs: 1_000 });
    const calls = Array.from({ length: 50 }, () => readiness.report());
    await settle();
    expect(probe.runs).toHaveLength(1);
    await clock.advance(10);
    probe.runs[0]?.resolve();
    const reports = await Promise.all(calls);
    expect(new Set(reports).size).toBe(1);
    expect(reports[0]).toEqual({ ready: true, checks: [{ name: 'journal', ok: true, ms: 10 }] });

    await clock.advance(999);
    await readiness.report();
    expect(probe.runs).toHaveLength(1);
    await clock.advance(1);
    void readiness.report();
    await settle();
    expect(probe.runs).toHaveLength(2);
  });

  it('a check still hanging from an earlier report is joined, not started again', async () => {
    const clock = new FakeClock();
    const hung = manualCheck('journal');
    const readiness = new Readiness([hung.check], { clock, timeoutMs: 100, cacheMs: 0 });
    for (let i = 0; i < 5; i++) {
      const report = readiness.report();
      await clock.advance(100 + READINESS_BACKSTOP_MARGIN_MS);
      expect((await report).checks[0]).toMatchObject({
        ok: false,
        error: 'no answer within 100 ms',
      });
    }
    expect(hung.runs).toHaveLength(1);
    // Once it ends, the next report runs it anew.
    hung.runs[0]?.reject(new Error('gone'));
    await settle();
    const next = readiness.report();
    await settle();
    expect(hung.runs).toHaveLength(2);
    hung.runs[1]?.resolve();
    expect((await next).ready).toBe(true);
  });

  it('no checks: ready; a name given twice is refused', async () => {
    expect(await new Readiness([]).report()).toEqual({ ready: true, checks: [] });
    const check = { name: 'journal', run: () => undefined };
    expect(() => new Readiness([check, check])).toThrow(/journal given twice/);
  });

  it('a card-number-like run in a reason is masked, and a long reason is cut', async () => {
    const readiness = new Readiness(
      [
        {
          name: 'journal',
          run: () => {
            throw new Error(`bad 4761739001010010 ${'x'.repeat(1_000)}`);
          },
        },
      ],
      { clock: new FakeClock() },
    );
    const [check] = (await readiness.report()).checks;
    expect(check).toMatchObject({ ok: false });
    const error = (check as { error: string }).error;
    expect(error).not.toContain('4761739001010010');
    expect(error.length).toBeLessThanOrEqual(300);
  });
});
