import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterNode } from '../../src/gateway/cluster/node.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { PostgresTenantStore } from '../../src/gateway/postgres-tenants.js';
import { SqliteTenantStore } from '../../src/gateway/tenants.js';
import { PostgresJournal } from '../../src/journal/postgres-journal.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir, waitForAsync } from '../helpers.js';
import { proxyInFront } from '../support/fault-proxy.js';
import { PrivateNats } from '../support/private-nats.js';
import { letters, NATS_URL, PG_URL, requireClusterServers } from './cluster-support.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Each check bounded at 1 s; no answer reused, so that each call sees the node's state now. */
const READINESS = { timeoutMs: 1_000, cacheMs: 0 };

interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly error?: string;
}
interface Health {
  readonly status: number;
  readonly body: { status: string; terminalsOnline?: number; checks?: Check[] };
  readonly tookMs: number;
}

/** GET without credentials. */
async function health(base: string, path: string): Promise<Health> {
  const started = performance.now();
  const response = await fetch(`${base}${path}`);
  const body = (await response.json()) as Health['body'];
  return { status: response.status, body, tookMs: performance.now() - started };
}

/** Polls /readyz until its status is `status`; returns that answer. */
async function readyzBecomes(base: string, status: 200 | 503, timeoutMs = 15_000) {
  let last: Health | undefined;
  await waitForAsync(
    async () => {
      last = await health(base, '/readyz');
      return last.status === status;
    },
    timeoutMs,
    `/readyz ${status} (last: ${JSON.stringify(last?.body)})`,
  );
  return last as Health;
}

const failing = (answer: Health) =>
  (answer.body.checks ?? []).filter((check) => !check.ok).map((check) => check.name);

async function sqliteGateway() {
  const path = join(tempDir('readiness-'), 'ecr-bridge.db');
  const journal = new SqliteJournal({ path });
  cleanups.push(() => journal.close());
  const gateway = await new Gateway({
    journal,
    tenants: new SqliteTenantStore(journal),
    tcpPort: 0,
    httpPort: 0,
    readiness: READINESS,
  }).start();
  cleanups.push(() => gateway.close());
  return { path, journal, gateway, base: `http://127.0.0.1:${gateway.httpPort}` };
}

/** A fresh PostgreSQL schema, dropped after the test. */
function freshSchema(): string {
  const schema = `t_${letters(12)}`;
  cleanups.push(async () => {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });
  return schema;
}

/** One in-process cluster node on `pgUrl` and the NATS at `natsUrl`. */
async function clusterNode(pgUrl: string, natsUrl: string) {
  const journal = await PostgresJournal.open({ url: pgUrl, schema: freshSchema() });
  cleanups.push(() => journal.close());
  const cluster = await ClusterNode.connect({
    servers: natsUrl,
    nodeId: `ready-${letters(6)}`,
    subjectPrefix: `ecrt${letters(10)}`,
  });
  cleanups.push(() => cluster.close());
  const gateway = await new Gateway({
    journal,
    tenants: new PostgresTenantStore(journal.pool),
    cluster,
    tcpPort: 0,
    httpPort: 0,
    readiness: READINESS,
  }).start();
  cleanups.push(() => gateway.close());
  return { journal, cluster, gateway, base: `http://127.0.0.1:${gateway.httpPort}` };
}

