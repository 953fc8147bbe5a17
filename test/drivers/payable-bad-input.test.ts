import type { IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocketServer, type VerifyClientCallbackAsync, type WebSocket } from 'ws';
import type { DriverRequest } from '../../src/core/driver.js';
import { EcrError } from '../../src/core/errors.js';
import { containsPan } from '../../src/core/pan.js';
import { PayableDriver, type PayableDriverOptions } from '../../src/drivers/payable.js';
import { closedPort, waitFor } from '../helpers.js';

// A fake PAYable terminal built on `ws` directly, so that it can misbehave in ways the simulator
// never does: junk, oversize frames, wrong ids, half-written frames, dropped links.

const LEGACY_GREETING = 'Terminal connection established: PP1';
const SALE: DriverRequest = {
  kind: 'sale',
  reference: 'R1',
  amount: { minor: 2000, currency: 'LKR' },
  wireId: 7,
};
const EXPECTED_REQUEST =
  '{"amount":20.00,"endpoint":"PAYMENT","method":"CARD","order_tracking":"R1","id":7}';

interface FakeTerminalOptions {
  /** First message on each connection; null sends nothing. @default LEGACY_GREETING */
  readonly greeting?: string | null;
  readonly verifyClient?: VerifyClientCallbackAsync;
  /** What the terminal does with each request it receives. */
  readonly onRequest?: (ws: WebSocket, text: string, req: IncomingMessage) => void;
}

interface FakeTerminal {
  readonly port: number;
  readonly url: string;
  /** Every text message the POS sent, in order. */
  readonly received: string[];
  /** The request URL (path + query) of every accepted upgrade. */
  readonly upgradeUrls: string[];
  close(): Promise<void>;
}

const servers: FakeTerminal[] = [];
const drivers: PayableDriver[] = [];

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((driver) => driver.close()));
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function fakeTerminal(options: FakeTerminalOptions = {}): Promise<FakeTerminal> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    ...(options.verifyClient === undefined ? {} : { verifyClient: options.verifyClient }),
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const received: string[] = [];
  const upgradeUrls: string[] = [];
  const sockets = new Set<Socket>();
  const greeting = options.greeting === undefined ? LEGACY_GREETING : options.greeting;
  wss.on('connection', (ws, req) => {
    sockets.add(req.socket);
    upgradeUrls.push(req.url ?? '');
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '<binary>' : String(data);
      received.push(text);
      options.onRequest?.(ws, text, req);
    });
    if (greeting !== null) ws.send(greeting);
  });
  const port = (wss.address() as AddressInfo).port;
  const fake: FakeTerminal = {
    port,
    url: `ws://127.0.0.1:${port}`,
    received,
    upgradeUrls,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        for (const socket of sockets) socket.destroy();
        wss.close(() => resolve());
      }),
  };
  servers.push(fake);
  return fake;
}

function payableDriver(url: string, options: Partial<PayableDriverOptions> = {}): PayableDriver {
  const driver = new PayableDriver({
    url,
    answerTimeoutMs: 2000,
    connectTimeoutMs: 2000,
    ...options,
  });
  drivers.push(driver);
  return driver;
}

