import { describe, expect, it } from 'vitest';
import type { TransactionResult } from '../../src/core/transaction.js';
import type { JournalRow, TransactionEvent } from '../../src/core/journal-port.js';
import { noViolations, report, Rng, runs, seedFor, trace, type Violations } from './harness.js';
import {
  CHARGING_SCENARIOS,
  checkAttempts,
  checkRetry,
  checkRun,
  clearNext,
  queueNext,
  randomAmount,
  referenceFor,
  REFUSALS,
  wireIdsAt,
  type RetryCall,
} from './invariants.js';
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
    // (A reference whose latest attempt charged nothing gets a new attempt instead.)
    for (const reference of [...references]) {
      const before = await rig.journal.find({
        merchantId: MERCHANT_ID,
        terminalId: TERMINAL_ID,
        reference,
      });
      const again = await pay(reference, amounts.get(reference) as number);
      checkRetry(violations, `run ${run} (seed ${seed}), reference ${reference}`, before, again);
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

/**
 * Scenarios a retry may meet at the terminal: refused again (nothing charged), or charged —
 * approved, partially approved, slowly, or with the answer lost by the terminal itself (no
 * answer, the link dropped after the card).
 */
const RETRY_OUTCOMES = [
  ...REFUSALS,
  'approved',
  'partial',
  'slow-approve',
  'no-answer',
  'drop-after-card',
] as const;

/**
 * One run of a retried reference: a warm-up; a reference refused (declined, cancelled or busy,
 * queued with `POST /next` so that every attempt has the same amount), then paid again under the
 * same reference, up to a few times, each attempt taking a scenario the seed picks and the first
 * retry (others at random) broken at one of FAULTS; whenever the latest attempt is `unknown`
 * the POS retries at once (it must get the same attempt, replayed). Ends when an attempt is
 * approved or `unknown`, or the attempts run out; then the POS retries once more, one more
 * payment settles what a status query can, and (a)–(c) plus the attempt checks run.
 */
async function retryRun(
  terminal: NetworkTerminal,
  run: number,
  seed: number,
  violations: Violations,
): Promise<{ payments: number; attempts: number; unknownRetries: number; fired: boolean }> {
  const rng = new Rng(seed);
  const rig = await networkRig(terminal);
  const key = (reference: string) => ({
    merchantId: MERCHANT_ID,
    terminalId: TERMINAL_ID,
    reference,
  });
  const calls: RetryCall[] = [];
  let payments = 0;
  let fired = false;
  const pay = async (reference: string, minor: number): Promise<TransactionResult> => {
    payments++;
    const before = await rig.journal.find(key(reference));
    let result: TransactionResult;
    try {
      result = await rig.service.pay(TERMINAL_ID, {
        kind: 'sale',
        reference,
        amount: { minor, currency: rig.currency },
      });
    } catch (error) {
      throw new Error(`run ${run} (seed ${seed}), reference ${reference}: ${String(error)}`);
    }
    calls.push({
      reference,
      before: before === undefined ? undefined : { attempt: before.attempt, state: before.state },
      attempt: result.attempt,
      replayed: result.replayed,
    });
    return result;
  };
  const latest = async (reference: string) => rig.journal.find(key(reference));
  try {
    const before = { ...rig.proxy.stats.bytes };
    const warm = referenceFor(rng, 'W');
    await pay(warm, rng.int(10, 90) * 100 + rng.int(0, 49));
    const bytes = {
      up: rig.proxy.stats.bytes.up - before.up,
      down: rig.proxy.stats.bytes.down - before.down,
    };
    const reference = referenceFor(rng, 'R');
    // A plain amount: what each attempt does is queued with POST /next, whatever the amount.
    const minor = rng.int(10, 90) * 100 + rng.int(0, 49);
    const tries = rng.int(2, 5);
    for (let i = 0; i < tries; i++) {
      const scenario = i === 0 ? rng.pick(REFUSALS) : rng.pick(RETRY_OUTCOMES);
      // The first attempt is refused cleanly; the first retry is always broken, later ones now
      // and then.
      const fault =
        i === 0 ? undefined : i === 1 || rng.next() < 0.4 ? rng.pick(FAULTS) : undefined;
      await queueNext(rig.controlPort, scenario);
      let result: TransactionResult;
      if (fault === undefined) result = await pay(reference, minor);
      else {
        await rig.freshLink();
        const settle = arm(rig, fault, rng, bytes);
        try {
          result = await pay(reference, minor);
        } finally {
          if (await settle()) fired = true;
        }
      }
      // A scenario no request took (a fault kept it from the terminal) must not move on to the
      // next payment.
      await clearNext(rig.controlPort);
      trace(run, seed, `attempt ${result.attempt}`, scenario, fault ?? 'no fault', result.outcome);
      let row = await latest(reference);
      // The POS saw no outcome: it sends the same request again at once. Same attempt, replayed.
      while (
        row?.state === 'unknown' &&
        calls.filter((c) => c.before?.state === 'unknown').length < 8
      ) {
        await pay(reference, minor);
        const now = await latest(reference);
        if (now?.state === 'unknown') break;
        row = now;
      }
      if (row === undefined || !['declined', 'cancelled', 'failed'].includes(row.state)) break;
    }
    // The POS did not trust what it saw: once more, same amount (replayed, unless the last
    // attempt charged nothing: then it is another attempt, as the cashier would make).
    await pay(reference, minor);
    // The next payment: where the protocol has a status query, an earlier `unknown` is settled
    // before it is sent; a terminal that is back is reconciled as the gateway does.
    const closing = referenceFor(rng, 'C');
    await pay(closing, rng.int(10, 90) * 100 + rng.int(0, 49));
    if (rig.statusQuery) await rig.service.reconcile(TERMINAL_ID);
    const references = [warm, reference, closing];
    const rows = new Map<string, JournalRow | undefined>();
    const attempts = new Map<string, JournalRow[]>();
    const events = new Map<number, TransactionEvent[]>();
    for (const ref of references) {
      rows.set(ref, await rig.journal.find(key(ref)));
      const list = await rig.journal.attemptsOf(key(ref));
      attempts.set(ref, list);
      for (const row of list) {
        const timeline = await rig.journal.eventsOf(row.id);
        events.set(row.id, timeline);
        if (ref === reference)
          trace(
            run,
            seed,
            `${ref} attempt ${row.attempt}: ${timeline.map((e) => `${e.id}:${e.state}`).join(' → ')} (${row.message ?? ''})`,
          );
      }
    }
    checkRun(violations, {
      run,
      seed,
      references,
      charges: rig.ledger.all(),
      rows,
      statusQuery: rig.statusQuery,
    });
    const wires = wireIdsAt(rig.journalPath);
    let unknownRetries: number;
    try {
      unknownRetries = checkAttempts(
        violations,
        {
          run,
          seed,
          attempts,
          events,
          charges: rig.ledger.all(),
          rowOfWireId: wires.rowOf,
          calls,
          terminalRecord: rig.terminalRecord(),
        },
        wires.idsOf,
      );
    } finally {
      wires.close();
    }
    return { payments, attempts: attempts.get(reference)?.length ?? 0, unknownRetries, fired };
  } finally {
    await rig.close();
  }
}

describe.each(TERMINALS)('fault runs, retried reference: %s', (terminal) => {
  const scenario = `${terminal}: retry a declined or busy reference under faults`;
  it(`${scenario} → one charge at most, every attempt journaled in order, unknown replayed`, async (context) => {
    const total = runs({ short: 1, long: 30 });
    const violations = noViolations();
    let payments = 0;
    let attempts = 0;
    let unknownRetries = 0;
    let fired = 0;
    for (let run = 0; run < total; run++) {
      const result = await retryRun(terminal, run, seedFor(scenario, run), violations);
      payments += result.payments;
      attempts += result.attempts;
      unknownRetries += result.unknownRetries;
      if (result.fired) fired++;
    }
    report(context, { scenario, runs: total, payments, attempts, unknownRetries }, violations);
    // The references were retried, and the faults really happened.
    expect(attempts).toBeGreaterThan(total);
    expect(fired).toBeGreaterThan(runs({ short: 0, long: total / 4 }));
  }, 600_000);
});
