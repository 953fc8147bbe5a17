import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { totalsJson, type TerminalDriver } from '../core/driver.js';
import { invalid } from '../core/errors.js';
import { formatAmount, parseAmount } from '../core/money.js';
import type { TransactionService } from '../core/transaction-service.js';
import { MONEY_KINDS, type TransactionResult } from '../core/transaction.js';

/**
 * The connector's own API under `/api/v1`, in the project's clean model (the same data as the
 * HiPay-compatible routes). The zod schemas here validate requests and, turned into JSON Schema,
 * are what the OpenAPI document at `/docs` shows: one source for both.
 */

export const PaymentBody = z.strictObject({
  reference: z.string().min(1).max(64).describe('Your order id: the idempotency key.'),
  amount: z
    .union([z.number(), z.string().max(32)])
    .describe('Major units: 10.23, "10.23" or "10,23".'),
  currency: z.string().length(3).optional().describe("ISO 4217; default the terminal's."),
  kind: z.enum(MONEY_KINDS).default('sale'),
  originalReference: z
    .string()
    .min(1)
    .max(64)
    .optional()
    .describe('The transaction a void, capture, tip-adjust or refund applies to.'),
  forceAuthorization: z.boolean().optional(),
});

const OUTCOMES = ['approved', 'declined', 'cancelled', 'failed', 'unknown'] as const;

/** One attempt under a reference: the cashier's first card, then another after a decline… */
export const AttemptJson = z.object({
  attempt: z.number().int().min(1),
  outcome: z.enum(OUTCOMES),
  state: z.string(),
  errorCode: z.string().optional(),
  message: z.string().optional(),
  approvalCode: z.string().optional(),
  maskedPan: z.string().optional(),
  terminalTxId: z.string().optional(),
  createdAt: z.string(),
  completedAt: z.string().optional(),
});

export const TransactionJson = z.object({
  reference: z.string(),
  terminalId: z.string(),
  kind: z.enum(MONEY_KINDS),
  amount: z.string().describe('Major units, e.g. "10.23".'),
  currency: z.string(),
  outcome: z.enum(OUTCOMES),
  state: z.string(),
  attempt: z
    .number()
    .int()
    .min(1)
    .describe('Which attempt under the reference this is (a new one after nothing was charged).'),
  attempts: z
    .array(AttemptJson)
    .optional()
    .describe('Every attempt under the reference, the first first (on lookups by reference).'),
  replayed: z.boolean(),
  errorCode: z.string().optional(),
  message: z.string().optional(),
  approvalCode: z.string().optional(),
  maskedPan: z.string().optional(),
  cardBrand: z.string().optional(),
  terminalTxId: z.string().optional(),
  createdAt: z.string(),
  completedAt: z.string().optional(),
});

export const ErrorJson = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    field: z.string().optional(),
    rule: z.string().optional(),
  }),
});

export const TerminalJson = z.object({
  terminalId: z.string(),
  protocol: z.string(),
  endpoint: z.string(),
  serial: z.string().nullable(),
  capabilities: z.array(z.string()),
});

const ReferenceParams = z.strictObject({ reference: z.string().min(1).max(64) });

/** A transaction in the project's own JSON model (the connector's and the gateway's /api/v1). */
export function toJson(result: TransactionResult): z.infer<typeof TransactionJson> {
  return {
    reference: result.reference,
    terminalId: result.terminalId,
    kind: result.kind,
    amount: formatAmount(result.amount),
    currency: result.amount.currency,
    outcome: result.outcome,
    state: result.state,
    attempt: result.attempt,
    replayed: result.replayed,
    createdAt: result.createdAt,
    ...(result.completedAt === undefined ? {} : { completedAt: result.completedAt }),
    ...(result.errorCode === undefined ? {} : { errorCode: result.errorCode }),
    ...(result.message === undefined ? {} : { message: result.message }),
    ...(result.approvalCode === undefined ? {} : { approvalCode: result.approvalCode }),
    ...(result.maskedPan === undefined ? {} : { maskedPan: result.maskedPan }),
    ...(result.cardBrand === undefined ? {} : { cardBrand: result.cardBrand }),
    ...(result.terminalTxId === undefined ? {} : { terminalTxId: result.terminalTxId }),
  };
}

