import { createHash } from 'node:crypto';
import {
  DEFAULT_AUTH_FAILURES,
  DEFAULT_AUTH_WINDOW_MS,
  FailedLoginLimiter,
} from './failed-login-limiter.js';
import { RateLimitedError } from './rate-limited-error.js';

/**
 * What failures are counted per: an IPv4 address (also written IPv4-mapped, `::ffff:a.b.c.d`),
 * or an IPv6 address's /64 — one subscriber's network, which hands its hosts any of 2^64
 * addresses, so rotating within it buys a guesser nothing. Anything else is taken as it is.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped !== null) return mapped[1] as string;
  if (!address.includes(':')) return address;
  const bare = address.split('%')[0] as string;
  const [head = '', tail] = bare.split('::');
  const headParts = head === '' ? [] : head.split(':');
  const tailParts = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [
    ...headParts,
    ...Array<string>(Math.max(0, 8 - headParts.length - tailParts.length)).fill('0'),
    ...tailParts,
  ];
  const prefix = groups.slice(0, 4);
  // Not an IPv6 address after all: counted as it is.
  if (groups.length !== 8 || !prefix.every((group) => /^[0-9a-f]{1,4}$/i.test(group)))
    return address;
  return `${prefix.map((group) => Number.parseInt(group, 16).toString(16)).join(':')}::/64`;
}

/** Failed logins one address may make in the window, whatever the logins. */
export const DEFAULT_FAILURES_PER_ADDRESS = 50;

export interface LoginGuardOptions {
  /** Failed logins per address and login in a window. @default DEFAULT_AUTH_FAILURES */
  readonly perLogin?: number;
  /** Failed logins per address, whatever the login. @default DEFAULT_FAILURES_PER_ADDRESS */
  readonly perAddress?: number;
  /** The window failures are counted in, and how long a refused client waits. @default DEFAULT_AUTH_WINDOW_MS */
  readonly windowMs?: number;
  /** Clock (ms). @default Date.now */
  readonly now?: () => number;
  /**
   * Clients on the loopback network (127.0.0.0/8, ::1) are limited per login only, not per
   * address: a local service's callers all share one address, so any local process could
   * otherwise lock the POS out with failures under made-up logins. @default false
   */
  readonly loopbackPerLoginOnly?: boolean;
}

/** 127.0.0.0/8 (also IPv4-mapped, as addressKey writes it) and ::1. */
function isLoopback(address: string): boolean {
  return address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}

/**
 * Everything that signs people or programs in with a login and password goes through one of
 * these: failures are limited per address and login (5 a minute) and per address whatever the
 * login (50 a minute), and checks still under way count as failures — each distinct password
 * once, so many calls with the same right password at once (a busy shop, a cold cache) are not
 * refused. `retryAfter` says how long a refused client waits.
 */
export class LoginGuard {
  private readonly perLogin: FailedLoginLimiter;
  private readonly perAddress: FailedLoginLimiter;
  /** Checks under way per limiter key, by password digest. */
  private readonly checking = new Map<string, Map<string, number>>();
  private readonly loopbackPerLoginOnly: boolean;

  constructor(options: LoginGuardOptions = {}) {
    const windowMs = options.windowMs ?? DEFAULT_AUTH_WINDOW_MS;
    const now = options.now ?? Date.now;
    this.perLogin = new FailedLoginLimiter(
      options.perLogin ?? DEFAULT_AUTH_FAILURES,
      windowMs,
      now,
    );
    this.perAddress = new FailedLoginLimiter(
      options.perAddress ?? DEFAULT_FAILURES_PER_ADDRESS,
      windowMs,
      now,
    );
    this.loopbackPerLoginOnly = options.loopbackPerLoginOnly ?? false;
  }

  /** Seconds `address` must wait before trying `login` again, or 0. */
  retryAfter(client: string, login: string): number {
    const address = addressKey(client);
    const perAddress = this.addressKeyOf(address);
    return Math.max(
      this.perLogin.retryAfter(loginKey(address, login)),
      perAddress === undefined ? 0 : this.perAddress.retryAfter(perAddress),
    );
  }

  /** The per-address limiter's key, or undefined where only logins are counted. */
  private addressKeyOf(address: string): string | undefined {
    return this.loopbackPerLoginOnly && isLoopback(address) ? undefined : `address|${address}`;
  }

  /**
   * Runs `verify` unless the client is over its allowance (RateLimitedError, nothing checked).
   * Resolves with what `verify` found; a miss (undefined) is recorded as a failure.
   */
  async attempt<T>(
    client: string,
    login: string,
    password: string,
    verify: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    const address = addressKey(client);
    const perAddress = this.addressKeyOf(address);
    const keys = [loginKey(address, login), ...(perAddress === undefined ? [] : [perAddress])];
    const digest = createHash('sha256').update(password, 'utf8').digest('hex');
    // Other passwords being checked for this client count as failures; this one does not.
    const others = (key: string) =>
      (this.checking.get(key)?.size ?? 0) - (this.checking.get(key)?.has(digest) ? 1 : 0);
    const wait = Math.max(
      this.perLogin.retryAfter(keys[0] as string, others(keys[0] as string)),
      perAddress === undefined ? 0 : this.perAddress.retryAfter(perAddress, others(perAddress)),
    );
    if (wait > 0) {
      throw new RateLimitedError(`too many failed sign-ins: wait ${wait} s and try again`, wait);
    }
    this.track(keys, digest, 1);
    let found: T | undefined;
    try {
      found = await verify();
    } finally {
      this.track(keys, digest, -1);
    }
    if (found === undefined) {
      this.perLogin.recordFailure(keys[0] as string);
      if (perAddress !== undefined) this.perAddress.recordFailure(perAddress);
    }
    return found;
  }

  private track(keys: readonly string[], digest: string, delta: number): void {
    for (const key of keys) {
      const passwords = this.checking.get(key) ?? new Map<string, number>();
      const n = (passwords.get(digest) ?? 0) + delta;
      if (n > 0) passwords.set(digest, n);
      else passwords.delete(digest);
      if (passwords.size > 0) this.checking.set(key, passwords);
      else this.checking.delete(key);
    }
  }
}

/** Per address and login; the login hashed, so that no key or name sits in the limiter. */
function loginKey(address: string, login: string): string {
  return `${address}|${createHash('sha256').update(login, 'utf8').digest('hex').slice(0, 16)}`;
}
