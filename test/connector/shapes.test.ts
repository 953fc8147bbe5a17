import { describe, expect, it } from 'vitest';
import {
  kioskAnswer,
  kioskReceipt,
  kioskTicket,
  MAX_ECHO_BYTES,
  parsePayment,
  receiptPan,
} from '../../src/connector/shapes.js';
import { containsPan } from '../../src/core/pan.js';
import type { TransactionResult } from '../../src/core/transaction.js';
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
      const orderKey = flavour === 'desktop' ? 'order_id' : 'orderId';
      const body = { amount: 1, [orderKey]: 'A-1', [field]: nested(20_000) };
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

  it('a kiosk body (orderId) sent to the desktop API is refused naming orderId: its retries would each be a new payment', () => {
    const error = thrownBy(() =>
      parsePayment('desktop', { amount: 1, orderId: 'Order_12345' }, 'EUR'),
    );
    expect(error).toMatchObject({ code: 'INVALID_INPUT', field: 'orderId' });
    expect(error.message).toContain('CONNECTOR_FLAVOUR=kiosk');
    // With the desktop's own order_id it is a desktop payment; the extra field is ignored.
    expect(
      parsePayment('desktop', { amount: 1, order_id: 'O-1', orderId: 'x' }, 'EUR').reference,
    ).toBe('O-1');
  });
});

/**
 * Seed 003, "Payment Response", the example's `receipt`, copied verbatim: the independent source
 * of the keys and their order (the code's list must agree with it, not with itself).
 */
const SEED_RECEIPT = {
  ticketHeader: '                    ',
  localDate: '030420',
  localTime: '083011',
  acceptor: 'HIPAY                                 92HIPAY             ',
  transactionType: '01',
  contractNumber: '123456',
  SIRET: '12345678901234',
  activity: '5039',
  paymentType: '46',
  siteType: '        ',
  primaryAccountNumber: '123456XXXXXX7890',
  TASA: '2046',
  cardAppExpiry: '221031',
  serviceCode: '   ',
  crypto: '1234567898765434',
  currencyNumCode: '978',
  acceptationSystemNum: '001',
  transactionNumber: '000001',
  transactionFileNumber: '000006',
  readingMode: 'C',
  authorizationNumber: '136967',
  forceCode: ' ',
  amount: '00000899',
  currencyAlphaCode: 'EUR',
  currencyFractionPart: '2',
  counterValueAmount: '00005897',
  counterValueCurrencyAlphaCode: 'FRF',
  counterValueCurrencyFractionPart: '2',
  inclusiveAmount: '00000899',
  ticketFooter: '                                       ',
  AID: 'A0000000041010  ',
  label: 'Mastercard      ',
};
/** Seed 003's example ticket, verbatim. */
const SEED_TICKET =
  'CARTE BANCAIRE|A0000000041010Mastercard|LE 28/11/19 A 11:06:17|HIPAY |92HIPAY |123456 39033123454322345|XXXXXXXXXXXX1234   1234567899765|001 000001 03 C |@|NO AUTO:122603|MONTANT REEL:1,00 EUR|MONTANT ESTIME:8,99 EUR|DEBIT|TICKET CLIENT A CONSERVER||';

/** The seed's own date and time (03/04/20 08:30:11), in local time as the receipt shows it. */
const SEED_TIME = new Date(2020, 3, 3, 8, 30, 11).toISOString();

/** A terminal result of the seed's payment (8.99 EUR, first attempt), as TransactionService gives it. */
const BASE_RESULT = {
  outcome: 'approved',
  reference: 'Order_12345',
  terminalId: 'connector',
  kind: 'sale',
  amount: { minor: 899, currency: 'EUR' },
  state: 'approved',
  attempt: 1,
  replayed: false,
  createdAt: SEED_TIME,
} as const;

function result(fields: Partial<TransactionResult> = {}): TransactionResult {
  return { ...BASE_RESULT, ...fields };
}

const APPROVED = result({
  approvalCode: '136967',
  maskedPan: '476173******0010',
  cardBrand: 'Mastercard',
  terminalTxId: '0000000042',
  details: { status: 'approved', currencyNumeric: '978', amountMinor: 899 },
});

