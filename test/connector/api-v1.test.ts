import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { TransactionService } from '../../src/core/transaction-service.js';
import { buildConnector } from '../../src/connector/server.js';
import { SemiDriver } from '../../src/drivers/semi.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { SemiSimulator } from '../../src/simulators/semi/simulator.js';
import { tempDir } from '../helpers.js';

const AUTH = { authorization: `Basic ${Buffer.from('log:pwd').toString('base64')}` };
const cleanups: (() => Promise<unknown> | unknown)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A kiosk connector over a SEMI simulator (it has batch close), driven through inject(). */
async function setup(): Promise<{ app: FastifyInstance; simulator: SemiSimulator }> {
  const simulator = await new SemiSimulator({ wsPort: null, tcpPort: 0, controlPort: 0 }).start();
  cleanups.push(() => simulator.stop());
  const journal = new SqliteJournal({ path: join(tempDir('api-v1-'), 'ecr-bridge.db') });
  cleanups.push(() => journal.close());
  const service = new TransactionService({ journal, maxQueue: 0 });
  const driver = new SemiDriver({ url: simulator.tcpUrl as string });
  service.addTerminal('connector', driver);
  cleanups.push(() => service.close());
  const app = await buildConnector({
    flavour: 'kiosk',
    login: 'log',
    password: 'pwd',
    service,
    terminalId: 'connector',
    driver,
    currency: 'USD',
    journalId: (reference, attempt) =>
      journal
        .attemptsOf({ merchantId: 'default', terminalId: 'connector', reference })
        .find((row) => row.attempt === attempt)?.id,
  });
  cleanups.push(() => app.close());
  return { app, simulator };
}