describe('PayableDriver against a misbehaving terminal', () => {
  it('malformed JSON answer → unknown PROTOCOL_ERROR, the request was sent', async () => {
    const fake = await fakeTerminal({ onRequest: (ws) => ws.send('{"status":"STATUS_SUCC') });
    const beforeSend = vi.fn();
    const result = await payableDriver(fake.url).execute(SALE, { beforeSend });
    expect(result.outcome).toBe('unknown');
    expect(result.errorCode).toBe('PROTOCOL_ERROR');
    expect(beforeSend).toHaveBeenCalledTimes(1);
    expect(fake.received).toEqual([EXPECTED_REQUEST]);
  });

  it.each([
    { name: 'malformed JSON holding a PAN', answer: 'PAN 4111111111111111' },
    {
      name: 'unknown status holding a PAN',
      answer: '{"status":"S_4111111111111111","request":{"id":7}}',
    },
    {
      name: 'request.id as a PAN string',
      answer: '{"status":"STATUS_SUCCESS","request":{"id":"4111111111111111"}}',
    },
  ])('$name → unknown PROTOCOL_ERROR, and the outcome holds no full PAN', async ({ answer }) => {
    const fake = await fakeTerminal({ onRequest: (ws) => ws.send(answer) });
    const beforeSend = vi.fn();
    const result = await payableDriver(fake.url).execute(SALE, { beforeSend });
    expect(result.outcome).toBe('unknown');
    expect(result.errorCode).toBe('PROTOCOL_ERROR');
    expect(beforeSend).toHaveBeenCalledTimes(1);
    expect(containsPan(JSON.stringify(result))).toBe(false);
  });

  it('answer of exactly 64 KiB → decoded (approved): the transport and codec bounds agree', async () => {
    const base = '{"status":"STATUS_SUCCESS","request":{"id":7}}';
    const fake = await fakeTerminal({
      onRequest: (ws) => ws.send(base + ' '.repeat(64 * 1024 - base.length)),
    });
    const beforeSend = vi.fn();
    const result = await payableDriver(fake.url).execute(SALE, { beforeSend });
    expect(result.outcome).toBe('approved');
    expect(beforeSend).toHaveBeenCalledTimes(1);
  });

  it('answer frame over 64 KiB → unknown OUTCOME_UNKNOWN, the message names the size bound', async () => {
    const fake = await fakeTerminal({
      onRequest: (ws) =>
        ws.send(
          JSON.stringify({ status: 'STATUS_SUCCESS', request: { id: 7 }, pad: 'x'.repeat(70_000) }),
        ),
    });
    const beforeSend = vi.fn();
    const result = await payableDriver(fake.url).execute(SALE, { beforeSend });
    expect(result.outcome).toBe('unknown');
    // The transport refuses the frame before it is decoded (ws maxPayload) and the link closes:
    // the driver reports the lost link, keeping the transport's reason in the message.
    expect(result.errorCode).toBe('OUTCOME_UNKNOWN');
    expect(result.message).toMatch(/exceeded the size bound/);
    expect(beforeSend).toHaveBeenCalledTimes(1);
  });

  it('unknown status → unknown PROTOCOL_ERROR, not approved', async () => {
    const fake = await fakeTerminal({
      onRequest: (ws) => ws.send('{"status":"STATUS_WHATEVER","request":{"id":7}}'),
    });
    const beforeSend = vi.fn();
    const result = await payableDriver(fake.url).execute(SALE, { beforeSend });
    expect(result.outcome).toBe('unknown');
    expect(result.errorCode).toBe('PROTOCOL_ERROR');
    expect(beforeSend).toHaveBeenCalledTimes(1);
  });

  it('an answer for another request id is ignored; the right answer that follows → approved', async () => {
    const fake = await fakeTerminal({
      onRequest: (ws) => {
        ws.send('{"status":"STATUS_FAILED","error":"declined","request":{"id":999}}');
        ws.send(
          '{"approval_code":"408809","card_type":"VISA","status":"STATUS_SUCCESS","request":{"id":7},"txid":26741}',
        );
      },
    });
    const beforeSend = vi.fn();
    const result = await payableDriver(fake.url).execute(SALE, { beforeSend });
    expect(result).toMatchObject({
      outcome: 'approved',
      approvalCode: '408809',
      cardBrand: 'VISA',
      terminalTxId: '26741',
    });
    expect(result.errorCode).toBeUndefined();
    expect(beforeSend).toHaveBeenCalledTimes(1);
  });

  it('only an answer for another request id → unknown OUTCOME_UNKNOWN after answerTimeoutMs', async () => {
    const fake = await fakeTerminal({
      onRequest: (ws) => ws.send('{"status":"STATUS_SUCCESS","request":{"id":999}}'),
    });
    const beforeSend = vi.fn();
    const started = Date.now();
    const result = await payableDriver(fake.url, { answerTimeoutMs: 500 }).execute(SALE, {
      beforeSend,
    });
    const elapsed = Date.now() - started;
    expect(result.outcome).toBe('unknown');
    expect(result.errorCode).toBe('OUTCOME_UNKNOWN');
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(2000);
    expect(beforeSend).toHaveBeenCalledTimes(1);
  });

  it('terminal closes in the middle of an answer frame → unknown OUTCOME_UNKNOWN', async () => {
    const fake = await fakeTerminal({
      onRequest: (_ws, _text, req) => {
        // FIN + text opcode, unmasked, payload length 100; then only 10 bytes of the payload.
        req.socket.write(Buffer.concat([Buffer.from([0x81, 100]), Buffer.from('{"status":')]));
        req.socket.destroy();
      },
    });
    const beforeSend = vi.fn();
    const result = await payableDriver(fake.url).execute(SALE, { beforeSend });
    expect(result.outcome).toBe('unknown');
    expect(result.errorCode).toBe('OUTCOME_UNKNOWN');
    expect(beforeSend).toHaveBeenCalledTimes(1);
  });

  it('terminal drops the link after the request → unknown OUTCOME_UNKNOWN', async () => {
    const fake = await fakeTerminal({ onRequest: (ws) => ws.terminate() });
    const beforeSend = vi.fn();
    const result = await payableDriver(fake.url).execute(SALE, { beforeSend });
    expect(result.outcome).toBe('unknown');
    expect(result.errorCode).toBe('OUTCOME_UNKNOWN');
    expect(result.message).toMatch(/link lost/);
    expect(beforeSend).toHaveBeenCalledTimes(1);
  });

  it('terminal closes cleanly after the request → unknown OUTCOME_UNKNOWN', async () => {
    const fake = await fakeTerminal({ onRequest: (ws) => ws.close(1000, 'bye') });
    const beforeSend = vi.fn();
    const result = await payableDriver(fake.url).execute(SALE, { beforeSend });
    expect(result.outcome).toBe('unknown');
    expect(result.errorCode).toBe('OUTCOME_UNKNOWN');
    expect(beforeSend).toHaveBeenCalledTimes(1);
  });
});

