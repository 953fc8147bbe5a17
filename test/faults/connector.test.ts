import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { startConnector, CONNECTOR_TERMINAL_ID } from '../../src/cli/connector.js';
import { parseConfigText } from '../../src/connector/config.js';
import { TransactionService } from '../../src/core/transaction-service.js';
import { SEMI_CARD_STEP_MS, SemiDriver } from '../../src/drivers/semi.js';
import type { JournalRow, TransactionEvent } from '../../src/core/journal-port.js';
import { JOURNAL_FILE_NAME, SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { SemiSimulator } from '../../src/simulators/semi/simulator.js';
import { startCli } from '../cli/run-cli.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { closedPort, tempDir } from '../helpers.js';
import { BackOffice, connectorConfig, posPay, type PosAnswer } from './back-office.js';
import { noViolations, report, Rng, runs, seedFor, trace, type Violations } from './harness.js';
import {
  checkAttemptNotifications,
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

/**
 * The invariant suite for the HiPay-compatible connector, over a SEMI terminal (it has a status
 * query, so every `unknown` must end resolved) with a real back office receiving the
 * notifications: (a)–(c) as for the drivers, and (d) every transaction that happened at the
 * terminal notified, none that did not.
 *
 * The connector runs with its product defaults (no test timeouts): so the faults are the ones a
 * status query settles at once — the link cut or the terminal restarted at the card read — and
 * amounts ending in 54 (no answer: a three-minute answer timeout) are left out.
 */

/** Every scenario amount but …54, whose answer timeout is the product's three minutes. */
const CONNECTOR_SCENARIOS = [51, 52, 53, 55, 56, 57, 58];
const CARD_DELAY_MS = 15;
const NOTIFY_WAIT_MS = 30_000;

/** Reads what the journal says of each reference (a second handle on the connector's file). */
async function rowsOf(
  path: string,
  references: readonly string[],
): Promise<Map<string, JournalRow | undefined>> {
  const journal = new SqliteJournal({ path });
  try {
    const rows = new Map<string, JournalRow | undefined>();
    for (const reference of references)
      rows.set(
        reference,
        await journal.find({ merchantId: 'default', terminalId: CONNECTOR_TERMINAL_ID, reference }),
      );
    return rows;
  } finally {
    journal.close();
  }
}

/**
 * Waits until the back office acknowledged every transaction of `references` the journal says
 * happened (the notifier retries with back-off; a resolved `unknown` is picked up by its sweep),
 * then checks (a)–(d).
 */
async function settleAndCheck(
  office: BackOffice,
  journalPath: string,
  evidence: {
    run: number;
    seed: number;
    references: readonly string[];
    charges: Parameters<typeof checkRun>[1]['charges'];
  },
  violations: Violations,
): Promise<void> {
  const wanted = new Set(evidence.references);
  const notified = new Set(['approved', 'declined', 'cancelled']);
  // Every attempt of each reference: a declined one and the one after it are notified apart.
  let journaled = await attemptsAt(journalPath, evidence.references);
  const delivered = () =>
    [...journaled.attempts.values()]
      .flat()
      .every(
        (row) =>
          !notified.has(row.state) ||
          office
            .deliveries(new Set([row.reference]))
            .some((d) => d.attempt === undefined || d.attempt === row.attempt),
      );
  const deadline = Date.now() + NOTIFY_WAIT_MS;
  while (!delivered() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    journaled = await attemptsAt(journalPath, evidence.references);
  }
  const rows = await rowsOf(journalPath, evidence.references);
  checkRun(violations, { ...evidence, rows, statusQuery: true });
  checkAttemptNotifications(
    violations,
    { ...evidence, attempts: journaled.attempts },
    office.deliveries(wanted, true),
  );
  // Every delivery for the run was acknowledged in the end (a failed one was retried).
  for (const reference of wanted) {
    const got = office.deliveries(new Set([reference]), true);
    if (got.length > 0 && !got.some((d) => d.acknowledged)) {
      violations.lost++;
      violations.details.push(
        `run ${evidence.run} (seed ${evidence.seed}), reference ${reference}: never acknowledged`,
      );
    }
  }
}

/** A POS call that a fault may cut short: undefined when no answer came. */
async function tryPay(
  base: string,
  orderId: string,
  minor: number,
): Promise<PosAnswer | undefined> {
  try {
    return await posPay(base, orderId, minor);
  } catch {
    return undefined;
  }
}

type InProcessFault =
  | 'cut between connector and terminal after card read'
  | 'restart the terminal simulator at card read'
  | 'cut between POS and connector mid-payment';

describe('fault runs: connector (in process, SEMI over TCP, real back office)', () => {
  const faults: readonly InProcessFault[] = [
    'cut between connector and terminal after card read',
    'restart the terminal simulator at card read',
    'cut between POS and connector mid-payment',
  ];
  for (const fault of faults) {
    const scenario = `connector: ${fault}`;
    it(`${scenario} → charged once, journaled, resolved, notified exactly for what happened`, async (context) => {
      const total = runs({ short: 1, long: 30 });
      const violations = noViolations();
      const simPort = await closedPort();
      const simulator = await new SemiSimulator({
        wsPort: null,
        tcpPort: simPort,
        controlPort: 0,
        cardDelayMs: CARD_DELAY_MS,
        slowAnswerMs: 50,
      }).start();
      const proxy = await new FaultProxy({ host: '127.0.0.1', port: simPort }).start();
      const office = await new BackOffice().start();
      const dir = tempDir('faults-connector-');
      const config = parseConfigText(
        connectorConfig(
          `semi+tcp://127.0.0.1:${proxy.port}`,
          office,
          join(dir, 'data'),
          await closedPort(),
        ),
      );
      const connector = await startConnector(config, 'warn');
      const journalPath = join(config.dataDir, JOURNAL_FILE_NAME);
      let payments = 0;
      let fired = 0;
      try {
        for (let run = 0; run < total; run++) {
          const seed = seedFor(scenario, run);
          const rng = new Rng(seed);
          office.rng = rng;
          office.failChance = rng.next() < 0.3 ? 0.3 : 0;
          const firstCharge = simulator.ledger.count;
          const references: string[] = [];
          const amounts = new Map<string, number>();
          const pay = async (reference: string, minor: number, base = connector.url) => {
            payments++;
            if (!amounts.has(reference)) references.push(reference);
            amounts.set(reference, minor);
            return tryPay(base, reference, minor);
          };
          const count = rng.int(2, 4);
          const faulted = rng.int(0, count - 1);
          for (let i = 0; i < count; i++) {
            const reference = referenceFor(rng, 'P');
            const minor = randomAmount(rng, i === faulted ? [55, 56, 58] : CONNECTOR_SCENARIOS);
            if (i !== faulted) {
              await pay(reference, minor);
              continue;
            }
            if (fault === 'cut between POS and connector mid-payment') {
              // The POS's own connection goes at a random point of the payment (before the body
              // is read, during the card step, in the answer); it retries the order id at once,
              // while the first attempt may still be at the terminal.
              const front = await new FaultProxy({
                host: '127.0.0.1',
                port: Number(new URL(connector.url).port),
              }).start();
              const paying = pay(reference, minor, `http://127.0.0.1:${front.port}`);
              await new Promise((resolve) =>
                setTimeout(resolve, rng.int(0, 2 * CARD_DELAY_MS + 10)),
              );
              await front.stop();
              if ((await paying) === undefined) fired++;
              await pay(reference, minor);
              continue;
            }
            let pending: Promise<void> = Promise.resolve();
            const act = (): void => {
              fired++;
              pending =
                fault === 'restart the terminal simulator at card read'
                  ? simulator.stop().then(() => simulator.start().then(() => undefined))
                  : proxy.cut().then(() => proxy.resume());
            };
            simulator.ledger.once('charge', act);
            try {
              await pay(reference, minor);
            } finally {
              simulator.ledger.off('charge', act);
              await pending;
            }
          }
          // The POS retries every order id; then the next payment settles an earlier unknown.
          // (A new attempt where the latest one charged nothing.)
          for (const reference of [...references]) {
            const before = (await rowsOf(journalPath, [reference])).get(reference);
            const again = await pay(reference, amounts.get(reference) as number);
            if (again !== undefined)
              checkRetry(
                violations,
                `run ${run} (seed ${seed}), reference ${reference} (HTTP ${again.status})`,
                before,
                again,
              );
          }
          await pay(referenceFor(rng, 'C'), rng.int(10, 90) * 100 + rng.int(0, 49));
          await settleAndCheck(
            office,
            journalPath,
            { run, seed, references, charges: simulator.ledger.all().slice(firstCharge) },
            violations,
          );
        }
      } finally {
        await connector.close();
        await proxy.stop();
        await simulator.stop();
        await office.close();
      }
      report(context, { scenario, runs: total, payments }, violations);
      expect(fired).toBeGreaterThan(0);
    }, 600_000);
  }
});

/** `ecr-bridge connector start` as a real child process; resolves with its URL once it listens. */
async function startChild(configPath: string) {
  const { child, done } = startCli(['connector', 'start', '--config', configPath, '--json']);
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('\n'))
        resolve((JSON.parse(out.split('\n')[0] as string) as { url: string }).url);
    });
    void done.then((run) => reject(new Error(`connector exited ${run.code}: ${run.stderr}`)));
  });
  return { child, done, url };
}

