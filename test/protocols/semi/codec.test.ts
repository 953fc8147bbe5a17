import { describe, expect, it } from 'vitest';
import { containsPan } from '../../../src/core/pan.js';
import { SEMI_STATES, SEMI_TRAN_CODES } from '../../../src/protocols/semi/codes.js';
import {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
} from '../../../src/protocols/semi/codec.js';
import { thrownBy } from '../../helpers.js';

describe('SEMI requests', () => {
  it("encode byte-exact as the seed's sample: every value a string, amount in minor units", () => {
    expect(encodeRequest({ code: 'sale', amountMinor: 100 })).toBe(
      '{"TRAN_MODE":"1","TRAN_CODE":"1","AMOUNT":"100"}',
    );
  });

  it('carry the reference, the original transaction and the tip when given', () => {
    expect(
      JSON.parse(
        encodeRequest({
          code: 'tipAdjust',
          mode: 'debit',
          amountMinor: 1000,
          tipMinor: 150,
          merTxnId: 'R-1',
          origTxnId: '77',
        }),
      ),
    ).toEqual({
      TRAN_MODE: '2',
      TRAN_CODE: '6',
      AMOUNT: '1000',
      TIP_AMOUNT: '150',
      MER_TXN_ID: 'R-1',
      ORIG_TXN_ID: '77',
    });
  });

  it('round-trip through the simulator-side decoder for every transaction code', () => {
    for (const code of Object.keys(SEMI_TRAN_CODES) as (keyof typeof SEMI_TRAN_CODES)[]) {
      expect(decodeRequest(encodeRequest({ code, amountMinor: 5, merTxnId: 'X' }))).toEqual({
        code,
        mode: 'credit',
        amountMinor: 5,
        merTxnId: 'X',
      });
    }
  });

  it('refuse amounts that are not minor units', () => {
    expect(thrownBy(() => encodeRequest({ code: 'sale', amountMinor: 1.5 }))).toMatchObject({
      code: 'INVALID_AMOUNT',
      field: 'AMOUNT',
    });
    expect(thrownBy(() => decodeRequest('{"TRAN_CODE":"99"}'))).toMatchObject({
      field: 'TRAN_CODE',
    });
    expect(thrownBy(() => decodeRequest('{"TRAN_CODE":"1","TRAN_MODE":"9"}'))).toMatchObject({
      field: 'TRAN_MODE',
    });
  });
});

