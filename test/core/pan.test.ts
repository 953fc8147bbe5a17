import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { containsPan, luhnValid, maskPan, redactPans } from '../../src/core/pan.js';

/** The Luhn check digit that makes `body + digit` valid. */
function luhnCheckDigit(body: string): string {
  for (let d = 0; d <= 9; d++) {
    if (luhnValid(`${body}${d}`)) return String(d);
  }
  throw new Error(`no check digit for ${body}`);
}

const digitArb = fc.constantFrom(...'0123456789'.split(''));

/** Random Luhn-valid 16-digit numbers starting with 4 (Visa-shaped). */
const visaArb = fc
  .string({ unit: digitArb, minLength: 14, maxLength: 14 })
  .map((middle) => `4${middle}${luhnCheckDigit(`4${middle}`)}`);

describe('luhnValid', () => {
  it.each(['4111111111111111', '4761739001010010', '378282246310005', '5555555555554444'])(
    'accepts the known valid number %s',
    (pan) => {
      expect(luhnValid(pan)).toBe(true);
    },
  );

  it.each([
    '4111111111111112',
    '4111111111111121',
    '1234567812345678',
    '378282246310006',
    '5555555555554440',
    '',
    '4111 1111 1111 1111',
    '4111-1111-1111-1111',
    'abcd',
  ])('refuses %j', (value) => {
    expect(luhnValid(value)).toBe(false);
  });

  it('detects every single-digit change to a valid number', () => {
    fc.assert(
      fc.property(
        visaArb,
        fc.integer({ min: 0, max: 15 }),
        fc.integer({ min: 1, max: 9 }),
        (pan, i, delta) => {
          const changed = String((Number(pan[i]) + delta) % 10);
          const altered = pan.slice(0, i) + changed + pan.slice(i + 1);
          expect(luhnValid(altered)).toBe(false);
        },
      ),
    );
  });
});

describe('maskPan', () => {
  it.each([
    { pan: '4111111111111111', masked: '411111******1111' },
    { pan: '378282246310005', masked: '378282*****0005' },
    { pan: '4111111111111', masked: '411111***1111' },
    { pan: '6011000990139424123', masked: '601100*********4123' },
    { pan: '4111 1111 1111 1111', masked: '411111******1111' },
    { pan: '4111-1111-1111-1111', masked: '411111******1111' },
    { pan: '', masked: '' },
    { pan: 'no digits', masked: '' },
  ])('masks $pan as $masked', ({ pan, masked }) => {
    expect(maskPan(pan)).toBe(masked);
  });

  it('shows at most the first 6 and last 4 digits', () => {
    fc.assert(
      fc.property(fc.string({ unit: digitArb, minLength: 1, maxLength: 30 }), (digits) => {
        const masked = maskPan(digits);
        const match = /^(\d*)(\**)(\d*)$/.exec(masked);
        expect(match).not.toBeNull();
        const [, first = '', , last = ''] = match ?? [];
        expect(first.length).toBeLessThanOrEqual(6);
        expect(last.length).toBeLessThanOrEqual(4);
        expect(digits.startsWith(first)).toBe(true);
        expect(digits.endsWith(last)).toBe(true);
      }),
    );
  });

  it.each(['1', '12', '123', '1234', '12345', '123456', '1234567', '123456789012'])(
    'hides at least 3 digits of the short input %s',
    (digits) => {
      const masked = maskPan(digits);
      expect(masked).toHaveLength(digits.length);
      expect([...masked].filter((c) => c === '*').length).toBeGreaterThanOrEqual(
        Math.min(3, digits.length),
      );
    },
  );

  it('never returns the full digit string for 13–19 digits, and keeps the digit count', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: digitArb, minLength: 13, maxLength: 19 }),
        fc.constantFrom('', ' ', '-'),
        (digits, separator) => {
          const grouped = (digits.match(/\d{1,4}/g) ?? []).join(separator);
          const masked = maskPan(grouped);
          expect(masked).not.toContain(digits);
          expect(masked).toHaveLength(digits.length);
          expect([...masked].filter((c) => c === '*').length).toBeGreaterThanOrEqual(3);
        },
      ),
    );
  });
});