/**
 * What the connector does on the next payment once the card-step window has passed, with the
 * journal's clock moved past it: the terminal's status query, and the row settled.
 */
async function afterCardStep(journalPath: string, terminalUrl: string): Promise<void> {
  const journal = new SqliteJournal({
    path: journalPath,
    now: () => Date.now() + SEMI_CARD_STEP_MS + 60_000,
  });
  const service = new TransactionService({ journal });
  service.addTerminal(CONNECTOR_TERMINAL_ID, new SemiDriver({ url: terminalUrl, currency: 'USD' }));
  try {
    await service.reconcile(CONNECTOR_TERMINAL_ID);
  } finally {
    await service.close();
    journal.close();
  }
}

describe('fault runs: connector process (SIGKILL)', () => {
  const scenario = 'connector: SIGKILL the connector mid-payment, then restart it';
  it(`${scenario} → charged once, journaled, resolved, notified exactly for what happened`, async (context) => {
    const total = runs({ short: 1, long: 15 });
    const violations = noViolations();
    let payments = 0;
    let killed = 0;
    let waited = 0;
    for (let run = 0; run < total; run++) {
      const seed = seedFor(scenario, run);
      const rng = new Rng(seed);
      const simulator = await new SemiSimulator({
        wsPort: null,
        tcpPort: 0,
        controlPort: 0,
        // A card step long enough for the kill to land in it now and then.
        cardDelayMs: 100,
        slowAnswerMs: 50,
      }).start();
      const office = await new BackOffice().start();
      const dir = tempDir('faults-connector-kill-');
      const configPath = join(dir, 'config.txt');
      writeFileSync(
        configPath,
        connectorConfig(
          `semi+${simulator.tcpUrl as string}`,
          office,
          join(dir, 'data'),
          await closedPort(),
        ),
      );
      const references: string[] = [];
      const amounts = new Map<string, number>();
      let first = await startChild(configPath);
      try {
        const pay = async (base: string, reference: string, minor: number) => {
          payments++;
          if (!amounts.has(reference)) references.push(reference);
          amounts.set(reference, minor);
          return tryPay(base, reference, minor);
        };
        const count = rng.int(1, 3);
        for (let i = 0; i < count; i++)
          await pay(first.url, referenceFor(rng, 'P'), randomAmount(rng, CONNECTOR_SCENARIOS));
        // The payment the connector dies in: at the card read, or anywhere in its first 120 ms
        // (the card step takes 100).
        let dead = false;
        const kill = (): void => {
          if (dead) return;
          dead = true;
          first.child.kill('SIGKILL');
          killed++;
        };
        const atCard = rng.next() < 0.5;
        if (atCard) simulator.ledger.once('charge', kill);
        const timer = atCard ? undefined : setTimeout(kill, rng.int(0, 120));
        await pay(first.url, referenceFor(rng, 'K'), randomAmount(rng, [55, 56, 58]));
        simulator.ledger.off('charge', kill);
        clearTimeout(timer);
        kill();
        await first.done;
        // Back up on the same data directory: the POS retries every order id, then pays again.
        first = await startChild(configPath);
        for (const reference of [...references])
          await pay(first.url, reference, amounts.get(reference) as number);
        await pay(first.url, referenceFor(rng, 'C'), rng.int(10, 90) * 100 + rng.int(0, 49));
        const journalPath = join(dir, 'data', JOURNAL_FILE_NAME);
        if (
          [...(await rowsOf(journalPath, references)).values()].some((r) => r?.state === 'unknown')
        ) {
          // Killed after `sent` was journaled but before the request reached the terminal: its
          // last transaction is an earlier one, which proves nothing until the longest card step
          // has passed (SEMI_CARD_STEP_MS, 3 minutes). The POS comes back after that: the
          // journal's clock is moved on instead of sleeping, and the product settles the row.
          waited++;
          trace(run, seed, 'settled after the card-step window');
          first.child.kill('SIGTERM');
          await first.done;
          await afterCardStep(journalPath, simulator.tcpUrl as string);
          first = await startChild(configPath);
        }
        await settleAndCheck(
          office,
          journalPath,
          { run, seed, references, charges: simulator.ledger.all() },
          violations,
        );
      } finally {
        if (first.child.exitCode === null && first.child.signalCode === null)
          first.child.kill('SIGTERM');
        await first.done;
        await simulator.stop();
        await office.close();
      }
    }
    report(context, { scenario, runs: total, payments }, violations);
    expect(killed).toBe(total);
    if (waited > 0) await context.annotate(`${waited} run(s) settled after the card-step window`);
  }, 900_000);
});

