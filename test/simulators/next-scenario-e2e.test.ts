import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TransactionService } from '../../src/core/transaction-service.js';
import type { TerminalDriver } from '../../src/core/driver.js';
import { ConcertDriver } from '../../src/drivers/concert.js';
import { PayableDriver } from '../../src/drivers/payable.js';
import { SemiDriver } from '../../src/drivers/semi.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { SqliteTenantStore } from '../../src/gateway/tenants.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { ConcertSimulator } from '../../src/simulators/concert/simulator.js';
import { EconduitSimulator } from '../../src/simulators/econduit/simulator.js';
import { MAX_QUEUED_SCENARIOS, NEXT_BODY_MAX_BYTES } from '../../src/simulators/next-scenario.js';
import { PayableSimulator } from '../../src/simulators/payable/simulator.js';
import { SemiSimulator } from '../../src/simulators/semi/simulator.js';
import { tempDir, waitFor } from '../helpers.js';

/**
 * `POST /next` on every simulator's control port, over real sockets: the scenario queued there
 * decides the next payment whatever its amount. Payments go through the real drivers (and, for
 * eConduit, the real gateway), as a POS's would.
 */

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Protocol = 'payable' | 'semi' | 'concert' | 'econduit';

interface Harness {
  /** The simulator's control port on 127.0.0.1. */
  readonly controlPort: number;
  /** Pays `minor` under `reference`; resolves with the outcome the POS saw, in lower case. */
  pay(reference: string, minor: number): Promise<string>;
}

/** A TransactionService over a real journal, paying through `driver`. */
function serviceFor(driver: TerminalDriver, currency: string): Harness['pay'] {
  const journal = new SqliteJournal({ path: join(tempDir('next-e2e-'), 'ecr-bridge.db') });
  const service = new TransactionService({ journal });
  service.addTerminal('t1', driver);
  cleanups.push(() => journal.close());
  cleanups.push(() => service.close());
  return async (reference, minor) =>
    (await service.pay('t1', { kind: 'sale', reference, amount: { minor, currency } })).outcome;
}

async function payable(): Promise<Harness> {
  const simulator = await new PayableSimulator({
    port: 0,
    statusPort: 0,
    controlPort: 0,
    token: 'T',
  }).start();
  cleanups.push(() => simulator.stop());
  const driver = new PayableDriver({
    url: simulator.url,
    token: 'T',
    posName: 'POS-1',
    currency: 'LKR',
  });
  return { controlPort: simulator.controlPort, pay: serviceFor(driver, 'LKR') };
}

async function semi(): Promise<Harness> {
  const simulator = await new SemiSimulator({ wsPort: null, tcpPort: 0, controlPort: 0 }).start();
  cleanups.push(() => simulator.stop());
  const driver = new SemiDriver({ url: simulator.tcpUrl as string, currency: 'USD' });
  return { controlPort: simulator.controlPort, pay: serviceFor(driver, 'USD') };
}

async function concert(): Promise<Harness> {
  const simulator = await new ConcertSimulator({ tcpPort: 0, controlPort: 0 }).start();
  cleanups.push(() => simulator.stop());
  const driver = new ConcertDriver({ url: simulator.tcpUrl as string });
  return { controlPort: simulator.controlPort, pay: serviceFor(driver, 'EUR') };
}

/** A gateway with one merchant, and the eConduit simulator's terminal registered with it. */
async function econduit(): Promise<Harness> {
  const journal = new SqliteJournal({ path: join(tempDir('next-e2e-'), 'journal.db') });
  const tenants = new SqliteTenantStore(journal);
  const shop = tenants.addMerchant('shop');
  tenants.addTerminal({ terminalId: '29531204', merchant: 'shop', terminalType: 'Valor' });
  const gateway = await new Gateway({ journal, tenants, tcpPort: 0, httpPort: 0 }).start();
  cleanups.push(() => journal.close());
  cleanups.push(() => gateway.close());
  const simulator = await new EconduitSimulator({
    endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
    terminalId: '29531204',
    controlPort: 0,
  }).start(5_000);
  cleanups.push(() => simulator.stop());
  await waitFor(() => gateway.listener.isOnline('29531204'), 5_000, 'the terminal online');
  return {
    controlPort: simulator.controlPort,
    pay: async (reference, minor) => {
      const query = new URLSearchParams({
        command: 'Sale',
        key: shop.key,
        password: shop.password,
        amount: (minor / 100).toFixed(2),
        refID: reference,
        terminalId: '29531204',
      });
      const response = await fetch(
        `http://127.0.0.1:${gateway.httpPort}/services/api.asmx/runTransaction?${query.toString()}`,
      );
      const body = (await response.json()) as { ResultCode: string };
      return body.ResultCode.toLowerCase();
    },
  };
}

const HARNESSES: Record<Protocol, () => Promise<Harness>> = { payable, semi, concert, econduit };

