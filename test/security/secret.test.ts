import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { credentialsMatch } from '../../src/connector/auth.js';
import { SECRET_DIGEST_BYTES, sameSecret, secretDigest } from '../../src/core/secret.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('credentials are compared in constant time, in one place', () => {
  it('sameSecret: equal, unequal, different lengths, empty, Unicode, bytes', () => {
    expect(sameSecret('pwd', 'pwd')).toBe(true);
    expect(sameSecret('pwd', 'pwe')).toBe(false);
    expect(sameSecret('pwd', 'pwdpwd')).toBe(false);
    expect(sameSecret('pwd', 'pw')).toBe(false);
    expect(sameSecret('', '')).toBe(true);
    expect(sameSecret('', 'a')).toBe(false);
    expect(sameSecret('a', '')).toBe(false);
    expect(sameSecret('pässwörd✓', 'pässwörd✓')).toBe(true);
    // The same text in two Unicode normal forms is two secrets: bytes are compared, not glyphs.
    expect(sameSecret('caf\u00e9', 'cafe\u0301')).toBe(false);
    expect(sameSecret('PWD', 'pwd')).toBe(false);
    // Text is its UTF-8 bytes.
    expect(sameSecret(Buffer.from('pässwörd', 'utf8'), 'pässwörd')).toBe(true);
    expect(sameSecret(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]))).toBe(true);
    expect(sameSecret(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4]))).toBe(false);
    expect(sameSecret('x'.repeat(100_000), 'x'.repeat(100_000))).toBe(true);
    expect(sameSecret('x'.repeat(100_000), `${'x'.repeat(99_999)}y`)).toBe(false);
  });

  it('sameSecret is equality of strings, for any strings (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        expect(sameSecret(a, b)).toBe(Buffer.from(a, 'utf8').equals(Buffer.from(b, 'utf8')));
        expect(sameSecret(a, a)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it('what is compared is always a digest of one fixed length, whatever the inputs (structural)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2_000 }), (text) => {
        expect(secretDigest(text)).toHaveLength(SECRET_DIGEST_BYTES);
      }),
      { numRuns: 1_000 },
    );
    expect(secretDigest('')).toHaveLength(SECRET_DIGEST_BYTES);
    expect(secretDigest('x'.repeat(1_000_000))).toHaveLength(SECRET_DIGEST_BYTES);
  });

  it('no other source file compares secrets itself: timingSafeEqual lives in core/secret.ts, and each edge uses sameSecret', () => {
    const users = sourceFiles(SRC)
      .filter((path) => readFileSync(path, 'utf8').includes('timingSafeEqual'))
      .map((path) => relative(SRC, path));
    expect(users).toEqual(['core/secret.ts']);
    // The gateway's merchant credentials (and, through core/secret-hash.ts, terminal secrets).
    for (const edge of [
      'connector/auth.ts',
      'web/sessions.ts',
      'gateway/merchant-credentials.ts',
    ]) {
      expect(readFileSync(join(SRC, edge), 'utf8'), edge).toMatch(
        /import \{[^}]*\bsameSecret\b[^}]*\} from '\.\.\/core\/secret\.js'/,
      );
    }
  });

  it("the connector's login check needs both fields right, and compares both even when the first is wrong", () => {
    const expected = { login: 'log', password: 'pwd' };
    expect(credentialsMatch(expected, 'log', 'pwd')).toBe(true);
    expect(credentialsMatch(expected, 'log', 'pwe')).toBe(false);
    expect(credentialsMatch(expected, 'lug', 'pwd')).toBe(false);
    expect(credentialsMatch(expected, '', '')).toBe(false);
    expect(credentialsMatch(expected, 'logpwd', '')).toBe(false);
  });
});
