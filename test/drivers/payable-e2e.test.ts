import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { makeOwner } from '../../src/core/owner.js';
import { TransactionService } from '../../src/core/transaction-service.js';
import type { PaymentRequest } from '../../src/core/transaction.js';
import { PayableDriver, type PayableDriverOptions } from '../../src/drivers/payable.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import {
  PayableSimulator,
  type PayableSimulatorOptions,
} from '../../src/simulators/payable/simulator.js';
import { pino } from 'pino';
import { tempDir, waitFor } from '../helpers.js';

const TOKEN = 'secret-token';
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(
  options: {
    simulator?: PayableSimulatorOptions;
    driver?: Partial<PayableDriverOptions>;
    maxQueue?: number;
  } = {},
) {
  const simulator = await new PayableSimulator({
    port: 0,
    statusPort: 0,
    token: TOKEN,
    ...options.simulator,
  }).start();
  cleanups.push(() => simulator.stop());
  const dir = tempDir('e2e-');
  const logger = createLogger({
    level: 'debug',
    destination: pino.destination({ dest: join(dir, 'test.log'), sync: true }),
  });
  const journal = new SqliteJournal({ path: join(dir, 'ecr-bridge.db') });
  cleanups.push(() => journal.close());
  const driver = new PayableDriver({
    url: simulator.url,
    token: options.simulator?.token === undefined ? TOKEN : options.simulator.token,
    posName: 'POS-1',
    currency: options.simulator?.currency ?? 'LKR',
    logger,
    ...options.driver,
  });
  const service = new TransactionService({
    journal,
    logger,
    ...(options.maxQueue === undefined ? {} : { maxQueue: options.maxQueue }),
  });
  service.addTerminal('t1', driver);
  cleanups.push(() => service.close());
  return { simulator, journal, driver, service };
}

function sale(reference: string, minor: number, currency = 'LKR'): PaymentRequest {
  return { kind: 'sale', reference, amount: { minor, currency } };
}

