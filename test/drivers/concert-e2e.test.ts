import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { containsPan } from '../../src/core/pan.js';
import { TransactionService } from '../../src/core/transaction-service.js';
import type { PaymentRequest } from '../../src/core/transaction.js';
import { ConcertDriver, type ConcertDriverOptions } from '../../src/drivers/concert.js';
import { ConcertSession } from '../../src/drivers/concert-session.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { CONCERT_CONTROL, encodeFrame } from '../../src/protocols/concert/frame.js';
import {
  decodeRequest,
  encodeAnswer,
  encodeRequest,
} from '../../src/protocols/concert/messages.js';
import {
  ConcertSimulator,
  type ConcertSimulatorOptions,
} from '../../src/simulators/concert/simulator.js';
import { silentLogger } from '../../src/core/logger.js';
import { openPtyPair } from '../../src/transports/pty.js';
import { openSerial } from '../../src/transports/serial.js';
import { files } from '../global-setup.js';
import { closedPort, tempDir, waitFor } from '../helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Link = 'pty' | 'tcp';

async function setup(
  link: Link,
  options: { simulator?: ConcertSimulatorOptions; driver?: Partial<ConcertDriverOptions> } = {},
) {
  // Line noise on by default: every scenario also runs the NAK/resend path now and then.
  const simulator = await new ConcertSimulator({
    ...(link === 'pty' ? { pty: true } : { tcpPort: 0 }),
    lineNoise: 0.3,
    ...options.simulator,
  }).start();
  cleanups.push(() => simulator.stop());
  const dir = tempDir('concert-e2e-');
  const logger = createLogger({
    level: 'debug',
    destination: pino.destination({ dest: join(dir, 'test.log'), sync: true }),
  });
  const journal = new SqliteJournal({ path: join(dir, 'ecr-bridge.db') });
  cleanups.push(() => journal.close());
  const url = link === 'pty' ? `serial://${simulator.device}` : (simulator.tcpUrl as string);
  const driver = new ConcertDriver({ url, answerTimeoutMs: 1_500, logger, ...options.driver });
  const service = new TransactionService({ journal, logger });
  service.addTerminal('t1', driver);
  cleanups.push(() => service.close());
  return { simulator, service, journal, dir };
}

function sale(reference: string, minor: number): PaymentRequest {
  return { kind: 'sale', reference, amount: { minor, currency: 'EUR' } };
}

describe.each<Link>(['pty', 'tcp'])(
  'Concert driver ↔ simulator over %s, with line noise',
  (link) => {
    it('approved: the card number from the report field is masked, the ledger charged once; a retry is replayed', async () => {
      const { simulator, service } = await setup(link);
      const result = await service.pay('t1', sale('C-1', 1000));
      expect(result).toMatchObject({ outcome: 'approved', maskedPan: '476173******0010' });
      expect(result.details).toMatchObject({ status: 'approved', answerSize: 'full' });
      expect(simulator.ledger.count).toBe(1);
      expect(await service.pay('t1', sale('C-1', 1000))).toMatchObject({ replayed: true });
      expect(simulator.ledger.count).toBe(1);
    });

    it('refusals (…51 decline, …52 cancel, …53 busy, …57 invalid) → declined, nothing charged', async () => {
      const { simulator, service } = await setup(link);
      for (const minor of [1051, 1052, 1053, 1057]) {
        expect(await service.pay('t1', sale(`R-${minor}`, minor))).toMatchObject({
          outcome: 'declined',
        });
      }
      expect(simulator.ledger.count).toBe(0);
    });

    it('…54 silent after accepting the request → unknown, charged once, never sent again', async () => {
      const { simulator, service } = await setup(link);
      expect(await service.pay('t1', sale('S-1', 1054))).toMatchObject({
        outcome: 'unknown',
        errorCode: 'OUTCOME_UNKNOWN',
      });
      expect(await service.pay('t1', sale('S-1', 1054))).toMatchObject({
        outcome: 'unknown',
        replayed: true,
      });
      expect(simulator.ledger.count).toBe(1);
    });

    it('…56 slow answer within the timeout → approved; …58 (no partial in Concert) → approved in full', async () => {
      const { service } = await setup(link, { simulator: { slowAnswerMs: 300 } });
      expect(await service.pay('t1', sale('SL-1', 1056))).toMatchObject({ outcome: 'approved' });
      expect(await service.pay('t1', sale('P-1', 1058))).toMatchObject({
        outcome: 'approved',
        details: { amountMinor: 1058 },
      });
    });

    it('with line noise every payment still gets through on the NAK/resend path, each charged once', async () => {
      const { simulator, service, dir } = await setup(link, { simulator: { lineNoise: 0.5 } });
      for (let i = 0; i < 12; i++) {
        expect(await service.pay('t1', sale(`N-${i}`, 2000 + i * 100))).toMatchObject({
          outcome: 'approved',
        });
      }
      expect(simulator.ledger.count).toBe(12);
      expect(readFileSync(join(dir, 'test.log'), 'utf8')).toMatch(
        /refused a frame from the terminal/,
      );
    });

    it('refund (credit), void (cancel) and pre-authorisation reach the terminal as their types', async () => {
      const { simulator, service } = await setup(link);
      await service.pay('t1', sale('O-1', 3000));
      for (const [kind, reference] of [
        ['refund', 'K-REF'],
        ['auth', 'K-AUTH'],
      ] as const) {
        expect(
          await service.pay('t1', { kind, reference, amount: { minor: 1500, currency: 'EUR' } }),
        ).toMatchObject({ outcome: 'approved' });
      }
      expect(
        await service.pay('t1', {
          kind: 'void',
          reference: 'K-VOID',
          originalReference: 'O-1',
          amount: { minor: 3000, currency: 'EUR' },
        }),
      ).toMatchObject({ outcome: 'approved' });
      expect(simulator.ledger.all().map((c) => c.kind)).toEqual([
        'debit',
        'credit',
        'preauth',
        'cancel',
      ]);
    });
  },
);

