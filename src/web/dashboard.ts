import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { LoginGuard } from '../connector/auth.js';
import { sameSecret } from '../core/secret.js';
import { EcrError, invalid, toEcrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { formatAmount, parseAmount } from '../core/money.js';
import { redactPans } from '../core/pan.js';
import { randomLetters } from '../core/random-text.js';
import type { TransactionResult } from '../core/transaction.js';
import type { Awaitable, Journal, JournalRow, NotificationRow } from '../core/journal-port.js';
import { PUBLIC_ID_RULE, isPublicId } from '../journal/public-id.js';

/**
 * The web dashboard (issue 7), one page for both services: the HiPay-compatible connector and
 * the cloud gateway. The page itself is static (`web/`, no build step, no CDN); this module
 * serves it under `/ui/` with a strict Content-Security-Policy, and its JSON API under
 * `/ui/api/`: a cookie session (HttpOnly, SameSite=Strict) opened with the service's own
 * credentials, a CSRF token on every state-changing request, and live updates over
 * server-sent events fed by the journal's change feed.
 */

/** A terminal as the dashboard shows it. */
export interface DashboardTerminal {
  readonly terminalId: string;
  readonly protocol: string;
  readonly serial: string | null;
  readonly status: 'online' | 'offline' | 'busy';
  /** Last heartbeat or message (ms since the epoch), when the service knows it. */
  readonly lastHeartbeatAt: number | undefined;
  readonly model: string | null;
  readonly address: string | null;
}

/** What a service lends the dashboard. `who` is the signed-in scope (a merchant, or the connector). */
export interface DashboardBackend {
  readonly service: 'connector' | 'gateway';
  readonly title: string;
  readonly loginLabel: 'Login' | 'API key';
  /** The currency of a test payment that names none. */
  readonly currency: string;
  readonly journal: Journal;
  /** The scope these credentials open, or undefined. */
  authenticate(login: string, password: string): Promise<string | undefined>;
  terminals(who: string): Awaitable<DashboardTerminal[]>;
  /**
   * Calls `listener` with the terminal whose status may have changed (undefined: any of them);
   * returns how to stop.
   */
  onTerminalsChange(listener: (terminalId: string | undefined) => void): () => void;
  /** May `who` see this transaction? */
  owns(who: string, row: JournalRow): boolean;
  /** The journal filter that keeps `who`'s rows (the gateway: its merchant's). */
  scope(who: string): { readonly merchantId?: string };
  /**
   * Starts a test sale; `onClaimed` is called once it is journaled. Rejects (EcrError) for what
   * cannot be tried (an unknown or offline terminal, a bad amount), before `onClaimed`.
   */
  testPayment(
    who: string,
    terminalId: string,
    amount: { readonly text: string; readonly currency: string },
    reference: string,
    onClaimed: () => void,
  ): Promise<TransactionResult>;
  /** The back-office notification of a transaction (the connector's outbox), if any. */
  notificationFor?(transactionId: number): Awaitable<NotificationRow | undefined>;
}

export interface DashboardOptions {
  readonly logger?: Logger;
  /** @default 12 h */
  readonly sessionTtlMs?: number;
  /** How often the journal's change feed is read while a page listens. @default 250 */
  readonly feedIntervalMs?: number;
  /** Sign-in limits (the gateway shares its POS API's). @default a new LoginGuard */
  readonly guard?: LoginGuard;
}

/** The page's files, read once from the package's `web/` directory. */
const WEB_DIR = new URL('../../web/', import.meta.url);
const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/ui/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/** Strict: only the page's own script, styles and API; no inline code, no framing. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
} as const;

const COOKIE = 'ecr_session';
const MAX_SESSIONS = 10_000;
/** Sessions one scope (a merchant) may hold; past it its own oldest one goes. */
const MAX_SESSIONS_PER_SCOPE = 100;
/** Live streams one session may hold open, and all sessions together. */
const MAX_STREAMS_PER_SESSION = 4;
const MAX_STREAMS = 1_000;
/** A test payment is small: at most this many minor units. */
export const MAX_TEST_PAYMENT_MINOR = 10_000;
const SSE_KEEPALIVE_MS = 15_000;
/** Terminal changes within this long are announced to the pages as one. */
const TERMINALS_DEBOUNCE_MS = 250;
const FEED_BATCH = 500;

interface Session {
  readonly id: string;
  readonly who: string;
  readonly csrf: string;
  expiresAt: number;
  /** Live streams open. */
  streams: number;
  /** A test payment of this session is running. */
  paying: boolean;
}

/** Session ids and CSRF tokens (43 letters of 52: about 245 bits), test references. */
const TOKEN_LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

const LoginBody = z.strictObject({
  login: z.string().min(1, 'is required').max(256, 'must be at most 256 characters'),
  password: z.string().min(1, 'is required').max(256, 'must be at most 256 characters'),
});
const ResolveBody = z.strictObject({
  outcome: z.enum(['approved', 'declined', 'cancelled', 'failed'], {
    error: 'must be approved, declined, cancelled or failed',
  }),
  reason: z
    .string({ error: 'is required' })
    .trim()
    .min(3, 'is required: at least 3 characters saying what the records show')
    .max(500, 'must be at most 500 characters'),
});
const TestBody = z.strictObject({
  terminalId: z.string().min(1, 'is required').max(64, 'must be at most 64 characters'),
  amount: z.string().min(1, 'is required').max(16, 'must be at most 16 characters'),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, 'must be a three-letter ISO 4217 code in capitals')
    .optional(),
});
const ListQuery = z.strictObject({
  outcome: z.enum(['approved', 'declined', 'cancelled', 'failed', 'unknown']).optional(),
  unresolved: z.enum(['true', 'false']).optional(),
  limit: z
    .string()
    .regex(/^\d{1,3}$/, 'must be a whole number from 1 to 500')
    .optional(),
});
// The public id, never the journal's integer one: that one is global and sequential, and would
// show a gateway merchant how many sales the other merchants make (journal/public-id.ts).
const IdParams = z.strictObject({
  id: z.string().refine(isPublicId, PUBLIC_ID_RULE),
});

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {}, { reportInput: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0] as z.core.$ZodIssue;
  const field = issue.path.length === 0 ? 'body' : issue.path.join('.');
  if (issue.code === 'unrecognized_keys')
    throw invalid('INVALID_INPUT', issue.keys.join(', '), 'is not a field of this request');
  throw invalid('INVALID_INPUT', field, issue.message);
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/** A journal row as the page's transaction JSON. */
function transactionJson(row: JournalRow) {
  return {
    id: row.publicId,
    reference: row.reference,
    terminalId: row.terminalId,
    attempt: row.attempt,
    kind: row.kind,
    amount: formatAmount({ minor: row.amountMinor, currency: row.currency }),
    currency: row.currency,
    state: row.state,
    outcome: row.outcome ?? null,
    errorCode: row.errorCode ?? null,
    message: row.message === undefined ? null : redactPans(row.message),
    maskedPan: row.maskedPan ?? null,
    cardBrand: row.cardBrand ?? null,
    approvalCode: row.approvalCode ?? null,
    terminalTxId: row.terminalTxId === undefined ? null : redactPans(row.terminalTxId),
    createdAt: new Date(row.createdAt).toISOString(),
    completedAt: iso(row.completedAt),
  };
}

