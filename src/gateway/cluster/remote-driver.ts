import type { Clock } from '../../core/clock.js';
import type {
  BatchTotals,
  DriverRequest,
  ExecuteOptions,
  StatusQueryOptions,
  StatusTarget,
  TerminalDriver,
} from '../../core/driver.js';
import { EcrError, toEcrError } from '../../core/errors.js';
import type { DriverOutcome, PaymentRequest } from '../../core/transaction.js';
import { delay } from './holder-watch.js';
import { outcomeFromWire, type RpcReply, type RpcRequest } from './wire.js';

/**
 * How long a patient status query waits before asking again for a terminal that is on no node:
 * short, since a terminal reconnecting to another node registers within a second or so.
 */
export const OFFLINE_RETRY_MS = 250;
/** Most of a reference's earlier terminal transaction ids a status query carries (the newest). */
const MAX_EARLIER_TERMINAL_TX_IDS = 100;

/** What a RemoteDriver needs of its node: one request to a terminal's holder. */
export interface HolderLink {
  /** Where NATS is, for messages (credentials removed). */
  readonly where: string;
  /** False while the NATS connection is down. */
  readonly isConnected: boolean;
  /**
   * One request to the holder of `terminalId`: its reply, or 'offline' when nobody holds it
   * (certainly not delivered). Throws CLUSTER_UNAVAILABLE when not sent, anything else when it
   * may have been delivered.
   */
  call(terminalId: string, request: RpcRequest, timeoutMs: number): Promise<RpcReply | 'offline'>;
}

/** The bounds a RemoteDriver's calls use, from the node's options. */
export interface RemoteDriverTimeouts {
  /** Money requests, status queries and batch closes: the holder asks its terminal. */
  readonly requestTimeoutMs: number;
  /** Cancelling: the holder answers at once. */
  readonly controlTimeoutMs: number;
  /** How long a patient status query keeps asking for a terminal on no node. */
  readonly recoveryMs: number;
}

/**
 * A terminal held by some node of the cluster, as a TransactionService sees it. `sent` is
 * journaled before the request leaves this node; "no responders" proves nothing was delivered
 * (`failed`, TERMINAL_OFFLINE), no answer in time after delivery is `unknown` (the service then
 * asks the terminal's status through the holder, whichever node that is by then).
 */
export class RemoteDriver implements TerminalDriver {
  readonly protocol: string;
  readonly endpoint: string;
  readonly capabilities;

  constructor(
    private readonly node: HolderLink,
    private readonly terminalId: string,
    private readonly template: TerminalDriver,
    private readonly timeouts: RemoteDriverTimeouts,
    private readonly clock: Clock,
  ) {
    this.protocol = template.protocol;
    // The same on every node: the journal's terminal lock is taken on it across the cluster.
    this.endpoint = `econduit://${terminalId}`;
    this.capabilities = template.capabilities;
  }

  validate(request: PaymentRequest): void {
    this.template.validate(request);
  }

  async execute(request: DriverRequest, options: ExecuteOptions = {}): Promise<DriverOutcome> {
    this.validate(request);
    if (options.signal?.aborted === true)
      return { outcome: 'failed', errorCode: 'ABORTED', message: 'cancelled before sending' };
    if (!this.node.isConnected) {
      return {
        outcome: 'failed',
        errorCode: 'CLUSTER_UNAVAILABLE',
        message: `${this.node.where} is not reachable: nothing was sent`,
      };
    }
    try {
      await options.beforeSend?.();
    } catch (error) {
      const e = toEcrError(error, 'JOURNAL_ERROR');
      return { outcome: 'failed', errorCode: e.code, message: `not sent: ${e.message}` };
    }
    let reply: RpcReply | 'offline';
    try {
      reply = await this.node.call(
        this.terminalId,
        { op: 'execute', request },
        this.timeouts.requestTimeoutMs,
      );
    } catch (error) {
      const e = toEcrError(error);
      if (e.code === 'CLUSTER_UNAVAILABLE')
        return { outcome: 'failed', errorCode: e.code, message: e.message };
      // Delivered, or maybe: the holder may be driving it now.
      return {
        outcome: 'unknown',
        errorCode: 'OUTCOME_UNKNOWN',
        message: `no answer from the node holding the terminal: ${e.message}`,
      };
    }
    if (reply === 'offline') {
      return {
        outcome: 'failed',
        errorCode: 'TERMINAL_OFFLINE',
        message: `terminal ${this.terminalId} is on no gateway node ("POS Offline"): nothing was sent`,
      };
    }
    if (reply.ok && 'outcome' in reply) return outcomeFromWire(reply.outcome);
    // A refusal comes only from a holder that could not read the request: its driver never ran.
    if (!reply.ok) return { outcome: 'failed', errorCode: reply.code, message: reply.message };
    return {
      outcome: 'unknown',
      errorCode: 'OUTCOME_UNKNOWN',
      message: 'the holding node answered something else than an outcome',
    };
  }

