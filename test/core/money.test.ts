import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CURRENCIES, findCurrency, findCurrencyByNumeric } from '../../src/core/currencies.js';
import { EcrError, type ErrorCode } from '../../src/core/errors.js';
import {
  DEFAULT_MAX_AMOUNT_MINOR,
  formatAmount,
  formatMinor,
  formatMoney,
  moneyFromMinor,
  parseAmount,
  requireCurrency,
} from '../../src/core/money.js';
import { thrownBy } from '../helpers.js';

/** Expects `fn` to throw `code` for `field`, with `ruleText` in both `rule` and the message. */
function expectRefusal(
  fn: () => unknown,
  code: ErrorCode,
  field: string,
  ruleText: string | RegExp,
): EcrError {
  const error = thrownBy(fn);
  expect(error.code).toBe(code);
  expect(error.field).toBe(field);
  expect(error.rule).toMatch(ruleText);
  expect(error.message).toMatch(ruleText);
  expect(error.message.startsWith(`${field}: `)).toBe(true);
  return error;
}

describe('parseAmount', () => {
  it.each([
    { input: 9.99, currency: 'EUR', minor: 999 },
    { input: '9.99', currency: 'EUR', minor: 999 },
    { input: '10,23', currency: 'EUR', minor: 1023 },
    { input: '20', currency: 'EUR', minor: 2000 },
    { input: 20, currency: 'EUR', minor: 2000 },
    { input: '0.01', currency: 'EUR', minor: 1 },
    { input: '9.9', currency: 'EUR', minor: 990 },
    { input: 123456.78, currency: 'EUR', minor: 12345678 },
    { input: '1500', currency: 'JPY', minor: 1500 },
    { input: 1500, currency: 'JPY', minor: 1500 },
    { input: '1.234', currency: 'KWD', minor: 1234 },
    { input: '1,234', currency: 'KWD', minor: 1234 },
    { input: '1.2', currency: 'KWD', minor: 1200 },
    { input: '2.5', currency: 'BHD', minor: 2500 },
    { input: '1.2345', currency: 'CLF', minor: 12345 },
    { input: '1', currency: 'CLF', minor: 10000 },
    { input: '0,0001', currency: 'CLF', minor: 1 },
  ])('reads $input $currency as $minor minor units', ({ input, currency, minor }) => {
    expect(parseAmount(input, currency)).toEqual({ minor, currency });
  });

  it('refuses decimals in a currency that has none (JPY "10,23")', () => {
    expectRefusal(
      () => parseAmount('10,23', 'JPY'),
      'INVALID_AMOUNT',
      'amount',
      'must have at most 0 decimals for JPY',
    );
  });

  it('refuses more decimals than the currency has ("9.999" EUR, "1.23456" CLF)', () => {
    expectRefusal(
      () => parseAmount('9.999', 'EUR'),
      'INVALID_AMOUNT',
      'amount',
      'must have at most 2 decimals for EUR',
    );
    expectRefusal(
      () => parseAmount('1.23456', 'CLF'),
      'INVALID_AMOUNT',
      'amount',
      'must have at most 4 decimals for CLF',
    );
  });

  const FORMAT_RULE = 'must be digits with an optional "." or "," and decimals';

  it.each<{ name: string; input: unknown; rule: string }>([
    {
      name: 'both separators ("1,234.5")',
      input: '1,234.5',
      rule: 'must use one decimal separator and no digit grouping',
    },
    {
      name: 'both separators ("1.234,5")',
      input: '1.234,5',
      rule: 'must use one decimal separator and no digit grouping',
    },
    { name: 'letters ("abc")', input: 'abc', rule: FORMAT_RULE },
    { name: 'a negative string ("-5")', input: '-5', rule: 'must not be negative' },
    { name: 'a negative number (-5)', input: -5, rule: 'must not be negative' },
    { name: 'a negative fraction (-0.01)', input: -0.01, rule: 'must not be negative' },
    { name: 'NaN', input: Number.NaN, rule: 'must be a finite number' },
    { name: 'Infinity', input: Number.POSITIVE_INFINITY, rule: 'must be a finite number' },
    { name: '-Infinity', input: Number.NEGATIVE_INFINITY, rule: 'must be a finite number' },
    { name: 'an empty string', input: '', rule: FORMAT_RULE },
    { name: 'a leading space (" 1")', input: ' 1', rule: FORMAT_RULE },
    { name: 'a trailing space ("1 ")', input: '1 ', rule: FORMAT_RULE },
    { name: 'a trailing separator ("1.")', input: '1.', rule: FORMAT_RULE },
    { name: 'a missing whole part (".5")', input: '.5', rule: FORMAT_RULE },
    { name: 'an exponent string ("1e3")', input: '1e3', rule: FORMAT_RULE },
    { name: 'a number written with an exponent (1e21)', input: 1e21, rule: FORMAT_RULE },
    { name: 'a tiny number written with an exponent (1e-7)', input: 1e-7, rule: FORMAT_RULE },
    { name: 'a plus sign ("+5")', input: '+5', rule: FORMAT_RULE },
    { name: 'two separators of one kind ("1.2.3")', input: '1.2.3', rule: FORMAT_RULE },
    { name: 'grouping with commas ("1,234,567")', input: '1,234,567', rule: FORMAT_RULE },
    { name: 'a currency sign ("€5")', input: '€5', rule: FORMAT_RULE },
    { name: 'non-ASCII digits ("٥")', input: '٥', rule: FORMAT_RULE },
    { name: 'zero (0)', input: 0, rule: 'must be greater than zero' },
    { name: 'zero ("0.00")', input: '0.00', rule: 'must be greater than zero' },
    { name: 'zero ("0")', input: '0', rule: 'must be greater than zero' },
    { name: 'negative zero (-0)', input: -0, rule: 'must be greater than zero' },
    {
      name: 'a string longer than 32 characters',
      input: '1'.repeat(33),
      rule: 'must be at most 32 characters',
    },
    {
      name: 'a padded string longer than 32 characters',
      input: `${'0'.repeat(30)}1.00`,
      rule: 'must be at most 32 characters',
    },
    { name: 'null', input: null, rule: 'must be a number or a decimal string' },
    { name: 'undefined', input: undefined, rule: 'must be a number or a decimal string' },
    { name: 'an object ({})', input: {}, rule: 'must be a number or a decimal string' },
    { name: 'a boolean (true)', input: true, rule: 'must be a number or a decimal string' },
    { name: 'a bigint (5n)', input: 5n, rule: 'must be a number or a decimal string' },
    {
      name: 'a float with 17 decimals (0.1 + 0.2)',
      input: 0.1 + 0.2,
      rule: 'must have at most 2 decimals for EUR',
    },
  ])('refuses $name with INVALID_AMOUNT naming the rule', ({ input, rule }) => {
    expectRefusal(() => parseAmount(input, 'EUR'), 'INVALID_AMOUNT', 'amount', rule);
  });

  it('names the caller’s field in the error when the field option is given', () => {
    const error = expectRefusal(
      () => parseAmount('abc', 'EUR', { field: 'tip' }),
      'INVALID_AMOUNT',
      'tip',
      FORMAT_RULE,
    );
    expect(error.message).toBe(`tip: ${FORMAT_RULE} (abc)`);
    expect(error.toJSON()).toEqual({
      code: 'INVALID_AMOUNT',
      message: `tip: ${FORMAT_RULE} (abc)`,
      field: 'tip',
      rule: FORMAT_RULE,
    });
  });

  it('accepts a string of exactly 32 characters', () => {
    expect(parseAmount(`${'0'.repeat(28)}1.00`, 'EUR')).toEqual({ minor: 100, currency: 'EUR' });
  });

  it('accepts zero only with allowZero', () => {
    expect(parseAmount(0, 'EUR', { allowZero: true })).toEqual({ minor: 0, currency: 'EUR' });
    expect(parseAmount('0.00', 'EUR', { allowZero: true })).toEqual({ minor: 0, currency: 'EUR' });
    expect(parseAmount('0', 'JPY', { allowZero: true })).toEqual({ minor: 0, currency: 'JPY' });
    expectRefusal(
      () => parseAmount('0,00', 'EUR', { allowZero: false, field: 'tip' }),
      'INVALID_AMOUNT',
      'tip',
      'must be greater than zero',
    );
  });

  it('accepts up to maxMinor and refuses one minor unit more, naming the limit', () => {
    expect(parseAmount('10.00', 'EUR', { maxMinor: 1000 })).toEqual({
      minor: 1000,
      currency: 'EUR',
    });
    expectRefusal(
      () => parseAmount('10.01', 'EUR', { maxMinor: 1000 }),
      'INVALID_AMOUNT',
      'amount',
      'must be at most 10.00 EUR',
    );
    expectRefusal(
      () => parseAmount('1001', 'JPY', { maxMinor: 1000, field: 'total' }),
      'INVALID_AMOUNT',
      'total',
      'must be at most 1000 JPY',
    );
  });

  it('accepts DEFAULT_MAX_AMOUNT_MINOR and refuses anything past it', () => {
    expect(DEFAULT_MAX_AMOUNT_MINOR).toBe(1_000_000_000);
    expect(parseAmount('10000000.00', 'EUR')).toEqual({
      minor: DEFAULT_MAX_AMOUNT_MINOR,
      currency: 'EUR',
    });
    expectRefusal(
      () => parseAmount('10000000.01', 'EUR'),
      'INVALID_AMOUNT',
      'amount',
      'must be at most 10000000.00 EUR',
    );
    expectRefusal(
      () => parseAmount(10_000_001, 'EUR'),
      'INVALID_AMOUNT',
      'amount',
      'must be at most 10000000.00 EUR',
    );
    expectRefusal(
      () => parseAmount('1000000001', 'JPY'),
      'INVALID_AMOUNT',
      'amount',
      'must be at most 1000000000 JPY',
    );
    // Far past any safe integer: refused by the bound, never rounded.
    expectRefusal(
      () => parseAmount('99999999999999999999999', 'EUR'),
      'INVALID_AMOUNT',
      'amount',
      'must be at most 10000000.00 EUR',
    );
  });

  it('refuses a bad currency with INVALID_CURRENCY on the currency field', () => {
    expectRefusal(
      () => parseAmount('1.00', 'eur'),
      'INVALID_CURRENCY',
      'currency',
      'must be a three-letter ISO 4217 code in capitals',
    );
    expectRefusal(
      () => parseAmount('1.00', 'HRK'),
      'INVALID_CURRENCY',
      'currency',
      'must be an active ISO 4217 currency',
    );
  });
});

