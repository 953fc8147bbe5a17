import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Rng } from './harness.js';
import type { Delivery } from './invariants.js';

export const HIPAY_LOGIN = 'faults-office';
export const HIPAY_PASSWORD = 'faults-office-secret';
export const POS_LOGIN = 'log';
export const POS_PASSWORD = 'pwd';

/** One POST the back office got, and whether it acknowledged it. */
export interface Received extends Delivery {
  readonly acknowledged: boolean;
  /** The attempt under the reference the notification names. */
  readonly attempt: number | undefined;
}

/**
 * A real HTTP back office on 127.0.0.1 (the connector's NOTIFY_URL) that records every
 * notification and, when given an Rng and a failure chance, now and then answers 500 or drops
 * the connection without an answer: the notifier must retry until it is acknowledged.
 */
export class BackOffice {
  readonly received: Received[] = [];
  /** Draws the failures; none while undefined. */
  rng: Rng | undefined;
  failChance = 0;
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    const expected = `Basic ${Buffer.from(`${HIPAY_LOGIN}:${HIPAY_PASSWORD}`).toString('base64')}`;
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        if (request.headers.authorization !== expected) return void response.writeHead(401).end();
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          reference: string;
          outcome: string;
          attempt?: number;
        };
        const draw = this.rng === undefined ? 1 : this.rng.next();
        const fails = draw < this.failChance;
        this.received.push({
          reference: body.reference,
          outcome: body.outcome,
          attempt: body.attempt,
          idempotencyKey: String(request.headers['idempotency-key'] ?? ''),
          acknowledged: !fails,
        });
        if (!fails) return void response.writeHead(200).end('{"ok":true}');
        // Half of the failures answer 500, the others never answer: the socket just goes.
        if (draw < this.failChance / 2) return void response.writeHead(500).end();
        request.socket.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`;
    return this;
  }

  /** Notifications of these references, acknowledged ones only unless `all`. */
  deliveries(references: ReadonlySet<string>, all = false): Received[] {
    return this.received.filter((r) => references.has(r.reference) && (all || r.acknowledged));
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** What the connector answered a POS payment (desktop flavour). */
export interface PosAnswer {
  readonly status: number;
  readonly outcome: string | undefined;
  readonly replayed: boolean | undefined;
  /** Which attempt under the order id the answer is about. */
  readonly attempt: number | undefined;
}

/** `10,23` for 1023 minor units: the desktop seed's decimal comma. */
function decimalComma(minor: number): string {
  return `${Math.floor(minor / 100)},${String(minor % 100).padStart(2, '0')}`;
}

/** A POS paying through the connector's HiPay-compatible `POST /`. */
export async function posPay(base: string, orderId: string, minor: number): Promise<PosAnswer> {
  const response = await fetch(`${base}/`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${POS_LOGIN}:${POS_PASSWORD}`).toString('base64')}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ amount: decimalComma(minor), currency: 'USD', order_id: orderId }),
  });
  const body = (await response.json()) as {
    ecrBridge?: { outcome?: string; replayed?: boolean; attempt?: number };
  };
  return {
    status: response.status,
    outcome: body.ecrBridge?.outcome,
    replayed: body.ecrBridge?.replayed,
    attempt: body.ecrBridge?.attempt,
  };
}

/** The config.txt lines of a connector in front of a SEMI terminal, reporting to `office`. */
export function connectorConfig(
  terminalUrl: string,
  office: BackOffice,
  dataDir: string,
  port: number,
): string {
  return Object.entries({
    LOCAL_PORT: String(port),
    TERMINAL_MANAGER_LOGIN: POS_LOGIN,
    TERMINAL_MANAGER_PWD: POS_PASSWORD,
    HIPAY_LOGIN,
    HIPAY_PWD: HIPAY_PASSWORD,
    NOTIFY_URL: office.url,
    TERMINAL_URL: terminalUrl,
    CURRENCY: 'USD',
    DATA_DIR: dataDir,
  })
    .map(([key, value]) => `${key}=${value}`)
    .join('\n');
}
