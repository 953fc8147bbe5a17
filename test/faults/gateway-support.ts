import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, type TestContext } from 'vitest';
import {
  EconduitSimulator,
  type VirtualTerminal,
} from '../../src/simulators/econduit/simulator.js';
import type { Charge, ChargeLedger } from '../../src/simulators/ledger.js';
import type { Journal, JournalRow } from '../../src/core/journal-port.js';
import { JOURNAL_RETRY_MS } from '../../src/core/journal-upkeep.js';
import { chargedNothing } from '../../src/core/transaction.js';
import { startCli } from '../cli/run-cli.js';
import { waitFor, waitForAsync } from '../helpers.js';
import { noViolations, report, Rng, runs, seedFor, type Violations } from './harness.js';

/**
 * What the gateway and cluster fault scenarios share: a POS that behaves as an eConduit client
 * should (retry the same refID after an error or a lost answer, poll `checkStatus` until
 * `ResultFinal`), the dashboard's live feed as a listener hears it, and the end-of-run checks of
 * the four invariants against the terminal simulator's charge ledger and the journal; and the
 * scenario loop, the processes and the set-up pieces both suites use.
 */

/** The simulated cardholder's time at the card step. */
export const CARD_MS = 300;
/** A POS gives a payment this long to end final (generous: a loaded 2-core machine). */
export const POS_PATIENCE_MS = 90_000;

export type Cleanup = () => Promise<void> | void;

/** Scenarios run concurrently (they share nothing): each keeps its own cleanups. */
export function cleanupsOf(context: TestContext): Cleanup[] {
  const list: Cleanup[] = [];
  context.onTestFinished(async () => {
    for (const cleanup of list.splice(0).reverse()) await cleanup();
  });
  return list;
}

export interface Merchant {
  readonly key: string;
  readonly password: string;
}

export type Answer = Record<string, unknown>;

/** One eConduit call; a network error (the gateway died, the socket was cut) is `undefined`. */
export async function posCall(
  base: string,
  method: 'runTransaction' | 'checkStatus',
  fields: Record<string, string>,
): Promise<{ status: number; body: Answer } | undefined> {
  try {
    const response = await fetch(
      `${base}/services/api.asmx/${method}?${new URLSearchParams(fields).toString()}`,
      { signal: AbortSignal.timeout(240_000) },
    );
    return { status: response.status, body: (await response.json()) as Answer };
  } catch {
    return undefined;
  }
}

/** A payment a run makes: a refID of letters and an amount whose cents pick the scenario. */
export interface Payment {
  readonly reference: string;
  readonly amount: string;
}

/**
 * The simulators' scenario table by cents (src/simulators/scenarios.ts): approve, decline (51),
 * cancel (52), busy (53), no answer (54), drop after the card (55), slow (56), invalid (57),
 * partial (58). `withoutSlow` leaves out 54 and 56 for a gateway whose answer timeout cannot be
 * set (the CLI's is 3 minutes).
 */
export function payment(rng: Rng, tag: string, withoutSlow = false): Payment {
  const cents = withoutSlow
    ? ['00', '10', '25', '51', '52', '53', '55', '57', '58', '99']
    : ['00', '10', '25', '51', '52', '53', '54', '55', '56', '57', '58', '99'];
  return { reference: `${tag}${rng.letters(10)}`, amount: `${rng.int(1, 40)}.${rng.pick(cents)}` };
}

/** How one payment ended for the POS. */
export interface PosResult {
  readonly payment: Payment;
  /** The answer with ResultFinal true; undefined if none came before the deadline. */
  readonly final: Answer | undefined;
  /** Every answer the POS got, for the detail lines. */
  readonly answers: string[];
}

/**
 * Pays as a careful POS does: `runTransaction`; on a network error or an error answer (the
 * gateway restarting, the terminal reconnecting, the cluster's servers away) the same refID
 * again after a pause; on `ResultFinal: false`, `checkStatus` until it is true. `bases` are the
 * gateway nodes to try, in turn (a POS behind a load balancer).
 */
