/** Failed logins allowed per client address (and login, in a LoginGuard) within the window. */
export const DEFAULT_AUTH_FAILURES = 5;
/** The window failed attempts are counted in, and how long a blocked client waits. */
export const DEFAULT_AUTH_WINDOW_MS = 60_000;
/** Client addresses tracked at most; the oldest are forgotten past this (memory stays bounded). */
export const MAX_TRACKED_CLIENTS = 10_000;

/**
 * Counts failed logins per client address in a fixed window. Past `maxFailures` the client is
 * refused (429 with Retry-After) until its window ends, whatever it sends: brute force gets a
 * few guesses a minute. A success does not reset the count (a guesser could interleave one).
 */
export class FailedLoginLimiter {
  private readonly clients = new Map<string, { failures: number; windowEnds: number }>();

  constructor(
    private readonly maxFailures = DEFAULT_AUTH_FAILURES,
    private readonly windowMs = DEFAULT_AUTH_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Seconds the client must wait before trying again, or 0 when it may try now. `pending` counts
   * its attempts still being checked, as failures: a burst of parallel guesses gets no more than
   * the allowance either.
   */
  retryAfter(client: string, pending = 0): number {
    const entry = this.clients.get(client);
    const now = this.now();
    if (entry !== undefined && now >= entry.windowEnds) this.clients.delete(client);
    const current = entry !== undefined && now < entry.windowEnds ? entry : undefined;
    if ((current?.failures ?? 0) + pending < this.maxFailures) return 0;
    return current === undefined ? 1 : Math.max(1, Math.ceil((current.windowEnds - now) / 1000));
  }

  recordFailure(client: string): void {
    const now = this.now();
    const entry = this.clients.get(client);
    if (entry === undefined || now >= entry.windowEnds) {
      this.clients.delete(client);
      this.clients.set(client, { failures: 1, windowEnds: now + this.windowMs });
      for (const oldest of this.clients.keys()) {
        if (this.clients.size <= MAX_TRACKED_CLIENTS) break;
        this.clients.delete(oldest);
      }
      return;
    }
    entry.failures++;
  }
}