describe('PayableDriver when no payment can have started', () => {
  it('handshake refused with HTTP 404 (wrong token) → failed TERMINAL_AUTH_FAILED, nothing sent', async () => {
    const fake = await fakeTerminal({ verifyClient: (_info, cb) => cb(false, 404) });
    const beforeSend = vi.fn();
    const result = await payableDriver(fake.url, { token: 'wrong', posName: 'POS-1' }).execute(
      SALE,
      { beforeSend },
    );
    expect(result.outcome).toBe('failed');
    expect(result.errorCode).toBe('TERMINAL_AUTH_FAILED');
    expect(result.message).toMatch(/404/);
    // The token never reaches the outcome message.
    expect(result.message).not.toMatch(/wrong/);
    expect(beforeSend).not.toHaveBeenCalled();
    expect(fake.received).toEqual([]);
  });

  it('nothing listening → failed TERMINAL_UNREACHABLE, beforeSend not called', async () => {
    const port = await closedPort();
    const beforeSend = vi.fn();
    const result = await payableDriver(`ws://127.0.0.1:${port}`, { connectAttempts: 1 }).execute(
      SALE,
      { beforeSend },
    );
    expect(result.outcome).toBe('failed');
    expect(result.errorCode).toBe('TERMINAL_UNREACHABLE');
    expect(beforeSend).not.toHaveBeenCalled();
  });

  it('nothing listening, several attempts → still failed TERMINAL_UNREACHABLE', async () => {
    const port = await closedPort();
    const beforeSend = vi.fn();
    const result = await payableDriver(`ws://127.0.0.1:${port}`, { connectAttempts: 3 }).execute(
      SALE,
      { beforeSend },
    );
    expect(result.outcome).toBe('failed');
    expect(result.errorCode).toBe('TERMINAL_UNREACHABLE');
    expect(beforeSend).not.toHaveBeenCalled();
  });

  it('server accepts but never greets → failed TERMINAL_UNREACHABLE after about connectTimeoutMs', async () => {
    const fake = await fakeTerminal({ greeting: null });
    const beforeSend = vi.fn();
    const started = Date.now();
    const result = await payableDriver(fake.url, {
      connectTimeoutMs: 500,
      connectAttempts: 1,
    }).execute(SALE, { beforeSend });
    const elapsed = Date.now() - started;
    expect(result.outcome).toBe('failed');
    expect(result.errorCode).toBe('TERMINAL_UNREACHABLE');
    expect(result.message).toMatch(/no greeting/);
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(1500);
    expect(beforeSend).not.toHaveBeenCalled();
    expect(fake.received).toEqual([]);
  });

  it('first message is not a greeting (an answer) → failed TERMINAL_UNREACHABLE, nothing sent', async () => {
    const fake = await fakeTerminal({
      greeting: '{"status":"STATUS_SUCCESS","request":{"id":7}}',
    });
    const beforeSend = vi.fn();
    const result = await payableDriver(fake.url, { connectAttempts: 1 }).execute(SALE, {
      beforeSend,
    });
    expect(result.outcome).toBe('failed');
    expect(result.errorCode).toBe('TERMINAL_UNREACHABLE');
    expect(beforeSend).not.toHaveBeenCalled();
    expect(fake.received).toEqual([]);
  });

  it('beforeSend throwing → failed, and the terminal receives nothing', async () => {
    const fake = await fakeTerminal({
      onRequest: (ws) => ws.send('{"status":"STATUS_SUCCESS","request":{"id":7}}'),
    });
    const beforeSend = vi.fn(() => {
      throw new Error('disk full');
    });
    const driver = payableDriver(fake.url);
    const result = await driver.execute(SALE, { beforeSend });
    expect(result.outcome).toBe('failed');
    expect(result.errorCode).toBe('JOURNAL_ERROR');
    expect(result.message).toMatch(/not sent/);
    expect(beforeSend).toHaveBeenCalledTimes(1);
    // Give a frame written by mistake time to arrive, then check none did.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(fake.received).toEqual([]);
  });

  it('beforeSend throwing an EcrError → failed with that code', async () => {
    const fake = await fakeTerminal();
    const beforeSend = vi.fn(() => {
      throw new EcrError('JOURNAL_ERROR', 'journal is read-only');
    });
    const result = await payableDriver(fake.url).execute(SALE, { beforeSend });
    expect(result).toMatchObject({ outcome: 'failed', errorCode: 'JOURNAL_ERROR' });
    expect(result.message).toMatch(/journal is read-only/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(fake.received).toEqual([]);
  });
});

describe('PayableDriver with two payments at once', () => {
  it('second execute while the first is connecting → failed TERMINAL_BUSY, one request on the wire', async () => {
    const fake = await fakeTerminal({
      onRequest: (ws, text) => {
        const id = (JSON.parse(text) as { id: number }).id;
        ws.send(`{"status":"STATUS_SUCCESS","request":{"id":${id}}}`);
      },
    });
    const driver = payableDriver(fake.url, { answerTimeoutMs: 500 });
    const firstBeforeSend = vi.fn();
    const secondBeforeSend = vi.fn();
    const hung = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 3000));
    const [first, second] = await Promise.all([
      Promise.race([driver.execute(SALE, { beforeSend: firstBeforeSend }), hung]),
      Promise.race([
        driver.execute({ ...SALE, reference: 'R2', wireId: 8 }, { beforeSend: secondBeforeSend }),
        hung,
      ]),
    ]);
    expect(first).toMatchObject({ outcome: 'approved' });
    expect(second).toMatchObject({ outcome: 'failed', errorCode: 'TERMINAL_BUSY' });
    expect(firstBeforeSend).toHaveBeenCalledTimes(1);
    expect(secondBeforeSend).not.toHaveBeenCalled();
    expect(fake.received).toEqual([EXPECTED_REQUEST]);
  });

  it('second execute while the first awaits its answer → failed TERMINAL_BUSY, first unaffected', async () => {
    let answerFirst: (() => void) | undefined;
    const fake = await fakeTerminal({
      onRequest: (ws) => {
        answerFirst = () => ws.send('{"status":"STATUS_SUCCESS","request":{"id":7}}');
      },
    });
    const driver = payableDriver(fake.url);
    const first = driver.execute(SALE, { beforeSend: vi.fn() });
    await waitFor(() => answerFirst !== undefined, 2000, 'the first request');
    const secondBeforeSend = vi.fn();
    const second = await driver.execute(
      { ...SALE, reference: 'R2', wireId: 8 },
      { beforeSend: secondBeforeSend },
    );
    expect(second).toMatchObject({ outcome: 'failed', errorCode: 'TERMINAL_BUSY' });
    expect(secondBeforeSend).not.toHaveBeenCalled();
    answerFirst?.();
    expect(await first).toMatchObject({ outcome: 'approved' });
    expect(fake.received).toEqual([EXPECTED_REQUEST]);
  });
});

