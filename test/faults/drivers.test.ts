import { describe, expect, it } from 'vitest';
import type { JournalRow } from '../../src/journal/journal.js';
import { noViolations, report, Rng, runs, seedFor, trace, type Violations } from './harness.js';
import { CHARGING_SCENARIOS, checkRun, randomAmount, referenceFor } from './invariants.js';
import {
  CARD_DELAY_MS,
  MERCHANT_ID,
  networkRig,
  TERMINAL_ID,
  type NetworkRig,
  type NetworkTerminal,
} from './network-rig.js';

/**
 * The invariant suite for the network drivers (PAYable over WebSocket, SEMI over WebSocket and
 * raw TCP): each run makes a few payments through a FaultProxy and breaks one of them at a
 * point the run's seed picks, then recovers as the product does (the driver reconnects, the POS
 * retries every reference, SEMI's status query settles what it can, the next payment settles
 * the rest) and checks invariants (a)–(c) against the simulator's ledger and the journal.
 */

type FaultPoint =
  | 'cut mid-request'
  | 'cut after request bytes'
  | 'cut after card read'
  | 'cut mid-answer'
  | 'restart the terminal simulator mid-payment';

const FAULTS: readonly FaultPoint[] = [
  'cut mid-request',
  'cut after request bytes',
  'cut after card read',
  'cut mid-answer',
  'restart the terminal simulator mid-payment',
];

const TERMINALS: readonly NetworkTerminal[] = ['payable ws', 'semi ws', 'semi tcp'];

/** Bytes each way of one payment on a new link, measured on the run's warm-up payment. */
interface LinkBytes {
  readonly up: number;
  readonly down: number;
}

/**
 * Arms `fault` for the next payment and returns what ends it: disarms, and waits for a cut or a
 * restart that is still going on. Byte offsets come from the warm-up payment: a request or answer
 * of another amount differs by a few bytes at most, so the point stays inside it.
 */
function arm(
  rig: NetworkRig,
  fault: FaultPoint,
  rng: Rng,
  bytes: LinkBytes,
): () => Promise<boolean> {
  const { proxy, ledger } = rig;
  let pending: Promise<void> = Promise.resolve();
  let timer: Promise<void> = Promise.resolve();
  let fired = false;
  const applied = proxy.stats.faultsApplied;
  const bounce = (): void => {
    fired = true;
    pending = (async () => {
      await proxy.cut();
      await proxy.resume();
    })();
  };
  const restart = (): void => {
    fired = true;
    pending = rig.restartTerminal();
  };
  const later = (delayMs: number, act: () => void): void => {
    rig.onSend = () => {
      rig.onSend = undefined;
      timer = new Promise((resolve) =>
        setTimeout(() => {
          act();
          resolve();
        }, delayMs),
      );
    };
  };
  switch (fault) {
    case 'cut mid-request':
      proxy.setFaults([
        { direction: 'up', kind: 'cut', at: { byte: Math.max(1, bytes.up - rng.int(8, 30)) } },
      ]);
      // The payment's own link has the fault; a status query's new link must not.
      rig.onSend = () => proxy.setFaults([]);
      break;
    case 'cut mid-answer':
      proxy.setFaults([
        { direction: 'down', kind: 'cut', at: { byte: Math.max(1, bytes.down - rng.int(8, 40)) } },
      ]);
      rig.onSend = () => proxy.setFaults([]);
      break;
    case 'cut after request bytes':
      // Anywhere from the request's first byte to just past the card step.
      later(rng.int(0, CARD_DELAY_MS + 5), bounce);
      break;
    case 'cut after card read':
      ledger.once('charge', bounce);
      break;
    case 'restart the terminal simulator mid-payment':
      if (rng.next() < 0.5) ledger.once('charge', restart);
      else later(rng.int(0, CARD_DELAY_MS + 5), restart);
      break;
  }
  return async () => {
    rig.onSend = undefined;
    proxy.setFaults([]);
    ledger.off('charge', bounce);
    ledger.off('charge', restart);
    await timer;
    await pending;
    return fired || proxy.stats.faultsApplied > applied;
  };
}

