import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino, type Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startConnector } from '../../src/cli/connector.js';
import { parseConfigText } from '../../src/connector/config.js';
import {
  localDay,
  MaintenanceScheduler,
  nextRunAt,
  runMaintenance,
  type MaintenanceReport,
  type TimeOfDay,
} from '../../src/connector/maintenance.js';
import { isOwnerAlive, makeOwner } from '../../src/core/owner.js';
import { TransactionService } from '../../src/core/transaction-service.js';
import { ConcertDriver } from '../../src/drivers/concert.js';
import { SemiDriver } from '../../src/drivers/semi.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { ConcertSimulator } from '../../src/simulators/concert/simulator.js';
import { SemiSimulator } from '../../src/simulators/semi/simulator.js';
import { closedPort, tempDir, waitFor } from '../helpers.js';

// Local Date arithmetic is what is under test: pin the zone to one with DST (last Sunday of March
// 02:00 → 03:00, last Sunday of October 03:00 → 02:00), whatever the machine's own zone is.
const savedTz = process.env.TZ;
beforeAll(() => {
  process.env.TZ = 'Europe/Paris';
  // The zone really changed (Node re-reads TZ on assignment): winter +1 h, summer +2 h.
  expect(new Date(2025, 0, 15).getTimezoneOffset()).toBe(-60);
  expect(new Date(2025, 6, 15).getTimezoneOffset()).toBe(-120);
});
afterAll(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A clock and timers that move only when told to. */
class FakeTime {
  private seq = 0;
  private timers: { id: number; at: number; fn: () => void }[] = [];
  constructor(public t: number) {}
  readonly now = (): Date => new Date(this.t);
  readonly setTimer = (fn: () => void, ms: number): number => {
    const id = ++this.seq;
    this.timers.push({ id, at: this.t + ms, fn });
    return id;
  };
  readonly clearTimer = (handle: unknown): void => {
    this.timers = this.timers.filter((timer) => timer.id !== handle);
  };
  get pending(): number {
    return this.timers.length;
  }
  /** Moves the clock to `until`, firing each timer at its time; `settled` waits out what fired. */
  async advanceTo(until: Date, settled: () => Promise<void>): Promise<void> {
    for (;;) {
      const next = [...this.timers].sort((a, b) => a.at - b.at)[0];
      if (next === undefined || next.at > until.getTime()) break;
      this.timers = this.timers.filter((timer) => timer !== next);
      this.t = Math.max(this.t, next.at);
      next.fn();
      await settled();
    }
    this.t = until.getTime();
  }
  /** The machine sleeps: the wall clock moves on, timers (monotonic) are held back as much. */
  suspend(ms: number): void {
    this.t += ms;
    for (const timer of this.timers) timer.at += ms;
  }
}

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function capture(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  );
  return { logger, lines };
}

/** Local wall time in the pinned zone. */
const local = (y: number, mo: number, d: number, h = 0, mi = 0) => new Date(y, mo - 1, d, h, mi);

function scheduler(
  time: TimeOfDay,
  start: Date,
  task: () => Promise<MaintenanceReport | string> = async () => 'done',
) {
  const fake = new FakeTime(start.getTime());
  const { logger, lines } = capture();
  const runs: Date[] = [];
  const s = new MaintenanceScheduler<MaintenanceReport | string>({
    time,
    task: () => {
      runs.push(fake.now());
      return task();
    },
    succeeded: (result) => typeof result === 'string' || result.ok,
    now: fake.now,
    setTimer: fake.setTimer,
    clearTimer: fake.clearTimer,
    logger,
  });
  cleanups.push(() => s.stop());
  const settled = () => waitFor(() => s.status.type !== 'running', 5_000, 'the run to end');
  const advanceTo = (until: Date) => fake.advanceTo(until, settled);
  return { s, fake, lines, runs, advanceTo };
}

const iso = (date: Date | undefined) => date?.toISOString();

