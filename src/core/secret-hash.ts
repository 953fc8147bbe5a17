import { randomBytes, scrypt, scryptSync } from 'node:crypto';
import { sameSecret } from './secret.js';

/**
 * Secrets the services keep only as salted scrypt hashes: merchants' API passwords and
 * terminals' registration secrets (gateway/tenants.ts, gateway/terminal-secret.ts): the letters
 * they are made of, one format, one verifier, compared with `sameSecret` (constant time).
 */

/**
 * The letters credentials are made of (`randomLetters` in random-text.ts): upper and lower case,
 * no digits, so that no key, password or secret can look like a card number to the scans.
 */
export const CREDENTIAL_LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** scrypt cost parameters of new hashes (RFC 7914; OWASP's interactive-login minimum). */
export const SCRYPT_N = 16_384;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
const SALT_BYTES = 16;
const HASH_BYTES = 32;

/** `scrypt$N$r$p$<salt base64>$<hash base64>`: the parameters travel with the hash. */
export interface StoredHash {
  readonly n: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

/**
 * A new salted hash of `secret`, as stored. Synchronous: an administrative call (adding a
 * merchant, provisioning a terminal), tens of milliseconds.
 */
export function hashSecret(secret: string): string {
  const salt = randomBytes(SALT_BYTES);
  const hash = scryptSync(secret, salt, HASH_BYTES, { N: SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P });
  return [
    'scrypt',
    SCRYPT_N,
    SCRYPT_R,
    SCRYPT_P,
    salt.toString('base64'),
    hash.toString('base64'),
  ].join('$');
}

/** Reads a stored hash; parameters are bounded so that a damaged row cannot ask for gigabytes. */
export function parseSecretHash(stored: string): StoredHash | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4] as string, 'base64');
  const hash = Buffer.from(parts[5] as string, 'base64');
  const powerOfTwo = Number.isInteger(n) && n >= 1024 && n <= 131_072 && (n & (n - 1)) === 0;
  if (
    !powerOfTwo ||
    !Number.isInteger(r) ||
    r < 1 ||
    r > 16 ||
    !Number.isInteger(p) ||
    p < 1 ||
    p > 4
  )
    return undefined;
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) return undefined;
  return { n, r, p, salt, hash };
}

/** A hash no secret matches in practice, run for unknown keys so that they take as long. */
export const DUMMY_HASH = parseSecretHash(
  [
    'scrypt',
    SCRYPT_N,
    SCRYPT_R,
    SCRYPT_P,
    Buffer.alloc(SALT_BYTES).toString('base64'),
    Buffer.alloc(HASH_BYTES).toString('base64'),
  ].join('$'),
) as StoredHash;

/** Whether `secret` is the one `stored` was made from (scrypt off the main thread). */
export function verifySecret(secret: string, stored: StoredHash): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const maxmem = 256 * stored.n * stored.r + 1024 * 1024;
    scrypt(
      secret,
      stored.salt,
      stored.hash.length,
      { N: stored.n, r: stored.r, p: stored.p, maxmem },
      (error, derived) => {
        if (error) reject(error);
        else resolve(sameSecret(derived, stored.hash));
      },
    );
  });
}