describe('requireCurrency', () => {
  it('returns the currency for an active code', () => {
    expect(requireCurrency('EUR')).toEqual({ code: 'EUR', numeric: '978', exponent: 2 });
  });

  it.each<{ code: unknown; rule: string }>([
    { code: 'eur', rule: 'must be a three-letter ISO 4217 code in capitals' },
    { code: 'EU', rule: 'must be a three-letter ISO 4217 code in capitals' },
    { code: 'EURO', rule: 'must be a three-letter ISO 4217 code in capitals' },
    { code: ' EUR', rule: 'must be a three-letter ISO 4217 code in capitals' },
    { code: '978', rule: 'must be a three-letter ISO 4217 code in capitals' },
    { code: 978, rule: 'must be a three-letter ISO 4217 code in capitals' },
    { code: null, rule: 'must be a three-letter ISO 4217 code in capitals' },
    { code: 'XTS', rule: 'must be an active ISO 4217 currency' },
    { code: 'XAU', rule: 'must be an active ISO 4217 currency' },
    { code: 'HRK', rule: 'must be an active ISO 4217 currency' },
    { code: 'SLL', rule: 'must be an active ISO 4217 currency' },
  ])('refuses $code with INVALID_CURRENCY', ({ code, rule }) => {
    expectRefusal(() => requireCurrency(code), 'INVALID_CURRENCY', 'currency', rule);
  });

  it('names a custom field', () => {
    expectRefusal(
      () => requireCurrency('eur', 'settlementCurrency'),
      'INVALID_CURRENCY',
      'settlementCurrency',
      'capitals',
    );
  });
});