/** The control port over HTTP: status and parsed JSON body. */
async function control(
  port: number,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

const queue = (name: string) => JSON.stringify({ scenario: name });

/**
 * Charges in the ledger the control port serves. (Counted, not looked up by reference: Concert's
 * ledger keys a charge by the driver's wire id, which is not the POS's reference.)
 */
async function charged(port: number): Promise<number> {
  const { json } = await control(port, 'GET', '/ledger');
  expect(json.charges).toHaveLength(json.count as number);
  return json.count as number;
}

describe.each<Protocol>(['payable', 'semi', 'concert', 'econduit'])(
  '%s simulator: POST /next on the control port',
  (protocol) => {
    it('{"scenario":"declined"} → the next payment of an approving amount is declined, the same amount next is approved, charged once', async () => {
      const { controlPort, pay } = await HARNESSES[protocol]();
      const posted = await control(controlPort, 'POST', '/next', queue('declined'));
      expect(posted).toEqual({
        status: 200,
        json: { queued: ['decline'], capacity: MAX_QUEUED_SCENARIOS },
      });
      expect(await pay('NEXT-D', 2000)).toBe('declined');
      expect(await charged(controlPort)).toBe(0);
      expect(await pay('NEXT-A', 2000)).toBe('approved');
      expect(await charged(controlPort)).toBe(1);
      expect((await control(controlPort, 'GET', '/next')).json).toEqual({
        queued: [],
        capacity: MAX_QUEUED_SCENARIOS,
      });
    });

    it('GET /next shows the queue in order; each payment takes one (a queued approve beats a declining amount); DELETE /next clears it', async () => {
      const { controlPort, pay } = await HARNESSES[protocol]();
      await control(controlPort, 'POST', '/next', queue('decline'));
      await control(controlPort, 'POST', '/next', queue('approved'));
      expect((await control(controlPort, 'GET', '/next')).json.queued).toEqual([
        'decline',
        'approve',
      ]);
      expect(await pay('Q-1', 2000)).toBe('declined');
      expect((await control(controlPort, 'GET', '/next')).json.queued).toEqual(['approve']);
      // 20.51 declines by the table; the queued approve takes its place.
      expect(await charged(controlPort)).toBe(0);
      expect(await pay('Q-2', 2051)).toBe('approved');
      expect(await charged(controlPort)).toBe(1);

      await control(controlPort, 'POST', '/next', queue('declined'));
      expect(await control(controlPort, 'DELETE', '/next')).toEqual({
        status: 200,
        json: { queued: [], capacity: MAX_QUEUED_SCENARIOS, cleared: 1 },
      });
      expect(await pay('Q-3', 2000)).toBe('approved');
      expect(await charged(controlPort)).toBe(2);
    });

    it('bad bodies are refused with 400 (413 when too large) naming the field, and nothing is queued', async () => {
      const { controlPort } = await HARNESSES[protocol]();
      const cases: [string, number, string, RegExp][] = [
        [
          queue('rejected'),
          400,
          'scenario',
          /decline, cancel, busy.*declined, cancelled, approved/,
        ],
        ['scenario=declined', 400, 'body', /must be JSON/],
        ['{"scenario":51}', 400, 'scenario', /must be a string/],
        ['{}', 400, 'scenario', /is required/],
        ['{"scenario":"declined","times":2}', 400, 'times', /is not a field/],
        [
          JSON.stringify({ scenario: 'declined', pad: 'x'.repeat(NEXT_BODY_MAX_BYTES) }),
          413,
          'body',
          new RegExp(`at most ${NEXT_BODY_MAX_BYTES} bytes`),
        ],
      ];
      for (const [body, status, field, message] of cases) {
        const reply = await control(controlPort, 'POST', '/next', body);
        expect(reply.status, body.slice(0, 40)).toBe(status);
        expect(reply.json.error).toMatchObject({ code: 'INVALID_INPUT', field });
        expect((reply.json.error as { message: string }).message).toMatch(message);
      }
      expect((await control(controlPort, 'GET', '/next')).json.queued).toEqual([]);
      // Only /next takes a body.
      expect(
        (await fetch(`http://127.0.0.1:${controlPort}/ledger`, { method: 'POST' })).status,
      ).toBe(405);
    });

    it(`the queue holds ${MAX_QUEUED_SCENARIOS}: one more is refused naming scenario`, async () => {
      const { controlPort } = await HARNESSES[protocol]();
      for (let i = 0; i < MAX_QUEUED_SCENARIOS; i++)
        expect((await control(controlPort, 'POST', '/next', queue('busy'))).status).toBe(200);
      const full = await control(controlPort, 'POST', '/next', queue('declined'));
      expect(full.status).toBe(400);
      expect(full.json.error).toMatchObject({ code: 'INVALID_INPUT', field: 'scenario' });
      expect((await control(controlPort, 'GET', '/next')).json.queued).toHaveLength(
        MAX_QUEUED_SCENARIOS,
      );
    });
  },
);
