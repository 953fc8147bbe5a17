import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TransactionService } from '../../src/core/transaction-service.js';
import { ConcertDriver } from '../../src/drivers/concert.js';
import type { JournalRow } from '../../src/core/journal-port.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import type { Charge } from '../../src/simulators/ledger.js';
import { ConcertSimulator } from '../../src/simulators/concert/simulator.js';
import { tempDir } from '../helpers.js';
import { noViolations, report, Rng, runs, seedFor, trace, type Violations } from './harness.js';
import {
  CHARGING_SCENARIOS,
  checkRetry,
  checkRun,
  randomAmount,
  referenceFor,
} from './invariants.js';
import { SerialRelay } from './serial-relay.js';

/**
 * The invariant suite for Concert V2 over a serial line: the driver opens a real pseudo-terminal,
 * a SerialRelay passes the bytes on to the simulator's own pseudo-terminal and pulls the cable
 * at the point the run's seed picks (mid-request, after the card read, mid-answer), or the
 * terminal is switched off and on again (a new simulator on a new device, plugged into the same
 * line). Concert V2 has no status query: an answer that was not seen stays `unknown`, which
 * invariant (b) accepts for a charge; nothing may be charged twice or journaled otherwise.
 *
 * One line, simulator and journal serve all the runs of a scenario (socat pairs cost time); each
 * run checks its own references and the charges made during it. The simulator keys its ledger by
 * the request's private data, the driver's wire id, which the journal's `attempts` table maps
 * back to the reference.
 */

type FaultPoint =
  | 'cut mid-request'
  | 'cut after card read'
  | 'cut mid-answer'
  | 'restart the terminal simulator mid-payment';

const FAULTS: readonly FaultPoint[] = [
  'cut mid-request',
  'cut after card read',
  'cut mid-answer',
  'restart the terminal simulator mid-payment',
];

const CARD_DELAY_MS = 15;
const TERMINAL_ID = 't1';

interface Line {
  readonly relay: SerialRelay;
  readonly service: TransactionService;
  readonly journal: SqliteJournal;
  /** Every charge any simulator of the line made, in order, reference = the wire tag. */
  readonly charges: Charge[];
  simulator: ConcertSimulator;
  /** The wire tag's reference, from the journal's attempts. */
  referenceOf(tag: string): string;
  restartTerminal(): Promise<void>;
  close(): Promise<void>;
}

async function startTerminal(charges: Charge[]): Promise<ConcertSimulator> {
  const simulator = await new ConcertSimulator({
    pty: true,
    cardDelayMs: CARD_DELAY_MS,
    slowAnswerMs: 50,
  }).start();
  simulator.ledger.on('charge', (charge) => charges.push(charge));
  return simulator;
}

async function openLine(): Promise<Line> {
  const charges: Charge[] = [];
  const first = await startTerminal(charges);
  const relay = await SerialRelay.open(first.device as string);
  const path = join(tempDir('faults-concert-'), 'ecr-bridge.db');
  const journal = new SqliteJournal({ path });
  const reader = new Database(path, { readonly: true });
  const byWireId = reader.prepare<[number], { reference: string }>(
    'SELECT t.reference FROM attempts a JOIN transactions t ON t.id = a.transaction_id WHERE a.id = ?',
  );
  const driver = new ConcertDriver({
    url: `serial://${relay.posPath}`,
    ackTimeoutMs: 500,
    answerTimeoutMs: 800,
    connectTimeoutMs: 2_000,
  });
  const service = new TransactionService({ journal, pollIntervalMs: 5 });
  service.addTerminal(TERMINAL_ID, driver);
  const line: Line = {
    relay,
    service,
    journal,
    charges,
    simulator: first,
    referenceOf: (tag) =>
      byWireId.get(Number(tag))?.reference ?? `no transaction for wire tag ${tag}`,
    restartTerminal: async () => {
      await line.simulator.stop();
      line.simulator = await startTerminal(charges);
      await relay.attach(line.simulator.device as string);
    },
    close: async () => {
      await service.close();
      await line.simulator.stop();
      await relay.close();
      reader.close();
      journal.close();
    },
  };
  return line;
}

/** Bytes each way of one clean payment, measured once per scenario. */
interface LineBytes {
  readonly up: number;
  readonly down: number;
}

