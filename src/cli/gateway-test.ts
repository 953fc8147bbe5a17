import { EcrError, invalid, type ErrorCode } from '../core/errors.js';
import type { Outcome } from '../core/transaction.js';
import { validateTenantId } from '../gateway/tenants.js';
import { httpCall } from '../transports/http-client.js';
import { loadTlsCa, tlsFailureReason } from '../transports/tls.js';
import type { CommandOutput, CommonOptions } from './main.js';
import { OUTCOME_EXIT_CODES } from './output.js';

export interface GatewayTestOptions extends CommonOptions {
  readonly terminal: string;
  readonly amount: string;
  readonly url: string;
  readonly key?: string;
  readonly password?: string;
  readonly tlsCa?: string;
}

/**
 * `ecr-bridge gateway test --terminal ID --amount 1.00`: a test sale on a terminal through a
 * running gateway's test-transaction endpoint (seed 002's "url to send test transactions").
 */
export async function runGatewayTest(options: GatewayTestOptions): Promise<CommandOutput> {
  validateTenantId('terminal', options.terminal);
  if (options.key === undefined || options.password === undefined) {
    throw invalid(
      'INVALID_INPUT',
      options.key === undefined ? 'key' : 'password',
      'is required (--key/--password or ECR_BRIDGE_GATEWAY_KEY/ECR_BRIDGE_GATEWAY_PASSWORD)',
    );
  }
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    throw invalid('INVALID_INPUT', 'url', 'must be the gateway URL, e.g. http://127.0.0.1:8081');
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw invalid('INVALID_INPUT', 'url', 'must be an http:// or https:// URL', options.url);
  if (options.tlsCa !== undefined && base.protocol !== 'https:')
    throw invalid('INVALID_INPUT', '--tls-ca', 'is only used with an https:// --url');
  const ca = options.tlsCa === undefined ? undefined : loadTlsCa(options.tlsCa, '--tls-ca');
  const url = new URL(
    `/api/v1/terminals/${encodeURIComponent(options.terminal)}/test-transaction`,
    base,
  );
  let response: { status: number; text: string };
  try {
    response = await httpCall({
      url,
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${options.key}:${options.password}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ amount: options.amount }),
      ...(ca === undefined ? {} : { ca }),
      signal: AbortSignal.timeout(300_000),
    });
  } catch (error) {
    const why = tlsFailureReason((error as NodeJS.ErrnoException).code);
    throw new EcrError(
      'TERMINAL_UNREACHABLE',
      `cannot reach the gateway at ${base.origin}: ${why === undefined ? '' : `${why}: `}${(error as Error).message}`,
    );
  }
  const body = (() => {
    try {
      return JSON.parse(response.text) as unknown;
    } catch {
      return {};
    }
  })() as {
    transaction?: { outcome: Outcome; amount: string; currency: string; reference: string };
    error?: { code: ErrorCode; message: string; field?: string; rule?: string };
  };
  if (body.error !== undefined) {
    throw new EcrError(body.error.code, body.error.message, {
      ...(body.error.field === undefined ? {} : { field: body.error.field }),
      ...(body.error.rule === undefined ? {} : { rule: body.error.rule }),
    });
  }
  const tx = body.transaction;
  if (tx === undefined)
    throw new EcrError('PROTOCOL_ERROR', `unexpected answer (HTTP ${response.status})`);
  return {
    exitCode: OUTCOME_EXIT_CODES[tx.outcome],
    json: body.transaction,
    text: `${tx.outcome}  ${tx.amount} ${tx.currency}  on terminal ${options.terminal}  reference ${tx.reference}`,
  };
}
