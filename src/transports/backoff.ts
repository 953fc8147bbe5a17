import { setTimeout as sleep } from 'node:timers/promises';
import { EcrError, toEcrError } from '../core/errors.js';

/** First reconnect delay. */
export const DEFAULT_BACKOFF_BASE_MS = 100;
/** Longest reconnect delay. */
export const DEFAULT_BACKOFF_MAX_MS = 10_000;

/**
 * "Full jitter" exponential back-off: a random delay in [0, min(max, base·2^attempt)], so that
 * many clients that lost the same server do not come back in lock-step.
 */
export function backoffDelay(
  attempt: number,
  base = DEFAULT_BACKOFF_BASE_MS,
  max = DEFAULT_BACKOFF_MAX_MS,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

/**
 * Runs `open` up to `attempts` times while it fails with TERMINAL_UNREACHABLE (safe to repeat: no
 * payment byte has left), waiting a jittered back-off between tries. Any other error, or the last
 * one, is thrown; an abort ends the wait with ABORTED.
 */
export async function connectWithRetries<T>(
  open: () => Promise<T>,
  options: {
    readonly attempts: number;
    readonly signal?: AbortSignal;
    readonly onRetry?: (attempt: number, error: EcrError) => void;
  },
): Promise<T> {
  const { signal } = options;
  for (let attempt = 0; ; attempt++) {
    try {
      return await open();
    } catch (error) {
      const e = toEcrError(error, 'TERMINAL_UNREACHABLE');
      if (e.code !== 'TERMINAL_UNREACHABLE' || attempt + 1 >= options.attempts) throw e;
      if (signal?.aborted === true) throw new EcrError('ABORTED', 'cancelled while connecting');
      options.onRetry?.(attempt + 1, e);
      await sleep(
        backoffDelay(attempt),
        undefined,
        signal === undefined ? undefined : { signal },
      ).catch(() => {
        throw new EcrError('ABORTED', 'cancelled while waiting to reconnect');
      });
    }
  }
}
