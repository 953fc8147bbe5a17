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
