import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, requestForLog } from '../../src/core/logger.js';
import { TransactionService } from '../../src/core/transaction-service.js';
import { buildConnector } from '../../src/connector/server.js';
import { SemiDriver } from '../../src/drivers/semi.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir } from '../helpers.js';

// Issue 17's reproduction: when the app's own error handler throws, Fastify's fallback handler
// logs the request it was given, and its URL held the POS's `key=…&password=…`. Every request a
// service logs goes through requestForLog: the path only, no query string, no header.

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('credentials never reach a log, on any path', () => {
  it("Fastify's fallback handler (the app's error handler made to throw) logs no query string and no Authorization", async () => {
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (line: string) => lines.push(line) } });
    const journal = new SqliteJournal({ path: join(tempDir('log-redaction-'), 'journal.db') });
    cleanups.push(() => journal.close());
    const service = new TransactionService({ journal });
    const driver = new SemiDriver({ url: 'tcp://127.0.0.1:9' });
    service.addTerminal('connector', driver);
    cleanups.push(() => service.close());
    const app = await buildConnector({
      flavour: 'desktop',
      login: 'log',
      password: 'pwd',
      service,
      terminalId: 'connector',
      driver,
      currency: 'USD',
      journalId: () => undefined,
      logger,
    });
    cleanups.push(() => app.close());
    // Reading this error's status throws inside the connector's own error handler, so Fastify's
    // fallback handler takes over and logs the request.
    const poisoned = Object.defineProperty(new Error('boom'), 'statusCode', {
      get() {
        throw new Error('the error handler failed');
      },
    });
    app.get('/boom', () => {
      throw poisoned;
    });
    const answer = await app.inject({
      url: '/boom?key=KEY123&password=SECRET-PASSWORD&pan=4111111111111111',
      headers: { authorization: `Basic ${Buffer.from('log:pwd').toString('base64')}` },
    });
    expect(answer.statusCode).toBe(500);
    const log = lines.join('');
    // The fallback did log the request: the proof that this path was taken.
    expect(log).toContain('"url":"/boom"');
    expect(log).not.toContain('SECRET-PASSWORD');
    expect(log).not.toContain('KEY123');
    expect(log).not.toContain('4111111111111111');
    expect(log).not.toContain('bG9nOnB3ZA');
    expect(log.toLowerCase()).not.toContain('authorization');
  });

  it('requestForLog keeps the method, the path with card numbers masked, and the address; nothing else', () => {
    expect(
      requestForLog({
        method: 'GET',
        url: '/pay/4111111111111111?password=x',
        ip: '127.0.0.1',
        headers: { authorization: 'Basic eA==' },
      }),
    ).toEqual({ method: 'GET', url: '/pay/411111******1111', remoteAddress: '127.0.0.1' });
    expect(requestForLog(undefined)).toEqual({
      method: undefined,
      url: undefined,
      remoteAddress: undefined,
    });
  });
});
