import { EcrError, invalid } from '../core/errors.js';
import { randomLetters } from '../core/random-text.js';
import {
  CREDENTIAL_LETTERS,
  DUMMY_HASH,
  hashSecret,
  parseSecretHash,
  verifySecret,
} from '../core/secret-hash.js';
import { MAX_TERMINAL_SECRET_LENGTH } from '../protocols/econduit/messages.js';

/**
 * A terminal's registration secret (issue 17, part 1): set when it is provisioned (or later),
 * sent by the terminal as its Register's `TerminalSecret`, kept by the gateway only as a salted
 * scrypt hash (`core/secret-hash.ts`, the merchants' passwords' format) and checked in constant
 * time. Never logged, never shown: `terminal list`, the API and the dashboard say only whether a
 * terminal has one.
 */

/** Shortest secret accepted: 16 characters of the alphabet below are at least 96 bits. */
export const MIN_TERMINAL_SECRET_LENGTH = 16;
export { MAX_TERMINAL_SECRET_LENGTH };
/** Letters in a generated secret: 32 of 52 letters, over 180 bits. */
export const GENERATED_SECRET_LETTERS = 32;

/** Letters, digits and the URL-safe and base64 punctuation: a secret a terminal's menu can take. */
const SECRET_CHARACTERS = /^[A-Za-z0-9._~+/=-]+$/;
export const TERMINAL_SECRET_RULE = `must be ${MIN_TERMINAL_SECRET_LENGTH}–${MAX_TERMINAL_SECRET_LENGTH} characters: letters, digits, . _ ~ + / = -`;

/**
 * Checks a secret given to provision a terminal; INVALID_INPUT naming `field` and the rule
 * otherwise. The message never quotes the secret: only its length, or the position of the first
 * character outside the alphabet.
 */
export function validateTerminalSecret(field: string, value: unknown): string {
  if (typeof value !== 'string')
    throw invalid('INVALID_INPUT', field, TERMINAL_SECRET_RULE, 'not a string');
  if (value.length < MIN_TERMINAL_SECRET_LENGTH || value.length > MAX_TERMINAL_SECRET_LENGTH)
    throw invalid('INVALID_INPUT', field, TERMINAL_SECRET_RULE, `${value.length} characters`);
  if (!SECRET_CHARACTERS.test(value)) {
    const at = [...value].findIndex((c) => !SECRET_CHARACTERS.test(c));
    throw invalid(
      'INVALID_INPUT',
      field,
      TERMINAL_SECRET_RULE,
      `position ${at + 1} is not allowed`,
    );
  }
  return value;
}

/** A strong random secret: GENERATED_SECRET_LETTERS letters (no digit runs for the card scans). */
export function generateTerminalSecret(): string {
  return randomLetters(GENERATED_SECRET_LETTERS, CREDENTIAL_LETTERS);
}

/** The stored form of a secret, validated: its salted scrypt hash. */
export function hashTerminalSecret(field: string, secret: string): string {
  return hashSecret(validateTerminalSecret(field, secret));
}

/**
 * Whether `presented` is the secret `storedHash` was made from: one scrypt off the main thread,
 * compared in constant time. A terminal with no hash (cleared meanwhile) or a presented value
 * that no secret could be still costs one scrypt, against a dummy hash, and is false. A damaged
 * hash is JOURNAL_ERROR, never quoted.
 */
export async function matchesSecretHash(
  presented: string,
  storedHash: string | null | undefined,
): Promise<boolean> {
  const stored =
    storedHash === null || storedHash === undefined ? undefined : parseSecretHash(storedHash);
  if (storedHash !== null && storedHash !== undefined && stored === undefined)
    throw new EcrError('JOURNAL_ERROR', 'a terminal’s stored secret hash is damaged');
  const usable = typeof presented === 'string' && presented.length <= MAX_TERMINAL_SECRET_LENGTH;
  const matches = await verifySecret(usable ? presented : '', stored ?? DUMMY_HASH);
  return matches && usable && stored !== undefined;
}
