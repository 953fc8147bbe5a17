import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gatewayDashboard } from '../../src/gateway/dashboard.js';
import { Gateway, type GatewayOptions } from '../../src/gateway/gateway.js';
import { shownSerial } from '../../src/gateway/provisioning.js';
import { SqliteTenantStore } from '../../src/gateway/tenants.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir } from '../helpers.js';
import { RawTerminal, SEED_REGISTER } from './raw-terminal.js';

const SEED_TERMINAL = '29531204';
const OFFLINE_TERMINAL = '29531299';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A gateway on real sockets whose merchant M owns the seed's terminal (TerminalManufacturer). */
async function setup(options: Partial<GatewayOptions> = {}) {
  const journal = new SqliteJournal({ path: join(tempDir('gateway-views-'), 'journal.db') });
  cleanups.push(() => journal.close());
  const tenants = new SqliteTenantStore(journal);
  const merchant = tenants.addMerchant('M');
  for (const terminalId of [SEED_TERMINAL, OFFLINE_TERMINAL])
    tenants.addTerminal({ terminalId, merchant: 'M', terminalType: 'TerminalManufacturer' });
  const gateway = await new Gateway({
    journal,
    tenants,
    tcpPort: 0,
    httpPort: 0,
    ...options,
  }).start();
  cleanups.push(() => gateway.close());
  const register = async (text: string) => {
    const raw = await RawTerminal.connect(gateway.tcpPort);
    cleanups.push(() => raw.destroy());
    raw.send(text);
    return raw.next();
  };
  return { gateway, journal, merchant, register };
}

describe("the gateway's terminal views show what the Register reported", () => {
  it('the dashboard and /api/v1/terminals show the registered serial, model and software version, a card number in them masked; an offline terminal its provisioned serial', async () => {
    const { gateway, journal, merchant, register } = await setup();
    const seed = SEED_REGISTER.replace(
      '"SomeProcessor v1.2"',
      '"SomeProcessor v1.2 4761739001010010"',
    );
    expect(await register(seed)).toBe('OK-REGISTRATION');

    const views = await gatewayDashboard(gateway, journal).terminals('M');
    expect(views).toEqual([
      {
        terminalId: SEED_TERMINAL,
        protocol: 'TerminalManufacturer (semi over eConduit)',
        serial: SEED_TERMINAL,
        status: 'online',
        lastHeartbeatAt: expect.any(Number),
        model: 'Model1 SomeProcessor v1.2 476173******0010',
        address: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      },
      {
        terminalId: OFFLINE_TERMINAL,
        protocol: 'TerminalManufacturer (semi over eConduit)',
        serial: OFFLINE_TERMINAL,
        status: 'offline',
        lastHeartbeatAt: undefined,
        model: null,
        address: null,
      },
    ]);

    const response = await fetch(`http://127.0.0.1:${gateway.httpPort}/api/v1/terminals`, {
      headers: {
        authorization: `Basic ${Buffer.from(`${merchant.key}:${merchant.password}`).toString('base64')}`,
      },
    });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).not.toContain('4761739001010010');
    expect(JSON.parse(text)).toMatchObject({
      terminals: [
        {
          terminalId: SEED_TERMINAL,
          terminalType: 'TerminalManufacturer',
          online: true,
          terminalModel: 'Model1',
          softwareVersion: 'SomeProcessor v1.2 476173******0010',
        },
        { terminalId: OFFLINE_TERMINAL, online: false },
      ],
    });
  });

  it('a serial with a card-number-like run is shown masked (first 6 / last 4); an ordinary serial as reported', () => {
    expect(shownSerial('SN-4111111111111111')).toBe('SN-411111******1111');
    expect(shownSerial(SEED_TERMINAL)).toBe(SEED_TERMINAL);
  });

  it('with a --terminal-type allow-list that leaves its type out, a provisioned terminal cannot register and a payment to it is UNSUPPORTED_OPERATION naming the list, nothing sent', async () => {
    const { gateway, journal, register } = await setup({
      terminals: { terminalTypes: ['Valor'] },
    });
    expect(await register(SEED_REGISTER)).toBe('FAILED-INVALID-TERMINAL-TYPE');
    await expect(gateway.serviceFor('M', SEED_TERMINAL)).rejects.toMatchObject({
      code: 'UNSUPPORTED_OPERATION',
      message: expect.stringContaining("this gateway's --terminal-type list leaves out"),
    });
    expect(await journal.list({ terminalId: SEED_TERMINAL })).toEqual([]);
  });
});
