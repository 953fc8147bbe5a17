import type { AddressInfo, Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { DriverRequest } from '../../src/core/driver.js';
import { PayableDriver } from '../../src/drivers/payable.js';

const closers: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const sale = (id: number): DriverRequest => ({
  kind: 'sale',
  reference: `R${id}`,
  amount: { minor: 2000, currency: 'LKR' },
  wireId: id,
});

it('an old connection that finishes closing late does not touch the payment on the new one', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.once('listening', resolve));
  closers.push(() => new Promise((resolve) => wss.close(resolve)));
  const sockets: Socket[] = [];
  wss.on('connection', (ws, req) => {
    const index = sockets.push(req.socket);
    ws.send('Terminal connection established: PP1');
    ws.on('message', (data) => {
      const request = JSON.parse(String(data)) as Record<string, unknown>;
      // The first connection answers at once, the second after the first's TCP is gone.
      setTimeout(
        () => ws.send(JSON.stringify({ approval_code: '1', request, status: 'STATUS_SUCCESS' })),
        index === 1 ? 0 : 600,
      );
    });
  });
  const driver = new PayableDriver({
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
  });
  closers.push(() => driver.close());
  expect((await driver.execute(sale(1))).outcome).toBe('approved');

  // The terminal sends a close frame on connection 1 but its TCP side lingers for a while.
  const first = sockets[0] as Socket;
  first.removeAllListeners('data');
  first.removeAllListeners('end');
  first.write(Buffer.from([0x88, 0x02, 0x03, 0xe9]));
  await new Promise((resolve) => setTimeout(resolve, 100));
  setTimeout(() => first.destroy(), 300);

  const second = await driver.execute(sale(2));
  expect(sockets).toHaveLength(2);
  expect(second).toMatchObject({ outcome: 'approved', approvalCode: '1' });
});

it('cancelCurrent never opens a connection of its own (it would STOP another POS)', async () => {
  let connections = 0;
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.once('listening', resolve));
  closers.push(() => new Promise((resolve) => wss.close(resolve)));
  wss.on('connection', () => connections++);
  const driver = new PayableDriver({
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
  });
  closers.push(() => driver.close());
  expect(await driver.cancelCurrent()).toBe(false);
  expect(connections).toBe(0);
});

it('options outside their bounds are refused, naming the option', () => {
  const url = 'ws://127.0.0.1:1';
  expect(() => new PayableDriver({ url, answerTimeoutMs: 0 })).toThrow(
    /answerTimeoutMs: must be a whole number from 1/,
  );
  expect(() => new PayableDriver({ url, answerTimeoutMs: 3_000_000_000 })).toThrow(
    /answerTimeoutMs/,
  );
  expect(() => new PayableDriver({ url, connectAttempts: 0 })).toThrow(/connectAttempts/);
  expect(() => new PayableDriver({ url, connectTimeoutMs: 1.5 })).toThrow(/connectTimeoutMs/);
  expect(() => new PayableDriver({ url, maxMessageBytes: 10 * 1024 * 1024 })).toThrow(
    /maxMessageBytes/,
  );
  expect(() => new PayableDriver({ url, answerTimeout: 5 } as never)).toThrow(
    /answerTimeout: is not an option of PayableDriver/,
  );
  expect(() => new PayableDriver({ url: 'not a url' })).toThrow(
    /url: must be a ws:\/\/ or wss:\/\/ address/,
  );
  expect(() => new PayableDriver({ url, currency: 'XYZ' })).toThrow(
    /currency: must be an active ISO 4217 currency/,
  );
});

it('a terminal transaction id that is a card number is masked in the outcome', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.once('listening', resolve));
  closers.push(() => new Promise((resolve) => wss.close(resolve)));
  wss.on('connection', (ws) => {
    ws.send('Terminal connection established: PP1');
    ws.on('message', (data) => {
      const request = JSON.parse(String(data)) as Record<string, unknown>;
      ws.send(JSON.stringify({ request, status: 'STATUS_SUCCESS', txid: 4761739001010010 }));
    });
  });
  const driver = new PayableDriver({
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
  });
  closers.push(() => driver.close());
  expect(await driver.execute(sale(3))).toMatchObject({
    outcome: 'approved',
    terminalTxId: '476173******0010',
  });
});