describe('redactPans', () => {
  it.each([
    { text: 'card 4111111111111111 approved', out: 'card 411111******1111 approved' },
    { text: 'card 4111 1111 1111 1111 approved', out: 'card 411111******1111 approved' },
    { text: 'card 4111-1111-1111-1111 approved', out: 'card 411111******1111 approved' },
    { text: 'amex 3782 822463 10005.', out: 'amex 378282*****0005.' },
    { text: '5555555555554444', out: '555555******4444' },
    {
      text: 'a=4111111111111111;b=5555555555554444',
      out: 'a=411111******1111;b=555555******4444',
    },
  ])('masks the PAN in $text', ({ text, out }) => {
    expect(redactPans(text)).toBe(out);
  });

  it.each([
    'card 4111111111111112 declined',
    'order 1234567812345678',
    'tx 4111111111',
    'terminal 12345678',
    'at 1700000000000',
    'ts=1712345678901 rc=00',
    'epoch 1999999999999',
    'nothing to see here',
    '',
  ])('leaves %j alone', (text) => {
    expect(redactPans(text)).toBe(text);
  });

  it('leaves 13-digit epoch-millisecond timestamps starting with 1 alone, Luhn-valid or not', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1_000_000_000_000, max: 1_999_999_999_999 }), (ms) => {
        const text = `at ${ms} ok`;
        expect(redactPans(text)).toBe(text);
        expect(containsPan(text)).toBe(false);
      }),
    );
  });

  it('masks a PAN followed by a lone digit after a space', () => {
    const text = 'card 4111111111111111 1 item';
    expect(redactPans(text)).not.toContain('4111111111111111');
    expect(containsPan(text)).toBe(true);
  });

  it('masks a PAN preceded by a lone digit and a space', () => {
    const text = 'qty 2 4111111111111111';
    expect(redactPans(text)).not.toContain('4111111111111111');
    expect(containsPan(text)).toBe(true);
  });

  it('leaves no PAN in text around a random Visa-shaped number', () => {
    fc.assert(
      fc.property(visaArb, (pan) => {
        const redacted = redactPans(`x ${pan} y`);
        expect(containsPan(redacted)).toBe(false);
        expect(redacted).toBe(`x ${maskPan(pan)} y`);
      }),
      { numRuns: 500 },
    );
  });
});

describe('containsPan', () => {
  it.each([
    'card 4111111111111111',
    'card 4111 1111 1111 1111',
    'card 4111-1111-1111-1111',
    '378282246310005',
    'x5555555555554444y',
  ])('finds a PAN in %j', (text) => {
    expect(containsPan(text)).toBe(true);
  });

  it.each([
    'card 411111******1111',
    'card 4111111111111112',
    'at 1700000000000',
    'short 4111',
    '',
    'no digits at all',
  ])('finds no PAN in %j', (text) => {
    expect(containsPan(text)).toBe(false);
  });

  it('can be called repeatedly on the same text with the same answer', () => {
    const text = 'a 4111111111111111 b';
    expect([containsPan(text), containsPan(text), containsPan(text)]).toEqual([true, true, true]);
  });
});

describe('redactPans — card data in other shapes', () => {
  const VISA = '4761739001010010';
  it.each([
    ['dots', '4761.7390.0101.0010'],
    ['double spaces', '4761  7390  0101  0010'],
    ['slashes', '4761/7390/0101/0010'],
    ['underscores', '4761_7390_0101_0010'],
    ['spaced dashes', '4761 - 7390 - 0101 - 0010'],
    ['non-breaking spaces', '4761\u00a07390\u00a00101\u00a00010'],
    ['line breaks', '4761\n7390\n0101\n0010'],
    ['Amex 4-6-5 grouping', '3782 822463 10005'],
    ['ISO 7813 track 2', `;${VISA}=25121011234567?`],
    ['EMV tag 57 (track 2 equivalent) in hex', `5713${VISA}D25122011234567890F`],
    ['EMV tag 5A (application PAN) in hex', `9F02060000000020005A08${VISA}5F2403251231`],
  ])('%s: masked, and the scan finds it', (_shape, text) => {
    expect(containsPan(text)).toBe(true);
    const redacted = redactPans(text);
    expect(containsPan(redacted)).toBe(false);
    expect(redacted.replace(/\D/g, '')).not.toContain(VISA.slice(6, 12));
  });

  it('track 2 keeps nothing after the separator: expiry, service code and discretionary data go', () => {
    expect(redactPans(`;${VISA}=25121011234567?`)).toBe(';476173******0010=[removed]');
  });

  it('track 2 after a very long digit run is still found, and the run alone is left as it is', () => {
    // 100,000 digits: the track pattern once tried a run from every digit (quadratic: minutes).
    const run = '7'.repeat(100_000);
    expect(redactPans(run)).toBe(run);
    expect(redactPans(`${run} ;${VISA}=25121011234567?`)).toBe(
      `${run} ;476173******0010=[removed]`,
    );
  });

  it('an odd-length PAN padded with F in tag 5A is masked and the next tag kept', () => {
    expect(redactPans('5A08378282246310005F9F1A020144')).toBe('5A08378282*****0005F9F1A020144');
  });

  it.each([
    ['prices', 'prices 2.00 3.00 4.00 5.00 6.00 7.00 8.00'],
    ['an IP address and port', 'origin /192.168.2.230:41588'],
    ['a date and time', '2020-09-29 01:42:22 PM'],
    ['an epoch timestamp', 'time 1795000000000'],
  ])('leaves %s alone', (_what, text) => {
    expect(redactPans(text)).toBe(text);
  });
});
