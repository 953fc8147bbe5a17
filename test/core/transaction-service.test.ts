import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type {
  DriverRequest,
  ExecuteOptions,
  StatusQueryOptions,
  StatusTarget,
  TerminalDriver,
} from '../../src/core/driver.js';
import type { EcrError } from '../../src/core/errors.js';
import {
  RECOVERED_BEFORE_SENT,
  type ClaimInput,
  type Journal,
  type Owner,
} from '../../src/core/journal-port.js';
import { JOURNAL_RETRY_MS } from '../../src/core/journal-upkeep.js';
import { HEARTBEAT_INTERVAL_MS, makeOwner } from '../../src/core/owner.js';
import { handResolution, MUST_BE_UNKNOWN, resolveByHand } from '../../src/core/settlement.js';
import { TransactionService } from '../../src/core/transaction-service.js';
import type {
  DriverOutcome,
  MoneyKind,
  PaymentRequest,
  TransactionKind,
} from '../../src/core/transaction.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir } from '../helpers.js';
import { FakeClock, settle } from '../support/fake-clock.js';

// TransactionService on its own: a fake driver whose answers the test gives, fake time, and a
// real SQLite journal file. Each test walks one row of the state table and asserts the states
// and codes; time moves only when the test advances the clock.

const TERMINAL = 't1';
const MERCHANT = 'default';
/** A pid above any pid_max: never a running process, so an owner with it is gone. */
const DEAD_PID = 2_000_000_000;
/** Another process on the journal, alive (its heartbeat is fresh). */
const OTHER: Owner = { pid: 4242, token: 'another-process' };

const approved = (approvalCode = 'OK1'): DriverOutcome => ({
  outcome: 'approved',
  approvalCode,
  terminalTxId: `T-${approvalCode}`,
});
const NO_ANSWER: DriverOutcome = {
  outcome: 'unknown',
  errorCode: 'OUTCOME_UNKNOWN',
  message: 'no answer in time',
};

function request(
  kind: MoneyKind,
  reference: string,
  minor: number,
  originalReference?: string,
): PaymentRequest {
  return {
    kind,
    reference,
    amount: { minor, currency: 'USD' },
    ...(originalReference === undefined ? {} : { originalReference }),
  };
}
const sale = (reference: string, minor = 1000) => request('sale', reference, minor);

interface Pending {
  readonly request: DriverRequest;
  readonly options: ExecuteOptions | undefined;
  readonly answer: (outcome: DriverOutcome) => void;
}

/** A terminal whose answers the test gives, one request at a time, as a real one would. */
class FakeDriver implements TerminalDriver {
  readonly protocol = 'fake';
  readonly capabilities: ReadonlySet<TransactionKind> = new Set<TransactionKind>([
    'sale',
    'refund',
    'void',
    'auth',
    'capture',
    'tip-adjust',
    'status',
  ]);
  /** Every request that reached the terminal (after `beforeSend`), in order. */
  readonly sent: DriverRequest[] = [];
  /** Every status query asked, in order. */
  readonly asked: { target: StatusTarget; patient: boolean }[] = [];
  readonly queryOutcome?: (
    target: StatusTarget,
    options?: StatusQueryOptions,
  ) => Promise<DriverOutcome>;
  private readonly waiting: Pending[] = [];

  /** `statusAnswers`: the status query's answers, in order; none: a terminal without one. */
  constructor(
    readonly endpoint: string,
    statusAnswers?: DriverOutcome[],
  ) {
    if (statusAnswers !== undefined) {
      this.queryOutcome = (target, options) => {
        this.asked.push({ target, patient: options?.patient === true });
        const next = statusAnswers.shift();
        if (next === undefined) throw new Error('the test set no status answer');
        return Promise.resolve(next);
      };
    }
  }

  validate(): void {}

  async execute(request: DriverRequest, options?: ExecuteOptions): Promise<DriverOutcome> {
    await options?.beforeSend?.();
    this.sent.push(request);
    return new Promise((resolve) => this.waiting.push({ request, options, answer: resolve }));
  }

  /** The request at the terminal now, waiting for an answer. */
  get current(): Pending | undefined {
    return this.waiting[0];
  }

