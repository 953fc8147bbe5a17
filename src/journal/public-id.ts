import { randomLetters } from '../core/random-text.js';

/**
 * The id a transaction is shown by outside the operator's own tools (the dashboard, its live
 * feed): random, so that it tells nothing of the journal's volume. The journal's integer id is
 * global and sequential; on the gateway, where one journal holds every merchant's rows, the gaps
 * between a merchant's own ids would count the other merchants' sales.
 *
 * `tx_` and 24 letters a–p: 96 random bits, written as hex with its digits spelt g–p (the
 * notification keys' scheme). Letters only, so that no id looks like a card number to the scans;
 * hex, so that both databases can draw the same form in SQL when a migration gives ids to the
 * rows written before them (SQLite migration 8, PostgreSQL migration 3).
 */
export const PUBLIC_ID_PREFIX = 'tx_';
/** Letters after the prefix, 4 random bits each. */
export const PUBLIC_ID_LETTERS = 24;
/** Hex digits 0–9 a–f spelt as letters: 0–9 → g–p. */
const ALPHABET = 'abcdefghijklmnop';
const PATTERN = new RegExp(`^${PUBLIC_ID_PREFIX}[a-p]{${PUBLIC_ID_LETTERS}}$`);

/** The rule a public id keeps, as error messages state it. */
export const PUBLIC_ID_RULE = `must be a transaction id: ${PUBLIC_ID_PREFIX} and ${PUBLIC_ID_LETTERS} letters a–p`;

/** A fresh public id, from the system's cryptographic generator. */
export function newPublicId(): string {
  return PUBLIC_ID_PREFIX + randomLetters(PUBLIC_ID_LETTERS, ALPHABET);
}

/** Whether `value` has the form of a public id (whether one exists is the journal's to say). */
export function isPublicId(value: unknown): value is string {
  return typeof value === 'string' && PATTERN.test(value);
}