/** A transaction with the list of its reference's attempts (`attempts` from the journal). */
export function toJsonWithAttempts(
  latest: TransactionResult,
  attempts: readonly TransactionResult[],
): z.infer<typeof TransactionJson> {
  return {
    ...toJson(latest),
    attempts: attempts.map((a) => ({
      attempt: a.attempt,
      outcome: a.outcome,
      state: a.state,
      createdAt: a.createdAt,
      ...(a.completedAt === undefined ? {} : { completedAt: a.completedAt }),
      ...(a.errorCode === undefined ? {} : { errorCode: a.errorCode }),
      ...(a.message === undefined ? {} : { message: a.message }),
      ...(a.approvalCode === undefined ? {} : { approvalCode: a.approvalCode }),
      ...(a.maskedPan === undefined ? {} : { maskedPan: a.maskedPan }),
      ...(a.terminalTxId === undefined ? {} : { terminalTxId: a.terminalTxId }),
    })),
  };
}

/** Validates with a zod schema; the first problem is an INVALID_INPUT naming the field. */
function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0] as z.core.$ZodIssue;
  const field = issue.path.length === 0 ? 'body' : issue.path.join('.');
  if (issue.code === 'unrecognized_keys')
    throw invalid('INVALID_INPUT', issue.keys.join(', '), 'is not a field of this request');
  throw invalid(
    'INVALID_INPUT',
    field,
    issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message,
  );
}

const schema = (zod: z.ZodType) => z.toJSONSchema(zod, { io: 'input', unrepresentable: 'any' });

export interface ApiV1Options {
  readonly service: TransactionService;
  readonly terminalId: string;
  readonly driver: TerminalDriver;
  readonly currency: string;
  readonly version: string;
}

/** Registers `/api/v1/…` on `app` (inside the connector's Basic Auth). */
export function registerApiV1(app: FastifyInstance, options: ApiV1Options): void {
  const errors = { 400: schema(ErrorJson), 401: schema(ErrorJson), 409: schema(ErrorJson) };
  app.post(
    '/api/v1/payments',
    {
      schema: {
        summary: 'Take a payment (or a refund, void, …) on the terminal',
        body: schema(PaymentBody),
        response: { 200: schema(TransactionJson), ...errors },
      },
    },
    async (request) => {
      const body = parse(PaymentBody, request.body);
      const amount = parseAmount(body.amount, body.currency ?? options.currency, {
        field: 'amount',
      });
      const result = await options.service.pay(options.terminalId, {
        kind: body.kind,
        reference: body.reference,
        amount,
        ...(body.originalReference === undefined
          ? {}
          : { originalReference: body.originalReference }),
        ...(body.forceAuthorization === undefined
          ? {}
          : { forceAuthorization: body.forceAuthorization }),
      });
      return toJson(result);
    },
  );
  app.get(
    '/api/v1/payments/:reference',
    {
      schema: {
        summary: 'The stored result of a payment, by reference',
        params: schema(ReferenceParams),
        response: { 200: schema(TransactionJson), 404: schema(ErrorJson) },
      },
    },
    async (request, reply) => {
      const { reference } = parse(ReferenceParams, request.params);
      const found = await options.service.find(options.terminalId, reference);
      if (found === undefined) {
        return reply.code(404).send({
          error: {
            code: 'NOT_FOUND',
            message: `no finished transaction has reference ${reference}`,
          },
        });
      }
      return toJsonWithAttempts(
        found,
        await options.service.attempts(options.terminalId, reference),
      );
    },
  );
  app.get(
    '/api/v1/terminal',
    {
      schema: {
        summary: 'The terminal behind this connector',
        response: { 200: schema(TerminalJson) },
      },
    },
    async () => ({
      terminalId: options.terminalId,
      protocol: options.driver.protocol,
      endpoint: options.driver.endpoint,
      serial: options.driver.serial ?? null,
      capabilities: [...options.driver.capabilities],
    }),
  );
  app.post(
    '/api/v1/terminal/cancel',
    { schema: { summary: 'Ask the terminal to abandon the payment in progress' } },
    async () => ({ cancelled: await options.service.cancelCurrent(options.terminalId) }),
  );
  app.post(
    '/api/v1/terminal/batch-close',
    { schema: { summary: "Close the terminal's batch (telecollection)" } },
    async () => totalsJson(await options.service.batchClose(options.terminalId)),
  );
  app.get('/api/v1/version', { schema: { summary: 'The connector version' } }, async () => ({
    version: options.version,
  }));
}