async function oneRun(
  line: Line,
  fault: FaultPoint,
  bytes: LineBytes,
  run: number,
  seed: number,
  violations: Violations,
): Promise<{ payments: number; fired: boolean }> {
  const rng = new Rng(seed);
  const { relay, service } = line;
  const firstCharge = line.charges.length;
  const references: string[] = [];
  const amounts = new Map<string, number>();
  let payments = 0;
  let fired = false;
  const pay = async (reference: string, minor: number) => {
    payments++;
    if (!amounts.has(reference)) references.push(reference);
    amounts.set(reference, minor);
    try {
      return await service.pay(TERMINAL_ID, {
        kind: 'sale',
        reference,
        amount: { minor, currency: 'EUR' },
      });
    } catch (error) {
      throw new Error(`run ${run} (seed ${seed}), reference ${reference}: ${String(error)}`);
    }
  };
  // The line is quiet again (a terminal may still be resending an answer nobody took).
  for (let attempt = 0; ; attempt++) {
    const warm = await pay(referenceFor(rng, 'W'), rng.int(10, 90) * 100 + rng.int(0, 49));
    if (warm.outcome === 'approved') break;
    if (attempt > 40)
      throw new Error(`run ${run} (seed ${seed}): the terminal never came back: ${warm.message}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const count = rng.int(1, 3);
  const faulted = rng.int(0, count - 1);
  for (let i = 0; i < count; i++) {
    const reference = referenceFor(rng, 'P');
    // The faulted payment reaches the card read (a fault timed on it must happen).
    const minor = randomAmount(rng, i === faulted ? CHARGING_SCENARIOS : undefined);
    if (i !== faulted) {
      await pay(reference, minor);
      continue;
    }
    const pulls = relay.pulls;
    let restarting: Promise<void> = Promise.resolve();
    const restart = (): void => {
      fired = true;
      restarting = line.restartTerminal();
    };
    const pull = (): void => relay.pull();
    const simulator = line.simulator;
    switch (fault) {
      case 'cut mid-request':
        // ENQ, then the request frame: somewhere inside the frame.
        relay.pullAfter('up', rng.int(2, Math.max(3, bytes.up - 4)));
        break;
      case 'cut mid-answer':
        // The down stream ends with the answer frame and an EOT-less close: inside that frame.
        relay.pullAfter('down', Math.max(1, bytes.down - rng.int(6, 20)));
        break;
      case 'cut after card read':
        simulator.ledger.once('charge', pull);
        break;
      case 'restart the terminal simulator mid-payment':
        if (rng.next() < 0.5) simulator.ledger.once('charge', restart);
        else setTimeout(restart, rng.int(0, CARD_DELAY_MS + 10));
        break;
    }
    try {
      const result = await pay(reference, minor);
      trace(run, seed, fault, minor, result.outcome, result.message);
    } finally {
      simulator.ledger.off('charge', pull);
      simulator.ledger.off('charge', restart);
      if (relay.pulls > pulls) fired = true;
      await restarting;
      relay.plug();
    }
  }
  // The POS retries every reference with the same amount: the stored result, nothing sent (or,
  // when the latest attempt charged nothing, a new attempt).
  for (const reference of [...references]) {
    const before = await line.journal.find({
      merchantId: 'default',
      terminalId: TERMINAL_ID,
      reference,
    });
    const again = await pay(reference, amounts.get(reference) as number);
    checkRetry(violations, `run ${run} (seed ${seed}), reference ${reference}`, before, again);
  }
  const rows = new Map<string, JournalRow | undefined>();
  for (const reference of references)
    rows.set(
      reference,
      await line.journal.find({ merchantId: 'default', terminalId: TERMINAL_ID, reference }),
    );
  checkRun(violations, {
    run,
    seed,
    references,
    charges: line.charges
      .slice(firstCharge)
      .map((charge) => ({ ...charge, reference: line.referenceOf(charge.reference) })),
    rows,
    statusQuery: false,
  });
  return { payments, fired };
}

/** One clean payment's bytes each way (the scenario's first payment, not a run's). */
async function measureLine(line: Line, rng: Rng): Promise<{ up: number; down: number }> {
  for (let attempt = 0; ; attempt++) {
    const before = { ...line.relay.bytes };
    const result = await line.service.pay(TERMINAL_ID, {
      kind: 'sale',
      reference: referenceFor(rng, 'W'),
      amount: { minor: rng.int(10, 90) * 100 + rng.int(0, 49), currency: 'EUR' },
    });
    if (result.outcome === 'approved')
      return { up: line.relay.bytes.up - before.up, down: line.relay.bytes.down - before.down };
    if (attempt > 40) throw new Error(`the terminal never came back: ${result.message ?? ''}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('fault runs: concert serial', () => {
  for (const fault of FAULTS) {
    const scenario = `concert serial: ${fault}`;
    it(`${scenario} → charged at most once, every charge journaled approved or unknown`, async (context) => {
      const total = runs({ short: 1, long: 25 });
      const violations = noViolations();
      const line = await openLine();
      let payments = 0;
      let fired = 0;
      try {
        const bytes = await measureLine(line, new Rng(seedFor(scenario, -1)));
        for (let run = 0; run < total; run++) {
          const seed = seedFor(scenario, run);
          const result = await oneRun(line, fault, bytes, run, seed, violations);
          payments += result.payments;
          if (result.fired) fired++;
        }
      } finally {
        await line.close();
      }
      report(context, { scenario, runs: total, payments }, violations);
      expect(fired).toBeGreaterThan(0);
    }, 600_000);
  }
});
