import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { EconduitAgent } from '../../src/agent/econduit-agent.js';
import { Gateway, type GatewayOptions } from '../../src/gateway/gateway.js';
import { SqliteTenantStore } from '../../src/gateway/tenants.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import {
  EconduitSimulator,
  type EconduitSimulatorOptions,
} from '../../src/simulators/econduit/simulator.js';
import { tempDir, waitFor } from '../helpers.js';

const SHOP_TERMINAL = '29531204';
const REGISTRATION = {
  terminalType: 'Valor',
  terminalModel: 'VL100',
  terminalId: SHOP_TERMINAL,
  softwareVersion: 'test',
  ackHeartbeat: true,
};
const OTHER_TERMINAL = '40000001';
const OFFLINE_TERMINAL = '29531299';
const MASKED_PAN = '476173******0010';

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Credentials {
  readonly key: string;
  readonly password: string;
}

async function setup(
  options: {
    gateway?: Partial<GatewayOptions>;
    simulator?: Partial<EconduitSimulatorOptions>;
  } = {},
) {
  const dir = tempDir('gateway-');
  const journal = new SqliteJournal({ path: join(dir, 'journal.db') });
  const tenants = new SqliteTenantStore(journal);
  const shop = tenants.addMerchant('shop');
  const other = tenants.addMerchant('other');
  for (const [terminalId, merchant] of [
    [SHOP_TERMINAL, 'shop'],
    [OFFLINE_TERMINAL, 'shop'],
    [OTHER_TERMINAL, 'other'],
  ] as const)
    tenants.addTerminal({ terminalId, merchant, terminalType: 'Valor' });
  const gateway = await new Gateway({
    journal,
    tenants,
    tcpPort: 0,
    httpPort: 0,
    answerTimeoutMs: 2_000,
    statusTimeoutMs: 1_000,
    recoveryMs: 5_000,
    cardStepMs: 0,
    api: { requestTimeoutMs: 1_000, headersTimeoutMs: 500 },
    ...options.gateway,
  }).start();
  cleanups.push(() => journal.close());
  cleanups.push(() => gateway.close());
  const simulator = await new EconduitSimulator({
    endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
    terminalId: SHOP_TERMINAL,
    slowAnswerMs: 300,
    ...options.simulator,
  }).start(5_000);
  cleanups.push(() => simulator.stop());
  await waitFor(() => gateway.listener.isOnline(SHOP_TERMINAL), 5_000, 'the terminal online');
  const base = `http://127.0.0.1:${gateway.httpPort}`;
  return { dir, journal, tenants, gateway, simulator, shop, other, base };
}

type Fields = Record<string, string>;

async function call(
  base: string,
  method: 'runTransaction' | 'checkStatus',
  fields: Fields,
  form: 'query' | 'json' = 'query',
) {
  const url = `${base}/services/api.asmx/${method}`;
  const response =
    form === 'query'
      ? await fetch(`${url}?${new URLSearchParams(fields).toString()}`)
      : await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(fields),
        });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function sale(who: Credentials, refID: string, amount: string, terminalId = SHOP_TERMINAL): Fields {
  return { command: 'Sale', key: who.key, password: who.password, amount, refID, terminalId };
}

/** Calls `fn` until it returns something, or fails after `timeoutMs`. */
async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(50);
  }
}

function basic(who: Credentials): string {
  return `Basic ${Buffer.from(`${who.key}:${who.password}`).toString('base64')}`;
}

