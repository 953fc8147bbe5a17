import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containsPan } from '../../src/core/pan.js';
import { JOURNAL_FILE_NAME } from '../../src/journal/sqlite-journal.js';
import { startCli } from '../cli/run-cli.js';
import { closedPort, tempDir, waitFor } from '../helpers.js';

/** The seeds' own example bodies, verbatim (001 desktop, 003 kiosk). */
const DESKTOP_EXAMPLE = {
  amount: '10,23',
  currency: 'string',
  order_id: 'Order_12345',
  transation_type: 'Debit',
  force_authorization: false,
  cart: {
    european_article_numbering: 4711892728946,
    product_reference: 'NF-a1690',
    type: 'good',
    quantity: 1,
    name: 'My first product',
    unit_price: 8.99,
    tax_rate: 0,
    discount: 0,
    total_amount: 8.99,
  },
  customer: { id: 283749291, firstname: 'John', lastname: 'Doe', email: '[email protected]' },
  custom_data: { shop: 'Opera', vendor: 'Mario', newCustomer: true, event: 42 },
};
const KIOSK_EXAMPLE = {
  amount: 100,
  orderId: 'Order_12345',
  currency: 'EUR',
  basket: DESKTOP_EXAMPLE.cart,
  customer: DESKTOP_EXAMPLE.customer,
  customData: DESKTOP_EXAMPLE.custom_data,
};

const LOGIN = 'log';
const PASSWORD = 'pwd';
const AUTH = `Basic ${Buffer.from(`${LOGIN}:${PASSWORD}`).toString('base64')}`;

/** A back office that checks its Basic Auth, records bodies, and fails the first `failFirst` calls. */
interface BackOffice {
  readonly url: string;
  readonly bodies: unknown[];
  failFirst: number;
  close(): Promise<void>;
}

