import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import { request, type RequestOptions } from 'node:https';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { buildConnector, type ConnectorServerOptions } from '../../src/connector/server.js';
import { TransactionService } from '../../src/core/transaction-service.js';
import { SemiDriver } from '../../src/drivers/semi.js';
import { Gateway, type GatewayOptions } from '../../src/gateway/gateway.js';
import { SqliteTenantStore } from '../../src/gateway/tenants.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { SemiSimulator } from '../../src/simulators/semi/simulator.js';
import { tempDir } from '../helpers.js';

/** Letters only: the suite's card-number scan flags long digit runs. */
export function letters(count: number): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ';
  let text = '';
  for (let i = 0; i < count; i++) text += alphabet[randomInt(alphabet.length)];
  return text;
}

/** Cleanups run after each test, newest first. */
export const cleanups: (() => Promise<unknown> | unknown)[] = [];

export async function runCleanups(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}

/**
 * Runs `start` (for a beforeAll) and takes the cleanups it registered out of the per-test
 * list: they run once, from the returned teardown, after all the tests of the block.
 */
export async function forTheBlock<T>(
  start: () => Promise<T>,
): Promise<{ value: T; teardown: () => Promise<void> }> {
  const mark = cleanups.length;
  const value = await start();
  const mine = cleanups.splice(mark);
  return {
    value,
    teardown: async () => {
      for (const cleanup of mine.reverse()) await cleanup();
    },
  };
}

/** A gateway on free ports over a fresh journal, with one merchant and one terminal. */
export async function startGateway(options: Partial<GatewayOptions> = {}) {
  const dir = tempDir('security-gateway-');
  const journal = new SqliteJournal({ path: join(dir, 'journal.db') });
  cleanups.push(() => journal.close());
  const tenants = new SqliteTenantStore(journal);
  const added = tenants.addMerchant(`shop${letters(6)}`);
  const merchant = { name: added.merchant.name, key: added.key, password: added.password };
  const terminalId = `TERM${letters(8)}`;
  tenants.addTerminal({ terminalId, merchant: merchant.name, terminalType: 'Valor' });
  const gateway = await new Gateway({
    journal,
    tenants,
    tcpPort: 0,
    httpPort: 0,
    cardStepMs: 0,
    ...options,
  }).start();
  cleanups.push(() => gateway.close());
  return { dir, journal, tenants, gateway, merchant, terminalId };
}

/**
 * A desktop connector (login `log`, password `pwd`, with its dashboard) over a SEMI simulator,
 * on a free port, with `options` on top.
 */
export async function startConnector(options: Partial<ConnectorServerOptions> = {}) {
  const simulator = await new SemiSimulator({ wsPort: null, tcpPort: 0, controlPort: 0 }).start();
  cleanups.push(() => simulator.stop());
  const journal = new SqliteJournal({
    path: join(tempDir('security-connector-'), 'ecr-bridge.db'),
  });
  cleanups.push(() => journal.close());
  const service = new TransactionService({ journal, maxQueue: 0 });
  cleanups.push(() => service.close());
  const driver = new SemiDriver({ url: simulator.tcpUrl as string });
  service.addTerminal('connector', driver);
  const app = await buildConnector({
    flavour: 'desktop',
    login: 'log',
    password: 'pwd',
    service,
    terminalId: 'connector',
    driver,
    currency: 'USD',
    journal,
    journalId: () => undefined,
    ...options,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => app.close());
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { port, base: `http://127.0.0.1:${port}` };
}

/** One HTTPS request with Node's own client (not ours), trusting only `ca`. */
export async function httpsCall(
  url: string,
  ca: string,
  options: RequestOptions & { body?: string } = {},
): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  const { body, ...rest } = options;
  const req = request(url, { ca, ...rest });
  req.end(body);
  const [response] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
  let text = '';
  response.setEncoding('utf8');
  for await (const chunk of response) text += chunk as string;
  return { status: response.statusCode ?? 0, headers: response.headers, text };
}

/** A raw TCP client: everything it receives, and when the other side closed it. */
export interface RawClient {
  readonly socket: Socket;
  readonly received: () => string;
  readonly connectedAt: number;
  /** Resolves with the ms from connect to close. */
  readonly closed: Promise<number>;
}

/** A client that never ends or destroys its socket itself: a close is the server's doing. */
export async function rawClient(port: number): Promise<RawClient> {
  const socket = connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  const connectedAt = Date.now();
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) =>
    socket.once('close', () => resolve(Date.now() - connectedAt)),
  );
  return { socket, received: () => text, connectedAt, closed };
}

/**
 * Writes `bytes` one byte every `everyMs` until they run out or the socket closes; never ends
 * the socket (a slow-loris client). Returns how many bytes went out.
 */
export function dribble(client: RawClient, bytes: string, everyMs: number): Promise<number> {
  return new Promise((resolve) => {
    let i = 0;
    const timer = setInterval(() => {
      if (client.socket.destroyed || client.socket.writableEnded || i >= bytes.length) {
        clearInterval(timer);
        resolve(i);
        return;
      }
      client.socket.write(bytes[i] as string);
      i++;
    }, everyMs);
    void client.closed.then(() => {
      clearInterval(timer);
      resolve(i);
    });
  });
}

/** Waits for the server to close `client`, at most `boundMs`; the elapsed ms since connect. */
export async function closedByServer(client: RawClient, boundMs: number): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const elapsed = await Promise.race([
    client.closed,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the server did not close the connection within ${boundMs} ms`)),
        boundMs,
      );
    }),
  ]);
  clearTimeout(timer);
  return elapsed;
}