describe('gateway: POS → terminal → POS', () => {
  it('runs a sale from the query-string form and answers eConduit result fields', async () => {
    const { base, shop, simulator } = await setup();
    const { status, body } = await call(base, 'runTransaction', sale(shop, 'REF-1', '2.50'));
    expect(status).toBe(200);
    expect(body).toMatchObject({
      TerminalID: SHOP_TERMINAL,
      ResultCode: 'Approved',
      ResultFinal: true,
      TransType: 'Sale',
      Amount: 2.5,
      AmountString: '2.50',
      CardType: 'VISA',
      Last4: '0010',
      RefID: 'REF-1',
      EntryMethod: 'CHIP',
    });
    expect(body.AuthCode).toMatch(/^\d{6}$/);
    expect(body.receiptTerminal).toContain(MASKED_PAN);
    expect(simulator.ledger.forReference('REF-1')).toHaveLength(1);
  });

  it('runs a sale from the JSON form; a retry with the same refID is the stored result, charged once', async () => {
    const { base, shop, simulator } = await setup();
    const first = await call(base, 'runTransaction', sale(shop, 'REF-2', '10.00'), 'json');
    const again = await call(base, 'runTransaction', sale(shop, 'REF-2', '10.00'), 'json');
    expect(first.body.ResultCode).toBe('Approved');
    expect(again.body).toEqual(first.body);
    expect(simulator.ledger.forReference('REF-2')).toHaveLength(1);
    const conflict = await call(base, 'runTransaction', sale(shop, 'REF-2', '11.00'));
    expect(conflict.status).toBe(409);
    expect(conflict.body).toMatchObject({ ResultCode: 'Error', ErrorCode: 'DUPLICATE_REFERENCE' });
  });

  it('answers a decline as Declined, nothing charged', async () => {
    const { base, shop, simulator } = await setup();
    const { status, body } = await call(base, 'runTransaction', sale(shop, 'REF-3', '1.51'));
    expect(status).toBe(200);
    expect(body).toMatchObject({ ResultCode: 'Declined', ResultFinal: true });
    expect(simulator.ledger.count).toBe(0);
  });

  it('a declined refID sent again is a new attempt: approved, charged once; checkStatus and /api/v1 tell the latest and list both', async () => {
    const { base, shop, simulator } = await setup();
    // The cashier's first card is declined (queued on the simulator: the same amount then passes).
    simulator.next.push('decline');
    const declined = await call(base, 'runTransaction', sale(shop, 'REF-DA', '10.00'));
    expect(declined.body).toMatchObject({ ResultCode: 'Declined', ResultFinal: true });
    const approved = await call(base, 'runTransaction', sale(shop, 'REF-DA', '10.00'));
    expect(approved.body).toMatchObject({ ResultCode: 'Approved', ResultFinal: true });
    // Approved: from now on the stored answer, whatever is retried.
    const again = await call(base, 'runTransaction', sale(shop, 'REF-DA', '10.00'));
    expect(again.body).toEqual(approved.body);
    expect(simulator.ledger.forReference('REF-DA')).toHaveLength(1);
    const status = await call(base, 'checkStatus', {
      key: shop.key,
      password: shop.password,
      refID: 'REF-DA',
    });
    expect(status.body).toMatchObject({ ResultCode: 'Approved', RefID: 'REF-DA' });
    const listed = await fetch(`${base}/api/v1/transactions/REF-DA`, {
      headers: { authorization: basic(shop) },
    });
    const { transactions } = (await listed.json()) as {
      transactions: { attempt: number; outcome: string; attempts: { outcome: string }[] }[];
    };
    expect(transactions).toHaveLength(1);
    expect(transactions[0]).toMatchObject({ attempt: 2, outcome: 'approved' });
    expect(transactions[0]?.attempts.map((a) => a.outcome)).toEqual(['declined', 'approved']);
  });

  it('voids and tip-adjusts with the original refID (follow-ups reuse it)', async () => {
    const { base, shop, simulator } = await setup();
    await call(base, 'runTransaction', sale(shop, 'REF-4', '20.00'));
    const tip = await call(base, 'runTransaction', {
      ...sale(shop, 'REF-4', '3.00'),
      command: 'TipAdjust',
    });
    expect(tip.body).toMatchObject({
      ResultCode: 'Approved',
      TransType: 'TipAdjust',
      RefID: 'REF-4',
    });
    const voided = await call(base, 'runTransaction', {
      command: 'Void',
      key: shop.key,
      password: shop.password,
      refID: 'REF-4',
      terminalId: SHOP_TERMINAL,
    });
    expect(voided.body).toMatchObject({
      ResultCode: 'Approved',
      TransType: 'Void',
      AmountString: '20.00',
    });
    expect(simulator.ledger.all().map((c) => c.kind)).toEqual(['sale', 'tip adjust', 'void']);
    const status = await call(base, 'checkStatus', {
      key: shop.key,
      password: shop.password,
      refID: 'REF-4',
      command: 'Void',
    });
    expect(status.body).toMatchObject({ ResultCode: 'Approved', TransType: 'Void' });
  });

  it('answers an offline terminal at once with TERMINAL_OFFLINE, journals nothing, and a retry once it is online goes through', async () => {
    const { base, shop, gateway } = await setup();
    const started = Date.now();
    const { status, body } = await call(
      base,
      'runTransaction',
      sale(shop, 'REF-OFF', '5.00', OFFLINE_TERMINAL),
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(status).toBe(503);
    expect(body).toMatchObject({
      ResultCode: 'Error',
      ErrorCode: 'TERMINAL_OFFLINE',
      ResultFinal: true,
    });
    expect(String(body.Message)).toContain('nothing was sent or charged');
    const found = await call(base, 'checkStatus', {
      key: shop.key,
      password: shop.password,
      refID: 'REF-OFF',
    });
    expect(found.status).toBe(404);
    const simulator = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      terminalId: OFFLINE_TERMINAL,
    }).start(5_000);
    cleanups.push(() => simulator.stop());
    await waitFor(() => gateway.listener.isOnline(OFFLINE_TERMINAL));
    const retry = await call(
      base,
      'runTransaction',
      sale(shop, 'REF-OFF', '5.00', OFFLINE_TERMINAL),
    );
    expect(retry.body).toMatchObject({ ResultCode: 'Approved' });
  });

  it("answers another merchant's terminal exactly like a nonexistent one", async () => {
    const { base, shop, other } = await setup();
    const theirs = await call(base, 'runTransaction', sale(shop, 'REF-X', '1.00', OTHER_TERMINAL));
    const none = await call(base, 'runTransaction', sale(shop, 'REF-X', '1.00', '77777777'));
    expect(theirs.status).toBe(404);
    expect(theirs.body.ErrorCode).toBe('NOT_FOUND');
    expect({ ...theirs.body, Message: '' }).toEqual({ ...none.body, Message: '' });
    expect(String(theirs.body.Message).replace(OTHER_TERMINAL, 'X')).toBe(
      String(none.body.Message).replace('77777777', 'X'),
    );
    // The owner reaches it (it is offline: no simulator runs it).
    const own = await call(base, 'runTransaction', sale(other, 'REF-X', '1.00', OTHER_TERMINAL));
    expect(own.body.ErrorCode).toBe('TERMINAL_OFFLINE');
  });
});

