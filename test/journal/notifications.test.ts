import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Outcome } from '../../src/core/transaction.js';
import {
  MAX_NOTIFICATION_ERROR_LENGTH,
  type ClaimInput,
  type JournalRow,
  type NotificationRow,
  type Owner,
} from '../../src/core/journal-port.js';
import { MIGRATIONS } from '../../src/journal/migrations.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir, thrownBy } from '../helpers.js';

const alice: Owner = { pid: 1001, token: 'alice' };
const journals: SqliteJournal[] = [];
let clock = 1_000_000;

afterEach(() => {
  for (const journal of journals.splice(0)) journal.close();
});

function open(path = join(tempDir('notify-journal-'), 'ecr-bridge.db')): SqliteJournal {
  const journal = new SqliteJournal({ path, now: () => clock });
  journals.push(journal);
  return journal;
}

function input(reference: string): ClaimInput {
  return {
    merchantId: 'm',
    terminalId: 't',
    reference,
    kind: 'sale',
    amountMinor: 1023,
    currency: 'EUR',
    method: 'card',
    owner: alice,
  };
}

/** A transaction walked to `state` the way TransactionService does it. */
function transaction(
  journal: SqliteJournal,
  reference: string,
  state: Outcome | 'received' | 'sent',
): JournalRow {
  const claim = journal.claim(input(reference));
  if (claim.type !== 'claimed') throw new Error('expected a claim');
  if (state === 'received') return claim.row;
  journal.markSent(claim.row.id, alice);
  if (state === 'sent') return journal.get(claim.row.id) as JournalRow;
  return journal.complete(claim.row.id, alice, {
    outcome: state,
    ...(state === 'unknown' ? { errorCode: 'OUTCOME_UNKNOWN' as const } : {}),
  });
}

