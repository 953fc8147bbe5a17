import { randomInt } from 'node:crypto';

/** The 26 lower-case letters. */
export const LOWER_CASE_LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/**
 * `count` characters, each drawn uniformly from `alphabet` with the system's cryptographic
 * generator (`randomInt` rejects rather than reduces: no modulo bias). Callers pick alphabets of
 * letters only, so that a token, key or id can never hold a digit run that looks like a card
 * number to the card-data scans.
 */
export function randomLetters(count: number, alphabet: string = LOWER_CASE_LETTERS): string {
  let text = '';
  for (let i = 0; i < count; i++) text += alphabet[randomInt(alphabet.length)] as string;
  return text;
}
