import { describe, expect, it } from 'vitest';
import { MAX_ECHO_BYTES, parsePayment } from '../../src/connector/shapes.js';
import { thrownBy } from '../helpers.js';

/**
 * The connectors' body parsing without HTTP (the e2e tests cover it through the server). These
 * are regressions found by fuzzing (test/fuzz): each threw something other than an EcrError, or
 * accepted what it should refuse.
 */

const nested = (depth: number): unknown => JSON.parse('['.repeat(depth) + ']'.repeat(depth));

describe('parsePayment, bodies the fuzzer found', () => {
  it.each([
    ['desktop', 'cart'],
    ['desktop', 'customer'],
    ['kiosk', 'basket'],
    ['kiosk', 'customer'],
  ] as const)(
    '%s: a %s nested 20,000 deep is INVALID_INPUT on that field, not a RangeError',
    (flavour, field) => {
      const body = { amount: 1, orderId: 'A-1', [field]: nested(20_000) };
      const error = thrownBy(() => parsePayment(flavour, body, 'EUR'));
      expect(error).toMatchObject({ code: 'INVALID_INPUT', field });
      expect(error.message).toContain(`${MAX_ECHO_BYTES} bytes`);
      expect(error.message).toContain('nested too deep');
    },
  );

  it('a cart nested a little is still echoed (only what cannot be serialised is refused)', () => {
    const payment = parsePayment('desktop', { amount: 1, customer: nested(100) }, 'EUR');
    expect(payment.customer).toEqual(nested(100));
  });

  it.each(['constructor', '__proto__', 'Constructor'])(
    'transaction_type "%s" is refused, not read from Object.prototype',
    (type) => {
      for (const field of ['transaction_type', 'transation_type']) {
        const error = thrownBy(() => parsePayment('desktop', { amount: 1, [field]: type }, 'EUR'));
        expect(error).toMatchObject({ code: 'INVALID_INPUT', field: 'transaction_type' });
      }
    },
  );

  it('Debit and Credit in any case are still a sale and a refund', () => {
    const kind = (type: string) =>
      parsePayment('desktop', { amount: 1, transaction_type: type }, 'EUR').kind;
    expect([kind('Debit'), kind('CREDIT'), kind('debit')]).toEqual(['sale', 'refund', 'sale']);
  });
});
