import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TransactionService } from '../../src/core/transaction-service.js';
import type { PaymentRequest } from '../../src/core/transaction.js';
import { ConcertDriver, type ConcertDriverOptions } from '../../src/drivers/concert.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { CONCERT_CONTROL, encodeFrame } from '../../src/protocols/concert/frame.js';
import {
  decodeRequest,
  encodeAnswer,
  type ConcertAnswerFields,
} from '../../src/protocols/concert/messages.js';
import {
  ConcertSimulator,
  type ConcertSimulatorOptions,
} from '../../src/simulators/concert/simulator.js';
import type { ByteStream } from '../../src/transports/byte-stream.js';
import { openPtyPair } from '../../src/transports/pty.js';
import { openSerial } from '../../src/transports/serial.js';
import { listenTcpStream } from '../../src/transports/tcp-stream.js';
import { tempDir, waitFor } from '../helpers.js';

// Issue 16: the answer's private field is the terminal's own data, not an echo; a valid answer
// is the outcome whatever the line does after it; both answer sizes and both delays.

const { ENQ, ACK, EOT, STX } = CONCERT_CONTROL;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function sale(reference: string, minor: number): PaymentRequest {
  return { kind: 'sale', reference, amount: { minor, currency: 'EUR' } };
}

function service(url: string, driver: Partial<ConcertDriverOptions> = {}): TransactionService {
  const journal = new SqliteJournal({ path: join(tempDir('concert-answers-'), 'ecr.db') });
  cleanups.push(() => journal.close());
  const service = new TransactionService({ journal });
  service.addTerminal('t1', new ConcertDriver({ url, answerTimeoutMs: 1_500, ...driver }));
  cleanups.push(() => service.close());
  return service;
}

type Link = 'pty' | 'tcp';

async function simulated(
  link: Link,
  options: { simulator?: ConcertSimulatorOptions; driver?: Partial<ConcertDriverOptions> } = {},
) {
  const simulator = await new ConcertSimulator({
    ...(link === 'pty' ? { pty: true } : { tcpPort: 0 }),
    lineNoise: 0.3,
    ...options.simulator,
  }).start();
  cleanups.push(() => simulator.stop());
  const url = link === 'pty' ? `serial://${simulator.device}` : (simulator.tcpUrl as string);
  return { simulator, service: service(url, options.driver) };
}

