import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EcrError } from '../../src/core/errors.js';
import type { Outcome } from '../../src/core/transaction.js';
import {
  MAX_NOTIFICATION_ERROR_LENGTH,
  type ClaimInput,
  type Journal,
  type JournalRow,
  type Owner,
} from '../../src/core/journal-port.js';

/** A journal to test, and how to let it go. */
export interface ContractSubject {
  readonly journal: Journal;
  /** Another journal on the same store: another process, or another node. */
  readonly openAnother?: () => Promise<Journal>;
  close(): Promise<void>;
}

/** Letters only: no random digit run may look like a card number to the after-suite scan. */
export function randomLetters(length = 12): string {
  return [...randomBytes(length)].map((byte) => String.fromCharCode(97 + (byte % 26))).join('');
}

/** Runs `fn`, expects it to reject with an EcrError, and returns that error. */
export async function rejection(fn: () => unknown): Promise<EcrError> {
  let caught: unknown;
  try {
    await fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(EcrError);
  return caught as EcrError;
}

const alice: Owner = { pid: 1001, token: 'alice' };
const bob: Owner = { pid: 1002, token: 'bob' };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The semantics every Journal keeps, whatever the store (SqliteJournal is the reference): one
 * suite run against each implementation. Each test gets a fresh, empty journal from `open`.
 * Only facts that hold through the interface are checked here; store-specific ones (files, WAL,
 * pools, migrations) live in each implementation's own test file.
 */
export function describeJournalContract(name: string, open: () => Promise<ContractSubject>): void {
  describe(`Journal contract: ${name}`, () => {
    let subject: ContractSubject | undefined;
    let journal: Journal;
    let merchantId: string;

    beforeEach(async () => {
      subject = await open();
      journal = subject.journal;
      merchantId = `m${randomLetters(6)}`;
    });

    afterEach(async () => {
      await subject?.close();
      subject = undefined;
    });

    function input(reference: string, owner: Owner = alice, extra: Partial<ClaimInput> = {}) {
      return {
        merchantId,
        terminalId: 't',
        reference,
        kind: 'sale',
        amountMinor: 2000,
        currency: 'EUR',
        method: 'card',
        owner,
        ...extra,
      } satisfies ClaimInput;
    }

    async function claimed(
      reference: string,
      owner: Owner = alice,
      extra: Partial<ClaimInput> = {},
    ) {
      const claim = await journal.claim(input(reference, owner, extra));
      if (claim.type !== 'claimed') throw new Error(`${reference} was not claimed`);
      return claim;
    }

    /** A transaction walked to `state` the way TransactionService does it. */
    async function transaction(
      reference: string,
      state: Outcome | 'received' | 'sent',
      extra: Partial<ClaimInput> = {},
      on: Journal = journal,
    ): Promise<JournalRow> {
      const claim = await on.claim(input(reference, alice, extra));
      if (claim.type !== 'claimed') throw new Error(`${reference} was not claimed`);
      if (state === 'received') return claim.row;
      await on.markSent(claim.row.id, alice);
      if (state === 'sent') return (await on.get(claim.row.id)) as JournalRow;
      return on.complete(claim.row.id, alice, {
        outcome: state,
        ...(state === 'unknown' ? { errorCode: 'OUTCOME_UNKNOWN' as const } : {}),
      });
    }

    async function another(): Promise<Journal | undefined> {
      return subject?.openAnother === undefined ? undefined : subject.openAnother();
    }

    describe('claims', () => {
      it('a new reference is claimed with a fresh wire id and stored as received, held by its owner', async () => {
        const before = Date.now();
        const claim = await claimed('RA', alice, { kind: 'refund', originalReference: 'RZ' });
        expect(claim.wireId).toBeGreaterThan(0);
        expect(claim.row).toMatchObject({
          merchantId,
          terminalId: 't',
          reference: 'RA',
          kind: 'refund',
          amountMinor: 2000,
          currency: 'EUR',
          method: 'card',
          originalReference: 'RZ',
          state: 'received',
          outcome: undefined,
          errorCode: undefined,
          details: undefined,
          ownerPid: 1001,
          ownerToken: 'alice',
          completedAt: undefined,
        });
        expect(claim.row.createdAt).toBe(claim.row.updatedAt);
        // The store's clock, which may be another machine's: near, not equal.
        expect(Math.abs(claim.row.createdAt - before)).toBeLessThan(60_000);
        expect(await journal.get(claim.row.id)).toEqual(claim.row);
        expect(await journal.find(input('RA'))).toEqual(claim.row);
      });

      it('the same key again returns the existing row as stored, whoever asks and whatever they ask', async () => {
        const first = await claimed('RB');
        const again = await journal.claim(input('RB', bob, { amountMinor: 999, currency: 'USD' }));
        expect(again).toEqual({ type: 'existing', row: first.row });
      });

      it('the key is merchant, terminal and reference: the same reference elsewhere is a new claim', async () => {
        const here = await claimed('RC');
        const otherTerminal = await claimed('RC', alice, { terminalId: 'u' });
        const otherMerchant = await claimed('RC', alice, { merchantId: `${merchantId}x` });
        const ids = [here.row.id, otherTerminal.row.id, otherMerchant.row.id];
        expect(new Set(ids).size).toBe(3);
        expect((await journal.findByReference('RC')).map((r) => r.id)).toEqual(
          [...ids].sort((a, b) => b - a),
        );
        expect(await journal.findByReference('RNONE')).toEqual([]);
      });

      it('wire ids are unique and increasing: one per claim, never reused', async () => {
        const wireIds: number[] = [];
        for (const reference of ['WA', 'WB', 'WC', 'WD', 'WE']) {
          wireIds.push((await claimed(reference)).wireId);
          await journal.claim(input(reference, bob));
        }
        expect(new Set(wireIds).size).toBe(wireIds.length);
        expect([...wireIds].sort((a, b) => a - b)).toEqual(wireIds);
      });

      it('every kind of the model is stored; kinds, currencies and amounts outside it are refused with JOURNAL_ERROR and write nothing', async () => {
        for (const kind of ['sale', 'refund', 'void', 'auth', 'capture', 'tip-adjust'] as const)
          expect((await claimed(`K${kind}`, alice, { kind })).row.kind).toBe(kind);
        const bad = [
          { kind: 'charge' },
          { currency: 'EURO' },
          { amountMinor: -1 },
          { method: 'cash' },
        ] as unknown as Partial<ClaimInput>[];
        for (const [i, extra] of bad.entries()) {
          const error = await rejection(() =>
            journal.claim(input(`BAD${'abcd'[i]}`, alice, extra)),
          );
          expect(error.code).toBe('JOURNAL_ERROR');
          expect(await journal.find(input(`BAD${'abcd'[i]}`))).toBeUndefined();
        }
      });

      it('large amounts and every detail value come back as written', async () => {
        const claim = await claimed('BIG', alice, { amountMinor: 2 ** 50 });
        expect((await journal.get(claim.row.id))?.amountMinor).toBe(2 ** 50);
        const details = { text: 'ünïcode ✓', zero: 0, negative: -12.5, yes: true, no: false };
        const row = await journal.complete(claim.row.id, alice, { outcome: 'approved', details });
        expect(row.details).toEqual(details);
        expect(Object.keys(row.details ?? {})).toEqual(Object.keys(details));
        expect((await journal.get(claim.row.id))?.details).toEqual(details);
      });

      it('claims of one key racing through two journals: exactly one is claimed, all see the same row', async () => {
        const other = (await another()) ?? journal;
        const results = await Promise.all(
          [journal, other, journal, other].map((j, i) =>
            j.claim(input('RACE', i % 2 ? bob : alice)),
          ),
        );
        expect(results.filter((r) => r.type === 'claimed')).toHaveLength(1);
        expect(new Set(results.map((r) => r.row.id)).size).toBe(1);
      });
    });

    describe('the state walk', () => {
      it('received → sent only by the owner, once', async () => {
        const claim = await claimed('SA');
        expect((await rejection(() => journal.markSent(claim.row.id, bob))).code).toBe(
          'JOURNAL_ERROR',
        );
        expect((await journal.get(claim.row.id))?.state).toBe('received');
        await journal.markSent(claim.row.id, alice);
        expect((await journal.get(claim.row.id))?.state).toBe('sent');
        expect((await rejection(() => journal.markSent(claim.row.id, alice))).code).toBe(
          'JOURNAL_ERROR',
        );
        expect((await rejection(() => journal.markSent(987654, alice))).code).toBe('JOURNAL_ERROR');
      });

      it('complete writes the outcome for the owner only and lets the row go', async () => {
        const claim = await claimed('SB');
        await journal.markSent(claim.row.id, alice);
        const refused = await rejection(() =>
          journal.complete(claim.row.id, bob, { outcome: 'approved' }),
        );
        expect(refused.code).toBe('JOURNAL_ERROR');
        const row = await journal.complete(claim.row.id, alice, {
          outcome: 'declined',
          errorCode: 'TERMINAL_REFUSED',
          message: 'DECLINED BY ISSUER',
          approvalCode: 'ABC',
          maskedPan: '411111******1111',
          cardBrand: 'VISA',
          terminalTxId: 'TXA',
          details: { rc: '05' },
        });
        expect(row).toMatchObject({
          state: 'declined',
          outcome: 'declined',
          errorCode: 'TERMINAL_REFUSED',
          message: 'DECLINED BY ISSUER',
          approvalCode: 'ABC',
          maskedPan: '411111******1111',
          cardBrand: 'VISA',
          terminalTxId: 'TXA',
          details: { rc: '05' },
          ownerPid: undefined,
          ownerToken: undefined,
        });
        expect(row.completedAt).toBe(row.updatedAt);
        expect(row.updatedAt).toBeGreaterThanOrEqual(row.createdAt);
        expect(await journal.get(claim.row.id)).toEqual(row);
      });

      it('a final row is never completed again, and a received row may end without being sent', async () => {
        const claim = await claimed('SC');
        const failed = await journal.complete(claim.row.id, alice, {
          outcome: 'failed',
          errorCode: 'TERMINAL_UNREACHABLE',
        });
        expect(failed.state).toBe('failed');
        const again = await rejection(() =>
          journal.complete(claim.row.id, alice, { outcome: 'approved' }),
        );
        expect(again.code).toBe('JOURNAL_ERROR');
        expect((await journal.get(claim.row.id))?.state).toBe('failed');
      });

      it('an approved or unknown latest attempt is never claimed again (invariant 1)', async () => {
        for (const outcome of ['approved', 'unknown'] as const) {
          const row = await transaction(`F${outcome}`, outcome);
          expect(await journal.claim(input(`F${outcome}`, bob))).toEqual({ type: 'existing', row });
        }
        for (const state of ['received', 'sent'] as const) {
          const row = await transaction(`F${state}`, state);
          expect(await journal.claim(input(`F${state}`, bob))).toEqual({ type: 'existing', row });
        }
      });

      it('a latest attempt that charged nothing gives the same request a new attempt, the earlier kept', async () => {
        for (const outcome of ['declined', 'cancelled', 'failed'] as const) {
          const first = await transaction(`N${outcome}`, outcome);
          expect(first.attempt).toBe(1);
          const again = await journal.claim(input(`N${outcome}`, bob));
          if (again.type !== 'claimed') throw new Error(`N${outcome}: expected a new attempt`);
          expect(again.row).toMatchObject({
            reference: `N${outcome}`,
            attempt: 2,
            state: 'received',
          });
          expect(again.row.id).not.toBe(first.id);
          expect(again.row.ownerToken).toBe(bob.token);
          const key = { merchantId, terminalId: 't', reference: `N${outcome}` };
          expect((await journal.find(key))?.id).toBe(again.row.id);
          const attempts = await journal.attemptsOf(key);
          expect(attempts.map((a) => [a.attempt, a.state])).toEqual([
            [1, outcome],
            [2, 'received'],
          ]);
          // A retry while the new attempt is in flight waits for it: no third attempt.
          expect(await journal.claim(input(`N${outcome}`, alice))).toMatchObject({
            type: 'existing',
            row: { id: again.row.id },
          });
        }
      });

      it('a new attempt needs the same kind, amount and currency: anything else gets the latest as it is', async () => {
        const declined = await transaction('NX', 'declined');
        for (const extra of [
          { amountMinor: 2001 },
          { currency: 'USD' },
          { kind: 'auth' as const },
        ]) {
          expect(await journal.claim(input('NX', bob, extra))).toEqual({
            type: 'existing',
            row: declined,
          });
        }
      });

      it('each attempt gets its own wire id, timeline and notification', async () => {
        const first = await transaction('NW', 'declined');
        const second = await journal.claim(input('NW', bob));
        if (second.type !== 'claimed') throw new Error('expected a new attempt');
        expect(await journal.wireIdOf(second.row.id)).toBe(second.wireId);
        expect(await journal.wireIdOf(first.id)).toBeLessThan(second.wireId);
        expect(await journal.wireIdOf(987_654_321)).toBeUndefined();
        await journal.markSent(second.row.id, bob);
        await journal.complete(second.row.id, bob, { outcome: 'approved' });
        expect((await journal.eventsOf(first.id)).map((e) => e.state)).toEqual([
          'received',
          'sent',
          'declined',
        ]);
        expect((await journal.eventsOf(second.row.id)).map((e) => e.state)).toEqual([
          'received',
          'sent',
          'approved',
        ]);
        const notified = await journal.enqueueMissingNotifications();
        expect(notified.map((n) => n.transactionId)).toEqual(
          expect.arrayContaining([first.id, second.row.id]),
        );
      });

      it('claims for the next attempt racing through two journals: exactly one wins', async () => {
        await transaction('NR', 'declined');
        const other = (await another()) ?? journal;
        const results = await Promise.all(
          [journal, other, journal, other].map((j, i) => j.claim(input('NR', i % 2 ? bob : alice))),
        );
        expect(results.filter((r) => r.type === 'claimed')).toHaveLength(1);
        expect(new Set(results.map((r) => r.row.id)).size).toBe(1);
        const key = { merchantId, terminalId: 't', reference: 'NR' };
        expect((await journal.attemptsOf(key)).map((a) => a.attempt)).toEqual([1, 2]);
      });

      it('resolveUnknown settles only unknown rows, with a real outcome, once', async () => {
        const claim = await claimed('UA');
        expect(await journal.resolveUnknown(claim.row.id, { outcome: 'approved' })).toBeUndefined();
        await journal.complete(claim.row.id, alice, {
          outcome: 'unknown',
          errorCode: 'OUTCOME_UNKNOWN',
          message: 'no answer',
        });
        expect(await journal.resolveUnknown(claim.row.id, { outcome: 'unknown' })).toBeUndefined();
        const settled = await journal.resolveUnknown(claim.row.id, {
          outcome: 'approved',
          approvalCode: 'ONE',
          details: { late: true },
        });
        expect(settled).toMatchObject({
          state: 'approved',
          approvalCode: 'ONE',
          errorCode: undefined,
          message: undefined,
          details: { late: true },
        });
        expect(await journal.resolveUnknown(claim.row.id, { outcome: 'declined' })).toBeUndefined();
        expect(await journal.resolveUnknown(987654, { outcome: 'declined' })).toBeUndefined();
        expect(await journal.get(claim.row.id)).toEqual(settled);
      });

      it('resolveByHand changes only the state and the message, keeping the evidence', async () => {
        const claim = await claimed('HA');
        expect(await journal.resolveByHand(claim.row.id, 'approved', 'too early')).toBeUndefined();
        await journal.complete(claim.row.id, alice, {
          outcome: 'unknown',
          errorCode: 'TERMINAL_HOST_UNREACHABLE',
          message: 'host lost',
          terminalTxId: 'TSEVEN',
          details: { status: 'STATUS_API_UNREACHABLE' },
        });
        const resolved = await journal.resolveByHand(
          claim.row.id,
          'declined',
          'acquirer: no authorisation',
        );
        expect(resolved).toMatchObject({
          state: 'declined',
          errorCode: undefined,
          message:
            'resolved by hand: acquirer: no authorisation (was unknown: TERMINAL_HOST_UNREACHABLE: host lost)',
          terminalTxId: 'TSEVEN',
          details: { status: 'STATUS_API_UNREACHABLE' },
        });
        expect(await journal.resolveByHand(claim.row.id, 'approved', 'again')).toBeUndefined();

        // Without an error code or a message, the parentheses say only what was known.
        const bare = await transaction('HB', 'unknown');
        expect((await journal.resolveByHand(bare.id, 'failed', 'never sent'))?.message).toBe(
          'resolved by hand: never sent (was unknown: OUTCOME_UNKNOWN)',
        );
      });

      it('unknown ids and keys find nothing', async () => {
        expect(await journal.get(987654)).toBeUndefined();
        expect(await journal.find(input('NOPE'))).toBeUndefined();
        expect(await journal.list()).toEqual([]);
      });
    });

    describe('recovery, heartbeats and terminal locks', () => {
      it('rows of dead owners, received or sent, become unknown; live owners and final rows are left alone', async () => {
        const a = await claimed('OA');
        const b = await claimed('OB');
        const c = await claimed('OC', bob);
        const done = await transaction('OD', 'approved');
        await journal.markSent(b.row.id, alice);
        const seen: Owner[] = [];
        const recovered = await journal.recoverOrphans((owner) => {
          seen.push(owner);
          return owner.token === 'bob';
        });
        expect(recovered.map((r) => [r.reference, r.state, r.errorCode, r.ownerToken])).toEqual([
          ['OA', 'failed', 'ABORTED', undefined],
          ['OB', 'unknown', 'OUTCOME_UNKNOWN', undefined],
        ]);
        expect(recovered[0]?.message).toMatch(/never contacted/);
        expect(recovered[1]?.message).toMatch(/reconcile/);
        expect(recovered[0]?.completedAt).toBeTypeOf('number');
        expect(seen.map((o) => [o.pid, o.token, typeof o.heartbeatAt]).sort()).toEqual([
          [1001, 'alice', 'number'],
          [1001, 'alice', 'number'],
          [1002, 'bob', 'number'],
        ]);
        expect(await journal.get(c.row.id)).toEqual(c.row);
        expect(await journal.get(done.id)).toEqual(done);
        expect(await journal.get(a.row.id)).toEqual(recovered[0]);
        // Recovered rows are final: the owner can no longer write to them.
        const late = await rejection(() =>
          journal.complete(a.row.id, alice, { outcome: 'approved' }),
        );
        expect(late.code).toBe('JOURNAL_ERROR');
        expect(await journal.recoverOrphans(() => false)).toHaveLength(1);
        expect(await journal.recoverOrphans(() => false)).toEqual([]);
      });

      it('heartbeat refreshes the in-flight rows and locks of its owner only; isAlive sees the ages', async () => {
        await claimed('HBA');
        await claimed('HBB', bob);
        expect(await journal.tryLockTerminal('t', alice, () => true)).toBe(true);
        expect(await journal.tryLockTerminal('u', bob, () => true)).toBe(true);
        // Ages, not timestamps: the store's clock may be another machine's. Bob's heartbeat is
        // a second older than Alice's, however slow this machine is.
        await sleep(1_000);
        await journal.heartbeat(alice);
        const rowAges = new Map<string, number>();
        await journal.recoverOrphans((owner) => {
          rowAges.set(owner.token, Date.now() - (owner.heartbeatAt ?? Number.NaN));
          return true;
        });
        expect([...rowAges.keys()].sort()).toEqual(['alice', 'bob']);
        expect((rowAges.get('bob') ?? 0) - (rowAges.get('alice') ?? 0)).toBeGreaterThan(900);
        const lockAges = new Map<string, number>();
        for (const terminal of ['t', 'u']) {
          await journal.tryLockTerminal(terminal, { pid: 3, token: 'carol' }, (owner) => {
            lockAges.set(owner.token, Date.now() - (owner.heartbeatAt ?? Number.NaN));
            return true;
          });
        }
        expect([...lockAges.keys()].sort()).toEqual(['alice', 'bob']);
        expect((lockAges.get('bob') ?? 0) - (lockAges.get('alice') ?? 0)).toBeGreaterThan(900);
      });

      it('the terminal lock is exclusive between live owners and taken over from dead ones', async () => {
        const alive = new Set(['alice', 'bob']);
        const isAlive = (owner: Owner): boolean => alive.has(owner.token);
        expect(await journal.tryLockTerminal('t', alice, isAlive)).toBe(true);
        expect(await journal.tryLockTerminal('t', alice, isAlive)).toBe(true);
        expect(await journal.tryLockTerminal('t', bob, isAlive)).toBe(false);
        expect(await journal.tryLockTerminal('u', bob, isAlive)).toBe(true);
        // Only the holder can unlock.
        await journal.unlockTerminal('t', bob);
        expect(await journal.tryLockTerminal('t', bob, isAlive)).toBe(false);
        alive.delete('alice');
        const holders: Owner[] = [];
        expect(
          await journal.tryLockTerminal('t', bob, (owner) => {
            holders.push(owner);
            return isAlive(owner);
          }),
        ).toBe(true);
        expect(holders.map((o) => [o.pid, o.token])).toEqual([[1001, 'alice']]);
        await journal.unlockTerminal('t', bob);
        alive.add('alice');
        expect(await journal.tryLockTerminal('t', alice, isAlive)).toBe(true);
      });

      it('racing for one free terminal through two journals: exactly one wins', async () => {
        const other = (await another()) ?? journal;
        const results = await Promise.all(
          [journal, other, journal, other].map((j, i) =>
            j.tryLockTerminal('race', { pid: 10 + i, token: `owner${'abcd'[i]}` }, () => true),
          ),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
      });

      it('housekeeping drops the locks of dead owners only, and touches no transaction', async () => {
        const row = await claimed('KA');
        expect(await journal.tryLockTerminal('t', alice, () => true)).toBe(true);
        expect(await journal.tryLockTerminal('u', bob, () => true)).toBe(true);
        expect(await journal.tryLockTerminal('v', bob, () => true)).toBe(true);
        const result = await journal.housekeeping((owner) => owner.token === 'alice');
        expect(result).toEqual({ checkpointed: true, locksRemoved: 2 });
        expect(await journal.housekeeping(() => true)).toEqual({
          checkpointed: true,
          locksRemoved: 0,
        });
        // Alice's lock stayed: Carol cannot take it from a live owner; Bob's are free.
        const carol = { pid: 3, token: 'carol' };
        expect(await journal.tryLockTerminal('t', carol, () => true)).toBe(false);
        expect(await journal.tryLockTerminal('u', carol, () => true)).toBe(true);
        expect(await journal.get(row.row.id)).toEqual(row.row);
      });
    });

    describe('reading', () => {
      it('list filters by unresolved, terminal, merchant and state, newest first, bounded', async () => {
        const approved = await transaction('LA', 'approved');
        const unknown = await transaction('LB', 'unknown');
        const sent = await transaction('LC', 'sent', { terminalId: 'u' });
        const failed = await transaction('LD', 'failed');
        const elsewhere = await transaction('LE', 'received', { merchantId: `${merchantId}x` });
        const ids = async (filter: Parameters<Journal['list']>[0]) =>
          (await journal.list(filter)).map((r) => r.id);
        expect(await ids(undefined)).toEqual(
          [approved, unknown, sent, failed, elsewhere].map((r) => r.id).reverse(),
        );
        expect(await ids({ unresolved: true })).toEqual([elsewhere.id, sent.id, unknown.id]);
        expect(await ids({ terminalId: 'u' })).toEqual([sent.id]);
        expect(await ids({ merchantId })).toEqual([failed.id, sent.id, unknown.id, approved.id]);
        expect(await ids({ state: 'failed' })).toEqual([failed.id]);
        expect(await ids({ merchantId, unresolved: true, terminalId: 't' })).toEqual([unknown.id]);
        expect(await ids({ limit: 2 })).toEqual([elsewhere.id, failed.id]);
        expect(await ids({ state: 'cancelled' })).toEqual([]);
      });

      it('latestSentBefore: the newest earlier row of the terminal that may have reached it', async () => {
        const approved = await transaction('PA', 'approved');
        const unknown = await transaction('PB', 'unknown');
        await transaction('PC', 'failed');
        await transaction('PD', 'received');
        await transaction('PE', 'sent', { terminalId: 'u' });
        const current = await transaction('PF', 'received');
        expect((await journal.latestSentBefore(merchantId, 't', current.id))?.id).toBe(unknown.id);
        expect((await journal.latestSentBefore(merchantId, 't', unknown.id))?.id).toBe(approved.id);
        expect(await journal.latestSentBefore(merchantId, 't', approved.id)).toBeUndefined();
        expect(await journal.latestSentBefore(`${merchantId}x`, 't', current.id)).toBeUndefined();
      });

      it('followUpsOf: the rows of one terminal naming an original reference, oldest first', async () => {
        await transaction('GA', 'approved', { kind: 'auth' });
        const capture = await transaction('GB', 'approved', {
          kind: 'capture',
          originalReference: 'GA',
        });
        const tip = await transaction('GC', 'sent', {
          kind: 'tip-adjust',
          originalReference: 'GA',
        });
        await transaction('GD', 'approved', {
          kind: 'void',
          originalReference: 'GA',
          terminalId: 'u',
        });
        await transaction('GE', 'approved', { kind: 'refund', originalReference: 'GZ' });
        expect((await journal.followUpsOf(merchantId, 't', 'GA')).map((r) => r.id)).toEqual([
          capture.id,
          tip.id,
        ]);
        expect(await journal.followUpsOf(merchantId, 't', 'GB')).toEqual([]);
      });
    });

    describe('the notification outbox', () => {
      it('enqueue is idempotent: the same transaction twice gives the same row and key', async () => {
        const approved = await transaction('NA', 'approved');
        const declined = await transaction('ND', 'declined');
        const before = Date.now();
        const first = await journal.enqueueNotification(approved.id);
        expect(first).toEqual({
          id: first.id,
          transactionId: approved.id,
          state: 'pending',
          attempts: 0,
          nextAttemptAt: expect.any(Number),
          lastError: undefined,
          idempotencyKey: expect.stringMatching(/^ecr-bridge-[a-p]{32}$/),
          createdAt: expect.any(Number),
          sentAt: undefined,
        });
        // Due at once.
        expect(first.nextAttemptAt).toBeLessThanOrEqual(Date.now());
        expect(first.nextAttemptAt).toBeGreaterThan(before - 60_000);
        expect(await journal.enqueueNotification(approved.id)).toEqual(first);
        expect(await journal.notificationFor(approved.id)).toEqual(first);
        const other = await journal.enqueueNotification(declined.id);
        expect(other.id).not.toBe(first.id);
        expect(other.idempotencyKey).not.toBe(first.idempotencyKey);
        expect(await journal.enqueueMissingNotifications()).toEqual([]);
      });

      it('enqueue refuses a transaction that did not happen, or does not exist, and writes nothing', async () => {
        for (const state of ['failed', 'unknown', 'received', 'sent'] as const) {
          const row = await transaction(`E${state}`, state);
          const error = await rejection(() => journal.enqueueNotification(row.id));
          expect(error.code).toBe('INVALID_INPUT');
          expect(error.field).toBe('transactionId');
          expect(error.message).toContain(state);
          expect(await journal.notificationFor(row.id)).toBeUndefined();
        }
        expect((await rejection(() => journal.enqueueNotification(987654))).code).toBe('NOT_FOUND');
        expect(await journal.notificationFor(987654)).toBeUndefined();
      });

      it('the sweep enqueues what happened without a notification, never failed, unknown or in-flight rows, and keeps finding what settles later', async () => {
        const states = [
          'approved',
          'received',
          'declined',
          'failed',
          'sent',
          'cancelled',
          'unknown',
        ] as const;
        const rows: Record<string, JournalRow> = {};
        for (const state of states) rows[state] = await transaction(`W${state}`, state);
        const swept = await journal.enqueueMissingNotifications();
        expect(swept.map((n) => n.transactionId)).toEqual([
          rows.approved?.id,
          rows.declined?.id,
          rows.cancelled?.id,
        ]);
        expect(swept.every((n) => n.state === 'pending' && n.attempts === 0)).toBe(true);
        expect(await journal.enqueueMissingNotifications()).toEqual([]);
        for (const state of ['failed', 'unknown', 'received', 'sent'])
          expect(await journal.notificationFor(rows[state]?.id ?? 0), state).toBeUndefined();

        const later = await transaction('WLATER', 'approved');
        await journal.complete(rows.sent?.id ?? 0, alice, { outcome: 'approved' });
        await journal.complete(rows.received?.id ?? 0, alice, { outcome: 'failed' });
        expect((await journal.enqueueMissingNotifications()).map((n) => n.transactionId)).toEqual([
          rows.sent?.id,
          later.id,
        ]);
        expect(await journal.enqueueMissingNotifications()).toEqual([]);
      });

      it('an unknown row resolved later (late answer, or by hand) is picked up by the next sweep', async () => {
        const late = await transaction('ULATE', 'unknown');
        const byHand = await transaction('UHAND', 'unknown');
        const stays = await transaction('USTAYS', 'unknown');
        expect(await journal.enqueueMissingNotifications()).toEqual([]);
        await journal.resolveUnknown(late.id, { outcome: 'approved', approvalCode: 'XYZ' });
        expect((await journal.enqueueMissingNotifications()).map((n) => n.transactionId)).toEqual([
          late.id,
        ]);
        await journal.resolveByHand(byHand.id, 'cancelled', 'customer walked away');
        expect((await journal.enqueueMissingNotifications()).map((n) => n.transactionId)).toEqual([
          byHand.id,
        ]);
        await journal.resolveByHand(stays.id, 'failed', 'never reached the acquirer');
        expect(await journal.enqueueMissingNotifications()).toEqual([]);
      });

      it('the sweep finds what another journal on the same store settled', async () => {
        const other = await another();
        if (other === undefined) return;
        const pending = await transaction('XP', 'sent', {}, other);
        expect(await journal.enqueueMissingNotifications()).toEqual([]);
        const fresh = await transaction('XF', 'declined', {}, other);
        await other.complete(pending.id, alice, { outcome: 'approved' });
        expect((await journal.enqueueMissingNotifications()).map((n) => n.transactionId)).toEqual([
          pending.id,
          fresh.id,
        ]);
        // Both journals see the same outbox.
        expect(await other.notificationFor(fresh.id)).toEqual(
          await journal.notificationFor(fresh.id),
        );
      });

      it('due notifications: pending ones whose time has come, most overdue first, ties by id, bounded', async () => {
        const base = Date.now() + 1_000_000;
        const enqueue = async (reference: string) =>
          journal.enqueueNotification((await transaction(reference, 'approved')).id);
        const [a, b, c, d, e] = [
          await enqueue('DA'),
          await enqueue('DB'),
          await enqueue('DC'),
          await enqueue('DD'),
          await enqueue('DE'),
        ];
        const fresh = await enqueue('DF');
        const reschedule = (id: number, at: number) =>
          journal.recordNotificationAttempt(id, {
            sent: false,
            at: Date.now(),
            error: 'HTTP 500',
            nextAttemptAt: at,
          });
        await reschedule(a.id, base + 300);
        await journal.recordNotificationAttempt(b.id, { sent: true, at: Date.now() });
        await reschedule(c.id, base + 100);
        await reschedule(d.id, base + 100);
        await reschedule(e.id, base + 200);
        const due = async (now: number, limit = 10) =>
          (await journal.dueNotifications(now, limit)).map((n) => n.id);
        expect(await due(fresh.nextAttemptAt - 1)).toEqual([]);
        expect(await due(base + 99)).toEqual([fresh.id]);
        expect(await due(base + 100)).toEqual([fresh.id, c.id, d.id]);
        expect(await due(base + 250)).toEqual([fresh.id, c.id, d.id, e.id]);
        expect(await due(base + 1_000, 2)).toEqual([fresh.id, c.id]);
        expect(await due(base + 1_000)).toEqual([fresh.id, c.id, d.id, e.id, a.id]);
      });

      it('records attempts: failures count, keep a short masked error and reschedule; an acknowledgement is final', async () => {
        const row = await transaction('RR', 'approved');
        const queued = await journal.enqueueNotification(row.id);
        const now = Date.now();
        const failed = await journal.recordNotificationAttempt(queued.id, {
          sent: false,
          at: now,
          error: `ECONNREFUSED\nwhile sending 4111111111111111 ${'x'.repeat(500)}`,
          nextAttemptAt: now + 2_000,
        });
        expect(failed).toMatchObject({ state: 'pending', attempts: 1, nextAttemptAt: now + 2_000 });
        expect(failed.lastError).toMatch(/^ECONNREFUSED while sending 411111\*{6}1111 x+$/);
        expect(failed.lastError).toHaveLength(MAX_NOTIFICATION_ERROR_LENGTH);

        const sent = await journal.recordNotificationAttempt(queued.id, {
          sent: true,
          at: now + 2_500,
        });
        expect(sent).toMatchObject({ state: 'sent', attempts: 2, sentAt: now + 2_500 });
        expect(sent.lastError).toBe(failed.lastError);

        const after = await journal.recordNotificationAttempt(queued.id, {
          sent: false,
          at: now + 3_000,
          error: 'TIMEOUT',
          nextAttemptAt: now + 9_000,
        });
        expect(after).toMatchObject({
          state: 'sent',
          attempts: 3,
          sentAt: now + 2_500,
          nextAttemptAt: now + 2_000,
          lastError: 'TIMEOUT',
        });
        expect(
          await journal.recordNotificationAttempt(queued.id, { sent: true, at: now + 4_000 }),
        ).toMatchObject({ attempts: 4, sentAt: now + 2_500 });
        expect(await journal.dueNotifications(now + 10_000, 10)).toEqual([]);
        expect(await journal.notificationFor(row.id)).toMatchObject({ attempts: 4, state: 'sent' });
        const missing = await rejection(() =>
          journal.recordNotificationAttempt(987654, { sent: true, at: now }),
        );
        expect(missing.code).toBe('JOURNAL_ERROR');
      });
    });

    describe('events', () => {
      it('every state a transaction goes through is recorded, with the note of final states', async () => {
        const before = await journal.latestEventId();
        const claim = await claimed('VA');
        const id = claim.row.id;
        await journal.markSent(id, alice);
        await journal.complete(id, alice, {
          outcome: 'unknown',
          errorCode: 'OUTCOME_UNKNOWN',
          message: 'no answer',
        });
        await journal.resolveByHand(id, 'approved', 'the acquirer shows it captured');
        const events = await journal.eventsOf(id);
        expect(events.map((e) => [e.transactionId, e.state])).toEqual([
          [id, 'received'],
          [id, 'sent'],
          [id, 'unknown'],
          [id, 'approved'],
        ]);
        expect(events.map((e) => e.note)).toEqual([
          undefined,
          undefined,
          'no answer',
          'resolved by hand: the acquirer shows it captured (was unknown: OUTCOME_UNKNOWN: no answer)',
        ]);
        expect(events[0]?.at).toBe(claim.row.createdAt);
        expect(events.every((e, i) => i === 0 || e.at >= (events[i - 1]?.at ?? 0))).toBe(true);
        expect(await journal.eventsAfter(before, 100)).toEqual(events);
        expect(await journal.latestEventId()).toBe(events[3]?.id);
        expect(await journal.eventsAfter(await journal.latestEventId(), 100)).toEqual([]);
        expect(await journal.eventsAfter(before, 2)).toEqual(events.slice(0, 2));
        expect(await journal.eventsOf(987654)).toEqual([]);
      });

      it('heartbeats and refused writes record nothing; recovery records its settlement with its reason', async () => {
        const claim = await claimed('VB');
        const latest = await journal.latestEventId();
        await journal.heartbeat(alice);
        await rejection(() => journal.markSent(claim.row.id, bob));
        await journal.claim(input('VB', bob));
        expect(await journal.latestEventId()).toBe(latest);
        await journal.recoverOrphans(() => false);
        expect((await journal.eventsAfter(latest, 10)).map((e) => [e.state, e.note])).toEqual([
          ['failed', 'interrupted before the request was sent: the terminal was never contacted'],
        ]);
      });

      it('a note goes to the timeline under the current state, masked and on one line', async () => {
        const row = await transaction('VC', 'declined');
        await journal.annotate(
          row.id,
          'the terminal says approved\nfor card 4761739001010010: reconcile',
        );
        expect(await journal.get(row.id)).toEqual(row);
        expect((await journal.eventsOf(row.id)).at(-1)).toMatchObject({
          state: 'declined',
          note: 'the terminal says approved for card 476173******0010: reconcile',
        });
        const latest = await journal.latestEventId();
        await journal.annotate(987654, 'nobody');
        expect(await journal.latestEventId()).toBe(latest);
      });

      it('the change feed sees what another journal on the same store writes, in order', async () => {
        const other = await another();
        if (other === undefined) return;
        const start = await journal.latestEventId();
        const mine = await claimed('VD');
        const theirs = await transaction('VE', 'approved', {}, other);
        await journal.complete(mine.row.id, alice, { outcome: 'cancelled', message: 'STOP' });
        const feed = await journal.eventsAfter(start, 100);
        expect(feed.map((e) => [e.transactionId, e.state])).toEqual([
          [mine.row.id, 'received'],
          [theirs.id, 'received'],
          [theirs.id, 'sent'],
          [theirs.id, 'approved'],
          [mine.row.id, 'cancelled'],
        ]);
        expect(await other.eventsAfter(start, 100)).toEqual(feed);
        expect(await other.latestEventId()).toBe(feed.at(-1)?.id);
      });
    });
  });
}
