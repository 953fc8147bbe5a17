import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { makeOwner } from '../../src/core/owner.js';
import { TransactionService } from '../../src/core/transaction-service.js';
import type { MoneyKind, PaymentRequest } from '../../src/core/transaction.js';
import { SemiDriver, type SemiDriverOptions } from '../../src/drivers/semi.js';
import { RECOVERED_BEFORE_SENT } from '../../src/core/journal-port.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { SIMULATED_CARD } from '../../src/simulators/scenarios.js';
import { SemiSimulator, type SemiSimulatorOptions } from '../../src/simulators/semi/simulator.js';
import { closedPort, tempDir, waitFor } from '../helpers.js';

type Transport = 'tcp' | 'ws';

const ANSWER_TIMEOUT_MS = 700;
const SLOW_ANSWER_MS = 300;
const MASKED_PAN = '476173******0010';

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A SEMI simulator on free ports, TCP writes cut into random 1–16 byte pieces. */
async function startSimulator(options: SemiSimulatorOptions = {}): Promise<SemiSimulator> {
  const simulator = await new SemiSimulator({
    wsPort: 0,
    tcpPort: 0,
    controlPort: 0,
    fragment: true,
    slowAnswerMs: SLOW_ANSWER_MS,
    ...options,
  }).start();
  cleanups.push(() => simulator.stop());
  return simulator;
}

function urlOf(simulator: SemiSimulator, transport: Transport): string {
  const url = transport === 'ws' ? simulator.wsUrl : simulator.tcpUrl;
  if (url === undefined) throw new Error(`the simulator has no ${transport} server`);
  return url;
}

function portOf(url: string | undefined): number {
  if (url === undefined) throw new Error('no URL');
  return Number(new URL(url).port);
}

async function setup(
  options: {
    transport?: Transport;
    simulator?: SemiSimulatorOptions;
    driver?: Partial<SemiDriverOptions>;
  } = {},
) {
  const simulator = await startSimulator(options.simulator);
  const dir = tempDir('semi-e2e-');
  const logPath = join(dir, 'test.log');
  const logger = createLogger({
    level: 'debug',
    destination: pino.destination({ dest: logPath, sync: true }),
  });
  const journal = new SqliteJournal({ path: join(dir, 'ecr-bridge.db') });
  cleanups.push(() => journal.close());
  const driver = new SemiDriver({
    url: urlOf(simulator, options.transport ?? 'tcp'),
    currency: 'USD',
    answerTimeoutMs: ANSWER_TIMEOUT_MS,
    statusTimeoutMs: 500,
    recoveryMs: 5_000,
    logger,
    ...options.driver,
  });
  const service = new TransactionService({ journal, logger });
  service.addTerminal('t1', driver);
  cleanups.push(() => service.close());
  const row = (reference: string) =>
    journal.find({ merchantId: 'default', terminalId: 't1', reference });
  return { simulator, journal, driver, service, row, logPath, dbPath: join(dir, 'ecr-bridge.db') };
}

const usd = (minor: number) => ({ minor, currency: 'USD' });

function request(
  kind: MoneyKind,
  reference: string,
  minor: number,
  originalReference?: string,
): PaymentRequest {
  return {
    kind,
    reference,
    amount: usd(minor),
    ...(originalReference === undefined ? {} : { originalReference }),
  };
}

const sale = (reference: string, minor: number) => request('sale', reference, minor);