/** One run: warm-up, a few payments with one fault, recovery, checks. Returns the payments made. */
async function oneRun(
  terminal: NetworkTerminal,
  fault: FaultPoint,
  run: number,
  seed: number,
  violations: Violations,
): Promise<{ payments: number; fired: boolean }> {
  const rng = new Rng(seed);
  const rig = await networkRig(terminal);
  const references: string[] = [];
  const amounts = new Map<string, number>();
  let payments = 0;
  let fired = false;
  const pay = async (reference: string, minor: number) => {
    payments++;
    if (!amounts.has(reference)) references.push(reference);
    amounts.set(reference, minor);
    try {
      return await rig.service.pay(TERMINAL_ID, {
        kind: 'sale',
        reference,
        amount: { minor, currency: rig.currency },
      });
    } catch (error) {
      throw new Error(`run ${run} (seed ${seed}), reference ${reference}: ${String(error)}`);
    }
  };
  try {
    // The terminal has a last transaction before the faults start (a SEMI status query about
    // a terminal with none proves nothing), and the sizes of one payment's bytes are measured.
    const before = { ...rig.proxy.stats.bytes };
    await pay(referenceFor(rng, 'W'), rng.int(10, 90) * 100 + rng.int(0, 49));
    const bytes = {
      up: rig.proxy.stats.bytes.up - before.up,
      down: rig.proxy.stats.bytes.down - before.down,
    };
    const count = rng.int(2, 4);
    const faulted = rng.int(0, count - 1);
    for (let i = 0; i < count; i++) {
      const reference = referenceFor(rng, 'P');
      // The faulted payment reaches the card read (a fault timed on it must happen).
      const minor = randomAmount(rng, i === faulted ? CHARGING_SCENARIOS : undefined);
      if (i !== faulted) {
        await pay(reference, minor);
        continue;
      }
      await rig.freshLink();
      const settle = arm(rig, fault, rng, bytes);
      try {
        const result = await pay(reference, minor);
        trace(run, seed, fault, minor, result.outcome, result.message);
      } finally {
        fired = await settle();
      }
    }
    // The POS did not trust what it saw: it retries every reference, same amount. Replayed.
    for (const reference of [...references]) {
      const again = await pay(reference, amounts.get(reference) as number);
      if (!again.replayed) {
        violations.details.push(
          `run ${run} (seed ${seed}), reference ${reference}: a retry was driven again`,
        );
        violations.duplicated++;
      }
    }
    // The next payment: where the protocol has a status query, an earlier `unknown` is settled
    // before it is sent; a terminal that is back is reconciled as the gateway does.
    await pay(referenceFor(rng, 'C'), rng.int(10, 90) * 100 + rng.int(0, 49));
    if (rig.statusQuery) await rig.service.reconcile(TERMINAL_ID);
    const rows = new Map<string, JournalRow | undefined>();
    for (const reference of references)
      rows.set(
        reference,
        await rig.journal.find({ merchantId: MERCHANT_ID, terminalId: TERMINAL_ID, reference }),
      );
    checkRun(violations, {
      run,
      seed,
      references,
      charges: rig.ledger.all(),
      rows,
      statusQuery: rig.statusQuery,
    });
  } finally {
    await rig.close();
  }
  return { payments, fired };
}

describe.each(TERMINALS)('fault runs: %s', (terminal) => {
  for (const fault of FAULTS) {
    const scenario = `${terminal}: ${fault}`;
    it(`${scenario} → charged at most once, every charge journaled, nothing left unresolved`, async (context) => {
      const total = runs({ short: 1, long: 45 });
      const violations = noViolations();
      let payments = 0;
      let fired = 0;
      for (let run = 0; run < total; run++) {
        const result = await oneRun(terminal, fault, run, seedFor(scenario, run), violations);
        payments += result.payments;
        if (result.fired) fired++;
      }
      report(context, { scenario, runs: total, payments }, violations);
      // The fault really happened (a run whose payment never reached its point may miss it).
      expect(fired).toBeGreaterThan(0);
    }, 600_000);
  }
});