describe('Concert: terminals that are off, silent or unplugged', () => {
  it('switched off (nothing answers the ENQ within 2 s) → failed TERMINAL_UNREACHABLE, certainly not charged', async () => {
    const pair = await openPtyPair();
    cleanups.push(() => pair.close());
    const dir = tempDir('concert-off-');
    const journal = new SqliteJournal({ path: join(dir, 'ecr-bridge.db') });
    cleanups.push(() => journal.close());
    const service = new TransactionService({ journal });
    service.addTerminal(
      't1',
      new ConcertDriver({ url: `serial://${pair.posPath}`, ackTimeoutMs: 300 }),
    );
    cleanups.push(() => service.close());
    const started = Date.now();
    expect(await service.pay('t1', sale('OFF-1', 1000))).toMatchObject({
      outcome: 'failed',
      errorCode: 'TERMINAL_UNREACHABLE',
    });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a serial path that does not exist → failed TERMINAL_UNREACHABLE naming the path, nothing sent', async () => {
    const dir = tempDir('concert-nopath-');
    const journal = new SqliteJournal({ path: join(dir, 'ecr-bridge.db') });
    cleanups.push(() => journal.close());
    const service = new TransactionService({ journal });
    service.addTerminal('t1', new ConcertDriver({ url: 'serial:///dev/ttyNOPE9' }));
    const result = await service.pay('t1', sale('NP-1', 1000));
    expect(result).toMatchObject({ outcome: 'failed', errorCode: 'TERMINAL_UNREACHABLE' });
    expect(result.message).toMatch(/\/dev\/ttyNOPE9/);
    expect(result.message).toMatch(/ecr-bridge ports/);
  });

  it('nothing listening on TCP → failed TERMINAL_UNREACHABLE', async () => {
    const dir = tempDir('concert-closed-');
    const journal = new SqliteJournal({ path: join(dir, 'ecr-bridge.db') });
    cleanups.push(() => journal.close());
    const service = new TransactionService({ journal });
    service.addTerminal(
      't1',
      new ConcertDriver({ url: `tcp://127.0.0.1:${await closedPort()}`, connectAttempts: 1 }),
    );
    expect(await service.pay('t1', sale('CL-1', 1000))).toMatchObject({
      outcome: 'failed',
      errorCode: 'TERMINAL_UNREACHABLE',
    });
  });

  it('device unplugged after the card was read → unknown, charged once', async () => {
    const { simulator, service } = await setup('pty', { simulator: { cardDelayMs: 400 } });
    simulator.ledger.once('charge', () => void simulator.unplug());
    const result = await service.pay('t1', sale('U-1', 1000));
    expect(result).toMatchObject({ outcome: 'unknown', errorCode: 'OUTCOME_UNKNOWN' });
    expect(simulator.ledger.count).toBe(1);
  });

  it.each([
    ['for another POS number', { posNumber: 2 }],
    ['approving another amount', { amountDelta: 1 }],
    ['in another currency', { currencyNumeric: '840' }],
  ] as const)(
    'an answer %s is not ours: ignored, so the payment ends unknown at the timeout',
    async (_case, twist) => {
      // A fake terminal that answers every request with the twist applied.
      const pair = await openPtyPair();
      cleanups.push(() => pair.close());
      const terminal = await openSerial({ path: pair.terminalPath });
      const session: ConcertSession = new ConcertSession(terminal, {
        role: 'terminal',
        logger: silentLogger,
        onEvent: (event) => {
          if (event.type !== 'message') return;
          const request = decodeRequest(event.data);
          session.send(
            encodeAnswer({
              posNumber: 'posNumber' in twist ? twist.posNumber : request.posNumber,
              status: 'approved',
              amountMinor: request.amountMinor + ('amountDelta' in twist ? twist.amountDelta : 0),
              paymentMode: 'card',
              size: 'full',
              report: '4111111111111111',
              currencyNumeric:
                'currencyNumeric' in twist ? twist.currencyNumeric : request.currencyNumeric,
              privateData: request.privateData,
            }),
          );
        },
      });
      cleanups.push(() => session.close());
      const journal = new SqliteJournal({
        path: join(tempDir('concert-twist-'), 'ecr-bridge.db'),
      });
      cleanups.push(() => journal.close());
      const service = new TransactionService({ journal });
      service.addTerminal(
        't1',
        new ConcertDriver({ url: `serial://${pair.posPath}`, answerTimeoutMs: 800 }),
      );
      cleanups.push(() => service.close());
      expect(await service.pay('t1', sale('TW-1', 1000))).toMatchObject({
        outcome: 'unknown',
        errorCode: 'OUTCOME_UNKNOWN',
      });
    },
  );

  it('a POS whose EOT was lost sends its next request while the answer to the first still waits: that request is ignored, nothing charged, the simulator does not crash', async () => {
    // Found by the fault suite (test/faults/concert.test.ts): the simulator tried to send a
    // second answer while the first was still queued, and threw an unhandled rejection.
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown): void => void rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    cleanups.push(() => void process.off('unhandledRejection', onRejection));
    const simulator = await new ConcertSimulator({ tcpPort: 0 }).start();
    cleanups.push(() => simulator.stop());
    const socket = connect(Number(new URL(simulator.tcpUrl as string).port), '127.0.0.1');
    cleanups.push(() => void socket.destroy());
    await once(socket, 'connect');
    let received: number[] = [];
    socket.on('data', (chunk: Buffer) => (received = [...received, ...chunk]));
    const acks = () => received.filter((b) => b === CONCERT_CONTROL.ACK).length;
    const request = (privateData: string) =>
      encodeFrame(
        encodeRequest({
          posNumber: 1,
          amountMinor: 1000,
          answer: 'full',
          paymentMode: 'card',
          transactionType: 'debit',
          currencyNumeric: '978',
          privateData,
          delay: 'end',
          authorization: 'terminal',
        }),
      );
    for (const [i, tag] of ['1', '2'].entries()) {
      socket.write(Uint8Array.of(CONCERT_CONTROL.ENQ));
      await waitFor(() => acks() === 2 * i + 1, 5_000, 'the ACK to ENQ');
      socket.write(request(tag));
      await waitFor(() => acks() === 2 * i + 2, 5_000, 'the ACK to the request');
      // No EOT: it was lost on the line.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(simulator.ledger.all().map((c) => c.reference)).toEqual(['1']);
    expect(rejections).toEqual([]);
  });

  it('the clear card number from the report field appears nowhere: result, journal, logs', async () => {
    const { service, dir } = await setup('pty');
    const result = await service.pay('t1', sale('PAN-1', 1000));
    expect(containsPan(JSON.stringify(result))).toBe(false);
    for (const path of files(dir)) {
      expect(containsPan(readFileSync(path).toString('latin1')), path).toBe(false);
    }
  });
});