/** What a retry may meet at the terminal, without the three-minute answer timeout (…54). */
const CONNECTOR_RETRY_OUTCOMES = [
  ...REFUSALS,
  'approved',
  'partial',
  'slow-approve',
  'drop-after-card',
] as const;

type RetryFault =
  | 'cut the terminal link during the card step'
  | 'restart the terminal simulator during the card step'
  | 'SIGKILL the connector during the card step, then restart it';

const RETRY_FAULTS: readonly RetryFault[] = [
  'cut the terminal link during the card step',
  'restart the terminal simulator during the card step',
  'SIGKILL the connector during the card step, then restart it',
];

/** The card step of the retry scenario's terminal: room for a fault inside it. */
const RETRY_CARD_MS = 60;

/** Every attempt of each reference, and their events, through a second handle on the file. */
async function attemptsAt(path: string, references: readonly string[]) {
  const journal = new SqliteJournal({ path });
  try {
    const attempts = new Map<string, JournalRow[]>();
    const events = new Map<number, TransactionEvent[]>();
    for (const reference of references) {
      const list = await journal.attemptsOf({
        merchantId: 'default',
        terminalId: CONNECTOR_TERMINAL_ID,
        reference,
      });
      attempts.set(reference, list);
      for (const row of list) events.set(row.id, await journal.eventsOf(row.id));
    }
    return { attempts, events };
  } finally {
    journal.close();
  }
}