  /** The terminal answers the request it has. */
  answer(outcome: DriverOutcome): Pending {
    const pending = this.waiting.shift();
    if (pending === undefined) throw new Error('no request is at the terminal');
    pending.answer(outcome);
    return pending;
  }

  cancelCurrent(): Promise<boolean> {
    return Promise.resolve(false);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Lets the event loop turn until `check` holds (no time passes on the fake clock). */
async function until(check: () => boolean, what = 'the condition'): Promise<void> {
  for (let turn = 0; turn < 200; turn++) {
    if (check()) return;
    await settle();
  }
  throw new Error(`never happened: ${what}`);
}

/** The error `promise` rejects with. */
async function rejection(promise: Promise<unknown>): Promise<EcrError> {
  try {
    await promise;
  } catch (error) {
    return error as EcrError;
  }
  throw new Error('expected a rejection');
}

/** A journal that behaves like `real` except for the methods given. */
function journalWith(real: SqliteJournal, overrides: Partial<Journal>): Journal {
  return new Proxy(real, {
    get(target, key) {
      if (Object.hasOwn(overrides, key)) return overrides[key as keyof Journal];
      const value: unknown = Reflect.get(target, key);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function setup(
  options: {
    readonly maxQueue?: number;
    readonly statusAnswers?: DriverOutcome[];
    readonly journal?: (real: SqliteJournal) => Journal;
  } = {},
) {
  const clock = new FakeClock();
  const journal = new SqliteJournal({ path: join(tempDir('service-'), 'ecr-bridge.db') });
  cleanups.push(() => journal.close());
  const driver = new FakeDriver('fake://terminal-1', options.statusAnswers);
  const service = new TransactionService({
    journal: options.journal?.(journal) ?? journal,
    clock,
    lockWaitMs: 1_000,
    inFlightWaitMs: 2_000,
    pollIntervalMs: 100,
    ...(options.maxQueue === undefined ? {} : { maxQueue: options.maxQueue }),
  });
  service.addTerminal(TERMINAL, driver);
  cleanups.push(() => service.close());
  const row = (reference: string) =>
    journal.find({ merchantId: MERCHANT, terminalId: TERMINAL, reference });
  /** Pays and lets the terminal answer `answer`. */
  const paid = async (payment: PaymentRequest, answer: DriverOutcome = approved()) => {
    const paying = service.pay(TERMINAL, payment);
    await until(
      () => driver.current?.request.reference === payment.reference,
      `${payment.reference} at the terminal`,
    );
    driver.answer(answer);
    return paying;
  };
  /** A row claimed by `owner` straight in the journal, as another process would. */
  const claimedBy = (owner: Owner, payment: PaymentRequest) => {
    const input: ClaimInput = {
      merchantId: MERCHANT,
      terminalId: TERMINAL,
      reference: payment.reference,
      kind: payment.kind,
      amountMinor: payment.amount.minor,
      currency: payment.amount.currency,
      method: 'card',
      owner,
      ...(payment.originalReference === undefined
        ? {}
        : { originalReference: payment.originalReference }),
    };
    const claim = journal.claim(input);
    if (claim.type !== 'claimed') throw new Error(`${payment.reference} not claimed`);
    return claim.row;
  };
  return { clock, journal, driver, service, row, paid, claimedBy };
}

describe('TransactionService: one payment', () => {
  it('received → sent → approved; a retry gets the stored result, never sent again', async () => {
    const { service, driver, row, journal } = setup();
    const paying = service.pay(TERMINAL, sale('S-1'));
    await until(() => driver.current !== undefined);
    expect(row('S-1')?.state).toBe('sent');
    driver.answer(approved('A1'));
    expect(await paying).toMatchObject({
      state: 'approved',
      outcome: 'approved',
      approvalCode: 'A1',
      attempt: 1,
      replayed: false,
    });
    expect(await service.pay(TERMINAL, sale('S-1'))).toMatchObject({
      outcome: 'approved',
      replayed: true,
    });
    expect(driver.sent).toHaveLength(1);
    expect(journal.eventsOf(row('S-1')?.id ?? 0).map((e) => e.state)).toEqual([
      'received',
      'sent',
      'approved',
    ]);
    await expect(service.pay(TERMINAL, sale('S-1', 999))).rejects.toMatchObject({
      code: 'DUPLICATE_REFERENCE',
      field: 'reference',
    });
  });

  it('a declined attempt reopens the reference: the retry is attempt 2', async () => {
    const { paid } = setup();
    expect(
      await paid(sale('S-2'), { outcome: 'declined', errorCode: 'TERMINAL_REFUSED' }),
    ).toMatchObject({
      state: 'declined',
      attempt: 1,
    });
    expect(await paid(sale('S-2'))).toMatchObject({ state: 'approved', attempt: 2 });
  });

  it('the heartbeat runs on the clock while a payment is driven, and stops after', async () => {
    let beats = 0;
    const { service, driver, clock } = setup({
      journal: (real) =>
        journalWith(real, {
          heartbeat: (owner) => {
            beats++;
            real.heartbeat(owner);
          },
        }),
    });
    const paying = service.pay(TERMINAL, sale('H-1'));
    await until(() => driver.current !== undefined);
    await clock.advance(HEARTBEAT_INTERVAL_MS - 1);
    expect(beats).toBe(0);
    await clock.advance(1);
    expect(beats).toBe(1);
    await clock.advance(HEARTBEAT_INTERVAL_MS);
    expect(beats).toBe(2);
    driver.answer(approved());
    await paying;
    await clock.advance(3 * HEARTBEAT_INTERVAL_MS);
    expect(beats).toBe(2);
    expect(clock.pending).toBe(0);
  });
});

describe('TransactionService: the terminal queue and lock', () => {
  it('queue bounds: one runs, maxQueue wait, the next is refused at once (failed, TERMINAL_BUSY) and may be tried again', async () => {
    const { service, driver, row, paid } = setup({ maxQueue: 1 });
    const first = service.pay(TERMINAL, sale('Q-1'));
    await until(() => driver.current?.request.reference === 'Q-1');
    const second = service.pay(TERMINAL, sale('Q-2'));
    await until(() => row('Q-2')?.state === 'received');
    expect(await service.pay(TERMINAL, sale('Q-3'))).toMatchObject({
      state: 'failed',
      errorCode: 'TERMINAL_BUSY',
    });
    expect(row('Q-3')).toMatchObject({ state: 'failed', errorCode: 'TERMINAL_BUSY' });
    driver.answer(approved());
    expect(await first).toMatchObject({ state: 'approved' });
    await until(() => driver.current?.request.reference === 'Q-2');
    driver.answer(approved());
    expect(await second).toMatchObject({ state: 'approved' });
    // Nothing was charged for Q-3: the same reference again is a new attempt.
    expect(await paid(sale('Q-3'))).toMatchObject({ state: 'approved', attempt: 2 });
    expect(driver.sent.map((r) => r.reference)).toEqual(['Q-1', 'Q-2', 'Q-3']);
  });

  it('busy patience: a terminal held by another process is waited for lockWaitMs, then failed TERMINAL_BUSY, nothing sent', async () => {
    const { service, driver, row, journal, clock } = setup();
    expect(journal.tryLockTerminal(driver.endpoint, OTHER, () => true)).toBe(true);
    const paying = service.pay(TERMINAL, sale('B-1'));
    await clock.advance(900);
    expect(row('B-1')?.state).toBe('received');
    await clock.advance(100);
    expect(await paying).toMatchObject({ state: 'failed', errorCode: 'TERMINAL_BUSY' });
    expect(row('B-1')).toMatchObject({ state: 'failed', errorCode: 'TERMINAL_BUSY' });
    expect(driver.sent).toHaveLength(0);
  });

  it('busy patience: the terminal freed within lockWaitMs is taken at the next poll, and freed after', async () => {
    const { service, driver, journal, clock } = setup();
    journal.tryLockTerminal(driver.endpoint, OTHER, () => true);
    const paying = service.pay(TERMINAL, sale('B-2'));
    await clock.advance(500);
    expect(driver.sent).toHaveLength(0);
    journal.unlockTerminal(driver.endpoint, OTHER);
    await clock.advance(100);
    await until(() => driver.current !== undefined);
    driver.answer(approved());
    expect(await paying).toMatchObject({ state: 'approved' });
    expect(journal.tryLockTerminal(driver.endpoint, OTHER, () => true)).toBe(true);
  });

  it('a caller that aborts while waiting for the terminal: failed ABORTED, nothing sent', async () => {
    const { service, driver, journal, clock, row } = setup();
    journal.tryLockTerminal(driver.endpoint, OTHER, () => true);
    const controller = new AbortController();
    const paying = service.pay(TERMINAL, sale('B-3'), { signal: controller.signal });
    await clock.advance(200);
    controller.abort();
    await clock.advance(100);
    expect(await paying).toMatchObject({ state: 'failed', errorCode: 'ABORTED' });
    expect(row('B-3')?.state).toBe('failed');
    expect(driver.sent).toHaveLength(0);
  });
});

describe('TransactionService: answers that come late or not at all', () => {
  it('no answer → unknown, never sent again; a late answer settles it', async () => {
    const { service, driver, row, paid } = setup();
    const paying = service.pay(TERMINAL, sale('L-1'));
    await until(() => driver.current !== undefined);
    const call = driver.answer(NO_ANSWER);
    expect(await paying).toMatchObject({ state: 'unknown', errorCode: 'OUTCOME_UNKNOWN' });
    expect(await service.pay(TERMINAL, sale('L-1'))).toMatchObject({
      state: 'unknown',
      replayed: true,
    });
    call.options?.onLateOutcome?.(approved('LATE'));
    await until(() => row('L-1')?.state === 'approved');
    expect(row('L-1')).toMatchObject({
      approvalCode: 'LATE',
      message: expect.stringContaining('settled by a late answer from the terminal'),
    });
    // Work went on meanwhile: a terminal without a status query is not held up by an unknown.
    expect((await paid(sale('L-2'))).state).toBe('approved');
    expect(driver.sent.map((r) => r.reference)).toEqual(['L-1', 'L-2']);
  });

  it('a late answer that contradicts a resolution by hand is kept in the timeline, not written over it', async () => {
    const { service, driver, row, journal } = setup();
    const paying = service.pay(TERMINAL, sale('L-3'));
    await until(() => driver.current !== undefined);
    const call = driver.answer(NO_ANSWER);
    await paying;
    const unknown = row('L-3');
    if (unknown === undefined) throw new Error('no row');
    await resolveByHand(
      journal,
      unknown,
      handResolution({ outcome: 'declined', note: 'the acquirer shows nothing' }),
      { rowField: 'reference' },
    );
    call.options?.onLateOutcome?.(approved('A9'));
    await until(() => journal.eventsOf(unknown.id).length === 5);
    expect(row('L-3')?.state).toBe('declined');
    expect(journal.eventsOf(unknown.id).at(-1)?.note).toContain(
      'a late answer: the terminal says approved (approval A9), but declined is recorded: reconcile',
    );
  });

  it('no answer, and the status query says approved: approved at once', async () => {
    const { service, driver, row } = setup({
      statusAnswers: [{ ...approved('Q1'), message: 'found by status' }],
    });
    const paying = service.pay(TERMINAL, sale('Q-1'));
    await until(() => driver.current !== undefined);
    driver.answer(NO_ANSWER);
    expect(await paying).toMatchObject({
      state: 'approved',
      approvalCode: 'Q1',
      message: 'found by status (after: no answer in time)',
    });
    expect(driver.asked).toEqual([
      {
        target: expect.objectContaining({
          reference: 'Q-1',
          attempt: 1,
          wireId: driver.sent[0]?.wireId,
        }),
        patient: true,
      },
    ]);
    expect(row('Q-1')?.state).toBe('approved');
  });

  it('a status answer naming a transaction this journal did not send before proves nothing: unknown', async () => {
    const { service, driver } = setup({
      statusAnswers: [
        { outcome: 'failed', errorCode: 'TERMINAL_REFUSED', lastReference: 'OTHER-POS' },
      ],
    });
    const paying = service.pay(TERMINAL, sale('Q-2'));
    await until(() => driver.current !== undefined);
    driver.answer(NO_ANSWER);
    const result = await paying;
    expect(result).toMatchObject({ state: 'unknown', errorCode: 'OUTCOME_UNKNOWN' });
    expect(result.message).toContain('another POS may have used the terminal');
  });

  it('an unknown is asked about before the next request: settled, then the next one is sent', async () => {
    const { driver, row, paid } = setup({
      statusAnswers: [NO_ANSWER, { outcome: 'declined', errorCode: 'TERMINAL_REFUSED' }],
    });
    expect((await paid(sale('E-1'), NO_ANSWER)).state).toBe('unknown');
    expect((await paid(sale('E-2'))).state).toBe('approved');
    expect(row('E-1')).toMatchObject({
      state: 'declined',
      message: expect.stringContaining('before the next transaction'),
    });
    expect(driver.asked.map((a) => [a.target.reference, a.patient])).toEqual([
      ['E-1', true],
      ['E-1', false],
    ]);
  });

  it('an unknown the terminal cannot say about yet holds the next request back: failed TERMINAL_NOT_READY, nothing sent', async () => {
    const { service, driver, row, paid } = setup({
      statusAnswers: [
        NO_ANSWER,
        { outcome: 'unknown', errorCode: 'TERMINAL_BUSY', message: 'busy' },
      ],
    });
    await paid(sale('E-3'), NO_ANSWER);
    expect(await service.pay(TERMINAL, sale('E-4'))).toMatchObject({
      state: 'failed',
      errorCode: 'TERMINAL_NOT_READY',
    });
    expect(row('E-3')?.state).toBe('unknown');
    expect(driver.sent.map((r) => r.reference)).toEqual(['E-3']);
  });

  it('reconcile: a terminal back settles its latest unknown with a patient status query', async () => {
    const { service, driver, row, paid } = setup({
      statusAnswers: [NO_ANSWER, approved('BACK')],
    });
    expect(await service.reconcile(TERMINAL)).toBeUndefined();
    await paid(sale('R-1'), NO_ANSWER);
    expect(await service.reconcile(TERMINAL)).toMatchObject({
      reference: 'R-1',
      state: 'approved',
      replayed: true,
    });
    expect(row('R-1')?.message).toMatch(/when the terminal came back$/);
    expect(driver.asked.map((a) => a.patient)).toEqual([true, true]);
    expect(await service.reconcile(TERMINAL)).toBeUndefined();
  });

  it('an outcome the journal cannot take yet is the answer (and a retry’s) until a background retry on the clock writes it', async () => {
    let failures = 1;
    const { service, driver, row, clock } = setup({
      journal: (real) =>
        journalWith(real, {
          complete: (id, owner, outcome) => {
            if (failures-- > 0) throw new Error('database is locked');
            return real.complete(id, owner, outcome);
          },
        }),
    });
    const paying = service.pay(TERMINAL, sale('J-1'));
    await until(() => driver.current !== undefined);
    driver.answer(approved('J'));
    expect(await paying).toMatchObject({
      state: 'unknown',
      errorCode: 'JOURNAL_ERROR',
      approvalCode: 'J',
    });
    expect(await service.pay(TERMINAL, sale('J-1'))).toMatchObject({
      state: 'unknown',
      errorCode: 'JOURNAL_ERROR',
      replayed: true,
    });
    await clock.advance(JOURNAL_RETRY_MS - 1);
    expect(row('J-1')?.state).toBe('sent');
    await clock.advance(1);
    expect(row('J-1')).toMatchObject({ state: 'approved', approvalCode: 'J' });
    expect(await service.pay(TERMINAL, sale('J-1'))).toMatchObject({
      state: 'approved',
      replayed: true,
    });
    expect(driver.sent).toHaveLength(1);
  });
});

describe('TransactionService: recovery at start', () => {
  it('orphans of a dead process: received → failed, sent → unknown; an old never-sent unknown → failed; a live process’s rows untouched', async () => {
    const { service, row, claimedBy, journal } = setup();
    const dead = makeOwner(DEAD_PID);
    claimedBy(dead, sale('O-RECEIVED'));
    journal.markSent(claimedBy(dead, sale('O-SENT')).id, dead);
    const legacy = claimedBy(dead, sale('O-LEGACY'));
    journal.complete(legacy.id, dead, { outcome: 'unknown', message: RECOVERED_BEFORE_SENT });
    claimedBy(OTHER, sale('O-LIVE'));

    const recovered = await service.recover();
    expect(recovered.map((r) => [r.reference, r.state]).sort()).toEqual([
      ['O-RECEIVED', 'failed'],
      ['O-SENT', 'unknown'],
    ]);
    expect(row('O-RECEIVED')).toMatchObject({ state: 'failed', errorCode: 'ABORTED' });
    expect(row('O-SENT')).toMatchObject({ state: 'unknown', errorCode: 'OUTCOME_UNKNOWN' });
    expect(row('O-LEGACY')).toMatchObject({
      state: 'failed',
      errorCode: 'ABORTED',
      message: expect.stringContaining('journal timeline, at start-up'),
    });
    expect(row('O-LIVE')?.state).toBe('received');
    expect(await service.recover()).toEqual([]);
  });
});

describe('TransactionService: a retry of a reference still in flight', () => {
  it('in this process, across the lock: the retry awaits the attempt that waits for the terminal, and gets its answer', async () => {
    const { service, driver, journal, clock } = setup();
    journal.tryLockTerminal(driver.endpoint, OTHER, () => true);
    const first = service.pay(TERMINAL, sale('F-1'));
    await clock.advance(100);
    const retry = service.pay(TERMINAL, sale('F-1'));
    await clock.advance(100);
    journal.unlockTerminal(driver.endpoint, OTHER);
    await clock.advance(100);
    await until(() => driver.current !== undefined);
    driver.answer(approved('F'));
    expect(await first).toMatchObject({ state: 'approved', replayed: false });
    expect(await retry).toMatchObject({ state: 'approved', approvalCode: 'F', replayed: true });
    expect(driver.sent).toHaveLength(1);
  });

  it('in this process: a retry that aborts stops waiting (ABORTED) and the payment goes on', async () => {
    const { service, driver } = setup();
    const first = service.pay(TERMINAL, sale('F-2'));
    await until(() => driver.current !== undefined);
    const controller = new AbortController();
    const retry = service.pay(TERMINAL, sale('F-2'), { signal: controller.signal });
    controller.abort();
    expect(await rejection(retry)).toMatchObject({
      code: 'ABORTED',
      message: expect.stringContaining('the payment in flight goes on'),
    });
    driver.answer(approved());
    expect(await first).toMatchObject({ state: 'approved' });
  });

  it('in another process: the retry polls the journal on the clock and gets the outcome it writes', async () => {
    const { service, driver, journal, clock, claimedBy } = setup();
    const theirs = claimedBy(OTHER, sale('F-3'));
    journal.markSent(theirs.id, OTHER);
    let settled = false;
    const retry = service.pay(TERMINAL, sale('F-3')).finally(() => (settled = true));
    await clock.advance(1_000);
    expect(settled).toBe(false);
    journal.complete(theirs.id, OTHER, approved('THEIRS'));
    await clock.advance(100);
    expect(await retry).toMatchObject({
      state: 'approved',
      approvalCode: 'THEIRS',
      replayed: true,
    });
    expect(driver.sent).toHaveLength(0);
  });

  it('in another process that stays in flight past inFlightWaitMs: TIMEOUT, the row untouched', async () => {
    const { service, journal, clock, claimedBy, row } = setup();
    journal.markSent(claimedBy(OTHER, sale('F-4')).id, OTHER);
    const retry = rejection(service.pay(TERMINAL, sale('F-4')));
    await clock.advance(1_900);
    expect(row('F-4')?.state).toBe('sent');
    await clock.advance(100);
    expect(await retry).toMatchObject({ code: 'TIMEOUT' });
    expect(row('F-4')?.state).toBe('sent');
  });

  it('in a process that died: the retry recovers the row (unknown) and answers it', async () => {
    const { service, journal, clock, claimedBy, driver } = setup();
    const dead = makeOwner(DEAD_PID);
    journal.markSent(claimedBy(dead, sale('F-5')).id, dead);
    const retry = service.pay(TERMINAL, sale('F-5'));
    await clock.advance(200);
    expect(await retry).toMatchObject({
      state: 'unknown',
      errorCode: 'OUTCOME_UNKNOWN',
      replayed: true,
    });
    expect(driver.sent).toHaveLength(0);
  });
});

describe('TransactionService: follow-up rules (void, capture, tip adjust, refund)', () => {
  it('a void, capture or tip adjust of a reference the terminal does not have: NOT_FOUND, nothing journaled', async () => {
    const { service, row } = setup();
    for (const kind of ['void', 'capture', 'tip-adjust'] as const) {
      await expect(
        service.pay(TERMINAL, request(kind, `N-${kind}`, 100, 'NOPE')),
      ).rejects.toMatchObject({
        code: 'NOT_FOUND',
        field: 'originalReference',
      });
      expect(row(`N-${kind}`)).toBeUndefined();
    }
  });

  it('a refund naming no known transaction is an unlinked refund: sent without an original', async () => {
    const { driver, paid } = setup();
    expect((await paid(request('refund', 'U-1', 500, 'NOT-OURS'))).state).toBe('approved');
    expect(driver.sent[0]?.original).toBeUndefined();
  });

  it('the original must be approved and of a kind the follow-up applies to: INVALID_INPUT', async () => {
    const { service, paid, row } = setup();
    await paid(sale('K-SALE'));
    await paid(sale('K-DECLINED'), { outcome: 'declined', errorCode: 'TERMINAL_REFUSED' });
    await expect(
      service.pay(TERMINAL, request('capture', 'K-1', 100, 'K-SALE')),
    ).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      field: 'originalReference',
      message:
        'originalReference: must name an approved auth for a capture (K-SALE is a approved sale)',
    });
    await expect(
      service.pay(TERMINAL, request('refund', 'K-2', 100, 'K-DECLINED')),
    ).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringContaining('must name an approved sale or capture for a refund'),
    });
    expect(row('K-1')).toBeUndefined();
    expect(row('K-2')).toBeUndefined();
  });

  it('amounts: a void of the whole amount, a capture and a refund at most the original: INVALID_AMOUNT', async () => {
    const { service, paid } = setup();
    await paid(sale('M-SALE', 1000));
    await paid(request('auth', 'M-AUTH', 1000));
    await expect(
      service.pay(TERMINAL, request('void', 'M-1', 999, 'M-SALE')),
    ).rejects.toMatchObject({
      code: 'INVALID_AMOUNT',
      message: 'amount: must be the voided amount, 10.00 USD',
    });
    await expect(
      service.pay(TERMINAL, request('capture', 'M-2', 1001, 'M-AUTH')),
    ).rejects.toMatchObject({
      code: 'INVALID_AMOUNT',
      message: 'amount: must be at most the original amount, 10.00 USD',
    });
    await expect(
      service.pay(TERMINAL, request('refund', 'M-3', 1001, 'M-SALE')),
    ).rejects.toMatchObject({
      code: 'INVALID_AMOUNT',
      field: 'amount',
    });
  });

  it('refunds add up against the original; a declined one does not count', async () => {
    const { service, paid } = setup();
    await paid(sale('A-SALE', 1000));
    expect((await paid(request('refund', 'A-R1', 600, 'A-SALE'))).state).toBe('approved');
    await expect(
      service.pay(TERMINAL, request('refund', 'A-R2', 500, 'A-SALE')),
    ).rejects.toMatchObject({
      code: 'INVALID_AMOUNT',
      message: 'amount: must be at most what is left to refund of A-SALE, 4.00 USD',
    });
    await paid(request('refund', 'A-R3', 400, 'A-SALE'), {
      outcome: 'declined',
      errorCode: 'TERMINAL_REFUSED',
    });
    expect((await paid(request('refund', 'A-R4', 400, 'A-SALE'))).state).toBe('approved');
  });

  it('a voided transaction (or one whose void is not settled) takes no further follow-up', async () => {
    const { service, paid } = setup();
    await paid(sale('V-SALE', 1000));
    expect((await paid(request('void', 'V-VOID', 1000, 'V-SALE'), NO_ANSWER)).state).toBe(
      'unknown',
    );
    await expect(
      service.pay(TERMINAL, request('refund', 'V-R', 100, 'V-SALE')),
    ).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringContaining('must name a transaction that was not voided'),
    });
  });

  it('the driver is told the original: its reference, kind, amount and terminal id', async () => {
    const { driver, paid } = setup();
    await paid(sale('T-SALE', 1000), approved('TS'));
    await paid(request('tip-adjust', 'T-TIP', 200, 'T-SALE'));
    expect(driver.sent[1]?.original).toEqual({
      reference: 'T-SALE',
      kind: 'sale',
      amount: { minor: 1000, currency: 'USD' },
      terminalTxId: 'T-TS',
    });
  });

  it('checked again under the lock: a refund claimed first by another process counts, the later one fails INVALID_AMOUNT, never sent', async () => {
    let racing: (() => void) | undefined;
    const { driver, paid, row, claimedBy, service } = setup({
      journal: (real) =>
        journalWith(real, {
          // Another process claims its refund between this one's first check and its claim.
          claim: (input) => {
            racing?.();
            racing = undefined;
            return real.claim(input);
          },
        }),
    });
    await paid(sale('X-SALE', 1000));
    racing = () => claimedBy(OTHER, request('refund', 'X-THEIRS', 600, 'X-SALE'));
    expect(await service.pay(TERMINAL, request('refund', 'X-OURS', 600, 'X-SALE'))).toMatchObject({
      state: 'failed',
      errorCode: 'INVALID_AMOUNT',
    });
    expect(row('X-OURS')?.state).toBe('failed');
    expect(row('X-THEIRS')?.state).toBe('received');
    expect(driver.sent.map((r) => r.reference)).toEqual(['X-SALE']);
  });
});