describe('gateway: refIDs across terminals', () => {
  it('a refID is the merchant’s across its terminals: the same refID on another terminal is refused, never charged twice', async () => {
    const { base, shop, gateway, simulator } = await setup();
    const second = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      terminalId: OFFLINE_TERMINAL,
    }).start(5_000);
    cleanups.push(() => second.stop());
    await waitFor(() => gateway.listener.isOnline(OFFLINE_TERMINAL));
    const first = await call(base, 'runTransaction', sale(shop, 'INV-2', '5.00'));
    expect(first.body.ResultCode).toBe('Approved');
    const elsewhere = await call(
      base,
      'runTransaction',
      sale(shop, 'INV-2', '5.00', OFFLINE_TERMINAL),
    );
    expect(elsewhere.status).toBe(409);
    expect(elsewhere.body).toMatchObject({ ErrorCode: 'DUPLICATE_REFERENCE', Field: 'refID' });
    expect(String(elsewhere.body.Message)).toContain(SHOP_TERMINAL);
    expect(simulator.ledger.count + second.ledger.count).toBe(1);
    // checkStatus without terminalId finds the terminal the refID belongs to.
    const status = await call(base, 'checkStatus', {
      key: shop.key,
      password: shop.password,
      refID: 'INV-2',
    });
    expect(status.body).toMatchObject({ ResultCode: 'Approved', TerminalID: SHOP_TERMINAL });
    // A void of it sent to the other terminal is refused, naming where it belongs.
    const voidElsewhere = await call(base, 'runTransaction', {
      command: 'Void',
      key: shop.key,
      password: shop.password,
      refID: 'INV-2',
      terminalId: OFFLINE_TERMINAL,
    });
    expect(voidElsewhere.status).toBe(400);
    expect(voidElsewhere.body).toMatchObject({ ErrorCode: 'INVALID_INPUT', Field: 'refID' });
  });

  it('checkStatus answers only for the command asked: a sale is never reported as a void', async () => {
    const { base, shop } = await setup();
    await call(base, 'runTransaction', sale(shop, 'K-1', '7.00'));
    const asVoid = await call(base, 'checkStatus', {
      key: shop.key,
      password: shop.password,
      refID: 'K-1',
      command: 'Void',
    });
    expect(asVoid.status).toBe(404);
    expect(asVoid.body).toMatchObject({ ErrorCode: 'NOT_FOUND', ResultFinal: true });
  });

  it('a checkStatus that fails for another reason is not final (the transaction’s fate is not told)', async () => {
    const { base, shop } = await setup();
    const wrong = await call(base, 'checkStatus', {
      key: shop.key,
      password: 'Wrong',
      refID: 'K-1',
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ ErrorCode: 'UNAUTHORIZED', ResultFinal: false });
  });
});

