import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ClaimInput, Journal, JournalRow, Owner } from '../../src/core/journal-port.js';
import { MIGRATIONS } from '../../src/journal/migrations.js';
import { migratePostgres, POSTGRES_MIGRATIONS } from '../../src/journal/postgres-migrations.js';
import { isPublicId, newPublicId } from '../../src/journal/public-id.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir } from '../helpers.js';
import { randomLetters } from './journal-contract.js';
import {
  adminQuery,
  dropSchema,
  freshSchema,
  openPostgres,
  requirePostgres,
  TEST_PG_URL,
} from './postgres-helpers.js';

const alice: Owner = { pid: 1001, token: 'alice' };
const FORM = /^tx_[a-p]{24}$/;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function input(merchantId: string, reference: string): ClaimInput {
  return {
    merchantId,
    terminalId: 't',
    reference,
    kind: 'sale',
    amountMinor: 2000,
    currency: 'EUR',
    method: 'card',
    owner: alice,
  };
}

async function claimed(journal: Journal, merchantId: string, reference: string) {
  const claim = await journal.claim(input(merchantId, reference));
  if (claim.type !== 'claimed') throw new Error(`${reference} was not claimed`);
  return claim.row;
}

/** The same facts of both journals, through the interface. */
function describePublicIds(name: string, open: () => Promise<Journal>): void {
  describe(`public ids: ${name}`, () => {
    it('every claim gets a random id of the form tx_ and 24 letters a–p; getByPublicId finds that row', async () => {
      const journal = await open();
      const merchant = `m${randomLetters(6)}`;
      const rows: JournalRow[] = [];
      for (let i = 0; i < 20; i++) rows.push(await claimed(journal, merchant, `PID-${i}`));
      for (const row of rows) {
        expect(row.publicId).toMatch(FORM);
        expect(await journal.getByPublicId(row.publicId)).toEqual(row);
        expect(await journal.get(row.id)).toEqual(row);
      }
      expect(new Set(rows.map((row) => row.publicId)).size).toBe(rows.length);
      // Rows claimed one after the other: their public ids do not follow the integer ids' order
      // (one chance in 20! that random ids would).
      const byPublicId = [...rows].sort((a, b) => a.publicId.localeCompare(b.publicId));
      expect(byPublicId.map((row) => row.id)).not.toEqual(rows.map((row) => row.id));
    });

    it('each attempt under a reference has its own public id, kept when its state changes', async () => {
      const journal = await open();
      const merchant = `m${randomLetters(6)}`;
      const first = await claimed(journal, merchant, 'PID-A');
      await journal.markSent(first.id, alice);
      const declined = await journal.complete(first.id, alice, { outcome: 'declined' });
      expect(declined.publicId).toBe(first.publicId);
      const second = await claimed(journal, merchant, 'PID-A');
      expect(second.attempt).toBe(2);
      expect(second.publicId).not.toBe(first.publicId);
      expect((await journal.getByPublicId(first.publicId))?.state).toBe('declined');
      expect((await journal.getByPublicId(second.publicId))?.attempt).toBe(2);
    });

    it('an unknown or malformed public id finds nothing', async () => {
      const journal = await open();
      const row = await claimed(journal, `m${randomLetters(6)}`, 'PID-X');
      for (const wrong of [
        newPublicId(),
        String(row.id),
        row.publicId.toUpperCase(),
        `${row.publicId}a`,
        row.publicId.slice(0, -1),
        '',
        "tx_' OR '1'='1",
      ]) {
        expect(await journal.getByPublicId(wrong)).toBeUndefined();
      }
    });
  });
}

