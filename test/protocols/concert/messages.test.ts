import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { containsPan } from '../../../src/core/pan.js';
import {
  CONCERT_STATUSES,
  CONCERT_TRANSACTION_TYPES,
} from '../../../src/protocols/concert/codes.js';
import {
  decodeAnswer,
  decodeRequest,
  encodeAnswer,
  encodeRequest,
  type ConcertAnswerFields,
  type ConcertRequest,
} from '../../../src/protocols/concert/messages.js';
import { thrownBy } from '../../helpers.js';

const REQUEST: ConcertRequest = {
  posNumber: 1,
  amountMinor: 1000,
  answer: 'full',
  paymentMode: 'card',
  transactionType: 'debit',
  currencyNumeric: '978',
  privateData: '',
  delay: 'end',
  authorization: 'terminal',
};

const ANSWER: ConcertAnswerFields = {
  posNumber: 1,
  status: 'approved',
  amountMinor: 1000,
  paymentMode: 'card',
  size: 'full',
  report: '4111111111111111',
  currencyNumeric: '978',
  privateData: 'ORDER-1',
};

const SPACES_10 = ' '.repeat(10);
const FULL = '0100000100014111111111111111' + ' '.repeat(39) + '978' + 'ORDER-1   ';
const SHORT = '010000010001978ORDER-1   ';

describe('Concert requests', () => {
  it('encode byte-exact: POS 01, 10.00 EUR debit, full answer, card, A010 B010', () => {
    // 01 · 00001000 · 1 (full) · 1 (card) · 0 (debit) · 978 · 10 spaces · A010 · B010
    const text = encodeRequest(REQUEST);
    expect(text).toBe(`0100001000110978${SPACES_10}A010B010`);
    expect(text).toHaveLength(34);
  });

  it.each([
    [
      { posNumber: 99, amountMinor: 99_999_999, transactionType: 'credit', answer: 'short' },
      `9999999999011978${SPACES_10}A010B010`,
    ],
    [
      { paymentMode: 'cheque', transactionType: 'cancel', delay: 'immediate' },
      `01000010001C2978${SPACES_10}A011B010`,
    ],
    [
      {
        transactionType: 'preauth',
        authorization: 'force',
        privateData: '42',
        currencyNumeric: '756',
      },
      '0100001000114756' + '42        ' + 'A010B011',
    ],
    [{ amountMinor: 0, currencyNumeric: '392' }, `0100000000110392${SPACES_10}A010B010`],
  ] as const)('encode every code of the tables: %j', (change, expected) => {
    const request = { ...REQUEST, ...change };
    expect(encodeRequest(request)).toBe(expected);
    expect(decodeRequest(expected)).toEqual(request);
  });

  it('round-trip for every transaction type', () => {
    for (const transactionType of Object.keys(
      CONCERT_TRANSACTION_TYPES,
    ) as ConcertRequest['transactionType'][]) {
      const request = { ...REQUEST, transactionType, privateData: 'ABC 12' };
      expect(decodeRequest(encodeRequest(request))).toEqual(request);
    }
  });

  it.each([
    ['posNumber', { posNumber: 0 }, 'INVALID_INPUT'],
    ['posNumber', { posNumber: 100 }, 'INVALID_INPUT'],
    ['posNumber', { posNumber: 1.5 }, 'INVALID_INPUT'],
    ['amountMinor', { amountMinor: -1 }, 'INVALID_AMOUNT'],
    ['amountMinor', { amountMinor: 100_000_000 }, 'INVALID_AMOUNT'],
    ['amountMinor', { amountMinor: 10.5 }, 'INVALID_AMOUNT'],
    ['answer', { answer: 'long' }, 'INVALID_INPUT'],
    ['paymentMode', { paymentMode: 'cash' }, 'INVALID_INPUT'],
    ['transactionType', { transactionType: 'sale' }, 'INVALID_INPUT'],
    ['currencyNumeric', { currencyNumeric: '97' }, 'INVALID_CURRENCY'],
    ['currencyNumeric', { currencyNumeric: '999' }, 'INVALID_CURRENCY'],
    ['privateData', { privateData: '12345678901' }, 'INVALID_INPUT'],
    ['privateData', { privateData: 'caf\u00e9' }, 'INVALID_INPUT'],
    ['delay', { delay: 'A010' }, 'INVALID_INPUT'],
    ['authorization', { authorization: 'online' }, 'INVALID_INPUT'],
  ])('encoding refuses a bad %s (%j), naming the field and its rule', (field, change, code) => {
    const error = thrownBy(() => encodeRequest({ ...REQUEST, ...change } as ConcertRequest));
    expect(error).toMatchObject({ code, field });
    expect(error.rule).toMatch(/must be/);
    expect(error.message).toContain(field);
  });

  it.each([
    ['request', `0100001000110978${SPACES_10}A010B01`],
    ['posNumber', `0000001000110978${SPACES_10}A010B010`],
    ['posNumber', `x100001000110978${SPACES_10}A010B010`],
    ['amountMinor', `01000010.0110978${SPACES_10}A010B010`],
    ['answer', `0100001000210978${SPACES_10}A010B010`],
    ['paymentMode', `0100001000120978${SPACES_10}A010B010`],
    ['transactionType', `0100001000113978${SPACES_10}A010B010`],
    ['currencyNumeric', `0100001000110999${SPACES_10}A010B010`],
    ['privateData', `0100001000110978\u0001${' '.repeat(9)}A010B010`],
    ['delay', `0100001000110978${SPACES_10}A012B010`],
    ['authorization', `0100001000110978${SPACES_10}A010C010`],
  ])('decoding (simulator side) refuses a bad %s with PROTOCOL_ERROR', (field, text) => {
    expect(thrownBy(() => decodeRequest(text))).toMatchObject({ code: 'PROTOCOL_ERROR', field });
  });
});