describe('PAYable driver ↔ simulator, every scenario of the table', () => {
  it('any other amount → approved, charged once, answer details kept', async () => {
    const { simulator, service, journal } = await setup();
    const result = await service.pay('t1', sale('A-1', 2000));
    expect(result).toMatchObject({
      outcome: 'approved',
      state: 'approved',
      replayed: false,
      cardBrand: 'VISA',
    });
    expect(result.approvalCode).toMatch(/^\d{6}$/);
    expect(result.details).toMatchObject({
      status: 'STATUS_SUCCESS',
      terminalSerial: simulator.serial,
    });
    expect(simulator.ledger.forReference('A-1')).toHaveLength(1);
    expect(journal.find({ merchantId: 'default', terminalId: 't1', reference: 'A-1' })?.state).toBe(
      'approved',
    );
  });

  it('…51 → declined, nothing charged', async () => {
    const { simulator, service } = await setup();
    expect(await service.pay('t1', sale('D-1', 2051))).toMatchObject({
      outcome: 'declined',
      message: 'Transaction declined.',
    });
    expect(simulator.ledger.count).toBe(0);
  });

  it('…52 → cancelled by the cardholder, nothing charged', async () => {
    const { simulator, service } = await setup();
    expect((await service.pay('t1', sale('C-1', 2052))).outcome).toBe('cancelled');
    expect(simulator.ledger.count).toBe(0);
  });

  it('…53 → terminal busy: failed with TERMINAL_BUSY, nothing charged', async () => {
    const { simulator, service } = await setup();
    expect(await service.pay('t1', sale('B-1', 2053))).toMatchObject({
      outcome: 'failed',
      errorCode: 'TERMINAL_BUSY',
    });
    expect(simulator.ledger.count).toBe(0);
  });

  it('…54 → card charged then no answer: unknown (never failed), charged once', async () => {
    const { simulator, service } = await setup({ driver: { answerTimeoutMs: 300 } });
    expect(await service.pay('t1', sale('N-1', 2054))).toMatchObject({
      outcome: 'unknown',
      errorCode: 'OUTCOME_UNKNOWN',
    });
    expect(simulator.ledger.forReference('N-1')).toHaveLength(1);
  });

  it('an answer arriving after the answer timeout settles the unknown transaction in the journal', async () => {
    const { simulator, service, journal } = await setup({
      simulator: { slowAnswerMs: 600 },
      driver: { answerTimeoutMs: 150 },
    });
    expect(await service.pay('t1', sale('LATE-1', 2056))).toMatchObject({ outcome: 'unknown' });
    const key = { merchantId: 'default', terminalId: 't1', reference: 'LATE-1' };
    await waitFor(() => journal.find(key)?.state === 'approved', 5000, 'the late answer');
    expect(journal.find(key)?.message).toMatch(/late answer/);
    expect(await service.pay('t1', sale('LATE-1', 2056))).toMatchObject({
      outcome: 'approved',
      replayed: true,
    });
    expect(simulator.ledger.forReference('LATE-1')).toHaveLength(1);
  });

  it('…55 → link drops after the card: unknown, charged once, not retried', async () => {
    const { simulator, service } = await setup();
    const result = await service.pay('t1', sale('L-1', 2055));
    expect(result).toMatchObject({ outcome: 'unknown', errorCode: 'OUTCOME_UNKNOWN' });
    expect(result.message).toMatch(/link lost/);
    // The same reference again returns the stored unknown and sends nothing.
    expect(await service.pay('t1', sale('L-1', 2055))).toMatchObject({
      outcome: 'unknown',
      replayed: true,
    });
    expect(simulator.ledger.forReference('L-1')).toHaveLength(1);
  });

  it('…56 → approved after a slow answer', async () => {
    const { simulator, service } = await setup({ simulator: { slowAnswerMs: 400 } });
    const started = Date.now();
    expect((await service.pay('t1', sale('S-1', 2056))).outcome).toBe('approved');
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    expect(simulator.ledger.count).toBe(1);
  });

  it('…57 → refused as invalid: failed with TERMINAL_REFUSED, nothing charged', async () => {
    const { simulator, service } = await setup();
    expect(await service.pay('t1', sale('I-1', 2057))).toMatchObject({
      outcome: 'failed',
      errorCode: 'TERMINAL_REFUSED',
    });
    expect(simulator.ledger.count).toBe(0);
  });

  it('keys on the last two digits of minor units, so 0-decimal currencies work: 1051 JPY declines', async () => {
    const { simulator, service } = await setup({ simulator: { currency: 'JPY' } });
    expect((await service.pay('t1', sale('J-1', 1051, 'JPY'))).outcome).toBe('declined');
    expect((await service.pay('t1', sale('J-2', 1000, 'JPY'))).outcome).toBe('approved');
    expect(simulator.ledger.all().map((c) => c.amountMinor)).toEqual([1000]);
  });

  it('WALLET payments are approved like cards', async () => {
    const { service } = await setup();
    expect((await service.pay('t1', { ...sale('W-1', 2000), method: 'wallet' })).outcome).toBe(
      'approved',
    );
  });

  it('old firmware (no token, text greeting) works too', async () => {
    const { simulator, service, driver } = await setup({ simulator: { token: undefined } });
    expect((await service.pay('t1', sale('O-1', 2000))).outcome).toBe('approved');
    expect(driver.serial).toBe(simulator.serial);
  });

  it('STOP during the card step → cancelled, nothing charged', async () => {
    const { simulator, service } = await setup({ simulator: { cardDelayMs: 2000 } });
    const paying = service.pay('t1', sale('STOP-1', 2000));
    await waitFor(() => simulator.busy, 5000, 'the card step');
    await service.cancelCurrent('t1');
    expect((await paying).outcome).toBe('cancelled');
    expect(simulator.ledger.count).toBe(0);
  });
});