describe.each<Transport>(['tcp', 'ws'])(
  'SEMI driver ↔ simulator over %s (TCP writes fragmented), every scenario of the table',
  (transport) => {
    it('any other amount → approved with a masked card, VISA and the terminal id; the same reference again is replayed, charged once', async () => {
      const { simulator, service, journal, row } = await setup({ transport });
      const result = await service.pay('t1', sale('A-1', 1000));
      expect(result).toMatchObject({
        outcome: 'approved',
        state: 'approved',
        replayed: false,
        cardBrand: 'VISA',
        maskedPan: MASKED_PAN,
        details: {
          STATE: '0',
          TRAN_TYPE: 'CREDIT',
          TRAN_METHOD: 'SALE',
          SERIAL_NO: simulator.serial,
        },
      });
      expect(result.approvalCode).toMatch(/^\d{6}$/);
      const [charge] = simulator.ledger.forReference('A-1');
      expect(result.terminalTxId).toBe(charge?.terminalTxId);
      expect(result.approvalCode).toBe(charge?.approvalCode);
      expect(JSON.stringify(row('A-1'))).not.toContain(SIMULATED_CARD.pan);

      const again = await service.pay('t1', sale('A-1', 1000));
      expect(again).toMatchObject({
        outcome: 'approved',
        replayed: true,
        approvalCode: result.approvalCode,
        terminalTxId: result.terminalTxId,
      });
      expect(simulator.ledger.forReference('A-1')).toHaveLength(1);
      expect(simulator.openBatch()).toHaveLength(1);
      expect(journal.findByReference('A-1')).toHaveLength(1);
    });

    it('…51 declined, …52 cancelled, …53 failed TERMINAL_BUSY, …57 failed TERMINAL_REFUSED: nothing charged', async () => {
      const { simulator, service, row } = await setup({ transport });
      const cases = [
        ['D-51', 1051, { outcome: 'declined', state: 'declined' }],
        ['C-52', 1052, { outcome: 'cancelled', state: 'cancelled' }],
        ['B-53', 1053, { outcome: 'failed', state: 'failed', errorCode: 'TERMINAL_BUSY' }],
        ['I-57', 1057, { outcome: 'failed', state: 'failed', errorCode: 'TERMINAL_REFUSED' }],
      ] as const;
      for (const [reference, minor, expected] of cases) {
        const result = await service.pay('t1', sale(reference, minor));
        expect(result, reference).toMatchObject({ ...expected, replayed: false });
        expect(result.approvalCode, reference).toBeUndefined();
        expect(row(reference)?.state, reference).toBe(expected.state);
      }
      expect(simulator.ledger.count).toBe(0);
      expect(simulator.openBatch().filter((e) => e.approved)).toEqual([]);
    });

    it('…54 charged but never answered → approved by the status query, charged once', async () => {
      const { simulator, service, journal, row } = await setup({ transport });
      const result = await service.pay('t1', sale('N-54', 1054));
      expect(result).toMatchObject({
        outcome: 'approved',
        state: 'approved',
        cardBrand: 'VISA',
        maskedPan: MASKED_PAN,
        details: { resolvedBy: 'status-query' },
      });
      expect(result.message).toMatch(/status query/);
      expect(result.message).toMatch(new RegExp(`no answer within ${ANSWER_TIMEOUT_MS} ms`));
      const charges = simulator.ledger.forReference('N-54');
      expect(charges).toHaveLength(1);
      expect(result.approvalCode).toBe(charges[0]?.approvalCode);
      expect(result.terminalTxId).toBe(charges[0]?.terminalTxId);
      expect(journal.findByReference('N-54')).toHaveLength(1);
      expect(row('N-54')?.state).toBe('approved');
    });

    it('…55 link drops after the card read → approved via status query, charged once', async () => {
      const { simulator, service, journal, row } = await setup({ transport });
      const result = await service.pay('t1', sale('L-55', 1055));
      expect(result).toMatchObject({
        outcome: 'approved',
        state: 'approved',
        details: { resolvedBy: 'status-query' },
      });
      expect(result.message).toMatch(/after: no answer seen/);
      expect(simulator.openBatch().filter((e) => e.merTxnId === 'L-55')).toHaveLength(1);
      expect(simulator.ledger.forReference('L-55')).toHaveLength(1);
      expect(result.terminalTxId).toBe(simulator.ledger.forReference('L-55')[0]?.terminalTxId);
      expect(journal.findByReference('L-55')).toHaveLength(1);
      expect(row('L-55')?.approvalCode).toBe(result.approvalCode);
    });

    it('…56 answers slowly within the answer timeout → approved directly; …58 → approved for half (partial)', async () => {
      const { simulator, service, row } = await setup({ transport });
      const started = Date.now();
      const slow = await service.pay('t1', sale('S-56', 1056));
      expect(Date.now() - started).toBeGreaterThanOrEqual(SLOW_ANSWER_MS - 10);
      expect(slow).toMatchObject({ outcome: 'approved', state: 'approved' });
      expect(slow.details?.resolvedBy).toBeUndefined();

      const partial = await service.pay('t1', sale('P-58', 1058));
      expect(partial).toMatchObject({
        outcome: 'approved',
        state: 'approved',
        details: { partial: true, approvedMinor: 529, requestedMinor: 1058 },
      });
      expect(partial.message).toMatch(/partially approved: 529 of 1058/);
      expect(row('P-58')?.details).toMatchObject({ partial: true, approvedMinor: 529 });
      expect(simulator.ledger.all().map((c) => [c.reference, c.amountMinor])).toEqual([
        ['S-56', 1056],
        ['P-58', 529],
      ]);
    });
  },
);