describe('PayableDriver.validate', () => {
  it('currency EUR on an LKR driver → INVALID_CURRENCY on currency', () => {
    const driver = payableDriver('ws://127.0.0.1:1');
    expect(() => driver.validate({ ...SALE, amount: { minor: 2000, currency: 'EUR' } })).toThrow(
      expect.objectContaining({ code: 'INVALID_CURRENCY', field: 'currency' }),
    );
  });

  it("kind 'refund' → UNSUPPORTED_OPERATION on kind", () => {
    const driver = payableDriver('ws://127.0.0.1:1');
    expect(() => driver.validate({ ...SALE, kind: 'refund', originalReference: 'R0' })).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED_OPERATION', field: 'kind' }),
    );
  });

  it('execute refuses an invalid request by throwing, before connecting', async () => {
    const fake = await fakeTerminal();
    const beforeSend = vi.fn();
    await expect(
      payableDriver(fake.url).execute({ ...SALE, kind: 'void' }, { beforeSend }),
    ).rejects.toMatchObject({ code: 'UNSUPPORTED_OPERATION' });
    expect(beforeSend).not.toHaveBeenCalled();
    expect(fake.upgradeUrls).toEqual([]);
  });

  it('a non-WebSocket address → INVALID_TERMINAL_ADDRESS', () => {
    expect(() => new PayableDriver({ url: 'http://127.0.0.1:45454' })).toThrow(
      expect.objectContaining({ code: 'INVALID_TERMINAL_ADDRESS', field: 'url' }),
    );
  });
});