describe('resolveByHand: one way for a person to settle an unknown', () => {
  async function unknownRow(reference: string) {
    const context = setup();
    await context.paid(sale(reference), NO_ANSWER);
    const row = context.row(reference);
    if (row?.state !== 'unknown') throw new Error('not unknown');
    return { ...context, unknown: row };
  }

  it('records the outcome with the note (card numbers masked) and who; once only, then INVALID_INPUT naming the row’s field', async () => {
    const { journal, unknown, row } = await unknownRow('H-1');
    const resolution = handResolution({
      outcome: 'approved',
      note: '  acquirer report, card 4761 7390 0101 0010  ',
      by: 'alice in the dashboard',
    });
    const resolved = await resolveByHand(journal, unknown, resolution, { rowField: 'id' });
    expect(resolved.state).toBe('approved');
    expect(resolved.message).toMatch(
      /^resolved by hand: acquirer report, card 476173\*{6}0010 \(by alice in the dashboard\) \(was unknown: OUTCOME_UNKNOWN/,
    );
    expect(row('H-1')?.state).toBe('approved');
    const again = await rejection(
      resolveByHand(journal, unknown, handResolution({ outcome: 'declined', note: 'no' }), {
        rowField: 'reference',
      }),
    );
    expect(again).toMatchObject({
      code: 'INVALID_INPUT',
      field: 'reference',
      rule: MUST_BE_UNKNOWN,
      message: 'reference: must name an unknown transaction (it is approved)',
    });
    expect(row('H-1')?.state).toBe('approved');
  });

  it('a row still in flight is refused, naming its state', async () => {
    const { journal, claimedBy } = setup();
    const inFlight = claimedBy(OTHER, sale('H-2'));
    const error = await rejection(
      resolveByHand(journal, inFlight, handResolution({ outcome: 'failed', note: 'x' }), {
        rowField: 'id',
      }),
    );
    expect(error).toMatchObject({ code: 'INVALID_INPUT', field: 'id' });
    expect(error.message).toBe('id: must name an unknown transaction (it is received)');
  });

  it.each([
    [{ outcome: 'unknown', note: 'still do not know' }, 'outcome'],
    [{ outcome: 'maybe', note: 'hmm' }, 'outcome'],
    [{ outcome: 'approved', note: '   ' }, 'note'],
    [{ outcome: 'approved', note: 'x'.repeat(501) }, 'note'],
    [{ outcome: 'approved', note: 'receipt \u001b[31mred' }, 'note'],
  ])('%o is refused before anything is looked up: INVALID_INPUT naming %s', (input, field) => {
    expect(() => handResolution(input)).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT', field }),
    );
  });

  it('nothing charged (declined by hand) reopens the reference: the next pay is attempt 2', async () => {
    const { journal, unknown, paid } = await unknownRow('H-3');
    await resolveByHand(
      journal,
      unknown,
      handResolution({ outcome: 'declined', note: 'the acquirer shows no charge' }),
      { rowField: 'reference' },
    );
    expect(await paid(sale('H-3'))).toMatchObject({ state: 'approved', attempt: 2 });
  });
});