describe('the UPDATE_TIME schedule (local time, fake clock)', () => {
  it('next run: today when hh:mm is still ahead, tomorrow when it has passed or is now, and never the day already done', () => {
    const four = { hour: 4, minute: 0 };
    expect(nextRunAt(four, local(2025, 1, 10, 3, 59))).toEqual(local(2025, 1, 10, 4, 0));
    expect(nextRunAt(four, local(2025, 1, 10, 4, 0))).toEqual(local(2025, 1, 11, 4, 0));
    expect(nextRunAt(four, local(2025, 1, 10, 23, 59))).toEqual(local(2025, 1, 11, 4, 0));
    // Across a month and a year end.
    expect(nextRunAt(four, local(2025, 12, 31, 12, 0))).toEqual(local(2026, 1, 1, 4, 0));
    // The clock set back after today's run: today is not run a second time.
    expect(nextRunAt(four, local(2025, 1, 10, 3, 0), '2025-01-10')).toEqual(
      local(2025, 1, 11, 4, 0),
    );
    expect(localDay(local(2025, 3, 9, 23, 59))).toBe('2025-03-09');
  });

  it('started before hh:mm it runs today at hh:mm; started after, its first run is tomorrow', async () => {
    const before = scheduler({ hour: 4, minute: 0 }, local(2025, 1, 10, 1, 30));
    before.s.start();
    expect(iso((before.s.status as { next: Date }).next)).toBe(iso(local(2025, 1, 10, 4, 0)));
    await before.advanceTo(local(2025, 1, 10, 5, 0));
    expect(before.runs.map(iso)).toEqual([iso(local(2025, 1, 10, 4, 0))]);

    const after = scheduler({ hour: 4, minute: 0 }, local(2025, 1, 10, 4, 1));
    after.s.start();
    await after.advanceTo(local(2025, 1, 10, 23, 59));
    expect(after.runs).toEqual([]);
    await after.advanceTo(local(2025, 1, 11, 5, 0));
    expect(after.runs.map(iso)).toEqual([iso(local(2025, 1, 11, 4, 0))]);
    expect(after.lines.find((l) => l.msg === 'maintenance scheduled')).toMatchObject({
      updateTime: '04:00',
      localDay: '2025-01-11',
    });
  });

  it('runs exactly once per local day over a week, at hh:mm each day, through the ten-minute rechecks', async () => {
    const { s, runs, advanceTo, lines } = scheduler(
      { hour: 23, minute: 45 },
      local(2025, 2, 1, 0, 0),
    );
    s.start();
    await advanceTo(local(2025, 2, 8, 0, 0));
    expect(runs.map(iso)).toEqual([1, 2, 3, 4, 5, 6, 7].map((d) => iso(local(2025, 2, d, 23, 45))));
    expect(lines.filter((l) => l.msg === 'maintenance run done')).toHaveLength(7);
    expect(lines.filter((l) => l.msg === 'maintenance run done')[0]).toMatchObject({
      localDay: '2025-02-01',
      result: 'done',
    });
  });

  it('a run that throws is logged at error with its code; the next day runs all the same', async () => {
    let calls = 0;
    const { s, runs, advanceTo, lines } = scheduler(
      { hour: 4, minute: 0 },
      local(2025, 1, 10, 0, 0),
      async () => {
        if (++calls === 1) throw new Error('terminal on fire');
        return 'done';
      },
    );
    s.start();
    await advanceTo(local(2025, 1, 12, 0, 0));
    expect(runs.map(iso)).toEqual([iso(local(2025, 1, 10, 4, 0)), iso(local(2025, 1, 11, 4, 0))]);
    const failed = lines.find((l) => l.msg === 'maintenance run failed');
    expect(failed).toMatchObject({
      level: 50,
      localDay: '2025-01-10',
      err: { code: 'INTERNAL', message: 'terminal on fire' },
    });
    expect(lines.filter((l) => l.msg === 'maintenance run done')).toHaveLength(1);
  });

  it('a report with a failed step is logged at error as failed (not done)', async () => {
    const report: MaintenanceReport = {
      ok: false,
      batchClose: { status: 'failed', code: 'TERMINAL_UNREACHABLE', message: 'no route' },
      housekeeping: { status: 'done', checkpointed: true, locksRemoved: 0 },
    };
    const { s, advanceTo, lines } = scheduler(
      { hour: 4, minute: 0 },
      local(2025, 1, 10, 0, 0),
      async () => report,
    );
    s.start();
    await advanceTo(local(2025, 1, 10, 5, 0));
    expect(lines.find((l) => l.msg === 'maintenance run failed')).toMatchObject({
      level: 50,
      result: { batchClose: { status: 'failed', code: 'TERMINAL_UNREACHABLE' } },
    });
  });

  it('stop() cancels the next run (no timer left) and waits for a run in progress to end', async () => {
    const idle = scheduler({ hour: 4, minute: 0 }, local(2025, 1, 10, 0, 0));
    idle.s.start();
    await idle.s.stop();
    expect(idle.fake.pending).toBe(0);
    await idle.advanceTo(local(2025, 1, 13, 0, 0));
    expect(idle.runs).toEqual([]);
    expect(idle.s.status).toEqual({ type: 'stopped' });

    let finish: () => void = () => {};
    const busy = scheduler(
      { hour: 4, minute: 0 },
      local(2025, 1, 10, 3, 59),
      () => new Promise<string>((resolve) => (finish = () => resolve('done'))),
    );
    busy.s.start();
    await busy.fake.advanceTo(local(2025, 1, 10, 4, 0), async () => {});
    expect(busy.s.status).toEqual({ type: 'running', day: '2025-01-10' });
    let stopped = false;
    const stopping = busy.s.stop().then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(stopped).toBe(false);
    finish();
    await stopping;
    expect(busy.fake.pending).toBe(0);
  });

  it('DST in Europe/Paris: 04:00 local every day, so the run after spring-forward comes 22 h after 05:00 the day before (a 23 h day) and two fall-back days hold 49 h', async () => {
    const spring = scheduler({ hour: 4, minute: 0 }, local(2025, 3, 29, 5, 0));
    spring.s.start();
    await spring.advanceTo(local(2025, 3, 31, 12, 0));
    // 04:00 CEST = 02:00Z on the 30th (the first day of summer time), 04:00 CEST on the 31st.
    expect(spring.runs.map(iso)).toEqual(['2025-03-30T02:00:00.000Z', '2025-03-31T02:00:00.000Z']);
    expect((spring.runs[0]!.getTime() - local(2025, 3, 29, 5, 0).getTime()) / 3_600_000).toBe(22);

    const autumn = scheduler({ hour: 4, minute: 0 }, local(2025, 10, 25, 4, 30));
    autumn.s.start();
    await autumn.advanceTo(local(2025, 10, 27, 12, 0));
    expect(autumn.runs.map(iso)).toEqual(['2025-10-26T03:00:00.000Z', '2025-10-27T03:00:00.000Z']);
    expect((autumn.runs[1]!.getTime() - local(2025, 10, 25, 4, 0).getTime()) / 3_600_000).toBe(49);
  });

  it('DST: 02:30 skipped by spring-forward runs once at 03:30 CEST; 02:30 repeated by fall-back runs once, at its first occurrence', async () => {
    const spring = scheduler({ hour: 2, minute: 30 }, local(2025, 3, 29, 12, 0));
    spring.s.start();
    await spring.advanceTo(local(2025, 3, 31, 3, 0));
    // 03:30 CEST = 01:30Z on the 30th; 02:30 CEST = 00:30Z on the 31st.
    expect(spring.runs.map(iso)).toEqual(['2025-03-30T01:30:00.000Z', '2025-03-31T00:30:00.000Z']);

    const autumn = scheduler({ hour: 2, minute: 30 }, local(2025, 10, 25, 12, 0));
    autumn.s.start();
    // Past both 02:30s of the 26th (00:30Z in CEST, 01:30Z in CET), up to the 27th's.
    await autumn.advanceTo(new Date('2025-10-27T02:00:00.000Z'));
    expect(autumn.runs.map(iso)).toEqual(['2025-10-26T00:30:00.000Z', '2025-10-27T01:30:00.000Z']);
  });

  it('asleep through hh:mm: 30 min late it still runs; 3 h late it is skipped with a warning and the next day runs', async () => {
    const short = scheduler({ hour: 4, minute: 0 }, local(2025, 1, 10, 3, 55));
    short.s.start();
    short.fake.suspend(30 * 60_000);
    await short.advanceTo(local(2025, 1, 10, 6, 0));
    // Its 04:00 timer was held back by the 30 min of sleep: it fires at 04:30 and runs.
    expect(short.runs.map(iso)).toEqual([iso(local(2025, 1, 10, 4, 30))]);

    const long = scheduler({ hour: 4, minute: 0 }, local(2025, 1, 10, 3, 55));
    long.s.start();
    long.fake.suspend(3 * 60 * 60_000);
    await long.advanceTo(local(2025, 1, 11, 12, 0));
    expect(long.runs.map(iso)).toEqual([iso(local(2025, 1, 11, 4, 0))]);
    expect(long.lines.find((l) => l.level === 40)).toMatchObject({
      msg: expect.stringMatching(/^maintenance skipped/),
      localDay: '2025-01-10',
      lateMinutes: 180,
    });
  });
});

