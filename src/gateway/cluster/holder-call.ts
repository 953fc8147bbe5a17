import {
  createInbox,
  ErrorCode,
  type Msg,
  type NatsConnection,
  type NatsError,
  type Subscription,
} from 'nats';
import type { Clock } from '../../core/clock.js';
import { EcrError } from '../../core/errors.js';
import { watchHolder, type HolderPing } from './holder-watch.js';
import { Accepted, decode, encode, RpcReply, saysDone, token, type RpcRequest } from './wire.js';

/** nats.js errors that certainly come before a message leaves this process. */
const NOT_SENT: readonly string[] = [
  ErrorCode.ConnectionClosed,
  ErrorCode.ConnectionDraining,
  ErrorCode.Disconnect,
  ErrorCode.BadSubject,
  ErrorCode.MaxPayloadExceeded,
  ErrorCode.InvalidPayload,
];

export function isNatsError(error: unknown, code: string): boolean {
  return (error as Partial<NatsError> | undefined)?.code === code;
}

/** The requesting node, as a call to a terminal's holder needs it. */
export interface CallingNode {
  readonly nc: NatsConnection;
  readonly prefix: string;
  readonly nodeId: string;
  /** Where NATS is, for messages (credentials removed). */
  readonly where: string;
  readonly clock: Clock;
  /** How long a liveness check of the holder waits. */
  readonly controlTimeoutMs: number;
  isConnected(): boolean;
}

/**
 * One request to the holder of `terminalId`: its reply, or 'offline' when nobody holds it
 * (certainly not delivered). Throws CLUSTER_UNAVAILABLE when NATS is not reachable (not sent)
 * and TIMEOUT when the holder did not answer in time (delivered; outcome unknown).
 */
export async function callHolder(
  node: CallingNode,
  terminalId: string,
  request: RpcRequest,
  timeoutMs: number,
): Promise<RpcReply | 'offline'> {
  if (!node.isConnected()) {
    throw new EcrError(
      'CLUSTER_UNAVAILABLE',
      `${node.where} is not reachable from node ${node.nodeId}: nothing was sent`,
    );
  }
  const { nc } = node;
  let msg: Msg;
  const long = request.op === 'execute' || request.op === 'query';
  const progress = long ? nc.subscribe(createInbox(), { max: 1 }) : undefined;
  try {
    const sent = nc.request(
      `${node.prefix}.terminal.${token(terminalId)}.rpc`,
      encode(progress === undefined ? request : { ...request, progress: progress.getSubject() }),
      { timeout: timeoutMs },
    );
    msg = progress === undefined ? await sent : await watched(node, sent, progress);
  } catch (error) {
    if (isNatsError(error, ErrorCode.NoResponders)) return 'offline';
    if (isNatsError(error, ErrorCode.Timeout))
      throw new EcrError('TIMEOUT', `the node holding ${terminalId} did not answer in time`);
    if (error instanceof EcrError) throw error;
    if (NOT_SENT.some((code) => isNatsError(error, code))) {
      throw new EcrError(
        'CLUSTER_UNAVAILABLE',
        `${node.where}: ${(error as Error).message}: nothing was sent`,
        { cause: error },
      );
    }
    // Anything else (a permissions error on the reply inbox, say) may come after the request
    // left: the caller must take it for delivered.
    throw new EcrError('LINK_LOST', `${node.where}: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    progress?.unsubscribe();
  }
  return decode(RpcReply, msg.data, `the answer from the node holding ${terminalId}`);
}

/**
 * A long request's answer, while the holder that took it (it says so on `progress`) is watched
 * (holder-watch.ts): LINK_LOST as soon as it is taken for gone.
 */
async function watched(
  node: CallingNode,
  sent: Promise<Msg>,
  progress: Subscription,
): Promise<Msg> {
  let holder: string | undefined;
  void (async () => {
    for await (const m of progress) {
      try {
        holder = decode(Accepted, m.data, 'accepted').node;
      } catch {
        // A bad note changes nothing: the answer, or the timeout, still decides.
      }
    }
  })();
  const stop = new AbortController();
  const gone = watchHolder(
    {
      clock: node.clock,
      isConnected: () => node.isConnected(),
      holder: () => holder,
      ping: (holderId) => pingHolder(node, holderId, progress.getSubject()),
    },
    stop.signal,
  );
  try {
    return await Promise.race([sent, gone]);
  } finally {
    stop.abort();
    // The answer may still come (or time out) after the holder was given up on.
    sent.catch(() => {});
    gone.catch(() => {});
  }
}

/** Asks `holder` whether it lives, and whether it still works on the request `progress` names. */
function pingHolder(node: CallingNode, holder: string, progress: string): Promise<HolderPing> {
  return node.nc
    .request(`${node.prefix}.node.${holder}.ping`, encode({ request: progress }), {
      timeout: node.controlTimeoutMs,
    })
    .then(
      (pong): HolderPing => ({ type: 'pong', done: saysDone(pong.data) }),
      // Only "no responders" says the holder is gone: its subscriptions went with it.
      (error: unknown): HolderPing =>
        isNatsError(error, ErrorCode.NoResponders) ? { type: 'gone' } : { type: 'no-answer' },
    );
}
