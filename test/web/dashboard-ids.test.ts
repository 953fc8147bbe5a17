import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Gateway } from '../../src/gateway/gateway.js';
import { SqliteTenantStore } from '../../src/gateway/tenants.js';
import { newPublicId } from '../../src/journal/public-id.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { EconduitSimulator } from '../../src/simulators/econduit/simulator.js';
import { tempDir, waitFor } from '../helpers.js';

// The journal's integer ids are global and sequential: on the gateway, where every merchant's
// rows share one journal, the gaps between merchant A's ids would count merchant B's sales.
// The dashboard shows and takes only the random public ids.

const A_TERMINAL = '64000001';
const B_TERMINAL = '65000001';
const FORM = /^tx_[a-p]{24}$/;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup() {
  const journal = new SqliteJournal({ path: join(tempDir('dashboard-ids-'), 'journal.db') });
  const tenants = new SqliteTenantStore(journal);
  const a = tenants.addMerchant('shop-a');
  const b = tenants.addMerchant('shop-b');
  tenants.addTerminal({ terminalId: A_TERMINAL, merchant: 'shop-a', terminalType: 'Valor' });
  tenants.addTerminal({ terminalId: B_TERMINAL, merchant: 'shop-b', terminalType: 'Valor' });
  const gateway = await new Gateway({ journal, tenants, tcpPort: 0, httpPort: 0 }).start();
  cleanups.push(() => journal.close());
  cleanups.push(() => gateway.close());
  for (const terminalId of [A_TERMINAL, B_TERMINAL]) {
    const simulator = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      terminalId,
    }).start(5_000);
    cleanups.push(() => simulator.stop());
  }
  await waitFor(
    () => gateway.listener.isOnline(A_TERMINAL) && gateway.listener.isOnline(B_TERMINAL),
  );
  const base = `http://127.0.0.1:${gateway.httpPort}`;
  const sale = async (
    who: { key: string; password: string },
    terminalId: string,
    refID: string,
  ) => {
    const query = new URLSearchParams({
      command: 'Sale',
      key: who.key,
      password: who.password,
      amount: '1.00',
      refID,
      terminalId,
    });
    const answer = await fetch(`${base}/services/api.asmx/runTransaction?${query.toString()}`);
    expect(((await answer.json()) as { ResultCode: string }).ResultCode).toBe('Approved');
  };
  return { journal, base, a, b, sale };
}

async function signIn(base: string, who: { key: string; password: string }) {
  const response = await fetch(`${base}/ui/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login: who.key, password: who.password }),
  });
  expect(response.status).toBe(200);
  const cookie = (response.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const { csrfToken } = (await response.json()) as { csrfToken: string };
  const call = async (path: string, body?: unknown) => {
    const answer = await fetch(`${base}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: {
        cookie,
        ...(body === undefined
          ? {}
          : { 'content-type': 'application/json', 'x-csrf-token': csrfToken }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: answer.status, json: (await answer.json()) as Record<string, unknown> };
  };
  return { cookie, call };
}

interface Tx {
  id: string;
  reference: string;
  state: string;
}

/** Every key of `value`, however deep, whose value is a number. */
function numericKeys(value: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) numericKeys(item, found);
  else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (typeof item === 'number') found.add(key);
      else numericKeys(item, found);
    }
  }
  return found;
}