describe('Concert answers', () => {
  it('a full answer encodes to 80 characters byte-exact and decodes with the PAN masked', () => {
    expect(encodeAnswer(ANSWER)).toBe(FULL);
    expect(FULL).toHaveLength(80);
    expect(decodeAnswer(FULL)).toEqual({
      posNumber: 1,
      status: 'approved',
      amountMinor: 1000,
      paymentMode: 'card',
      size: 'full',
      maskedPan: '411111******1111',
      currencyNumeric: '978',
      privateData: 'ORDER-1',
    });
  });

  it('a short answer encodes to 25 characters byte-exact (no report field) and round-trips', () => {
    const { report, ...fields } = { ...ANSWER, size: 'short' as const };
    expect(report).toBeDefined();
    expect(encodeAnswer(fields)).toBe(SHORT);
    expect(SHORT).toHaveLength(25);
    expect(decodeAnswer(SHORT)).toStrictEqual(fields);
  });

  it('a report given for a short answer is left out: the short answer has no such field', () => {
    expect(encodeAnswer({ ...ANSWER, size: 'short' })).toBe(SHORT);
  });

  it('every status of the table round-trips, in both sizes', () => {
    for (const status of Object.keys(CONCERT_STATUSES) as ConcertAnswerFields['status'][]) {
      for (const size of ['full', 'short'] as const) {
        const fields = {
          ...ANSWER,
          status,
          size,
          report: undefined,
          paymentMode: 'cheque' as const,
        };
        expect(decodeAnswer(encodeAnswer(fields))).toMatchObject({
          status,
          size,
          paymentMode: 'cheque',
        });
      }
    }
  });

  it.each([
    ['4111111111111111', { maskedPan: '411111******1111' }],
    ['4761739001010010', { maskedPan: '476173******0010' }],
    ['  4761 7390 0101 0010', { maskedPan: '476173******0010' }],
    ['1234567890123456', { maskedPan: '123456******3456' }], // not Luhn-valid: masked all the same
    ['4111 **** **** 1111', { maskedPan: '4111********1111' }],
    ['XXXXXXXXXXXX0010', { maskedPan: '************0010' }],
    [
      'VISA 4761739001010010 12/28',
      { maskedPan: '476173******0010', report: 'VISA 476173******0010 12/28' },
    ],
    ['REF 00000000000000000000042', { report: 'REF 000000*************0042' }],
    // A card number padded with zeros to the field's width: the iCT250 output in
    // Ousret/pyTeliumManager's README, and its fake terminal's (two spaces, then 37 zeros).
    ['4711690463168807' + '0'.repeat(39), { maskedPan: '471169******8807' }],
    ['4761739001010010' + '0'.repeat(39), { maskedPan: '476173******0010' }],
    ['4111111111111111  ' + '0'.repeat(37), { maskedPan: '411111******1111' }],
    // Zeros alone hold no card number (none starts with 0): long runs are masked all the same.
    ['0'.repeat(55), { report: '000000' + '*'.repeat(45) + '0000' }],
    ['AUTH 123456', { report: 'AUTH 123456' }],
    ['', {}],
  ])('the report %j is read as %j, the clear card number nowhere', (report, expected) => {
    const decoded = decodeAnswer(encodeAnswer({ ...ANSWER, report }));
    const { maskedPan, report: text } = decoded;
    expect({
      ...(maskedPan === undefined ? {} : { maskedPan }),
      ...(text === undefined ? {} : { report: text }),
    }).toEqual(expected);
    expect(containsPan(JSON.stringify(decoded))).toBe(false);
  });

  it('property: whatever card number fills the report, the decoded answer holds it masked only', () => {
    const pan = fc.constantFrom(
      '4111111111111111',
      '4761739001010010',
      '5555555555554444',
      '378282246310005',
    );
    fc.assert(
      fc.property(
        pan,
        fc.string({ maxLength: 20, unit: fc.constantFrom('A', ' ', '/', '-', '1') }),
        (card, noise) => {
          const report = `${noise}${card}`.slice(0, 55);
          const text = JSON.stringify(decodeAnswer(encodeAnswer({ ...ANSWER, report })));
          expect(text).not.toContain(card);
          expect(containsPan(text)).toBe(false);
        },
      ),
    );
  });

  it.each([
    ['answer', FULL.slice(0, 79)],
    ['answer', `${SHORT} `],
    ['posNumber', `00${FULL.slice(2)}`],
    ['status', `015${FULL.slice(3)}`],
    ['amountMinor', `010000010.0${FULL.slice(11)}`],
    ['paymentMode', `01000001000X${FULL.slice(12)}`],
    ['report', `${FULL.slice(0, 20)}\u0007${FULL.slice(21)}`],
    ['currencyNumeric', `${FULL.slice(0, 67)}9A8${FULL.slice(70)}`],
    ['privateData', `${FULL.slice(0, 75)}\u00e9${FULL.slice(76)}`],
    ['currencyNumeric', `${SHORT.slice(0, 12)}000${SHORT.slice(15)}`],
  ])('decoding refuses a bad %s with PROTOCOL_ERROR naming it', (field, text) => {
    const error = thrownBy(() => decodeAnswer(text));
    expect(error).toMatchObject({ code: 'PROTOCOL_ERROR', field });
    expect(error.rule).toBeTruthy();
  });

  it('an answer with a bad field and a PAN in the report: the PAN is in no error message, rule or cause', () => {
    for (const pan of ['4111111111111111', '4761739001010010']) {
      const report = pan.padEnd(55, ' ');
      const bad = [
        `015000010001${report}978ORDER-1   `, // status 5
        `010000010001${report}978ORDER-1\u0001`, // private data
        `010000010001${report}ABCORDER-1   `, // currency
        `010000010001${report}978ORDER-1    `, // 81 characters
        `01000001000Z${report}978ORDER-1   `, // payment mode
      ];
      for (const text of bad) {
        const error = thrownBy(() => decodeAnswer(text));
        const everything = JSON.stringify({
          ...error.toJSON(),
          stack: error.stack,
          cause: String(error.cause),
        });
        expect(everything).not.toContain(pan);
        expect(containsPan(everything)).toBe(false);
      }
    }
  });

  it.each([
    ['report', { report: 'x'.repeat(56) }],
    ['report', { report: 'caf\u00e9' }],
    ['status', { status: 'declined' }],
    ['size', { size: 'medium' }],
    ['posNumber', { posNumber: 0 }],
    ['amountMinor', { amountMinor: -5 }],
  ])('encoding (simulator side) refuses a bad %s', (field, change) => {
    expect(
      thrownBy(() => encodeAnswer({ ...ANSWER, ...change } as ConcertAnswerFields)),
    ).toMatchObject({ field });
  });
});