describe('currency table', () => {
  it.each([
    { code: 'EUR', numeric: '978', exponent: 2 },
    { code: 'JPY', numeric: '392', exponent: 0 },
    { code: 'KWD', numeric: '414', exponent: 3 },
    { code: 'BHD', numeric: '048', exponent: 3 },
    { code: 'CLF', numeric: '990', exponent: 4 },
    { code: 'LKR', numeric: '144', exponent: 2 },
    { code: 'USD', numeric: '840', exponent: 2 },
  ])('holds $code as numeric $numeric with exponent $exponent', (expected) => {
    expect(CURRENCIES.get(expected.code)).toEqual(expected);
    expect(findCurrency(expected.code)).toEqual(expected);
    expect(findCurrencyByNumeric(expected.numeric)).toEqual(expected);
  });

  it('has more than 150 currencies', () => {
    expect(CURRENCIES.size).toBeGreaterThan(150);
  });

  it('keys every entry by its own three-capital-letter code', () => {
    for (const [key, currency] of CURRENCIES) {
      expect(currency.code).toBe(key);
      expect(key).toMatch(/^[A-Z]{3}$/);
    }
  });

  it('gives every currency a unique three-digit numeric code', () => {
    const numerics = [...CURRENCIES.values()].map((c) => c.numeric);
    for (const numeric of numerics) expect(numeric).toMatch(/^\d{3}$/);
    expect(new Set(numerics).size).toBe(numerics.length);
  });

  it('gives every currency an exponent of 0, 2, 3 or 4', () => {
    for (const currency of CURRENCIES.values()) {
      expect([0, 2, 3, 4]).toContain(currency.exponent);
    }
  });

  it('finds EUR by numeric 978 and nothing for unknown numerics', () => {
    expect(findCurrencyByNumeric('978')?.code).toBe('EUR');
    expect(findCurrencyByNumeric('000')).toBeUndefined();
    expect(findCurrencyByNumeric('48')).toBeUndefined();
  });

  it('looks codes up case-sensitively and leaves withdrawn and metal codes out', () => {
    expect(findCurrency('eur')).toBeUndefined();
    for (const code of ['HRK', 'SLL', 'XAU', 'XTS', 'XDR']) {
      expect(findCurrency(code)).toBeUndefined();
    }
  });

  it('freezes the currency records', () => {
    expect(Object.isFrozen(CURRENCIES.get('EUR'))).toBe(true);
  });
});

