import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { TerminalDriver } from '../core/driver.js';
import { EcrError, toEcrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { requireCurrency } from '../core/money.js';
import { makeOwner } from '../core/owner.js';
import { toResult, TransactionService } from '../core/transaction-service.js';
import type { TransactionResult } from '../core/transaction.js';
import { SemiDriver } from '../drivers/semi.js';
import type { Journal } from '../journal/journal.js';
import type { LinkSource } from '../transports/message-link.js';
import { LoginGuard } from '../connector/auth.js';
import { registerDashboard } from '../web/dashboard.js';
import { gatewayDashboard } from './dashboard.js';
import { buildPosApi, type PosApiOptions } from './pos-api.js';
import { GatewayMetrics } from './metrics.js';
import type { GatewayTerminal, TenantStore } from './tenants.js';
import {
  TerminalListener,
  type PayloadProtocol,
  type TerminalListenerOptions,
} from './terminal-listener.js';

/** Where POS programs call the gateway. */
export const GATEWAY_HTTP_PORT = 8081;
/** Amounts reach the gateway without a currency: the terminals' currency. */
export const GATEWAY_DEFAULT_CURRENCY = 'USD';
/**
 * How long a POS call keeps asking a terminal whose link dropped mid-transaction before it
 * answers `unknown` (ResultFinal false); the terminal's next registration settles it later.
 */
export const GATEWAY_RECOVERY_MS = 30_000;

/** The SEMI driver's bounds, for terminals behind the gateway. */
export interface GatewayDriverSettings {
  readonly answerTimeoutMs?: number;
  readonly statusTimeoutMs?: number;
  /** @default GATEWAY_RECOVERY_MS */
  readonly recoveryMs?: number;
  readonly cardStepMs?: number;
}

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
  /** The terminal listener's settings (types, heartbeat, bounds). */
  readonly terminals?: Omit<TerminalListenerOptions, 'host' | 'port' | 'lookup' | 'logger'>;
  /** The POS API's settings (timeouts, limits). */
  readonly api?: Omit<PosApiOptions, 'gateway' | 'logger'>;
  readonly logger?: Logger;
}

/** The driver for a terminal's payload format, over the gateway's channel to it. */
function payloadDriver(
  protocol: PayloadProtocol,
  source: LinkSource,
  currency: string,
  settings: GatewayDriverSettings,
  logger: Logger,
): TerminalDriver {
  switch (protocol) {
    case 'semi':
      return new SemiDriver({
        source,
        currency,
        // The terminal holds the connection: no dialling, so an offline terminal answers at once.
        connectAttempts: 1,
        recoveryMs: settings.recoveryMs ?? GATEWAY_RECOVERY_MS,
        ...(settings.answerTimeoutMs === undefined
          ? {}
          : { answerTimeoutMs: settings.answerTimeoutMs }),
        ...(settings.statusTimeoutMs === undefined
          ? {}
          : { statusTimeoutMs: settings.statusTimeoutMs }),
        ...(settings.cardStepMs === undefined ? {} : { cardStepMs: settings.cardStepMs }),
        logger,
      });
  }
}

/**
 * The eConduit-compatible cloud gateway: terminals hold a TCP connection to it
 * (`TerminalListener`), POS programs call its HTTP API (`pos-api.ts`). Every transaction goes
 * through a TransactionService per merchant over one journal: idempotent `refID`, one transaction
 * at a time per terminal, `unknown` settled by the terminal's status query when it is back.
 */
export class Gateway {
  readonly listener: TerminalListener;
  readonly metrics: GatewayMetrics;
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
  private http: FastifyInstance | undefined;
  private dashboard: { close(): void } | undefined;
  private httpAddress: { host: string; port: number } | undefined;

  constructor(private readonly options: GatewayOptions) {
    this.journal = options.journal;
    this.tenants = options.tenants;
    this.logger = options.logger ?? silentLogger;
    this.currency = requireCurrency(options.currency ?? GATEWAY_DEFAULT_CURRENCY).code;
    this.listener = new TerminalListener({
      ...options.terminals,
      ...(options.host === undefined ? {} : { host: options.host }),
      ...(options.tcpPort === undefined ? {} : { port: options.tcpPort }),
      lookup: (terminalId) => this.tenants.terminal(terminalId),
      logger: this.logger,
    });
    this.metrics = new GatewayMetrics(this.listener);
    this.listener.on('online', (info) => {
      try {
        this.terminalBack(info.terminalId);
      } catch (error) {
        this.logger.warn(
          { terminalId: info.terminalId, err: toEcrError(error).message },
          'could not look the registered terminal up',
        );
      }
    });
  }

