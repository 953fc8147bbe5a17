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
import { toJson, toJsonWithAttempts } from '../connector/api-v1.js';
import { LoginGuard } from '../connector/auth.js';
import { ERROR_CODES, EcrError, invalid, isEcrError, toEcrError } from '../core/errors.js';
import { httpServiceLogger, silentLogger } from '../core/logger.js';
import { formatAmount, parseAmount } from '../core/money.js';
import { randomLetters } from '../core/random-text.js';
import {
  chargedNothing,
  validateReference,
  type MoneyKind,
  type TransactionResult,
} from '../core/transaction.js';
import { isDashboardRequest } from '../web/dashboard.js';
import { registerHealthRoutes } from '../web/health.js';
import { mapLimited, PRESENCE_CONCURRENCY, type Gateway } from './gateway.js';
import type { Merchant } from './tenants.js';
import { TLS_MIN_VERSION, type TlsServerConfig } from '../transports/tls.js';

/** Largest request body accepted (413 past it): a transaction call is a few hundred bytes. */
export const POS_API_MAX_BODY_BYTES = 16 * 1024;
/** A request must arrive whole within this long (slow uploads, slow-loris). */
export const POS_API_REQUEST_TIMEOUT_MS = 30_000;
/** Its headers within this long. */
export const POS_API_HEADERS_TIMEOUT_MS = 10_000;
/** The version the OpenAPI document reports. */
export const GATEWAY_VERSION = '0.1.0-ecr-bridge';

export interface PosApiOptions {
  readonly gateway: Gateway;
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

/** eConduit `command` values, and what each is here. Gift cards are not supported. */
const COMMANDS = {
  sale: { kind: 'sale', name: 'Sale', followUp: false },
  refund: { kind: 'refund', name: 'Refund', followUp: false },
  auth: { kind: 'auth', name: 'Auth', followUp: false },
  capture: { kind: 'capture', name: 'Capture', followUp: true },
  void: { kind: 'void', name: 'Void', followUp: true },
  tipadjust: { kind: 'tip-adjust', name: 'TipAdjust', followUp: true },
} as const satisfies Record<string, { kind: MoneyKind; name: string; followUp: boolean }>;
type Command = keyof typeof COMMANDS;
const GIFT_COMMANDS = ['giftactivate', 'giftsale', 'giftrefund', 'giftaddvalue', 'giftbalance'];

/** Longest refID: follow-ups are journaled as `<refID>:<command>` within 64 characters. */
const MAX_REF_ID = 50;
const ID = /^[A-Za-z0-9._-]{1,64}$/;
const AMOUNT = /^\d{1,10}\.\d{1,3}$/;

const field = (name: string, max: number) =>
  z
    .string({ error: (i) => (i.input === undefined ? 'is required' : 'must be a string') })
    .max(max, `must be at most ${max} characters`);

const Credentials = z.object({
  key: field('key', 128).min(1, 'is required'),
  password: field('password', 256).min(1, 'is required'),
});

const RunTransaction = Credentials.extend({
  command: field('command', 32).min(1, 'is required'),
  terminalId: field('terminalId', 64).regex(ID, 'letters, digits, . _ - (1 to 64)'),
  refID: field('refID', MAX_REF_ID)
    .min(1, 'is required (it makes retries and checkStatus safe)')
    .regex(/^[\x21-\x39\x3b-\x7e]+$/, "printable ASCII without spaces or ':'"),
  amount: z
    .string({
      error: (i) =>
        i.input === undefined
          ? 'is required'
          : 'must be a string with a decimal point, e.g. "2.50"',
    })
    .max(16, 'must be at most 16 characters')
    .optional(),
  invoiceNumber: field('invoiceNumber', 64).optional(),
});

const CheckStatus = Credentials.extend({
  refID: field('refID', MAX_REF_ID).min(1, 'is required'),
  terminalId: field('terminalId', 64).regex(ID, 'letters, digits, . _ - (1 to 64)').optional(),
  command: field('command', 32).optional(),
  date: field('date', 8)
    .regex(/^\d{8}$/, 'MMddyyyy')
    .optional(),
});

/** The first zod issue as a project error naming the field and the rule. */
function parseFields<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0] as z.core.$ZodIssue;
  const name = issue.path.length === 0 ? 'request' : issue.path.join('.');
  throw invalid(
    name === 'amount' ? 'INVALID_AMOUNT' : 'INVALID_INPUT',
    name,
    issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message,
  );
}