describe('SEMI follow-ups and batch close', () => {
  it('capture, void, tip adjust and refund act on their originals; bad follow-ups are refused before the journal; batch close totals what happened', async () => {
    const { simulator, service, journal, row } = await setup();
    const approved = { outcome: 'approved', state: 'approved' };

    const auth = await service.pay('t1', request('auth', 'AUTH-1', 2000));
    expect(auth).toMatchObject(approved);
    expect(auth.terminalTxId).toBeDefined();
    expect(await service.pay('t1', request('capture', 'CAP-1', 1500, 'AUTH-1'))).toMatchObject({
      ...approved,
      details: { TRAN_METHOD: 'CAPTURE' },
    });

    expect(await service.pay('t1', sale('SALE-V', 3000))).toMatchObject(approved);
    expect(await service.pay('t1', request('void', 'VOID-1', 3000, 'SALE-V'))).toMatchObject({
      ...approved,
      details: { TRAN_METHOD: 'VOID' },
    });

    expect(await service.pay('t1', sale('SALE-T', 4000))).toMatchObject(approved);
    expect(await service.pay('t1', request('tip-adjust', 'TIP-1', 500, 'SALE-T'))).toMatchObject({
      ...approved,
      details: { TRAN_METHOD: 'TIP ADJUST' },
    });
    expect(await service.pay('t1', request('refund', 'REF-1', 1000, 'SALE-T'))).toMatchObject({
      ...approved,
      details: { TRAN_METHOD: 'REFUND' },
    });

    const rows = journal.list().length;
    const charges = simulator.ledger.count;
    // Refused before anything is journaled or sent. Refunds add up against their sale (1000 of
    // 4000 refunded already, 3001 more is too much); nothing follows a voided sale.
    const refusals = [
      [request('void', 'VOID-X', 1000, 'NO-SUCH-SALE'), 'NOT_FOUND', 'originalReference'],
      [request('void', 'VOID-2', 3999, 'SALE-T'), 'INVALID_AMOUNT', 'amount'],
      [request('capture', 'CAP-2', 1000, 'SALE-T'), 'INVALID_INPUT', 'originalReference'],
      [request('refund', 'REF-2', 3001, 'SALE-T'), 'INVALID_AMOUNT', 'amount'],
      [request('refund', 'REF-3', 100, 'SALE-V'), 'INVALID_INPUT', 'originalReference'],
      [request('void', 'VOID-3', 3000, 'SALE-V'), 'INVALID_INPUT', 'originalReference'],
    ] as const;
    for (const [refused, code, field] of refusals) {
      await expect(service.pay('t1', refused), refused.reference).rejects.toMatchObject({
        code,
        field,
      });
    }
    // A retry of a follow-up is no follow-up of its own: the stored result comes back.
    expect(await service.pay('t1', request('void', 'VOID-1', 3000, 'SALE-V'))).toMatchObject({
      ...approved,
      replayed: true,
    });
    expect(journal.list()).toHaveLength(rows);
    for (const reference of ['VOID-X', 'VOID-2', 'CAP-2', 'REF-2', 'REF-3', 'VOID-3'])
      expect(row(reference)).toBeUndefined();
    expect(simulator.ledger.count).toBe(charges);

    expect(simulator.ledger.all().map((c) => [c.reference, c.kind, c.amountMinor])).toEqual([
      ['AUTH-1', 'auth', 2000],
      ['CAP-1', 'capture', 1500],
      ['SALE-V', 'sale', 3000],
      ['VOID-1', 'void', 3000],
      ['SALE-T', 'sale', 4000],
      ['TIP-1', 'tip adjust', 500],
      ['REF-1', 'refund', 1000],
    ]);

    // The voided sale is not counted, the capture counts as a sale, the tip adds to its sale.
    expect(await service.batchClose('t1')).toEqual({
      batchNumber: '1',
      saleCount: 2,
      sales: usd(4500 + 1500),
      refundCount: 1,
      refunds: usd(1000),
      net: usd(6000 - 1000),
    });
    expect(simulator.openBatch()).toEqual([]);
    expect(await service.batchClose('t1')).toEqual({
      batchNumber: '2',
      saleCount: 0,
      sales: usd(0),
      refundCount: 0,
      refunds: usd(0),
      net: usd(0),
    });
  });
});

