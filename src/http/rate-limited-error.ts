import { EcrError } from '../core/errors.js';

/**
 * RATE_LIMITED with how long the client must wait: the HTTP edges answer 429 and send the wait
 * as `Retry-After`. A class of its own, so that an edge finds the wait by `instanceof`, not by
 * looking for a property on whatever was thrown.
 */
export class RateLimitedError extends EcrError {
  /** Whole seconds, at least 1: the `Retry-After` value. */
  readonly retryAfterSeconds: number;

  constructor(message: string, retryAfterSeconds: number) {
    super('RATE_LIMITED', message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