/** The receipt text of a transaction: what a slip would print, the card number masked. */
export function receiptText(row: JournalRow, title: string): string {
  const amount = `${formatAmount({ minor: row.amountMinor, currency: row.currency })} ${row.currency}`;
  const lines = [
    title,
    `Terminal ${row.terminalId}`,
    new Date(row.completedAt ?? row.createdAt).toISOString().replace('T', ' ').slice(0, 19),
    `${row.kind.toUpperCase()}  ${amount}`,
    `Reference ${row.reference}${row.attempt > 1 ? ` (attempt ${row.attempt})` : ''}`,
    ...(row.maskedPan === undefined ? [] : [`Card ${row.cardBrand ?? ''} ${row.maskedPan}`.trim()]),
    ...(row.approvalCode === undefined ? [] : [`Approval ${row.approvalCode}`]),
    ...(row.terminalTxId === undefined ? [] : [`Terminal tx ${row.terminalTxId}`]),
    `Result ${row.state.toUpperCase()}`,
  ];
  return redactPans(lines.join('\n'));
}

function terminalJson(t: DashboardTerminal) {
  return {
    terminalId: t.terminalId,
    protocol: t.protocol,
    serial: t.serial,
    status: t.status,
    statusText:
      t.status === 'online' ? 'POS Online' : t.status === 'offline' ? 'POS Offline' : 'Busy',
    lastHeartbeatAt: iso(t.lastHeartbeatAt),
    model: t.model,
    address: t.address,
  };
}