describe('gateway: bad input from POS programs', () => {
  const cases: [string, (c: Credentials) => Fields, number, string, string?][] = [
    [
      'a wrong password',
      (c) => ({ ...sale(c, 'B-1', '1.00'), password: 'Wrong' }),
      401,
      'UNAUTHORIZED',
    ],
    ['a wrong key', (c) => ({ ...sale(c, 'B-1', '1.00'), key: 'ek_Nobody' }), 401, 'UNAUTHORIZED'],
    ['no key', (c) => ({ ...sale(c, 'B-1', '1.00'), key: '' }), 400, 'INVALID_INPUT', 'key'],
    [
      'an unknown command',
      (c) => ({ ...sale(c, 'B-1', '1.00'), command: 'Launder' }),
      400,
      'INVALID_INPUT',
      'command',
    ],
    [
      'a gift card command',
      (c) => ({ ...sale(c, 'B-1', '1.00'), command: 'GiftBalance' }),
      501,
      'UNSUPPORTED_OPERATION',
      'command',
    ],
    [
      'an amount without a decimal point',
      (c) => sale(c, 'B-1', '10'),
      400,
      'INVALID_AMOUNT',
      'amount',
    ],
    [
      'an amount with a decimal comma',
      (c) => sale(c, 'B-1', '10,00'),
      400,
      'INVALID_AMOUNT',
      'amount',
    ],
    ['a negative amount', (c) => sale(c, 'B-1', '-1.00'), 400, 'INVALID_AMOUNT', 'amount'],
    ['too many decimals', (c) => sale(c, 'B-1', '1.001'), 400, 'INVALID_AMOUNT', 'amount'],
    ['no refID', (c) => ({ ...sale(c, 'B-1', '1.00'), refID: '' }), 400, 'INVALID_INPUT', 'refID'],
    ['a refID with spaces', (c) => sale(c, 'B 1', '1.00'), 400, 'INVALID_INPUT', 'refID'],
    [
      'a refID over 50 characters',
      (c) => sale(c, 'R'.repeat(51), '1.00'),
      400,
      'INVALID_INPUT',
      'refID',
    ],
    [
      "a refID with ':' (follow-ups are journaled as refID:command)",
      (c) => sale(c, 'A:void', '1.00'),
      400,
      'INVALID_INPUT',
      'refID',
    ],
    [
      'a refID holding what could be a card number',
      (c) => sale(c, 'INV-4111111111111111', '1.00'),
      400,
      'INVALID_REFERENCE',
      'refID',
    ],
    [
      'a terminalId with bad characters',
      (c) => sale(c, 'B-1', '1.00', '../etc'),
      400,
      'INVALID_INPUT',
      'terminalId',
    ],
  ];
  it.each(cases)(
    'refuses %s, naming the field, nothing charged',
    async (_name, make, status, code, field) => {
      const { base, shop, simulator } = await setup();
      const answer = await call(base, 'runTransaction', make(shop));
      expect(answer.status).toBe(status);
      expect(answer.body).toMatchObject({
        ResultCode: 'Error',
        ErrorCode: code,
        ResultFinal: true,
      });
      if (field !== undefined) expect(answer.body.Field).toBe(field);
      expect(simulator.ledger.count).toBe(0);
    },
  );

  it('refuses a JSON body that is not an object, and a body that is not JSON', async () => {
    const { base } = await setup();
    const url = `${base}/services/api.asmx/runTransaction`;
    const array = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '[1]',
    });
    expect(array.status).toBe(400);
    expect(await array.json()).toMatchObject({ ErrorCode: 'INVALID_INPUT', Field: 'body' });
    const text = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{',
    });
    expect(text.status).toBe(400);
    const plain = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'x',
    });
    expect(plain.status).toBe(415);
  });

  it('rate-limits guessing: after 5 wrong passwords even the right one waits (429, Retry-After)', async () => {
    const { base, shop, other: otherMerchant } = await setup();
    for (let i = 0; i < 5; i++) {
      const wrong = await call(base, 'runTransaction', {
        ...sale(shop, 'G-1', '1.00'),
        password: `Guess${'x'.repeat(i)}`,
      });
      expect(wrong.status).toBe(401);
    }
    const response = await fetch(
      `${base}/services/api.asmx/runTransaction?${new URLSearchParams(sale(shop, 'G-1', '1.00')).toString()}`,
    );
    expect(response.status).toBe(429);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    // Counted per address and key: another merchant on the same address is not locked out.
    const other = await call(
      base,
      'runTransaction',
      sale(otherMerchant, 'G-2', '1.00', OTHER_TERMINAL),
    );
    expect(other.status).toBe(503);
    expect(other.body.ErrorCode).toBe('TERMINAL_OFFLINE');
  });

  it('counts guesses still being checked: a burst of wrong passwords in parallel is cut off too', async () => {
    const { base, shop } = await setup();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call(base, 'runTransaction', {
          ...sale(shop, 'G-3', '1.00'),
          password: `Burst${'x'.repeat(i)}`,
        }),
      ),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(5);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(15);
  });

  it('many calls with the right password at once, before it is cached, all pass', async () => {
    const { base, shop } = await setup();
    const answers = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        call(base, 'checkStatus', { key: shop.key, password: shop.password, refID: `NONE-${i}` }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(24).fill(404));
  });

  it('drops a POS client that stalls in the middle of its request', async () => {
    const { gateway } = await setup();
    const socket = connect({ host: '127.0.0.1', port: gateway.httpPort });
    await once(socket, 'connect');
    socket.write('GET /services/api.asmx/runTransaction?command=Sale HTTP/1.1\r\nHost: x\r\n');
    socket.on('data', () => {});
    socket.on('error', () => {});
    const closed = await Promise.race([
      once(socket, 'close').then(() => true),
      sleep(5_000).then(() => false),
    ]);
    expect(closed).toBe(true);
  });
});

