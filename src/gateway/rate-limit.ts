/** Addresses tracked at most; the oldest are forgotten past this (memory stays bounded). */
export const MAX_TRACKED_ADDRESSES = 10_000;

/**
 * A token bucket per client address: `burst` actions at once, then `perSecond` on average. Used
 * for terminal registrations, where a shop's terminals share one NAT address but a flood from
 * one address must not crowd out everyone else.
 */
export class AddressRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token for `address`: false when it has none left (the action is refused). */
  take(address: string): boolean {
    const now = this.now();
    let bucket = this.buckets.get(address);
    if (bucket === undefined) {
      bucket = { tokens: this.burst, at: now };
      this.buckets.set(address, bucket);
      for (const oldest of this.buckets.keys()) {
        if (this.buckets.size <= MAX_TRACKED_ADDRESSES) break;
        this.buckets.delete(oldest);
      }
    } else {
      bucket.tokens = Math.min(
        this.burst,
        bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond,
      );
      bucket.at = now;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