/** Rows as an older ecr-bridge left them: states, attempts, no public id. */
const OLD_ROWS = `INSERT INTO transactions (merchant_id, terminal_id, reference, attempt, kind,
    amount_minor, currency, method, state, created_at, updated_at, completed_at)
  VALUES ('m', 't', 'OLD-1', 1, 'sale', 2000, 'EUR', 'card', 'approved', 1, 1, 1),
         ('m', 't', 'OLD-2', 1, 'sale', 2000, 'EUR', 'card', 'declined', 2, 2, 2),
         ('m', 't', 'OLD-2', 2, 'sale', 2000, 'EUR', 'card', 'approved', 3, 3, 3),
         ('other', 't2', 'OLD-3', 1, 'refund', 500, 'EUR', 'card', 'unknown', 4, 4, 4)`;

describePublicIds('SqliteJournal', async () => {
  const journal = new SqliteJournal({ path: join(tempDir('public-ids-'), 'ecr-bridge.db') });
  cleanups.push(() => journal.close());
  return journal;
});

describe('SqliteJournal migration 8', () => {
  it('gives every row of a version-7 journal a public id of the form, unique, and a unique index that refuses a duplicate', () => {
    const path = join(tempDir('public-ids-'), 'v7.db');
    const v7 = new Database(path);
    for (const sql of MIGRATIONS.slice(0, 7)) v7.exec(sql);
    v7.pragma('user_version = 7');
    v7.exec(OLD_ROWS);
    v7.close();

    const journal = new SqliteJournal({ path });
    cleanups.push(() => journal.close());
    const rows = journal.list({ limit: 10 });
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      expect(row.publicId).toMatch(FORM);
      expect(journal.getByPublicId(row.publicId)).toEqual(row);
    }
    expect(new Set(rows.map((row) => row.publicId)).size).toBe(4);
    // New rows go on with ids of the same form.
    const fresh = journal.claim(input('m', 'NEW-1'));
    expect(fresh.type === 'claimed' && isPublicId(fresh.row.publicId)).toBe(true);

    const db = journal.database;
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    const taken = rows[0]?.publicId;
    expect(() =>
      db.prepare('UPDATE transactions SET public_id = ? WHERE id = ?').run(taken, rows[1]?.id),
    ).toThrow(/UNIQUE/);
  });
});

describe('on PostgreSQL', () => {
  const schemas: string[] = [];
  beforeEach(requirePostgres);
  afterEach(async () => {
    for (const schema of schemas.splice(0)) await dropSchema(schema);
  });

  describePublicIds('PostgresJournal', async () => {
    const schema = freshSchema();
    schemas.push(schema);
    const journal = await openPostgres(schema);
    cleanups.push(() => journal.close());
    return journal;
  });

  describe('PostgreSQL migration 3', () => {
    it('gives every row of a version-2 schema a public id of the form, unique; the column is NOT NULL and UNIQUE', async () => {
      const schema = freshSchema();
      schemas.push(schema);
      const client = new pg.Client({
        connectionString: TEST_PG_URL,
        options: `-c search_path=${schema}`,
      });
      await client.connect();
      try {
        await migratePostgres(client, schema, POSTGRES_MIGRATIONS.slice(0, 2));
      } finally {
        await client.end();
      }
      await adminQuery(OLD_ROWS, [], schema);

      const journal = await openPostgres(schema);
      cleanups.push(() => journal.close());
      const rows = await journal.list({ limit: 10 });
      expect(rows).toHaveLength(4);
      for (const row of rows) {
        expect(row.publicId).toMatch(FORM);
        expect(await journal.getByPublicId(row.publicId)).toEqual(row);
      }
      expect(new Set(rows.map((row) => row.publicId)).size).toBe(4);
      const fresh = await journal.claim(input('m', 'NEW-1'));
      expect(fresh.type === 'claimed' && isPublicId(fresh.row.publicId)).toBe(true);

      const [first, second] = rows;
      await expect(
        adminQuery(
          'UPDATE transactions SET public_id = $1 WHERE id = $2',
          [first?.publicId, second?.id],
          schema,
        ),
      ).rejects.toThrow(/transactions_public_id_key/);
      await expect(
        adminQuery('UPDATE transactions SET public_id = NULL WHERE id = $1', [first?.id], schema),
      ).rejects.toThrow(/null value/);
    });
  });
});
