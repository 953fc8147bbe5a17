import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Notifier, type NotifierOptions } from '../../src/connector/notifier.js';
import { createLogger } from '../../src/core/logger.js';
import { containsPan } from '../../src/core/pan.js';
import type { DriverOutcome, Outcome } from '../../src/core/transaction.js';
import type { JournalRow, NotificationRow, Owner } from '../../src/core/journal-port.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { closedPort, tempDir, thrownBy, waitFor } from '../helpers.js';

const LOGIN = 'hipay-api-login';
const PASSWORD = 'S3cret-pa55word';
const owner: Owner = { pid: 2001, token: 'notifier-test' };

/** What the fake back office answers, call after call: a status, a delay, or no answer at all. */
type Answer = number | 'hang' | { readonly afterMs: number; readonly status: number };

interface Post {
  readonly path: string;
  readonly authorized: boolean;
  readonly idempotencyKey: string | undefined;
  readonly contentType: string | undefined;
  readonly body: string;
}

interface BackOffice {
  readonly url: string;
  readonly posts: Post[];
}

const servers: Server[] = [];
const notifiers: Notifier[] = [];
const journals: SqliteJournal[] = [];

afterEach(async () => {
  await Promise.all(notifiers.splice(0).map((notifier) => notifier.stop()));
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
  for (const journal of journals.splice(0)) journal.close();
});

/**
 * A back office on 127.0.0.1: checks Basic Auth (401 when wrong), records every POST, then
 * answers with the next of `answers` (200 once they run out).
 */