describe('gateway health: /livez, /readyz, /healthz', () => {
  it('ready: 200 listing each check, without credentials; /healthz is the same answer; /livez checks nothing', async () => {
    const { base } = await sqliteGateway();
    const ready = await health(base, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({
      status: 'ok',
      terminalsOnline: 0,
      logWriteFailures: expect.any(Number) as number,
      checks: [
        { name: 'journal', ok: true, ms: expect.any(Number) as number },
        { name: 'terminal-listener', ok: true, ms: expect.any(Number) as number },
      ],
    });
    const healthz = await health(base, '/healthz');
    expect(healthz.status).toBe(200);
    expect(healthz.body).toMatchObject({ status: 'ok', terminalsOnline: 0 });
    expect(healthz.body.checks?.map((c) => c.name)).toEqual(['journal', 'terminal-listener']);
    expect(await health(base, '/livez')).toMatchObject({ status: 200, body: { status: 'ok' } });
    const response = await fetch(`${base}/readyz`);
    expect(response.headers.get('cache-control')).toBe('no-store');
  });

  it('the journal write-locked by another connection: /readyz and /healthz 503 naming journal, /livez 200; released → 200', async () => {
    const { path, base } = await sqliteGateway();
    const other = new Database(path);
    cleanups.push(() => other.close());
    other.exec('BEGIN IMMEDIATE');
    cleanups.push(() => {
      if (other.inTransaction) other.exec('ROLLBACK');
    });

    const unready = await health(base, '/readyz');
    expect(unready.status).toBe(503);
    expect(unready.body.status).toBe('unready');
    expect(failing(unready)).toEqual(['journal']);
    expect(unready.body.checks?.[0]?.error).toMatch(/could not take the write lock within 1000 ms/);
    // Bounded: the check's 1 s, not the journal's 10 s busy timeout.
    expect(unready.tookMs).toBeLessThan(3_000);
    const healthz = await health(base, '/healthz');
    expect(healthz.status).toBe(503);
    expect(healthz.body).toMatchObject({ status: 'unready', terminalsOnline: 0 });
    expect(failing(healthz)).toEqual(['journal']);
    expect(await health(base, '/livez')).toMatchObject({ status: 200, body: { status: 'ok' } });

    other.exec('ROLLBACK');
    const back = await readyzBecomes(base, 200);
    expect(back.body.status).toBe('ok');
  });

  it('the terminal listener closed: 503 naming terminal-listener; /livez 200', async () => {
    const { gateway, base } = await sqliteGateway();
    await gateway.listener.close();
    const unready = await health(base, '/readyz');
    expect(unready.status).toBe(503);
    expect(failing(unready)).toEqual(['terminal-listener']);
    expect(unready.body.checks?.[1]?.error).toMatch(/is not listening: terminals cannot connect/);
    expect((await health(base, '/livez')).status).toBe(200);
  });

  it('the OpenAPI document lists the three routes, with no credentials asked', async () => {
    const { base } = await sqliteGateway();
    const docs = (await (await fetch(`${base}/docs/json`)).json()) as {
      paths: Record<string, { get?: { security?: unknown[]; responses?: object } }>;
    };
    for (const path of ['/livez', '/readyz', '/healthz']) {
      expect(docs.paths[path]?.get?.security).toEqual([]);
    }
    expect(Object.keys(docs.paths['/readyz']?.get?.responses ?? {})).toEqual(['200', '503']);
  });
});

describe('gateway cluster node health', () => {
  it('its NATS server stopped: 503 naming nats, /livez 200; NATS restarted → ready again', async () => {
    await requireClusterServers();
    const nats = await PrivateNats.start(cleanups as (() => Promise<void> | void)[]);
    const { base } = await clusterNode(PG_URL, nats.url);
    const ready = await health(base, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks?.map((c) => c.name)).toEqual(['journal', 'terminal-listener', 'nats']);

    await nats.kill();
    const unready = await readyzBecomes(base, 503);
    expect(failing(unready)).toEqual(['nats']);
    expect(unready.body.checks?.[2]?.error).toContain(`NATS at ${nats.url}`);
    expect((await health(base, '/livez')).status).toBe(200);

    await nats.start();
    await readyzBecomes(base, 200);
  });

  it('PostgreSQL paused (every byte swallowed, no connection closed): 503 naming the journal and PostgreSQL within the bound; resumed → ready', async () => {
    await requireClusterServers();
    const { proxy, url } = await proxyInFront(PG_URL, 5432, cleanups);
    const { base } = await clusterNode(url, NATS_URL);
    expect((await health(base, '/readyz')).status).toBe(200);

    const silent = [
      { direction: 'up', kind: 'blackhole' },
      { direction: 'down', kind: 'blackhole' },
    ] as const;
    proxy.setFaults(silent);
    proxy.injectFaults(silent);
    const unready = await health(base, '/readyz');
    expect(unready.status).toBe(503);
    expect(failing(unready)).toEqual(['journal']);
    expect(unready.body.checks?.[0]?.error).toMatch(
      new RegExp(`^PostgreSQL at 127\\.0\\.0\\.1:${proxy.port}/test \\(schema t_[a-z]+\\)`),
    );
    expect(unready.tookMs).toBeLessThan(3_000);
    expect((await health(base, '/livez')).status).toBe(200);

    proxy.setFaults([]);
    proxy.dropConnections();
    await readyzBecomes(base, 200);
  });
});