  /**
   * Asks the holder's driver. Patient: while the terminal is on no node (it is reconnecting,
   * maybe to another node after its own died), asks again until the recovery window ends.
   */
  async queryOutcome(
    target: StatusTarget,
    options: StatusQueryOptions = {},
  ): Promise<DriverOutcome> {
    const deadline = this.clock.now() + this.timeouts.recoveryMs;
    for (;;) {
      const found = await this.queryOnce(target, options);
      const away = found.outcome === 'unknown' && found.errorCode === 'TERMINAL_UNREACHABLE';
      if (!away || options.patient !== true || this.clock.now() >= deadline) return found;
      if (options.signal?.aborted === true) return found;
      await delay(this.clock, OFFLINE_RETRY_MS);
    }
  }

  private async queryOnce(
    target: StatusTarget,
    options: StatusQueryOptions,
  ): Promise<DriverOutcome> {
    let reply: RpcReply | 'offline';
    try {
      reply = await this.node.call(
        this.terminalId,
        {
          op: 'query',
          reference: target.reference,
          ...(target.wireId === undefined ? {} : { wireId: target.wireId }),
          ...(target.attempt === undefined ? {} : { attempt: target.attempt }),
          ...(target.earlierTerminalTxIds === undefined
            ? {}
            : {
                earlierTerminalTxIds: target.earlierTerminalTxIds.slice(
                  -MAX_EARLIER_TERMINAL_TX_IDS,
                ),
              }),
          // sentAt is a date (ms since the epoch): its age, by this node's wall clock, is what
          // travels, since the holder's clock need not agree with this one.
          ...(target.sentAt === undefined
            ? {}
            : { sentAgoMs: Math.max(0, Date.now() - target.sentAt) }),
          patient: options.patient ?? false,
        },
        this.timeouts.requestTimeoutMs,
      );
    } catch (error) {
      const e = toEcrError(error);
      return { outcome: 'unknown', errorCode: 'TERMINAL_UNREACHABLE', message: e.message };
    }
    if (reply === 'offline')
      return {
        outcome: 'unknown',
        errorCode: 'TERMINAL_UNREACHABLE',
        message: `terminal ${this.terminalId} is on no gateway node: cannot ask it now`,
      };
    if (reply.ok && 'outcome' in reply) return outcomeFromWire(reply.outcome);
    return {
      outcome: 'unknown',
      errorCode: 'TERMINAL_UNREACHABLE',
      message: reply.ok ? 'the holder answered something else' : reply.message,
    };
  }

  async cancelCurrent(): Promise<boolean> {
    // A control question: the holder's driver sends the cancel and answers without waiting for
    // the transaction's end.
    const reply = await this.node.call(
      this.terminalId,
      { op: 'cancel' },
      this.timeouts.controlTimeoutMs,
    );
    return reply !== 'offline' && reply.ok && 'cancelled' in reply && reply.cancelled;
  }

  async batchClose(): Promise<BatchTotals> {
    const reply = await this.node.call(
      this.terminalId,
      { op: 'batch-close' },
      this.timeouts.requestTimeoutMs,
    );
    if (reply === 'offline')
      throw new EcrError('TERMINAL_OFFLINE', `terminal ${this.terminalId} is on no gateway node`);
    if (!reply.ok) throw new EcrError(reply.code, reply.message);
    if (!('totals' in reply)) throw new EcrError('PROTOCOL_ERROR', 'no totals in the answer');
    return reply.totals as unknown as BatchTotals;
  }

  async close(): Promise<void> {}
}