describe('PayableDriver on the wire', () => {
  it('the request is byte-exact and token/pos ride in the upgrade query (new-firmware greeting)', async () => {
    const fake = await fakeTerminal({
      greeting:
        '{"origin":"PP1","request":{"origin":"POS-1"},"status":"STATUS_TERMINAL_AUTHORIZED"}',
      onRequest: (ws) =>
        ws.send(
          '{"origin":"PP1","request":{"id":7},"status":"STATUS_SUCCESS","approval_code":"1"}',
        ),
    });
    const beforeSend = vi.fn();
    const driver = payableDriver(fake.url, { token: 's3cret', posName: 'POS-1' });
    const result = await driver.execute(SALE, { beforeSend });
    expect(result.outcome).toBe('approved');
    expect(beforeSend).toHaveBeenCalledTimes(1);
    expect(fake.received).toEqual([EXPECTED_REQUEST]);
    expect(fake.upgradeUrls).toHaveLength(1);
    const query = new URL(fake.upgradeUrls[0] ?? '', 'ws://localhost').searchParams;
    expect(query.get('token')).toBe('s3cret');
    expect(query.get('pos')).toBe('POS-1');
    expect(driver.serial).toBe('PP1');
    expect(result.details).toMatchObject({ status: 'STATUS_SUCCESS', terminalSerial: 'PP1' });
  });

  it('old-firmware text greeting → accepted, the same byte-exact request', async () => {
    const fake = await fakeTerminal({
      onRequest: (ws) => ws.send('{"request":{"id":7},"status":"STATUS_SUCCESS"}'),
    });
    const beforeSend = vi.fn();
    const driver = payableDriver(fake.url);
    const result = await driver.execute(SALE, { beforeSend });
    expect(result.outcome).toBe('approved');
    expect(fake.received).toEqual([EXPECTED_REQUEST]);
    expect(driver.serial).toBe('PP1');
    expect(fake.upgradeUrls).toEqual(['/']);
  });
});
