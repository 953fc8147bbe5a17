import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { Gateway } from '../../src/gateway/gateway.js';
import { SqliteTenantStore } from '../../src/gateway/tenants.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { EconduitSimulator } from '../../src/simulators/econduit/simulator.js';
import { tempDir, waitFor } from '../helpers.js';
import { RawTerminal } from './raw-terminal.js';

// Issue 17's reproduction: the seed's Register carries no secret, and a client that knew a
// provisioned serial and re-registered every 50 ms from another address took every sale,
// answering each "Approved" itself, while the real terminal charged nothing.

const TERMINAL = '29531204';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('gateway: a fake terminal cannot take a live terminal’s sales', () => {
  it('an impostor re-registering every 50 ms from another address gets no sale; the real terminal charges each one; the refusals are counted', async () => {
    const journal = new SqliteJournal({ path: join(tempDir('impostor-'), 'journal.db') });
    cleanups.push(() => journal.close());
    const tenants = new SqliteTenantStore(journal);
    const shop = tenants.addMerchant('shop');
    tenants.addTerminal({ terminalId: TERMINAL, merchant: 'shop', terminalType: 'Valor' });
    const gateway = await new Gateway({ journal, tenants, tcpPort: 0, httpPort: 0 }).start();
    cleanups.push(() => gateway.close());
    const real = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      terminalId: TERMINAL,
    }).start(5_000);
    cleanups.push(() => real.stop());
    await waitFor(() => gateway.listener.isOnline(TERMINAL), 5_000, 'the real terminal online');

    // The impostor: from 127.0.0.2, a fresh connection and a Register every 50 ms; it would
    // answer any transaction itself (it never gets one).
    let stop = false;
    let registered = 0;
    let transactionsSeen = 0;
    const impostor = (async () => {
      while (!stop) {
        const raw = await RawTerminal.connect(gateway.tcpPort, '127.0.0.2');
        const answer = await raw.register(TERMINAL).catch(() => 'closed');
        if (answer === 'OK-REGISTRATION') {
          registered++;
          const frame = await raw.next(200).catch(() => undefined);
          if (frame !== undefined) transactionsSeen++;
        }
        raw.destroy();
        await sleep(50);
      }
    })();
    cleanups.push(async () => {
      stop = true;
      await impostor;
    });

    const sale = async (refID: string) => {
      const query = new URLSearchParams({
        command: 'Sale',
        key: shop.key,
        password: shop.password,
        amount: '1.00',
        refID,
        terminalId: TERMINAL,
      });
      const response = await fetch(
        `http://127.0.0.1:${gateway.httpPort}/services/api.asmx/runTransaction?${query.toString()}`,
      );
      return (await response.json()) as { ResultCode: string };
    };
    for (let i = 1; i <= 8; i++) expect((await sale(`IMP-${i}`)).ResultCode).toBe('Approved');
    stop = true;
    await impostor;

    expect(registered).toBe(0);
    expect(transactionsSeen).toBe(0);
    expect(real.ledger.count).toBe(8);
    expect(gateway.listener.stats.refusedFromElsewhere).toBeGreaterThan(0);
    const metrics = await (await fetch(`http://127.0.0.1:${gateway.httpPort}/metrics`)).text();
    const refused = /^ecr_gateway_registrations_refused_elsewhere_total (\d+)$/m.exec(metrics);
    expect(Number(refused?.[1])).toBe(gateway.listener.stats.refusedFromElsewhere);
  });
});
