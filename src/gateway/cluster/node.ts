import { ErrorCode, type Msg, type NatsConnection, type Subscription } from 'nats';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../../core/clock.js';
import type { TerminalDriver } from '../../core/driver.js';
import { EcrError, toEcrError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { parseOptions } from '../../core/options.js';
import { randomLetters } from '../../core/random-text.js';
import type { TerminalInfo } from '../terminal-listener.js';
import { openConnection } from './connection.js';
import { answerForHeld, type HeldTerminal } from './held-terminal.js';
import { callHolder, isNatsError, type CallingNode } from './holder-call.js';
import { CLUSTER_OPTIONS, type ClusterOptions, type ParsedClusterOptions } from './options.js';
import { RemoteDriver } from './remote-driver.js';
import {
  decode,
  encode,
  Ping,
  Presence,
  Release,
  RpcRequest,
  token,
  type RpcReply,
} from './wire.js';

/**
 * Gateway cluster routing over NATS request/reply (ARCHITECTURE.md, "later, multi-node"). The node
 * holding a terminal's socket serves `<prefix>.terminal.<id>.rpc` (in a queue group, so that a
 * request reaches one holder at most, even while two nodes briefly both hold the terminal); any
 * node sends a terminal's requests there. NATS answers "no responders" at once when nobody
 * serves the subject: the terminal is on no node, and nothing was delivered, so nothing can have
 * been charged. A registration on another node takes the terminal over: the new holder asks the
 * old one (`.release`) to drop its stale socket before it serves the subject itself.
 */

/** One gateway process's membership in the cluster: its NATS connection and what it serves. */
export class ClusterNode {
  readonly nodeId: string;
  /** Where NATS is, for messages (credentials removed). */
  readonly where: string;
  private readonly prefix: string;
  private readonly requestTimeoutMs: number;
  private readonly recoveryMs: number;
  private readonly controlTimeoutMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  /** What a request to another node's terminal needs of this one. */
  private readonly calling: CallingNode;
  private readonly held = new Map<string, { rpc: Subscription; release: Subscription }>();
  private readonly presenceListeners = new Set<(terminalId: string) => void>();
  /** Long requests this node is serving now, by their progress inbox (what pings ask about). */
  private readonly working = new Set<string>();
  private connected = true;
  private releaseHandler: (terminalId: string, by: string) => void = () => {};
  private reconnectHandler: (terminalIds: readonly string[]) => void = () => {};

  private constructor(
    private readonly nc: NatsConnection,
    options: ParsedClusterOptions,
    where: string,
  ) {
    this.nodeId = options.nodeId ?? `node-${randomLetters(8)}`;
    this.where = where;
    this.prefix = options.subjectPrefix;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.recoveryMs = options.recoveryMs;
    this.controlTimeoutMs = options.controlTimeoutMs;
    this.clock = options.clock ?? systemClock;
    this.logger = (options.logger ?? silentLogger).child({ node: this.nodeId });
    this.calling = {
      nc,
      prefix: this.prefix,
      nodeId: this.nodeId,
      where,
      clock: this.clock,
      controlTimeoutMs: this.controlTimeoutMs,
      isConnected: () => this.isConnected,
    };
    void this.watchStatus();
    // Nodes waiting on a request this node took ask here whether it still lives.
    nc.subscribe(`${this.prefix}.node.${this.nodeId}.ping`, {
      callback: (error, msg) => {
        if (error !== null) return;
        // Asked about a request: whether this node still works on it. Once it is done, its
        // answer went out; a caller still waiting lost it (NATS was away meanwhile).
        let working: boolean | undefined;
        try {
          const request = decode(Ping, msg.data, 'ping').request;
          if (request !== undefined) working = this.working.has(request);
        } catch {
          // A ping that does not parse still learns that this node is alive.
        }
        msg.respond(encode(working === undefined ? { ok: true } : { ok: true, working }));
      },
    });
    nc.subscribe(`${this.prefix}.presence`, {
      callback: (error, msg) => {
        if (error !== null) return;
        try {
          const event = decode(Presence, msg.data, 'presence event');
          for (const listener of this.presenceListeners) listener(event.terminalId);
        } catch (bad) {
          this.logger.warn({ err: toEcrError(bad).message }, 'ignored a bad presence event');
        }
      },
    });
  }

  /**
   * Connects to NATS (connection.ts). Fails at once, naming the servers, when none answers: a
   * node that cannot route must not start. Once connected, the client reconnects by itself.
   */
  static async connect(input: ClusterOptions): Promise<ClusterNode> {
    const options = parseOptions(CLUSTER_OPTIONS, input, 'ClusterNode');
    const { nc, where } = await openConnection(options);
    return new ClusterNode(nc, options, where);
  }

  /** False while the NATS connection is down (the client is reconnecting). */
  get isConnected(): boolean {
    return this.connected && !this.nc.isClosed();
  }

  /**
   * Readiness: a round trip to the NATS server (PING/PONG), so that a connection that looks up but
   * carries nothing counts as down. CLUSTER_UNAVAILABLE at once while disconnected; the caller
   * bounds the wait (a PING sent while NATS is silent is answered when it is back, or rejected
   * when the connection drops).
   */
  async ping(): Promise<void> {
    if (!this.isConnected) {
      throw new EcrError(
        'CLUSTER_UNAVAILABLE',
        `${this.where}: connection lost, reconnecting: payments are refused`,
      );
    }
    try {
      await this.nc.flush();
    } catch (error) {
      throw new EcrError('CLUSTER_UNAVAILABLE', `${this.where}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** Terminals this node serves now. */
  get heldCount(): number {
    return this.held.size;
  }

  /**
   * What to do after NATS came back: another node may have taken this node's terminals over
   * meanwhile (its release reached nobody here), so their connections here are dropped and the
   * terminals that are really connected register again.
   */
  onReconnect(handler: (terminalIds: readonly string[]) => void): void {
    this.reconnectHandler = handler;
  }

  /** What to do when another node takes a terminal over: drop this node's socket to it. */
  onRelease(handler: (terminalId: string, by: string) => void): void {
    this.releaseHandler = handler;
  }

  /** Calls `listener` with a terminal whose presence changed on any node; returns how to stop. */
  onPresence(listener: (terminalId: string) => void): () => void {
    this.presenceListeners.add(listener);
    return () => this.presenceListeners.delete(listener);
  }

  /**
   * Serves a terminal that registered here. First the node holding it before (a stale socket
   * after the terminal moved) is told to let go; then this node serves its subjects.
   */
  async hold(terminalId: string, terminal: HeldTerminal): Promise<void> {
    this.drop(terminalId);
    const base = `${this.prefix}.terminal.${token(terminalId)}`;
    try {
      await this.nc.request(`${base}.release`, encode({ node: this.nodeId }), {
        timeout: this.controlTimeoutMs,
      });
      this.logger.info({ terminalId }, 'took the terminal over from another node');
    } catch (error) {
      if (!isNatsError(error, ErrorCode.NoResponders)) {
        // A holder that cannot answer cannot serve either; serving here is what is left.
        this.logger.warn(
          { terminalId, err: (error as Error).message },
          'the previous holder did not confirm the takeover',
        );
      }
    }
    // Meanwhile the terminal may have left (nothing to serve), or registered here again (that
    // registration's hold serves it: one subscription pair per terminal, the latest).
    this.drop(terminalId);
    if (terminal.info() === undefined) return;
    const rpc = this.nc.subscribe(`${base}.rpc`, {
      queue: 'holder',
      callback: (error, msg) => {
        if (error === null) void this.serve(terminalId, terminal, msg);
      },
    });
    // Not in the queue group: a takeover reaches every node that holds the terminal.
    const release = this.nc.subscribe(`${base}.release`, {
      callback: (error, msg) => {
        if (error !== null) return;
        let by = 'another node';
        try {
          by = decode(Release, msg.data, 'release').node;
        } catch (bad) {
          this.logger.warn({ err: toEcrError(bad).message }, 'ignored a bad release request');
          return;
        }
        if (by === this.nodeId) return;
        this.drop(terminalId);
        msg.respond(encode({ ok: true }));
        this.logger.warn({ terminalId, by }, 'the terminal registered on another node: dropped');
        this.releaseHandler(terminalId, by);
      },
    });
    this.held.set(terminalId, { rpc, release });
    this.announce(terminalId, true);
  }

  /** The terminal left this node (its connection ended): stop serving it. */
  release(terminalId: string): void {
    if (this.drop(terminalId)) this.announce(terminalId, false);
  }

  /**
   * The terminal's live state from the node holding it: undefined when no node holds it.
   * Throws CLUSTER_UNAVAILABLE while this node cannot reach NATS.
   */
  async presence(terminalId: string): Promise<TerminalInfo | undefined> {
    const reply = await this.call(terminalId, { op: 'status' }, this.controlTimeoutMs);
    if (reply === 'offline') return undefined;
    if (reply.ok && 'info' in reply) return reply.info;
    return undefined;
  }

  /**
   * The driver a TransactionService uses for a terminal in the cluster: every call goes to the
   * node holding the terminal. `template` is a driver of the terminal's protocol, used only for
   * what it knows without a link (capabilities, validation).
   */
  remoteDriver(terminalId: string, template: TerminalDriver): TerminalDriver {
    const timeouts = {
      requestTimeoutMs: this.requestTimeoutMs,
      controlTimeoutMs: this.controlTimeoutMs,
      recoveryMs: this.recoveryMs,
    };
    return new RemoteDriver(this, terminalId, template, timeouts, this.clock);
  }

  async close(): Promise<void> {
    for (const terminalId of [...this.held.keys()]) this.release(terminalId);
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close().catch(() => {});
    }
  }

  /**
   * One request to the holder of `terminalId` (holder-call.ts): its reply, or 'offline' when
   * nobody holds it (certainly not delivered). Throws CLUSTER_UNAVAILABLE when NATS is not
   * reachable (not sent) and TIMEOUT when the holder did not answer in time (delivered; outcome
   * unknown).
   */
  call(terminalId: string, request: RpcRequest, timeoutMs: number): Promise<RpcReply | 'offline'> {
    return callHolder(this.calling, terminalId, request, timeoutMs);
  }
  private drop(terminalId: string): boolean {
    const subscriptions = this.held.get(terminalId);
    if (subscriptions === undefined) return false;
    this.held.delete(terminalId);
    subscriptions.rpc.unsubscribe();
    subscriptions.release.unsubscribe();
    return true;
  }

  private announce(terminalId: string, online: boolean): void {
    if (!this.isConnected) return;
    try {
      this.nc.publish(`${this.prefix}.presence`, encode({ terminalId, online, node: this.nodeId }));
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'could not announce a presence change');
    }
  }

  /** Answers one request for a terminal this node holds (held-terminal.ts runs it). */
  private async serve(terminalId: string, terminal: HeldTerminal, msg: Msg): Promise<void> {
    const answer = (reply: RpcReply): void => {
      try {
        msg.respond(encode(reply));
      } catch (error) {
        this.logger.warn({ terminalId, err: (error as Error).message }, 'could not answer a node');
      }
    };
    let request: RpcRequest;
    try {
      request = decode(RpcRequest, msg.data, 'cluster request');
    } catch (error) {
      const e = toEcrError(error);
      this.logger.warn({ terminalId, err: e.message }, 'refused a malformed cluster request');
      answer({ ok: false, code: e.code, message: e.message });
      return;
    }
    const progress = 'progress' in request ? request.progress : undefined;
    if (progress !== undefined) {
      this.working.add(progress);
      try {
        this.nc.publish(progress, encode({ node: this.nodeId }));
      } catch {
        // The caller then only has the answer or its timeout to go by.
      }
    }
    try {
      answer(await answerForHeld(terminal, request));
    } finally {
      if (progress !== undefined) this.working.delete(progress);
    }
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') {
        this.connected = false;
        this.logger.error({ where: this.where }, 'lost NATS: new payments are refused');
      } else if (status.type === 'reconnect') {
        this.connected = true;
        const held = [...this.held.keys()];
        this.logger.warn(
          { where: this.where, terminals: held.length },
          'NATS is back: the terminals held here register again',
        );
        for (const terminalId of held) this.drop(terminalId);
        this.reconnectHandler(held);
      }
    }
  }
}