describe('the connector /api/v1 and its OpenAPI document', () => {
  it('POST /api/v1/payments pays in the clean model; GET by reference returns it; a retry is replayed', async () => {
    const { app, simulator } = await setup();
    const paid = await app.inject({
      method: 'POST',
      url: '/api/v1/payments',
      headers: AUTH,
      payload: { reference: 'V1-1', amount: '12,50' },
    });
    expect(paid.statusCode).toBe(200);
    expect(paid.json()).toMatchObject({
      reference: 'V1-1',
      kind: 'sale',
      amount: '12.50',
      currency: 'USD',
      outcome: 'approved',
      replayed: false,
      maskedPan: '476173******0010',
    });
    const again = await app.inject({
      method: 'POST',
      url: '/api/v1/payments',
      headers: AUTH,
      payload: { reference: 'V1-1', amount: 12.5 },
    });
    expect(again.json()).toMatchObject({ outcome: 'approved', replayed: true });
    const found = await app.inject({ url: '/api/v1/payments/V1-1', headers: AUTH });
    expect(found.json()).toMatchObject({ reference: 'V1-1', outcome: 'approved' });
    expect(simulator.ledger.forReference('V1-1')).toHaveLength(1);
  });

  it('a declined reference paid again is attempt 2; GET by reference answers the latest with every attempt', async () => {
    const { app, simulator } = await setup();
    simulator.next.push('decline');
    const pay = () =>
      app.inject({
        method: 'POST',
        url: '/api/v1/payments',
        headers: AUTH,
        payload: { reference: 'V1-D', amount: '12.50' },
      });
    expect((await pay()).json()).toMatchObject({ outcome: 'declined', attempt: 1 });
    expect((await pay()).json()).toMatchObject({
      outcome: 'approved',
      attempt: 2,
      replayed: false,
    });
    const found = await app.inject({ url: '/api/v1/payments/V1-D', headers: AUTH });
    expect(found.json()).toMatchObject({
      reference: 'V1-D',
      outcome: 'approved',
      attempt: 2,
      attempts: [
        { attempt: 1, outcome: 'declined', state: 'declined' },
        { attempt: 2, outcome: 'approved', state: 'approved', maskedPan: '476173******0010' },
      ],
    });
    expect(simulator.ledger.forReference('V1-D')).toHaveLength(1);
  });

  it('a key sent twice ("amount":"1.00","amount":"2.00") is refused 400 naming it, on every route; nothing is charged', async () => {
    const { app, simulator } = await setup();
    const own = await app.inject({
      method: 'POST',
      url: '/api/v1/payments',
      headers: { ...AUTH, 'content-type': 'application/json' },
      payload: '{"reference":"DUP-1","amount":"1.00","amount":"2.00"}',
    });
    expect(own.statusCode).toBe(400);
    expect(own.json()).toMatchObject({ error: { code: 'INVALID_INPUT', field: 'amount' } });
    const kiosk = await app.inject({
      method: 'POST',
      url: '/',
      headers: { ...AUTH, 'content-type': 'application/json' },
      payload: '{"orderId":"DUP-2","amount":1,"basket":{"a":1},"\\u0061mount":2}',
    });
    expect(kiosk.statusCode).toBe(400);
    expect(JSON.stringify(kiosk.json())).toContain('amount');
    expect(simulator.ledger.count).toBe(0);
  });

  it('bad input answers {error:{code, field, rule}}: unknown field, missing reference, bad amount; unknown reference → 404', async () => {
    const { app } = await setup();
    const cases: [unknown, number, string, string][] = [
      [{ reference: 'X', amount: 1, tip: 2 }, 400, 'INVALID_INPUT', 'tip'],
      [{ amount: 1 }, 400, 'INVALID_INPUT', 'reference'],
      [{ reference: 'X', amount: '1.234' }, 400, 'INVALID_AMOUNT', 'amount'],
      [{ reference: 'X', amount: 1, kind: 'steal' }, 400, 'INVALID_INPUT', 'kind'],
    ];
    for (const [payload, status, code, field] of cases) {
      const answer = await app.inject({
        method: 'POST',
        url: '/api/v1/payments',
        headers: AUTH,
        payload: payload as object,
      });
      expect(answer.statusCode, JSON.stringify(payload)).toBe(status);
      expect(answer.json()).toMatchObject({ error: { code, field } });
    }
    const missing = await app.inject({ url: '/api/v1/payments/NOPE', headers: AUTH });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect((await app.inject({ url: '/api/v1/terminal' })).statusCode).toBe(401);
  });

  it('terminal, batch close and version; the kiosk /tlc closes the SEMI batch too', async () => {
    const { app } = await setup();
    await app.inject({
      method: 'POST',
      url: '/api/v1/payments',
      headers: AUTH,
      payload: { reference: 'B-1', amount: 3 },
    });
    expect((await app.inject({ url: '/api/v1/terminal', headers: AUTH })).json()).toMatchObject({
      protocol: 'semi',
      capabilities: expect.arrayContaining(['sale', 'batch-close', 'status']),
    });
    const closed = await app.inject({
      method: 'POST',
      url: '/api/v1/terminal/batch-close',
      headers: AUTH,
    });
    expect(closed.json()).toMatchObject({
      saleCount: 1,
      sales: '3.00',
      net: '3.00',
      currency: 'USD',
    });
    const tlc = await app.inject({ url: '/tlc', headers: AUTH });
    expect(tlc.json()).toMatchObject([{ NbApp: '1', saleCount: 0 }]);
    expect((await app.inject({ url: '/api/v1/version', headers: AUTH })).json()).toEqual({
      version: expect.any(String),
    });
  });

  it('/docs serves the OpenAPI document from the same schemas, with the UI shipped in the package', async () => {
    const { app } = await setup();
    const document = await app.inject({ url: '/docs/json', headers: AUTH });
    expect(document.statusCode).toBe(200);
    const spec = document.json() as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
    };
    expect(spec.openapi).toMatch(/^3\./);
    expect(JSON.stringify(spec.paths['/api/v1/payments']?.post?.requestBody)).toContain(
      'originalReference',
    );
    const ui = await app.inject({ url: '/docs/static/swagger-ui.css', headers: AUTH });
    expect(ui.statusCode).toBe(200);
    expect(ui.headers['content-type']).toMatch(/css/);
  });
});
