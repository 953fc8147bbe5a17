/**
 * The gateway's HTTP side as the gateway and cluster benches call it: a keep-alive GET with a
 * bound, the counters of its /metrics, and an eConduit `runTransaction` sale checked to be
 * Approved (the POS's call in both benches).
 */
import { request, type Agent } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** Bound on one POS call (a sale at zero card delay takes milliseconds). */
export const CALL_TIMEOUT_MS = 30_000;

/** A gateway, or one node of a cluster, over keep-alive HTTP. */
export interface HttpTarget {
  readonly base: URL;
  /** Keep-alive HTTP to it. */
  readonly agent: Agent;
  /** Put before its errors (`node-b`): which of several it was. */
  readonly label?: string;
  /** When given, every socket a request used is added: the connections opened. */
  readonly sockets?: Set<Socket>;
}

/** A merchant's API key and password. */
export interface Credentials {
  readonly key: string;
  readonly password: string;
}

const prefixOf = (target: HttpTarget) => (target.label === undefined ? '' : `${target.label}: `);

export function httpGet(
  target: HttpTarget,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.base.hostname,
        port: target.base.port,
        method: 'GET',
        path,
        headers,
        agent: target.agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.setTimeout(CALL_TIMEOUT_MS, () =>
      req.destroy(
        new Error(
          `${prefixOf(target)}no answer to GET ${path.split('?')[0]} within ${CALL_TIMEOUT_MS} ms`,
        ),
      ),
    );
    const sockets = target.sockets;
    if (sockets !== undefined) req.on('socket', (socket) => sockets.add(socket));
    req.on('error', reject);
    req.end();
  });
}

/** A count of heartbeats answered, and when it was read. */
export interface HeartbeatCount {
  readonly heartbeats: number;
  readonly at: number;
}

/** The gateway's own counters, from its /metrics. */
export interface GatewayMetrics extends HeartbeatCount {
  readonly online: number;
  readonly registrationsOk: number;
}

export async function readMetrics(target: HttpTarget): Promise<GatewayMetrics> {
  const { status, text } = await httpGet(target, '/metrics');
  if (status !== 200) throw new Error(`${prefixOf(target)}GET /metrics: HTTP ${status}`);
  const value = (pattern: string) => {
    const match = new RegExp(`^${pattern} (\\d+)`, 'm').exec(text);
    if (match === null) throw new Error(`${prefixOf(target)}GET /metrics: no ${pattern}`);
    return Number(match[1]);
  };
  return {
    heartbeats: value('ecr_gateway_heartbeats_total'),
    online: value('ecr_gateway_terminals_online'),
    registrationsOk: value('ecr_gateway_registrations_total\\{result="OK-REGISTRATION"\\}'),
    at: performance.now(),
  };
}

/** Heartbeats answered per second between two readings. */
export const perSecond = (from: HeartbeatCount, to: HeartbeatCount) =>
  ((to.heartbeats - from.heartbeats) * 1000) / (to.at - from.at);

/** One POS sale through `runTransaction` (eConduit's API). */
export interface Sale {
  readonly merchant: Credentials;
  /** With a decimal point: `1.00`. */
  readonly amount: string;
  readonly terminalId: string;
  readonly refId: string;
}

/**
 * Sends `sale` and resolves with its latency in ms once its answer is checked to be Approved;
 * fails, the message starting with `what` (the sale, as the bench names it), on anything else.
 */
export async function runTransaction(
  target: HttpTarget,
  sale: Sale,
  what: string,
): Promise<number> {
  const { merchant, amount, terminalId, refId } = sale;
  const path =
    `/services/api.asmx/runTransaction?command=Sale&key=${encodeURIComponent(merchant.key)}` +
    `&password=${encodeURIComponent(merchant.password)}&amount=${amount}` +
    `&refID=${refId}&terminalId=${terminalId}`;
  const started = performance.now();
  const answer = await httpGet(target, path).catch((error: unknown) => {
    throw new Error(`${what}: ${(error as Error).message}`);
  });
  const ms = performance.now() - started;
  let code: unknown;
  try {
    code = (JSON.parse(answer.text) as { ResultCode?: unknown }).ResultCode;
  } catch {
    code = undefined;
  }
  if (answer.status !== 200 || code !== 'Approved')
    throw new Error(`${what}: HTTP ${answer.status} ${answer.text.slice(0, 300)}`);
  return ms;
}
