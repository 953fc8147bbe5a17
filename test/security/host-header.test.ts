import { once } from 'node:events';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanups, runCleanups, startConnector } from './support.js';

// DNS rebinding: a page on evil.example, its name then pointed at 127.0.0.1, makes the browser
// send the connector `Host: evil.example`. The connector answers only to the names it is known by.

afterEach(runCleanups);

const BASIC = `Basic ${Buffer.from('log:pwd').toString('base64')}`;

interface Answer {
  readonly status: number;
  readonly statusLine: string;
  readonly json: unknown;
}

/**
 * One request written by hand over a real socket: `host` undefined sends no Host header at all.
 * Every request carries the right Basic Auth credentials: they must not help a foreign Host.
 */
async function raw(
  port: number,
  target: string,
  host: string | undefined,
  { method = 'GET', version = '1.1', body = '' } = {},
): Promise<Answer> {
  const socket = connect({ host: '127.0.0.1', port });
  cleanups.push(() => socket.destroy());
  await once(socket, 'connect');
  const lines = [
    `${method} ${target} HTTP/${version}`,
    ...(host === undefined ? [] : [`Host: ${host}`]),
    `Authorization: ${BASIC}`,
    'Connection: close',
    ...(body === '' ? [] : ['Content-Type: application/json', `Content-Length: ${body.length}`]),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  await once(socket, 'close');
  const [head = '', payload = ''] = text.split('\r\n\r\n');
  const statusLine = head.split('\r\n')[0] ?? '';
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    json = payload;
  }
  return { status: Number(statusLine.split(' ')[1]), statusLine, json };
}

describe('connector Host check (DNS rebinding)', () => {
  it('a foreign Host gets 421 Misdirected Request, with the usual error JSON naming host, on every route, before Basic Auth', async () => {
    const { port } = await startConnector();
    const refused = { code: 'MISDIRECTED_REQUEST', field: 'host' };
    const host = `evil.example:${port}`;

    const api = await raw(port, '/api/v1/version', host);
    expect(api.statusLine).toBe('HTTP/1.1 421 Misdirected Request');
    expect(api.json).toEqual({
      error: {
        ...refused,
        message: `host: must be localhost, 127.0.0.1 or [::1] (with or without a port), or a name in ALLOWED_HOSTS (got "${host}")`,
        rule: 'must be localhost, 127.0.0.1 or [::1] (with or without a port), or a name in ALLOWED_HOSTS',
      },
    });
    // The HiPay routes answer in their own shape; nothing is charged.
    const pay = await raw(port, '/', host, {
      method: 'POST',
      body: '{"amount":"1.00","order_id":"REBIND-1"}',
    });
    expect(pay.status).toBe(421);
    expect(pay.json).toMatchObject({
      paymentStatus: 'FAILURE',
      errorCode: 'MISDIRECTED_REQUEST',
      field: 'host',
    });
    for (const target of [
      '/version',
      '/ui/',
      '/ui/app.js',
      '/ui/api/session',
      '/docs/json',
      '/no-such-route',
    ]) {
      const answer = await raw(port, target, host);
      expect(answer.status, target).toBe(421);
      expect(JSON.stringify(answer.json), target).toContain('MISDIRECTED_REQUEST');
    }
  });

  it('look-alikes of the loopback names, bad ports and an over-long Host are refused; the long one is not echoed whole', async () => {
    const { port } = await startConnector();
    for (const host of [
      'evil.example',
      'localhost.evil.example',
      'evil.example@localhost',
      '127.0.0.2',
      '[::2]',
      `localhost:${port}:1`,
      'localhost:99999',
      `:${port}`,
      '127.1',
    ]) {
      expect((await raw(port, '/version', host)).status, host).toBe(421);
    }
    const long = await raw(port, '/api/v1/version', `${'a'.repeat(300)}.example`);
    expect(long.status).toBe(421);
    expect(JSON.stringify(long.json)).not.toContain('a'.repeat(65));
  });

  it('loopback names pass with and without the port, in any case', async () => {
    const { port } = await startConnector();
    for (const host of [
      'localhost',
      `localhost:${port}`,
      'LocalHost',
      '127.0.0.1',
      `127.0.0.1:${port}`,
      '[::1]',
      `[::1]:${port}`,
    ]) {
      const answer = await raw(port, '/version', host);
      expect(answer.status, host).toBe(200);
      expect(answer.json, host).toMatchObject({ version: expect.any(String) as string });
    }
  });

  it('a name added in allowedHosts (ALLOWED_HOSTS) passes; names around it do not', async () => {
    const { port } = await startConnector({ allowedHosts: ['pos.shop.lan', '192.168.1.20'] });
    for (const host of ['pos.shop.lan', `POS.shop.lan:${port}`, '192.168.1.20:8080', 'localhost'])
      expect((await raw(port, '/version', host)).status, host).toBe(200);
    for (const host of ['evil.pos.shop.lan', 'pos.shop.lan.evil.example', '192.168.1.21'])
      expect((await raw(port, '/version', host)).status, host).toBe(421);
  });

  it('no Host at all: HTTP/1.0 clients are answered (a browser always sends one); HTTP/1.1 without one is refused by Node', async () => {
    const { port } = await startConnector();
    const old = await raw(port, '/version', undefined, { version: '1.0' });
    expect(old.status).toBe(200);
    const empty = await raw(port, '/version', '', { version: '1.0' });
    expect(empty.status).toBe(200);
    const missing = await raw(port, '/version', undefined);
    expect(missing.status).toBe(400);
  });
});
