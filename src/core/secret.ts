import { createHash, timingSafeEqual } from 'node:crypto';

/** Bytes every secret is reduced to before it is compared (SHA-256). */
export const SECRET_DIGEST_BYTES = 32;

/** SHA-256 of a secret: text as UTF-8, bytes as they are. Always SECRET_DIGEST_BYTES long. */
export function secretDigest(secret: string | Uint8Array): Buffer {
  const hash = createHash('sha256');
  if (typeof secret === 'string') hash.update(secret, 'utf8');
  else hash.update(secret);
  return hash.digest();
}

/**
 * Whether two secrets (passwords, logins, tokens, password hashes) are the same, in time that
 * depends on neither where they first differ nor their lengths: both are digested to
 * SECRET_DIGEST_BYTES with SHA-256 first (whose cost depends only on the input's own length, not on
 * the other one), then compared with `timingSafeEqual`, which reads every byte of both. The one
 * place credentials are compared (connector Basic Auth and dashboard, gateway tenants, CSRF).
 */
export function sameSecret(a: string | Uint8Array, b: string | Uint8Array): boolean {
  return timingSafeEqual(secretDigest(a), secretDigest(b));
}
