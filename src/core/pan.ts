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
 * Runs of digits, possibly grouped by up to three separators: spaces (Unicode ones included),
 * dots, dashes, slashes, underscores (`4111 1111.1111-1111`, `4761 / 7390 / 0101 / 0010`).
 */
const DIGIT_RUN = /(?<!\d)\d+(?:[\s\u00a0\u2000-\u200b\u202f\u3000./_-]{1,3}\d+)*(?!\d)/g;

/** First digits of card numbers: 2 Mastercard 2-series, 3 Amex/JCB/Diners, 4 Visa, 5 Mastercard, 6 Discover/UnionPay/Maestro. */
const CARD_FIRST_DIGIT = /^[2-6]/;

function isCardNumber(digits: string): boolean {
  return (
    digits.length >= 13 && digits.length <= 19 && CARD_FIRST_DIGIT.test(digits) && luhnValid(digits)
  );
}

/**
 * Spans of `run` (start and end offsets) that are card numbers: one group of 13–19 digits, or
 * consecutive groups of 3 or more digits each (4-4-4-4, 4-6-5, …) adding up to that, starting
 * with a card industry digit and passing Luhn. Whole groups only: in `4111111111111111 1` the
 * card is the first group and the lone digit beside it does not hide it; `2.00 3.00 4.00` is no
 * card. Excluding first digits 0, 1, 7, 8 and 9 keeps epoch-millisecond timestamps out.
 */
function panSpans(run: string): [number, number][] {
  const groups = [...run.matchAll(/\d+/g)].map((m) => ({
    start: m.index,
    end: m.index + m[0].length,
    digits: m[0],
  }));
  const spans: [number, number][] = [];
  for (let i = 0; i < groups.length; i++) {
    let digits = '';
    let last: number | undefined;
    // From group i, the longest run of whole groups that is a card number.
    for (let j = i; j < groups.length && digits.length < 19; j++) {
      const group = (groups[j] as { digits: string }).digits;
      if (j > i && (group.length < 3 || digits.length < 3)) break;
      digits += group;
      if (isCardNumber(digits)) last = j;
    }
    if (last !== undefined) {
      spans.push([(groups[i] as { start: number }).start, (groups[last] as { end: number }).end]);
      i = last;
    }
  }
  return spans;
}

/** The longest suffix of `digits` that is a card number (a PAN glued behind an EMV tag). */
function cardSuffix(digits: string): string | undefined {
  for (let length = Math.min(19, digits.length); length >= 13; length--) {
    const suffix = digits.slice(digits.length - length);
    if (isCardNumber(suffix)) return suffix;
  }
  return undefined;
}

/**
 * Track 2 data (ISO 7813 `PAN=YYMM…`, or EMV tag 57's `PAN D YYMM …` in hex): the PAN is masked
 * and everything after the separator — expiry, service code, discretionary data — removed. A match
 * starts only where a digit run starts (the earliest start a match could have anyway): without
 * that, a long run of digits with no separator was tried from every digit, in quadratic time.
 */
const TRACK2 = /(?<!\d)(\d+)[=D]\d{4}[\dF]*\??/g;

/** EMV tag 5A (application PAN) in hex: `5A` + length byte + BCD digits, `F`-padded when odd. */
const EMV_PAN = /5A(0[6-9A])(\d{12,20})/gi;

function redactTracks(text: string): string {
  return text
    .replace(TRACK2, (match, digits: string) => {
      const pan = cardSuffix(digits);
      return pan === undefined
        ? match
        : `${digits.slice(0, digits.length - pan.length)}${maskPan(pan)}=[removed]`;
    })
    .replace(EMV_PAN, (match, length: string, digits: string) => {
      const pan = digits.slice(0, parseInt(length, 16) * 2);
      return isCardNumber(pan) ? `5A${length}${maskPan(pan)}${digits.slice(pan.length)}` : match;
    });
}

/**
 * Masks every card number in `text`: grouped or plain digit runs (see `panSpans`), track 2
 * data and EMV PAN tags. Used on every free text a terminal sends before it is stored or logged;
 * harmless on text without card numbers.
 */
export function redactPans(text: string): string {
  return redactTracks(text).replace(DIGIT_RUN, (run) => {
    let out = '';
    let at = 0;
    for (const [start, end] of panSpans(run)) {
      out += run.slice(at, start) + maskPan(run.slice(start, end));
      at = end;
    }
    return out + run.slice(at);
  });
}

/** True when `text` holds card data that `redactPans` would mask. */
export function containsPan(text: string): boolean {
  return redactPans(text) !== text;
}
