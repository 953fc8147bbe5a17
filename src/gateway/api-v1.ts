import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { EcrError, invalid } from '../core/errors.js';
import { parseAmount } from '../core/money.js';
import { randomLetters } from '../core/random-text.js';
import { parseRequest } from '../http/parse-request.js';
import {
  TransactionListQuery,
  transactionJson,
  transactionWithAttemptsJson,
} from '../http/transaction-json.js';
import { AMOUNT, FIELD_ERRORS, ID } from './econduit-shapes.js';
import type { GatewayPort } from './gateway-port.js';
import type { Merchant } from './tenants.js';

/**
 * The gateway's own API under `/api/v1`, in the project's JSON model (HTTP Basic with the
 * merchant's key and password): a merchant's terminals with their live state, its transactions,
 * and a test sale on one of its terminals.
 */

/** Letters only: a test-transaction reference must not look like a card number to a scan. */
const TEST_REFERENCE_LETTERS = 'ABCDEFGHJKLMNPQRSTUVWXYZ';

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

/** Registers `/api/v1/…` on the POS API; `authenticate` is its guarded sign-in. */
export function registerGatewayApiV1(
  app: FastifyInstance,
  gateway: GatewayPort,
  authenticate: (request: FastifyRequest, key: string, password: string) => Promise<Merchant>,
): void {
  const merchantOf = (request: FastifyRequest) => {
    const { key, password } = basicCredentials(request);
    return authenticate(request, key, password);
  };
  const terminalParam = (request: FastifyRequest) =>
    parseRequest(
      z.object({ id: z.string().regex(ID, 'letters, digits, . _ - (1 to 64)') }),
      request.params,
      FIELD_ERRORS,
    ).id;

  app.get('/api/v1/terminals', async (request) => {
    const merchant = await merchantOf(request);
    return {
      terminals: (await gateway.terminalsWithPresence(merchant.name)).map(
        ({ terminal: t, online }) => ({
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
        }),
      ),
    };
  });

  app.get('/api/v1/terminals/:id/transactions', async (request) => {
    const merchant = await merchantOf(request);
    const id = terminalParam(request);
    const query = parseRequest(TransactionListQuery, request.query, FIELD_ERRORS);
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
      ).map(transactionJson),
    };
  });

  app.get('/api/v1/transactions/:refId', async (request) => {
    const merchant = await merchantOf(request);
    const { refId } = parseRequest(
      z.object({ refId: z.string().min(1).max(64) }),
      request.params,
      FIELD_ERRORS,
    );
    const matches: ReturnType<typeof transactionWithAttemptsJson>[] = [];
    for (const t of await gateway.terminalsOf(merchant.name)) {
      const found = await gateway.lookup(merchant.name, t.terminalId, refId);
      if (found !== undefined)
        matches.push(
          transactionWithAttemptsJson(
            found,
            await gateway.attemptsOf(merchant.name, t.terminalId, refId),
          ),
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
    const { amount: text } = parseRequest(TestBody, request.body ?? {}, FIELD_ERRORS);
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
    return { transaction: transactionJson(result) };
  });
}