export async function posPay(
  bases: () => readonly string[],
  merchant: Merchant,
  terminalId: string,
  pay: Payment,
  timeoutMs: number,
): Promise<PosResult> {
  const deadline = Date.now() + timeoutMs;
  const answers: string[] = [];
  const fields = {
    command: 'Sale',
    key: merchant.key,
    password: merchant.password,
    amount: pay.amount,
    refID: pay.reference,
    terminalId,
  };
  let attempt = 0;
  while (Date.now() < deadline) {
    const list = bases();
    const base = list[attempt++ % list.length] as string;
    const answer = await posCall(base, 'runTransaction', fields);
    answers.push(answer === undefined ? 'no answer' : `${answer.status} ${short(answer.body)}`);
    if (answer === undefined || answer.status !== 200) {
      await sleep(250);
      continue;
    }
    if (answer.body.ResultFinal === true) return { payment: pay, final: answer.body, answers };
    // Unknown: ask until the gateway knows.
    while (Date.now() < deadline) {
      await sleep(200);
      const now = bases();
      const status = await posCall(now[attempt++ % now.length] as string, 'checkStatus', {
        key: merchant.key,
        password: merchant.password,
        refID: pay.reference,
        terminalId,
      });
      if (status?.status === 200 && status.body.ResultFinal === true) {
        answers.push(`checkStatus ${short(status.body)}`);
        return { payment: pay, final: status.body, answers };
      }
    }
  }
  return { payment: pay, final: undefined, answers };
}

/** Whether a fault showed in the payment: a lost answer, an error, an unknown, a status query. */
export function wasDisturbed(result: PosResult): boolean {
  return (
    result.answers.length > 1 ||
    result.answers.some((a) => !a.startsWith('200 ') || a.includes('not final')) ||
    /status query|came back|no answer seen|interrupted/.test(String(result.final?.Message ?? ''))
  );
}

function short(body: Answer): string {
  return `${String(body.ResultCode)}${body.ErrorCode === undefined || body.ErrorCode === '' ? '' : `/${String(body.ErrorCode)}`}${body.ResultFinal === true ? '' : ' (not final)'}`;
}

/** One `transaction` event of the dashboard's live stream. */
export interface FeedEvent {
  readonly id: string;
  readonly reference: string;
  readonly terminalId: string;
  readonly state: string;
}

/**
 * The dashboard's live stream (`/ui/api/events`) of one merchant, signed in as a person would:
 * the notifications the gateway delivers. Collects every `transaction` event.
 */
export class LiveFeed {
  readonly events: FeedEvent[] = [];
  ended = false;
  private readonly abort = new AbortController();

  private constructor(readonly base: string) {}

