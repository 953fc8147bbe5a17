import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { EcrError, invalid, toEcrError } from '../core/errors.js';
import type { JournalRow } from '../core/journal-port.js';
import { formatAmount, parseAmount } from '../core/money.js';
import { redactPans } from '../core/pan.js';
import { randomLetters } from '../core/random-text.js';
import { handResolution, resolveByHand } from '../core/settlement.js';
import type { LoginGuard } from '../http/login-guard.js';
import { parseRequest, type RequestIssueOptions } from '../http/parse-request.js';
import { RateLimitedError } from '../http/rate-limited-error.js';
import { isoOrNull, TransactionListQuery, transactionRowJson } from '../http/transaction-json.js';
import { PUBLIC_ID_RULE, isPublicId } from '../journal/public-id.js';
import { terminalsJson, type DashboardBackend } from './backend.js';
import type { LiveFeed } from './live-feed.js';
import {
  requireSameOrigin,
  TOKEN_LETTERS,
  type DashboardSessions,
  type Session,
} from './sessions.js';

/**
 * The dashboard's JSON API under `/ui/api/`: sign-in and out, the terminals, the transactions
 * (list, detail with timeline and receipt, resolving an unknown one by hand), a test payment,
 * and the live stream. Errors are thrown as EcrError; the service's error handler answers them
 * as `{ error }`.
 */

/** A test payment is small: at most this many minor units. */
export const MAX_TEST_PAYMENT_MINOR = 10_000;

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
// The public id, never the journal's integer one: that one is global and sequential, and would
// show a gateway merchant how many sales the other merchants make (journal/public-id.ts).
const IdParams = z.strictObject({
  id: z.string().refine(isPublicId, PUBLIC_ID_RULE),
});

/** The page's schemas say "is required" themselves where it fits; their messages are kept. */
const PAGE_FIELDS: RequestIssueOptions = { missingIsRequired: false };
/** A body, query or parameters checked against `schema` (none at all read as `{}`). */
const parse = <S extends z.ZodType>(schema: S, value: unknown): z.output<S> =>
  parseRequest(schema, value ?? {}, PAGE_FIELDS);

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

export interface DashboardRoutesOptions {
  readonly backend: DashboardBackend;
  readonly sessions: DashboardSessions;
  readonly feed: LiveFeed;
  readonly guard: LoginGuard;
  readonly logger: Logger;
}

/** Registers the dashboard's API routes on `app`. */
export function registerDashboardRoutes(
  app: FastifyInstance,
  options: DashboardRoutesOptions,
): void {
  const { backend, sessions, feed, guard, logger } = options;
  const about = {
    service: backend.service,
    title: backend.title,
    loginLabel: backend.loginLabel,
    currency: backend.currency,
  };
  const sessionJson = (session: Session) => ({
    ...about,
    who: session.who,
    csrfToken: session.csrf,
  });

  app.get('/ui/api/session', async (request, reply) => {
    const session = sessions.of(request);
    if (session === undefined) {
      return reply.code(401).send({
        ...about,
        error: { code: 'UNAUTHORIZED', message: 'session: sign in first' },
      });
    }
    return sessionJson(session);
  });

  app.post('/ui/api/login', async (request, reply) => {
    requireSameOrigin(request);
    const body = parse(LoginBody, request.body);
    let who: string | undefined;
    try {
      who = await guard.attempt(request.ip, body.login, body.password, () =>
        backend.authenticate(body.login, body.password),
      );
    } catch (error) {
      if (error instanceof RateLimitedError)
        void reply.header('retry-after', String(error.retryAfterSeconds));
      throw error;
    }
    if (who === undefined) {
      throw new EcrError('UNAUTHORIZED', `${backend.loginLabel.toLowerCase()}/password: wrong`, {
        field: 'login',
        rule: `the ${backend.service}'s ${backend.loginLabel.toLowerCase()} and password`,
      });
    }
    const session = sessions.open(who);
    void reply.header('set-cookie', sessions.cookie(session, request.protocol === 'https'));
    logger.info({ who }, 'dashboard sign-in');
    return sessionJson(session);
  });

  app.post('/ui/api/logout', async (request, reply) => {
    const session = sessions.require(request);
    sessions.requireCsrf(request, session);
    sessions.end(session);
    return reply.code(204).header('set-cookie', sessions.clearedCookie()).send();
  });

  app.get('/ui/api/terminals', async (request) => {
    const session = sessions.require(request);
    return terminalsJson(backend, session.who);
  });

  app.get('/ui/api/transactions', async (request) => {
    const session = sessions.require(request);
    const query = parse(TransactionListQuery, request.query);
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
    return { transactions: rows.map(transactionRowJson) };
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
    const session = sessions.require(request);
    const row = await rowOf(request, session);
    const notification = await backend.notificationFor?.(row.id);
    const timeline = await backend.journal.eventsOf(row.id);
    // Every attempt under the reference (this row is one of them): the cashier's first card, and
    // each one tried after nothing was charged.
    const attempts = await backend.journal.attemptsOf(row);
    return {
      transaction: transactionRowJson(row),
      attempts: attempts.map(transactionRowJson),
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
                lastAttemptAt: isoOrNull(notification.sentAt),
                lastError: notification.lastError ?? null,
              },
            ],
    };
  });

  app.post('/ui/api/transactions/:id/resolve', async (request) => {
    const session = sessions.require(request);
    sessions.requireCsrf(request, session);
    const row = await rowOf(request, session);
    const body = parse(ResolveBody, request.body);
    // One rule for the dashboard and `tx resolve` (core/settlement.ts): a row that is no longer
    // `unknown` is INVALID_INPUT naming `id`, and nothing changes.
    const resolved = await resolveByHand(
      backend.journal,
      row,
      handResolution({
        outcome: body.outcome,
        note: body.reason,
        by: `${session.who} in the dashboard`,
        noteField: 'reason',
      }),
      { rowField: 'id', logger },
    );
    return { transaction: transactionRowJson(resolved) };
  });

  app.post('/ui/api/test-payment', async (request, reply) => {
    const session = sessions.require(request);
    sessions.requireCsrf(request, session);
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

  app.get('/ui/api/events', async (request, reply) => {
    const session = sessions.require(request);
    await feed.open(session, request, reply);
  });
}
