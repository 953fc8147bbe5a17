import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PostgresJournal } from '../../src/journal/postgres-journal.js';
import { DEFAULT_BUSY_TIMEOUT_MS, SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir } from '../helpers.js';
import { proxyInFront } from '../support/fault-proxy.js';
import { dropSchema, freshSchema, requirePostgres, TEST_PG_URL } from './postgres-helpers.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The longest the event loop stood still while `work` ran (a 5 ms ticker's largest gap). */
async function longestStall<T>(work: () => Promise<T>): Promise<{ stallMs: number; result: T }> {
  let last = performance.now();
  let stallMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 5);
  try {
    const result = await work();
    return { stallMs: Math.max(stallMs, performance.now() - last), result };
  } finally {
    clearInterval(ticker);
  }
}

describe('SqliteJournal.probe', () => {
  function open() {
    const path = join(tempDir('probe-'), 'ecr-bridge.db');
    const journal = new SqliteJournal({ path });
    cleanups.push(() => journal.close());
    return { path, journal };
  }

  it('passes on a journal that takes writes, and writes nothing', async () => {
    const { journal } = open();
    const before = journal.latestEventId();
    await journal.probe(500);
    expect(journal.latestEventId()).toBe(before);
    expect(journal.list()).toEqual([]);
  });

  it('another connection holding the write lock: rejected naming the journal within the bound, the event loop never stalled, the normal busy timeout back; passes once released', async () => {
    const { path, journal } = open();
    const other = new Database(path);
    cleanups.push(() => other.close());
    other.exec('BEGIN IMMEDIATE');

    const started = performance.now();
    const { stallMs, result } = await longestStall(() =>
      journal.probe(1_000).then(
        () => undefined,
        (error: unknown) => error,
      ),
    );
    const took = performance.now() - started;
    expect(result).toMatchObject({
      code: 'JOURNAL_ERROR',
      message: expect.stringMatching(/could not take the write lock within 1000 ms/) as string,
    });
    expect((result as Error).message).toContain(path);
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(2_500);
    // One blocking wait of the whole bound would have stalled it for 1000 ms; slices of 20 ms
    // leave room for a loaded machine's scheduling.
    expect(stallMs).toBeLessThan(600);
    expect(journal.database.pragma('busy_timeout', { simple: true })).toBe(DEFAULT_BUSY_TIMEOUT_MS);

    other.exec('ROLLBACK');
    await journal.probe(1_000);
  });

  it('a lock released while the probe waits: it passes', async () => {
    const { path, journal } = open();
    const other = new Database(path);
    cleanups.push(() => other.close());
    other.exec('BEGIN IMMEDIATE');
    setTimeout(() => other.exec('ROLLBACK'), 200);
    await journal.probe(2_000);
  });

  it('a closed journal is refused', async () => {
    const { journal } = open();
    journal.close();
    await expect(journal.probe(100)).rejects.toMatchObject({ code: 'JOURNAL_ERROR' });
  });
});

describe('PostgresJournal.probe', () => {
  beforeEach(requirePostgres);

  async function throughProxy() {
    const schema = freshSchema();
    cleanups.push(() => dropSchema(schema));
    const { proxy, url } = await proxyInFront(TEST_PG_URL, 5432, cleanups);
    const journal = await PostgresJournal.open({ url, schema });
    cleanups.push(() => journal.close());
    return { journal, proxy };
  }

  it('passes while the server commits; a server gone silent fails it within the bound, naming PostgreSQL; passes again once it answers', async () => {
    const { journal, proxy } = await throughProxy();
    await journal.probe(1_000);
    expect(await journal.list()).toEqual([]);

    // Paused: every byte swallowed, no connection closed (a half-dead network).
    const silent = [
      { direction: 'up', kind: 'blackhole' },
      { direction: 'down', kind: 'blackhole' },
    ] as const;
    proxy.setFaults(silent);
    proxy.injectFaults(silent);
    for (let i = 0; i < 2; i++) {
      const started = performance.now();
      const error = await journal.probe(500).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({
        code: 'JOURNAL_ERROR',
        message: expect.stringMatching(
          /^PostgreSQL at 127\.0\.0\.1:\d+\/test \(schema t_[a-z]+\) did not answer within 500 ms/,
        ) as string,
      });
      expect(performance.now() - started).toBeLessThan(1_500);
    }

    proxy.setFaults([]);
    proxy.dropConnections();
    await journal.probe(2_000);
  });

  it('a read-only server (a standby after a failover) is refused', async () => {
    const schema = freshSchema();
    cleanups.push(() => dropSchema(schema));
    // default_transaction_read_only stands in for a standby: txid_current() needs a writable one.
    const journal = await PostgresJournal.open({ url: TEST_PG_URL, schema });
    cleanups.push(() => journal.close());
    const client = await journal.pool.connect();
    await client.query('SET SESSION default_transaction_read_only = on');
    client.release();
    // The pool's only idle connection is now read-only.
    await expect(journal.probe(1_000)).rejects.toMatchObject({
      code: 'JOURNAL_ERROR',
      message: expect.stringMatching(
        /readiness probe commit failed: transactions are read-only/,
      ) as string,
    });
  });
});
