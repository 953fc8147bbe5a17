/**
 * Card data hygiene (ARCHITECTURE.md invariant 3). A full PAN, track data or CVV must never reach
 * a log, the journal, an API answer or an error message: the edge that receives terminal bytes
 * masks them at once with these functions.
 */

/** True when `digits` (only digits) passes the Luhn check. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/**
 * Masks a PAN keeping at most the first 6 and last 4 digits (PCI DSS 3.4), fewer when the PAN is
 * short enough that 6 + 4 would show too much: at least 3 digits are always hidden.
 * Non-digits (spaces, dashes) are dropped first. `4111111111111111` → `411111******1111`.
 */
export function maskPan(pan: string): string {
  const digits = pan.replace(/\D/g, '');
  if (digits.length === 0) return '';
  const shown = Math.max(0, digits.length - 3);
  const last = Math.min(4, Math.floor(shown / 2));
  const first = Math.min(6, shown - last);
  return (
    digits.slice(0, first) +
    '*'.repeat(digits.length - first - last) +
    digits.slice(digits.length - last)
  );
}

/**
 * Digit runs that may be a PAN: 13–19 digits, optionally grouped by single spaces or dashes, whose
 * first digit is a card industry identifier (2 Mastercard 2-series, 3 Amex/JCB/Diners, 4 Visa,
 * 5 Mastercard, 6 Discover/UnionPay/Maestro). Excluding 1, 7, 8, 9 and 0 keeps epoch-millisecond
 * timestamps and serial numbers from being mistaken for cards.
 */
const PAN_CANDIDATE = /(?<![\d])[2-6](?:[ -]?\d){12,18}(?![\d])/g;

/**
 * Replaces every Luhn-valid 13–19 digit run in `text` by its masked form. Used on every free
 * text a terminal sends before it is stored or logged; harmless on text without card numbers.
 */
export function redactPans(text: string): string {
  return text.replace(PAN_CANDIDATE, (run) => {
    const digits = run.replace(/\D/g, '');
    return luhnValid(digits) ? maskPan(digits) : run;
  });
}

/** True when `text` holds a Luhn-valid 13–19 digit run (what the card-data scans look for). */
export function containsPan(text: string): boolean {
  for (const match of text.matchAll(PAN_CANDIDATE)) {
    if (luhnValid(match[0].replace(/\D/g, ''))) return true;
  }
  return false;
}

/** Deep copy of a JSON value with `redactPans` applied to every string. */
export function redactJson(value: unknown): unknown {
  if (typeof value === 'string') return redactPans(value);
  if (Array.isArray(value)) return value.map(redactJson);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      // Track data and CVV have no business being kept at all, masked or not.
      out[key] = SECRET_KEYS.test(key) ? '[removed]' : redactJson(inner);
    }
    return out;
  }
  return value;
}

const SECRET_KEYS = /^(track[_-]?[123]?(data)?|cvv2?|cvc2?|cid|pin(block)?)$/i;
