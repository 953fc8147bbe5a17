import { afterEach, describe, expect, it } from 'vitest';
import type { DriverRequest } from '../../../src/core/driver.js';
import { PayableDriver } from '../../../src/drivers/payable.js';
import { PayableSimulator } from '../../../src/simulators/payable/simulator.js';
import { runScriptedClient, startScriptedServer, type ScriptedServer } from '../support/ws.js';
import {
  AUTHORIZED_SALE,
  POS_NAME,
  SEED_SALE,
  SEED_SERIAL,
  VENDOR_SERVER_TIME,
} from './transcripts.js';

// Issue 16 part 2: the seed's PAYable conversation, played against our driver by a scripted
// terminal and against our simulator by a scripted POS. The transcripts (./transcripts.ts) are
// the seed's text verbatim and the vendor's README shapes, never our codec's output.

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

/** The seed's request as a driver request: reference, receipts and id as in seed lines 41–49. */
const SEED_SALE_REQUEST: DriverRequest = {
  kind: 'sale',
  reference: 'example_sale_from_test',
  amount: { minor: 2000, currency: 'LKR' },
  receiptEmail: 'customer@gmail.com',
  receiptSms: '0777777777',
  wireId: 1,
};

async function scriptedTerminal(
  transcript: typeof SEED_SALE,
  verify?: (url: string) => boolean,
): Promise<ScriptedServer> {
  const server = await startScriptedServer('ws', transcript, {
    ...(verify === undefined ? {} : { verifyClient: (req) => verify(req.url ?? '') }),
  });
  cleanups.push(() => server.close());
  return server;
}

function driverFor(url: string, options: { token?: string; posName?: string } = {}) {
  const driver = new PayableDriver({
    url,
    connectTimeoutMs: 5_000,
    answerTimeoutMs: 10_000,
    ...options,
  });
  cleanups.push(() => driver.close());
  return driver;
}

async function simulator(token?: string): Promise<PayableSimulator> {
  const sim = await new PayableSimulator({
    port: 0,
    statusPort: 0,
    ...(token === undefined ? {} : { token }),
  }).start();
  cleanups.push(() => sim.stop());
  return sim;
}

describe('PAYable driver against a scripted terminal replaying the seed', () => {
  it("old firmware: sends the seed's request (same fields, types, 20.00) and reads the seed's verbatim response as approved", async () => {
    const terminal = await scriptedTerminal(SEED_SALE);
    const driver = driverFor(terminal.url);

    const outcome = await driver.execute(SEED_SALE_REQUEST);
    const [request] = await terminal.done;

    // What the driver sent has the seed's fields with the seed's JSON types: amount a number.
    const sent = JSON.parse(request as string) as Record<string, unknown>;
    expect(typeof sent.amount).toBe('number');
    expect(typeof sent.id).toBe('number');
    expect(outcome).toMatchObject({
      outcome: 'approved',
      approvalCode: '408809',
      cardBrand: 'VISA',
      terminalTxId: '26741',
      details: {
        status: 'STATUS_SUCCESS',
        mid: '242332553252353',
        tid: '24343227',
        // The seed's card_name ends in a space; the driver keeps the name, trimmed.
        cardName: '04/TLE PROJECT TEST CARD',
        transactionType: 'EMV',
        serverTime: '2020-09-29 01:42:22 PM',
        // 01:42:22 PM is 13:42:22 on the terminal's clock.
        terminalTime: '2020-09-29T13:42:22',
      },
    });
    expect(driver.serial).toBe(SEED_SERIAL);
  });

  it('newer firmware: token and POS name in the query, STATUS_TERMINAL_AUTHORIZED greeting, 12:07:41 AM read as 00:07:41', async () => {
    const terminal = await scriptedTerminal(AUTHORIZED_SALE);
    const driver = driverFor(terminal.url, { token: 'T0k=', posName: POS_NAME });

    const outcome = await driver.execute(SEED_SALE_REQUEST);
    await terminal.done;

    const query = new URL(terminal.upgradeUrls[0] ?? '', 'ws://x').searchParams;
    expect(query.get('token')).toBe('T0k=');
    expect(query.get('pos')).toBe(POS_NAME);
    expect(outcome).toMatchObject({
      outcome: 'approved',
      approvalCode: '512093',
      cardBrand: 'MASTER',
      terminalTxId: '413456',
      details: {
        terminalSerial: SEED_SERIAL,
        serverTime: '2021-03-04 12:07:41 AM',
        terminalTime: '2021-03-04T00:07:41',
      },
    });
    // The README's answer carries a masked card_no; the driver keeps no card number from it.
    expect(JSON.stringify(outcome)).not.toContain('0425');
    expect(driver.serial).toBe(SEED_SERIAL);
  });
});

describe('PAYable simulator against a scripted POS sending the seed request verbatim', () => {
  it("old firmware: greets as the seed does and answers in the seed's response shape, server_time in the vendor's form", async () => {
    const sim = await simulator();

    const [greeting, response] = await runScriptedClient(sim.url, SEED_SALE);

    expect(greeting).toBe(`Terminal connection established: ${SEED_SERIAL}`);
    const answer = JSON.parse(response as string) as Record<string, unknown>;
    expect(answer.server_time).toMatch(VENDOR_SERVER_TIME);
    // Charged once, for the seed's 20.00 under the seed's order_tracking.
    expect(sim.ledger.toJSON().charges).toMatchObject([
      { reference: 'example_sale_from_test', amountMinor: 2000, currency: 'LKR', requestId: '1' },
    ]);
  });

  it('newer firmware: authorizes the POS by name and echoes that name as request.origin', async () => {
    const sim = await simulator('T0k=');

    const [greeting, response] = await runScriptedClient(
      `${sim.url}/?token=${encodeURIComponent('T0k=')}&pos=${POS_NAME}`,
      AUTHORIZED_SALE,
    );

    expect(JSON.parse(greeting as string)).toMatchObject({ status: 'STATUS_TERMINAL_AUTHORIZED' });
    const answer = JSON.parse(response as string) as { request: { origin: string } };
    expect(answer.request.origin).toBe(POS_NAME);
    expect(sim.ledger.toJSON().count).toBe(1);
  });
});
