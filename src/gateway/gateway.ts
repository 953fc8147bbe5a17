import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { TerminalDriver } from '../core/driver.js';
import { EcrError, toEcrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { mapLimited } from '../core/map-limited.js';
import { requireCurrency } from '../core/money.js';
import { parseOptions } from '../core/options.js';
import { makeOwner } from '../core/owner.js';
import { Readiness, type ReadinessOptions } from '../core/readiness.js';
import { toResult, TransactionService } from '../core/transaction-service.js';
import type { TransactionResult } from '../core/transaction.js';
import type { Journal } from '../core/journal-port.js';
import {
  loadTlsServer,
  tlsServerOption,
  type TlsServerConfig,
  type TlsServerInput,
} from '../transports/tls.js';
import { LoginGuard } from '../http/login-guard.js';
import { registerDashboard } from '../web/dashboard.js';
import { gatewayDashboard } from './dashboard.js';
import type { GatewayPort, TerminalPresence, TransactionFilter } from './gateway-port.js';
import type { ClusterNode } from './cluster/node.js';
import { buildPosApi, type PosApiOptions } from './pos-api.js';
import { GatewayMetrics } from './metrics.js';
import { payloadDriver, type GatewayDriverSettings } from './payload-driver.js';
import { OrphanSweep } from './orphan-sweep.js';
import { gatewayChecks } from './readiness.js';
import type { GatewayTerminal, Merchant, TenantStore } from './tenants.js';
import { TerminalListener, type TerminalInfo } from './terminal-listener.js';
import type { TerminalListenerOptions } from './terminal-listener-options.js';

/** Where POS programs call the gateway. */
export const GATEWAY_HTTP_PORT = 8081;
/** Amounts reach the gateway without a currency: the terminals' currency. */
export const GATEWAY_DEFAULT_CURRENCY = 'USD';

export interface GatewayOptions extends GatewayDriverSettings {
  readonly journal: Journal;
  readonly tenants: TenantStore;
  /** Both listeners. @default '127.0.0.1' */
  readonly host?: string;
  /** Terminals' TCP port. @default 9001 */
  readonly tcpPort?: number;
  /** POS HTTP port. @default GATEWAY_HTTP_PORT */
  readonly httpPort?: number;
  /** @default GATEWAY_DEFAULT_CURRENCY */
  readonly currency?: string;
  /**
   * The terminal listener's settings (types, heartbeat, bounds; `tlsClientCa` for mutual TLS with
   * `tls`). Registration secrets are checked against the tenants.
   */
  readonly terminals?: Omit<
    TerminalListenerOptions,
    'host' | 'port' | 'lookup' | 'checkSecret' | 'logger'
  >;
  /** The POS API's settings (timeouts, limits). */
  readonly api?: Omit<PosApiOptions, 'gateway' | 'logger' | 'tls'>;
  /**
   * Cluster mode: this node's NATS membership. Terminals registered here are served to every
   * node, and every transaction goes to the node holding its terminal. The journal must then be
   * one every node shares (PostgreSQL).
   */
  readonly cluster?: ClusterNode;
  /** Cluster mode: how often rows left in flight by a dead node are looked for. @default 10 s */
  readonly orphanSweepMs?: number;
  /**
   * TLS on both listeners, with one certificate and key (PEM files or text, checked at
   * construction: INVALID_INPUT naming `tls.certFile`… when unreadable, not PEM, expired or not a
   * pair). Terminals must then connect over TLS and POS programs over HTTPS; plain connections
   * are refused. @default plain TCP and HTTP
   */
  readonly tls?: TlsServerInput;
  /** Bounds of `/readyz` (each check's timeout, how long an answer is reused, the clock). */
  readonly readiness?: ReadinessOptions;
  readonly logger?: Logger;
}

/** Terminals asked about at once when a list shows their live state (cluster: NATS requests). */
export const PRESENCE_CONCURRENCY = 32;

/**
 * The eConduit-compatible cloud gateway: terminals hold a TCP connection to it
 * (`TerminalListener`), POS programs call its HTTP API (`pos-api.ts`). Every transaction goes
 * through a TransactionService per merchant over one journal: idempotent `refID`, one transaction
 * at a time per terminal, `unknown` settled by the terminal's status query when it is back.
 */
export class Gateway implements GatewayPort {
  readonly listener: TerminalListener;
  readonly metrics: GatewayMetrics;
  /** What `/readyz` answers: the journal, the terminal listener and, in a cluster, NATS. */
  readonly readiness: Readiness;
  readonly currency: string;
  private readonly journal: Journal;
  private readonly tenants: TenantStore;
  private readonly logger: Logger;
  private readonly owner = makeOwner();
  private readonly services = new Map<string, TransactionService>();
  /** Terminals being asked about an unknown transaction in the background. */
  private readonly reconciling = new Set<string>();
  /** Terminal ids whose driver is in their merchant's service. */
  private readonly attached = new Set<string>();
  /** Cluster mode: the drivers over this node's own sockets, serving the other nodes too. */
  private readonly localDrivers = new Map<string, TerminalDriver>();
  private orphanSweep: NodeJS.Timeout | undefined;
  /** Terminals as the latest registration looked them up. */
  private readonly provisioned = new Map<string, GatewayTerminal>();
  private readonly orphans: OrphanSweep;
  private http: FastifyInstance | undefined;
  private dashboard: { close(): void } | undefined;
  private httpAddress: { host: string; port: number } | undefined;
  private readonly tls: TlsServerConfig | undefined;

  constructor(private readonly options: GatewayOptions) {
    this.tls =
      options.tls === undefined
        ? undefined
        : loadTlsServer(
            parseOptions(
              z.strictObject({ tls: tlsServerOption() }),
              { tls: options.tls },
              'Gateway',
            ).tls,
          );
    this.journal = options.journal;
    this.tenants = options.tenants;
    this.logger = options.logger ?? silentLogger;
    this.currency = requireCurrency(options.currency ?? GATEWAY_DEFAULT_CURRENCY).code;
    this.orphans = new OrphanSweep({
      journal: this.journal,
      logger: this.logger,
      owner: this.owner,
      ...(options.cluster === undefined
        ? {}
        : { reconcile: (merchant, terminalId) => this.reconcileSoon(merchant, terminalId) }),
    });
    this.listener = new TerminalListener({
      ...options.terminals,
      ...(options.host === undefined ? {} : { host: options.host }),
      ...(options.tcpPort === undefined ? {} : { port: options.tcpPort }),
      ...(this.tls === undefined ? {} : { tls: this.tls }),
      lookup: async (terminalId) => {
        const terminal = await this.tenants.terminal(terminalId);
        // Kept for the 'online' that follows: one read of the tenants per registration.
        if (terminal === undefined) this.provisioned.delete(terminalId);
        else this.provisioned.set(terminalId, terminal);
        return terminal;
      },
      checkSecret: (terminalId, secret) => this.tenants.checkTerminalSecret(terminalId, secret),
      logger: this.logger,
    });
    this.metrics = new GatewayMetrics(this.listener);
    this.readiness = new Readiness(
      gatewayChecks({
        journal: this.journal,
        listener: this.listener,
        ...(options.cluster === undefined ? {} : { cluster: options.cluster }),
      }),
      options.readiness,
    );
    this.listener.on('tlsRefused', () => this.metrics.tlsRefused('terminals'));
    this.listener.on('online', (info) => {
      this.terminalBack(info).catch((error: unknown) => {
        // Online here but served to nobody would be a terminal no POS can reach: it goes, and
        // registers again after its back-off.
        this.logger.warn(
          { terminalId: info.terminalId, err: toEcrError(error).message },
          'could not take the registered terminal in: disconnected, it will register again',
        );
        this.listener.disconnect(info.terminalId, 'the gateway could not take it in');
      });
    });
    const cluster = options.cluster;
    if (cluster !== undefined) {
      this.listener.on('offline', (info) => cluster.release(info.terminalId));
      // Registered on another node since: this socket is stale.
      cluster.onRelease((terminalId) =>
        this.listener.disconnect(terminalId, 'the terminal registered on another gateway node'),
      );
      cluster.onReconnect((terminalIds) => {
        for (const terminalId of terminalIds)
          this.listener.disconnect(terminalId, 'NATS came back: register again');
      });
    }
  }

  /** Where the POS API listens, once started. */
  get httpPort(): number {
    return this.httpAddress?.port ?? 0;
  }

  get tcpPort(): number {
    return this.listener.port;
  }

  /** Whether both listeners speak TLS only (terminals over TLS, POS programs over HTTPS). */
  get secure(): boolean {
    return this.tls !== undefined;
  }

  async start(): Promise<this> {
    // What a crashed gateway left in flight is settled (never sent: `failed`; sent: `unknown`,
    // which registrations settle).
    await this.orphans.run();
    if (this.options.cluster !== undefined) {
      // Another node may die at any time: what it left in flight is looked for while we run.
      this.orphanSweep = setInterval(() => {
        this.orphans
          .soon()
          .catch((error: unknown) =>
            this.logger.warn({ err: toEcrError(error).message }, 'orphan sweep failed'),
          );
      }, this.options.orphanSweepMs ?? 10_000);
      this.orphanSweep.unref();
    }
    // One set of sign-in limits for the POS API and the dashboard: both take the merchant keys.
    const guard = this.options.api?.guard ?? new LoginGuard();
    this.http = await buildPosApi({
      ...this.options.api,
      ...(this.tls === undefined ? {} : { tls: this.tls }),
      gateway: this,
      guard,
      logger: this.logger,
    });
    this.dashboard = registerDashboard(this.http, gatewayDashboard(this, this.journal), {
      logger: this.logger,
      guard,
    });
    try {
      await this.listener.start();
      const host = this.options.host ?? '127.0.0.1';
      await this.http.listen({ host, port: this.options.httpPort ?? GATEWAY_HTTP_PORT });
      const address = this.http.server.address();
      this.httpAddress = {
        host,
        port: typeof address === 'object' && address !== null ? address.port : 0,
      };
    } catch (error) {
      await this.close();
      throw error;
    }
    this.logger.info(
      { tcpPort: this.tcpPort, httpPort: this.httpPort, tls: this.secure },
      this.secure
        ? 'gateway started: terminals on TLS, POS programs on HTTPS (plain refused)'
        : 'gateway started: terminals on TCP, POS programs on HTTP',
    );
    return this;
  }

  async close(): Promise<void> {
    clearInterval(this.orphanSweep);
    this.dashboard?.close();
    await this.http?.close();
    await this.listener.close();
    await Promise.all([...this.services.values()].map((s) => s.close()));
  }

  /**
   * The service of `merchant` with `terminalId` in it, or NOT_FOUND. Someone else's terminal is
   * refused with exactly the answer a nonexistent one gets.
   */
  async serviceFor(merchant: string, terminalId: string): Promise<TransactionService> {
    return this.attach(await this.terminalOf(merchant, terminalId));
  }

  /**
   * The terminal's live state wherever it is connected (this node, or in cluster mode any node),
   * undefined when it is offline. CLUSTER_UNAVAILABLE when the cluster cannot be asked.
   */
  async presence(terminalId: string): Promise<TerminalInfo | undefined> {
    const cluster = this.options.cluster;
    return cluster === undefined
      ? this.listener.terminal(terminalId)
      : cluster.presence(terminalId);
  }

  /** A merchant's terminals with their live state, asking at most PRESENCE_CONCURRENCY at once. */
  async terminalsWithPresence(merchant: string): Promise<TerminalPresence[]> {
    return mapLimited(await this.terminalsOf(merchant), PRESENCE_CONCURRENCY, async (terminal) => ({
      terminal,
      online: await this.presence(terminal.terminalId),
    }));
  }

  /** Whether the terminal is connected to this gateway (or, in cluster mode, to any node). */
  async isOnline(terminalId: string): Promise<boolean> {
    return (await this.presence(terminalId)) !== undefined;
  }

  /** Calls `listener` when a terminal may have come or gone (on any node); returns how to stop. */
  onTerminalsChange(listener: (terminalId: string) => void): () => void {
    const changed = (info: { terminalId: string }) => listener(info.terminalId);
    this.listener.on('online', changed);
    this.listener.on('offline', changed);
    const stopCluster = this.options.cluster?.onPresence(listener);
    return () => {
      this.listener.off('online', changed);
      this.listener.off('offline', changed);
      stopCluster?.();
    };
  }

  /**
   * A merchant's transaction in whatever state, read from the journal (no driver needed: a
   * terminal of a type this gateway no longer serves still shows its history).
   */
  async lookup(
    merchant: string,
    terminalId: string,
    reference: string,
  ): Promise<TransactionResult | undefined> {
    await this.terminalOf(merchant, terminalId);
    const row = await this.journal.find({ merchantId: merchant, terminalId, reference });
    return row === undefined ? undefined : toResult(row, true);
  }

  /** Every attempt under a merchant's reference on one of its terminals, the first one first. */
  async attemptsOf(
    merchant: string,
    terminalId: string,
    reference: string,
  ): Promise<TransactionResult[]> {
    await this.terminalOf(merchant, terminalId);
    const rows = await this.journal.attemptsOf({ merchantId: merchant, terminalId, reference });
    return rows.map((row) => toResult(row, true));
  }

  /** A merchant's transactions on one of its terminals, newest first. */
  async list(
    merchant: string,
    terminalId: string,
    filter: TransactionFilter,
  ): Promise<TransactionResult[]> {
    await this.terminalOf(merchant, terminalId);
    const rows = await this.journal.list({ ...filter, terminalId, merchantId: merchant });
    return rows.map((row) => toResult(row, true));
  }

  /** Binds a merchant's refID to a terminal (see TenantStore.bindReference). */
  async bindReference(merchant: string, reference: string, terminalId: string): Promise<string> {
    return this.tenants.bindReference(merchant, reference, terminalId);
  }

  /** The terminal a merchant's refID is bound to. */
  async referenceTerminal(merchant: string, reference: string): Promise<string | undefined> {
    return this.tenants.referenceTerminal(merchant, reference);
  }

  /**
   * Asks a terminal, in the background, what became of its latest `unknown` transaction; at
   * most one such query per terminal at a time, however often a POS polls.
   */
  reconcileSoon(merchant: string, terminalId: string): void {
    // In a cluster the terminal may be on another node: the query goes there (or fails at once).
    const here = this.options.cluster !== undefined || this.listener.isOnline(terminalId);
    if (this.reconciling.has(terminalId) || !here) return;
    this.reconciling.add(terminalId);
    void (async () => {
      try {
        const service = await this.serviceFor(merchant, terminalId);
        const settled = await service.reconcile(terminalId);
        if (settled !== undefined) this.metrics.settledOnRegistration(settled.outcome);
      } catch (error) {
        this.logger.warn(
          { terminalId, err: toEcrError(error).message },
          'could not ask the terminal about its unknown transaction',
        );
      } finally {
        this.reconciling.delete(terminalId);
      }
    })();
  }

  private async terminalOf(merchant: string, terminalId: string): Promise<GatewayTerminal> {
    const terminal = await this.tenants.terminal(terminalId);
    if (terminal === undefined || terminal.merchant !== merchant) {
      throw new EcrError('NOT_FOUND', `terminalId: no terminal ${terminalId.slice(0, 64)}`, {
        field: 'terminalId',
        rule: 'must name one of your terminals',
      });
    }
    return terminal;
  }

  /** The terminals of a merchant. */
  async terminalsOf(merchant: string): Promise<GatewayTerminal[]> {
    return this.tenants.terminalsOf(merchant);
  }

  authenticate(key: string, password: string): Promise<Merchant | undefined> {
    return this.tenants.authenticate(key, password);
  }

  private service(merchant: string): TransactionService {
    let service = this.services.get(merchant);
    if (service === undefined) {
      service = new TransactionService({
        journal: this.journal,
        logger: this.logger,
        merchantId: merchant,
        owner: this.owner,
      });
      this.services.set(merchant, service);
    }
    return service;
  }

  private attach(terminal: GatewayTerminal): TransactionService {
    const service = this.service(terminal.merchant);
    if (!this.attached.has(terminal.terminalId)) {
      const local = this.localDriver(terminal);
      const cluster = this.options.cluster;
      service.addTerminal(
        terminal.terminalId,
        // In a cluster every node sends through the terminal's holder, itself included: one path.
        cluster === undefined ? local : cluster.remoteDriver(terminal.terminalId, local),
      );
      this.attached.add(terminal.terminalId);
    }
    return service;
  }

  /** The driver over this node's own connection to the terminal (made once per terminal). */
  private localDriver(terminal: GatewayTerminal): TerminalDriver {
    let driver = this.localDrivers.get(terminal.terminalId);
    if (driver !== undefined) return driver;
    if (!this.listener.accepts(terminal.terminalType)) {
      throw new EcrError(
        'UNSUPPORTED_OPERATION',
        `terminal ${terminal.terminalId} is of type ${terminal.terminalType}, which this gateway's --terminal-type list leaves out`,
        { field: 'terminalId', rule: 'a terminal of a type this gateway accepts' },
      );
    }
    // The payload format the terminal was provisioned with.
    driver = payloadDriver(
      terminal.payload,
      this.listener.linkSource(terminal.terminalId),
      this.currency,
      this.options,
      this.logger.child({ terminalId: terminal.terminalId }),
    );
    this.localDrivers.set(terminal.terminalId, driver);
    return driver;
  }

  /**
   * A terminal registered here: in a cluster, this node now serves it to the others (the node
   * that held it before lets go); then what its last transaction left unknown is settled.
   */
  private async terminalBack(info: TerminalInfo): Promise<void> {
    const { terminalId } = info;
    const terminal = this.provisioned.get(terminalId) ?? (await this.tenants.terminal(terminalId));
    if (terminal === undefined) return;
    const cluster = this.options.cluster;
    if (cluster !== undefined) {
      await cluster.hold(terminalId, {
        driver: this.localDriver(terminal),
        info: () => this.listener.terminal(terminalId),
      });
      // Rows a dead node left in flight on this terminal become `unknown` first, to be settled.
      await this.orphans.soon();
    }
    this.reconcileSoon(terminal.merchant, terminalId);
  }
}