describe('gateway: lost links and restarts', () => {
  it('a terminal whose link drops after the card read: unknown at first, settled by its status query once it is back, charged once', async () => {
    const { base, shop, simulator } = await setup();
    // Amounts ending in 55: the simulated terminal charges, then its connection drops.
    const { status, body } = await call(base, 'runTransaction', sale(shop, 'LOST-1', '4.55'));
    expect(status).toBe(200);
    expect(body).toMatchObject({ ResultCode: 'Approved', ResultFinal: true });
    expect(String(body.Message)).toContain('status query');
    expect(simulator.ledger.forReference('LOST-1')).toHaveLength(1);
  });

  it('a terminal gone for longer than the recovery window: unknown (ResultFinal false), settled when it registers again', async () => {
    const { base, shop, simulator, gateway } = await setup({ gateway: { recoveryMs: 300 } });
    const virtual = simulator.terminal(SHOP_TERMINAL);
    if (virtual === undefined) throw new Error('no simulated terminal');
    // The terminal charges and its link drops (scenario 55); it stays away (its agent stops).
    virtual.agent.once('offline', () => void virtual.agent.stop());
    const first = await call(base, 'runTransaction', sale(shop, 'LOST-2', '6.55'));
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ ResultCode: 'Unknown', ResultFinal: false });
    expect(String(first.body.Message)).toContain('checkStatus');
    const check = { key: shop.key, password: shop.password, refID: 'LOST-2' };
    expect((await call(base, 'checkStatus', check)).body).toMatchObject({
      ResultCode: 'Unknown',
      ResultFinal: false,
    });
    // Back: the same terminal, its memory intact, registers again; the gateway asks it.
    const agent = new EconduitAgent({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      registration: REGISTRATION,
    });
    agent.on('session', (link) => virtual.terminal.attach(link));
    cleanups.push(() => agent.stop());
    agent.start();
    const settled = await eventually(async () => {
      const { body } = await call(base, 'checkStatus', check);
      return body.ResultFinal === true ? body : undefined;
    });
    expect(settled).toMatchObject({ ResultCode: 'Approved', ResultFinal: true });
    expect(String(settled.Message)).toContain('when the terminal came back');
    expect(simulator.ledger.forReference('LOST-2')).toHaveLength(1);
  });

  it('a terminal killed at the card step that comes back with no memory of it: stays unknown for a person, never "not charged"', async () => {
    const { base, shop, simulator, gateway } = await setup({
      gateway: { recoveryMs: 300 },
      simulator: { cardDelayMs: 2_000 },
    });
    const virtual = simulator.terminal(SHOP_TERMINAL);
    if (virtual === undefined) throw new Error('no simulated terminal');
    const paying = call(base, 'runTransaction', sale(shop, 'KILLED-1', '7.00'));
    await waitFor(() => virtual.terminal.busy, 5_000, 'the card step');
    await virtual.terminal.stop();
    await virtual.agent.stop();
    const { body } = await paying;
    expect(body).toMatchObject({ ResultCode: 'Unknown', ResultFinal: false });
    const fresh = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      terminalId: SHOP_TERMINAL,
    }).start(5_000);
    cleanups.push(() => fresh.stop());
    await waitFor(() => gateway.listener.isOnline(SHOP_TERMINAL));
    await sleep(300);
    const check = { key: shop.key, password: shop.password, refID: 'KILLED-1' };
    expect((await call(base, 'checkStatus', check)).body).toMatchObject({
      ResultCode: 'Unknown',
      ResultFinal: false,
    });
    expect(simulator.ledger.count + fresh.ledger.count).toBe(0);
    // The terminal takes new work: the unknown one waits for a person, not for the terminal.
    const next = await call(base, 'runTransaction', sale(shop, 'AFTER-1', '1.00'));
    expect(next.body).toMatchObject({ ResultCode: 'Approved' });
  });
});

