import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  connect,
  createInbox,
  ErrorCode,
  type Msg,
  type NatsConnection,
  type NatsError,
  type Subscription,
} from 'nats';
import type { Logger } from 'pino';
import { z } from 'zod';
import type {
  BatchTotals,
  DriverRequest,
  ExecuteOptions,
  StatusQueryOptions,
  StatusTarget,
  TerminalDriver,
} from '../core/driver.js';
import {
  EcrError,
  ERROR_CODES,
  invalid,
  toEcrError,
  type ErrorCode as EcrCode,
} from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { MAX_TIMER_MS, parseOptions, wholeNumber } from '../core/options.js';
import type { DriverOutcome, PaymentRequest } from '../core/transaction.js';
import type { TerminalInfo } from './terminal-listener.js';

/**
 * Gateway cluster routing over NATS request/reply (ARCHITECTURE.md, "later, multi-node"). The node
 * holding a terminal's socket serves `<prefix>.terminal.<id>.rpc` (in a queue group, so that a
 * request reaches one holder at most, even while two nodes briefly both hold the terminal); any
 * node sends a terminal's requests there. NATS answers "no responders" at once when nobody
 * serves the subject: the terminal is on no node, and nothing was delivered, so nothing can have
 * been charged. A registration on another node takes the terminal over: the new holder asks the
 * old one (`.release`) to drop its stale socket before it serves the subject itself.
 */

/** Default subject prefix: two clusters may share a NATS server with different ones. */
export const DEFAULT_SUBJECT_PREFIX = 'ecr';
/**
 * How long a node waits for the holder's answer to a money request: the holder's SEMI driver
 * answers within its card step and recovery window (2 + 0.5 min); past this it is `unknown`.
 */
export const DEFAULT_CLUSTER_REQUEST_TIMEOUT_MS = 180_000;
/**
 * How long a patient status query keeps asking for a terminal that is on no node (reconnecting,
 * perhaps to another node): like the gateway's own recovery window.
 */
export const DEFAULT_CLUSTER_RECOVERY_MS = 30_000;
const OFFLINE_RETRY_MS = 250;
/** How long a presence or release question waits before it counts as unanswered. */
export const DEFAULT_CLUSTER_CONTROL_TIMEOUT_MS = 2_000;
/** Largest NATS message this node accepts or sends (a payment request is a few hundred bytes). */
export const MAX_CLUSTER_MESSAGE_BYTES = 16 * 1024;

const PREFIX = /^[A-Za-z0-9_-]{1,32}$/;

const OPTIONS = z.strictObject({
  servers: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(16)]),
  nodeId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ and -, 1 to 32')
    .optional(),
  subjectPrefix: z
    .string()
    .regex(PREFIX, 'letters, digits, _ and -, 1 to 32')
    .default(DEFAULT_SUBJECT_PREFIX),
  requestTimeoutMs: wholeNumber(1, MAX_TIMER_MS).default(DEFAULT_CLUSTER_REQUEST_TIMEOUT_MS),
  recoveryMs: wholeNumber(0, MAX_TIMER_MS).default(DEFAULT_CLUSTER_RECOVERY_MS),
  controlTimeoutMs: wholeNumber(1, 60_000).default(DEFAULT_CLUSTER_CONTROL_TIMEOUT_MS),
  connectTimeoutMs: wholeNumber(1, 60_000).default(5_000),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null).optional(),
});
export type ClusterOptions = z.input<typeof OPTIONS>;

/** What the node holding a terminal serves for it. */
export interface HeldTerminal {
  /** The driver over this node's socket to the terminal. */
  readonly driver: TerminalDriver;
  /** The terminal's registration and liveness, while connected here. */
  info(): TerminalInfo | undefined;
}

// The wire format between nodes. Both ends validate: a message that does not parse is refused
// with a coded error (holder side) or taken for no answer (requester side), never guessed at.