describe('the kiosk receipt (seed 003)', () => {
  it("always carries the seed example's 32 keys, in its order: for an approval and for a decline without card data", () => {
    const seedKeys = Object.keys(SEED_RECEIPT);
    expect(seedKeys).toHaveLength(32);
    const payment = parsePayment('kiosk', { amount: 8.99, orderId: 'Order_12345' }, 'EUR');
    const declined = result({ outcome: 'declined', state: 'declined', details: {} });
    for (const outcome of [APPROVED, declined]) {
      const [answer] = kioskAnswer(payment, outcome, { sent: false, attempts: 0 });
      expect(Object.keys(answer?.receipt ?? {})).toEqual(seedKeys);
      for (const value of Object.values(answer?.receipt ?? {})) expect(typeof value).toBe('string');
    }
  });

  it('takes its values from the terminal result, the PAN masked as the seed shows it, and leaves the rest blank', () => {
    const blank = Object.fromEntries(Object.keys(SEED_RECEIPT).map((key) => [key, '']));
    expect(kioskReceipt(APPROVED)).toEqual({
      ...blank,
      localDate: SEED_RECEIPT.localDate,
      localTime: SEED_RECEIPT.localTime,
      transactionType: '01',
      primaryAccountNumber: '476173XXXXXX0010',
      currencyNumCode: '978',
      transactionNumber: '000042',
      authorizationNumber: '136967',
      amount: '00000899',
      currencyAlphaCode: 'EUR',
      currencyFractionPart: '2',
      label: 'Mastercard',
    });
    // The same shape as the seed's own PAN: 6 digits, 6 X, 4 digits.
    expect(kioskReceipt(APPROVED).primaryAccountNumber).toMatch(/^\d{6}X{6}\d{4}$/);
    expect(SEED_RECEIPT.primaryAccountNumber).toMatch(/^\d{6}X{6}\d{4}$/);
  });

  it('a decline without card data: every key still there, PAN, transaction and approval blank', () => {
    const receipt = kioskReceipt(result({ outcome: 'declined', state: 'declined' }));
    expect(receipt).toMatchObject({
      primaryAccountNumber: '',
      transactionNumber: '',
      authorizationNumber: '',
      amount: '00000899',
    });
  });

  it.each([
    ['0000000042', '000042'],
    ['42', '000042'],
    ['1234567890', '1234567890'],
    ['TX-9', 'TX-9'],
  ])("the terminal's transaction id %s is the receipt's transactionNumber %s", (id, expected) => {
    expect(kioskReceipt(result({ terminalTxId: id })).transactionNumber).toBe(expected);
  });

  it('a partial approval (SEMI) shows the amount charged, not the one asked', () => {
    const partial = result({ details: { partial: true, approvedMinor: 500 } });
    expect(kioskReceipt(partial).amount).toBe('00000500');
    expect(kioskTicket(partial)).toContain('|MONTANT REEL:5,00 EUR|');
  });

  it('never a full PAN: only a masked one becomes the X form, anything else is blank', () => {
    expect(receiptPan('476173******0010')).toBe('476173XXXXXX0010');
    expect(receiptPan('4111 **** **** 1111')).toBe('4111XXXXXXXX1111');
    expect(receiptPan('4761739001010010')).toBe('');
    expect(receiptPan('4761731234******0010')).toBe('');
    expect(receiptPan(undefined)).toBe('');
    const payment = parsePayment('kiosk', { amount: 8.99, orderId: 'P-1' }, 'EUR');
    const answer = kioskAnswer(payment, APPROVED, { sent: true, attempts: 1 });
    expect(containsPan(JSON.stringify(answer))).toBe(false);
  });
});

describe('the kiosk ticket (seed 003)', () => {
  it("follows the seed's line order with the lines the terminal fills, the PAN showing its last 4 digits as the seed's does", () => {
    const lines = kioskTicket(APPROVED).split('|');
    expect(lines).toEqual([
      'CARTE BANCAIRE',
      'Mastercard',
      'LE 03/04/20 A 08:30:11',
      'XXXXXXXXXXXX0010',
      `${' '.repeat(4)}000042${' '.repeat(6)}`,
      'NO AUTO:136967',
      'MONTANT REEL:8,99 EUR',
      'DEBIT',
      'TICKET CLIENT A CONSERVER',
      '',
      '',
    ]);
    // Each line stands where its counterpart stands in the seed's ticket.
    const seed = SEED_TICKET.split('|');
    const position = (pattern: RegExp) => seed.findIndex((line) => pattern.test(line));
    const counterparts = [
      /^CARTE BANCAIRE$/,
      /Mastercard$/,
      /^LE /,
      /^X+\d{4}/,
      /^\d{3} \d{6} /,
      /^NO AUTO:/,
      /^MONTANT REEL:/,
      /^DEBIT$/,
      /^TICKET CLIENT/,
    ].map(position);
    expect(counterparts).toEqual([...counterparts].sort((a, b) => a - b));
    expect(counterparts).not.toContain(-1);
    // The transaction number in the seed's column, the line as wide as the seed's.
    const seedLine = seed[position(/^\d{3} \d{6} /)] as string;
    expect(lines[4]).toHaveLength(seedLine.length);
    expect(lines[4]?.indexOf('000042')).toBe(seedLine.indexOf('000001'));
    expect(SEED_TICKET.endsWith('||')).toBe(true);
  });

  it('a refused payment without card data: no PAN, transaction or approval line; it says so', () => {
    const lines = kioskTicket(result({ outcome: 'declined', state: 'declined' })).split('|');
    expect(lines).toEqual([
      'CARTE BANCAIRE',
      'LE 03/04/20 A 08:30:11',
      'MONTANT REEL:8,99 EUR',
      'DEBIT',
      'TRANSACTION DECLINED',
      '',
      '',
    ]);
  });
});
