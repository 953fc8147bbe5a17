import fastifyBasicAuth from '@fastify/basic-auth';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import { ERROR_CODES, EcrError, invalid, isEcrError, toEcrError } from '../core/errors.js';
import { httpServiceLogger, silentLogger } from '../core/logger.js';
import { journalCheck, Readiness, type ReadinessOptions } from '../core/readiness.js';
import type { TransactionService } from '../core/transaction-service.js';
import type { TerminalDriver } from '../core/driver.js';
import { EventEmitter } from 'node:events';
import type { Awaitable, Journal } from '../core/journal-port.js';
import { SERVICE_VERSION } from '../core/version.js';
import { LoginGuard } from '../http/login-guard.js';
import { RateLimitedError } from '../http/rate-limited-error.js';
import { firstDuplicateKey } from '../protocols/json-object.js';
import { isDashboardRequest, registerDashboard } from '../web/dashboard.js';
import { isHealthRequest, registerHealthRoutes } from '../web/health.js';
import { registerApiV1 } from './api-v1.js';
import { connectorDashboard, UNREACHABLE, type ConnectorActivity } from './dashboard.js';
import { credentialsMatch } from './auth.js';
import { allowedHosts, checkHost } from './host-check.js';
import {
  desktopAnswer,
  errorAnswer,
  kioskAnswer,
  parsePayment,
  type ConnectorFlavour,
  type NotificationReport,
} from './shapes.js';

/** Largest request body accepted (413 past it). */
export const CONNECTOR_MAX_BODY_BYTES = 64 * 1024;
/** How long a payment answer waits for the back office to acknowledge its notification. */
export const CONNECTOR_NOTIFY_WAIT_MS = 3_000;
/** A request must arrive whole within this long (slow uploads, slow-loris). */
export const CONNECTOR_REQUEST_TIMEOUT_MS = 30_000;
/** Its headers within this long. */
export const CONNECTOR_HEADERS_TIMEOUT_MS = 10_000;
/** The version `/version` reports. */
export const CONNECTOR_VERSION = SERVICE_VERSION;

/** What the connector needs of the back-office notifier (src/connector/notifier.ts). */
export interface ConnectorNotifier {
  notify(transactionId: number, waitMs: number): Promise<NotificationReport>;
}

export interface ConnectorServerOptions {
  readonly flavour: ConnectorFlavour;
  readonly login: string;
  readonly password: string;
  readonly service: TransactionService;
  /** The terminal id the service knows the terminal by. */
  readonly terminalId: string;
  readonly driver: TerminalDriver;
  /** The currency of a request that names none (EUR, or config.txt's CURRENCY). */
  readonly currency: string;
  /** Finds the journal id of one attempt of a transaction, for the notifier. */
  readonly journalId: (reference: string, attempt: number) => Awaitable<number | undefined>;
  readonly notifier?: ConnectorNotifier;
  /** Called by `GET /stop` once no payment is in flight. */
  readonly onStop?: () => void;
  readonly logger?: Logger;
  /** @default CONNECTOR_MAX_BODY_BYTES */
  readonly bodyLimit?: number;
  /**
   * Sign-in limits for Basic Auth and the dashboard's form alike (5 failures a minute per address
   * and login, 50 per address). @default a new LoginGuard
   */
  readonly guard?: LoginGuard;
  /** @default CONNECTOR_REQUEST_TIMEOUT_MS */
  readonly requestTimeoutMs?: number;
  /** @default CONNECTOR_HEADERS_TIMEOUT_MS */
  readonly headersTimeoutMs?: number;
  /**
   * The journal behind `service`: with it, the dashboard is served at `/ui/`, and `/readyz`
   * checks that it takes a write.
   */
  readonly journal?: Journal;
  /** Bounds of `/readyz` (each check's timeout, how long an answer is reused, the clock). */
  readonly readiness?: ReadinessOptions;
  /**
   * Host names (or IP addresses) answered to besides the loopback names and
   * CONNECTOR_LISTEN_HOST: config.txt's ALLOWED_HOSTS. Any other `Host` gets 421. @default []
   */
  readonly allowedHosts?: readonly string[];
}