/** A terminal's field, as long as the SEMI codec lets it be (its MAX_FIELD). */
const FIELD = z.string().max(256);
const Money = z.strictObject({
  minor: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  currency: z.string().regex(/^[A-Z]{3}$/),
});
const KIND = z.enum(['sale', 'refund', 'void', 'auth', 'capture', 'tip-adjust']);
const Request = z.strictObject({
  kind: KIND,
  reference: z.string().min(1).max(64),
  amount: Money,
  method: z.enum(['card', 'wallet']).optional(),
  originalReference: z.string().min(1).max(64).optional(),
  receiptEmail: z.string().max(254).optional(),
  receiptSms: z.string().max(32).optional(),
  forceAuthorization: z.boolean().optional(),
  wireId: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  original: z
    .strictObject({
      reference: z.string().min(1).max(64),
      kind: KIND,
      amount: Money,
      terminalTxId: FIELD.optional(),
    })
    .optional(),
});
/** Where the holder says, as soon as it takes a long request, which node it is. */
const PROGRESS = z
  .string()
  .regex(/^_INBOX\.[A-Za-z0-9]{1,64}$/)
  .optional();
const RpcRequest = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('execute'), request: Request, progress: PROGRESS }),
  z.strictObject({
    op: z.literal('query'),
    progress: PROGRESS,
    reference: z.string().min(1).max(64),
    wireId: z.number().int().positive().optional(),
    attempt: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
    earlierTerminalTxIds: z.array(FIELD).max(100).optional(),
    // An age, not a time: the two nodes' clocks need not agree.
    sentAgoMs: z.number().int().nonnegative().optional(),
    patient: z.boolean(),
  }),
  z.strictObject({ op: z.literal('cancel') }),
  z.strictObject({ op: z.literal('batch-close') }),
  z.strictObject({ op: z.literal('status') }),
]);
type RpcRequest = z.infer<typeof RpcRequest>;

const ERROR_CODE = z.custom<EcrCode>((v) => typeof v === 'string' && Object.hasOwn(ERROR_CODES, v));
const Outcome = z.object({
  outcome: z.enum(['approved', 'declined', 'cancelled', 'failed', 'unknown']),
  errorCode: ERROR_CODE.optional(),
  message: z.string().max(4_000).optional(),
  approvalCode: FIELD.optional(),
  maskedPan: FIELD.optional(),
  cardBrand: FIELD.optional(),
  terminalTxId: FIELD.optional(),
  details: z.record(z.string().max(256), z.union([FIELD, z.number(), z.boolean()])).optional(),
});
/** A terminal's live state as its holder reports it (shown by every node). */
const Info = z.object({
  terminalId: z.string().min(1).max(64),
  terminalType: z.string().max(64),
  terminalModel: z.string().max(256),
  softwareVersion: z.string().max(256),
  ackHeartbeat: z.boolean(),
  payload: z.enum(['semi']),
  remote: z.string().max(128),
  registeredAt: z.number().int().nonnegative().max(8.64e15),
  lastSeenAt: z.number().int().nonnegative().max(8.64e15),
  busy: z.boolean(),
});
const Totals = z.object({ batchNumber: z.string().max(64) }).catchall(z.unknown());
const RpcReply = z.union([
  z.object({ ok: z.literal(true), outcome: Outcome }),
  z.object({ ok: z.literal(true), cancelled: z.boolean() }),
  z.object({ ok: z.literal(true), totals: Totals }),
  z.object({ ok: z.literal(true), info: Info }),
  z.object({ ok: z.literal(false), code: ERROR_CODE, message: z.string().max(2_000) }),
]);
type RpcReply = z.infer<typeof RpcReply>;

