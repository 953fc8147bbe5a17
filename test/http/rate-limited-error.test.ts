import { describe, expect, it } from 'vitest';
import { EcrError } from '../../src/core/errors.js';
import { LoginGuard } from '../../src/http/login-guard.js';
import { RateLimitedError } from '../../src/http/rate-limited-error.js';

describe('RateLimitedError: RATE_LIMITED with the wait, found by instanceof', () => {
  it('is an EcrError with code RATE_LIMITED, HTTP 429 and its Retry-After seconds', () => {
    const error = new RateLimitedError('too many failed sign-ins: wait 7 s and try again', 7);
    expect(error).toBeInstanceOf(EcrError);
    expect(error.code).toBe('RATE_LIMITED');
    expect(error.httpStatus).toBe(429);
    expect(error.retryAfterSeconds).toBe(7);
    // The answer's JSON is an EcrError's: the wait travels in the Retry-After header.
    expect(error.toJSON()).toEqual({
      code: 'RATE_LIMITED',
      message: 'too many failed sign-ins: wait 7 s and try again',
    });
  });

  it('is what LoginGuard throws past the allowance, with the seconds left in the window', async () => {
    let now = 1_000_000;
    const guard = new LoginGuard({ perLogin: 1, windowMs: 60_000, now: () => now });
    const wrong = () => Promise.resolve(undefined);
    expect(await guard.attempt('203.0.113.7', 'key', 'guess', wrong)).toBeUndefined();
    now += 20_000;
    const refused = guard.attempt('203.0.113.7', 'key', 'guess', wrong);
    await expect(refused).rejects.toBeInstanceOf(RateLimitedError);
    await expect(refused).rejects.toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: 40 });
    expect(guard.retryAfter('203.0.113.7', 'key')).toBe(40);
  });
});