/** Fastify's own errors (bad JSON, body too large, wrong content type) as project errors. */
function fromFastify(error: FastifyError): EcrError {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new EcrError('INVALID_INPUT', 'content-type: must be application/json', {
        field: 'content-type',
        rule: 'application/json',
      });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new EcrError('INVALID_INPUT', 'body: is too large', {
        field: 'body',
        rule: 'at most the body limit',
      });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new EcrError('INVALID_INPUT', 'body: must be valid JSON', {
        field: 'body',
        rule: 'valid JSON',
      });
    default:
      return toEcrError(error);
  }
}

/**
 * The HiPay-compatible local connector (seeds 001 and 003) on Fastify: Basic Auth on every route
 * but `/livez`, `/readyz` and `/healthz`, the flavour's payment shape on `POST /` and
 * `POST /payment`, and the maintenance routes. Every payment goes through TransactionService
 * (journal, idempotent order id, one at a time).
 */
export async function buildConnector(options: ConnectorServerOptions): Promise<FastifyInstance> {
  const logger = options.logger ?? silentLogger;
  // The connector serves the shop's own machine: its callers share the loopback address, so a
  // local process's failures under made-up logins must not lock the POS out (per login only).
  const guard = options.guard ?? new LoginGuard({ loopbackPerLoginOnly: true });
  const requestTimeout = options.requestTimeoutMs ?? CONNECTOR_REQUEST_TIMEOUT_MS;
  const headersTimeout = Math.min(
    options.headersTimeoutMs ?? CONNECTOR_HEADERS_TIMEOUT_MS,
    requestTimeout,
  );
  const app = Fastify({
    // Fastify's logger type is narrower than pino's: the instance is the same pino logger.
    // Fastify logs each request at info; only its warnings and errors go to our log (request
    // lines would add nothing a payment's own log lines do not say).
    loggerInstance: httpServiceLogger(logger) as unknown as FastifyBaseLogger,
    bodyLimit: options.bodyLimit ?? CONNECTOR_MAX_BODY_BYTES,
    // No idle-socket timeout: a payment may wait minutes for the cardholder and the recovery,
    // and a dropped answer makes a POS retry. requestTimeout bounds slow uploads (slow-loris).
    connectionTimeout: 0,
    requestTimeout,
    // Headers within their own bound; both checked often (Node checks every 30 s by default).
    http: {
      headersTimeout,
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 4))),
    },
  });
  // First of all hooks, before Basic Auth, on every route (the dashboard, its files, /docs, 404s
  // included): a request naming a host the connector is not known by is DNS rebinding, or lost.
  const hosts = allowedHosts(options.allowedHosts);
  app.addHook('onRequest', (request, _reply, done) => {
    const refused = checkHost(request.headers.host, hosts);
    if (refused !== undefined) logger.debug({ err: refused.message }, 'Host refused');
    done(refused);
  });
  const flavour = options.flavour;
  let paymentsInFlight = 0;
  /** Why the last payment did not reach the terminal or its host, for `GET /check`. */
  let lastErrorCode: string | undefined;
  let lastContactAt: number | undefined;
  const changes = new EventEmitter<{ change: [] }>();
  const activity: ConnectorActivity = {
    get inFlight() {
      return paymentsInFlight;
    },
    get lastErrorCode() {
      return lastErrorCode;
    },
    get lastContactAt() {
      return lastContactAt;
    },
    onChange(listener) {
      changes.on('change', listener);
      return () => changes.off('change', listener);
    },
    async track(work) {
      paymentsInFlight++;
      changes.emit('change');
      try {
        const result = await work();
        if (!result.replayed) {
          lastErrorCode = result.errorCode;
          if (!UNREACHABLE.has(result.errorCode ?? '')) lastContactAt = Date.now();
        }
        return result;
      } finally {
        paymentsInFlight--;
        changes.emit('change');
      }
    },
  };

  // JSON only: Fastify would otherwise accept text/plain bodies (415 for anything else).
  app.removeContentTypeParser('text/plain');
  // A key sent twice (`"amount":"1.00","amount":"2.00"`) would be taken last-wins by JSON.parse:
  // refused, naming the key, before Fastify's own parser (and its prototype-poisoning checks).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    const duplicate = firstDuplicateKey(text);
    if (duplicate !== undefined) {
      done(
        invalid('INVALID_INPUT', duplicate.slice(0, 64), 'must appear once in the body'),
        undefined,
      );
      return;
    }
    void parseJson(request, text, done);
  });
  // Route schemas are documentation (OpenAPI at /docs): requests are validated by the same zod
  // schemas in the handlers, whose errors name the field; answers are sent as built.
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setErrorHandler((thrown: FastifyError, request, reply) => {
    const status =
      thrown.statusCode === 401 || thrown.statusCode === 429
        ? thrown.statusCode
        : thrown.code?.startsWith('FST_ERR_CTP') === true
          ? (thrown.statusCode ?? 400)
          : undefined;
    const error =
      thrown.statusCode === 429
        ? new EcrError(
            'RATE_LIMITED',
            'too many failed logins from this address: wait and try again',
          )
        : thrown.statusCode === 401
          ? new EcrError('UNAUTHORIZED', 'authorization: Basic Auth credentials missing or wrong', {
              field: 'authorization',
              rule: 'the connector login and password',
            })
          : isEcrError(thrown)
            ? thrown
            : fromFastify(thrown);
    if (error.code === 'INTERNAL')
      logger.error({ err: thrown.message }, 'connector request failed');
    const json = error.toJSON();
    const own = request.url.startsWith('/api/v1/') || isDashboardRequest(request.url);
    void reply
      .code(status ?? (error.code === 'TERMINAL_BUSY' ? 409 : ERROR_CODES[error.code].http))
      .send(own ? { error: json } : errorAnswer(flavour, json));
  });

  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'ecr-bridge connector',
        description:
          "HiPay-compatible local connector (POST /, maintenance routes) and ecr-bridge's own /api/v1.",
        version: CONNECTOR_VERSION,
      },
      components: { securitySchemes: { basic: { type: 'http', scheme: 'basic' } } },
      security: [{ basic: [] }],
    },
  });
  // Served from the package: no CDN, works offline.
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  const logins = new WeakMap<FastifyRequest, string>();
  await app.register(fastifyBasicAuth, {
    authenticate: { realm: 'ecr-bridge' },
    async validate(login, password, request) {
      // Per client address and login (the connector listens on 127.0.0.1, where every local
      // program shares one address, and a stale script must not lock the POS out), and per
      // address whatever the login, so that varying the login buys no more guesses. The
      // dashboard's form counts against the same allowance.
      logins.set(request, login);
      let ok: true | undefined;
      try {
        ok = await guard.attempt(request.ip, login, password, () =>
          Promise.resolve(credentialsMatch(options, login, password) ? true : undefined),
        );
      } catch (error) {
        if (!(error instanceof RateLimitedError)) throw error;
        // @fastify/basic-auth answers 401 (with a Basic challenge) to an error without a status
        // code: this one must stay a 429, which the error handler words for the connector.
        const limited = new Error('too many failed logins', { cause: error }) as Error & {
          statusCode: number;
        };
        limited.statusCode = 429;
        throw limited;
      }
      if (ok === undefined) throw new Error('wrong credentials');
    },
  });
  // The dashboard (`/ui/`, and `GET /` from a browser) signs in with the same credentials in its
  // own form and keeps a session cookie; everything else takes Basic Auth on every request.
  app.addHook('onRequest', (request, reply, done) => {
    const page =
      request.url === '/ui' ||
      request.url.startsWith('/ui/') ||
      (request.method === 'GET' && request.url === '/');
    if (options.journal !== undefined && page) return done();
    // Health probes come from a supervisor or monitor that holds no login (as on the gateway).
    if (isHealthRequest(request.url)) return done();
    return app.basicAuth(request, reply, done);
  });
  app.addHook('onSend', async (request, reply, payload) => {
    // Basic Auth's refusals carry no wait of their own; the dashboard's sign-in sets the real
    // one (from its RateLimitedError), which must not be overwritten.
    if (reply.statusCode === 429 && !reply.hasHeader('retry-after'))
      reply.header(
        'retry-after',
        String(Math.max(1, guard.retryAfter(request.ip, logins.get(request) ?? ''))),
      );
    return payload;
  });

  const pay = async (body: unknown, reply: FastifyReply) => {
    const payment = parsePayment(flavour, body, options.currency);
    {
      const result = await activity.track(() =>
        options.service.pay(options.terminalId, {
          kind: payment.kind,
          reference: payment.reference,
          amount: payment.amount,
          ...(payment.forceAuthorization ? { forceAuthorization: true } : {}),
        }),
      );
      let notification: NotificationReport = { sent: false, attempts: 0 };
      const id = await options.journalId(payment.reference, result.attempt);
      if (options.notifier !== undefined && id !== undefined && HAPPENED.has(result.outcome)) {
        notification = await options.notifier
          .notify(id, CONNECTOR_NOTIFY_WAIT_MS)
          .catch((error: unknown) => {
            logger.error({ err: toEcrError(error).message }, 'notification could not be queued');
            return { sent: false, attempts: 0 };
          });
      }
      // Refused at once because another payment holds the terminal: 409, as the seed's clients
      // expect of a busy connector (nothing was charged: the same order id later is a new attempt).
      const busy = result.errorCode === 'TERMINAL_BUSY' && !result.replayed;
      // An outcome that is not known is no decline: a vendor client that only knows SUCCESS and
      // FAILURE must take its error path (504), not retry as if nothing was charged.
      return reply
        .code(busy ? 409 : result.outcome === 'unknown' ? 504 : 200)
        .send(
          flavour === 'desktop'
            ? desktopAnswer(payment, result, notification)
            : kioskAnswer(payment, result, notification),
        );
    }
  };
  app.post('/', (request, reply) => pay(request.body, reply));
  app.post('/payment', (request, reply) => pay(request.body, reply));

  if (options.journal !== undefined) {
    const dashboard = registerDashboard(
      app,
      connectorDashboard({
        login: options.login,
        password: options.password,
        service: options.service,
        terminalId: options.terminalId,
        driver: options.driver,
        currency: options.currency,
        journal: options.journal,
        activity,
      }),
      { logger, guard },
    );
    // Before the server closes: its live streams would keep it open.
    app.addHook('preClose', async () => dashboard.close());
  }

  // What a payment needs here: the journal (the terminal is asked only when a payment comes).
  registerHealthRoutes(app, {
    readiness: new Readiness(
      options.journal === undefined ? [] : [journalCheck(options.journal)],
      options.readiness,
    ),
  });

  registerApiV1(app, {
    service: options.service,
    terminalId: options.terminalId,
    driver: options.driver,
    currency: options.currency,
    version: CONNECTOR_VERSION,
  });

  const answer = <T extends object>(value: T) => (flavour === 'kiosk' ? [value] : value);
  app.get('/version', async () =>
    answer({
      version: CONNECTOR_VERSION,
      ...(flavour === 'kiosk' ? { type: 'ecr-bridge', os: process.platform } : {}),
    }),
  );
  app.get('/config', async () =>
    answer({ deviceId: options.driver.serial ?? null, protocol: options.driver.protocol }),
  );
  app.get('/cancel', async () =>
    answer({
      cancelled: await options.service.cancelCurrent(options.terminalId).catch(() => false),
    }),
  );
  app.get('/stop', async (_request, reply) => {
    if (paymentsInFlight > 0) {
      return reply
        .code(409)
        .send(answer({ message: 'a payment is in flight: not stopped', stopped: false }));
    }
    // Answer first, then stop: the caller sees the answer.
    reply.raw.once('finish', () => options.onStop?.());
    return answer({ message: 'TP-Manager stopped', stopped: true });
  });
  // The seed's terminal check, from what the connector knows: `cr` the connector answers, `card`
  // a payment is at the card step, `call` the terminal lost its host on the last payment,
  // `periph` the terminal was unreachable on the last payment ("0" fine, "1" not).
  app.get('/check', async () =>
    answer({
      cr: '0',
      card: paymentsInFlight > 0 ? '1' : '0',
      call: lastErrorCode === 'TERMINAL_HOST_UNREACHABLE' ? '1' : '0',
      periph: UNREACHABLE.has(lastErrorCode ?? '') ? '1' : '0',
    }),
  );
  app.get('/reset', async () => {
    throw new EcrError(
      'UNSUPPORTED_OPERATION',
      `${options.driver.protocol} terminals cannot be rebooted from the POS`,
    );
  });
  app.get('/tlc', async () => {
    const totals = await options.service.batchClose(options.terminalId);
    return answer({
      NbApp: '1',
      App: [{ Name: options.driver.protocol.toUpperCase(), Status: '0' }],
      batchNumber: totals.batchNumber,
      saleCount: totals.saleCount,
      refundCount: totals.refundCount,
      netMinor: totals.net.minor,
      currency: totals.net.currency,
    });
  });
  return app;
}

/** Outcomes of transactions that happened at the terminal: these are notified. */
const HAPPENED: ReadonlySet<string> = new Set(['approved', 'declined', 'cancelled']);