describe('SEMI responses', () => {
  const approved = {
    STATE: '0',
    EPI: '2501000001',
    SERIAL_NO: 'V1234',
    MER_TXN_ID: 'ORDER-1',
    TRAN_TYPE: 'SALE',
    CARD_TYPE: 'VISA',
    TXN_ID: '12345',
    AMOUNT: '100',
    TOTAL_AMOUNT: '100',
    MASKED_PAN: '4111 **** **** 1111',
    CODE: 'A1B2C3',
    AUTH_RSP_TEXT: 'APPROVED',
    DATE: '23112026 10:00:00',
  };

  it('decode the fields protocols.md lists', () => {
    expect(decodeResponse(encodeResponse(approved))).toMatchObject({
      state: '0',
      amountMinor: 100,
      totalAmountMinor: 100,
      merTxnId: 'ORDER-1',
      txnId: '12345',
      approvalCode: 'A1B2C3',
      maskedPan: '4111 **** **** 1111',
      cardType: 'VISA',
      message: 'APPROVED',
      fields: { EPI: '2501000001', DATE: '23112026 10:00:00' },
    });
  });

  it('know every STATE of the table', () => {
    for (const state of Object.keys(SEMI_STATES))
      expect(decodeResponse(`{"STATE":"${state}"}`).state).toBe(state);
  });

  it('a full PAN where the masked one belongs is masked at once', () => {
    const decoded = decodeResponse(
      encodeResponse({
        ...approved,
        MASKED_PAN: '4111111111111111',
        ERROR_MSG: 'card 4111 1111 1111 1111',
      }),
    );
    expect(decoded.maskedPan).toBe('411111******1111');
    expect(containsPan(JSON.stringify(decoded))).toBe(false);
  });

  it.each([
    ['not JSON', 'garbage', 'message'],
    ['an array', '[1,2]', 'message'],
    ['missing STATE', '{"AMOUNT":"100"}', 'STATE'],
    ['STATE outside the table', '{"STATE":"7"}', 'STATE'],
    ['AMOUNT not digits', '{"STATE":"0","AMOUNT":"1.00"}', 'AMOUNT'],
    ['TOTAL_AMOUNT negative', '{"STATE":"0","TOTAL_AMOUNT":"-5"}', 'TOTAL_AMOUNT'],
    ['a true/false value', '{"STATE":"0","X":true}', 'X'],
    ['a field over 256 characters', `{"STATE":"0","X":"${'y'.repeat(300)}"}`, 'X'],
  ])('refuse %s with PROTOCOL_ERROR on field %s', (_case, text, field) => {
    expect(thrownBy(() => decodeResponse(text))).toMatchObject({ code: 'PROTOCOL_ERROR', field });
  });

  it('refuse a message over the frame bound with FRAME_TOO_LARGE', () => {
    expect(
      thrownBy(() => decodeResponse(`{"STATE":"0","X":"${'y'.repeat(70_000)}"}`)),
    ).toMatchObject({ code: 'FRAME_TOO_LARGE' });
  });

  // Found by fuzzing (test/fuzz): the field was assigned to a plain object, whose
  // `__proto__` setter ignored it, and the masking then read Object.prototype: a TypeError.
  it('read a field named "__proto__" like any other, in answers and requests', () => {
    const answer = decodeResponse('{"__proto__":"x","STATE":"0","constructor":"y"}');
    expect(answer.state).toBe('0');
    expect(Object.getOwnPropertyDescriptor(answer.fields, '__proto__')?.value).toBe('x');
    expect(answer.fields.constructor).toBe('y');
    expect(Object.getPrototypeOf(answer.fields)).toBe(Object.prototype);
    const request = decodeRequest('{"__proto__":"-0","TRAN_MODE":"1","TRAN_CODE":"1"}');
    expect(request.code).toBe('sale');
    expect(thrownBy(() => decodeRequest('{"__proto__":{},"TRAN_CODE":"1"}'))).toMatchObject({
      code: 'PROTOCOL_ERROR',
      field: '__proto__',
    });
    const nested = decodeResponse('{"__proto__":{},"STATE":"0"}');
    expect(Object.getOwnPropertyDescriptor(nested.fields, '__proto__')).toBeUndefined();
  });

  // The vendor's published approved answer nests its taxes (valorapi.readme.io, "Valor Connect
  // API Sample Responses"): such values are skipped, never kept; the flat fields still count.
  it('an answer with nested objects, arrays or nulls → read, those values skipped', () => {
    const decoded = decodeResponse(
      '{"STATE":"0","AMOUNT":"100","TAXES":{"STATE_TAX":{"RATE":"3.000","AMOUNT":"3"},"TOTAL_TAXES":"3"},"LINES":[{"A":"4111111111111111"}],"CARD_TYPE":null,"TOTAL_AMOUNT":"103"}',
    );
    expect(decoded).toMatchObject({ state: '0', amountMinor: 100, totalAmountMinor: 103 });
    expect(decoded.fields).toEqual({ STATE: '0', AMOUNT: '100', TOTAL_AMOUNT: '103' });
    expect(containsPan(JSON.stringify(decoded))).toBe(false);
  });

  it('a POS request with a nested value → PROTOCOL_ERROR on that field', () => {
    expect(
      thrownBy(() => decodeRequest('{"TRAN_CODE":"1","AMOUNT":"100","X":{"A":"1"}}')),
    ).toMatchObject({ code: 'PROTOCOL_ERROR', field: 'X' });
  });
});