function commandOf(text: string | undefined): Command {
  const name = (text ?? 'sale').toLowerCase();
  if (Object.hasOwn(COMMANDS, name)) return name as Command;
  if (GIFT_COMMANDS.includes(name)) {
    throw new EcrError(
      'UNSUPPORTED_OPERATION',
      `command: gift card commands are not supported by this gateway (${text})`,
      { field: 'command', rule: 'Sale, Refund, Auth, Capture, Void or TipAdjust' },
    );
  }
  throw invalid(
    'INVALID_INPUT',
    'command',
    'must be Sale, Refund, Auth, Capture, Void or TipAdjust',
    text?.slice(0, 32),
  );
}

/** The journal's reference of an eConduit transaction: follow-ups reuse their original's refID. */
function referenceOf(command: Command, refId: string): string {
  return COMMANDS[command].followUp ? `${refId}:${command}` : refId;
}

const RESULT_CODES = {
  approved: 'Approved',
  declined: 'Declined',
  cancelled: 'Cancelled',
  failed: 'Error',
  unknown: 'Unknown',
} as const;

/** A transaction as eConduit's result JSON (protocols.md, "econduit"). */
function resultJson(
  result: TransactionResult,
  command: Command,
  refId: string,
  merchant: string,
): Record<string, unknown> {
  const details = result.details ?? {};
  const approved = result.outcome === 'approved';
  const approvedMinor =
    typeof details.approvedMinor === 'number' ? details.approvedMinor : result.amount.minor;
  const amount = formatAmount({
    minor: approved ? approvedMinor : result.amount.minor,
    currency: result.amount.currency,
  });
  const last4 = result.maskedPan?.slice(-4) ?? '';
  const entry = typeof details.ENTRY_MODE === 'string' ? details.ENTRY_MODE : '';
  const message =
    result.state === 'received' || result.state === 'sent'
      ? 'in progress at the terminal: call checkStatus until ResultFinal is true'
      : result.outcome === 'unknown'
        ? `${result.message ?? 'no answer seen'}: call checkStatus until ResultFinal is true`
        : (result.message ?? (approved ? 'APPROVED' : ''));
  return {
    TerminalID: result.terminalId,
    ResultCode: RESULT_CODES[result.outcome],
    // False while the outcome is not known: eConduit's own flag for "call checkStatus again".
    ResultFinal: result.outcome !== 'unknown',
    AuthCode: result.approvalCode ?? '',
    TransType: COMMANDS[command].name,
    Amount: Number(amount),
    AmountString: amount,
    CardType: result.cardBrand ?? '',
    Last4: last4,
    Name: '',
    Message: message,
    RefID: refId,
    EntryMethod: entry,
    ErrorCode: result.errorCode ?? '',
    receiptTerminal: receipt(result, command, merchant, amount),
  };
}

/** A short receipt text; the card number only ever masked. */
function receipt(
  result: TransactionResult,
  command: Command,
  merchant: string,
  amount: string,
): string {
  return [
    `Merchant: ${merchant}`,
    `Terminal: ${result.terminalId}`,
    `${result.completedAt ?? result.createdAt}`,
    `${COMMANDS[command].name.toUpperCase()} ${amount} ${result.amount.currency}`,
    ...(result.maskedPan === undefined
      ? []
      : [`Account: ${result.cardBrand ?? ''} ${result.maskedPan}`.replace('  ', ' ')]),
    ...(result.approvalCode === undefined ? [] : [`Authorization Code: ${result.approvalCode}`]),
    `Result: ${RESULT_CODES[result.outcome].toUpperCase()}`,
  ].join('\n');
}

