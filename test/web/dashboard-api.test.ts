import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Gateway } from '../../src/gateway/gateway.js';
import { SqliteTenantStore } from '../../src/gateway/tenants.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { EconduitSimulator } from '../../src/simulators/econduit/simulator.js';
import { tempDir, waitFor } from '../helpers.js';

const TERMINAL = '63000001';
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup() {
  const journal = new SqliteJournal({ path: join(tempDir('dashboard-api-'), 'journal.db') });
  const tenants = new SqliteTenantStore(journal);
  const shop = tenants.addMerchant('shop');
  tenants.addTerminal({ terminalId: TERMINAL, merchant: 'shop', terminalType: 'Valor' });
  const gateway = await new Gateway({ journal, tenants, tcpPort: 0, httpPort: 0 }).start();
  cleanups.push(() => journal.close());
  cleanups.push(() => gateway.close());
  const simulator = await new EconduitSimulator({
    endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
    terminalId: TERMINAL,
    cardDelayMs: 500,
  }).start(5_000);
  cleanups.push(() => simulator.stop());
  await waitFor(() => gateway.listener.isOnline(TERMINAL));
  return { base: `http://127.0.0.1:${gateway.httpPort}`, shop, simulator };
}

async function signIn(base: string, key: string, password: string) {
  const response = await fetch(`${base}/ui/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login: key, password }),
  });
  const cookie = (response.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const body = (await response.json()) as { csrfToken?: string };
  return { status: response.status, cookie, csrf: body.csrfToken ?? '' };
}

describe('dashboard API limits', () => {
  it('signing out ends the session’s live streams at once', async () => {
    const { base, shop } = await setup();
    const session = await signIn(base, shop.key, shop.password);
    const stream = await fetch(`${base}/ui/api/events`, { headers: { cookie: session.cookie } });
    expect(stream.status).toBe(200);
    const reader = stream.body?.getReader();
    if (reader === undefined) throw new Error('no stream');
    await reader.read();
    const out = await fetch(`${base}/ui/api/logout`, {
      method: 'POST',
      headers: { cookie: session.cookie, 'x-csrf-token': session.csrf },
    });
    expect(out.status).toBe(204);
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
    }
    const after = await fetch(`${base}/ui/api/terminals`, { headers: { cookie: session.cookie } });
    expect(after.status).toBe(401);
  });

  it('one session holds at most 4 live streams', async () => {
    const { base, shop } = await setup();
    const session = await signIn(base, shop.key, shop.password);
    const open = [];
    for (let i = 0; i < 4; i++) {
      const stream = await fetch(`${base}/ui/api/events`, { headers: { cookie: session.cookie } });
      expect(stream.status).toBe(200);
      open.push(stream);
    }
    const fifth = await fetch(`${base}/ui/api/events`, { headers: { cookie: session.cookie } });
    expect(fifth.status).toBe(429);
    for (const stream of open) await stream.body?.cancel();
  });

  it('sign-in limits are the POS API’s: guesses there count here', async () => {
    const { base, shop } = await setup();
    for (let i = 0; i < 5; i++) {
      const query = new URLSearchParams({ key: shop.key, password: `Guess${i}`, refID: 'X' });
      const answer = await fetch(`${base}/services/api.asmx/checkStatus?${query.toString()}`);
      expect(answer.status).toBe(401);
    }
    const dashboard = await signIn(base, shop.key, shop.password);
    expect(dashboard.status).toBe(429);
  });

  it('test payments are small and one at a time per session', async () => {
    const { base, shop, simulator } = await setup();
    const session = await signIn(base, shop.key, shop.password);
    const pay = (amount: string) =>
      fetch(`${base}/ui/api/test-payment`, {
        method: 'POST',
        headers: {
          cookie: session.cookie,
          'x-csrf-token': session.csrf,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ terminalId: TERMINAL, amount }),
      });
    const big = await pay('999.99');
    expect(big.status).toBe(400);
    expect(((await big.json()) as { error: { field: string } }).error.field).toBe('amount');
    const first = await pay('1.00');
    expect(first.status).toBe(202);
    const second = await pay('1.00');
    expect(second.status).toBe(409);
    await waitFor(() => simulator.ledger.count === 1, 5_000, 'the first test payment');
    expect(simulator.ledger.count).toBe(1);
  });

  it('a transaction detail lists every attempt under its reference, with the terminal transaction id', async () => {
    const { base, shop, simulator } = await setup();
    simulator.next.push('decline');
    const sale = () =>
      fetch(
        `${base}/services/api.asmx/runTransaction?${new URLSearchParams({
          command: 'Sale',
          key: shop.key,
          password: shop.password,
          amount: '1.00',
          refID: 'DASH-A',
          terminalId: TERMINAL,
        }).toString()}`,
      ).then(async (r) => (await r.json()) as { ResultCode: string });
    expect((await sale()).ResultCode).toBe('Declined');
    expect((await sale()).ResultCode).toBe('Approved');
    const session = await signIn(base, shop.key, shop.password);
    const get = async (path: string) =>
      (await (await fetch(`${base}${path}`, { headers: { cookie: session.cookie } })).json()) as {
        transactions?: { id: string; reference: string; attempt: number }[];
        transaction?: { attempt: number; terminalTxId: string | null };
        attempts?: { attempt: number; outcome: string }[];
        receipt?: string;
      };
    const listed = (await get('/ui/api/transactions')).transactions ?? [];
    const latest = listed.find((t) => t.reference === 'DASH-A' && t.attempt === 2);
    expect(latest).toBeDefined();
    const detail = await get(`/ui/api/transactions/${latest?.id ?? ''}`);
    expect(detail.transaction?.attempt).toBe(2);
    expect(detail.attempts?.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'declined'],
      [2, 'approved'],
    ]);
    expect(detail.transaction?.terminalTxId).toBe(simulator.ledger.all()[0]?.terminalTxId);
    expect(detail.receipt).toContain('Reference DASH-A (attempt 2)');
  });
});