async function backOffice(): Promise<BackOffice> {
  const bodies: unknown[] = [];
  const office: BackOffice = {
    url: '',
    bodies,
    failFirst: 0,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((request: IncomingMessage, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    request.on('end', () => {
      const expected = `Basic ${Buffer.from('hipay-user:hipay-secret').toString('base64')}`;
      if (request.headers.authorization !== expected) return void response.writeHead(401).end();
      if (office.failFirst > 0) {
        office.failFirst--;
        return void response.writeHead(500).end();
      }
      bodies.push(JSON.parse(text));
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(office, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`,
  });
}

interface Connector {
  readonly url: string;
  readonly child: ChildProcess;
  readonly dir: string;
  stop(): Promise<void>;
}

/** Starts `ecr-bridge connector start --config <file>` as a real process. */
async function connector(
  lines: Record<string, string>,
  dir = tempDir('connector-'),
): Promise<Connector> {
  const port = await closedPort();
  const config = join(dir, 'config.txt');
  writeFileSync(
    config,
    Object.entries({
      LOCAL_PORT: String(port),
      TERMINAL_MANAGER_LOGIN: LOGIN,
      TERMINAL_MANAGER_PWD: PASSWORD,
      HIPAY_LOGIN: 'hipay-user',
      HIPAY_PWD: 'hipay-secret',
      DATA_DIR: join(dir, 'data'),
      ...lines,
    })
      .map(([key, value]) => `${key}=${value}`)
      .join('\n'),
  );
  const { child, done } = startCli(['connector', 'start', '--config', config, '--json']);
  const first = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('\n')) resolve(out.split('\n')[0] as string);
    });
    void done.then((run) => reject(new Error(`connector exited ${run.code}: ${run.stderr}`)));
  });
  const info = JSON.parse(first) as { url: string };
  return {
    url: info.url,
    child,
    dir,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await done;
    },
  };
}

async function post(
  base: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const response = await fetch(`${base}/`, {
    method: 'POST',
    headers: { authorization: AUTH, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === '' ? null : JSON.parse(text),
  };
}

async function get(base: string, path: string, auth = AUTH) {
  const response = await fetch(`${base}${path}`, { headers: { authorization: auth } });
  return { status: response.status, body: (await response.json()) as unknown };
}

let office: BackOffice;
let kiosk: Connector;
let desktop: Connector;

beforeAll(async () => {
  office = await backOffice();
  [kiosk, desktop] = await Promise.all([
    connector({
      CONNECTOR_FLAVOUR: 'kiosk',
      TERMINAL_URL: 'simulator:concert',
      NOTIFY_URL: office.url,
    }),
    connector({
      CONNECTOR_FLAVOUR: 'desktop',
      TERMINAL_URL: 'simulator:concert',
      NOTIFY_URL: office.url,
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([kiosk?.stop(), desktop?.stop()]);
  await office?.close();
});

describe('the kiosk connector (seed 003), a real process over HTTP', () => {
  it("the seed's example body, verbatim: Success in an array, masked receipt and ticket, basket ignored and said so, the back office notified once", async () => {
    const before = office.bodies.length;
    const { status, body } = await post(kiosk.url, KIOSK_EXAMPLE);
    expect(status).toBe(200);
    const [answer] = body as Record<string, unknown>[];
    expect(answer).toMatchObject({
      status: 'Success',
      error: null,
      amount: 100,
      currency: 'EUR',
      orderId: 'Order_12345',
      basket: {},
      notificationHipaySent: true,
      numberOfNotificationSent: 1,
      customData: KIOSK_EXAMPLE.customData,
      ecrBridge: { outcome: 'approved', cartProblem: expect.stringMatching(/basket ignored/) },
    });
    // Masked as the seed shows it: the receipt `123456XXXXXX7890`, the ticket the last 4 only.
    expect((answer?.receipt as Record<string, string>).primaryAccountNumber).toBe(
      '476173XXXXXX0010',
    );
    expect(answer?.ticket).toContain('|XXXXXXXXXXXX0010|');
    expect(containsPan(JSON.stringify(body))).toBe(false);
    expect(office.bodies.length).toBe(before + 1);
    expect(containsPan(JSON.stringify(office.bodies.at(-1)))).toBe(false);
  });

  it('the same orderId again returns the stored result: nothing charged or notified twice', async () => {
    const before = office.bodies.length;
    const { body } = await post(kiosk.url, KIOSK_EXAMPLE);
    expect((body as Record<string, unknown>[])[0]).toMatchObject({
      status: 'Success',
      ecrBridge: { replayed: true },
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(office.bodies.length).toBe(before);
  });

  it('bad input, in the kiosk shape: missing orderId, 3 decimals for EUR, unknown currency, invalid JSON, wrong content type, body too large', async () => {
    const cases: [unknown, Record<string, string>, number, string, string?][] = [
      [{ amount: 10 }, {}, 400, 'INVALID_INPUT', 'orderId'],
      [{ amount: '10,234', orderId: 'B-1' }, {}, 400, 'INVALID_AMOUNT', 'amount'],
      [{ amount: 10, orderId: 'B-2', currency: 'XYZ' }, {}, 400, 'INVALID_CURRENCY', 'currency'],
      ['{"amount": 10, "orderId": ', {}, 400, 'INVALID_INPUT', 'body'],
      ['amount=10', { 'content-type': 'text/plain' }, 415, 'INVALID_INPUT', 'content-type'],
      [
        JSON.stringify({ amount: 10, orderId: 'B-3', customData: { pad: 'x'.repeat(70_000) } }),
        {},
        413,
        'INVALID_INPUT',
        'body',
      ],
    ];
    for (const [body, headers, status, code, field] of cases) {
      const answer = await post(kiosk.url, body, headers);
      expect(answer.status, JSON.stringify(answer.body)).toBe(status);
      expect(
        (answer.body as { error: { code: string; field?: string } }[])[0]?.error,
      ).toMatchObject({
        code,
        ...(field === undefined ? {} : { field }),
      });
    }
  });

  it('unknown fields are ignored, never echoed back', async () => {
    const { status, body } = await post(kiosk.url, {
      amount: 5,
      orderId: 'U-1',
      surprise: '<script>alert(1)</script>',
    });
    expect(status).toBe(200);
    expect(JSON.stringify(body)).not.toContain('surprise');
  });

  it('maintenance: /version and /config as arrays; /reset and /tlc unsupported for Concert; /cancel with nothing in flight', async () => {
    expect((await get(kiosk.url, '/version')).body).toEqual([
      { version: expect.any(String), type: 'ecr-bridge', os: expect.any(String) },
    ]);
    expect((await get(kiosk.url, '/config')).body).toEqual([
      expect.objectContaining({ protocol: 'concert' }),
    ]);
    expect((await get(kiosk.url, '/cancel')).body).toEqual([{ cancelled: false }]);
    expect((await get(kiosk.url, '/check')).body).toEqual([
      { cr: '0', card: '0', call: '0', periph: '0' },
    ]);
    for (const path of ['/reset', '/tlc']) {
      const answer = await get(kiosk.url, path);
      expect(answer.status).toBe(501);
      expect(answer.body).toMatchObject([{ error: { code: 'UNSUPPORTED_OPERATION' } }]);
    }
  });
});

describe('the desktop connector (seed 001), a real process over HTTP', () => {
  it('the seed\'s example body verbatim has currency "string": refused naming the field, nothing charged', async () => {
    const { status, body } = await post(desktop.url, DESKTOP_EXAMPLE);
    expect(status).toBe(400);
    expect(body).toMatchObject({
      paymentStatus: 'FAILURE',
      errorCode: 'INVALID_CURRENCY',
      field: 'currency',
    });
  });

  it('with EUR it pays: SUCCESS, the amount echoed as sent ("10,23"), the cart that does not add up replaced by {}', async () => {
    const { status, body } = await post(desktop.url, {
      ...DESKTOP_EXAMPLE,
      currency: 'EUR',
      order_id: 'D-1',
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      paymentStatus: 'SUCCESS',
      notificationHipaySent: true,
      numberOfNotificationSent: 1,
      amount: '10,23',
      currency: 'EUR',
      orderId: 'D-1',
      transationType: 'Debit',
      cart: {},
      customData: DESKTOP_EXAMPLE.custom_data,
    });
  });

  it('no currency → EUR, as in the seeds; no cart → an empty one, and nothing to complain about', async () => {
    const { body } = await post(desktop.url, { amount: 6, order_id: 'NOCUR-1' });
    expect(body).toMatchObject({ paymentStatus: 'SUCCESS', currency: 'EUR', cart: {} });
    expect((body as { ecrBridge: Record<string, unknown> }).ecrBridge.cartProblem).toBeUndefined();
  });

  it('a declined payment: FAILURE with errorCode and errorDescription; no order id → one is generated', async () => {
    const { body } = await post(desktop.url, { amount: 10.51, currency: 'EUR' });
    expect(body).toMatchObject({ paymentStatus: 'FAILURE', errorCode: 'DECLINED' });
    expect((body as { orderId: string }).orderId).toMatch(/^ECR-/);
  });

  it('force_authorization reaches the Concert terminal (it can force); a Credit is a refund', async () => {
    expect(
      (
        await post(desktop.url, {
          amount: 3,
          currency: 'EUR',
          order_id: 'F-1',
          force_authorization: true,
        })
      ).body,
    ).toMatchObject({
      paymentStatus: 'SUCCESS',
      forceAuthorization: true,
    });
    expect(
      (
        await post(desktop.url, {
          amount: 2,
          currency: 'EUR',
          order_id: 'C-1',
          transaction_type: 'Credit',
        })
      ).body,
    ).toMatchObject({
      paymentStatus: 'SUCCESS',
      transationType: 'Credit',
    });
  });

  it('a second payment while one is in flight → 409 TERMINAL_BUSY at once; the first one completes', async () => {
    // Amounts ending in 56 answer after the simulator's slow delay (5 s).
    const slow = post(desktop.url, { amount: 1.56, currency: 'EUR', order_id: 'BUSY-1' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const second = await post(desktop.url, { amount: 2, currency: 'EUR', order_id: 'BUSY-2' });
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ errorCode: 'TERMINAL_BUSY' });
    const stop = await get(desktop.url, '/stop');
    expect(stop).toMatchObject({ status: 409, body: { stopped: false } });
    expect((await slow).body).toMatchObject({ paymentStatus: 'SUCCESS' });
  });
});

describe('authentication', () => {
  it('no credentials or wrong ones → 401 with WWW-Authenticate; after 5 failures → 429 with Retry-After, even with the right ones', async () => {
    const own = await connector({ TERMINAL_URL: 'simulator:concert' });
    try {
      const none = await fetch(`${own.url}/version`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm="ecr-bridge"/);
      const wrong = `Basic ${Buffer.from('log:nope').toString('base64')}`;
      // Counted per login: a stale script with another login does not lock the POS out.
      const other = `Basic ${Buffer.from('monitor:old').toString('base64')}`;
      for (let i = 0; i < 6; i++) await get(own.url, '/version', other);
      expect((await get(own.url, '/version')).status).toBe(200);
      for (let i = 0; i < 5; i++) expect((await get(own.url, '/version', wrong)).status).toBe(401);
      const blocked = await fetch(`${own.url}/version`, { headers: { authorization: AUTH } });
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await own.stop();
    }
  });
});

describe('the terminal and the back office failing', () => {
  it('terminal unreachable → FAILURE TERMINAL_UNREACHABLE, nothing notified (no transaction happened)', async () => {
    const own = await connector({
      TERMINAL_URL: `concert+tcp://127.0.0.1:${await closedPort()}`,
      NOTIFY_URL: office.url,
    });
    try {
      const before = office.bodies.length;
      const { status, body } = await post(own.url, {
        amount: 5,
        currency: 'EUR',
        order_id: 'UN-1',
      });
      expect(status).toBe(200);
      expect(body).toMatchObject({
        paymentStatus: 'FAILURE',
        errorCode: 'TERMINAL_UNREACHABLE',
        notificationHipaySent: false,
      });
      expect(office.bodies.length).toBe(before);
    } finally {
      await own.stop();
    }
  });

  it('a back office answering 500 → notificationHipaySent false in the answer, then delivered by the retry loop', async () => {
    office.failFirst = 1;
    const before = office.bodies.length;
    const { body } = await post(desktop.url, { amount: 4, currency: 'EUR', order_id: 'BO-1' });
    expect(body).toMatchObject({
      paymentStatus: 'SUCCESS',
      notificationHipaySent: false,
      numberOfNotificationSent: 1,
    });
    await waitFor(() => office.bodies.length === before + 1, 15_000, 'the retried notification');
    expect(office.bodies.at(-1)).toMatchObject({ reference: 'BO-1' });
  });

  it('killed with SIGKILL after the card was read → restarted → the POS retry with the same order id gets the stored outcome (unknown), never a second charge', async () => {
    const sim = startCli([
      'simulate',
      'concert',
      '--tcp',
      '0',
      '--control-port',
      '0',
      '--slow-answer',
      '3000',
      '--json',
    ]);
    const simInfo = await new Promise<{ tcpUrl: string; ledgerUrl: string }>((resolve) => {
      let out = '';
      sim.child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (out.includes('\n'))
          resolve(
            JSON.parse(out.split('\n')[0] as string) as { tcpUrl: string; ledgerUrl: string },
          );
      });
    });
    const charges = async () =>
      ((await (await fetch(simInfo.ledgerUrl)).json()) as { count: number }).count;
    const dir = tempDir('connector-kill-');
    const lines = { TERMINAL_URL: simInfo.tcpUrl.replace('tcp://', 'concert+tcp://') };
    try {
      const first = await connector(lines, dir);
      const paying = post(first.url, { amount: 7.56, currency: 'EUR', order_id: 'KILL-1' }).catch(
        () => null,
      );
      const deadline = Date.now() + 10_000;
      while ((await charges()) === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      first.child.kill('SIGKILL');
      await paying;
      await first.stop();
      expect(await charges()).toBe(1);

      const second = await connector(lines, dir);
      try {
        const { status, body } = await post(second.url, {
          amount: 7.56,
          currency: 'EUR',
          order_id: 'KILL-1',
        });
        // Not a decline: a vendor client must take its error path, not pay again.
        expect(status).toBe(504);
        expect(body).toMatchObject({
          paymentStatus: 'FAILURE',
          errorCode: 'OUTCOME_UNKNOWN',
          ecrBridge: { outcome: 'unknown', replayed: true },
        });
        await new Promise((r) => setTimeout(r, 3_500));
        expect(await charges()).toBe(1);
      } finally {
        await second.stop();
      }
    } finally {
      sim.child.kill('SIGTERM');
      await sim.done;
    }
  }, 60_000);

  it('GET /stop with nothing in flight answers stopped and the process exits 0', async () => {
    const own = await connector({ TERMINAL_URL: 'simulator:concert' });
    const answer = await get(own.url, '/stop');
    expect(answer).toMatchObject({
      status: 200,
      body: { stopped: true, message: 'TP-Manager stopped' },
    });
    await waitFor(() => own.child.exitCode !== null, 10_000, 'the connector to exit');
    expect(own.child.exitCode).toBe(0);
  });
});