describe('SEMI cancel, restarts and unknown outcomes', () => {
  it('cancelCurrent during the card step → true, the pay ends cancelled, nothing charged; with nothing in flight → false', async () => {
    const { simulator, service, row } = await setup({
      simulator: { cardDelayMs: 2000 },
      driver: { answerTimeoutMs: 5000 },
    });
    expect(await service.cancelCurrent('t1')).toBe(false);
    const started = Date.now();
    const paying = service.pay('t1', sale('CC-1', 1000));
    await sleep(200);
    await waitFor(() => simulator.busy, 5000, 'the card step');
    expect(await service.cancelCurrent('t1')).toBe(true);
    expect(await paying).toMatchObject({ outcome: 'cancelled', state: 'cancelled' });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(row('CC-1')?.state).toBe('cancelled');
    expect(simulator.ledger.count).toBe(0);
    expect(simulator.openBatch().filter((e) => e.approved)).toEqual([]);
    // The link stays up with nothing in flight: nothing to cancel.
    expect(await service.cancelCurrent('t1')).toBe(false);
  });

  it('link drops after the card read, then the terminal restarts on the same port: the driver reconnects with back-off and the next payment is approved', async () => {
    const { simulator, service, logPath } = await setup({ driver: { connectAttempts: 10 } });
    expect(await service.pay('t1', sale('RS-1', 1055))).toMatchObject({
      outcome: 'approved',
      details: { resolvedBy: 'status-query' },
    });
    const port = portOf(simulator.tcpUrl);
    await simulator.stop();

    const paying = service.pay('t1', sale('RS-2', 1000));
    await sleep(150);
    const restarted = await startSimulator({ tcpPort: port, wsPort: null });
    expect(await paying).toMatchObject({ outcome: 'approved', state: 'approved' });
    expect(restarted.ledger.all().map((c) => c.reference)).toEqual(['RS-2']);
    expect(simulator.ledger.all().map((c) => c.reference)).toEqual(['RS-1']);
    expect(readFileSync(logPath, 'utf8')).toContain('terminal unreachable, retrying');
  });

  it('an unknown left by a terminal that went away: TERMINAL_NOT_READY while unreachable; a restarted terminal that no longer knows it cannot settle it, so it stays unknown for a person and payments go on', async () => {
    const { simulator, service, row } = await setup({
      driver: { recoveryMs: 0, statusTimeoutMs: 300, connectAttempts: 2 },
    });
    const port = portOf(simulator.tcpUrl);
    let stopping: Promise<void> | undefined;
    simulator.ledger.once('charge', () => {
      stopping = simulator.stop();
    });
    expect(await service.pay('t1', sale('UK-1', 1054))).toMatchObject({
      outcome: 'unknown',
      state: 'unknown',
      errorCode: 'OUTCOME_UNKNOWN',
    });
    expect(row('UK-1')?.state).toBe('unknown');
    expect(simulator.ledger.forReference('UK-1')).toHaveLength(1);
    await stopping;

    // Still unreachable: the status query cannot be answered, so nothing new is sent.
    expect(await service.pay('t1', sale('UK-2', 1000))).toMatchObject({
      outcome: 'failed',
      errorCode: 'TERMINAL_NOT_READY',
    });
    expect(row('UK-1')?.state).toBe('unknown');

    // A new terminal on the same port has an empty batch: "no transaction" proves nothing (the
    // old one did charge UK-1), so UK-1 stays unknown for reconciliation and UK-3 goes through.
    const fresh = await startSimulator({ tcpPort: port, wsPort: null });
    expect(await service.pay('t1', sale('UK-3', 1000))).toMatchObject({ outcome: 'approved' });
    expect(row('UK-1')).toMatchObject({ state: 'unknown', errorCode: 'OUTCOME_UNKNOWN' });
    expect(fresh.ledger.all().map((c) => c.reference)).toEqual(['UK-3']);
    // Once UK-3 ran, UK-1 is no longer the latest: it is not asked about again.
    expect(await service.pay('t1', sale('UK-4', 1000))).toMatchObject({ outcome: 'approved' });
    expect(fresh.ledger.all().map((c) => c.reference)).toEqual(['UK-3', 'UK-4']);
  });

  it('a payment whose process died between the claim and `sent` is settled failed by recovery (and one an earlier version left unknown, from the journal timeline): the next payment goes at once, nothing charged; one that was `sent` still waits for the card step', async () => {
    const { simulator, service, journal, row, dbPath } = await setup();
    expect(await service.pay('t1', sale('NS-0', 1000))).toMatchObject({ outcome: 'approved' });
    // An owner whose process has exited: recovery settles its rows.
    const gone = makeOwner(spawnSync(process.execPath, ['-e', '']).pid as number);
    const claim = (reference: string) =>
      journal.claim({
        merchantId: 'default',
        terminalId: 't1',
        reference,
        kind: 'sale',
        amountMinor: 1200,
        currency: 'USD',
        method: 'card',
        owner: gone,
      });
    expect(claim('NS-1').type).toBe('claimed');
    await service.recover();
    expect(row('NS-1')).toMatchObject({ state: 'failed', outcome: 'failed', errorCode: 'ABORTED' });
    expect(row('NS-1')?.message).toMatch(/never contacted/);
    // An earlier version recovered such a row to `unknown` and waited for the terminal: the next
    // recovery settles it from the timeline (no `sent`).
    const legacy = claim('NS-1b');
    if (legacy.type !== 'claimed') throw new Error('NS-1b not claimed');
    const db = new Database(dbPath);
    db.prepare(
      `UPDATE transactions SET state = 'unknown', error_code = 'OUTCOME_UNKNOWN', message = ?,
         owner_pid = NULL, owner_token = NULL WHERE id = ?`,
    ).run(RECOVERED_BEFORE_SENT, legacy.row.id);
    db.close();
    await service.recover();
    expect(row('NS-1b')).toMatchObject({
      state: 'failed',
      outcome: 'failed',
      errorCode: 'ABORTED',
    });
    expect(row('NS-1b')?.message).toMatch(/never contacted, nothing was charged/);
    // Found by the fault suite: this used to be TERMINAL_NOT_READY for the whole card step (3 min).
    expect(await service.pay('t1', sale('NS-2', 1000))).toMatchObject({ outcome: 'approved' });

    // `sent` was journaled: a byte may have left, so only the terminal's word settles it.
    const sent = claim('NS-3');
    if (sent.type !== 'claimed') throw new Error('NS-3 not claimed');
    journal.markSent(sent.row.id, gone);
    await service.recover();
    expect(await service.pay('t1', sale('NS-4', 1000))).toMatchObject({
      outcome: 'failed',
      errorCode: 'TERMINAL_NOT_READY',
    });
    expect(row('NS-3')?.state).toBe('unknown');
    expect(simulator.ledger.all().map((c) => c.reference)).toEqual(['NS-0', 'NS-2']);
  });

  it('a sent row whose timeline lacks `sent` (filled in by migration 6 for older rows) is never taken for one never sent', async () => {
    const { service, journal, row, dbPath } = await setup();
    expect(await service.pay('t1', sale('OT-0', 1000))).toMatchObject({ outcome: 'approved' });
    const gone = makeOwner(spawnSync(process.execPath, ['-e', '']).pid as number);
    const claimed = journal.claim({
      merchantId: 'default',
      terminalId: 't1',
      reference: 'OT-1',
      kind: 'sale',
      amountMinor: 1200,
      currency: 'USD',
      method: 'card',
      owner: gone,
    });
    if (claimed.type !== 'claimed') throw new Error('OT-1 not claimed');
    journal.markSent(claimed.row.id, gone);
    await service.recover();
    // As migration 6 left a row that was sent before it: `received`, then its later state.
    const db = new Database(dbPath);
    db.prepare("DELETE FROM transaction_events WHERE transaction_id = ? AND state = 'sent'").run(
      claimed.row.id,
    );
    db.close();
    expect((await journal.eventsOf(claimed.row.id)).map((e) => e.state)).toEqual([
      'received',
      'unknown',
    ]);
    // A byte may have left: only the terminal's word settles it, never the timeline alone.
    expect(await service.pay('t1', sale('OT-2', 1000))).toMatchObject({
      outcome: 'failed',
      errorCode: 'TERMINAL_NOT_READY',
    });
    expect(row('OT-1')?.state).toBe('unknown');
  });

  it('an unknown left by a terminal that went away is settled as approved when the same terminal comes back and still knows it', async () => {
    const port = await closedPort();
    const { simulator, service, row } = await setup({
      simulator: { tcpPort: port, wsPort: null },
      driver: { recoveryMs: 0, statusTimeoutMs: 300, connectAttempts: 2 },
    });
    let stopping: Promise<void> | undefined;
    simulator.ledger.once('charge', () => {
      stopping = simulator.stop();
    });
    expect(await service.pay('t1', sale('UK-1', 1054))).toMatchObject({
      outcome: 'unknown',
      state: 'unknown',
    });
    await stopping;
    await simulator.start();

    expect(await service.pay('t1', sale('UK-2', 1000))).toMatchObject({ outcome: 'approved' });
    const [charge] = simulator.ledger.forReference('UK-1');
    expect(row('UK-1')).toMatchObject({
      state: 'approved',
      approvalCode: charge?.approvalCode,
      terminalTxId: charge?.terminalTxId,
      maskedPan: MASKED_PAN,
      details: { resolvedBy: 'status-query' },
    });
    expect(row('UK-1')?.message).toMatch(/before the next transaction/);
    expect(simulator.ledger.all().map((c) => c.reference)).toEqual(['UK-1', 'UK-2']);
  });
});
