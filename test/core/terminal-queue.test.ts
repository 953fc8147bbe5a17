import { describe, expect, it } from 'vitest';
import { EcrError } from '../../src/core/errors.js';
import { DEFAULT_MAX_QUEUE, TerminalQueue } from '../../src/core/terminal-queue.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A promise with its resolve function, to finish a task when the test says so. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('TerminalQueue', () => {
  it('never runs two tasks at once', async () => {
    const queue = new TerminalQueue('t1');
    let running = 0;
    let maxRunning = 0;
    const task = async (i: number): Promise<number> => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(1 + (i % 3));
      await sleep(1);
      running--;
      return i;
    };
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => queue.run(() => task(i))),
    );
    expect(results).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(maxRunning).toBe(1);
    expect(running).toBe(0);
  });

  it('runs tasks in the order they were submitted, even when later ones are faster', async () => {
    const queue = new TerminalQueue('t1');
    const started: number[] = [];
    const finished: number[] = [];
    const delays = [20, 15, 10, 5, 0];
    await Promise.all(
      delays.map((delay, i) =>
        queue.run(async () => {
          started.push(i);
          await sleep(delay);
          finished.push(i);
        }),
      ),
    );
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(finished).toEqual([0, 1, 2, 3, 4]);
  });

  it('starts a task only after the previous one settled', async () => {
    const queue = new TerminalQueue('t1');
    const first = deferred<string>();
    let secondStarted = false;
    const a = queue.run(() => first.promise);
    const b = queue.run(async () => {
      secondStarted = true;
      return 'b';
    });
    await sleep(10);
    expect(secondStarted).toBe(false);
    expect(queue.size).toBe(2);
    first.resolve('a');
    expect(await a).toBe('a');
    expect(await b).toBe('b');
    expect(secondStarted).toBe(true);
  });

  it('keeps going after a task rejects, and passes the rejection to its caller', async () => {
    const queue = new TerminalQueue('t1');
    const order: string[] = [];
    const failing = queue.run(async () => {
      order.push('failing');
      await sleep(2);
      throw new Error('boom');
    });
    const next = queue.run(async () => {
      order.push('next');
      return 'ok';
    });
    await expect(failing).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ok');
    expect(order).toEqual(['failing', 'next']);
    expect(queue.size).toBe(0);
  });

  it('keeps going after a task throws synchronously', async () => {
    const queue = new TerminalQueue('t1');
    const failing = queue.run((): Promise<string> => {
      throw new Error('sync boom');
    });
    const next = queue.run(async () => 'ok');
    await expect(failing).rejects.toThrow('sync boom');
    await expect(next).resolves.toBe('ok');
  });

  it('with maxQueue 2, refuses a 4th concurrent task at once with TERMINAL_BUSY and finishes the first three', async () => {
    const queue = new TerminalQueue('term-7', 2);
    const gates = [deferred<number>(), deferred<number>(), deferred<number>()];
    const runs = gates.map((gate) => queue.run(() => gate.promise));
    expect(queue.size).toBe(3);

    let fourthCalled = false;
    let caught: unknown;
    try {
      // A synchronous throw, not a rejected promise.
      void queue.run(async () => {
        fourthCalled = true;
        return 4;
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(EcrError);
    const error = caught as EcrError;
    expect(error.code).toBe('TERMINAL_BUSY');
    expect(error.message).toContain('term-7');
    expect(queue.size).toBe(3);

    gates.forEach((gate, i) => gate.resolve(i + 1));
    expect(await Promise.all(runs)).toEqual([1, 2, 3]);
    await sleep(0);
    expect(fourthCalled).toBe(false);
    expect(queue.size).toBe(0);
  });

  it('accepts tasks again once the queue drained', async () => {
    const queue = new TerminalQueue('t1', 0);
    const gate = deferred<string>();
    const first = queue.run(() => gate.promise);
    expect(() => queue.run(async () => 'second')).toThrow(EcrError);
    gate.resolve('first');
    expect(await first).toBe('first');
    await sleep(0);
    expect(queue.size).toBe(0);
    await expect(queue.run(async () => 'third')).resolves.toBe('third');
  });

  it('returns to size 0 after a mix of successes and failures', async () => {
    const queue = new TerminalQueue('t1');
    const runs = Array.from({ length: 6 }, (_, i) =>
      queue.run(async () => {
        await sleep(1);
        if (i % 2 === 1) throw new Error(`fail ${i}`);
        return i;
      }),
    );
    expect(queue.size).toBe(6);
    const settled = await Promise.allSettled(runs);
    expect(settled.map((s) => s.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
    ]);
    await sleep(0);
    expect(queue.size).toBe(0);
  });

  it('lets DEFAULT_MAX_QUEUE tasks wait behind a running one by default', async () => {
    const queue = new TerminalQueue('t1');
    const gate = deferred<void>();
    const runs = Array.from({ length: DEFAULT_MAX_QUEUE + 1 }, () => queue.run(() => gate.promise));
    expect(queue.size).toBe(DEFAULT_MAX_QUEUE + 1);
    expect(() => queue.run(() => gate.promise)).toThrow(
      expect.objectContaining({ code: 'TERMINAL_BUSY' }),
    );
    gate.resolve();
    await Promise.all(runs);
    await sleep(0);
    expect(queue.size).toBe(0);
  });
});