/** Seed 003, "Fill in the setup file", the Linux table, written out as config.txt, verbatim. */
const SEED_LINUX_CONFIG = [
  'SERIAL_PORT=/dev/ttyUSB0',
  'LOCAL_PORT=8080',
  'TERMINAL_MANAGER_LOGIN=log',
  'TERMINAL_MANAGER_PWD=pwd',
  'HIPAY_LOGIN=99999999.stage-secure-gateway.hipay-tpp.com',
  'HIPAY_PWD=Test_XXXXXXXXXXXXXXXXXXXXXXXX',
  'UPDATE_TIME=04:00',
].join('\n');

/** The keys of seed 003's example receipt, in the seed's order (copied from the seed). */
const SEED_RECEIPT_KEYS = [
  'ticketHeader',
  'localDate',
  'localTime',
  'acceptor',
  'transactionType',
  'contractNumber',
  'SIRET',
  'activity',
  'paymentType',
  'siteType',
  'primaryAccountNumber',
  'TASA',
  'cardAppExpiry',
  'serviceCode',
  'crypto',
  'currencyNumCode',
  'acceptationSystemNum',
  'transactionNumber',
  'transactionFileNumber',
  'readingMode',
  'authorizationNumber',
  'forceCode',
  'amount',
  'currencyAlphaCode',
  'currencyFractionPart',
  'counterValueAmount',
  'counterValueCurrencyAlphaCode',
  'counterValueCurrencyFractionPart',
  'inclusiveAmount',
  'ticketFooter',
  'AID',
  'label',
];

