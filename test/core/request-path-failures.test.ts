import Database from 'better-sqlite3';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, logWriteFailures } from '../../src/core/logger.js';
import { TransactionService } from '../../src/core/transaction-service.js';
import type { PaymentRequest } from '../../src/core/transaction.js';
import { SemiDriver } from '../../src/drivers/semi.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { SemiSimulator } from '../../src/simulators/semi/simulator.js';
import { tempDir, waitFor } from '../helpers.js';

// Issue 17, part 3: a failure on the request path (the log, the journal, a caller's callback)
// gets an answer within bounds and leaves a row that is settled; nothing waits on a promise
// nobody will keep. Real SEMI simulator over TCP, real SQLite file, real /dev/full.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sale = (reference: string): PaymentRequest => ({
  kind: 'sale',
  reference,
  amount: { minor: 1000, currency: 'USD' },
});

async function setup(options: { logTo?: string; busyTimeoutMs?: number } = {}) {
  const simulator = await new SemiSimulator({ tcpPort: 0, wsPort: null }).start();
  cleanups.push(() => simulator.stop());
  const dir = tempDir('request-path-');
  const dbPath = join(dir, 'ecr-bridge.db');
  const logger = createLogger({
    level: 'debug',
    destination: pino.destination({ dest: options.logTo ?? join(dir, 'test.log'), sync: true }),
  });
  const journal = new SqliteJournal({
    path: dbPath,
    ...(options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: options.busyTimeoutMs }),
  });
  cleanups.push(() => journal.close());
  const driver = new SemiDriver({
    url: simulator.tcpUrl ?? '',
    currency: 'USD',
    answerTimeoutMs: 2_000,
    statusTimeoutMs: 500,
    logger,
  });
  // A wait for another process's row that is bounded, so a test that regressed fails fast.
  const service = new TransactionService({ journal, logger, inFlightWaitMs: 5_000 });
  service.addTerminal('t1', driver);
  cleanups.push(() => service.close());
  const row = (reference: string) =>
    journal.find({ merchantId: 'default', terminalId: 't1', reference });
  return { simulator, journal, service, row, dbPath };
}

describe('a failure on the request path', () => {
  it('a log that cannot be written (a full disk: /dev/full) takes no payment down; failures are counted', async () => {
    const before = logWriteFailures();
    const { simulator, service, row } = await setup({ logTo: '/dev/full' });
    expect(await service.pay('t1', sale('LOG-1'))).toMatchObject({ outcome: 'approved' });
    expect(row('LOG-1')?.state).toBe('approved');
    expect(await service.pay('t1', sale('LOG-1'))).toMatchObject({
      outcome: 'approved',
      replayed: true,
    });
    expect(simulator.ledger.forReference('LOG-1')).toHaveLength(1);
    expect(logWriteFailures()).toBeGreaterThan(before);
  });

  it('a caller callback that throws after the claim does not strand the row: the payment goes on, a retry gets its answer', async () => {
    const { simulator, service, row } = await setup();
    const paid = await service.pay('t1', sale('CB-1'), {
      onClaimed: () => {
        throw new Error('the caller’s own bookkeeping failed');
      },
    });
    expect(paid).toMatchObject({ outcome: 'approved' });
    expect(row('CB-1')?.state).toBe('approved');
    expect(await service.pay('t1', sale('CB-1'))).toMatchObject({
      outcome: 'approved',
      replayed: true,
    });
    expect(simulator.ledger.forReference('CB-1')).toHaveLength(1);
  });

  it('a journal that cannot commit `sent` answers failed JOURNAL_ERROR at once, a retry gets the same answer while it lasts, the row is settled failed once the journal is back, and the reference may then be paid', async () => {
    const { simulator, service, row, dbPath } = await setup({ busyTimeoutMs: 200 });
    // Another connection takes the write lock the moment the request is journaled `received`:
    // `sent` cannot be committed, so nothing may go to the terminal.
    const other = new Database(dbPath);
    cleanups.push(() => {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
    });
    const started = Date.now();
    const first = await service.pay('t1', sale('JR-1'), {
      onClaimed: () => other.exec('BEGIN IMMEDIATE'),
    });
    expect(first).toMatchObject({ outcome: 'failed', errorCode: 'JOURNAL_ERROR' });
    expect(first.message).toMatch(/nothing was charged/);
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(row('JR-1')?.state).toBe('received');
    // A retry while the journal is still locked cannot even be journaled: JOURNAL_ERROR, at once.
    const lockedRetry = Date.now();
    await expect(service.pay('t1', sale('JR-1'))).rejects.toMatchObject({ code: 'JOURNAL_ERROR' });
    expect(Date.now() - lockedRetry).toBeLessThan(2_000);
    other.exec('ROLLBACK');
    // The journal is back but the outcome is not written yet: the retry is not left waiting on
    // a row in flight that nobody drives; it gets the answer already given.
    const retryStarted = Date.now();
    expect(await service.pay('t1', sale('JR-1'))).toMatchObject({
      outcome: 'failed',
      errorCode: 'JOURNAL_ERROR',
      replayed: true,
    });
    expect(Date.now() - retryStarted).toBeLessThan(2_000);
    expect(simulator.ledger.forReference('JR-1')).toHaveLength(0);

    // Written in the background once the journal takes writes again.
    await waitFor(() => row('JR-1')?.state === 'failed', 10_000, 'JR-1 settled failed');
    expect(row('JR-1')).toMatchObject({ outcome: 'failed', errorCode: 'JOURNAL_ERROR' });
    // Nothing was charged, so the same reference may be paid: a new attempt.
    expect(await service.pay('t1', sale('JR-1'))).toMatchObject({
      outcome: 'approved',
      attempt: 2,
    });
    expect(simulator.ledger.forReference('JR-1')).toHaveLength(1);
  });
});