describe('gateway: own API, health and metrics', () => {
  it('lists the merchant’s terminals with their status, and its transactions', async () => {
    const { base, shop, other } = await setup();
    await call(base, 'runTransaction', sale(shop, 'API-1', '1.00'));
    const terminals = await fetch(`${base}/api/v1/terminals`, {
      headers: { authorization: basic(shop) },
    });
    expect(terminals.status).toBe(200);
    const list = ((await terminals.json()) as { terminals: Record<string, unknown>[] }).terminals;
    expect(list.map((t) => [t.terminalId, t.status])).toEqual(
      expect.arrayContaining([
        [SHOP_TERMINAL, 'POS Online'],
        [OFFLINE_TERMINAL, 'POS Offline'],
      ]),
    );
    expect(list.map((t) => t.terminalId)).not.toContain(OTHER_TERMINAL);
    const txs = await fetch(`${base}/api/v1/terminals/${SHOP_TERMINAL}/transactions`, {
      headers: { authorization: basic(shop) },
    });
    expect(
      ((await txs.json()) as { transactions: { reference: string }[] }).transactions[0]?.reference,
    ).toBe('API-1');
    const one = await fetch(`${base}/api/v1/transactions/API-1`, {
      headers: { authorization: basic(shop) },
    });
    expect(
      ((await one.json()) as { transactions: { outcome: string }[] }).transactions[0]?.outcome,
    ).toBe('approved');
    const theirs = await fetch(`${base}/api/v1/terminals/${SHOP_TERMINAL}/transactions`, {
      headers: { authorization: basic(other) },
    });
    expect(theirs.status).toBe(404);
    const anonymous = await fetch(`${base}/api/v1/terminals`);
    expect(anonymous.status).toBe(401);
  });

  it('runs a test transaction on a terminal (the seed’s test URL)', async () => {
    const { base, shop, simulator } = await setup();
    const response = await fetch(`${base}/api/v1/terminals/${SHOP_TERMINAL}/test-transaction`, {
      method: 'POST',
      headers: { authorization: basic(shop), 'content-type': 'application/json' },
      body: JSON.stringify({ amount: '1.00' }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      transaction: { outcome: 'approved', amount: '1.00' },
    });
    expect(simulator.ledger.count).toBe(1);
  });

  it('serves /healthz, /metrics and the OpenAPI document', async () => {
    const { base, shop } = await setup();
    await call(base, 'runTransaction', sale(shop, 'M-1', '1.00'));
    await call(base, 'runTransaction', sale(shop, 'M-2', '1.51'));
    expect(await (await fetch(`${base}/healthz`)).json()).toMatchObject({
      status: 'ok',
      terminalsOnline: 1,
      checks: [
        { name: 'journal', ok: true },
        { name: 'terminal-listener', ok: true },
      ],
    });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('ecr_gateway_terminals_online 1');
    expect(metrics).toContain('ecr_gateway_registrations_total{result="OK-REGISTRATION"} 1');
    expect(metrics).toContain(
      'ecr_gateway_transactions_total{command="Sale",outcome="approved"} 1',
    );
    expect(metrics).toContain(
      'ecr_gateway_transactions_total{command="Sale",outcome="declined"} 1',
    );
    expect(metrics).toMatch(/ecr_gateway_transaction_duration_seconds_count\{command="Sale"\} 2/);
    const docs = await fetch(`${base}/docs/json`);
    expect(docs.status).toBe(200);
    expect(JSON.stringify(await docs.json())).toContain('runTransaction');
  });
});