async function backOffice(answers: Answer[] = []): Promise<BackOffice> {
  const expected = `Basic ${Buffer.from(`${LOGIN}:${PASSWORD}`).toString('base64')}`;
  const posts: Post[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const authorized = request.headers.authorization === expected;
      posts.push({
        path: request.url ?? '',
        authorized,
        idempotencyKey: request.headers['idempotency-key'] as string | undefined,
        contentType: request.headers['content-type'],
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const answer = authorized ? (answers.shift() ?? 200) : 401;
      const send = (status: number): void => {
        response.writeHead(status, {
          'content-type': 'application/json',
          ...(status === 302 ? { location: '/elsewhere' } : {}),
        });
        // A body the notifier must never keep or log.
        response.end(JSON.stringify({ status, secret: 'response-body-never-kept' }));
      };
      if (answer === 'hang') return;
      if (typeof answer === 'number') send(answer);
      else setTimeout(() => send(answer.status), answer.afterMs);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/notifications`, posts };
}

function openJournal(path = join(tempDir('notifier-'), 'ecr-bridge.db')): SqliteJournal {
  const journal = new SqliteJournal({ path });
  journals.push(journal);
  return journal;
}

function notifier(
  journal: SqliteJournal,
  url: string,
  options: Partial<NotifierOptions> = {},
): Notifier {
  const created = new Notifier({
    journal,
    url,
    login: LOGIN,
    password: PASSWORD,
    retryBaseMs: 20,
    retryMaxMs: 80,
    pollIntervalMs: 10,
    requestTimeoutMs: 2_000,
    ...options,
  });
  notifiers.push(created);
  return created;
}

/** A payment journaled the way TransactionService does it — claim, sent, outcome — and nothing more. */
function settled(
  journal: SqliteJournal,
  reference: string,
  outcome: Outcome = 'approved',
  extra: Partial<DriverOutcome> = {},
): JournalRow {
  const claim = journal.claim({
    merchantId: 'default',
    terminalId: 'connector',
    reference,
    kind: 'sale',
    amountMinor: 1023,
    currency: 'EUR',
    method: 'card',
    owner,
  });
  if (claim.type !== 'claimed') throw new Error('expected a claim');
  journal.markSent(claim.row.id, owner);
  return journal.complete(claim.row.id, owner, {
    outcome,
    ...(outcome === 'approved'
      ? {
          approvalCode: '123456',
          maskedPan: '411111******1111',
          cardBrand: 'VISA',
          terminalTxId: 'T-77',
        }
      : {}),
    ...extra,
  });
}

function notification(journal: SqliteJournal, row: JournalRow): NotificationRow {
  const found = journal.notificationFor(row.id);
  if (found === undefined) throw new Error(`no notification for ${row.reference}`);
  return found;
}

describe('Notifier: the back-office outbox', () => {
  it('delivered on the first try: one POST with Basic Auth, the idempotency key and a masked JSON body', async () => {
    const office = await backOffice();
    const journal = openJournal();
    const logPath = join(tempDir('notifier-log-'), 'notifier.log');
    const logger = createLogger({
      level: 'debug',
      destination: pino.destination({ dest: logPath, sync: true }),
    });
    const row = settled(journal, 'Order_12345');
    const sender = notifier(journal, office.url, { logger });

    expect(await sender.notify(row.id, 2_000)).toEqual({ sent: true, attempts: 1 });

    const stored = notification(journal, row);
    expect(stored).toMatchObject({ state: 'sent', attempts: 1, lastError: undefined });
    expect(office.posts).toHaveLength(1);
    const post = office.posts[0] as Post;
    expect(post).toMatchObject({
      path: '/notifications',
      authorized: true,
      idempotencyKey: stored.idempotencyKey,
      contentType: 'application/json',
    });
    expect(JSON.parse(post.body)).toEqual({
      reference: 'Order_12345',
      terminalId: 'connector',
      kind: 'sale',
      amount: '10.23',
      currency: 'EUR',
      outcome: 'approved',
      attempt: 1,
      approvalCode: '123456',
      maskedPan: '411111******1111',
      cardBrand: 'VISA',
      terminalTxId: 'T-77',
      createdAt: new Date(row.createdAt).toISOString(),
      completedAt: new Date(row.completedAt ?? 0).toISOString(),
    });
    expect(containsPan(post.body)).toBe(false);
    // Asking again changes nothing: same answer, no second POST.
    expect(await sender.notify(row.id, 2_000)).toEqual({ sent: true, attempts: 1 });
    expect(office.posts).toHaveLength(1);

    const log = readFileSync(logPath, 'utf8');
    expect(log).toContain('acknowledged');
    expect(log).not.toContain(PASSWORD);
    expect(log).not.toContain(Buffer.from(`${LOGIN}:${PASSWORD}`).toString('base64'));
  });

  it('back office answering 500 twice then 200: notify reports the first failure in time, the loop delivers it on the third POST', async () => {
    const office = await backOffice([500, 500]);
    const journal = openJournal();
    const sender = notifier(journal, office.url);
    sender.start();
    const row = settled(journal, 'R-500');
    const started = Date.now();
    expect(await sender.notify(row.id, 2_000)).toEqual({ sent: false, attempts: 1 });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(notification(journal, row)).toMatchObject({ lastError: 'HTTP 500' });

    await waitFor(() => notification(journal, row).state === 'sent', 5_000, 'the retries');
    expect(notification(journal, row)).toMatchObject({
      state: 'sent',
      attempts: 3,
      lastError: 'HTTP 500',
    });
    expect(office.posts).toHaveLength(3);
    const key = notification(journal, row).idempotencyKey;
    expect(office.posts.map((p) => p.idempotencyKey)).toEqual([key, key, key]);
    expect(new Set(office.posts.map((p) => p.body)).size).toBe(1);
    expect(await sender.notify(row.id, 0)).toEqual({ sent: true, attempts: 3 });
  });

  it('back office down (closed port): retried with the error recorded, nothing lost; delivered once it is back', async () => {
    const journal = openJournal();
    const down = notifier(journal, `http://127.0.0.1:${await closedPort()}/notifications`);
    const row = settled(journal, 'R-DOWN');
    expect(await down.notify(row.id, 2_000)).toEqual({ sent: false, attempts: 1 });
    expect(notification(journal, row).lastError).toBe('ECONNREFUSED');
    down.start();
    await waitFor(() => notification(journal, row).attempts >= 3, 5_000, 'retries');
    await down.stop();
    expect(notification(journal, row)).toMatchObject({
      state: 'pending',
      lastError: 'ECONNREFUSED',
    });

    const office = await backOffice();
    notifier(journal, office.url).start();
    await waitFor(() => notification(journal, row).state === 'sent', 5_000, 'delivery');
    expect(office.posts).toHaveLength(1);
  });

  it('across restarts: a new Notifier on the same journal file delivers what the stopped one left pending', async () => {
    const path = join(tempDir('notifier-'), 'ecr-bridge.db');
    const office = await backOffice([503]);
    const first = openJournal(path);
    const row = settled(first, 'R-RESTART');
    const before = notifier(first, office.url);
    expect(await before.notify(row.id, 2_000)).toEqual({ sent: false, attempts: 1 });
    await before.stop();
    first.close();

    // The next process: a new journal object on the file, a new notifier.
    const second = openJournal(path);
    const pending = notification(second, row);
    expect(pending).toMatchObject({ state: 'pending', attempts: 1, lastError: 'HTTP 503' });
    const after = notifier(second, office.url);
    after.start();
    await waitFor(() => notification(second, row).state === 'sent', 5_000, 'delivery');
    expect(office.posts.map((p) => p.idempotencyKey)).toEqual([
      pending.idempotencyKey,
      pending.idempotencyKey,
    ]);
    expect(await after.notify(row.id, 0)).toEqual({ sent: true, attempts: 2 });
  });

  it('a crash between journaling the outcome and enqueueing: start() sweeps and delivers it; failed and unknown ones are not notified', async () => {
    const office = await backOffice();
    const path = join(tempDir('notifier-'), 'ecr-bridge.db');
    // The "crashed" process: outcomes journaled, no notification enqueued.
    const crashed = openJournal(path);
    const approved = settled(crashed, 'R-CRASH');
    const cancelled = settled(crashed, 'R-CANCEL', 'cancelled');
    const failed = settled(crashed, 'R-FAILED', 'failed', { errorCode: 'TERMINAL_REFUSED' });
    const unknown = settled(crashed, 'R-UNKNOWN', 'unknown', { errorCode: 'OUTCOME_UNKNOWN' });
    crashed.close();

    const journal = openJournal(path);
    notifier(journal, office.url).start();
    await waitFor(() => office.posts.length >= 2, 5_000, 'the swept notifications');
    await waitFor(() => notification(journal, cancelled).state === 'sent', 5_000, 'recording');
    expect(notification(journal, approved).state).toBe('sent');
    expect(office.posts.map((p) => JSON.parse(p.body).reference).sort()).toEqual([
      'R-CANCEL',
      'R-CRASH',
    ]);
    expect(journal.notificationFor(failed.id)).toBeUndefined();
    expect(journal.notificationFor(unknown.id)).toBeUndefined();

    // The unknown one is settled later (a late answer): the running loop picks it up.
    journal.resolveUnknown(unknown.id, { outcome: 'declined' });
    await waitFor(() => journal.notificationFor(unknown.id)?.state === 'sent', 5_000, 'resolved');
    expect(office.posts).toHaveLength(3);
  });

  it('a failed transaction is never notified, not even when asked to', async () => {
    const office = await backOffice();
    const journal = openJournal();
    const sender = notifier(journal, office.url);
    const failed = settled(journal, 'R-FAILED', 'failed', { errorCode: 'TERMINAL_REFUSED' });
    const inFlight = journal.claim({
      merchantId: 'default',
      terminalId: 'connector',
      reference: 'R-IN-FLIGHT',
      kind: 'sale',
      amountMinor: 100,
      currency: 'EUR',
      method: 'card',
      owner,
    });
    expect(await sender.notify(failed.id, 1_000)).toEqual({ sent: false, attempts: 0 });
    expect(await sender.notify(inFlight.row.id, 1_000)).toEqual({ sent: false, attempts: 0 });
    await expect(sender.notify(4242, 1_000)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // A witness proves the loop ran: once it is delivered, nothing else was.
    const witness = settled(journal, 'R-WITNESS', 'declined');
    sender.start();
    await waitFor(() => journal.notificationFor(witness.id)?.state === 'sent', 5_000, 'witness');
    expect(office.posts.map((p) => JSON.parse(p.body).reference)).toEqual(['R-WITNESS']);
    expect(journal.notificationFor(failed.id)).toBeUndefined();
    expect(journal.notificationFor(inFlight.row.id)).toBeUndefined();
  });

  it('stop() waits for a delivery in flight, which is recorded; never two POSTs of one notification at once', async () => {
    const office = await backOffice([{ afterMs: 300, status: 200 }]);
    const journal = openJournal();
    const sender = notifier(journal, office.url);
    sender.start();
    const row = settled(journal, 'R-SLOW');
    // waitMs 0: the POST goes on in the background; it counts as made.
    expect(await sender.notify(row.id, 0)).toEqual({ sent: false, attempts: 1 });
    // The loop and repeated calls meanwhile do not POST it again.
    const again = sender.notify(row.id, 100);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await again).toEqual({ sent: false, attempts: 1 });
    const stopping = Date.now();
    await sender.stop();
    expect(Date.now() - stopping).toBeGreaterThanOrEqual(50);
    expect(notification(journal, row)).toMatchObject({ state: 'sent', attempts: 1 });
    expect(office.posts).toHaveLength(1);
    // Stopped: a new notification is enqueued (nothing lost) but not sent by this process.
    const later = settled(journal, 'R-LATER');
    expect(await sender.notify(later.id, 500)).toEqual({ sent: false, attempts: 0 });
    expect(notification(journal, later).state).toBe('pending');
    expect(office.posts).toHaveLength(1);
  });

  it('a hanging back office: the timeout is recorded and the POST retried', async () => {
    const office = await backOffice(['hang']);
    const journal = openJournal();
    const sender = notifier(journal, office.url, { requestTimeoutMs: 200 });
    const row = settled(journal, 'R-HANG');
    const started = Date.now();
    expect(await sender.notify(row.id, 2_000)).toEqual({ sent: false, attempts: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(notification(journal, row).lastError).toBe('TIMEOUT: no answer within 200 ms');
    sender.start();
    await waitFor(() => notification(journal, row).state === 'sent', 5_000, 'the retry');
    expect(notification(journal, row).attempts).toBe(2);
    // At least once: the back office got it twice, under one key.
    expect(office.posts).toHaveLength(2);
    expect(office.posts[0]?.idempotencyKey).toBe(office.posts[1]?.idempotencyKey);
  });

  it('wrong credentials: the 401 is recorded and retried, and the password is never logged', async () => {
    const office = await backOffice();
    const journal = openJournal();
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
    const sender = notifier(journal, office.url, { password: 'wrong-password', logger });
    const row = settled(journal, 'R-401');
    expect(await sender.notify(row.id, 2_000)).toEqual({ sent: false, attempts: 1 });
    expect(notification(journal, row).lastError).toBe('HTTP 401');
    sender.start();
    await waitFor(() => notification(journal, row).attempts >= 3, 5_000, 'retries');
    expect(notification(journal, row)).toMatchObject({ state: 'pending', lastError: 'HTTP 401' });
    expect(office.posts.every((p) => !p.authorized)).toBe(true);
    const log = lines.join('');
    expect(log).toContain('HIPAY_LOGIN');
    expect(log).not.toContain('wrong-password');
    expect(log).not.toContain('response-body-never-kept');
  });

  it('a redirect is no acknowledgement: recorded as its status, retried', async () => {
    const office = await backOffice([302]);
    const journal = openJournal();
    const row = settled(journal, 'R-302');
    expect(await notifier(journal, office.url).notify(row.id, 2_000)).toEqual({
      sent: false,
      attempts: 1,
    });
    expect(notification(journal, row)).toMatchObject({ state: 'pending', lastError: 'HTTP 302' });
    expect(office.posts.map((p) => p.path)).toEqual(['/notifications']);
  });

  it('a custom payload is sent as JSON with card numbers masked, whatever it returns', async () => {
    const office = await backOffice();
    const journal = openJournal();
    const row = settled(journal, 'R-CUSTOM');
    const sender = notifier(journal, office.url, {
      payload: (r) => ({
        order: r.reference,
        note: 'card 4111 1111 1111 1111',
        n: 4111111111111111,
      }),
    });
    expect(await sender.notify(row.id, 2_000)).toEqual({ sent: true, attempts: 1 });
    const body = office.posts[0]?.body ?? '';
    expect(containsPan(body)).toBe(false);
    expect(JSON.parse(body)).toEqual({
      order: 'R-CUSTOM',
      note: 'card 411111******1111',
      n: '411111******1111',
    });
  });

  it('options are checked strictly, and no error repeats a credential', () => {
    const journal = openJournal();
    const make = (options: Record<string, unknown>) => () =>
      new Notifier({ journal, url: 'https://bo.example/notify', ...options } as NotifierOptions);
    expect(thrownBy(make({ url: 'ftp://bo.example/' })).field).toBe('url');
    const withCredentials = thrownBy(make({ url: 'https://user:hunter22@bo.example/' }));
    expect(withCredentials.field).toBe('url');
    expect(withCredentials.message).not.toContain('hunter22');
    expect(thrownBy(make({ password: 'hunter22' })).field).toBe('password');
    expect(thrownBy(make({ login: 'a:b' })).field).toBe('login');
    expect(thrownBy(make({ retryBaseMs: 1_000, retryMaxMs: 10 })).field).toBe('retryMaxMs');
    expect(thrownBy(make({ requestTimeoutMs: 0 })).field).toBe('requestTimeoutMs');
    expect(thrownBy(make({ retries: 3 })).field).toBe('retries');
    expect(() => make({ login: LOGIN, password: PASSWORD })()).not.toThrow();
  });
});