  /** Where the POS API listens, once started. */
  get httpPort(): number {
    return this.httpAddress?.port ?? 0;
  }

  get tcpPort(): number {
    return this.listener.port;
  }

  async start(): Promise<this> {
    // What a crashed gateway left in flight becomes `unknown`; registrations settle it.
    const recovered = await new TransactionService({
      journal: this.journal,
      logger: this.logger,
      owner: this.owner,
    }).recover();
    if (recovered.length > 0)
      this.logger.warn({ count: recovered.length }, 'transactions left in flight are now unknown');
    // One set of sign-in limits for the POS API and the dashboard: both take the merchant keys.
    const guard = this.options.api?.guard ?? new LoginGuard();
    this.http = await buildPosApi({
      ...this.options.api,
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
      { tcpPort: this.tcpPort, httpPort: this.httpPort },
      'gateway started: terminals on TCP, POS programs on HTTP',
    );
    return this;
  }

  async close(): Promise<void> {
    this.dashboard?.close();
    await this.http?.close();
    await this.listener.close();
    await Promise.all([...this.services.values()].map((s) => s.close()));
  }

  /**
   * The service of `merchant` with `terminalId` in it, or NOT_FOUND. Someone else's terminal is
   * refused with exactly the answer a nonexistent one gets.
   */
  serviceFor(merchant: string, terminalId: string): TransactionService {
    return this.attach(this.terminalOf(merchant, terminalId));
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
    this.terminalOf(merchant, terminalId);
    const row = await this.journal.find({ merchantId: merchant, terminalId, reference });
    return row === undefined ? undefined : toResult(row, true);
  }

  /** A merchant's transactions on one of its terminals, newest first. */
  async list(
    merchant: string,
    terminalId: string,
    filter: {
      readonly unresolved?: boolean;
      readonly state?: TransactionResult['state'];
      readonly limit?: number;
    },
  ): Promise<TransactionResult[]> {
    this.terminalOf(merchant, terminalId);
    const rows = await this.journal.list({ ...filter, terminalId, merchantId: merchant });
    return rows.map((row) => toResult(row, true));
  }

  /** Binds a merchant's refID to a terminal (see TenantStore.bindReference). */
  bindReference(merchant: string, reference: string, terminalId: string): string {
    return this.tenants.bindReference(merchant, reference, terminalId);
  }

  /** The terminal a merchant's refID is bound to. */
  referenceTerminal(merchant: string, reference: string): string | undefined {
    return this.tenants.referenceTerminal(merchant, reference);
  }

  /**
   * Asks a terminal, in the background, what became of its latest `unknown` transaction; at
   * most one such query per terminal at a time, however often a POS polls.
   */
  reconcileSoon(merchant: string, terminalId: string): void {
    if (this.reconciling.has(terminalId) || !this.listener.isOnline(terminalId)) return;
    this.reconciling.add(terminalId);
    void (async () => {
      try {
        const settled = await this.serviceFor(merchant, terminalId).reconcile(terminalId);
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

  private terminalOf(merchant: string, terminalId: string): GatewayTerminal {
    const terminal = this.tenants.terminal(terminalId);
    if (terminal === undefined || terminal.merchant !== merchant) {
      throw new EcrError('NOT_FOUND', `terminalId: no terminal ${terminalId.slice(0, 64)}`, {
        field: 'terminalId',
        rule: 'must name one of your terminals',
      });
    }
    return terminal;
  }

  /** The terminals of a merchant. */
  terminalsOf(merchant: string): GatewayTerminal[] {
    return this.tenants.terminalsOf(merchant);
  }

  authenticate(key: string, password: string) {
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
      const protocol = this.listener.payloadOf(terminal.terminalType);
      if (protocol === undefined) {
        throw new EcrError(
          'UNSUPPORTED_OPERATION',
          `terminal ${terminal.terminalId} is of type ${terminal.terminalType}, which this gateway is not set up for`,
          { field: 'terminalId', rule: 'a terminal of a configured type' },
        );
      }
      service.addTerminal(
        terminal.terminalId,
        payloadDriver(
          protocol,
          this.listener.linkSource(terminal.terminalId),
          this.currency,
          this.options,
          this.logger.child({ terminalId: terminal.terminalId }),
        ),
      );
      this.attached.add(terminal.terminalId);
    }
    return service;
  }

  /** A terminal registered: settle what its last transaction left unknown, if anything. */
  private terminalBack(terminalId: string): void {
    const terminal = this.tenants.terminal(terminalId);
    if (terminal !== undefined) this.reconcileSoon(terminal.merchant, terminalId);
  }
}
