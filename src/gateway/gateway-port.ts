import type { Readiness } from '../core/readiness.js';
import type { TransactionService } from '../core/transaction-service.js';
import type { TransactionResult } from '../core/transaction.js';
import type { GatewayMetrics } from './metrics.js';
import type { GatewayTerminal, Merchant } from './tenants.js';
import type { TerminalInfo, TerminalListener } from './terminal-listener.js';

/** A merchant's terminal and its live state. */
export interface TerminalPresence {
  readonly terminal: GatewayTerminal;
  /** Where and how it is connected; undefined while it is offline. */
  readonly online: TerminalInfo | undefined;
}

/** Which of a terminal's transactions a list holds. */
export interface TransactionFilter {
  readonly unresolved?: boolean;
  readonly state?: TransactionResult['state'];
  readonly limit?: number;
}

/**
 * What the POS API and the dashboard use of the gateway. `Gateway` implements it and hands
 * itself to both when it builds them, so that neither imports gateway.ts: the arrows point one
 * way, from the gateway down to its HTTP faces. Every merchant-scoped call answers NOT_FOUND for
 * someone else's terminal, exactly as for one that does not exist.
 */
export interface GatewayPort {
  readonly metrics: GatewayMetrics;
  /** What `/readyz` answers. */
  readonly readiness: Readiness;
  /** The terminals' currency: amounts reach the gateway without one. */
  readonly currency: string;
  /** The terminals connected to this node. */
  readonly listener: Pick<TerminalListener, 'onlineCount'>;
  /** The merchant whose key and password these are, or undefined. */
  authenticate(key: string, password: string): Promise<Merchant | undefined>;
  /** The service of `merchant` with `terminalId` in it. */
  serviceFor(merchant: string, terminalId: string): Promise<TransactionService>;
  /** The terminals of a merchant. */
  terminalsOf(merchant: string): Promise<GatewayTerminal[]>;
  /** The terminals of a merchant, each with its live state wherever it is connected. */
  terminalsWithPresence(merchant: string): Promise<TerminalPresence[]>;
  /** Whether the terminal is connected (to this node, or in a cluster to any). */
  isOnline(terminalId: string): Promise<boolean>;
  /** Calls `listener` when a terminal may have come or gone; returns how to stop. */
  onTerminalsChange(listener: (terminalId: string) => void): () => void;
  /** A merchant's transaction in whatever state, read from the journal. */
  lookup(
    merchant: string,
    terminalId: string,
    reference: string,
  ): Promise<TransactionResult | undefined>;
  /** Every attempt under a merchant's reference on one of its terminals, the first one first. */
  attemptsOf(merchant: string, terminalId: string, reference: string): Promise<TransactionResult[]>;
  /** A merchant's transactions on one of its terminals, newest first. */
  list(
    merchant: string,
    terminalId: string,
    filter: TransactionFilter,
  ): Promise<TransactionResult[]>;
  /** Binds a merchant's refID to a terminal; returns the terminal it is bound to. */
  bindReference(merchant: string, reference: string, terminalId: string): Promise<string>;
  /** The terminal a merchant's refID is bound to. */
  referenceTerminal(merchant: string, reference: string): Promise<string | undefined>;
  /** Asks a terminal, in the background, what became of its latest `unknown` transaction. */
  reconcileSoon(merchant: string, terminalId: string): void;
}