describe('the notification outbox (migration 3)', () => {
  it('upgrades a version-2 journal in place: rows and wire ids kept, outcomes from before the outbox are never swept (no flood on the first start)', () => {
    const path = join(tempDir('notify-journal-'), 'v2.db');
    const v2 = new Database(path);
    v2.exec(MIGRATIONS[0] as string);
    v2.exec(MIGRATIONS[1] as string);
    v2.pragma('user_version = 2');
    const insert = v2.prepare(
      `INSERT INTO transactions (merchant_id, terminal_id, reference, kind, amount_minor, currency, method,
         state, created_at, updated_at, completed_at)
       VALUES ('m', 't', ?, 'sale', 2000, 'EUR', 'card', ?, 1, 1, 1)`,
    );
    insert.run('OLD-APPROVED', 'approved');
    insert.run('OLD-FAILED', 'failed');
    insert.run('OLD-UNKNOWN', 'unknown');
    v2.prepare('INSERT INTO attempts (transaction_id, started_at) VALUES (1, 1)').run();
    v2.close();

    const journal = open(path);
    const old = journal.find({ merchantId: 'm', terminalId: 't', reference: 'OLD-APPROVED' });
    expect(old).toMatchObject({ state: 'approved', amountMinor: 2000 });
    expect(journal.notificationFor(old?.id ?? 0)).toBeUndefined();
    expect(journal.enqueueMissingNotifications()).toEqual([]);
    expect(journal.claim(input('NEW-1'))).toMatchObject({ type: 'claimed', wireId: 2 });
    journal.close();

    const db = new Database(path);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(db.pragma('foreign_key_check')).toEqual([]);
    expect(db.prepare('SELECT count(*) AS n FROM notifications').get()).toEqual({ n: 0 });
    db.close();
  });

  it('enqueue is idempotent: the same transaction twice gives the same row and key', () => {
    const journal = open();
    const approved = transaction(journal, 'A', 'approved');
    const declined = transaction(journal, 'D', 'declined');
    const first = journal.enqueueNotification(approved.id);
    expect(first).toEqual({
      id: first.id,
      transactionId: approved.id,
      state: 'pending',
      attempts: 0,
      nextAttemptAt: clock,
      lastError: undefined,
      idempotencyKey: expect.stringMatching(/^ecr-bridge-[a-p]{32}$/),
      createdAt: clock,
      sentAt: undefined,
    });
    clock += 5_000;
    expect(journal.enqueueNotification(approved.id)).toEqual(first);
    expect(journal.notificationFor(approved.id)).toEqual(first);
    const other = journal.enqueueNotification(declined.id);
    expect(other.id).not.toBe(first.id);
    expect(other.idempotencyKey).not.toBe(first.idempotencyKey);
    // Already in the outbox: the sweep adds nothing.
    expect(journal.enqueueMissingNotifications()).toEqual([]);
  });

  it('enqueue refuses a transaction that did not happen, or does not exist, and writes nothing', () => {
    const journal = open();
    for (const state of ['failed', 'unknown', 'received', 'sent'] as const) {
      const row = transaction(journal, state, state);
      const error = thrownBy(() => journal.enqueueNotification(row.id));
      expect(error.code).toBe('INVALID_INPUT');
      expect(error.message).toContain(state);
      expect(journal.notificationFor(row.id)).toBeUndefined();
    }
    expect(thrownBy(() => journal.enqueueNotification(999)).code).toBe('NOT_FOUND');
  });

  it('the sweep enqueues approved, declined and cancelled rows without a notification, never failed, unknown, received or sent ones', () => {
    const journal = open();
    const rows = Object.fromEntries(
      (['approved', 'received', 'declined', 'failed', 'sent', 'cancelled', 'unknown'] as const).map(
        (state) => [state, transaction(journal, state, state)],
      ),
    );
    const swept = journal.enqueueMissingNotifications();
    expect(swept.map((n) => n.transactionId)).toEqual([
      rows.approved?.id,
      rows.declined?.id,
      rows.cancelled?.id,
    ]);
    expect(swept.every((n) => n.state === 'pending' && n.attempts === 0)).toBe(true);
    expect(journal.enqueueMissingNotifications()).toEqual([]);
    for (const state of ['failed', 'unknown', 'received', 'sent'])
      expect(journal.notificationFor(rows[state]?.id ?? 0), state).toBeUndefined();

    // After the first sweep, newer rows and rows that were in flight are still found.
    const later = transaction(journal, 'LATER', 'approved');
    journal.complete(rows.sent?.id ?? 0, alice, { outcome: 'approved' });
    journal.complete(rows.received?.id ?? 0, alice, { outcome: 'failed' });
    expect(journal.enqueueMissingNotifications().map((n) => n.transactionId)).toEqual([
      rows.sent?.id,
      later.id,
    ]);
    expect(journal.enqueueMissingNotifications()).toEqual([]);
  });

  it('an unknown row resolved later (late answer, or by hand) is picked up by the next sweep', () => {
    const journal = open();
    const late = transaction(journal, 'LATE', 'unknown');
    const byHand = transaction(journal, 'HAND', 'unknown');
    const stays = transaction(journal, 'STAYS', 'unknown');
    expect(journal.enqueueMissingNotifications()).toEqual([]);
    journal.resolveUnknown(late.id, { outcome: 'approved', approvalCode: '123456' });
    expect(journal.enqueueMissingNotifications().map((n) => n.transactionId)).toEqual([late.id]);
    journal.resolveByHand(byHand.id, 'cancelled', 'customer walked away');
    expect(journal.enqueueMissingNotifications().map((n) => n.transactionId)).toEqual([byHand.id]);
    journal.resolveByHand(stays.id, 'failed', 'never reached the acquirer');
    expect(journal.enqueueMissingNotifications()).toEqual([]);
  });

  it('the sweep finds what another process (another journal on the same file) settled', () => {
    const path = join(tempDir('notify-journal-'), 'ecr-bridge.db');
    const notifier = open(path);
    const other = open(path);
    const pending = transaction(other, 'P', 'sent');
    expect(notifier.enqueueMissingNotifications()).toEqual([]);
    const fresh = transaction(other, 'F', 'declined');
    other.complete(pending.id, alice, { outcome: 'approved' });
    expect(notifier.enqueueMissingNotifications().map((n) => n.transactionId)).toEqual([
      pending.id,
      fresh.id,
    ]);
  });

  it('due notifications: pending ones whose time has come, most overdue first, bounded by the limit', () => {
    const journal = open();
    const start = clock;
    const enqueue = (reference: string): NotificationRow => {
      const notification = journal.enqueueNotification(
        transaction(journal, reference, 'approved').id,
      );
      clock += 10;
      return notification;
    };
    const a = enqueue('A');
    const b = enqueue('B');
    const c = enqueue('C');
    // a waits until start + 100; b is acknowledged; c stays due from start + 20.
    journal.recordNotificationAttempt(a.id, {
      sent: false,
      at: start + 30,
      error: 'HTTP 500',
      nextAttemptAt: start + 100,
    });
    journal.recordNotificationAttempt(b.id, { sent: true, at: start + 30 });
    expect(journal.dueNotifications(start - 1, 10)).toEqual([]);
    expect(journal.dueNotifications(start + 99, 10).map((n) => n.id)).toEqual([c.id]);
    expect(journal.dueNotifications(start + 100, 10).map((n) => n.id)).toEqual([c.id, a.id]);
    expect(journal.dueNotifications(start + 100, 1).map((n) => n.id)).toEqual([c.id]);
    // Equal times: by id.
    clock = start + 100;
    const d = journal.enqueueNotification(transaction(journal, 'D', 'cancelled').id);
    const e = journal.enqueueNotification(transaction(journal, 'E', 'declined').id);
    expect([d.nextAttemptAt, e.nextAttemptAt]).toEqual([start + 100, start + 100]);
    expect(journal.dueNotifications(clock, 10).map((n) => n.id)).toEqual([c.id, a.id, d.id, e.id]);
  });

  it('records attempts: failures count, keep a short masked error and reschedule; an acknowledgement is final', () => {
    const journal = open();
    const row = transaction(journal, 'R', 'approved');
    const queued = journal.enqueueNotification(row.id);
    const failed = journal.recordNotificationAttempt(queued.id, {
      sent: false,
      at: clock,
      error: `ECONNREFUSED\nwhile sending 4111111111111111 ${'x'.repeat(500)}`,
      nextAttemptAt: clock + 2_000,
    });
    expect(failed).toMatchObject({ state: 'pending', attempts: 1, nextAttemptAt: clock + 2_000 });
    expect(failed.lastError).toMatch(/^ECONNREFUSED while sending 411111\*{6}1111 x+$/);
    expect(failed.lastError).toHaveLength(MAX_NOTIFICATION_ERROR_LENGTH);

    const sent = journal.recordNotificationAttempt(queued.id, { sent: true, at: clock + 2_500 });
    expect(sent).toMatchObject({ state: 'sent', attempts: 2, sentAt: clock + 2_500 });
    // The error of the earlier attempt stays as evidence.
    expect(sent.lastError).toBe(failed.lastError);

    // A slower duplicate POST failing afterwards counts, but never reverts the acknowledgement.
    const after = journal.recordNotificationAttempt(queued.id, {
      sent: false,
      at: clock + 3_000,
      error: 'TIMEOUT',
      nextAttemptAt: clock + 9_000,
    });
    expect(after).toMatchObject({
      state: 'sent',
      attempts: 3,
      sentAt: clock + 2_500,
      nextAttemptAt: clock + 2_000,
      lastError: 'TIMEOUT',
    });
    expect(
      journal.recordNotificationAttempt(queued.id, { sent: true, at: clock + 4_000 }),
    ).toMatchObject({ attempts: 4, sentAt: clock + 2_500 });
    expect(journal.dueNotifications(clock + 10_000, 10)).toEqual([]);
    expect(
      thrownBy(() => journal.recordNotificationAttempt(999, { sent: true, at: clock })).code,
    ).toBe('JOURNAL_ERROR');
  });

  it('the database refuses notifications outside the model', () => {
    const path = join(tempDir('notify-journal-'), 'ecr-bridge.db');
    const journal = open(path);
    const row = transaction(journal, 'R', 'approved');
    journal.close();
    const db = new Database(path);
    db.pragma('foreign_keys = ON');
    const insert = db.prepare(
      `INSERT INTO notifications (transaction_id, state, next_attempt_at, idempotency_key, created_at, sent_at)
       VALUES (?, ?, 0, ?, 0, ?)`,
    );
    expect(() => insert.run(row.id, 'delivered', 'k1', null)).toThrow(/CHECK/);
    expect(() => insert.run(row.id, 'sent', 'k2', null)).toThrow(/CHECK/);
    expect(() => insert.run(row.id, 'pending', 'k3', 5)).toThrow(/CHECK/);
    expect(() => insert.run(4242, 'pending', 'k4', null)).toThrow(/FOREIGN KEY/);
    insert.run(row.id, 'pending', 'k5', null);
    expect(() => insert.run(row.id, 'pending', 'k6', null)).toThrow(/UNIQUE/);
    db.close();
  });
});
