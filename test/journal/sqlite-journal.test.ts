import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClaimInput, Owner } from '../../src/core/journal-port.js';
import { MIGRATIONS } from '../../src/journal/migrations.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir } from '../helpers.js';

const alice: Owner = { pid: 1001, token: 'alice' };
const bob: Owner = { pid: 1002, token: 'bob' };
const journals: SqliteJournal[] = [];

afterEach(() => {
  for (const journal of journals.splice(0)) journal.close();
});

function open(path = join(tempDir('journal-'), 'nested', 'ecr-bridge.db')): SqliteJournal {
  const journal = new SqliteJournal({ path });
  journals.push(journal);
  return journal;
}

function input(reference: string, owner: Owner = alice, amountMinor = 2000): ClaimInput {
  return {
    merchantId: 'm',
    terminalId: 't',
    reference,
    kind: 'sale',
    amountMinor,
    currency: 'LKR',
    method: 'card',
    owner,
  };
}

describe('SqliteJournal', () => {
  it('creates its directory and file, in WAL mode with synchronous=FULL, at the latest schema', () => {
    const path = join(tempDir('journal-'), 'a', 'b', 'ecr-bridge.db');
    open(path).close();
    expect(existsSync(path)).toBe(true);
    const db = new Database(path);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    db.close();
    // Re-opening runs no migration twice.
    expect(() => open(path)).not.toThrow();
  });

  it('refuses a journal written by a newer ecr-bridge, with JOURNAL_ERROR', () => {
    const path = join(tempDir('journal-'), 'ecr-bridge.db');
    open(path).close();
    const db = new Database(path);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    expect(() => open(path)).toThrow(expect.objectContaining({ code: 'JOURNAL_ERROR' }));
  });

  it('a new reference is claimed with a fresh wire id; the same key again returns the existing row', () => {
    const journal = open();
    const first = journal.claim(input('R-1'));
    expect(first.type).toBe('claimed');
    const again = journal.claim(input('R-1', bob));
    expect(again).toMatchObject({
      type: 'existing',
      row: { reference: 'R-1', state: 'received', ownerToken: 'alice' },
    });
    const other = journal.claim(input('R-2'));
    expect(
      other.type === 'claimed' && first.type === 'claimed' && other.wireId > first.wireId,
    ).toBe(true);
  });

  it('walks received → sent → outcome, only for the owner', () => {
    const journal = open();
    const claim = journal.claim(input('R-1'));
    if (claim.type !== 'claimed') throw new Error('expected a claim');
    expect(() => journal.markSent(claim.row.id, bob)).toThrow(
      expect.objectContaining({ code: 'JOURNAL_ERROR' }),
    );
    journal.markSent(claim.row.id, alice);
    expect(journal.get(claim.row.id)?.state).toBe('sent');
    expect(() => journal.complete(claim.row.id, bob, { outcome: 'approved' })).toThrow(
      expect.objectContaining({ code: 'JOURNAL_ERROR' }),
    );
    const row = journal.complete(claim.row.id, alice, {
      outcome: 'approved',
      approvalCode: '123456',
      details: { tid: '1' },
    });
    expect(row).toMatchObject({
      state: 'approved',
      outcome: 'approved',
      approvalCode: '123456',
      details: { tid: '1' },
      ownerToken: undefined,
    });
    expect(row.completedAt).toBeTypeOf('number');
    // A final row cannot be completed again.
    expect(() => journal.complete(claim.row.id, alice, { outcome: 'declined' })).toThrow();
  });

  it('a final row that charged something is never claimed again; one that charged nothing gets attempt 2 (invariant 1)', () => {
    const journal = open();
    for (const outcome of ['declined', 'approved', 'unknown', 'cancelled', 'failed'] as const) {
      const claim = journal.claim(input(outcome));
      if (claim.type !== 'claimed') throw new Error('expected a claim');
      journal.complete(claim.row.id, alice, { outcome });
      const again = journal.claim(input(outcome, bob));
      if (outcome === 'approved' || outcome === 'unknown') expect(again.type).toBe('existing');
      else expect(again).toMatchObject({ type: 'claimed', row: { attempt: 2 } });
    }
  });

  it('recovery settles rows of dead owners (received: failed, nothing sent; sent: unknown), and leaves live owners alone', () => {
    const journal = open();
    const a = journal.claim(input('A'));
    const b = journal.claim(input('B'));
    const c = journal.claim(input('C', bob));
    if (a.type !== 'claimed' || b.type !== 'claimed' || c.type !== 'claimed')
      throw new Error('expected claims');
    journal.markSent(b.row.id, alice);
    const recovered = journal.recoverOrphans((owner) => owner.token === 'bob');
    expect(recovered.map((r) => [r.reference, r.state, r.errorCode])).toEqual([
      ['A', 'failed', 'ABORTED'],
      ['B', 'unknown', 'OUTCOME_UNKNOWN'],
    ]);
    expect(recovered[0]?.message).toMatch(/never contacted/);
    expect(recovered[1]?.message).toMatch(/reconcile/);
    expect(journal.get(c.row.id)?.state).toBe('received');
    expect(
      journal
        .list({ unresolved: true })
        .map((r) => r.reference)
        .sort(),
    ).toEqual(['B', 'C']);
    expect(journal.eventsOf(a.row.id).map((e) => e.state)).toEqual(['received', 'failed']);
  });

  it('resolveUnknown settles only unknown rows, with a real outcome', () => {
    const journal = open();
    const claim = journal.claim(input('U-1'));
    if (claim.type !== 'claimed') throw new Error('expected a claim');
    expect(journal.resolveUnknown(claim.row.id, { outcome: 'approved' })).toBeUndefined();
    journal.complete(claim.row.id, alice, { outcome: 'unknown', errorCode: 'OUTCOME_UNKNOWN' });
    expect(journal.resolveUnknown(claim.row.id, { outcome: 'unknown' })).toBeUndefined();
    expect(
      journal.resolveUnknown(claim.row.id, { outcome: 'approved', approvalCode: '1' }),
    ).toMatchObject({
      state: 'approved',
      approvalCode: '1',
      errorCode: undefined,
    });
    expect(journal.resolveUnknown(claim.row.id, { outcome: 'declined' })).toBeUndefined();
    expect(journal.get(claim.row.id)?.state).toBe('approved');
  });

  it('resolveByHand changes only the state and the message, keeping the evidence', () => {
    const journal = open();
    const claim = journal.claim(input('H-1'));
    if (claim.type !== 'claimed') throw new Error('expected a claim');
    expect(journal.resolveByHand(claim.row.id, 'approved', 'too early')).toBeUndefined();
    journal.complete(claim.row.id, alice, {
      outcome: 'unknown',
      errorCode: 'TERMINAL_HOST_UNREACHABLE',
      message: 'host lost',
      terminalTxId: '77',
      details: { status: 'STATUS_API_UNREACHABLE' },
    });
    expect(
      journal.resolveByHand(claim.row.id, 'declined', 'acquirer: no authorisation'),
    ).toMatchObject({
      state: 'declined',
      errorCode: undefined,
      message:
        'resolved by hand: acquirer: no authorisation (was unknown: TERMINAL_HOST_UNREACHABLE: host lost)',
      terminalTxId: '77',
      details: { status: 'STATUS_API_UNREACHABLE' },
    });
    expect(journal.resolveByHand(claim.row.id, 'approved', 'again')).toBeUndefined();
  });

  it('heartbeat refreshes the in-flight rows and locks of its owner only; recovery passes it on', () => {
    let clock = 1_000;
    const path = join(tempDir('journal-'), 'ecr-bridge.db');
    const journal = new SqliteJournal({ path, now: () => clock });
    journals.push(journal);
    const a = journal.claim(input('HB-A'));
    journal.claim(input('HB-B', bob));
    expect(journal.tryLockTerminal('t', alice, () => true)).toBe(true);
    clock = 5_000;
    journal.heartbeat(alice);
    const seen: Owner[] = [];
    journal.recoverOrphans((owner) => {
      seen.push(owner);
      return true;
    });
    expect(seen.map((o) => [o.token, o.heartbeatAt])).toEqual([
      ['alice', 5_000],
      ['bob', 1_000],
    ]);
    const lockSeen: Owner[] = [];
    journal.tryLockTerminal('t', bob, (owner) => {
      lockSeen.push(owner);
      return true;
    });
    expect(lockSeen).toEqual([{ pid: 1001, token: 'alice', heartbeatAt: 5_000 }]);
    expect(a.type).toBe('claimed');
  });

  it('the terminal lock is exclusive between live owners and taken over from dead ones', () => {
    const journal = open();
    const alive = new Set(['alice', 'bob']);
    const isAlive = (owner: Owner): boolean => alive.has(owner.token);
    expect(journal.tryLockTerminal('t', alice, isAlive)).toBe(true);
    expect(journal.tryLockTerminal('t', bob, isAlive)).toBe(false);
    expect(journal.tryLockTerminal('other', bob, isAlive)).toBe(true);
    alive.delete('alice');
    expect(journal.tryLockTerminal('t', bob, isAlive)).toBe(true);
    journal.unlockTerminal('t', bob);
    alive.add('alice');
    expect(journal.tryLockTerminal('t', alice, isAlive)).toBe(true);
  });

  it('the database refuses states and kinds outside the model', () => {
    const path = join(tempDir('journal-'), 'ecr-bridge.db');
    open(path).close();
    const db = new Database(path);
    expect(() =>
      db
        .prepare(
          "INSERT INTO transactions (merchant_id, terminal_id, reference, kind, amount_minor, currency, method, state, created_at, updated_at) VALUES ('m','t','r','sale',1,'LKR','card','charged',0,0)",
        )
        .run(),
    ).toThrow(/CHECK/);
    db.close();
  });

  it('migration 2 upgrades a version-1 journal in place: rows, wire ids and the unique key kept; auth, capture and tip-adjust accepted', () => {
    const path = join(tempDir('journal-'), 'v1.db');
    const v1 = new Database(path);
    v1.exec(MIGRATIONS[0] as string);
    v1.pragma('user_version = 1');
    v1.prepare(
      `INSERT INTO transactions (merchant_id, terminal_id, reference, kind, amount_minor, currency, method,
         state, approval_code, created_at, updated_at, completed_at)
       VALUES ('m', 't', 'OLD-1', 'sale', 2000, 'LKR', 'card', 'approved', '123456', 1, 1, 1)`,
    ).run();
    v1.prepare('INSERT INTO attempts (transaction_id, started_at) VALUES (1, 1)').run();
    v1.prepare('INSERT INTO attempts (transaction_id, started_at) VALUES (1, 2)').run();
    v1.close();

    const journal = open(path);
    expect(journal.find({ merchantId: 'm', terminalId: 't', reference: 'OLD-1' })).toMatchObject({
      state: 'approved',
      approvalCode: '123456',
      amountMinor: 2000,
    });
    expect(journal.claim(input('OLD-1'))).toMatchObject({ type: 'existing' });
    const auth = journal.claim({ ...input('NEW-AUTH'), kind: 'auth' });
    // Wire ids go on from the old attempts: never reused.
    expect(auth).toMatchObject({ type: 'claimed', wireId: 3 });
    expect(
      journal.claim({ ...input('NEW-CAP'), kind: 'capture', originalReference: 'NEW-AUTH' }),
    ).toMatchObject({ type: 'claimed', wireId: 4 });
    expect(
      journal.claim({ ...input('NEW-TIP'), kind: 'tip-adjust', originalReference: 'OLD-1' }),
    ).toMatchObject({ type: 'claimed' });
    journal.close();
    const db = new Database(path);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(db.pragma('foreign_key_check')).toEqual([]);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name LIKE '%_v1'").all()).toEqual([]);
    db.close();
  });

  it('migration 7 upgrades a version-6 journal in place: rows become attempt 1; timelines, notifications and wire ids kept; the triggers still record', () => {
    const path = join(tempDir('journal-'), 'v6.db');
    const v6 = new Database(path);
    v6.pragma('foreign_keys = ON');
    for (const sql of MIGRATIONS.slice(0, 6)) v6.exec(sql);
    v6.pragma('user_version = 6');
    v6.prepare(
      `INSERT INTO transactions (merchant_id, terminal_id, reference, kind, amount_minor, currency, method,
         state, created_at, updated_at)
       VALUES ('m', 't', 'OLD-D', 'sale', 2000, 'LKR', 'card', 'received', 1, 1)`,
    ).run();
    v6.prepare(
      "UPDATE transactions SET state = 'declined', updated_at = 2, completed_at = 2",
    ).run();
    v6.prepare('INSERT INTO attempts (transaction_id, started_at) VALUES (1, 1)').run();
    v6.prepare(
      `INSERT INTO notifications (transaction_id, state, next_attempt_at, idempotency_key, created_at)
       VALUES (1, 'pending', 2, 'ecr-bridge-old', 2)`,
    ).run();
    v6.close();

    const journal = open(path);
    const key = { merchantId: 'm', terminalId: 't', reference: 'OLD-D' };
    expect(journal.attemptsOf(key)).toMatchObject([{ id: 1, attempt: 1, state: 'declined' }]);
    expect(journal.eventsOf(1).map((e) => e.state)).toEqual(['received', 'declined']);
    expect(journal.notificationFor(1)).toMatchObject({ idempotencyKey: 'ecr-bridge-old' });
    // The declined payment is tried again under its reference: attempt 2, the next wire id.
    const again = journal.claim(input('OLD-D'));
    expect(again).toMatchObject({ type: 'claimed', wireId: 2, row: { attempt: 2 } });
    if (again.type !== 'claimed') throw new Error('expected a new attempt');
    journal.markSent(again.row.id, alice);
    journal.complete(again.row.id, alice, { outcome: 'approved' });
    expect(journal.eventsOf(again.row.id).map((e) => e.state)).toEqual([
      'received',
      'sent',
      'approved',
    ]);
    journal.close();
    const db = new Database(path);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(db.pragma('foreign_key_check')).toEqual([]);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name LIKE '%_v7'").all()).toEqual([]);
    db.close();
  });
});