describe.each<Link>(['pty', 'tcp'])('Concert simulator ↔ driver over %s', (link) => {
  it("by default the terminal fills the private field with its own number: approved, that number is the payment's terminalTxId", async () => {
    const { simulator, service } = await simulated(link);
    const result = await service.pay('t1', sale('PV-1', 1000));
    expect(result).toMatchObject({ outcome: 'approved', terminalTxId: '0000000001' });
    expect(simulator.ledger.all().map((c) => c.terminalTxId)).toEqual(['0000000001']);
    // The next transaction gets the next number.
    expect(await service.pay('t1', sale('PV-2', 1100))).toMatchObject({
      terminalTxId: '0000000002',
    });
  });

  it('--echo-private (echoPrivate): the answer carries our own wire id back: approved, no terminalTxId', async () => {
    const { simulator, service } = await simulated(link, { simulator: { echoPrivate: true } });
    const result = await service.pay('t1', sale('PE-1', 1000));
    expect(result.outcome).toBe('approved');
    expect(result.terminalTxId).toBeUndefined();
    expect(simulator.ledger.count).toBe(1);
  });

  it('a short answer asked (flag 0): the simulator sends 25 characters, the driver reads the outcome without card data', async () => {
    const { service } = await simulated(link, { driver: { answerSize: 'short' } });
    const approved = await service.pay('t1', sale('PS-1', 1000));
    expect(approved).toMatchObject({ outcome: 'approved', details: { answerSize: 'short' } });
    expect(approved.maskedPan).toBeUndefined();
    expect(await service.pay('t1', sale('PS-2', 1051))).toMatchObject({
      outcome: 'declined',
      details: { answerSize: 'short' },
    });
  });

  it('answer at the end (A010): the answer comes after the card step, with its outcome', async () => {
    const { service } = await simulated(link, { simulator: { cardDelayMs: 400 } });
    const started = Date.now();
    expect(await service.pay('t1', sale('PD-1', 1000))).toMatchObject({
      outcome: 'approved',
      maskedPan: '476173******0010',
      details: { delay: 'end' },
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
  });

  it('answer at once (A011): the answer comes before the card step and says nothing of the card: unknown, no card data; the terminal charges afterwards', async () => {
    const { simulator, service } = await simulated(link, {
      simulator: { cardDelayMs: 1_500 },
      driver: { answerDelay: 'immediate', answerTimeoutMs: 30_000 },
    });
    const started = Date.now();
    const result = await service.pay('t1', sale('PI-1', 1000));
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(result).toMatchObject({
      outcome: 'unknown',
      errorCode: 'OUTCOME_UNKNOWN',
      terminalTxId: '0000000001',
      details: { delay: 'immediate', answerSize: 'full' },
    });
    expect(result.message).toMatch(/A011/);
    expect(result.maskedPan).toBeUndefined();
    expect(simulator.ledger.count).toBe(0);
    await waitFor(() => simulator.ledger.count === 1, 5_000, 'the charge after the card step');
  });
});

describe('Concert A011 with a card that is declined', () => {
  it('the answer at once cannot tell the decline either: unknown, and the terminal charges nothing', async () => {
    const { simulator, service } = await simulated('tcp', {
      simulator: { cardDelayMs: 300 },
      driver: { answerDelay: 'immediate', answerSize: 'short' },
    });
    expect(await service.pay('t1', sale('PI-D', 1051))).toMatchObject({
      outcome: 'unknown',
      details: { answerSize: 'short', delay: 'immediate' },
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(simulator.ledger.count).toBe(0);
  });
});

// ---- a scripted terminal, byte by byte, on a real pty or TCP socket ----

/** What the scripted terminal does once the driver ACKed its answer frame. */
type After = 'eot' | 'hang-up' | 'silent';

/** Collects the bytes the driver writes and waits for the ones a step needs. */
class Inbox {
  bytes: number[] = [];
  constructor(stream: ByteStream) {
    stream.onData((chunk) => this.bytes.push(...chunk));
  }

  /** Waits for `byte` and drops everything up to it. */
  async take(byte: number, what: string): Promise<void> {
    await waitFor(() => this.bytes.includes(byte), 5_000, what);
    this.bytes.splice(0, this.bytes.indexOf(byte) + 1);
  }

  /** Waits for a whole frame (STX … ETX LRC) and returns its data. */
  async frame(): Promise<string> {
    const end = () => this.bytes.indexOf(CONCERT_CONTROL.ETX, this.bytes.indexOf(STX));
    await waitFor(
      () => this.bytes.includes(STX) && end() !== -1 && end() + 1 < this.bytes.length,
      5_000,
      'a frame',
    );
    const start = this.bytes.indexOf(STX);
    const stop = end();
    const data = Buffer.from(this.bytes.slice(start + 1, stop)).toString('latin1');
    this.bytes.splice(0, stop + 2);
    return data;
  }
}

/** The answer to `request` a real terminal of issue 16 sends: its own number as private data. */
function answerTo(requestData: string, fields: Partial<ConcertAnswerFields> = {}): Uint8Array {
  const request = decodeRequest(requestData);
  return encodeFrame(
    encodeAnswer({
      posNumber: request.posNumber,
      status: 'approved',
      amountMinor: request.amountMinor,
      paymentMode: request.paymentMode,
      size: request.answer,
      report: '4111111111111111',
      currencyNumeric: request.currencyNumeric,
      privateData: '0000000042',
      ...fields,
    }),
  );
}

/** Plays the terminal's side of one payment: takes the request, answers, then does `after`. */
async function terminal(
  stream: ByteStream,
  after: After,
  hangUp: () => Promise<void>,
  stale?: Partial<ConcertAnswerFields>,
): Promise<void> {
  const inbox = new Inbox(stream);
  await inbox.take(ENQ, "the driver's ENQ");
  if (stale !== undefined) {
    // The terminal still has an earlier answer to deliver: its ENQ crosses the driver's, the
    // terminal wins (CONCERT_COLLISION_RULE) and delivers it before it takes the request.
    await stream.write(Uint8Array.of(ENQ));
    await inbox.take(ACK, "the driver's ACK of our ENQ");
    const sample = '0100000100011978          A010B010';
    await stream.write(
      answerTo(sample, { amountMinor: 1000, privateData: '0000000007', ...stale }),
    );
    await inbox.take(ACK, "the driver's ACK of the stale answer");
    await stream.write(Uint8Array.of(EOT));
    await inbox.take(ENQ, "the driver's ENQ again");
  }
  await stream.write(Uint8Array.of(ACK));
  const request = await inbox.frame();
  await stream.write(Uint8Array.of(ACK));
  await inbox.take(EOT, "the driver's EOT after its request");
  await stream.write(Uint8Array.of(ENQ));
  await inbox.take(ACK, "the driver's ACK of our ENQ");
  await stream.write(answerTo(request));
  await inbox.take(ACK, "the driver's ACK of the answer");
  if (after === 'eot') await stream.write(Uint8Array.of(EOT));
  if (after === 'hang-up') await hangUp();
}

/** A scripted terminal on a TCP port; the driver connects to it. */
async function tcpTerminal(after: After, stale?: Partial<ConcertAnswerFields>) {
  const errors: unknown[] = [];
  const server = await listenTcpStream({
    host: '127.0.0.1',
    port: 0,
    onConnection: (stream) =>
      void terminal(stream, after, () => stream.close(), stale).catch((e: unknown) =>
        errors.push(e),
      ),
  });
  cleanups.push(() => server.close());
  return { url: `tcp://127.0.0.1:${server.port}`, errors };
}

/** A scripted terminal on the far end of a pty pair; hanging up pulls the pair away. */
async function ptyTerminal(after: After) {
  const errors: unknown[] = [];
  const pair = await openPtyPair();
  cleanups.push(() => pair.close());
  const stream = await openSerial({ path: pair.terminalPath });
  cleanups.push(() => stream.close());
  void terminal(stream, after, () => pair.close()).catch((e: unknown) => errors.push(e));
  return { url: `serial://${pair.posPath}`, errors };
}

describe('Concert: a valid answer frame the driver ACKed is the outcome, whatever the line does next', () => {
  it.each<[Link, After]>([
    ['tcp', 'eot'],
    ['tcp', 'hang-up'],
    ['tcp', 'silent'],
    ['pty', 'hang-up'],
    ['pty', 'silent'],
  ])(
    'over %s, the terminal fills the private field and then: %s → approved, terminalTxId kept, no wait for the answer timeout',
    async (link, after) => {
      const peer = link === 'tcp' ? await tcpTerminal(after) : await ptyTerminal(after);
      const started = Date.now();
      const result = await service(peer.url, { answerTimeoutMs: 60_000 }).pay(
        't1',
        sale('EOT-1', 1000),
      );
      expect(result).toMatchObject({
        outcome: 'approved',
        terminalTxId: '0000000042',
        maskedPan: '411111******1111',
      });
      // A missing EOT costs at most the EOT bound (2 s), never the answer timeout.
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(peer.errors).toEqual([]);
    },
  );

  it('a stale answer the terminal delivers before it takes our request is not ours, even for our POS, currency and amount: the next one is', async () => {
    // The stale one is a refusal: taken as ours, the payment would read declined.
    const peer = await tcpTerminal('eot', { status: 'refused' });
    const result = await service(peer.url).pay('t1', sale('ST-1', 1000));
    expect(result).toMatchObject({ outcome: 'approved', terminalTxId: '0000000042' });
    expect(peer.errors).toEqual([]);
  });
});