describe('dashboard transaction ids on a gateway with two merchants', () => {
  it("the ids merchant A sees are random public ids: no numeric id anywhere, nothing that counts merchant B's sales", async () => {
    const { journal, base, a, b, sale } = await setup();
    await sale(a, A_TERMINAL, 'A-FIRST');
    for (let i = 1; i <= 5; i++) await sale(b, B_TERMINAL, `B-${i}`);
    await sale(a, A_TERMINAL, 'A-SECOND');
    // In the journal, A's two sales are rows 1 and 7: the gap is B's five sales.
    const integerIds = journal.list({ merchantId: 'shop-a' }).map((row) => row.id);
    expect(integerIds).toEqual([7, 1]);

    const dashboard = await signIn(base, a);
    const list = await dashboard.call('/ui/api/transactions');
    expect(list.status).toBe(200);
    const transactions = list.json['transactions'] as Tx[];
    expect(transactions.map((t) => t.reference)).toEqual(['A-SECOND', 'A-FIRST']);
    for (const t of transactions) expect(t.id).toMatch(FORM);
    expect(transactions.map((t) => t.id)).toEqual(
      journal.list({ merchantId: 'shop-a' }).map((row) => row.publicId),
    );
    // Only counts and amounts are numbers; no id, however named.
    expect([...numericKeys(list.json)]).toEqual(['attempt']);

    const detail = await dashboard.call(`/ui/api/transactions/${transactions[1]?.id ?? ''}`);
    expect(detail.status).toBe(200);
    expect((detail.json['transaction'] as Tx).id).toBe(transactions[1]?.id);
    expect((detail.json['attempts'] as Tx[]).map((t) => t.id)).toEqual([transactions[1]?.id]);
    expect([...numericKeys(detail.json)]).toEqual(['attempt']);
    const text = JSON.stringify([list.json, detail.json]);
    for (const id of integerIds) expect(text).not.toMatch(new RegExp(`"[A-Za-z]*[iI]d":${id}\\b`));
  });

  it('the live feed names transactions by public id, and only the merchant’s own', async () => {
    const { journal, base, a, b, sale } = await setup();
    const dashboard = await signIn(base, a);
    const stream = await fetch(`${base}/ui/api/events`, { headers: { cookie: dashboard.cookie } });
    const reader = stream.body?.getReader();
    if (reader === undefined) throw new Error('no stream');
    cleanups.push(() => reader.cancel());
    const events: Tx[] = [];
    let buffered = '';
    const decoder = new TextDecoder();
    await reader.read(); // the stream is open: the feed starts from here
    await sale(b, B_TERMINAL, 'B-LIVE');
    await sale(a, A_TERMINAL, 'A-LIVE');
    while (!events.some((e) => e.reference === 'A-LIVE' && e.state === 'approved')) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended');
      buffered += decoder.decode(value, { stream: true });
      const blocks = buffered.split('\n\n');
      buffered = blocks.pop() ?? '';
      for (const block of blocks) {
        const data = /^event: transaction\ndata: (.*)$/m.exec(block)?.[1];
        if (data !== undefined) events.push(JSON.parse(data) as Tx);
      }
    }
    const row = journal.find({ merchantId: 'shop-a', terminalId: A_TERMINAL, reference: 'A-LIVE' });
    expect(events.map((e) => e.reference)).not.toContain('B-LIVE');
    for (const event of events) {
      expect(event.id).toMatch(FORM);
      expect(event.id).toBe(row?.publicId);
    }
  });

  it('an unknown transaction is resolved through its public id; unknown, foreign and malformed ids get NOT_FOUND or INVALID_INPUT naming id', async () => {
    const { journal, base, a, b, sale } = await setup();
    await sale(b, B_TERMINAL, 'B-ONLY');
    const foreign = journal.list({ merchantId: 'shop-b' })[0];
    // A crash left one of A's sales unknown (journaled as the recovery would have left it).
    const owner = { pid: 999_999, token: 'crashed' };
    const claim = journal.claim({
      merchantId: 'shop-a',
      terminalId: A_TERMINAL,
      reference: 'A-LOST',
      kind: 'sale',
      amountMinor: 100,
      currency: 'USD',
      method: 'card',
      owner,
    });
    if (claim.type !== 'claimed') throw new Error('not claimed');
    journal.markSent(claim.row.id, owner);
    journal.complete(claim.row.id, owner, { outcome: 'unknown', errorCode: 'OUTCOME_UNKNOWN' });

    const dashboard = await signIn(base, a);
    const id = claim.row.publicId;
    const shown = await dashboard.call(`/ui/api/transactions/${id}`);
    expect((shown.json['transaction'] as Tx).state).toBe('unknown');
    const resolved = await dashboard.call(`/ui/api/transactions/${id}/resolve`, {
      outcome: 'approved',
      reason: 'the acquirer report shows it captured',
    });
    expect(resolved.status).toBe(200);
    expect(resolved.json['transaction']).toMatchObject({ id, state: 'approved' });
    expect(journal.get(claim.row.id)?.state).toBe('approved');
    const again = await dashboard.call(`/ui/api/transactions/${id}/resolve`, {
      outcome: 'approved',
      reason: 'the acquirer report shows it captured',
    });
    // The same rule as `tx resolve` (core/settlement.ts): no longer unknown, nothing changes.
    expect(again.status).toBe(400);
    expect(again.json['error']).toMatchObject({ code: 'INVALID_INPUT', field: 'id' });
    expect(JSON.stringify(again.json)).toContain('it is approved');
    expect(JSON.stringify(again.json)).not.toContain(String(claim.row.id));
    expect(journal.get(claim.row.id)?.message).toContain('the acquirer report shows it captured');
    const controlled = await dashboard.call(`/ui/api/transactions/${id}/resolve`, {
      outcome: 'declined',
      reason: 'two\nlines',
    });
    expect(controlled.status).toBe(400);
    expect(controlled.json['error']).toMatchObject({ code: 'INVALID_INPUT', field: 'reason' });

    // B's transaction answers exactly like none, on both routes.
    for (const missing of [foreign?.publicId ?? '', newPublicId()]) {
      for (const answer of [
        await dashboard.call(`/ui/api/transactions/${missing}`),
        await dashboard.call(`/ui/api/transactions/${missing}/resolve`, {
          outcome: 'approved',
          reason: 'a reason long enough',
        }),
      ]) {
        expect(answer.status).toBe(404);
        expect(answer.json['error']).toMatchObject({ code: 'NOT_FOUND', field: 'id' });
      }
    }
    expect(journal.get(foreign?.id ?? 0)?.state).toBe('approved');
    // The integer id, and anything else not of the form, is refused as input.
    for (const malformed of [String(claim.row.id), 'tx_123', `${id}x`, id.toUpperCase()]) {
      const answer = await dashboard.call(`/ui/api/transactions/${malformed}`);
      expect(answer.status).toBe(400);
      expect(answer.json['error']).toMatchObject({
        code: 'INVALID_INPUT',
        field: 'id',
        rule: 'must be a transaction id: tx_ and 24 letters a–p',
      });
    }
  });
});
