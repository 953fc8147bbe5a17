import { EcrError } from './errors.js';

/** Requests that may wait for one terminal before new ones are refused with TERMINAL_BUSY. */
export const DEFAULT_MAX_QUEUE = 16;

/**
 * Runs tasks for one terminal strictly one after another (ARCHITECTURE.md invariant 2), with a
 * bounded number waiting. Nothing interleaves: a task starts only when the previous one settled.
 */
export class TerminalQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  constructor(
    private readonly terminalId: string,
    private readonly maxQueue: number = DEFAULT_MAX_QUEUE,
  ) {}

  /** Tasks running or waiting. */
  get size(): number {
    return this.pending;
  }

  /** Queues `task`; throws TERMINAL_BUSY at once when `maxQueue` tasks already wait. */
  run<T>(task: () => Promise<T>): Promise<T> {
    // One task may run while maxQueue wait.
    if (this.pending > this.maxQueue) {
      throw new EcrError(
        'TERMINAL_BUSY',
        `terminal ${this.terminalId} is busy and ${this.maxQueue} requests already wait for it`,
      );
    }
    this.pending++;
    const result = this.tail.then(task);
    this.tail = result.then(
      () => this.pending--,
      () => this.pending--,
    );
    return result;
  }
}
