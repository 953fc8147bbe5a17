import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { startCli } from './run-cli.js';

describe('ecr-bridge demo (npm start)', () => {
  it('starts the connector over a simulated terminal: the curl payment it prints works, and the PAYable simulator answers', async () => {
    const { child, done } = startCli([
      'demo',
      '--port',
      '0',
      '--status-port',
      '0',
      '--connector-port',
      '0',
      '--gateway-port',
      '0',
      '--gateway-tcp-port',
      '0',
      '--data-dir',
      tempDir('demo-'),
      '--json',
    ]);
    try {
      const info = await new Promise<{
        connectorUrl: string;
        login: string;
        password: string;
        url: string;
        gatewayUrl: string;
        gatewayKey: string;
        gatewayPassword: string;
        gatewayTerminals: string[];
      }>((resolve, reject) => {
        let out = '';
        child.stdout?.on('data', (chunk: Buffer) => {
          out += chunk.toString('utf8');
          if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0] as string));
        });
        void done.then((run) => reject(new Error(run.stderr)));
      });
      const response = await fetch(`${info.connectorUrl}/`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${info.login}:${info.password}`).toString('base64')}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ amount: '10,23', currency: 'EUR', order_id: 'Order_12345' }),
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ paymentStatus: 'SUCCESS', amount: '10,23' });
      expect(info.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
      // The gateway: a sale on each simulated eConduit terminal, as the printed curl does.
      for (const [i, terminalId] of info.gatewayTerminals.entries()) {
        const query = new URLSearchParams({
          command: 'Sale',
          key: info.gatewayKey,
          password: info.gatewayPassword,
          amount: '2.50',
          refID: `INV-${i}`,
          terminalId,
        });
        const sale = await fetch(
          `${info.gatewayUrl}/services/api.asmx/runTransaction?${query.toString()}`,
        );
        expect(await sale.json()).toMatchObject({ ResultCode: 'Approved', TerminalID: terminalId });
      }
    } finally {
      child.kill('SIGTERM');
    }
    expect((await done).code).toBe(0);
  });
});
