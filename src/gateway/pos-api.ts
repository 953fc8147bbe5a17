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
import { z } from 'zod';
import { ERROR_CODES, EcrError, invalid, isEcrError, toEcrError } from '../core/errors.js';
import { httpServiceLogger, silentLogger } from '../core/logger.js';
import { formatAmount, parseAmount } from '../core/money.js';
import { chargedNothing, validateReference } from '../core/transaction.js';
import { SERVICE_VERSION } from '../core/version.js';
import { LoginGuard } from '../http/login-guard.js';
import { parseRequest } from '../http/parse-request.js';
import { RateLimitedError } from '../http/rate-limited-error.js';
import { isDashboardRequest } from '../web/dashboard.js';
import { registerHealthRoutes } from '../web/health.js';
import { registerGatewayApiV1 } from './api-v1.js';
import {
  AMOUNT,
  CheckStatus,
  COMMANDS,
  commandOf,
  Credentials,
  errorJson,
  FIELD_ERRORS,
  referenceOf,
  resultJson,
  RunTransaction,
} from './econduit-shapes.js';
import type { GatewayPort } from './gateway-port.js';
import { TLS_MIN_VERSION, type TlsServerConfig } from '../transports/tls.js';

/** Largest request body accepted (413 past it): a transaction call is a few hundred bytes. */
export const POS_API_MAX_BODY_BYTES = 16 * 1024;
/** A request must arrive whole within this long (slow uploads, slow-loris). */
export const POS_API_REQUEST_TIMEOUT_MS = 30_000;
/** Its headers within this long. */
export const POS_API_HEADERS_TIMEOUT_MS = 10_000;
/** The version the OpenAPI document reports. */
export const GATEWAY_VERSION = SERVICE_VERSION;

export interface PosApiOptions {
  readonly gateway: GatewayPort;
  readonly logger?: Logger;
  /** @default POS_API_MAX_BODY_BYTES */
  readonly bodyLimit?: number;
  /** @default POS_API_REQUEST_TIMEOUT_MS */
  readonly requestTimeoutMs?: number;
  /** @default POS_API_HEADERS_TIMEOUT_MS */
  readonly headersTimeoutMs?: number;
  /** Sign-in limits, shared with the dashboard. @default a new LoginGuard */
  readonly guard?: LoginGuard;
  /**
   * HTTPS only, with this checked certificate and key (see `loadTlsServer`): a plain HTTP
   * request is refused at its first bytes (no answer, the connection closed), and the TLS
   * handshake must be done within the headers bound. @default plain HTTP
   */
  readonly tls?: TlsServerConfig;
}

/** Fastify's own errors (bad JSON, body too large, wrong content type) as project errors. */
function fromFastify(error: FastifyError): EcrError {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return invalid('INVALID_INPUT', 'content-type', 'must be application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return invalid('INVALID_INPUT', 'body', 'must be at most the body limit');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return invalid('INVALID_INPUT', 'body', 'must be valid JSON');
    default:
      return toEcrError(error);
  }
}

/**
 * The gateway's HTTP API for POS programs: eConduit-compatible `runTransaction` and
 * `checkStatus` under `/services/api.asmx/` (query string on GET, JSON body on POST), the
 * project's own `/api/v1` (HTTP Basic with the merchant's key and password), `/livez`,
 * `/readyz` and `/healthz`, `/metrics` and the OpenAPI document at `/docs`. Every transaction
 * goes through the merchant's TransactionService; a merchant's key reaches only its own
 * terminals.
 */
