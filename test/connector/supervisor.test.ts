import { describe, expect, it } from 'vitest';
import {
  restartDelay,
  spawnSupervised,
  Supervisor,
  SUPERVISOR_BACKOFF_MAX_MS,
  type ChildExit,
  type SupervisedChild,
  type SupervisorEvent,
  type SupervisorOptions,
} from '../../src/connector/supervisor.js';
import { waitFor } from '../helpers.js';

/** A child that exits when the test says so, and records the signals it was sent. */
class FakeChild implements SupervisedChild {
  readonly signals: NodeJS.Signals[] = [];
  readonly exited: Promise<ChildExit>;
  exit: (code: number | null, signal?: NodeJS.Signals) => void = () => {};
  constructor(readonly pid: number) {
    this.exited = new Promise((resolve) => {
      this.exit = (code, signal) => resolve({ code, signal: signal ?? null });
    });
  }
  kill(signal: NodeJS.Signals): void {
    this.signals.push(signal);
  }
}

/** A clock and timers that move only when told to. */
class FakeTime {
  t = 0;
  private seq = 0;
  timers: { id: number; at: number; fn: () => void }[] = [];
  readonly now = () => this.t;
  readonly setTimer = (fn: () => void, ms: number): number => {
    const id = ++this.seq;
    this.timers.push({ id, at: this.t + ms, fn });
    return id;
  };
  readonly clearTimer = (handle: unknown): void => {
    this.timers = this.timers.filter((timer) => timer.id !== handle);
  };
  /** Moves time on by `ms`, firing the timers that fall due. */
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const next = [...this.timers].sort((a, b) => a.at - b.at)[0];
      if (next === undefined || next.at > until) break;
      this.timers = this.timers.filter((timer) => timer !== next);
      this.t = next.at;
      next.fn();
    }
    this.t = until;
  }
}

function setup(options: Partial<SupervisorOptions> = {}) {
  const time = new FakeTime();
  const children: FakeChild[] = [];
  const events: SupervisorEvent[] = [];
  const supervisor = new Supervisor({
    start: () => {
      const child = new FakeChild(1000 + children.length);
      children.push(child);
      return child;
    },
    onEvent: (event) => events.push(event),
    random: () => 0.5,
    now: time.now,
    setTimer: time.setTimer,
    clearTimer: time.clearTimer,
    ...options,
  });
  const started = (n: number) => waitFor(() => children.length === n, 2_000, `start ${n}`);
  const delays = () =>
    events.flatMap((event) => (event.type === 'restarting' ? [event.delayMs] : []));
  return { supervisor, time, children, events, started, delays };
}

