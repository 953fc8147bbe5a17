import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { logWriteFailures } from '../core/logger.js';
import type { Readiness } from '../core/readiness.js';

/**
 * The health routes both HTTP services serve, without credentials (docs/cluster.md, "Behind a
 * load balancer"): `/livez` says the process answers and checks nothing (restart it when this
 * fails); `/readyz` runs the readiness checks (send it payments only while this is 200);
 * `/healthz` is `/readyz` under its older name.
 */

/** The paths of the health routes: no credentials asked, no sign-in counted. */
export const HEALTH_PATHS: ReadonlySet<string> = new Set(['/livez', '/readyz', '/healthz']);

/** Whether a request URL (query string and all) is one of the health routes. */
export function isHealthRequest(url: string): boolean {
  return HEALTH_PATHS.has(url.split('?', 1)[0] as string);
}

const CheckJson = z.object({
  name: z.string().describe('journal, nats or terminal-listener'),
  ok: z.boolean(),
  ms: z.number().int().describe('how long the check took (its bound when it did not end)'),
  error: z.string().optional().describe('why it failed, on one line'),
});
const LiveJson = z.object({ status: z.literal('ok') });
const ReadyJson = z.object({
  status: z.enum(['ok', 'unready']),
  terminalsOnline: z
    .number()
    .int()
    .optional()
    .describe('the gateway: terminals registered with this node'),
  logWriteFailures: z
    .number()
    .int()
    .describe('log lines this process could not write since it started (dropped; payments go on)'),
  checks: z.array(CheckJson),
});

const schema = (zod: z.ZodType) => z.toJSONSchema(zod, { io: 'output', unrepresentable: 'any' });

/** What the readiness routes answer, beside the checks. */
export interface HealthRoutesOptions {
  readonly readiness: Readiness;
  /** Fields added to the readiness body (the gateway's `terminalsOnline`). */
  readonly extra?: () => Readonly<Record<string, number | string>>;
}

/** A health answer is never cached on the way: each probe must see the node's state now. */
function fresh(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store');
}

export function registerHealthRoutes(app: FastifyInstance, options: HealthRoutesOptions): void {
  app.get(
    '/livez',
    {
      schema: {
        summary: 'Liveness: the process answers (nothing else is checked)',
        security: [],
        response: { 200: schema(LiveJson) },
      },
    },
    async (_request, reply) => fresh(reply).send({ status: 'ok' }),
  );
  const ready = async (_request: unknown, reply: FastifyReply) => {
    const report = await options.readiness.report();
    return fresh(reply)
      .code(report.ready ? 200 : 503)
      .send({
        status: report.ready ? 'ok' : 'unready',
        ...options.extra?.(),
        logWriteFailures: logWriteFailures(),
        checks: report.checks,
      });
  };
  const names = options.readiness.names.join(', ') || 'none';
  for (const [url, summary] of [
    ['/readyz', 'Readiness: 200 when a payment can be served now, 503 naming what fails'],
    ['/healthz', 'Readiness, under its older name (the same answer as /readyz)'],
  ] as const) {
    app.get(
      url,
      {
        schema: {
          summary,
          description: `Checks: ${names}. Each is bounded; an answer is reused for a moment (1 s by default).`,
          security: [],
          response: { 200: schema(ReadyJson), 503: schema(ReadyJson) },
        },
      },
      ready,
    );
  }
}