export async function buildPosApi(options: PosApiOptions): Promise<FastifyInstance> {
  const gateway = options.gateway;
  const logger = options.logger ?? silentLogger;
  const guard = options.guard ?? new LoginGuard();
  const requestTimeout = options.requestTimeoutMs ?? POS_API_REQUEST_TIMEOUT_MS;
  const headersTimeout = Math.min(
    options.headersTimeoutMs ?? POS_API_HEADERS_TIMEOUT_MS,
    requestTimeout,
  );
  const tls = options.tls;
  const checking = {
    headersTimeout,
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 4))),
  };
  const app = Fastify({
    ...(tls === undefined
      ? {}
      : {
          https: {
            cert: tls.cert,
            key: tls.key,
            minVersion: TLS_MIN_VERSION,
            // A connection that never finishes its handshake is a stalled client too.
            handshakeTimeout: headersTimeout,
            // Fastify passes its `http` options to plain HTTP servers only: over HTTPS the
            // headers bound and its checking interval must come with these, or Node's defaults
            // (60 s, checked every 30 s) let a slow-loris client hold a connection that long.
            ...checking,
          },
        }),
    loggerInstance: httpServiceLogger(logger) as unknown as FastifyBaseLogger,
    bodyLimit: options.bodyLimit ?? POS_API_MAX_BODY_BYTES,
    // No idle timeout while a transaction runs (the cardholder may take minutes); slow or stalled
    // uploads are cut by the header and request bounds, checked often.
    connectionTimeout: 0,
    requestTimeout,
    http: checking,
  });
  if (tls !== undefined) {
    app.server.on(
      'tlsClientError',
      (error: NodeJS.ErrnoException, socket: { remoteAddress?: string }) => {
        gateway.metrics.tlsRefused('http');
        // Debug only: a plain client retrying would flood the log; the metric counts them.
        logger.debug(
          { remote: socket.remoteAddress, reason: error.code ?? error.message },
          'TLS handshake failed on the POS API: connection closed',
        );
      },
    );
  }
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setErrorHandler((thrown: FastifyError, request, reply) => {
    const error = isEcrError(thrown) ? thrown : fromFastify(thrown);
    if (error.code === 'INTERNAL') logger.error({ err: thrown.message }, 'gateway request failed');
    const status =
      thrown.code?.startsWith('FST_ERR_CTP') === true
        ? (thrown.statusCode ?? 400)
        : error.code === 'TERMINAL_BUSY'
          ? 409
          : ERROR_CODES[error.code].http;
    if (status === 429) {
      // A refused sign-in says how long to wait; any other 429 (too many live streams) 1 s.
      const wait = thrown instanceof RateLimitedError ? thrown.retryAfterSeconds : 1;
      void reply.header('retry-after', String(wait));
    }
    const own = request.url.startsWith('/api/v1/') || isDashboardRequest(request.url);
    // checkStatus exists to learn a transaction's fate: an error from it says nothing about the
    // transaction, so it is not final, except "never received under this refID".
    const final = !request.url.includes('/checkStatus') || error.code === 'NOT_FOUND';
    void reply.code(status).send(own ? { error: error.toJSON() } : errorJson(error, final));
  });

  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'ecr-bridge cloud gateway',
        description:
          "eConduit-compatible runTransaction and checkStatus, and ecr-bridge's own /api/v1.",
        version: GATEWAY_VERSION,
      },
      components: { securitySchemes: { basic: { type: 'http', scheme: 'basic' } } },
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  /** The merchant of a key and password, or UNAUTHORIZED / RATE_LIMITED (see LoginGuard). */
  const authenticate = async (request: FastifyRequest, key: string, password: string) => {
    const merchant = await guard.attempt(request.ip, key, password, () =>
      gateway.authenticate(key, password),
    );
    if (merchant === undefined) {
      throw new EcrError('UNAUTHORIZED', 'key/password: wrong key or password', {
        field: 'key',
        rule: 'a merchant key and its password',
      });
    }
    return merchant;
  };

  /** The fields of an eConduit call: the query string, or a JSON body on POST. */
  const fieldsOf = (request: FastifyRequest): unknown => {
    if (request.method === 'POST') {
      const body = request.body;
      if (body === null || typeof body !== 'object' || Array.isArray(body))
        throw invalid('INVALID_INPUT', 'body', 'must be a JSON object');
      return { ...(request.query as object), ...body };
    }
    return request.query;
  };

  const runTransaction = async (request: FastifyRequest, reply: FastifyReply) => {
    const fields = fieldsOf(request);
    const credentials = parseRequest(Credentials, fields, FIELD_ERRORS);
    const merchant = await authenticate(request, credentials.key, credentials.password);
    const input = parseRequest(RunTransaction, fields, FIELD_ERRORS);
    validateReference(input.refID, 'refID');
    const command = commandOf(input.command);
    const { kind, followUp } = COMMANDS[command];
    const service = await gateway.serviceFor(merchant.name, input.terminalId);
    const reference = referenceOf(command, input.refID);
    const bound = await gateway.referenceTerminal(merchant.name, input.refID);
    if (followUp && bound !== undefined && bound !== input.terminalId) {
      throw invalid(
        'INVALID_INPUT',
        'refID',
        `must name a transaction of terminal ${input.terminalId}`,
        `${input.refID} is a transaction of terminal ${bound}: send the ${COMMANDS[command].name} there`,
      );
    }
    let amountText = input.amount;
    if (amountText === undefined && kind === 'void') {
      // A void moves the original's amount: eConduit clients may leave it out.
      const original = await gateway.lookup(merchant.name, input.terminalId, input.refID);
      amountText = original === undefined ? undefined : formatAmount(original.amount);
    }
    if (amountText === undefined) throw invalid('INVALID_AMOUNT', 'amount', 'is required');
    if (!AMOUNT.test(amountText)) {
      throw invalid(
        'INVALID_AMOUNT',
        'amount',
        'must be digits with a decimal point, e.g. "2.50" (the eConduit API requires one)',
        amountText.slice(0, 16),
      );
    }
    const amount = parseAmount(amountText, gateway.currency, { allowZero: kind === 'tip-adjust' });
    // A retry of a known refID gets its stored answer, whatever the terminal's state now; one whose
    // latest attempt charged nothing would start a new attempt, which needs the terminal.
    const known = await gateway.lookup(merchant.name, input.terminalId, reference);
    if (
      (known === undefined || chargedNothing(known.state)) &&
      !(await gateway.isOnline(input.terminalId))
    ) {
      // Nothing journaled: a retry once the terminal is back is a new attempt.
      throw new EcrError(
        'TERMINAL_OFFLINE',
        `terminal ${input.terminalId} is offline ("POS Offline"): nothing was sent or charged`,
        { field: 'terminalId', rule: 'the terminal must be connected to the gateway' },
      );
    }
    // A refID is the merchant's idempotency key across all its terminals: a retry sent to
    // another terminal must not charge again (the database decides between two racing calls).
    if (!followUp) {
      const owner = await gateway.bindReference(merchant.name, input.refID, input.terminalId);
      if (owner !== input.terminalId) {
        throw new EcrError(
          'DUPLICATE_REFERENCE',
          `refID: ${input.refID} was already used on terminal ${owner}: use a new refID, or checkStatus`,
          { field: 'refID', rule: 'unique across your terminals' },
        );
      }
    }
    const started = Date.now();
    const result = await service.pay(input.terminalId, {
      kind,
      reference,
      amount,
      ...(followUp ? { originalReference: input.refID } : {}),
    });
    gateway.metrics.transaction(
      COMMANDS[command].name,
      result.outcome,
      result.replayed ? undefined : (Date.now() - started) / 1000,
    );
    return reply.code(200).send(resultJson(result, command, input.refID, merchant.name));
  };

  const checkStatus = async (request: FastifyRequest, reply: FastifyReply) => {
    const fields = fieldsOf(request);
    const credentials = parseRequest(Credentials, fields, FIELD_ERRORS);
    const merchant = await authenticate(request, credentials.key, credentials.password);
    const input = parseRequest(CheckStatus, fields, FIELD_ERRORS);
    const command = commandOf(input.command);
    const reference = referenceOf(command, input.refID);
    const terminalId =
      input.terminalId ?? (await gateway.referenceTerminal(merchant.name, input.refID));
    const found =
      terminalId === undefined
        ? undefined
        : await gateway.lookup(merchant.name, terminalId, reference);
    // `INV-1:void` is the void of INV-1 only when it is a void (a refID holds no ':').
    if (terminalId !== undefined && found !== undefined && found.kind === COMMANDS[command].kind) {
      // Ask the terminal in the background; this answer says what is known now.
      if (found.state === 'unknown') gateway.reconcileSoon(merchant.name, terminalId);
      return reply.code(200).send(resultJson(found, command, input.refID, merchant.name));
    }
    throw new EcrError(
      'NOT_FOUND',
      `refID: no ${COMMANDS[command].name} with refID ${input.refID}${input.terminalId === undefined ? '' : ` on terminal ${input.terminalId}`}`,
      { field: 'refID', rule: 'must name a transaction of yours' },
    );
  };

  const jsonSchema = (zod: z.ZodType) =>
    z.toJSONSchema(zod, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  for (const method of ['GET', 'POST'] as const) {
    const fields = (zod: z.ZodType) =>
      method === 'GET' ? { querystring: jsonSchema(zod) } : { body: jsonSchema(zod) };
    app.route({
      method,
      url: '/services/api.asmx/runTransaction',
      schema: {
        summary: 'Run a transaction on a terminal (eConduit-compatible)',
        description:
          'Sale, Refund, Auth, Capture, Void or TipAdjust. refID is the idempotency key across your terminals; follow-ups reuse the original refID. ResultFinal false means: call checkStatus again.',
        ...fields(RunTransaction),
      },
      handler: runTransaction,
    });
    app.route({
      method,
      url: '/services/api.asmx/checkStatus',
      schema: {
        summary: 'What became of a transaction, by refID (eConduit-compatible)',
        ...fields(CheckStatus),
      },
      handler: checkStatus,
    });
  }

  registerGatewayApiV1(app, gateway, authenticate);

  // /livez, /readyz and /healthz (readiness, with the terminals online here), no credentials.
  registerHealthRoutes(app, {
    readiness: gateway.readiness,
    extra: () => ({ terminalsOnline: gateway.listener.onlineCount }),
  });
  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', gateway.metrics.contentType).send(await gateway.metrics.text()),
  );
  return app;
}