describe('fault runs, retried order id: connector process', () => {
  const scenario = 'connector (CLI process): retry a declined or busy order id under faults';
  it(`${scenario} → one charge at most, every attempt journaled in order and notified, unknown replayed`, async (context) => {
    const total = runs({ short: 1, long: 15 });
    const violations = noViolations();
    const simPort = await closedPort();
    const simulator = await new SemiSimulator({
      wsPort: null,
      tcpPort: simPort,
      controlPort: 0,
      cardDelayMs: RETRY_CARD_MS,
      slowAnswerMs: 50,
    }).start();
    const proxy = await new FaultProxy({ host: '127.0.0.1', port: simPort }).start();
    const office = await new BackOffice().start();
    const dir = tempDir('faults-connector-retry-');
    const configPath = join(dir, 'config.txt');
    writeFileSync(
      configPath,
      connectorConfig(
        `semi+tcp://127.0.0.1:${proxy.port}`,
        office,
        join(dir, 'data'),
        await closedPort(),
      ),
    );
    const journalPath = join(dir, 'data', JOURNAL_FILE_NAME);
    let child = await startChild(configPath);
    let payments = 0;
    let attemptCount = 0;
    let unknownRetries = 0;
    let fired = 0;
    try {
      for (let run = 0; run < total; run++) {
        const seed = seedFor(scenario, run);
        const rng = new Rng(seed);
        office.rng = rng;
        office.failChance = rng.next() < 0.3 ? 0.3 : 0;
        const firstCharge = simulator.ledger.count;
        const references: string[] = [];
        const calls: RetryCall[] = [];
        const latest = async (reference: string) =>
          (await rowsOf(journalPath, [reference])).get(reference);
        const pay = async (reference: string, minor: number) => {
          payments++;
          if (!references.includes(reference)) references.push(reference);
          const before = await latest(reference);
          const answer = await tryPay(child.url, reference, minor);
          calls.push({
            reference,
            before:
              before === undefined ? undefined : { attempt: before.attempt, state: before.state },
            attempt: answer?.attempt,
            replayed: answer?.replayed,
          });
          return answer;
        };
        /** Another order: with SEMI's status query, it settles an earlier `unknown` first. */
        const another = () => pay(referenceFor(rng, 'C'), rng.int(10, 90) * 100 + rng.int(0, 49));
        const reference = referenceFor(rng, 'R');
        const minor = rng.int(10, 90) * 100 + rng.int(0, 49);
        const tries = rng.int(2, 5);
        for (let i = 0; i < tries; i++) {
          // The first attempt is refused cleanly; the first retry is always broken, later ones
          // now and then. A broken attempt reaches the card step (busy is refused before it).
          const fault =
            i === 0 ? undefined : i === 1 || rng.next() < 0.5 ? rng.pick(RETRY_FAULTS) : undefined;
          const outcomes = CONNECTOR_RETRY_OUTCOMES.filter(
            (o) => fault === undefined || o !== 'busy',
          );
          const scenarioName = i === 0 ? rng.pick(REFUSALS) : rng.pick(outcomes);
          await queueNext(simulator.controlPort, scenarioName);
          const paying = pay(reference, minor);
          if (fault !== undefined) {
            const deadline = Date.now() + 5_000;
            while (!simulator.busy && Date.now() < deadline) await sleep(1);
            await sleep(rng.int(0, RETRY_CARD_MS - 10));
            if (simulator.busy) fired++;
            if (fault === 'cut the terminal link during the card step') {
              await proxy.cut();
              await proxy.resume();
            } else if (fault === 'restart the terminal simulator during the card step') {
              await simulator.stop();
              await simulator.start();
            } else {
              child.child.kill('SIGKILL');
              await child.done;
              child = await startChild(configPath);
            }
          }
          const answer = await paying;
          await clearNext(simulator.controlPort);
          trace(
            run,
            seed,
            `attempt ${answer?.attempt ?? '?'}`,
            scenarioName,
            fault ?? 'no fault',
            answer?.outcome ?? 'no answer',
          );
          let row = await latest(reference);
          if (row !== undefined && ['unknown', 'received', 'sent'].includes(row.state)) {
            // No outcome seen: the POS sends the order again at once (the same attempt must
            // come back, replayed); then pays another order, before which the connector asks
            // the terminal what became of it.
            await pay(reference, minor);
            await another();
            row = await latest(reference);
          }
          if (row === undefined || !['declined', 'cancelled', 'failed'].includes(row.state)) break;
        }
        // The POS retries once more (replayed, or another attempt if the last charged nothing),
        // then the next payment settles what a status query can.
        await pay(reference, minor);
        await another();
        const charges = simulator.ledger.all().slice(firstCharge);
        // Wait until every attempt that happened at the terminal was acknowledged.
        const deadline = Date.now() + NOTIFY_WAIT_MS;
        let journaled = await attemptsAt(journalPath, references);
        const delivered = () =>
          [...journaled.attempts.values()]
            .flat()
            .every(
              (row) =>
                !['approved', 'declined', 'cancelled'].includes(row.state) ||
                office.deliveries(new Set([row.reference])).some((d) => d.attempt === row.attempt),
            );
        while (!delivered() && Date.now() < deadline) {
          await sleep(50);
          journaled = await attemptsAt(journalPath, references);
        }
        for (const row of [...journaled.attempts.values()].flat()) {
          const timeline = journaled.events.get(row.id) ?? [];
          trace(
            run,
            seed,
            `${row.reference} attempt ${row.attempt}: ${timeline.map((e) => e.state).join(' → ')} (${row.message ?? ''})`,
          );
        }
        const rows = await rowsOf(journalPath, references);
        checkRun(violations, { run, seed, references, charges, rows, statusQuery: true });
        const wanted = new Set(references);
        checkAttemptNotifications(
          violations,
          { run, seed, attempts: journaled.attempts },
          office.deliveries(wanted, true),
        );
        for (const ref of wanted) {
          const got = office.deliveries(new Set([ref]), true);
          if (got.length > 0 && !got.some((d) => d.acknowledged)) {
            violations.lost++;
            violations.details.push(
              `run ${run} (seed ${seed}), reference ${ref}: never acknowledged`,
            );
          }
        }
        const wires = wireIdsAt(journalPath);
        try {
          unknownRetries += checkAttempts(
            violations,
            {
              run,
              seed,
              ...journaled,
              charges,
              rowOfWireId: wires.rowOf,
              calls,
              terminalRecord: new Set(
                simulator
                  .openBatch()
                  .flatMap((e) => (e.reqTxnId === undefined ? [] : [e.reqTxnId])),
              ),
            },
            wires.idsOf,
          );
        } finally {
          wires.close();
        }
        attemptCount += journaled.attempts.get(reference)?.length ?? 0;
      }
    } finally {
      if (child.child.exitCode === null && child.child.signalCode === null)
        child.child.kill('SIGTERM');
      await child.done;
      await proxy.stop();
      await simulator.stop();
      await office.close();
    }
    report(
      context,
      { scenario, runs: total, payments, attempts: attemptCount, unknownRetries },
      violations,
    );
    expect(attemptCount).toBeGreaterThan(total);
    expect(fired).toBeGreaterThan(runs({ short: 0, long: total / 4 }));
  }, 900_000);
});
