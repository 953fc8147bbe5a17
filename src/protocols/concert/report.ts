import { containsPan, luhnValid, maskPan, redactPans } from '../../core/pan.js';

/**
 * The report field of a full Concert answer: 55 characters, "usually the PAN" (protocols.md),
 * space padded. It must be masked at once (ARCHITECTURE.md invariant 3): `readReport` is the
 * only code that sees it in clear, and nothing it returns holds a card number.
 */

/** Fewest digits read as a card number when they fill the report on their own. */
export const CONCERT_PAN_MIN_DIGITS = 12;
/** Most digits of a card number (ISO/IEC 7812). */
export const CONCERT_PAN_MAX_DIGITS = 19;
/**
 * Card number lengths tried, in order, on a report that is a card number followed by zeros
 * (`4711690463168807000…`, the iCT250 output shown in Ousret/pyTeliumManager's README): 16
 * first, the common length, then the others from the longest.
 */
const ZERO_PADDED_LENGTHS = [16, 19, 18, 17, 15, 14, 13, 12] as const;
/** Digits of a card number a masked PAN may show at its start, and at its end (PCI DSS 3.4). */
const SHOWN_FIRST = 6;
const SHOWN_LAST = 4;

/** What a report becomes: a masked card number, and/or its other text, card numbers masked. */
export interface ConcertReport {
  readonly maskedPan?: string;
  readonly text?: string;
}

/** The whole report is digits, possibly grouped by single spaces or dashes (`4111 1111 …`). */
const GROUPED_DIGITS = /^\d(?:[ -]?\d)*$/;
/** The whole report is a PAN the terminal already masked (`411111******1111`, `XXXX…1234`). */
const TERMINAL_MASKED = /^(\d*)([*Xx#]+)(\d*)$/;
/** Digit runs in free text, possibly grouped (the same separators as `redactPans`). */
const DIGIT_GROUPS = /\d(?:[ ./_-]{0,3}\d)*/g;
/** A long run of plain digits that `redactPans` does not call a card number (wrong length or Luhn). */
const LONG_DIGIT_RUN = new RegExp(`\\d{${CONCERT_PAN_MIN_DIGITS},}`, 'g');

function isPanLength(digits: string): boolean {
  return digits.length >= CONCERT_PAN_MIN_DIGITS && digits.length <= CONCERT_PAN_MAX_DIGITS;
}

/** The card number at the start of a digits-only report padded with zeros, masked. */
function zeroPaddedPan(digits: string): string | undefined {
  // A card number never starts with 0 (ISO/IEC 7812): an all-zero report holds none.
  if (!/^[1-9]\d*$/.test(digits) || digits.length <= CONCERT_PAN_MAX_DIGITS) return undefined;
  for (const length of ZERO_PADDED_LENGTHS) {
    const pan = digits.slice(0, length);
    if (/^0*$/.test(digits.slice(length)) && luhnValid(pan)) return maskPan(pan);
  }
  return undefined;
}

/** Re-masks a PAN the terminal masked itself, showing at most the first 6 and last 4 digits. */
function remask(lead: string, hidden: number, trail: string): string {
  const first = lead.slice(0, SHOWN_FIRST);
  const last = trail.slice(Math.max(0, trail.length - SHOWN_LAST));
  const length = lead.length + hidden + trail.length;
  return first + '*'.repeat(length - first.length - last.length) + last;
}

/** The first card number in free text (whole digit groups, as `redactPans` reads them), masked. */
function panInText(text: string): string | undefined {
  for (const match of text.matchAll(DIGIT_GROUPS)) {
    const groups = match[0].split(/\D+/);
    for (let i = 0; i < groups.length; i++) {
      let digits = '';
      for (let j = i; j < groups.length && digits.length < CONCERT_PAN_MAX_DIGITS; j++) {
        digits += groups[j] as string;
        if (isPanLength(digits) && containsPan(digits)) return maskPan(digits);
      }
    }
  }
  return undefined;
}

/**
 * Reads a report field (any length; the caller cuts it out of the answer). Rules, in order:
 * blank → nothing; 12–19 digits, maybe grouped → `maskedPan` = `maskPan` of them, Luhn or not
 * (erring towards masking); more digits than a card number has, a Luhn-valid card number then
 * only zeros → `maskedPan` of that card number; a PAN the terminal masked itself → `maskedPan`, re-masked to at most
 * 6 + 4 digits; anything else → `text`, through `redactPans` and with every remaining run of 12+
 * digits masked too (a stricter net than `redactPans`), plus `maskedPan` when a card number was
 * in it.
 */
export function readReport(report: string): ConcertReport {
  const trimmed = report.trim();
  if (trimmed === '') return {};
  const compact = trimmed.replace(/[ -]/g, '');
  if (GROUPED_DIGITS.test(trimmed) && isPanLength(compact)) return { maskedPan: maskPan(compact) };
  const padded = zeroPaddedPan(compact);
  if (padded !== undefined) return { maskedPan: padded };
  const masked = TERMINAL_MASKED.exec(compact);
  if (masked !== null && isPanLength(compact)) {
    const [, lead = '', hidden = '', trail = ''] = masked;
    return { maskedPan: remask(lead, hidden.length, trail) };
  }
  const text = redactPans(trimmed).replace(LONG_DIGIT_RUN, (run) => maskPan(run));
  const maskedPan = panInText(trimmed);
  return maskedPan === undefined ? { text } : { maskedPan, text };
}
