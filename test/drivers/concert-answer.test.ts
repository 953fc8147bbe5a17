import { describe, expect, it } from 'vitest';
import {
  notOurs,
  terminalTxIdOf,
  toOutcome,
  type ConcertExpected,
} from '../../src/drivers/concert-answer.js';
import {
  decodeAnswer,
  encodeAnswer,
  type ConcertAnswerFields,
} from '../../src/protocols/concert/messages.js';

// What makes a Concert answer ours, and what it means: the pure rules the driver applies to
// every answer frame it ACKed after the terminal took its request (concert-e2e tests the wire).

const EXPECTED: ConcertExpected = {
  posNumber: 1,
  amountMinor: 1000,
  currencyNumeric: '978',
  sentPrivateData: '42',
  delay: 'end',
};

/** An answer as the driver reads it: encoded, then decoded (so the PAN is masked on the way). */
function answer(fields: Partial<ConcertAnswerFields> = {}) {
  return decodeAnswer(
    encodeAnswer({
      posNumber: 1,
      status: 'approved',
      amountMinor: 1000,
      paymentMode: 'card',
      size: 'full',
      report: '4111111111111111',
      currencyNumeric: '978',
      privateData: '0000000042',
      ...fields,
    }),
  );
}

describe('Concert answers: which one is ours', () => {
  it.each([
    ['blank', ''],
    ['the echo of our wire id', '42'],
    ["the terminal's own transaction number", '0000000042'],
    ['any other printable text', 'TX-99 ABC'],
  ])('the private field does not decide: %s is ours', (_what, privateData) => {
    expect(notOurs(answer({ privateData }), EXPECTED)).toBeUndefined();
  });

  it('another POS number, another currency, an approval of another amount (more or less) are not ours', () => {
    expect(notOurs(answer({ posNumber: 2 }), EXPECTED)).toBe('another POS number');
    expect(notOurs(answer({ currencyNumeric: '840' }), EXPECTED)).toBe('another currency');
    expect(notOurs(answer({ amountMinor: 1001 }), EXPECTED)).toBe('approves another amount');
    // Concert V2 has no partial approval: less than asked is someone else's answer too.
    expect(notOurs(answer({ amountMinor: 500 }), EXPECTED)).toBe('approves another amount');
  });

  it("an echo of an earlier request's private data is that request's late answer, not ours; our own echo still is", () => {
    const withEarlier = { ...EXPECTED, earlierPrivateData: new Set(['40', '41']) };
    expect(notOurs(answer({ status: 'refused', privateData: '41' }), withEarlier)).toBe(
      "an earlier request's private data",
    );
    expect(notOurs(answer({ privateData: '42' }), withEarlier)).toBeUndefined();
    expect(notOurs(answer({ privateData: '0000000041' }), withEarlier)).toBeUndefined();
  });

  it('a refusal or a status 9 is ours for our amount or for 0 (no amount), not for another amount', () => {
    for (const status of ['refused', 'not-verified'] as const) {
      expect(notOurs(answer({ status, amountMinor: 1000 }), EXPECTED)).toBeUndefined();
      expect(notOurs(answer({ status, amountMinor: 0 }), EXPECTED)).toBeUndefined();
      expect(notOurs(answer({ status, amountMinor: 2000 }), EXPECTED)).toBe('for another amount');
    }
  });
});

describe("Concert answers: the terminal's transaction id", () => {
  it('the private field, trimmed, when the terminal filled it; blank or our own echo is none', () => {
    expect(terminalTxIdOf(answer({ privateData: '0000000042' }), EXPECTED)).toBe('0000000042');
    expect(terminalTxIdOf(answer({ privateData: '  TX 7' }), EXPECTED)).toBe('TX 7');
    expect(terminalTxIdOf(answer({ privateData: '' }), EXPECTED)).toBeUndefined();
    expect(terminalTxIdOf(answer({ privateData: '42' }), EXPECTED)).toBeUndefined();
  });
});

describe('Concert answers: the outcome', () => {
  it('at the end of the transaction (A010): 0 approved, 7 declined, 9 unknown; each with the masked card and the terminal tx id', () => {
    expect(toOutcome(answer(), EXPECTED)).toMatchObject({
      outcome: 'approved',
      maskedPan: '411111******1111',
      terminalTxId: '0000000042',
      details: { status: 'approved', answerSize: 'full', delay: 'end', amountMinor: 1000 },
    });
    expect(toOutcome(answer({ status: 'refused' }), EXPECTED)).toMatchObject({
      outcome: 'declined',
      terminalTxId: '0000000042',
    });
    expect(toOutcome(answer({ status: 'not-verified' }), EXPECTED)).toMatchObject({
      outcome: 'unknown',
      errorCode: 'OUTCOME_UNKNOWN',
    });
  });

  it('a short answer: the outcome without card data', () => {
    const outcome = toOutcome(answer({ size: 'short' }), EXPECTED);
    expect(outcome).toMatchObject({ outcome: 'approved', details: { answerSize: 'short' } });
    expect(outcome.maskedPan).toBeUndefined();
  });

  it('at once (A011): whatever the status, unknown (the answer came before the card step), the tx id kept', () => {
    const immediate: ConcertExpected = { ...EXPECTED, delay: 'immediate' };
    for (const status of ['approved', 'refused', 'not-verified'] as const) {
      const outcome = toOutcome(answer({ status, report: '' }), immediate);
      expect(outcome).toMatchObject({
        outcome: 'unknown',
        errorCode: 'OUTCOME_UNKNOWN',
        terminalTxId: '0000000042',
        details: { status, delay: 'immediate' },
      });
      expect(outcome.message).toMatch(/A011/);
    }
  });
});