describe('formatting', () => {
  it.each([
    { minor: 999, currency: 'EUR', text: '9.99' },
    { minor: 2000, currency: 'EUR', text: '20.00' },
    { minor: 5, currency: 'EUR', text: '0.05' },
    { minor: 0, currency: 'EUR', text: '0.00' },
    { minor: 5, currency: 'JPY', text: '5' },
    { minor: 1234, currency: 'KWD', text: '1.234' },
    { minor: 1, currency: 'CLF', text: '0.0001' },
  ])('formats $minor $currency as "$text"', ({ minor, currency, text }) => {
    expect(formatAmount({ minor, currency })).toBe(text);
    expect(formatMoney({ minor, currency })).toBe(`${text} ${currency}`);
  });

  it('formatMinor pads to exactly `exponent` decimals', () => {
    expect(formatMinor(2000, 2)).toBe('20.00');
    expect(formatMinor(7, 3)).toBe('0.007');
    expect(formatMinor(7, 0)).toBe('7');
  });

  it('formatMinor keeps the sign of a negative total (refunds outweighing sales)', () => {
    expect(formatMinor(-5, 2)).toBe('-0.05');
    expect(formatMinor(-1234, 2)).toBe('-12.34');
    expect(formatMinor(-7, 0)).toBe('-7');
  });
});

describe('parse/format round trip (properties)', () => {
  const currencyArb = fc.constantFrom(...CURRENCIES.values());
  const minorArb = fc.oneof(
    fc.integer({ min: 1, max: 10_000 }),
    fc.integer({ min: 1, max: DEFAULT_MAX_AMOUNT_MINOR }),
    fc.constant(DEFAULT_MAX_AMOUNT_MINOR),
  );

  it('parseAmount(formatAmount(m)) gives back m for every currency and amount', () => {
    fc.assert(
      fc.property(currencyArb, minorArb, (currency, minor) => {
        const text = formatAmount({ minor, currency: currency.code });
        expect(parseAmount(text, currency.code)).toEqual({ minor, currency: currency.code });
      }),
      { numRuns: 2000 },
    );
  });

  it('the round trip also holds with "," as the decimal separator', () => {
    fc.assert(
      fc.property(currencyArb, minorArb, (currency, minor) => {
        const text = formatAmount({ minor, currency: currency.code }).replace('.', ',');
        expect(parseAmount(text, currency.code).minor).toBe(minor);
      }),
      { numRuns: 2000 },
    );
  });

  it('formatAmount writes exactly `exponent` decimals', () => {
    fc.assert(
      fc.property(currencyArb, fc.integer({ min: 0, max: DEFAULT_MAX_AMOUNT_MINOR }), (c, m) => {
        const text = formatAmount({ minor: m, currency: c.code });
        if (c.exponent === 0) {
          expect(text).toMatch(/^\d+$/);
        } else {
          expect(text).toMatch(new RegExp(`^\\d+\\.\\d{${c.exponent}}$`));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('moneyFromMinor', () => {
  it('builds Money from non-negative safe integers', () => {
    expect(moneyFromMinor(999, 'EUR')).toEqual({ minor: 999, currency: 'EUR' });
    expect(moneyFromMinor(0, 'JPY')).toEqual({ minor: 0, currency: 'JPY' });
    expect(moneyFromMinor(Number.MAX_SAFE_INTEGER, 'EUR').minor).toBe(Number.MAX_SAFE_INTEGER);
  });

  const RULE = 'must be a non-negative integer number of minor units';

  it.each<{ name: string; minor: unknown }>([
    { name: 'a negative number', minor: -1 },
    { name: 'a fraction (1.5)', minor: 1.5 },
    { name: 'NaN', minor: Number.NaN },
    { name: 'Infinity', minor: Number.POSITIVE_INFINITY },
    { name: 'an unsafe integer (2^53)', minor: 2 ** 53 },
    { name: 'a numeric string', minor: '5' },
    { name: 'null', minor: null },
  ])('refuses $name with INVALID_AMOUNT', ({ minor }) => {
    expectRefusal(() => moneyFromMinor(minor, 'EUR'), 'INVALID_AMOUNT', 'amount', RULE);
  });

  it('names a custom field and checks the currency', () => {
    expectRefusal(() => moneyFromMinor(-1, 'EUR', 'tipMinor'), 'INVALID_AMOUNT', 'tipMinor', RULE);
    expectRefusal(() => moneyFromMinor(1, 'XTS'), 'INVALID_CURRENCY', 'currency', 'active');
  });
});