/**
 * Adds the dashboard to `app`: `GET /` from a browser (Accept: text/html) redirects to `/ui/`;
 * the page and its API live under `/ui/`. The service's own routes are untouched (the connector's
 * `POST /` stays as it is). Call before the app listens.
 */
export function registerDashboard(
  app: FastifyInstance,
  backend: DashboardBackend,
  options: DashboardOptions = {},
): { close(): void } {
  const logger = (options.logger ?? silentLogger).child({ component: 'dashboard' });
  const ttl = options.sessionTtlMs ?? 12 * 60 * 60 * 1000;
  const guard = options.guard ?? new LoginGuard();
  const sessions = new Map<string, Session>();
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const [path, { file, type }] of Object.entries(FILES))
    files.set(path, { body: readFileSync(new URL(file, WEB_DIR)), type });

  const about = {
    service: backend.service,
    title: backend.title,
    loginLabel: backend.loginLabel,
    currency: backend.currency,
  };

  /** Signed in, not signed out, not expired, not evicted. */
  const alive = (session: Session) =>
    sessions.get(session.id) === session && session.expiresAt > Date.now();
  const sessionOf = (request: FastifyRequest): Session | undefined => {
    const cookie = request.headers.cookie ?? '';
    const match = new RegExp(`(?:^|;\\s*)${COOKIE}=([A-Za-z]{43})(?:;|$)`).exec(cookie);
    const id = match?.[1];
    if (id === undefined) return undefined;
    const session = sessions.get(id);
    if (session === undefined || !alive(session)) {
      sessions.delete(id);
      return undefined;
    }
    return session;
  };
  const requireSession = (request: FastifyRequest): Session => {
    const session = sessionOf(request);
    if (session === undefined)
      throw new EcrError('UNAUTHORIZED', 'session: sign in first', {
        field: 'session',
        rule: 'a signed-in session',
      });
    return session;
  };
  /** State-changing requests: the session's CSRF token in `x-csrf-token`, from this origin. */
  const requireCsrf = (request: FastifyRequest, session: Session): void => {
    const token = request.headers['x-csrf-token'];
    if (typeof token !== 'string' || !sameSecret(token, session.csrf)) {
      throw new EcrError('UNAUTHORIZED', 'x-csrf-token: missing or wrong', {
        field: 'x-csrf-token',
        rule: "the session's CSRF token",
      });
    }
  };
  const sameOrigin = (request: FastifyRequest): void => {
    const origin = request.headers.origin;
    let host: string | undefined;
    try {
      host = origin === undefined ? undefined : new URL(origin).host;
    } catch {
      host = '';
    }
    // The host only: behind a TLS-terminating proxy the page is https while this server sees http.
    if (origin !== undefined && host !== request.headers.host) {
      throw new EcrError('UNAUTHORIZED', 'origin: requests must come from the dashboard itself', {
        field: 'origin',
        rule: 'same origin',
      });
    }
  };

  app.addHook('onSend', async (request, reply, payload) => {
    if (request.url.startsWith('/ui/')) void reply.headers(SECURITY_HEADERS);
    return payload;
  });

  // A browser asking for the service's root gets the page; API clients keep their routes.
  app.get('/', async (request, reply) => {
    if ((request.headers.accept ?? '').includes('text/html')) return reply.redirect('/ui/', 302);
    throw new EcrError('NOT_FOUND', 'GET /: nothing here; the dashboard is at /ui/');
  });
  app.get('/ui', async (_request, reply) => reply.redirect('/ui/', 301));
  for (const [path, file] of files) {
    app.get(path, async (_request, reply) => reply.type(file.type).send(file.body));
  }

  const sessionJson = (session: Session) => ({
    ...about,
    who: session.who,
    csrfToken: session.csrf,
  });

  app.get('/ui/api/session', async (request, reply) => {
    const session = sessionOf(request);
    if (session === undefined) {
      return reply.code(401).send({
        ...about,
        error: { code: 'UNAUTHORIZED', message: 'session: sign in first' },
      });
    }
    return sessionJson(session);
  });

  app.post('/ui/api/login', async (request, reply) => {
    sameOrigin(request);
    const body = parse(LoginBody, request.body);
    let who: string | undefined;
    try {
      who = await guard.attempt(request.ip, body.login, body.password, () =>
        backend.authenticate(body.login, body.password),
      );
    } catch (error) {
      const wait = (error as { retryAfter?: unknown }).retryAfter;
      if (typeof wait === 'number') void reply.header('retry-after', String(wait));
      throw error;
    }
    if (who === undefined) {
      throw new EcrError('UNAUTHORIZED', `${backend.loginLabel.toLowerCase()}/password: wrong`, {
        field: 'login',
        rule: `the ${backend.service}'s ${backend.loginLabel.toLowerCase()} and password`,
      });
    }
    const mine = [...sessions.values()].filter((s) => s.who === who);
    for (const old of mine.slice(0, Math.max(0, mine.length - MAX_SESSIONS_PER_SCOPE + 1)))
      endSession(old);
    if (sessions.size >= MAX_SESSIONS) {
      const now = Date.now();
      for (const [id, s] of sessions) if (s.expiresAt <= now) sessions.delete(id);
      for (const old of sessions.values()) {
        if (sessions.size < MAX_SESSIONS) break;
        endSession(old);
      }
    }
    const id = randomLetters(43, TOKEN_LETTERS);
    const session: Session = {
      id,
      who,
      csrf: randomLetters(43, TOKEN_LETTERS),
      expiresAt: Date.now() + ttl,
      streams: 0,
      paying: false,
    };
    sessions.set(id, session);
    const secure = request.protocol === 'https' ? '; Secure' : '';
    void reply.header(
      'set-cookie',
      `${COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=${Math.floor(ttl / 1000)}${secure}`,
    );
    logger.info({ who }, 'dashboard sign-in');
    return sessionJson(session);
  });

  app.post('/ui/api/logout', async (request, reply) => {
    const session = requireSession(request);
    requireCsrf(request, session);
    endSession(session);
    return reply
      .code(204)
      .header('set-cookie', `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=0`)
      .send();
  });

  app.get('/ui/api/terminals', async (request) => {
    const session = requireSession(request);
    return { terminals: (await backend.terminals(session.who)).map(terminalJson) };
  });

  app.get('/ui/api/transactions', async (request) => {
    const session = requireSession(request);
    const query = parse(ListQuery, request.query);
    const limit = query.limit === undefined ? 100 : Number(query.limit);
    if (limit < 1 || limit > 500)
      throw invalid('INVALID_INPUT', 'limit', 'must be a whole number from 1 to 500');
    const rows = (
      await backend.journal.list({
        ...backend.scope(session.who),
        unresolved: query.unresolved === 'true',
        ...(query.outcome === undefined ? {} : { state: query.outcome }),
        limit,
      })
    ).filter((row) => backend.owns(session.who, row));
    return { transactions: rows.map(transactionJson) };
  });

  /** A transaction of this scope, or NOT_FOUND (someone else's answers the same as none). */
  const rowOf = async (request: FastifyRequest, session: Session): Promise<JournalRow> => {
    const { id } = parse(IdParams, request.params);
    const row = await backend.journal.getByPublicId(id);
    if (row === undefined || !backend.owns(session.who, row))
      throw new EcrError('NOT_FOUND', `id: no transaction ${id}`, {
        field: 'id',
        rule: 'must name one of your transactions',
      });
    return row;
  };

  app.get('/ui/api/transactions/:id', async (request) => {
    const session = requireSession(request);
    const row = await rowOf(request, session);
    const notification = await backend.notificationFor?.(row.id);
    const timeline = await backend.journal.eventsOf(row.id);
    // Every attempt under the reference (this row is one of them): the cashier's first card, and
    // each one tried after nothing was charged.
    const attempts = await backend.journal.attemptsOf(row);
    return {
      transaction: transactionJson(row),
      attempts: attempts.map(transactionJson),
      receipt: receiptText(row, backend.title),
      timeline: timeline.map((e) => ({
        state: e.state,
        at: new Date(e.at).toISOString(),
        note: e.note === undefined ? null : redactPans(e.note),
      })),
      notifications:
        notification === undefined
          ? []
          : [
              {
                state: notification.state,
                attempts: notification.attempts,
                lastAttemptAt: iso(notification.sentAt),
                lastError: notification.lastError ?? null,
              },
            ],
    };
  });

  app.post('/ui/api/transactions/:id/resolve', async (request) => {
    const session = requireSession(request);
    requireCsrf(request, session);
    const row = await rowOf(request, session);
    const body = parse(ResolveBody, request.body);
    const resolved = await backend.journal.resolveByHand(
      row.id,
      body.outcome,
      `${redactPans(body.reason)} (by ${session.who} in the dashboard)`,
    );
    if (resolved === undefined) {
      const now = await backend.journal.get(row.id);
      throw new EcrError(
        'DUPLICATE_REFERENCE',
        `id: transaction ${row.publicId} is ${now?.state ?? 'gone'}, not unknown: nothing changed`,
        { field: 'id', rule: 'must name an unknown transaction' },
      );
    }
    logger.warn(
      { who: session.who, id: row.publicId, transactionId: row.id, outcome: body.outcome },
      'resolved by hand',
    );
    return { transaction: transactionJson(resolved) };
  });

  app.post('/ui/api/test-payment', async (request, reply) => {
    const session = requireSession(request);
    requireCsrf(request, session);
    const body = parse(TestBody, request.body);
    const currency = body.currency ?? backend.currency;
    // Checked here so that a bad amount is a 400 before anything starts. Test payments are
    // small, and one at a time per session: they must not crowd out the shop's real sales.
    parseAmount(body.amount, currency, { maxMinor: MAX_TEST_PAYMENT_MINOR });
    if (session.paying) {
      throw new EcrError(
        'TERMINAL_BUSY',
        'a test payment of yours is still running: wait for its outcome',
      );
    }
    const reference = `test-${randomLetters(12, TOKEN_LETTERS)}`;
    let claimed: () => void = () => {};
    const started = new Promise<void>((resolve) => (claimed = resolve));
    const done = backend.testPayment(
      session.who,
      body.terminalId,
      { text: body.amount, currency },
      reference,
      () => claimed(),
    );
    session.paying = true;
    done
      .catch((error: unknown) =>
        logger.warn({ reference, err: toEcrError(error).message }, 'test payment failed'),
      )
      .finally(() => {
        session.paying = false;
      });
    await Promise.race([started, done]);
    return reply.code(202).send({ reference });
  });

  // Live updates: one change-feed reader for all pages listening.
  interface Listener {
    readonly session: Session;
    readonly raw: ServerResponse;
  }
  const listeners = new Set<Listener>();
  let lastEventId = 0;
  let feed: NodeJS.Timeout | undefined;
  /** True while a round reads the feed: a slow journal never gets two rounds at once. */
  let reading = false;
  /** Signs a session out: its live streams end with it. */
  function endSession(session: Session): void {
    sessions.delete(session.id);
    for (const listener of listeners) if (listener.session === session) listener.raw.end();
  }
  const send = (listener: Listener, event: string, data: unknown) => {
    if (!alive(listener.session)) {
      listener.raw.end();
      return;
    }
    listener.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  /** Each scope's terminal list, made once per round however many pages listen. */
  const terminalsOf = async (cache: Map<string, unknown>, who: string) => {
    let list = cache.get(who);
    if (list === undefined) {
      list = { terminals: (await backend.terminals(who)).map(terminalJson) };
      cache.set(who, list);
    }
    return list;
  };
  const readFeed = async () => {
    if (reading) return;
    reading = true;
    try {
      const events = await backend.journal.eventsAfter(lastEventId, FEED_BATCH);
      if (events.length === 0) return;
      const touched = new Set<Listener>();
      for (const event of events) {
        const row = await backend.journal.get(event.transactionId);
        // Moved on event by event: when a read fails (the journal away for a moment), the next
        // round starts with the event it failed on instead of skipping the rest of the batch.
        lastEventId = event.id;
        if (row === undefined) continue;
        for (const listener of listeners) {
          if (!backend.owns(listener.session.who, row)) continue;
          touched.add(listener);
          send(listener, 'transaction', {
            id: row.publicId,
            reference: row.reference,
            terminalId: row.terminalId,
            state: event.state,
          });
        }
      }
      // A transaction starting or ending makes its terminal busy or free.
      const cache = new Map<string, unknown>();
      for (const listener of touched)
        send(listener, 'terminals', await terminalsOf(cache, listener.session.who));
    } catch (error) {
      logger.error({ err: toEcrError(error).message }, 'could not read the journal change feed');
    } finally {
      reading = false;
    }
  };
  const announceTerminals = async (terminalId: string | undefined) => {
    const cache = new Map<string, unknown>();
    for (const listener of listeners) {
      const list = (await terminalsOf(cache, listener.session.who)) as {
        terminals: { terminalId: string }[];
      };
      // Only the scopes the terminal belongs to hear of it.
      if (terminalId !== undefined && !list.terminals.some((t) => t.terminalId === terminalId))
        continue;
      send(listener, 'terminals', list);
    }
  };
  // Terminals coming and going arrive in bursts (a node's fleet moving): one listing per burst.
  let changed: Set<string | undefined> | undefined;
  const stopTerminals = backend.onTerminalsChange((terminalId) => {
    if (listeners.size === 0) return;
    if (changed !== undefined) {
      changed.add(terminalId);
      return;
    }
    changed = new Set([terminalId]);
    setTimeout(() => {
      const ids = changed ?? new Set<string | undefined>();
      changed = undefined;
      announceTerminals(ids.size === 1 ? [...ids][0] : undefined).catch((error: unknown) =>
        logger.error({ err: toEcrError(error).message }, 'could not list the terminals'),
      );
    }, TERMINALS_DEBOUNCE_MS).unref();
  });

  app.get('/ui/api/events', async (request, reply) => {
    const session = requireSession(request);
    if (session.streams >= MAX_STREAMS_PER_SESSION || listeners.size >= MAX_STREAMS) {
      throw new EcrError(
        'RATE_LIMITED',
        `events: at most ${MAX_STREAMS_PER_SESSION} live streams per session; close a tab`,
      );
    }
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      connection: 'keep-alive',
    });
    const listener: Listener = { session, raw };
    listeners.add(listener);
    session.streams++;
    const keepalive = setInterval(() => {
      if (alive(session)) raw.write(': keep-alive\n\n');
      else raw.end();
    }, SSE_KEEPALIVE_MS);
    keepalive.unref();
    // First of all, how the stream ends: whatever fails below, it is counted out again.
    request.raw.once('close', () => {
      clearInterval(keepalive);
      listeners.delete(listener);
      session.streams--;
      if (listeners.size === 0) {
        clearInterval(feed);
        feed = undefined;
      }
    });
    raw.write('retry: 2000\n\n');
    try {
      if (feed === undefined) {
        // No round reads the feed until its starting point is known.
        reading = true;
        feed = setInterval(() => void readFeed(), options.feedIntervalMs ?? 250);
        feed.unref();
        try {
          lastEventId = await backend.journal.latestEventId();
        } finally {
          reading = false;
        }
      }
      send(listener, 'terminals', await terminalsOf(new Map(), session.who));
    } catch (error) {
      logger.error({ err: toEcrError(error).message }, 'could not start a live stream');
      raw.end();
    }
  });

  return {
    close() {
      stopTerminals();
      clearInterval(feed);
      feed = undefined;
      for (const listener of listeners) listener.raw.end();
      listeners.clear();
    },
  };
}

/**
 * A request for the dashboard's page or API: its errors answer as `{ error }` JSON. Not `/`:
 * the connector's `POST /` keeps its HiPay answers.
 */
export function isDashboardRequest(url: string): boolean {
  return url === '/ui' || url.startsWith('/ui/');
}