function journalIn(dir: string, busyTimeoutMs?: number): SqliteJournal {
  const journal = new SqliteJournal({
    path: join(dir, 'ecr-bridge.db'),
    ...(busyTimeoutMs === undefined ? {} : { busyTimeoutMs }),
  });
  cleanups.push(() => journal.close());
  return journal;
}

describe('one maintenance run against real terminals and a real journal', () => {
  it('SEMI terminal: the batch is closed with the terminal’s totals, the journal checkpointed', async () => {
    const simulator = await new SemiSimulator({
      wsPort: null,
      tcpPort: 0,
      controlPort: 0,
    }).start();
    cleanups.push(() => simulator.stop());
    const journal = journalIn(tempDir('maintenance-semi-'));
    const driver = new SemiDriver({ url: simulator.tcpUrl as string, currency: 'USD' });
    const service = new TransactionService({ journal });
    service.addTerminal('t1', driver);
    cleanups.push(() => service.close());
    await service.pay('t1', {
      kind: 'sale',
      reference: 'M-1',
      amount: { minor: 1250, currency: 'USD' },
    });
    expect(simulator.openBatch()).toHaveLength(1);

    const { logger, lines } = capture();
    const report = await runMaintenance({ service, terminalId: 't1', driver, journal, logger });
    expect(report).toEqual({
      ok: true,
      batchClose: {
        status: 'closed',
        batchNumber: '1',
        saleCount: 1,
        refundCount: 0,
        net: '12.50 USD',
      },
      housekeeping: { status: 'done', checkpointed: true, locksRemoved: 0 },
    });
    expect(simulator.openBatch()).toEqual([]);
    expect(lines.some((l) => /skipped/.test(l.msg))).toBe(false);
  });

  it('SEMI terminal busy with a payment: the batch close waits its turn (retried), then closes the batch with that payment in it', async () => {
    const simulator = await new SemiSimulator({
      wsPort: null,
      tcpPort: 0,
      controlPort: 0,
      cardDelayMs: 400,
    }).start();
    cleanups.push(() => simulator.stop());
    const journal = journalIn(tempDir('maintenance-busy-'));
    const driver = new SemiDriver({ url: simulator.tcpUrl as string, currency: 'USD' });
    // The connector's service: no queue, a second request is refused at once (TERMINAL_BUSY).
    const service = new TransactionService({ journal, maxQueue: 0 });
    service.addTerminal('t1', driver);
    cleanups.push(() => service.close());
    const payment = service.pay('t1', {
      kind: 'sale',
      reference: 'M-2',
      amount: { minor: 700, currency: 'USD' },
    });
    await waitFor(
      () => journal.list()[0]?.state === 'sent',
      5_000,
      'the payment to be at the card step',
    );
    const { logger, lines } = capture();
    const report = await runMaintenance({
      service,
      terminalId: 't1',
      driver,
      journal,
      logger,
      busyRetryMs: 100,
    });
    expect((await payment).outcome).toBe('approved');
    expect(report.batchClose).toMatchObject({ status: 'closed', saleCount: 1, net: '7.00 USD' });
    expect(lines.filter((l) => /busy with a payment/.test(l.msg)).length).toBeGreaterThan(0);
  });

  it('Concert terminal (no batch-close capability): the batch close is skipped with a log line; housekeeping still runs', async () => {
    const simulator = await new ConcertSimulator({ tcpPort: 0 }).start();
    cleanups.push(() => simulator.stop());
    const journal = journalIn(tempDir('maintenance-concert-'));
    const driver = new ConcertDriver({ url: simulator.tcpUrl as string });
    const service = new TransactionService({ journal });
    service.addTerminal('t1', driver);
    cleanups.push(() => service.close());
    const { logger, lines } = capture();
    const report = await runMaintenance({ service, terminalId: 't1', driver, journal, logger });
    expect(report).toMatchObject({
      ok: true,
      batchClose: { status: 'skipped', reason: expect.stringMatching(/^concert terminals/) },
      housekeeping: { status: 'done', checkpointed: true },
    });
    expect(lines.find((l) => /^batch close skipped/.test(l.msg))).toMatchObject({
      level: 30,
      protocol: 'concert',
    });
    expect(simulator.ledger.count).toBe(0);
  });
});

