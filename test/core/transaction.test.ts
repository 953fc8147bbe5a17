import { describe, expect, it } from 'vitest';
import {
  MAX_REFERENCE_LENGTH,
  validatePaymentRequest,
  validateReference,
  type PaymentRequest,
} from '../../src/core/transaction.js';
import { thrownBy } from '../helpers.js';

describe('validateReference', () => {
  it.each([
    'ORDER-1',
    'a',
    'R'.repeat(64),
    'order 42 / table 7',
    'Bestellung-Nr.ÄÖÜ-€',
    '注文-123',
    // Digit runs that are not card numbers (no Luhn, or too short) stay allowed.
    'INV-20261123153004',
    'ORDER-123456789012',
  ])('accepts and returns %j', (reference) => {
    expect(validateReference(reference)).toBe(reference);
  });

  it('allows up to MAX_REFERENCE_LENGTH (64) characters', () => {
    expect(MAX_REFERENCE_LENGTH).toBe(64);
  });

  it.each<{ name: string; value: unknown; rule: string }>([
    { name: 'an empty string', value: '', rule: 'must not be empty' },
    { name: '65 characters', value: 'R'.repeat(65), rule: 'must be at most 64 characters' },
    { name: 'a tab', value: 'ORDER\t1', rule: 'must not contain control characters' },
    { name: 'a newline', value: 'ORDER\n1', rule: 'must not contain control characters' },
    { name: 'a carriage return', value: 'ORDER-1\r', rule: 'must not contain control characters' },
    { name: 'NUL (\\u0000)', value: 'ORDER\u00001', rule: 'must not contain control characters' },
    { name: 'ESC (\\u001b)', value: '\u001b[31mRED', rule: 'must not contain control characters' },
    { name: 'DEL (\\u007f)', value: 'ORDER\u007f1', rule: 'must not contain control characters' },
    { name: 'CSI (\\u009b)', value: 'ORDER\u009b1', rule: 'must not contain control characters' },
    { name: 'APC (\\u009f)', value: 'ORDER\u009f1', rule: 'must not contain control characters' },
    { name: 'a leading space', value: ' ORDER-1', rule: 'must not start or end with spaces' },
    { name: 'a trailing space', value: 'ORDER-1 ', rule: 'must not start or end with spaces' },
    { name: 'only a space', value: ' ', rule: 'must not start or end with spaces' },
    {
      name: 'a run of digits that passes the card-number check',
      value: 'INV-4761739001010010',
      rule: 'must not hold a run of 13–19 digits that passes the card-number check (shorten or split the digits)',
    },
    {
      name: 'a trailing no-break space',
      value: 'ORDER-1\u00a0',
      rule: 'must not start or end with spaces',
    },
    { name: 'a number', value: 42, rule: 'must be a string' },
    { name: 'null', value: null, rule: 'must be a string' },
    { name: 'undefined', value: undefined, rule: 'must be a string' },
    { name: 'an object', value: { reference: 'ORDER-1' }, rule: 'must be a string' },
  ])('refuses $name with INVALID_REFERENCE', ({ value, rule }) => {
    const error = thrownBy(() => validateReference(value));
    expect(error.code).toBe('INVALID_REFERENCE');
    expect(error.field).toBe('reference');
    expect(error.rule).toBe(rule);
    expect(error.message.startsWith(`reference: ${rule}`)).toBe(true);
  });

  it('reports the length of an over-long reference', () => {
    const error = thrownBy(() => validateReference('R'.repeat(65)));
    expect(error.message).toBe('reference: must be at most 64 characters (got 65)');
  });

  it('names a custom field', () => {
    const error = thrownBy(() => validateReference('', 'originalReference'));
    expect(error.code).toBe('INVALID_REFERENCE');
    expect(error.field).toBe('originalReference');
    expect(error.message).toBe('originalReference: must not be empty');
  });
});

describe('validatePaymentRequest', () => {
  const base: PaymentRequest = {
    kind: 'sale',
    reference: 'ORDER-1',
    amount: { minor: 2000, currency: 'LKR' },
  };

  it('accepts a sale and fills the default method', () => {
    expect(validatePaymentRequest(base)).toMatchObject({
      method: 'card',
      amount: { minor: 2000, currency: 'LKR' },
    });
    expect(
      validatePaymentRequest({
        ...base,
        receiptEmail: 'customer@gmail.com',
        receiptSms: '0777777777',
        method: 'wallet',
      }),
    ).toMatchObject({ method: 'wallet', receiptEmail: 'customer@gmail.com' });
  });

  const refusals: [string, PaymentRequest, string, string][] = [
    [
      'kind outside the money kinds',
      { ...base, kind: 'status' as PaymentRequest['kind'] },
      'INVALID_INPUT',
      'kind',
    ],
    ['zero amount', { ...base, amount: { minor: 0, currency: 'LKR' } }, 'INVALID_AMOUNT', 'amount'],
    [
      'fractional minor units',
      { ...base, amount: { minor: 1.5, currency: 'LKR' } },
      'INVALID_AMOUNT',
      'amount',
    ],
    [
      'amount past the maximum',
      { ...base, amount: { minor: 1e12, currency: 'LKR' } },
      'INVALID_AMOUNT',
      'amount',
    ],
    [
      'unknown currency',
      { ...base, amount: { minor: 1, currency: 'ABC' } },
      'INVALID_CURRENCY',
      'currency',
    ],
    [
      'unknown method',
      { ...base, method: 'cash' as PaymentRequest['method'] },
      'INVALID_INPUT',
      'method',
    ],
    ['bad e-mail', { ...base, receiptEmail: 'not-an-address' }, 'INVALID_INPUT', 'receiptEmail'],
    [
      'over-long e-mail',
      { ...base, receiptEmail: `${'a'.repeat(250)}@b.co` },
      'INVALID_INPUT',
      'receiptEmail',
    ],
    ['bad phone number', { ...base, receiptSms: '077-CALL-ME' }, 'INVALID_INPUT', 'receiptSms'],
    [
      'bad original reference',
      { ...base, originalReference: 'x\ny' },
      'INVALID_REFERENCE',
      'originalReference',
    ],
  ];
  it.each(refusals)('%s → %s on field %s', (_title, request, code, field) => {
    expect(() => validatePaymentRequest(request)).toThrow(expect.objectContaining({ code, field }));
  });
});
