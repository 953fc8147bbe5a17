import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClaimInput, Owner } from '../../src/core/journal-port.js';
import { MIGRATIONS } from '../../src/journal/migrations.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir } from '../helpers.js';

const owner: Owner = { pid: 1001, token: 'alice' };
const journals: SqliteJournal[] = [];

afterEach(() => {
  for (const journal of journals.splice(0)) journal.close();
});

function input(reference: string): ClaimInput {
  return {
    merchantId: 'm',
    terminalId: 't',
    reference,
    kind: 'sale',
    amountMinor: 2000,
    currency: 'USD',
    method: 'card',
    owner,
  };
}

function claimed(journal: SqliteJournal, reference: string): number {
  const claim = journal.claim(input(reference));
  if (claim.type !== 'claimed') throw new Error('not claimed');
  return claim.row.id;
}

describe('transaction events (migration 6)', () => {
  it('records every state a transaction goes through, by trigger, with the final note', () => {
    const journal = new SqliteJournal({ path: join(tempDir('events-'), 'j.db') });
    journals.push(journal);
    const before = journal.latestEventId();
    const id = claimed(journal, 'E-1');
    journal.markSent(id, owner);
    journal.complete(id, owner, {
      outcome: 'unknown',
      errorCode: 'OUTCOME_UNKNOWN',
      message: 'no answer',
    });
    journal.resolveByHand(id, 'approved', 'the acquirer shows it captured');
    const events = journal.eventsOf(id);
    expect(events.map((e) => e.state)).toEqual(['received', 'sent', 'unknown', 'approved']);
    expect(events[2]?.note).toBe('no answer');
    expect(events[3]?.note).toContain('resolved by hand: the acquirer shows it captured');
    expect(events.every((e, i) => i === 0 || e.at >= (events[i - 1]?.at ?? 0))).toBe(true);
    // The change feed sees them in order, from any process's writes.
    expect(journal.eventsAfter(before, 100).map((e) => [e.transactionId, e.state])).toEqual(
      events.map((e) => [id, e.state]),
    );
    expect(journal.latestEventId()).toBe(events[3]?.id);
    expect(journal.eventsAfter(journal.latestEventId(), 100)).toEqual([]);
  });

  it('a note goes to the timeline under the current state, masked and on one line', () => {
    const journal = new SqliteJournal({ path: join(tempDir('events-'), 'j.db') });
    journals.push(journal);
    const id = claimed(journal, 'E-2');
    journal.complete(id, owner, { outcome: 'declined', message: 'DECLINED' });
    journal.annotate(id, 'the terminal says approved\nfor card 4761739001010010: reconcile');
    expect(journal.get(id)?.state).toBe('declined');
    expect(journal.eventsOf(id).at(-1)).toMatchObject({
      state: 'declined',
      note: 'the terminal says approved for card 476173******0010: reconcile',
    });
  });

  it('a journal from before migration 6 gets what its rows still tell', () => {
    const path = join(tempDir('events-'), 'old.db');
    const db = new Database(path);
    db.exec('PRAGMA foreign_keys = ON');
    for (const [i, sql] of MIGRATIONS.slice(0, 5).entries()) {
      db.exec(sql);
      db.pragma(`user_version = ${i + 1}`);
    }
    db.prepare(
      `INSERT INTO transactions (merchant_id, terminal_id, reference, kind, amount_minor, currency,
         method, state, message, created_at, updated_at, completed_at)
       VALUES ('m', 't', 'OLD-1', 'sale', 100, 'USD', 'card', 'declined', 'DECLINED', 10, 20, 20)`,
    ).run();
    db.close();
    const journal = new SqliteJournal({ path });
    journals.push(journal);
    const row = journal.find({ merchantId: 'm', terminalId: 't', reference: 'OLD-1' });
    expect(journal.eventsOf(row?.id ?? 0).map((e) => [e.state, e.at, e.note])).toEqual([
      ['received', 10, undefined],
      ['declined', 20, 'DECLINED'],
    ]);
  });
});
