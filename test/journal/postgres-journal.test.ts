import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isOwnerAlive, OWNER_STALE_AFTER_MS } from '../../src/core/owner.js';
import type { ClaimInput, Journal, Owner } from '../../src/core/journal-port.js';
import {
  isPostgresUrl,
  PostgresJournal,
  type PostgresJournalOptions,
} from '../../src/journal/postgres-journal.js';
import {
  migratePostgres,
  POSTGRES_MIGRATIONS,
  WRITE_ORDER_LOCK_TAG,
} from '../../src/journal/postgres-migrations.js';
import { closedPort, waitFor } from '../helpers.js';
import { randomLetters, rejection } from './journal-contract.js';
import {
  adminQuery,
  dropSchema,
  freshSchema,
  openPostgres,
  requirePostgres,
  TEST_PG_URL,
} from './postgres-helpers.js';

const alice: Owner = { pid: 1001, token: 'alice' };
const bob: Owner = { pid: 1002, token: 'bob' };
const carol: Owner = { pid: 1003, token: 'carol' };

// One schema for this file's journals; tests that need an empty one make their own.
const schema = freshSchema();
const schemas = [schema];
const journals: PostgresJournal[] = [];

beforeEach(requirePostgres);

afterEach(async () => {
  await Promise.all(journals.splice(0).map((journal) => journal.close()));
});

afterAll(async () => {
  // Nothing to drop when the server was never there (the tests already failed saying so).
  const reachable = await requirePostgres().then(
    () => true,
    () => false,
  );
  if (reachable) for (const name of schemas) await dropSchema(name);
});

async function open(
  options: Partial<PostgresJournalOptions> = {},
  inSchema = schema,
): Promise<PostgresJournal> {
  const journal = await openPostgres(inSchema, options);
  journals.push(journal);
  return journal;
}

function newSchema(): string {
  const name = freshSchema();
  schemas.push(name);
  return name;
}

function input(reference: string, owner: Owner = alice): ClaimInput {
  return {
    merchantId: 'm',
    terminalId: 't',
    reference,
    kind: 'sale',
    amountMinor: 2000,
    currency: 'EUR',
    method: 'card',
    owner,
  };
}

async function claimed(journal: Journal, reference: string, owner: Owner = alice) {
  const claim = await journal.claim(input(reference, owner));
  if (claim.type !== 'claimed') throw new Error(`${reference} was not claimed`);
  return claim.row;
}

function urlWith(port: number, extra = ''): string {
  const url = new URL(TEST_PG_URL);
  url.port = String(port);
  return `${url.toString()}${extra}`;
}

/**
 * A TCP proxy in front of the test server: a network that can be cut (every socket destroyed,
 * nothing listening) or turned into a black hole (connections stay open, bytes vanish).
 */
class TcpProxy {
  port = 0;
  mode: 'forward' | 'blackhole' = 'forward';
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly target = new URL(TEST_PG_URL);

  async start(port = this.port): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(Number(this.target.port || 5432), this.target.hostname);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          this.sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.on('data', (chunk) => this.mode === 'forward' && upstream.write(chunk));
      upstream.on('data', (chunk) => this.mode === 'forward' && client.write(chunk));
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

/** A logger whose lines the test can read. */
function recordingLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  return { logger, lines };
}