describe('journal housekeeping on a real file', () => {
  it('empties the WAL file, drops the terminal lock of a dead process, keeps a live one’s, and leaves every transaction as it was', () => {
    const dir = tempDir('housekeeping-');
    const journal = journalIn(dir);
    const owner = makeOwner();
    for (let i = 0; i < 20; i++) {
      journal.claim({
        merchantId: 'default',
        terminalId: 't1',
        reference: `H-${i}`,
        kind: 'sale',
        amountMinor: 100 + i,
        currency: 'EUR',
        method: 'card',
        owner,
      });
    }
    const dead = spawnSync(process.execPath, ['-e', '']).pid as number;
    expect(journal.tryLockTerminal('gone', makeOwner(dead), () => false)).toBe(true);
    expect(journal.tryLockTerminal('here', owner, () => false)).toBe(true);
    const before = journal.list({ limit: 1000 });
    const wal = join(dir, 'ecr-bridge.db-wal');
    expect(statSync(wal).size).toBeGreaterThan(0);

    expect(journal.housekeeping((o) => isOwnerAlive(o))).toEqual({
      checkpointed: true,
      locksRemoved: 1,
    });
    expect(statSync(wal).size).toBe(0);
    expect(journal.list({ limit: 1000 })).toEqual(before);
    // The live owner's lock is still there: another owner cannot take it.
    expect(journal.tryLockTerminal('here', makeOwner(), (o) => isOwnerAlive(o))).toBe(false);
    const raw = new Database(join(dir, 'ecr-bridge.db'), { readonly: true });
    try {
      expect(raw.prepare('SELECT terminal_id FROM terminal_locks').all()).toEqual([
        { terminal_id: 'here' },
      ]);
    } finally {
      raw.close();
    }
  });

  it('a reader holding an old snapshot: checkpointed false (nothing lost, nothing waits past the busy timeout); once it ends, true', () => {
    const dir = tempDir('housekeeping-busy-');
    const journal = journalIn(dir, 100);
    const claim = (reference: string) =>
      journal.claim({
        merchantId: 'default',
        terminalId: 't1',
        reference,
        kind: 'sale',
        amountMinor: 100,
        currency: 'EUR',
        method: 'card',
        owner: makeOwner(),
      });
    claim('R-1');
    const reader = new Database(join(dir, 'ecr-bridge.db'));
    cleanups.push(() => void reader.close());
    reader.prepare('BEGIN').run();
    reader.prepare('SELECT count(*) FROM transactions').get();
    claim('R-2');
    expect(journal.housekeeping(() => true).checkpointed).toBe(false);
    reader.prepare('COMMIT').run();
    expect(journal.housekeeping(() => true).checkpointed).toBe(true);
    expect(journal.list().map((row) => row.reference)).toEqual(['R-2', 'R-1']);
  });
});

