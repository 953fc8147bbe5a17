import { describe, expect, it } from 'vitest';
import type { JournalRow } from '../../src/core/journal-port.js';
import { journalRowJson, transactionRowJson } from '../../src/http/transaction-json.js';

const ROW: JournalRow = {
  id: 7,
  publicId: 'tx_abcdefghijklmnopabcdefgh',
  merchantId: 'M',
  terminalId: 'T1',
  reference: 'INV-1',
  attempt: 2,
  kind: 'sale',
  amountMinor: 1023,
  currency: 'EUR',
  method: 'card',
  originalReference: undefined,
  state: 'approved',
  outcome: 'approved',
  errorCode: undefined,
  message: 'card 4111111111111111 read',
  approvalCode: 'A1',
  maskedPan: '411111******1111',
  cardBrand: 'VISA',
  terminalTxId: undefined,
  details: undefined,
  ownerPid: undefined,
  ownerToken: undefined,
  createdAt: Date.UTC(2025, 0, 2, 3, 4, 5),
  updatedAt: Date.UTC(2025, 0, 2, 3, 4, 6),
  completedAt: undefined,
};

describe('a journal row as JSON', () => {
  it('for the dashboard: its public id, every field present, text masked', () => {
    expect(transactionRowJson(ROW)).toEqual({
      id: 'tx_abcdefghijklmnopabcdefgh',
      reference: 'INV-1',
      terminalId: 'T1',
      attempt: 2,
      kind: 'sale',
      amount: '10.23',
      currency: 'EUR',
      state: 'approved',
      outcome: 'approved',
      errorCode: null,
      message: 'card 411111******1111 read',
      maskedPan: '411111******1111',
      cardBrand: 'VISA',
      approvalCode: 'A1',
      terminalTxId: null,
      createdAt: '2025-01-02T03:04:05.000Z',
      completedAt: null,
    });
  });

  it('for operators: the row whole, amount in major units, times as ISO text', () => {
    const json = journalRowJson({ ...ROW, completedAt: Date.UTC(2025, 0, 2, 3, 4, 7) });
    expect(json).toEqual({
      ...ROW,
      amount: '10.23',
      createdAt: '2025-01-02T03:04:05.000Z',
      updatedAt: '2025-01-02T03:04:06.000Z',
      completedAt: '2025-01-02T03:04:07.000Z',
    });
    expect(JSON.parse(JSON.stringify(journalRowJson(ROW)))).not.toHaveProperty('completedAt');
  });
});
