import { afterEach, describe, expect, it } from 'vitest';
import type { DriverRequest } from '../../../src/core/driver.js';
import { containsPan } from '../../../src/core/pan.js';
import { SemiDriver } from '../../../src/drivers/semi.js';
import { SemiSimulator } from '../../../src/simulators/semi/simulator.js';
import { runScriptedClient, startScriptedServer, type MessageTranscript } from '../support/ws.js';
import {
  DRIVER_CAPTURED_APPROVAL,
  DRIVER_VENDOR_APPROVAL,
  DRIVER_VENDOR_CANCELLED,
  MER_TXN_ID,
  SEED_REQUEST,
  SEED_REQUEST_GO,
  SEED_REQUEST_PYTHON,
  threeFieldSale,
} from './transcripts.js';

// Issue 16 part 2: the seed's three-field SEMI request, sent as the seed writes it by a scripted
// POS to our simulator over both transports; and our driver against a scripted terminal replaying
// the vendor's published answer shapes. Sources in ./transcripts.ts.

type Transport = 'ws' | 'tcp';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

async function simulator(): Promise<SemiSimulator> {
  const sim = await new SemiSimulator({ wsPort: 0, tcpPort: 0, controlPort: 0 }).start();
  cleanups.push(() => sim.stop());
  return sim;
}

function urlOf(sim: SemiSimulator, transport: Transport): string {
  return (transport === 'ws' ? sim.wsUrl : sim.tcpUrl) as string;
}

describe.each<Transport>(['ws', 'tcp'])('SEMI simulator over %s, scripted POS', (transport) => {
  it('the seed request with only TRAN_MODE, TRAN_CODE and AMOUNT → approved for 100 cents, in the vendor answer shape', async () => {
    const sim = await simulator();

    const [answer] = await runScriptedClient(urlOf(sim, transport), threeFieldSale(SEED_REQUEST));

    expect(JSON.parse(answer as string)).toMatchObject({ STATE: '0', AMOUNT: '100' });
    // Charged once; with no MER_TXN_ID in the request there is no reference to echo.
    expect(sim.ledger.toJSON().charges).toMatchObject([{ amountMinor: 100, reference: '' }]);
    expect(JSON.parse(answer as string)).not.toHaveProperty('MER_TXN_ID');
  });

  it("the seed's Python form (spaces after ':' and ',') → approved", async () => {
    const sim = await simulator();
    await runScriptedClient(urlOf(sim, transport), threeFieldSale(SEED_REQUEST_PYTHON));
    expect(sim.ledger.toJSON().count).toBe(1);
  });
});

describe('SEMI simulator over raw TCP, scripted POS', () => {
  it("the seed's Go form, over five lines and split across writes inside strings → approved", async () => {
    const sim = await simulator();
    const chunks = [1, SEED_REQUEST_GO.indexOf('TRAN_CODE') + 4, SEED_REQUEST_GO.length - 2];

    await runScriptedClient(urlOf(sim, 'tcp'), threeFieldSale(SEED_REQUEST_GO, chunks));

    expect(sim.ledger.toJSON().charges).toMatchObject([{ amountMinor: 100 }]);
  });
});

const SALE_100: DriverRequest = {
  kind: 'sale',
  reference: MER_TXN_ID,
  amount: { minor: 100, currency: 'USD' },
  wireId: 7,
};

async function driverAgainst(transport: Transport, transcript: MessageTranscript) {
  const terminal = await startScriptedServer(transport, transcript);
  cleanups.push(() => terminal.close());
  const driver = new SemiDriver({ url: terminal.url, answerTimeoutMs: 10_000 });
  cleanups.push(() => driver.close());
  const outcome = await driver.execute(SALE_100);
  const [request] = await terminal.done;
  return { outcome, request: request as string, driver };
}

describe.each<Transport>(['ws', 'tcp'])('SEMI driver over %s, scripted terminal', (transport) => {
  it("sends the seed's three fields as strings plus its reference; the vendor's approved answer, split and with nested TAXES, reads as approved", async () => {
    const { outcome, request, driver } = await driverAgainst(transport, DRIVER_VENDOR_APPROVAL);

    // The seed's fields, with the seed's values and JSON types: every value a string.
    const sent = JSON.parse(request) as Record<string, unknown>;
    expect(Object.values(sent).every((value) => typeof value === 'string')).toBe(true);
    expect(outcome).toMatchObject({
      outcome: 'approved',
      approvalCode: 'TAS002',
      maskedPan: '4111 **** **** 1111',
      // The brand is ISSUER; the vendor's CARD_TYPE is the tender ("Credit").
      cardBrand: 'VISA',
      terminalTxId: '223128670002',
      details: {
        STATE: '0',
        EPI: '2226570002',
        MID: '887000000002',
        TID: '75000002',
        DATE: '29042026 02:08:48',
        TRAN_METHOD: 'Sale',
      },
    });
    // AMOUNT is what was asked (100); the tax only shows in TOTAL_AMOUNT: no "reconcile" note,
    // only the issuer's text.
    expect(outcome.message).toBe('APPROVAL TAS002');
    expect(driver.serial).toBe('125214400002');
    expect(containsPan(JSON.stringify(outcome))).toBe(false);
  });

  it('the vendor\'s cancelled answer (STATE "-1", "Transaction Timeout/Cancelled") → cancelled', async () => {
    const { outcome } = await driverAgainst(transport, DRIVER_VENDOR_CANCELLED);
    expect(outcome).toMatchObject({
      outcome: 'cancelled',
      message: 'Transaction Timeout/Cancelled',
    });
  });

  it('a captured terminal answer with STATE as the number 0 and no reference echo → approved', async () => {
    const { outcome } = await driverAgainst(transport, DRIVER_CAPTURED_APPROVAL);
    expect(outcome).toMatchObject({
      outcome: 'approved',
      approvalCode: '055001',
      cardBrand: 'MASTERCARD',
      terminalTxId: '2256880001',
      details: { STATE: '0', ENTRY_MODE: 'CLESS' },
    });
  });
});