/** Resolves with the first line a child prints on stdout; rejects if it exits first. */
function firstLine(child: ChildProcess, done: Promise<{ code: number | null; stderr: string }>) {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('\n')) resolve(out.split('\n')[0] as string);
    });
    void done.then((run) => reject(new Error(`exited ${run.code}: ${run.stderr}`)));
  });
}

describe('a new user: the seed 003 Linux config.txt verbatim, `connector start --data-dir`', () => {
  it('the kiosk API over a real pty: declined first (POST /next), the same body again is a new attempt: a one-element array, Success, the seed’s orderId and the 32 receipt keys; then the stored answer, the terminal charged once', async () => {
    const sim = startCli(['simulate', 'concert', '--pty', '--control-port', '0', '--json']);
    const dir = tempDir('connector-seed-');
    let started: ReturnType<typeof startCli> | undefined;
    try {
      const { device, ledgerUrl } = JSON.parse(await firstLine(sim.child, sim.done)) as {
        device: string;
        ledgerUrl: string;
      };
      const port = await closedPort();
      // Only SERIAL_PORT is pointed at the simulator, and LOCAL_PORT at a free port: the
      // seed's 8080 may be taken on a shared machine (other suites, the demo); nothing else moves.
      const text = SEED_LINUX_CONFIG.replace(
        'SERIAL_PORT=/dev/ttyUSB0',
        `SERIAL_PORT=${device}`,
      ).replace('LOCAL_PORT=8080', `LOCAL_PORT=${port}`);
      writeFileSync(join(dir, 'config.txt'), `${text}\n`);
      started = startCli(['connector', 'start', '--data-dir', dir, '--json']);
      const info = JSON.parse(await firstLine(started.child, started.done)) as {
        url: string;
        flavour: string;
        config: string | null;
        dataDir: string;
      };
      expect(info).toMatchObject({
        flavour: 'kiosk',
        config: join(dir, 'config.txt'),
        dataDir: dir,
        url: `http://127.0.0.1:${port}`,
      });

      // The cashier's first card is declined: queued on the simulator's control port, so the
      // seed's own amount can be declined and then approved (docs/simulators.md).
      const control = ledgerUrl.replace(/\/ledger$/, '');
      const queued = await fetch(`${control}/next`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ scenario: 'declined' }),
      });
      expect(queued.status).toBe(200);
      const declined = await post(info.url, KIOSK_EXAMPLE);
      expect(declined.status).toBe(200);
      const [refusal] = declined.body as Record<string, unknown>[];
      expect(refusal).toMatchObject({
        orderId: 'Order_12345',
        ecrBridge: { outcome: 'declined', attempt: 1, replayed: false },
      });
      expect(refusal?.status).not.toBe('Success');
      expect(Object.keys(refusal?.receipt as object)).toEqual(SEED_RECEIPT_KEYS);

      // Another card: the POS sends the same body, unchanged. A new attempt, approved.
      const first = await post(info.url, KIOSK_EXAMPLE);
      expect(first.status).toBe(200);
      expect(Array.isArray(first.body)).toBe(true);
      const answers = first.body as Record<string, unknown>[];
      expect(answers).toHaveLength(1);
      const [answer] = answers;
      expect(answer).toMatchObject({
        status: 'Success',
        error: null,
        orderId: 'Order_12345',
        amount: 100,
        currency: 'EUR',
        customData: KIOSK_EXAMPLE.customData,
      });
      const receipt = answer?.receipt as Record<string, string>;
      expect(Object.keys(receipt)).toEqual(SEED_RECEIPT_KEYS);
      const ledger = async () =>
        (await (await fetch(ledgerUrl)).json()) as {
          count: number;
          charges: { reference: string; maskedPan: string }[];
        };
      const charged = await ledger();
      expect(charged.count).toBe(1);
      expect(answer?.ecrBridge).toMatchObject({ outcome: 'approved', attempt: 2, replayed: false });
      // The terminal's own transaction number (the answer's private field), as the seed shows it.
      const terminalTxId = (charged.charges[0] as { terminalTxId?: string }).terminalTxId ?? '';
      expect(terminalTxId).not.toBe('');
      expect(receipt.transactionNumber).toBe(terminalTxId.slice(-6).padStart(6, '0'));
      // The card the terminal read, in the seed's masking.
      expect(receipt.primaryAccountNumber).toBe(charged.charges[0]?.maskedPan.replace(/\*/g, 'X'));
      expect(receipt.primaryAccountNumber).toMatch(/^\d{6}X+\d{4}$/);
      expect(containsPan(JSON.stringify(first.body))).toBe(false);

      const again = await post(info.url, KIOSK_EXAMPLE);
      expect(again.status).toBe(200);
      const [replay] = again.body as Record<string, unknown>[];
      expect(replay).toMatchObject({
        status: 'Success',
        ecrBridge: { replayed: true, attempt: 2 },
      });
      expect(replay?.receipt).toEqual(receipt);
      expect(replay?.ticket).toBe(answer?.ticket);
      expect((await ledger()).count).toBe(1);
      // The journal lives in the data directory itself, beside config.txt.
      expect(existsSync(join(dir, JOURNAL_FILE_NAME))).toBe(true);
    } finally {
      if (started !== undefined) {
        started.child.kill('SIGTERM');
        await started.done;
      }
      sim.child.kill('SIGTERM');
      await sim.done;
    }
  }, 60_000);
});