const Release = z.strictObject({ node: z.string().max(32) });
/** A liveness check; naming a request (its progress inbox) asks whether the holder is still on it. */
const Ping = z.object({ request: PROGRESS });
const Accepted = z.strictObject({ node: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/) });
/** How often a node waiting on a long request checks that the holder that took it still lives. */
export const HOLDER_WATCH_INTERVAL_MS = 1_000;
/** Failed checks in a row after which the holder is taken for gone. */
const HOLDER_MISSES = 3;
const Presence = z.strictObject({
  terminalId: z.string().min(1).max(64),
  online: z.boolean(),
  node: z.string().max(32),
});

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encode(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** Parses a NATS payload with `schema`; INVALID_INPUT naming what is wrong otherwise. */
function decode<T>(schema: z.ZodType<T>, data: Uint8Array, what: string): T {
  if (data.length > MAX_CLUSTER_MESSAGE_BYTES)
    throw new EcrError('INVALID_INPUT', `${what}: larger than ${MAX_CLUSTER_MESSAGE_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(data));
  } catch {
    throw new EcrError('INVALID_INPUT', `${what}: not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new EcrError(
      'INVALID_INPUT',
      `${what}: ${issue?.path.join('.') || 'message'} ${issue?.message ?? 'is malformed'}`,
    );
  }
  return parsed.data;
}

/** A terminal id as one subject token: ids hold letters, digits, `.`, `_`, `-`; `.` splits tokens. */
function token(terminalId: string): string {
  return terminalId.replace(/\./g, '~');
}

function randomNodeId(): string {
  let id = 'node-';
  for (let i = 0; i < 8; i++) id += String.fromCharCode(97 + randomInt(26));
  return id;
}

/** nats.js errors that certainly come before a message leaves this process. */
const NOT_SENT: readonly string[] = [
  ErrorCode.ConnectionClosed,
  ErrorCode.ConnectionDraining,
  ErrorCode.Disconnect,
  ErrorCode.BadSubject,
  ErrorCode.MaxPayloadExceeded,
  ErrorCode.InvalidPayload,
];

/** A holder's answer to a ping about a request: true when it says it is done with it. */
function isDone(data: Uint8Array): boolean {
  try {
    return (JSON.parse(decoder.decode(data)) as { working?: unknown }).working === false;
  } catch {
    return false;
  }
}

function isNatsError(error: unknown, code: string): boolean {
  return (error as Partial<NatsError> | undefined)?.code === code;
}

/** `nats://user:secret@host:4222` → `nats://host:4222`: never a password in a message. */
function describeServers(servers: string | readonly string[]): string {
  return (typeof servers === 'string' ? [servers] : servers)
    .map((s) => s.replace(/\/\/[^@/]*@/, '//'))
    .join(', ');
}

/** One gateway process's membership in the cluster: its NATS connection and what it serves. */
export class ClusterNode {
  readonly nodeId: string;
  /** Where NATS is, for messages (credentials removed). */
  readonly where: string;
  private readonly prefix: string;
  private readonly requestTimeoutMs: number;
  private readonly recoveryMs: number;
  private readonly controlTimeoutMs: number;
  private readonly logger: Logger;
  private readonly held = new Map<string, { rpc: Subscription; release: Subscription }>();
  private readonly presenceListeners = new Set<(terminalId: string) => void>();
  /** Long requests this node is serving now, by their progress inbox (what pings ask about). */
  private readonly working = new Set<string>();
  private connected = true;
  private releaseHandler: (terminalId: string, by: string) => void = () => {};
  private reconnectHandler: (terminalIds: readonly string[]) => void = () => {};

  private constructor(
    private readonly nc: NatsConnection,
    options: z.output<typeof OPTIONS>,
    where: string,
  ) {
    this.nodeId = options.nodeId ?? randomNodeId();
    this.where = where;
    this.prefix = options.subjectPrefix;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.recoveryMs = options.recoveryMs;
    this.controlTimeoutMs = options.controlTimeoutMs;
    this.logger = (options.logger ?? silentLogger).child({ node: this.nodeId });
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
   * Connects to NATS. Fails at once, naming the servers, when none answers: a node that cannot
   * route must not start. Once connected, the client reconnects by itself, forever.
   */
  static async connect(input: ClusterOptions): Promise<ClusterNode> {
    const options = parseOptions(OPTIONS, input, 'ClusterNode');
    const where = `NATS at ${describeServers(options.servers)}`;
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: options.servers,
        name: options.nodeId ?? 'ecr-bridge-gateway',
        timeout: options.connectTimeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        pingInterval: 10_000,
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
    return new RemoteDriver(this, terminalId, template, this.requestTimeoutMs, this.recoveryMs);
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
   * One request to the holder of `terminalId`: its reply, or 'offline' when nobody holds it
   * (certainly not delivered). Throws CLUSTER_UNAVAILABLE when NATS is not reachable (not sent)
   * and TIMEOUT when the holder did not answer in time (delivered; outcome unknown).
   */
  async call(
    terminalId: string,
    request: RpcRequest,
    timeoutMs: number,
  ): Promise<RpcReply | 'offline'> {
    if (!this.isConnected) {
      throw new EcrError(
        'CLUSTER_UNAVAILABLE',
        `${this.where} is not reachable from node ${this.nodeId}: nothing was sent`,
      );
    }
    let msg: Msg;
    const long = request.op === 'execute' || request.op === 'query';
    const progress = long ? this.nc.subscribe(createInbox(), { max: 1 }) : undefined;
    try {
      const sent = this.nc.request(
        `${this.prefix}.terminal.${token(terminalId)}.rpc`,
        encode(progress === undefined ? request : { ...request, progress: progress.getSubject() }),
        { timeout: timeoutMs },
      );
      msg = progress === undefined ? await sent : await this.watchHolder(sent, progress);
    } catch (error) {
      if (isNatsError(error, ErrorCode.NoResponders)) return 'offline';
      if (isNatsError(error, ErrorCode.Timeout))
        throw new EcrError('TIMEOUT', `the node holding ${terminalId} did not answer in time`);
      if (error instanceof EcrError) throw error;
      if (NOT_SENT.some((code) => isNatsError(error, code))) {
        throw new EcrError(
          'CLUSTER_UNAVAILABLE',
          `${this.where}: ${(error as Error).message}: nothing was sent`,
          { cause: error },
        );
      }
      // Anything else (a permissions error on the reply inbox, say) may come after the request
      // left: the caller must take it for delivered.
      throw new EcrError('LINK_LOST', `${this.where}: ${(error as Error).message}`, {
        cause: error,
      });
    } finally {
      progress?.unsubscribe();
    }
    return decode(RpcReply, msg.data, `the answer from the node holding ${terminalId}`);
  }

  /**
   * Waits for a long request's answer while checking, every HOLDER_WATCH_INTERVAL_MS, that the
   * node that took it (it says so on `progress`) is alive: a holder that died mid-request never
   * answers, and its caller must not wait out the whole timeout to say `unknown`.
   */
  private async watchHolder(sent: Promise<Msg>, progress: Subscription): Promise<Msg> {
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
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    /** Checks in a row that found the holder gone (no responders). */
    let misses = 0;
    /** Checks, while connected, that still knew of no node taking the request. */
    let unclaimed = 0;
    const died = new Promise<never>((_, reject) => {
      const check = (): void => {
        if (done) return;
        timer = setTimeout(() => {
          if (!this.isConnected) {
            check();
            return;
          }
          if (holder === undefined) {
            // A node says it took the request as soon as it gets it. No word after a few
            // checks: the node that got it died before its word went out (or it never left
            // here): nobody will answer, and waiting for the request bound helps no one.
            if (++unclaimed < HOLDER_MISSES) {
              check();
              return;
            }
            reject(
              new EcrError(
                'LINK_LOST',
                'no gateway node said it took the request: none will answer',
              ),
            );
            return;
          }
          this.nc
            .request(
              `${this.prefix}.node.${holder}.ping`,
              encode({ request: progress.getSubject() }),
              { timeout: this.controlTimeoutMs },
            )
            .then(
              (pong) => {
                // Alive but done with the request: its answer was sent and lost (NATS went
                // away and came back meanwhile); waiting longer cannot bring it.
                if (!isDone(pong.data)) misses = 0;
                else if (++misses >= HOLDER_MISSES) {
                  reject(
                    new EcrError(
                      'LINK_LOST',
                      `node ${holder ?? '?'}, which held the terminal, finished the request but its answer never came`,
                    ),
                  );
                  return;
                }
                check();
              },
              (error: unknown) => {
                // Only "no responders" counts: the holder's subscriptions are gone (its process
                // died, or NATS dropped its connection, as it does for a lost machine after its
                // ping interval). A slow answer is a busy holder, not a dead one. One miss may be
                // a blip (the holder reconnecting); a few in a row is not.
                if (!isNatsError(error, ErrorCode.NoResponders)) {
                  misses = 0;
                  check();
                  return;
                }
                if (++misses < HOLDER_MISSES) {
                  check();
                  return;
                }
                reject(
                  new EcrError(
                    'LINK_LOST',
                    `node ${holder ?? '?'}, which held the terminal, is gone mid-request`,
                  ),
                );
              },
            );
        }, HOLDER_WATCH_INTERVAL_MS);
      };
      check();
    });
    try {
      return await Promise.race([sent, died]);
    } finally {
      done = true;
      clearTimeout(timer);
      // The answer may still come (or time out) after the holder was given up on.
      sent.catch(() => {});
    }
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

  /** Answers one request for a terminal this node holds. */
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
    const { driver } = terminal;
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
      switch (request.op) {
        case 'status': {
          const info = terminal.info();
          if (info === undefined) answer({ ok: false, code: 'TERMINAL_OFFLINE', message: 'gone' });
          else answer({ ok: true, info: { ...info } });
          return;
        }
        case 'execute': {
          let outcome: DriverOutcome;
          try {
            outcome = await driver.execute(request.request as DriverRequest);
          } catch (error) {
            // A driver throws only before sending, by contract; a bug may not keep it: what
            // began here may have reached the terminal.
            outcome = {
              outcome: 'unknown',
              errorCode: 'OUTCOME_UNKNOWN',
              message: `the holding node's driver failed: ${toEcrError(error).message}`,
            };
          }
          answer({ ok: true, outcome });
          return;
        }
        case 'query': {
          if (driver.queryOutcome === undefined) {
            answer({ ok: false, code: 'UNSUPPORTED_OPERATION', message: 'no status query' });
            return;
          }
          const target: StatusTarget = {
            reference: request.reference,
            ...(request.wireId === undefined ? {} : { wireId: request.wireId }),
            ...(request.attempt === undefined ? {} : { attempt: request.attempt }),
            ...(request.earlierTerminalTxIds === undefined
              ? {}
              : { earlierTerminalTxIds: request.earlierTerminalTxIds }),
            ...(request.sentAgoMs === undefined ? {} : { sentAt: Date.now() - request.sentAgoMs }),
          };
          const outcome = await driver.queryOutcome(target, { patient: request.patient });
          answer({ ok: true, outcome });
          return;
        }
        case 'cancel':
          answer({ ok: true, cancelled: await driver.cancelCurrent() });
          return;
        case 'batch-close': {
          if (driver.batchClose === undefined) {
            answer({ ok: false, code: 'UNSUPPORTED_OPERATION', message: 'no batch close' });
            return;
          }
          const totals = await driver.batchClose();
          answer({ ok: true, totals: { ...totals } });
          return;
        }
      }
    } catch (error) {
      const e = toEcrError(error);
      answer({ ok: false, code: e.code, message: e.message });
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

/**
 * A terminal held by some node of the cluster, as a TransactionService sees it. `sent` is
 * journaled before the request leaves this node; "no responders" proves nothing was delivered
 * (`failed`, TERMINAL_OFFLINE), no answer in time after delivery is `unknown` (the service then
 * asks the terminal's status through the holder, whichever node that is by then).
 */
class RemoteDriver implements TerminalDriver {
  readonly protocol: string;
  readonly endpoint: string;
  readonly capabilities;

  constructor(
    private readonly node: ClusterNode,
    private readonly terminalId: string,
    private readonly template: TerminalDriver,
    private readonly timeoutMs: number,
    private readonly recoveryMs: number,
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
      reply = await this.node.call(this.terminalId, { op: 'execute', request }, this.timeoutMs);
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
    if (reply.ok && 'outcome' in reply) return reply.outcome as DriverOutcome;
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
    const deadline = Date.now() + this.recoveryMs;
    for (;;) {
      const found = await this.queryOnce(target, options);
      const away = found.outcome === 'unknown' && found.errorCode === 'TERMINAL_UNREACHABLE';
      if (!away || options.patient !== true || Date.now() >= deadline) return found;
      if (options.signal?.aborted === true) return found;
      await sleep(OFFLINE_RETRY_MS);
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
            : { earlierTerminalTxIds: target.earlierTerminalTxIds.slice(-100) }),
          ...(target.sentAt === undefined
            ? {}
            : { sentAgoMs: Math.max(0, Date.now() - target.sentAt) }),
          patient: options.patient ?? false,
        },
        this.timeoutMs,
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
    if (reply.ok && 'outcome' in reply) return reply.outcome as DriverOutcome;
    return {
      outcome: 'unknown',
      errorCode: 'TERMINAL_UNREACHABLE',
      message: reply.ok ? 'the holder answered something else' : reply.message,
    };
  }

  async cancelCurrent(): Promise<boolean> {
    const reply = await this.node.call(
      this.terminalId,
      { op: 'cancel' },
      DEFAULT_CLUSTER_CONTROL_TIMEOUT_MS,
    );
    return reply !== 'offline' && reply.ok && 'cancelled' in reply && reply.cancelled;
  }

  async batchClose(): Promise<BatchTotals> {
    const reply = await this.node.call(this.terminalId, { op: 'batch-close' }, this.timeoutMs);
    if (reply === 'offline')
      throw new EcrError('TERMINAL_OFFLINE', `terminal ${this.terminalId} is on no gateway node`);
    if (!reply.ok) throw new EcrError(reply.code, reply.message);
    if (!('totals' in reply)) throw new EcrError('PROTOCOL_ERROR', 'no totals in the answer');
    return reply.totals as unknown as BatchTotals;
  }

  async close(): Promise<void> {}
}
