import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TransactionService } from '../../src/core/transaction-service.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir } from '../helpers.js';

const journal = new SqliteJournal({ path: join(tempDir('options-'), 'ecr-bridge.db') });
afterAll(() => journal.close());

describe('options are validated at construction, naming the option and the rule', () => {
  it.each([
    [{ journal, maxQueue: -1 }, /maxQueue: must be a whole number from 0 to 10000/],
    [{ journal, pollIntervalMs: 0 }, /pollIntervalMs: must be a whole number from 1/],
    [{ journal, lockWaitMs: 1.5 }, /lockWaitMs: must be a whole number/],
    [{ journal, inFlightWaitMs: '10' }, /inFlightWaitMs: must be a whole number/],
    [{ journal, merchantId: '' }, /merchantId: must not be empty/],
    [{ journal, maxQeue: 3 }, /maxQeue: is not an option of TransactionService/],
    [{}, /journal: must be a Journal/],
  ])('%o', (options, message) => {
    expect(() => new TransactionService(options as never)).toThrow(message);
    expect(() => new TransactionService(options as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT' }),
    );
  });

  it('defaults fill what is left out', () => {
    expect(() => new TransactionService({ journal })).not.toThrow();
  });
});
