import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { startConnector } from '../../src/cli/connector.js';
import { parseConfigText } from '../../src/connector/config.js';
import { DEFAULT_READINESS_TIMEOUT_MS } from '../../src/core/readiness.js';
import { JOURNAL_FILE_NAME } from '../../src/journal/sqlite-journal.js';
import { closedPort, tempDir, waitForAsync } from '../helpers.js';

const AUTH = `Basic ${Buffer.from('log:s3cret-pwd').toString('base64')}`;

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Health {
  readonly status: number;
  readonly body: {
    status: string;
    checks?: { name: string; ok: boolean; ms: number; error?: string }[];
  };
  readonly tookMs: number;
}

/** The connector as `connector start` runs it (config.txt, its journal in DATA_DIR). */
async function connector(flavour: 'desktop' | 'kiosk') {
  const dataDir = join(tempDir('connector-ready-'), 'data');
  const running = await startConnector(
    parseConfigText(
      [
        `LOCAL_PORT=${await closedPort()}`,
        'TERMINAL_MANAGER_LOGIN=log',
        'TERMINAL_MANAGER_PWD=s3cret-pwd',
        'TERMINAL_URL=simulator:semi',
        `CONNECTOR_FLAVOUR=${flavour}`,
        `DATA_DIR=${dataDir}`,
      ].join('\n'),
    ),
    'silent',
  );
  cleanups.push(() => running.close());
  return { base: running.url, journalPath: join(dataDir, JOURNAL_FILE_NAME) };
}

/** GET, without credentials unless `headers` gives some. */
async function get(base: string, path: string, headers: Record<string, string> = {}) {
  const started = performance.now();
  const response = await fetch(`${base}${path}`, { headers });
  const body = (await response.json()) as Health['body'];
  return { status: response.status, body, tookMs: performance.now() - started } as Health;
}

async function readyzBecomes(base: string, status: 200 | 503): Promise<Health> {
  let last: Health | undefined;
  await waitForAsync(
    async () => {
      last = await get(base, '/readyz');
      return last.status === status;
    },
    15_000,
    `/readyz ${status}`,
  );
  return last as Health;
}

describe('connector health: /livez, /readyz, /healthz', () => {
  it('ready: 200 naming the journal check, without credentials, in every flavour (never wrapped in an array)', async () => {
    for (const flavour of ['desktop', 'kiosk'] as const) {
      const { base } = await connector(flavour);
      const expected = {
        status: 'ok',
        checks: [{ name: 'journal', ok: true, ms: expect.any(Number) as number }],
      };
      expect(await get(base, '/readyz')).toMatchObject({ status: 200, body: expected });
      expect(await get(base, '/healthz')).toMatchObject({ status: 200, body: expected });
      expect(await get(base, '/livez')).toMatchObject({ status: 200, body: { status: 'ok' } });
      // Every other route still asks for the login.
      expect((await fetch(`${base}/version`)).status).toBe(401);
    }
  });

  it('the OpenAPI document lists the three routes as needing no credentials', async () => {
    const { base } = await connector('desktop');
    const docs = (await (
      await fetch(`${base}/docs/json`, { headers: { authorization: AUTH } })
    ).json()) as { paths: Record<string, { get?: { security?: unknown[] } }> };
    for (const path of ['/livez', '/readyz', '/healthz'])
      expect(docs.paths[path]?.get?.security).toEqual([]);
  });

  it('health probes are neither asked for credentials nor counted as sign-ins: a locked-out login does not stop them', async () => {
    const { base } = await connector('desktop');
    const wrong = { authorization: `Basic ${Buffer.from('log:wrong').toString('base64')}` };
    let last = 0;
    for (let i = 0; i < 6; i++) last = (await fetch(`${base}/version`, { headers: wrong })).status;
    expect(last).toBe(429);
    // Wrong credentials on a health probe are ignored, not counted.
    for (let i = 0; i < 10; i++) expect((await get(base, '/readyz', wrong)).status).toBe(200);
    expect((await get(base, '/livez')).status).toBe(200);
    // The lock-out is real: the login stays refused meanwhile, even with its password.
    expect((await fetch(`${base}/version`, { headers: { authorization: AUTH } })).status).toBe(429);
  });

  it('the journal write-locked by another connection: /readyz and /healthz 503 naming journal within the bound, /livez 200; released → 200', async () => {
    const { base, journalPath } = await connector('kiosk');
    expect((await get(base, '/readyz')).status).toBe(200);
    const other = new Database(journalPath);
    cleanups.push(() => other.close());
    other.exec('BEGIN IMMEDIATE');
    cleanups.push(() => {
      if (other.inTransaction) other.exec('ROLLBACK');
    });

    const unready = await readyzBecomes(base, 503);
    expect(unready.body.status).toBe('unready');
    expect(unready.body.checks).toEqual([
      {
        name: 'journal',
        ok: false,
        ms: expect.any(Number) as number,
        error: expect.stringMatching(
          new RegExp(`could not take the write lock within ${DEFAULT_READINESS_TIMEOUT_MS} ms`),
        ) as string,
      },
    ]);
    // The default bound (2 s) and its backstop, not the journal's 10 s busy timeout.
    expect(unready.tookMs).toBeLessThan(DEFAULT_READINESS_TIMEOUT_MS + 1_500);
    expect(await get(base, '/healthz')).toMatchObject({
      status: 503,
      body: { status: 'unready' },
    });
    expect(await get(base, '/livez')).toMatchObject({ status: 200, body: { status: 'ok' } });

    other.exec('ROLLBACK');
    await readyzBecomes(base, 200);
  });
});
