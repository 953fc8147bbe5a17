import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { totalsJson, type TerminalDriver } from '../core/driver.js';
import { parseAmount } from '../core/money.js';
import type { TransactionService } from '../core/transaction-service.js';
import { MONEY_KINDS } from '../core/transaction.js';
import { parseRequest } from '../http/parse-request.js';
import {
  TransactionJson,
  transactionJson,
  transactionWithAttemptsJson,
} from '../http/transaction-json.js';

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
      const body = parseRequest(PaymentBody, request.body);
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
      return transactionJson(result);
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
      const { reference } = parseRequest(ReferenceParams, request.params);
      const found = await options.service.find(options.terminalId, reference);
      if (found === undefined) {
        return reply.code(404).send({
          error: {
            code: 'NOT_FOUND',
            message: `no finished transaction has reference ${reference}`,
          },
        });
      }
      return transactionWithAttemptsJson(
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
