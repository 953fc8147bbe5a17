import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startConnector } from '../../src/cli/connector.js';
import { parseConfigText } from '../../src/connector/config.js';
import { PayableSimulator } from '../../src/simulators/payable/simulator.js';
import { SemiSimulator } from '../../src/simulators/semi/simulator.js';
import { closedPort, tempDir } from '../helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const AUTH = `Basic ${Buffer.from('log:s3cret-pwd').toString('base64')}`;

/** The connector (seeds 001/003) on a config.txt naming a terminal, on real sockets. */
async function connector(terminalUrl: string, currency: string, flavour: 'desktop' | 'kiosk') {
  const dir = tempDir('connector-serial-');
  const connector = await startConnector(
    parseConfigText(
      [
        `LOCAL_PORT=${await closedPort()}`,
        'TERMINAL_MANAGER_LOGIN=log',
        'TERMINAL_MANAGER_PWD=s3cret-pwd',
        `TERMINAL_URL=${terminalUrl}`,
        `CURRENCY=${currency}`,
        `CONNECTOR_FLAVOUR=${flavour}`,
        `DATA_DIR=${join(dir, 'data')}`,
      ].join('\n'),
    ),
    'silent',
  );
  cleanups.push(() => connector.close());
  const config = async () => {
    const response = await fetch(`${connector.url}/config`, { headers: { authorization: AUTH } });
    expect(response.status).toBe(200);
    return (await response.json()) as unknown;
  };
  const pay = async (body: Record<string, unknown>) => {
    const response = await fetch(`${connector.url}/`, {
      method: 'POST',
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as unknown };
  };
  return { config, pay };
}

describe('GET /config gives the serial the terminal told (seeds 001 and 003)', () => {
  it.each([
    ['old firmware, "Terminal connection established: <serial>"', undefined, 'PP-LEGACY-0001'],
    [
      'newer firmware, {"origin":"<serial>",…,"status":"STATUS_TERMINAL_AUTHORIZED"}',
      'T0K',
      'PP-AUTH-0002',
    ],
  ])(
    'PAYable, %s: deviceId null before the terminal greeted, its serial once it has (desktop shape)',
    async (_name, token, serial) => {
      const simulator = await new PayableSimulator({
        port: 0,
        statusPort: 0,
        serial,
        ...(token === undefined ? {} : { token }),
      }).start();
      cleanups.push(() => simulator.stop());
      const url = token === undefined ? simulator.url : `${simulator.url}?token=${token}&pos=POS-1`;
      const { config, pay } = await connector(url, 'LKR', 'desktop');
      expect(await config()).toEqual({ deviceId: null, protocol: 'payable' });
      const paid = await pay({ amount: '1.00', currency: 'LKR', order_id: `CFG-${serial}` });
      expect(paid).toMatchObject({ status: 200, body: { paymentStatus: 'SUCCESS' } });
      expect(await config()).toEqual({ deviceId: serial, protocol: 'payable' });
    },
  );

  it('SEMI over TCP: deviceId from the SERIAL_NO of its answer, card-number-like runs masked (kiosk shape)', async () => {
    const simulator = await new SemiSimulator({
      wsPort: null,
      tcpPort: 0,
      controlPort: 0,
      serial: 'VL-4111111111111111',
    }).start();
    cleanups.push(() => simulator.stop());
    const { config, pay } = await connector(
      (simulator.tcpUrl as string).replace('tcp://', 'semi+tcp://'),
      'USD',
      'kiosk',
    );
    expect(await config()).toEqual([{ deviceId: null, protocol: 'semi' }]);
    const paid = await pay({ amount: 5, orderId: 'CFG-SEMI-1' });
    expect(paid.status).toBe(200);
    expect(await config()).toEqual([{ deviceId: 'VL-411111******1111', protocol: 'semi' }]);
    expect(simulator.ledger.count).toBe(1);
  });
});