/** An error as eConduit-shaped JSON. */
function errorJson(error: EcrError, final: boolean): Record<string, unknown> {
  return {
    ResultCode: 'Error',
    ResultFinal: final,
    Message: error.message,
    ErrorCode: error.code,
    ...(error.field === undefined ? {} : { Field: error.field }),
    ...(error.rule === undefined ? {} : { Rule: error.rule }),
  };
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

/** Letters only: a test-transaction reference must not look like a card number to a scan. */
const TEST_REFERENCE_LETTERS = 'ABCDEFGHJKLMNPQRSTUVWXYZ';

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
      const wait = (thrown as { retryAfter?: unknown }).retryAfter;
      void reply.header('retry-after', String(typeof wait === 'number' ? wait : 1));
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
    const credentials = parseFields(Credentials, fields);
    const merchant = await authenticate(request, credentials.key, credentials.password);
    const input = parseFields(RunTransaction, fields);
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
    const credentials = parseFields(Credentials, fields);
    const merchant = await authenticate(request, credentials.key, credentials.password);
    const input = parseFields(CheckStatus, fields);
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

  registerApiV1(app, gateway, authenticate);

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

/** `Authorization: Basic` as key and password, or UNAUTHORIZED. */
function basicCredentials(request: FastifyRequest): { key: string; password: string } {
  const header = request.headers.authorization ?? '';
  const match = /^Basic ([A-Za-z0-9+/=]{1,512})$/.exec(header);
  const decoded = match === null ? '' : Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) {
    throw new EcrError('UNAUTHORIZED', 'authorization: Basic credentials (key:password) required', {
      field: 'authorization',
      rule: 'HTTP Basic with the merchant key and password',
    });
  }
  return { key: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

const TestBody = z.strictObject({
  amount: z.string().max(16).regex(AMOUNT, 'must be digits with a decimal point, e.g. "1.00"'),
});
const TransactionsQuery = z.strictObject({
  outcome: z.enum(['approved', 'declined', 'cancelled', 'failed', 'unknown']).optional(),
  unresolved: z.enum(['true', 'false']).optional(),
  limit: z
    .string()
    .regex(/^\d{1,3}$/, 'a whole number from 1 to 500')
    .optional(),
});

function registerApiV1(
  app: FastifyInstance,
  gateway: Gateway,
  authenticate: (request: FastifyRequest, key: string, password: string) => Promise<Merchant>,
): void {
  const merchantOf = (request: FastifyRequest) => {
    const { key, password } = basicCredentials(request);
    return authenticate(request, key, password);
  };
  const terminalParam = (request: FastifyRequest) =>
    parseFields(
      z.object({ id: z.string().regex(ID, 'letters, digits, . _ - (1 to 64)') }),
      request.params,
    ).id;

  app.get('/api/v1/terminals', async (request) => {
    const merchant = await merchantOf(request);
    const terminals = await gateway.terminalsOf(merchant.name);
    return {
      terminals: await mapLimited(terminals, PRESENCE_CONCURRENCY, async (t) => {
        const online = await gateway.presence(t.terminalId);
        return {
          terminalId: t.terminalId,
          terminalType: t.terminalType,
          status: online === undefined ? 'POS Offline' : online.busy ? 'busy' : 'POS Online',
          online: online !== undefined,
          busy: online?.busy ?? false,
          ...(online === undefined
            ? {}
            : {
                terminalModel: online.terminalModel,
                softwareVersion: online.softwareVersion,
                remote: online.remote,
                registeredAt: new Date(online.registeredAt).toISOString(),
                lastSeenAt: new Date(online.lastSeenAt).toISOString(),
              }),
        };
      }),
    };
  });

  app.get('/api/v1/terminals/:id/transactions', async (request) => {
    const merchant = await merchantOf(request);
    const id = terminalParam(request);
    const query = parseFields(TransactionsQuery, request.query);
    const limit = query.limit === undefined ? 100 : Number(query.limit);
    if (limit < 1 || limit > 500)
      throw invalid('INVALID_INPUT', 'limit', 'a whole number from 1 to 500');
    return {
      transactions: (
        await gateway.list(merchant.name, id, {
          unresolved: query.unresolved === 'true',
          ...(query.outcome === undefined ? {} : { state: query.outcome }),
          limit,
        })
      ).map(toJson),
    };
  });

  app.get('/api/v1/transactions/:refId', async (request) => {
    const merchant = await merchantOf(request);
    const { refId } = parseFields(z.object({ refId: z.string().min(1).max(64) }), request.params);
    const matches: ReturnType<typeof toJsonWithAttempts>[] = [];
    for (const t of await gateway.terminalsOf(merchant.name)) {
      const found = await gateway.lookup(merchant.name, t.terminalId, refId);
      if (found !== undefined)
        matches.push(
          toJsonWithAttempts(found, await gateway.attemptsOf(merchant.name, t.terminalId, refId)),
        );
    }
    if (matches.length === 0) {
      throw new EcrError('NOT_FOUND', `refId: no transaction ${refId}`, {
        field: 'refId',
        rule: 'must name a transaction of yours',
      });
    }
    return { transactions: matches };
  });

  app.post('/api/v1/terminals/:id/test-transaction', async (request) => {
    const merchant = await merchantOf(request);
    const id = terminalParam(request);
    const { amount: text } = parseFields(TestBody, request.body ?? {});
    const service = await gateway.serviceFor(merchant.name, id);
    if (!(await gateway.isOnline(id))) {
      throw new EcrError(
        'TERMINAL_OFFLINE',
        `terminal ${id} is offline ("POS Offline"): nothing was sent`,
      );
    }
    const result = await service.pay(id, {
      kind: 'sale',
      reference: `test-${randomLetters(12, TEST_REFERENCE_LETTERS)}`,
      amount: parseAmount(text, gateway.currency),
    });
    gateway.metrics.transaction('Test', result.outcome, undefined);
    return { transaction: toJson(result) };
  });
}