  static async open(base: string, merchant: Merchant): Promise<LiveFeed> {
    const login = await fetch(`${base}/ui/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login: merchant.key, password: merchant.password }),
    });
    if (login.status !== 200) throw new Error(`dashboard sign-in: HTTP ${login.status}`);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const feed = new LiveFeed(base);
    const stream = await fetch(`${base}/ui/api/events`, {
      headers: { cookie },
      signal: feed.abort.signal,
    });
    const reader = stream.body?.getReader();
    if (stream.status !== 200 || reader === undefined)
      throw new Error(`dashboard events: HTTP ${stream.status}`);
    let gotFirst: () => void = () => {};
    const first = new Promise<void>((resolve) => (gotFirst = resolve));
    void (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event === 'terminals') gotFirst();
            if (event === 'transaction' && data !== undefined)
              feed.events.push(JSON.parse(data) as FeedEvent);
          }
        }
      } catch {
        // Closed by us, or the node went away.
      } finally {
        feed.ended = true;
        gotFirst();
      }
    })();
    // The stream follows the journal from the moment its first listing is sent.
    await first;
    return feed;
  }

  close(): void {
    this.abort.abort();
  }
}

/** A run's identity in the detail lines. */
export interface RunContext {
  readonly run: number;
  readonly seed: number;
  readonly violations: Violations;
}

function violation(
  ctx: RunContext,
  kind: 'lost' | 'duplicated' | 'unresolved',
  reference: string,
  what: string,
): void {
  ctx.violations[kind]++;
  ctx.violations.details.push(
    `run ${ctx.run} (seed ${ctx.seed}) ${reference}: ${kind}: ${what.slice(0, 600)}`,
  );
}

const RESULT_CODES: Record<string, string> = {
  approved: 'Approved',
  declined: 'Declined',
  cancelled: 'Cancelled',
  failed: 'Error',
};

/** How long a row the POS heard JOURNAL_ERROR about may take to be written: a few retries. */
const JOURNAL_SETTLE_MS = 4 * JOURNAL_RETRY_MS + 2_000;

/** Rows in these states are settled; anything else at the end of a run is unresolved. */
const FINAL = new Set(['approved', 'declined', 'cancelled', 'failed']);

/** What `checkRun` checks a run's payments against. */
export interface CheckInput {
  readonly results: readonly PosResult[];
  readonly ledger: ChargeLedger;
  readonly journal: Journal;
  readonly merchantId: string;
  readonly terminalId: string;
  readonly feed?: LiveFeed | undefined;
  /** How long the live stream may take to deliver the last states. @default 10 s */
  readonly feedWaitMs?: number | undefined;
}

/**
 * Whether `final`, which differs from the latest attempt `latest` of `ref`, is the true answer of
 * an earlier attempt. The POS sent the refID twice at once (payWithRetry): one call was answered
 * with an attempt that charged nothing (declined, cancelled, failed: the terminal was offline),
 * and the other, arriving after it, started the next attempt, as invariant 1 allows. That holds
 * only when an earlier attempt did end so and another call of the POS was told the latest.
 */
async function toldAnEarlierAttempt(
  input: CheckInput,
  ref: string,
  final: Answer,
  latest: JournalRow,
): Promise<boolean> {
  const attempts = await input.journal.attemptsOf({
    merchantId: input.merchantId,
    terminalId: input.terminalId,
    reference: ref,
  });
  const earlier = attempts.filter((a) => a.attempt < latest.attempt);
  const matches = earlier.some(
    (a) => chargedNothing(a.state) && RESULT_CODES[a.state] === final.ResultCode,
  );
  const latestTold = input.results.some(
    (r) => r.payment.reference === ref && r.final?.ResultCode === RESULT_CODES[latest.state],
  );
  return matches && latestTold;
}

/**
 * The end-of-run checks for a run's payments:
 * (a) the ledger holds at most one charge per refID;
 * (b) every charge is in the journal as approved (or unknown, then counted unresolved), and
 *     nothing the journal calls approved is missing from the ledger; what the POS was finally
 *     told agrees with the journal's latest attempt (or, for a refID sent twice at once, with an
 *     earlier attempt that charged nothing, when the other call was told the latest);
 * (c) no row is left `unknown` or in flight (SEMI has a status query). A POS told JOURNAL_ERROR
 *     heard an answer the journal had not recorded yet (the database was away): the gateway
 *     writes it in the background (JOURNAL_RETRY_MS), so such a row gets JOURNAL_SETTLE_MS to
 *     become final before it counts as unresolved;
 * (d) the journal's change feed ends in each row's state, and the live stream `feed` (when the
 *     process serving it lived through the run) delivered it, and named nothing else.
 * `journal` is read directly (not through the gateway under test).
 */
export async function checkRun(ctx: RunContext, input: CheckInput): Promise<void> {
  const find = (reference: string) =>
    input.journal.find({ merchantId: input.merchantId, terminalId: input.terminalId, reference });
  const unrecorded = input.results.filter(({ answers }) =>
    answers.some((answer) => answer.includes('JOURNAL_ERROR')),
  );
  await waitForAsync(
    async () => {
      for (const { payment } of unrecorded) {
        const row = await find(payment.reference);
        if (row !== undefined && !FINAL.has(row.state)) return false;
      }
      return true;
    },
    JOURNAL_SETTLE_MS,
    'answers the journal could not record at once',
  ).catch(() => {});
  const rows = new Map<string, JournalRow | undefined>();
  for (const { payment: pay } of input.results) rows.set(pay.reference, await find(pay.reference));
  const chargesOf = (reference: string): Charge[] =>
    input.ledger.forReference(reference).filter((c) => c.kind === undefined || c.kind === 'sale');
  for (const { payment: pay, final, answers } of input.results) {
    const ref = pay.reference;
    const row = rows.get(ref);
    const charges = chargesOf(ref);
    const story = `POS saw [${answers.join(', ')}]; journal ${row === undefined ? 'none' : `${row.state} (${row.message ?? ''})`}; ledger ${charges.length} charge(s)`;
    // (a)
    if (charges.length > 1) violation(ctx, 'duplicated', ref, story);
    // (c): checked first, so that an unknown row is not also counted lost.
    if (final === undefined || (row !== undefined && !FINAL.has(row.state))) {
      violation(ctx, 'unresolved', ref, story);
      continue;
    }
    // (b)
    if (charges.length > 0 && row?.state !== 'approved')
      violation(ctx, 'lost', ref, `a charge the journal does not hold as approved: ${story}`);
    if (row?.state === 'approved' && charges.length === 0)
      violation(ctx, 'lost', ref, `approved in the journal, never charged: ${story}`);
    if (
      row !== undefined &&
      final.ResultCode !== RESULT_CODES[row.state] &&
      !(await toldAnEarlierAttempt(input, ref, final, row))
    )
      violation(ctx, 'lost', ref, `the POS was finally told something else: ${story}`);
    if (row === undefined && final.ResultCode !== 'Error')
      violation(ctx, 'lost', ref, `an answer for a transaction never journaled: ${story}`);
  }
  // (d) The change feed in the journal (what every dashboard follows) ends in each row's state.
  for (const [ref, row] of rows) {
    if (row === undefined) continue;
    const events = await input.journal.eventsOf(row.id);
    if (events.at(-1)?.state !== row.state)
      violation(
        ctx,
        'lost',
        ref,
        `change feed ends in ${events.at(-1)?.state ?? 'nothing'}, the row is ${row.state}`,
      );
  }
  const feed = input.feed;
  if (feed === undefined) return;
  const delivered = (row: JournalRow) =>
    feed.events.some((e) => e.id === row.publicId && e.state === row.state);
  const settled = [...rows.values()].filter((r): r is JournalRow => r !== undefined);
  await waitForAsync(
    async () => settled.every(delivered),
    input.feedWaitMs ?? 10_000,
    'the live stream',
  ).catch(() => {});
  for (const row of settled)
    if (!delivered(row))
      violation(
        ctx,
        'lost',
        row.reference,
        `the live stream never delivered its ${row.state} (stream ${feed.ended ? 'ended' : 'open'})`,
      );
  // Earlier attempts of a refID (each its own row) are in the journal too.
  const known = new Set(settled.map((r) => r.publicId));
  for (const reference of rows.keys())
    for (const attempt of await input.journal.attemptsOf({
      merchantId: input.merchantId,
      terminalId: input.terminalId,
      reference,
    }))
      known.add(attempt.publicId);
  const runRefs = new Set(rows.keys());
  for (const event of feed.events)
    if (runRefs.has(event.reference) && !known.has(event.id))
      violation(ctx, 'lost', event.reference, `live event for a transaction not in the journal`);
}

/**
 * A fault moment the Rng picks, relative to the terminal: while its card step runs, the instant
 * it charges, just after it charged (the answer on its way), or `early` (a few ms after the POS
 * call, perhaps before the request reached the terminal).
 */
export type FaultPoint = 'card-step' | 'charge' | 'after-charge' | 'early';

/**
 * Resolves at the chosen point of the payment `reference` (or after `fallbackMs` when the point
 * never comes: a declined amount charges nothing). `busy` says whether the terminal is at its
 * card step.
 */
export async function atPoint(
  point: FaultPoint,
  rng: Rng,
  ledger: ChargeLedger,
  reference: string,
  busy: () => boolean,
  cardDelayMs: number,
  fallbackMs: number,
): Promise<void> {
  const deadline = Date.now() + fallbackMs;
  if (point === 'early') {
    await sleep(rng.int(0, 60));
    return;
  }
  if (point === 'card-step') {
    while (!busy() && Date.now() < deadline) await sleep(2);
    await sleep(rng.int(0, Math.max(0, cardDelayMs - 20)));
    return;
  }
  const extra = point === 'after-charge' ? rng.int(1, 40) : 0;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
    function done() {
      clearTimeout(timer);
      ledger.off('charge', onCharge);
      resolve();
    }
    function onCharge(charge: Charge) {
      if (charge.reference === reference) done();
    }
    ledger.on('charge', onCharge);
  });
  if (extra > 0) await sleep(extra);
}

/**
 * Resolves at a point the Rng picks from `points` (the order of `points` is part of the seeded
 * run: the pick depends on it) of the payment `reference` on the simulated terminal, or after 3 s.
 */
export function atPickedPoint(
  rng: Rng,
  points: readonly FaultPoint[],
  simulator: EconduitSimulator,
  virtual: VirtualTerminal,
  reference: string,
): Promise<void> {
  const point = rng.pick(points);
  return atPoint(
    point,
    rng,
    simulator.ledger,
    reference,
    () => virtual.terminal.busy,
    CARD_MS,
    3_000,
  );
}

/**
 * What a run on the terminal `terminalId` of the merchant `shop` is checked against: the
 * simulator's ledger, the journal (read directly) and, when given, the live stream.
 */
export function checksOn(
  simulator: EconduitSimulator,
  journal: Journal,
  terminalId: string,
  feed?: LiveFeed,
  feedWaitMs?: number,
): Omit<CheckInput, 'results'> {
  return { ledger: simulator.ledger, journal, merchantId: 'shop', terminalId, feed, feedWaitMs };
}

/** The dashboard's live stream of `merchant` at `base`, closed at cleanup. */
export async function openFeed(
  cleanups: Cleanup[],
  base: string,
  merchant: Merchant,
): Promise<LiveFeed> {
  const feed = await LiveFeed.open(base, merchant);
  cleanups.push(() => feed.close());
  return feed;
}

/** One approved payment before the runs: the terminal gets a history, the gateway is warm. */
export async function warmUp(
  bases: () => readonly string[],
  merchant: Merchant,
  terminalId: string,
): Promise<void> {
  const first = await posPay(
    bases,
    merchant,
    terminalId,
    { reference: `WARM${new Rng(Date.now()).letters(8)}`, amount: '1.00' },
    30_000,
  );
  if (first.final?.ResultCode !== 'Approved')
    throw new Error(`warm-up payment: ${first.answers.join(', ')}`);
}

/** The simulated terminal `terminalId`, reaching the gateway at `ports` (in turn); stopped at cleanup. */
export async function simulatorAt(
  cleanups: Cleanup[],
  terminalId: string,
  ports: readonly number[],
  options: {
    readonly cardDelayMs: number;
    readonly slowAnswerMs?: number;
    readonly startMs: number;
    /** Open the simulator's control port (`POST /next`) here; 0 picks a free one. */
    readonly controlPort?: number;
  },
): Promise<{ simulator: EconduitSimulator; virtual: VirtualTerminal }> {
  const simulator = await new EconduitSimulator({
    endpoints: ports.map((port) => ({ host: '127.0.0.1', port })),
    terminalId,
    heartbeatIntervalMs: 1_000,
    cardDelayMs: options.cardDelayMs,
    slowAnswerMs: options.slowAnswerMs,
    ...(options.controlPort === undefined ? {} : { controlPort: options.controlPort }),
  }).start(options.startMs);
  cleanups.push(() => simulator.stop());
  return { simulator, virtual: simulator.terminal(terminalId) as VirtualTerminal };
}

/** How many terminals the gateway at `base` has online (its `/healthz`). */
export async function terminalsOnline(base: string): Promise<number> {
  return ((await (await fetch(`${base}/healthz`)).json()) as { terminalsOnline: number })
    .terminalsOnline;
}

/** SIGKILLs `child` and waits until it is gone; nothing when it is not running. */
export async function killHard(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise((resolve) => child.once('close', resolve));
  child.kill('SIGKILL');
  await closed;
}

/** A real CLI process (`ecr-bridge …`) a scenario starts, SIGKILLs and starts again. */
export class CliProcess {
  /** Whether it is started and not killed since. */
  up = false;
  private child: ChildProcess | undefined;

  /** `label` names it in the waits and errors ("node a", "the gateway"). */
  constructor(
    private readonly args: readonly string[],
    private readonly label: string,
  ) {}

  /** Starts it and waits for its first line (`--json` prints one once it listens). */
  async start(): Promise<void> {
    const run = startCli(this.args);
    this.child = run.child;
    let out = '';
    run.child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    await waitFor(
      () => out.includes('\n') || run.child.exitCode !== null,
      30_000,
      `${this.label} up`,
    );
    if (!out.includes('\n'))
      throw new Error(`${this.label} did not start: ${(await run.done).stderr}`);
    this.up = true;
  }

  async kill(): Promise<void> {
    const running = this.child;
    this.up = false;
    await killHard(running);
  }
}

/** The POS pays, and with probability 0.3 sends the same refID again while it is in flight. */
async function payWithRetry(
  rng: Rng,
  pay: () => Promise<PosResult>,
  during: () => Promise<void>,
): Promise<PosResult[]> {
  const first = pay();
  const again = rng.next() < 0.3 ? sleep(rng.int(0, 400)).then(pay) : Promise.resolve(undefined);
  await during();
  const results = [await first];
  const second = await again;
  if (second !== undefined) results.push(second);
  return results;
}

/** What a fault scenario does in each run. */
export interface ScenarioBody {
  /** At the start of each run, before the run's own draws. */
  readonly before?: (rng: Rng) => Promise<void>;
  /** Draws one of the run's payments. */
  readonly payment: (rng: Rng) => Payment;
  /** The POS pays it. */
  readonly pay: (pay: Payment) => Promise<PosResult>;
  /** The fault, while the run's faulted payment is in flight. */
  readonly fault: (rng: Rng, pay: Payment) => Promise<void>;
  /** What the invariants are checked against after each run (`checkRun`). */
  readonly check: Omit<CheckInput, 'results'>;
  /** After each run, before its checks. */
  readonly beforeCheck?: () => Promise<void>;
  /** After each run's checks. */
  readonly afterCheck?: () => Promise<void>;
}

/**
 * Runs `runs(count)` runs of 1–3 payments each; one payment per run (picked by the Rng) is
 * faulted, and sometimes the POS sends the same refID again while it is in flight. The
 * invariants are checked after each run. Reports the row.
 */
export async function faultScenario(
  context: TestContext,
  name: string,
  count: { short: number; long: number },
  body: ScenarioBody,
): Promise<void> {
  const violations = noViolations();
  const total = runs(count);
  let payments = 0;
  /** Runs whose fault really disturbed the payment (a lost answer, a retry, a status query). */
  let disturbed = 0;
  for (let run = 0; run < total; run++) {
    const seed = seedFor(name, run);
    const rng = new Rng(seed);
    await body.before?.(rng);
    const n = rng.int(1, 3);
    const faultAt = rng.int(0, n - 1);
    const results: PosResult[] = [];
    for (let i = 0; i < n; i++) {
      const pay = body.payment(rng);
      payments++;
      if (i === faultAt) {
        const faulted = await payWithRetry(
          rng,
          () => body.pay(pay),
          () => body.fault(rng, pay),
        );
        if (faulted.some(wasDisturbed)) disturbed++;
        results.push(...faulted);
      } else results.push(await body.pay(pay));
    }
    await body.beforeCheck?.();
    await checkRun({ run, seed, violations }, { ...body.check, results });
    await body.afterCheck?.();
  }
  report(context, { scenario: name, runs: total, payments }, violations);
  // A fault scenario whose faults never landed would prove nothing.
  expect(disturbed, `${name}: runs whose fault disturbed a payment`).toBeGreaterThan(
    runs({ short: 0, long: total / 4 }),
  );
}

/**
 * Invariant (d) for every attempt of a retried refID: the journal's change feed of each attempt
 * ends in its state, the live stream `feed` delivered each attempt's final state, and named no
 * transaction of the refID that is not one of its attempts.
 */
export async function checkAttemptFeed(
  ctx: RunContext,
  journal: Journal,
  attempts: ReadonlyMap<string, readonly JournalRow[]>,
  feed: LiveFeed,
  feedWaitMs = 10_000,
): Promise<void> {
  const rows = [...attempts.values()].flat();
  for (const row of rows) {
    const events = await journal.eventsOf(row.id);
    if (events.at(-1)?.state !== row.state)
      violation(
        ctx,
        'lost',
        row.reference,
        `attempt ${row.attempt}: change feed ends in ${events.at(-1)?.state ?? 'nothing'}, the row is ${row.state}`,
      );
  }
  const delivered = (row: JournalRow) =>
    feed.events.some((e) => e.id === row.publicId && e.state === row.state);
  await waitForAsync(async () => rows.every(delivered), feedWaitMs, 'the live stream').catch(
    () => {},
  );
  for (const row of rows)
    if (!delivered(row))
      violation(
        ctx,
        'lost',
        row.reference,
        `attempt ${row.attempt}: the live stream never delivered its ${row.state} (stream ${feed.ended ? 'ended' : 'open'})`,
      );
  const known = new Set(rows.map((r) => r.publicId));
  for (const event of feed.events)
    if (attempts.has(event.reference) && !known.has(event.id))
      violation(ctx, 'lost', event.reference, `live event for a transaction not in the journal`);
}