describe('PostgresJournal', () => {
  it('two nodes claiming one reference at the same instant: exactly one claims it, every time', async () => {
    const [a, b] = [await open(), await open()];
    const prefix = `RACE${randomLetters(6)}`;
    for (let i = 0; i < 60; i++) {
      const reference = `${prefix}${randomLetters(4)}`;
      const [first, second] = await Promise.all([
        a.claim(input(reference, alice)),
        b.claim(input(reference, bob)),
      ]);
      expect([first.type, second.type].sort()).toEqual(['claimed', 'existing']);
      expect(first.row.id).toBe(second.row.id);
    }
    // A burst: twenty references, each asked for by both nodes at once.
    const burst = Array.from({ length: 20 }, () => `${prefix}${randomLetters(5)}`);
    const results = await Promise.all(
      burst.flatMap((reference) => [a.claim(input(reference)), b.claim(input(reference, bob))]),
    );
    for (const reference of burst) {
      const mine = results.filter((r) => r.row.reference === reference);
      expect(mine.filter((r) => r.type === 'claimed')).toHaveLength(1);
    }
    const [counts] = await adminQuery<{ rows: number; attempts: number }>(
      `SELECT (SELECT count(*)::int FROM transactions WHERE reference LIKE $1) AS rows,
              (SELECT count(*)::int FROM attempts a JOIN transactions t ON t.id = a.transaction_id
               WHERE t.reference LIKE $1) AS attempts`,
      [`${prefix}%`],
      schema,
    );
    expect(counts).toEqual({ rows: 80, attempts: 80 });
  });

  it('two nodes taking over one terminal from a dead owner at the same instant: exactly one wins, every time', async () => {
    const [a, b] = [await open(), await open()];
    const dead = { pid: 4242, token: `dead${randomLetters(6)}` };
    const isAlive = (owner: Owner): boolean => owner.token !== dead.token;
    for (let i = 0; i < 30; i++) {
      const terminal = `T${randomLetters(8)}`;
      expect(await a.tryLockTerminal(terminal, dead, () => true)).toBe(true);
      const won = await Promise.all([
        a.tryLockTerminal(terminal, alice, isAlive),
        b.tryLockTerminal(terminal, bob, isAlive),
      ]);
      expect(won.filter(Boolean)).toHaveLength(1);
    }
  });

  it('two nodes recovering the same orphans at once: each row is settled once (never sent: failed), reported by one of them', async () => {
    const fresh = newSchema();
    const [a, b] = [await open({}, fresh), await open({}, fresh)];
    const dead = { pid: 4242, token: `dead${randomLetters(6)}` };
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) ids.push((await claimed(a, `ORPH${randomLetters(6)}`, dead)).id);
    const isAlive = (owner: Owner): boolean => owner.token !== dead.token;
    const [byA, byB] = await Promise.all([a.recoverOrphans(isAlive), b.recoverOrphans(isAlive)]);
    expect([...byA, ...byB].map((row) => row.id).sort((x, y) => x - y)).toEqual(ids);
    const events = await adminQuery<{ n: number }>(
      "SELECT count(*)::int AS n FROM transaction_events WHERE state = 'failed' GROUP BY transaction_id",
      [],
      fresh,
    );
    expect(events.map((row) => row.n)).toEqual(ids.map(() => 1));
  });

  it('three nodes starting at once on a fresh schema migrate exactly once; reopening is a no-op; a newer schema is refused', async () => {
    const fresh = newSchema();
    await Promise.all([open({}, fresh), open({}, fresh), open({}, fresh)]);
    const versions = () =>
      adminQuery<{ version: number; applied_at: Date }>(
        'SELECT version, applied_at FROM schema_migrations ORDER BY version',
        [],
        fresh,
      );
    const applied = await versions();
    expect(applied.map((row) => row.version)).toEqual(POSTGRES_MIGRATIONS.map((_, i) => i + 1));
    await open({}, fresh);
    expect(await versions()).toEqual(applied);

    await adminQuery(
      'INSERT INTO schema_migrations (version) VALUES ($1)',
      [POSTGRES_MIGRATIONS.length + 1],
      fresh,
    );
    const error = await rejection(() => open({}, fresh));
    expect(error.code).toBe('JOURNAL_ERROR');
    expect(error.message).toContain(`schema version ${POSTGRES_MIGRATIONS.length + 1}`);
    expect(error.message).toContain(`(schema ${fresh})`);
  });

  it('migration 2 upgrades a version-1 schema in place: rows become attempt 1, and a declined one can be tried again', async () => {
    const old = newSchema();
    const client = new pg.Client({
      connectionString: TEST_PG_URL,
      options: `-c search_path=${old}`,
    });
    await client.connect();
    try {
      await migratePostgres(client, old, POSTGRES_MIGRATIONS.slice(0, 1));
    } finally {
      await client.end();
    }
    await adminQuery(
      `INSERT INTO transactions (merchant_id, terminal_id, reference, kind, amount_minor, currency,
         method, state, created_at, updated_at, completed_at)
       VALUES ('m', 't', 'OLD-D', 'sale', 2000, 'EUR', 'card', 'declined', 1, 1, 1)`,
      [],
      old,
    );
    const journal = await open({}, old);
    const key = { merchantId: 'm', terminalId: 't', reference: 'OLD-D' };
    expect(await journal.attemptsOf(key)).toMatchObject([{ attempt: 1, state: 'declined' }]);
    const again = await journal.claim(input('OLD-D'));
    expect(again).toMatchObject({ type: 'claimed', row: { attempt: 2, state: 'received' } });
    expect((await journal.attemptsOf(key)).map((row) => row.attempt)).toEqual([1, 2]);
  });

  it('an unreachable server fails the open at once with JOURNAL_ERROR naming where, never the password', async () => {
    for (const port of [1, await closedPort()]) {
      const started = Date.now();
      const error = await rejection(() =>
        PostgresJournal.open({
          url: `postgres://postgres:sekretpassword@127.0.0.1:${port}/test`,
          connectTimeoutMs: 2_000,
        }),
      );
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(error.code).toBe('JOURNAL_ERROR');
      expect(error.message).toContain(`PostgreSQL at 127.0.0.1:${port}/test cannot be reached`);
      expect(error.message).toContain('ECONNREFUSED');
      expect(error.message).not.toContain('sekret');
      expect(JSON.stringify(error.toJSON())).not.toContain('sekret');
    }
  });

  it('a malformed URL or option is INVALID_INPUT naming the field and the rule, never echoing a password', async () => {
    const bad = [
      'mysql://root@127.0.0.1/test',
      'postgres://',
      'postgres://user:sekretpassword@127.0.0.1:99999/test',
      'postgres://user:sekretpassword@127.0.0.1/test?options=-c%20search_path%3Dother',
      'postgres://user:sekretpassword@127.0.0.1/te%ZZst',
    ];
    for (const url of bad) {
      const error = await rejection(() => PostgresJournal.open({ url }));
      expect(error.code, url).toBe('INVALID_INPUT');
      expect(error.field, url).toBe('journal');
      expect(error.message, url).toMatch(/^journal: (must be a postgres|may carry only)/);
      expect(error.message, url).not.toContain('sekret');
    }
    for (const [options, field] of [
      [{ url: TEST_PG_URL, schema: 'Bad-Name' }, 'schema'],
      [{ url: TEST_PG_URL, schema: 'pg_mine' }, 'schema'],
      [{ url: TEST_PG_URL, poolSize: 0 }, 'poolSize'],
      [{ url: TEST_PG_URL, statementTimeoutMs: -5 }, 'statementTimeoutMs'],
      [{ url: TEST_PG_URL, timeout: 5 }, 'timeout'],
    ] as const) {
      const error = await rejection(() =>
        PostgresJournal.open(options as unknown as PostgresJournalOptions),
      );
      expect(error.code).toBe('INVALID_INPUT');
      expect(error.field).toBe(field);
    }
    expect(isPostgresUrl('postgres://h/d')).toBe(true);
    expect(isPostgresUrl('POSTGRESQL://h/d')).toBe(true);
    expect(isPostgresUrl('/var/lib/ecr-bridge')).toBe(false);
  });

  it('says where it is without the password, and works through a URL that carries one', async () => {
    const url = new URL(TEST_PG_URL);
    url.password = 'sekretpassword';
    const journal = await open({ url: url.toString() });
    expect(journal.where).toBe(`PostgreSQL at ${url.hostname}:${url.port}/test (schema ${schema})`);
    expect(journal.where).not.toContain('sekret');
    expect((await journal.claim(input(`PW${randomLetters(6)}`))).type).toBe('claimed');
  });

  it('connection lost during operation: the next call fails fast with JOURNAL_ERROR, writes nothing, and the pool recovers when the server is back', async () => {
    const fresh = newSchema();
    const proxy = new TcpProxy();
    await proxy.start();
    const { logger, lines } = recordingLogger();
    const journal = await open(
      {
        url: urlWith(proxy.port),
        connectTimeoutMs: 1_000,
        statementTimeoutMs: 1_500,
        logger,
      },
      fresh,
    );
    try {
      expect((await journal.claim(input('LA'))).type).toBe('claimed');

      // The network is cut: idle connections die (heard and logged, no crash), nothing listens.
      await proxy.stop();
      await waitFor(
        () => lines.some((line) => line.includes('idle PostgreSQL connection failed')),
        5_000,
        'the idle connection error to be logged',
      );
      let started = Date.now();
      const cut = await rejection(() => journal.claim(input('LB')));
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(cut.code).toBe('JOURNAL_ERROR');
      expect(cut.message).toContain(`PostgreSQL at 127.0.0.1:${proxy.port}/test`);
      expect(cut.message).toContain('cannot be reached');

      // The network is back on the same address: the pool reconnects by itself.
      await proxy.start();
      expect((await journal.claim(input('LC'))).type).toBe('claimed');

      // A black hole: connections stay up, bytes vanish. The query timeout ends the call.
      proxy.mode = 'blackhole';
      started = Date.now();
      const silent = await rejection(() => journal.claim(input('LD')));
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(silent.code).toBe('JOURNAL_ERROR');
      expect(silent.message).toMatch(/did not answer within 2500 ms|cannot be reached/);
      proxy.mode = 'forward';

      // Nothing half-written: the failed references were never stored, and are claimable.
      const stored = await adminQuery<{ reference: string }>(
        'SELECT reference FROM transactions ORDER BY id',
        [],
        fresh,
      );
      expect(stored.map((row) => row.reference)).toEqual(['LA', 'LC']);
      const [attempts] = await adminQuery<{ n: number }>(
        'SELECT count(*)::int AS n FROM attempts',
        [],
        fresh,
      );
      expect(attempts?.n).toBe(2);
      expect((await journal.claim(input('LB'))).type).toBe('claimed');
      expect((await journal.claim(input('LD'))).type).toBe('claimed');
    } finally {
      await proxy.stop();
    }
  });

  it('a connection the server ends while idle is logged and replaced, not a crash', async () => {
    const name = `ecrtest${randomLetters(8)}`;
    const { logger, lines } = recordingLogger();
    const journal = await open({ url: `${TEST_PG_URL}?application_name=${name}`, logger });
    await Promise.all([journal.latestEventId(), journal.latestEventId(), journal.latestEventId()]);
    const killed = await adminQuery<{ ok: boolean }>(
      'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1',
      [name],
    );
    expect(killed.length).toBeGreaterThan(0);
    // Every killed connection is noticed (one log line each) before the pool is used again: a
    // query on a connection killed but not yet noticed would fail, as it would in production.
    await waitFor(
      () =>
        lines.filter((line) => line.includes('idle PostgreSQL connection failed')).length >=
        killed.length,
      10_000,
      'every killed idle connection to be logged',
    );
    expect((await journal.claim(input(`IDLE${randomLetters(6)}`))).type).toBe('claimed');
  });

  it('a statement waiting longer than statementTimeoutMs fails with JOURNAL_ERROR and leaves nothing behind', async () => {
    const journal = await open({ statementTimeoutMs: 300 });
    // Another session holds this journal's write-order lock (a stuck writer).
    const holder = new pg.Client({
      connectionString: TEST_PG_URL,
      options: `-c search_path=${schema}`,
    });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(
        "SELECT pg_advisory_xact_lock($1, 'transactions'::regclass::oid::integer)",
        [WRITE_ORDER_LOCK_TAG],
      );
      const reference = `STUCK${randomLetters(6)}`;
      const started = Date.now();
      const error = await rejection(() => journal.claim(input(reference)));
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(error.code).toBe('JOURNAL_ERROR');
      expect(error.message).toMatch(/claim a reference failed: .*statement timeout/);
      await holder.query('ROLLBACK');
      expect((await journal.claim(input(reference))).type).toBe('claimed');
    } finally {
      await holder.end();
    }
  });

  it('liveness is an age measured by the database clock, whatever this machine’s clock says', async () => {
    const fresh = newSchema();
    const journal = await open({}, fresh);
    const stale = await claimed(journal, 'CA', alice);
    await claimed(journal, 'CB', bob);
    expect(await journal.tryLockTerminal('t', alice, () => true)).toBe(true);
    // Alice's heartbeats are old by the database's clock; Bob's are fresh.
    const old = OWNER_STALE_AFTER_MS + 5_000;
    await journal.pool.query(
      "UPDATE transactions SET heartbeat_at = heartbeat_at - $1 WHERE reference = 'CA'",
      [old],
    );
    await journal.pool.query('UPDATE terminal_locks SET heartbeat_at = heartbeat_at - $1', [old]);

    const realNow = Date.now.bind(Date);
    try {
      // This machine's clock a day ahead, then a day behind: the same decisions.
      for (const skew of [86_400_000, -86_400_000]) {
        vi.spyOn(Date, 'now').mockImplementation(() => realNow() + skew);
        const decided = new Map<string, boolean>();
        await journal.recoverOrphans((owner) => {
          expect(Date.now() - (owner.heartbeatAt ?? 0)).toBeGreaterThanOrEqual(
            owner.token === 'alice' ? old : 0,
          );
          decided.set(owner.token, isOwnerAlive(owner));
          return true;
        });
        expect(Object.fromEntries(decided)).toEqual({ alice: false, bob: true });
        vi.restoreAllMocks();
      }

      vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 86_400_000);
      const recovered = await journal.recoverOrphans((owner) => isOwnerAlive(owner));
      expect(recovered.map((row) => row.id)).toEqual([stale.id]);
      // Alice's lock is taken over by Bob; Bob's fresh heartbeat keeps Carol out.
      vi.restoreAllMocks();
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 86_400_000);
      expect(await journal.tryLockTerminal('t', bob, (owner) => isOwnerAlive(owner))).toBe(true);
      await journal.heartbeat(bob);
      expect(await journal.tryLockTerminal('t', carol, (owner) => isOwnerAlive(owner))).toBe(false);
      expect(await journal.housekeeping((owner) => isOwnerAlive(owner))).toEqual({
        checkpointed: true,
        locksRemoved: 0,
      });
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('takes this process’s clock as an option: new notifications are due by it and owner ages turned into heartbeats on it; row times stay the database’s', async () => {
    const error = await rejection(() =>
      PostgresJournal.open({ url: TEST_PG_URL, now: 5 } as unknown as PostgresJournalOptions),
    );
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.field).toBe('now');

    const journal = await open({ now: () => 1_000 }, newSchema());
    const dayMs = 86_400_000;
    const first = await claimed(journal, 'N1');
    await journal.complete(first.id, alice, { outcome: 'approved' });
    const enqueued = await journal.enqueueNotification(first.id);
    expect(enqueued.nextAttemptAt).toBe(1_000);
    expect(enqueued.createdAt).toBeGreaterThan(dayMs);
    const second = await claimed(journal, 'N2');
    await journal.complete(second.id, alice, { outcome: 'declined' });
    const swept = await journal.enqueueMissingNotifications();
    expect(swept.map((n) => [n.transactionId, n.nextAttemptAt])).toEqual([[second.id, 1_000]]);
    expect(await journal.now()).toBeGreaterThan(dayMs);

    const inFlight = await claimed(journal, 'N3');
    expect(inFlight.createdAt).toBeGreaterThan(dayMs);
    const seen: Owner[] = [];
    await journal.recoverOrphans((owner) => {
      seen.push(owner);
      return true;
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.heartbeatAt).toBeLessThanOrEqual(1_000);
    expect(seen[0]?.heartbeatAt).toBeGreaterThan(1_000 - 60_000);
  });

  it('the change feed and the outbox sweep miss nothing while two nodes write concurrently', async () => {
    const fresh = newSchema();
    const [writerA, writerB, reader] = [
      await open({}, fresh),
      await open({}, fresh),
      await open({}, fresh),
    ];
    let writing = true;
    const seen: number[] = [];
    let cursor = 0;
    const follow = async (): Promise<void> => {
      while (writing) {
        const events = await reader.eventsAfter(cursor, 50);
        for (const event of events) seen.push(event.id);
        cursor = events.at(-1)?.id ?? cursor;
        await reader.enqueueMissingNotifications();
      }
    };
    const write = async (journal: Journal, prefix: string): Promise<void> => {
      for (let i = 0; i < 40; i++) {
        const row = await claimed(journal, `${prefix}${randomLetters(6)}`);
        await journal.markSent(row.id, alice);
        await journal.complete(row.id, alice, { outcome: i % 3 === 0 ? 'declined' : 'approved' });
      }
    };
    const following = follow();
    await Promise.all([write(writerA, 'FA'), write(writerB, 'FB')]);
    writing = false;
    await following;
    for (const event of await reader.eventsAfter(cursor, 1_000)) seen.push(event.id);
    await reader.enqueueMissingNotifications();

    const all = await adminQuery<{ id: number }>(
      'SELECT id::int FROM transaction_events ORDER BY id',
      [],
      fresh,
    );
    expect(seen).toEqual(all.map((row) => row.id));
    const [missing] = await adminQuery<{ n: number }>(
      `SELECT count(*)::int AS n FROM transactions t
       WHERE NOT EXISTS (SELECT 1 FROM notifications n WHERE n.transaction_id = t.id)`,
      [],
      fresh,
    );
    expect(missing?.n).toBe(0);
  });

  it('bigint columns come back as numbers through this pool only; text PostgreSQL cannot hold is kept readable', async () => {
    const journal = await open();
    const row = await claimed(journal, `BIG${randomLetters(6)}`);
    expect(typeof row.id).toBe('number');
    expect(typeof row.createdAt).toBe('number');
    // The process-wide parser is untouched: other users of pg keep strings for bigint.
    expect(pg.types.getTypeParser(20, 'text')('42')).toBe('42');
    const done = await journal.complete(row.id, alice, {
      outcome: 'declined',
      message: 'NOT\u0000OK',
      details: { raw: 'a\u0000b' },
    });
    expect(done.message).toBe('NOT\ufffdOK');
    expect(done.details).toEqual({ raw: 'a\u0000b' });
  });

  it('after close every call is a JOURNAL_ERROR; closing twice is harmless', async () => {
    const journal = await openPostgres(schema);
    await journal.close();
    await journal.close();
    const error = await rejection(() => journal.get(1));
    expect(error.code).toBe('JOURNAL_ERROR');
    expect(error.message).toContain(journal.where);
  });
});
