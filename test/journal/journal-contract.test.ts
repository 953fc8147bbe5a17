import { join } from 'node:path';
import { beforeEach, describe } from 'vitest';
import type { Journal } from '../../src/core/journal-port.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir } from '../helpers.js';
import { describeJournalContract } from './journal-contract.js';
import { dropSchema, freshSchema, openPostgres, requirePostgres } from './postgres-helpers.js';

describeJournalContract('SqliteJournal', async () => {
  const path = join(tempDir('contract-'), 'ecr-bridge.db');
  const journals = [new SqliteJournal({ path })];
  return {
    journal: journals[0] as Journal,
    openAnother: async () => {
      const other = new SqliteJournal({ path });
      journals.push(other);
      return other;
    },
    close: async () => {
      for (const journal of journals) journal.close();
    },
  };
});

describe('on PostgreSQL', () => {
  beforeEach(requirePostgres);

  // A fresh schema per test, dropped after it: test files (and their tests) never meet.
  describeJournalContract('PostgresJournal', async () => {
    const schema = freshSchema();
    const journals = [await openPostgres(schema)];
    return {
      journal: journals[0] as Journal,
      openAnother: async () => {
        const other = await openPostgres(schema);
        journals.push(other);
        return other;
      },
      close: async () => {
        await Promise.all(journals.map((journal) => journal.close()));
        await dropSchema(schema);
      },
    };
  });
});