describe('the connector wires UPDATE_TIME', () => {
  it('with UPDATE_TIME the connector logs the next maintenance run (local day, no secret) and close() stops it; without it, none', async () => {
    const start = async (extra: string) => {
      const dir = tempDir('connector-maintenance-');
      const text = [
        `LOCAL_PORT=${await closedPort()}`,
        'TERMINAL_MANAGER_LOGIN=log',
        'TERMINAL_MANAGER_PWD=s3cret-pwd',
        'TERMINAL_URL=simulator:concert',
        `DATA_DIR=${join(dir, 'data')}`,
        extra,
      ].join('\n');
      writeFileSync(join(dir, 'config.txt'), text);
      const config = parseConfigText(text);
      const connector = await startConnector(config, 'info');
      await connector.close();
      const log = join(dir, 'data', 'logs', 'ecr-bridge.log');
      return existsSync(log) ? readFileSync(log, 'utf8') : '';
    };
    const withTime = await start('UPDATE_TIME=04:00');
    const scheduled = withTime
      .split('\n')
      .filter((line) => line.includes('maintenance scheduled'))
      .map((line) => JSON.parse(line) as LogLine);
    expect(scheduled).toHaveLength(1);
    expect(scheduled[0]).toMatchObject({ component: 'maintenance', updateTime: '04:00' });
    expect(new Date(scheduled[0]!.next as string).getHours()).toBe(4);
    expect(withTime).not.toContain('s3cret-pwd');
    expect(await start('')).not.toContain('maintenance scheduled');
  });
});