describe('PAYable terminal rules', () => {
  it('a repeated request id is refused by the terminal: failed DUPLICATE_REQUEST_ID, not charged', async () => {
    const { simulator, driver } = await setup();
    const request = { ...sale('DUP-1', 2000), wireId: 5 };
    expect((await driver.execute(request)).outcome).toBe('approved');
    expect(await driver.execute({ ...request, reference: 'DUP-2' })).toMatchObject({
      outcome: 'failed',
      errorCode: 'DUPLICATE_REQUEST_ID',
    });
    expect(simulator.ledger.count).toBe(1);
  });

  it('a POS name already connected is refused at the handshake (404) → failed TERMINAL_AUTH_FAILED', async () => {
    const { simulator, service } = await setup();
    expect((await service.pay('t1', sale('H-1', 2000))).outcome).toBe('approved');
    const twin = new PayableDriver({ url: simulator.url, token: TOKEN, posName: 'POS-1' });
    cleanups.push(() => twin.close());
    expect(await twin.execute({ ...sale('H-2', 2000), wireId: 99 })).toMatchObject({
      outcome: 'failed',
      errorCode: 'TERMINAL_AUTH_FAILED',
    });
    const anonymous = new PayableDriver({ url: simulator.url, token: TOKEN, posName: ' ' });
    cleanups.push(() => anonymous.close());
    expect((await anonymous.execute({ ...sale('H-3', 2000), wireId: 100 })).errorCode).toBe(
      'TERMINAL_AUTH_FAILED',
    );
    expect(simulator.ledger.count).toBe(1);
  });

  it('the status page shows serial, version, READY/BUSY and connected POS names; /ledger is JSON', async () => {
    const { simulator, service } = await setup({ simulator: { slowAnswerMs: 500 } });
    const base = `http://127.0.0.1:${simulator.statusPort}`;
    const paying = service.pay('t1', sale('P-1', 2056));
    await waitFor(() => simulator.ledger.count === 1, 5000, 'the charge');
    const busy = await (await fetch(`${base}/`)).text();
    expect(busy).toContain(`Terminal Serial: ${simulator.serial}`);
    expect(busy).toContain('ECR Version: 1.0');
    expect(busy).toContain('PAYable Status: BUSY');
    expect(busy).toContain('Connected POS: POS-1');
    await paying;
    expect(await (await fetch(`${base}/`)).text()).toContain('PAYable Status: READY');
    const ledger = (await (await fetch(`${base}/ledger`)).json()) as {
      count: number;
      charges: { reference: string; maskedPan: string }[];
    };
    expect(ledger.count).toBe(1);
    expect(ledger.charges[0]).toMatchObject({ reference: 'P-1', maskedPan: '476173******0010' });
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});

describe('TransactionService over a real terminal link', () => {
  it('50 concurrent pays with one reference charge once and all get the same result', async () => {
    const { simulator, service } = await setup({ simulator: { cardDelayMs: 100 } });
    const results = await Promise.all(
      Array.from({ length: 50 }, () => service.pay('t1', sale('ONCE-1', 2000))),
    );
    expect(simulator.ledger.forReference('ONCE-1')).toHaveLength(1);
    const first = results[0];
    for (const result of results) {
      expect(result.outcome).toBe('approved');
      expect(result.approvalCode).toBe(first?.approvalCode);
      expect(result.terminalTxId).toBe(first?.terminalTxId);
    }
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
  });

  it('a row recovered as if its owner had crashed, while the owner still pays, gets the real answer', async () => {
    const { simulator, journal } = await setup({ simulator: { slowAnswerMs: 500 } });
    // The paying service carries the identity of a process that has exited: others see it dead.
    const exited = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => exited.once('exit', resolve));
    const paying = new TransactionService({ journal, owner: makeOwner(exited.pid as number) });
    paying.addTerminal(
      't2',
      new PayableDriver({ url: simulator.url, token: TOKEN, posName: 'POS-2' }),
    );
    cleanups.push(() => paying.close());
    const result = paying.pay('t2', sale('GHOST-1', 2056));
    await waitFor(() => simulator.ledger.count === 1, 5000, 'the charge');
    expect((await new TransactionService({ journal }).recover()).map((r) => r.reference)).toEqual([
      'GHOST-1',
    ]);
    expect(await result).toMatchObject({ outcome: 'approved', state: 'approved' });
    expect(
      journal.find({ merchantId: 'default', terminalId: 't2', reference: 'GHOST-1' })?.state,
    ).toBe('approved');
    expect(simulator.ledger.count).toBe(1);
  });

  it('a retry that is cancelled while waiting stops waiting (ABORTED); the payment in flight goes on', async () => {
    const { simulator, service } = await setup({ simulator: { cardDelayMs: 300 } });
    const first = service.pay('t1', sale('AB-1', 2000));
    const controller = new AbortController();
    const retry = service.pay('t1', sale('AB-1', 2000), { signal: controller.signal });
    controller.abort();
    await expect(retry).rejects.toMatchObject({ code: 'ABORTED' });
    expect((await first).outcome).toBe('approved');
    expect(simulator.ledger.forReference('AB-1')).toHaveLength(1);
  });

  it('a request aborted while queued behind another is failed ABORTED and never sent', async () => {
    const { simulator, service } = await setup({ simulator: { cardDelayMs: 300 } });
    const first = service.pay('t1', sale('QA-1', 2000));
    const controller = new AbortController();
    const queued = service.pay('t1', sale('QA-2', 2000), { signal: controller.signal });
    controller.abort();
    expect(await queued).toMatchObject({ outcome: 'failed', errorCode: 'ABORTED' });
    expect((await first).outcome).toBe('approved');
    expect(simulator.ledger.all().map((c) => c.reference)).toEqual(['QA-1']);
  });

  it('a journal that fails when the answer arrives: the result is unknown with the approval, never an exception', async () => {
    const { simulator } = await setup();
    const dir = tempDir('broken-');
    class BrokenJournal extends SqliteJournal {
      override complete(): never {
        throw new Error('disk full');
      }
      override resolveUnknown(): never {
        throw new Error('disk full');
      }
    }
    const journal = new BrokenJournal({ path: join(dir, 'ecr-bridge.db') });
    cleanups.push(() => journal.close());
    const service = new TransactionService({ journal });
    service.addTerminal(
      't3',
      new PayableDriver({ url: simulator.url, token: TOKEN, posName: 'POS-3' }),
    );
    cleanups.push(() => service.close());
    const result = await service.pay('t3', sale('DISK-1', 2000));
    expect(result).toMatchObject({
      outcome: 'unknown',
      errorCode: 'JOURNAL_ERROR',
      approvalCode: simulator.ledger.all()[0]?.approvalCode,
    });
    expect(result.message).toMatch(
      /the terminal answered approved but the journal could not record it/,
    );
  });

  it("one device, two terminal ids, two processes' worth of services: still one transaction at a time on the wire", async () => {
    const { simulator, journal } = await setup({ simulator: { cardDelayMs: 200 } });
    const services = ['till-1', 'till-2'].map((id, i) => {
      const service = new TransactionService({ journal });
      service.addTerminal(
        id,
        new PayableDriver({ url: simulator.url, token: TOKEN, posName: `POS-X${i}` }),
      );
      cleanups.push(() => service.close());
      return service;
    });
    const results = await Promise.all([
      services[0]?.pay('till-1', sale('DEV-1', 2000)),
      services[1]?.pay('till-2', sale('DEV-2', 2000)),
    ]);
    // Had both gone on the wire at once, the terminal would have answered the second STATUS_BUSY.
    expect(results.map((r) => r?.outcome)).toEqual(['approved', 'approved']);
    expect(simulator.ledger.count).toBe(2);
  });

  it('the same reference with another amount is refused with DUPLICATE_REFERENCE and sends nothing', async () => {
    const { simulator, service } = await setup();
    await service.pay('t1', sale('R-1', 2000));
    await expect(service.pay('t1', sale('R-1', 2100))).rejects.toMatchObject({
      code: 'DUPLICATE_REFERENCE',
      field: 'reference',
    });
    expect(simulator.ledger.count).toBe(1);
  });

  it('one transaction at a time per terminal; past the queue bound → failed TERMINAL_BUSY, never interleaved', async () => {
    const { simulator, service } = await setup({ simulator: { cardDelayMs: 150 }, maxQueue: 1 });
    const results = await Promise.all(
      ['Q-1', 'Q-2', 'Q-3'].map((ref) => service.pay('t1', sale(ref, 2000))),
    );
    expect(results.map((r) => r.outcome)).toEqual(['approved', 'approved', 'failed']);
    expect(results[2]).toMatchObject({ errorCode: 'TERMINAL_BUSY' });
    expect(simulator.ledger.all().map((c) => c.reference)).toEqual(['Q-1', 'Q-2']);
    // Busy-refused charged nothing: the same reference later is a new attempt (invariant 1)…
    expect(await service.pay('t1', sale('Q-3', 2000))).toMatchObject({
      outcome: 'approved',
      attempt: 2,
      replayed: false,
    });
    // …and once approved, that is the answer for the reference from now on.
    expect(await service.pay('t1', sale('Q-3', 2000))).toMatchObject({
      outcome: 'approved',
      attempt: 2,
      replayed: true,
    });
    expect(simulator.ledger.all().map((c) => c.reference)).toEqual(['Q-1', 'Q-2', 'Q-3']);
    expect((await service.attempts('t1', 'Q-3')).map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'failed'],
      [2, 'approved'],
    ]);
  });

  it('a declined reference sent again is a new attempt; an approved one is never charged again', async () => {
    const { simulator, service } = await setup();
    // 20.51 is the simulators' decline amount; the control port's POST /next would do the same
    // for any amount (docs/simulators.md).
    expect(await service.pay('t1', sale('D-1', 2051))).toMatchObject({
      outcome: 'declined',
      attempt: 1,
    });
    expect(await service.pay('t1', sale('D-1', 2051))).toMatchObject({
      outcome: 'declined',
      attempt: 2,
      replayed: false,
    });
    // Another amount under the same reference is still a conflict, even after a decline.
    await expect(service.pay('t1', sale('D-1', 2000))).rejects.toMatchObject({
      code: 'DUPLICATE_REFERENCE',
    });
    expect(simulator.ledger.count).toBe(0);
    expect((await service.attempts('t1', 'D-1')).map((a) => a.outcome)).toEqual([
      'declined',
      'declined',
    ]);
  });

  it('an amount past the configured maximum is refused before anything is journaled', async () => {
    const { simulator, journal, driver } = await setup();
    const capped = new TransactionService({ journal, maxAmountMinor: 5_000 });
    capped.addTerminal('capped', driver);
    await expect(capped.pay('capped', sale('CAP-1', 5_001))).rejects.toMatchObject({
      code: 'INVALID_AMOUNT',
      field: 'amount',
      message: 'amount: must be at most 5000 minor units',
    });
    expect((await capped.pay('capped', sale('CAP-2', 5_000))).outcome).toBe('approved');
    expect(journal.list().map((row) => row.reference)).toEqual(['CAP-2']);
    expect(simulator.ledger.count).toBe(1);
  });

  it('bad input is refused before anything is journaled or sent', async () => {
    const { simulator, service, journal } = await setup();
    await expect(service.pay('t1', sale('x'.repeat(65), 2000))).rejects.toMatchObject({
      code: 'INVALID_REFERENCE',
    });
    await expect(service.pay('t1', sale('BAD\u0007', 2000))).rejects.toMatchObject({
      code: 'INVALID_REFERENCE',
    });
    await expect(service.pay('t1', sale('EUR-1', 2000, 'EUR'))).rejects.toMatchObject({
      code: 'INVALID_CURRENCY',
    });
    await expect(service.pay('t1', sale('NEG-1', -5))).rejects.toMatchObject({
      code: 'INVALID_AMOUNT',
    });
    await expect(
      service.pay('t1', { ...sale('RF-1', 2000), kind: 'refund' }),
    ).rejects.toMatchObject({ code: 'UNSUPPORTED_OPERATION' });
    await expect(service.pay('nope', sale('T-1', 2000))).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      field: 'terminalId',
    });
    expect(journal.list()).toEqual([]);
    expect(simulator.ledger.count).toBe(0);
  });
});