/** Lets the supervisor's awaits run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('restart back-off', () => {
  it('equal jitter: each delay is in [ceiling/2, ceiling), the ceiling doubling from 1 s and capped at 60 s', () => {
    const ceilings = [1, 2, 4, 8, 16, 32, 60, 60, 60].map((s) => s * 1000);
    ceilings.forEach((ceiling, restart) => {
      expect(restartDelay(restart, 1000, 60_000, () => 0)).toBe(ceiling / 2);
      const top = restartDelay(restart, 1000, 60_000, () => 0.999_999);
      expect(top).toBeLessThan(ceiling);
      expect(top).toBeGreaterThanOrEqual(ceiling - 1);
    });
    expect(restartDelay(50)).toBeLessThan(SUPERVISOR_BACKOFF_MAX_MS);
    for (let i = 0; i < 200; i++) expect(restartDelay(0)).toBeGreaterThanOrEqual(500);
  });
});

describe('the supervisor (fake children, fake time)', () => {
  it('abnormal exits are restarted after growing delays (0.75, 1.5, 3 s); a crash after a healthy minute starts again from 0.75 s', async () => {
    const { supervisor, time, children, started, delays } = setup();
    const run = supervisor.run();
    for (let n = 1; n <= 3; n++) {
      await started(n);
      time.advance(2_000);
      children[n - 1]!.exit(1);
      await settle();
      // Not restarted before its delay has passed.
      time.advance(delays()[n - 1]! - 1);
      expect(children).toHaveLength(n);
      time.advance(1);
    }
    await started(4);
    expect(delays()).toEqual([750, 1500, 3000]);
    time.advance(60_000);
    children[3]!.exit(null, 'SIGKILL');
    await settle();
    expect(delays().at(-1)).toBe(750);
    time.advance(750);
    await started(5);
    expect(supervisor.childPid).toBe(1004);
    children[4]!.exit(0);
    expect(await run).toEqual({ reason: 'clean-exit', exitCode: 0, starts: 5 });
  });

  it('a clean exit 0 (GET /stop) ends the supervisor without a restart', async () => {
    const { supervisor, children, started, events } = setup();
    const run = supervisor.run();
    await started(1);
    children[0]!.exit(0);
    expect(await run).toEqual({ reason: 'clean-exit', exitCode: 0, starts: 1 });
    expect(events.map((event) => event.type)).toEqual(['started', 'exited', 'finished']);
  });

  it('stop(SIGINT) sends the child SIGTERM once (a second stop changes nothing) and ends, exit 0, once the child has exited', async () => {
    const { supervisor, children, started, events } = setup();
    const run = supervisor.run();
    await started(1);
    supervisor.stop('SIGINT');
    supervisor.stop('SIGTERM');
    expect(children[0]!.signals).toEqual(['SIGTERM']);
    let done = false;
    void run.then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    children[0]!.exit(0);
    expect(await run).toEqual({ reason: 'stopped', exitCode: 0, starts: 1 });
    expect(events.find((event) => event.type === 'stopping')).toEqual({
      type: 'stopping',
      signal: 'SIGINT',
      pid: 1000,
    });
  });

  it('stop() during the back-off wait cancels the restart and ends at once', async () => {
    const { supervisor, time, children, started } = setup();
    const run = supervisor.run();
    await started(1);
    children[0]!.exit(70);
    await settle();
    supervisor.stop('SIGTERM');
    expect(await run).toEqual({ reason: 'stopped', exitCode: 0, starts: 1 });
    expect(time.timers).toEqual([]);
    time.advance(120_000);
    expect(children).toHaveLength(1);
  });

  it('a child still running 150 s after SIGTERM is killed with SIGKILL; the supervisor then exits 1', async () => {
    const { supervisor, time, children, started, events } = setup();
    const run = supervisor.run();
    await started(1);
    supervisor.stop('SIGTERM');
    time.advance(149_999);
    expect(children[0]!.signals).toEqual(['SIGTERM']);
    time.advance(1);
    expect(children[0]!.signals).toEqual(['SIGTERM', 'SIGKILL']);
    children[0]!.exit(null, 'SIGKILL');
    expect(await run).toEqual({ reason: 'stopped', exitCode: 1, starts: 1 });
    expect(events.some((event) => event.type === 'killed')).toBe(true);
  });

  it('a program that cannot be started is reported with its error and retried with back-off', async () => {
    const missing = spawnSupervised('/nonexistent/ecr-bridge-binary', []);
    expect(await missing.exited).toMatchObject({
      code: null,
      signal: null,
      error: expect.stringMatching(/ENOENT/),
    });
    const time = new FakeTime();
    let starts = 0;
    const events: SupervisorEvent[] = [];
    const supervisor = new Supervisor({
      start: () => {
        starts++;
        return spawnSupervised('/nonexistent/ecr-bridge-binary', []);
      },
      onEvent: (event) => events.push(event),
      now: time.now,
      setTimer: time.setTimer,
      clearTimer: time.clearTimer,
    });
    const run = supervisor.run();
    await waitFor(() => events.some((event) => event.type === 'restarting'), 2_000);
    expect(starts).toBe(1);
    supervisor.stop();
    expect(await run).toMatchObject({ reason: 'stopped', starts: 1 });
  });
});
