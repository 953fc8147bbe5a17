import { createHash } from 'node:crypto';
import { z } from 'zod';
import { EcrError } from '../core/errors.js';
import { MAX_TIMER_MS, parseOptions, wholeNumber } from '../core/options.js';
import { sameSecret } from '../core/secret.js';
import { DUMMY_HASH, parseSecretHash, verifySecret } from '../core/secret-hash.js';
import type { Awaitable } from '../core/journal-port.js';

/**
 * Merchants' API credentials (seed 002): a key and a password the POS sends with every request,
 * the password kept only as a scrypt hash (`core/secret-hash.ts`), and the check of a pair, the
 * same for both tenant stores (tenants.ts, postgres-tenants.ts).
 */

/** How long a verified key + password is trusted without running scrypt again. */
export const DEFAULT_CREDENTIAL_CACHE_TTL_MS = 60_000;
/** Verified credentials remembered at most; the oldest are forgotten past this. */
export const DEFAULT_MAX_CACHED_CREDENTIALS = 10_000;
/** Longer keys or passwords are refused without a look at the database (same time as any refusal). */
export const MAX_CREDENTIAL_LENGTH = 256;

export interface Merchant {
  readonly name: string;
  readonly apiKey: string;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
}

const OPTIONS = z.strictObject({
  /** How long a verified key + password skips scrypt. @default DEFAULT_CREDENTIAL_CACHE_TTL_MS */
  cacheTtlMs: wholeNumber(0, MAX_TIMER_MS).default(DEFAULT_CREDENTIAL_CACHE_TTL_MS),
  /** @default DEFAULT_MAX_CACHED_CREDENTIALS */
  maxCachedCredentials: wholeNumber(0, 1_000_000).default(DEFAULT_MAX_CACHED_CREDENTIALS),
  /** Clock, in milliseconds since the epoch. @default Date.now */
  now: z
    .custom<() => number>((value) => typeof value === 'function', 'must be a function')
    .optional(),
});
export type TenantStoreOptions = z.input<typeof OPTIONS>;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export interface MerchantRow {
  name: string;
  api_key: string;
  password_hash: string;
  created_at: number;
}

export const toMerchant = (row: MerchantRow): Merchant => ({
  name: row.name,
  apiKey: row.api_key,
  createdAt: row.created_at,
});

interface CachedCredential {
  /** SHA-256 of the password that passed scrypt. */
  readonly digest: Buffer;
  /** The stored hash it passed against: a changed password invalidates the entry. */
  readonly passwordHash: string;
  readonly expiresAt: number;
}

/**
 * Checks a key and password against the merchant stored under the key. Unknown keys, over-long
 * input and wrong passwords all cost one scrypt, so timing tells nothing about which keys exist.
 * Every POS request carries the key and password, so a verified pair is remembered (as a SHA-256
 * of the password) for `cacheTtlMs`; a pair that fails is never remembered.
 */
export class CredentialCheck {
  private readonly now: () => number;
  private readonly cacheTtlMs: number;
  private scrypts = 0;
  private readonly maxCached: number;
  private readonly cache = new Map<string, CachedCredential>();
  /** scrypt verifications under way, by key and password digest: a burst shares one. */
  private readonly verifying = new Map<string, Promise<boolean>>();

  constructor(options: TenantStoreOptions = {}, who = 'TenantStore') {
    const parsed = parseOptions(OPTIONS, options, who);
    this.now = parsed.now ?? Date.now;
    this.cacheTtlMs = parsed.cacheTtlMs;
    this.maxCached = parsed.maxCachedCredentials;
  }

  /** The clock the store stamps rows with. */
  time(): number {
    return this.now();
  }

  async authenticate(
    key: string,
    password: string,
    byKey: (key: string) => Awaitable<MerchantRow | undefined>,
  ): Promise<Merchant | undefined> {
    if (
      typeof key !== 'string' ||
      typeof password !== 'string' ||
      key.length > MAX_CREDENTIAL_LENGTH ||
      password.length > MAX_CREDENTIAL_LENGTH
    ) {
      this.scrypts++;
      await verifySecret('', DUMMY_HASH);
      return undefined;
    }
    const row = await byKey(key);
    if (row === undefined) {
      this.scrypts++;
      await verifySecret(password, DUMMY_HASH);
      return undefined;
    }
    const digest = sha256(password);
    const now = this.now();
    const cached = this.cache.get(key);
    if (cached !== undefined && cached.expiresAt <= now) this.cache.delete(key);
    else if (
      cached !== undefined &&
      cached.passwordHash === row.password_hash &&
      sameSecret(cached.digest, digest)
    ) {
      return toMerchant(row);
    }
    if (!(await this.verify(key, password, digest, row.password_hash))) return undefined;
    this.remember(key, {
      digest,
      passwordHash: row.password_hash,
      expiresAt: now + this.cacheTtlMs,
    });
    return toMerchant(row);
  }

  /** scrypt computations run by `authenticate` so far (what the cache saves, made countable). */
  get scryptRuns(): number {
    return this.scrypts;
  }

  /** Verified credentials held in memory now (expired ones may linger until looked up). */
  get cachedCredentials(): number {
    return this.cache.size;
  }

  private verify(
    key: string,
    password: string,
    digest: Buffer,
    passwordHash: string,
  ): Promise<boolean> {
    const stored = parseSecretHash(passwordHash);
    if (stored === undefined) {
      // Never quote the hash: it is as good as the password to an offline guesser.
      return Promise.reject(
        new EcrError('JOURNAL_ERROR', 'a merchant’s stored password hash is damaged'),
      );
    }
    const id = `${key}\u0000${digest.toString('hex')}`;
    let pending = this.verifying.get(id);
    if (pending === undefined) {
      this.scrypts++;
      pending = verifySecret(password, stored).finally(() => this.verifying.delete(id));
      this.verifying.set(id, pending);
    }
    return pending;
  }

  private remember(key: string, entry: CachedCredential): void {
    if (this.maxCached === 0 || this.cacheTtlMs === 0) return;
    this.cache.delete(key);
    this.cache.set(key, entry);
    // Map order is insertion order, and every entry lives as long: the first is the oldest.
    for (const oldest of this.cache.keys()) {
      if (this.cache.size <= this.maxCached) break;
      this.cache.delete(oldest);
    }
  }
}
