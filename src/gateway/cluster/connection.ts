import { connect, type NatsConnection } from 'nats';
import { EcrError, invalid } from '../../core/errors.js';
import type { ParsedClusterOptions } from './options.js';
import { encode } from './wire.js';

/** Pause between the NATS client's reconnect attempts (it retries forever). */
export const NATS_RECONNECT_WAIT_MS = 500;
/**
 * How often the NATS client pings its server: a silent server is found out within a few of these,
 * and the server drops a silent client (a lost machine) as fast, freeing its subjects.
 */
export const NATS_PING_INTERVAL_MS = 10_000;
/** The NATS connection's name when the node has no id of its own (it shows in the server's list). */
export const DEFAULT_CONNECTION_NAME = 'ecr-bridge-gateway';

/** `nats://user:secret@host:4222` → `nats://host:4222`: never a password in a message. */
function describeServers(servers: string | readonly string[]): string {
  return (typeof servers === 'string' ? [servers] : servers)
    .map((s) => s.replace(/\/\/[^@/]*@/, '//'))
    .join(', ');
}

/**
 * Connects to NATS. Fails at once, naming the servers, when none answers: a node that cannot
 * route must not start. Once connected, the client reconnects by itself, forever. A `nodeId`
 * another running node answers to is refused.
 */
export async function openConnection(
  options: ParsedClusterOptions,
): Promise<{ readonly nc: NatsConnection; readonly where: string }> {
  const where = `NATS at ${describeServers(options.servers)}`;
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: options.servers,
      name: options.nodeId ?? DEFAULT_CONNECTION_NAME,
      timeout: options.connectTimeoutMs,
      maxReconnectAttempts: -1,
      reconnectTimeWait: NATS_RECONNECT_WAIT_MS,
      pingInterval: NATS_PING_INTERVAL_MS,
    });
  } catch (error) {
    throw new EcrError(
      'CLUSTER_UNAVAILABLE',
      `${where} cannot be reached: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (options.nodeId !== undefined) {
    // Two nodes with one name would answer each other's liveness checks.
    const taken = await nc
      .request(`${options.subjectPrefix}.node.${options.nodeId}.ping`, encode({}), {
        timeout: options.controlTimeoutMs,
      })
      .then(
        () => true,
        () => false,
      );
    if (taken) {
      await nc.close();
      throw invalid(
        'INVALID_INPUT',
        'nodeId',
        'must be unique in the cluster',
        `${options.nodeId} is running already`,
      );
    }
  }
  return { nc, where };
}
