import type { Awaitable, Journal, JournalRow, NotificationRow } from '../core/journal-port.js';
import type { TransactionResult } from '../core/transaction.js';
import { isoOrNull } from '../http/transaction-json.js';

/**
 * What a service lends the dashboard (connector/dashboard.ts, gateway/dashboard.ts), and its
 * terminals as the page's JSON. The services implement this; the dashboard never imports them.
 */

/** A terminal as the dashboard shows it. */
export interface DashboardTerminal {
  readonly terminalId: string;
  readonly protocol: string;
  readonly serial: string | null;
  readonly status: 'online' | 'offline' | 'busy';
  /** Last heartbeat or message (ms since the epoch), when the service knows it. */
  readonly lastHeartbeatAt: number | undefined;
  readonly model: string | null;
  readonly address: string | null;
}

/** What a service lends the dashboard. `who` is the signed-in scope (a merchant, or the connector). */
export interface DashboardBackend {
  readonly service: 'connector' | 'gateway';
  readonly title: string;
  readonly loginLabel: 'Login' | 'API key';
  /** The currency of a test payment that names none. */
  readonly currency: string;
  readonly journal: Journal;
  /** The scope these credentials open, or undefined. */
  authenticate(login: string, password: string): Promise<string | undefined>;
  terminals(who: string): Awaitable<DashboardTerminal[]>;
  /**
   * Calls `listener` with the terminal whose status may have changed (undefined: any of them);
   * returns how to stop.
   */
  onTerminalsChange(listener: (terminalId: string | undefined) => void): () => void;
  /** May `who` see this transaction? */
  owns(who: string, row: JournalRow): boolean;
  /** The journal filter that keeps `who`'s rows (the gateway: its merchant's). */
  scope(who: string): { readonly merchantId?: string };
  /**
   * Starts a test sale; `onClaimed` is called once it is journaled. Rejects (EcrError) for what
   * cannot be tried (an unknown or offline terminal, a bad amount), before `onClaimed`.
   */
  testPayment(
    who: string,
    terminalId: string,
    amount: { readonly text: string; readonly currency: string },
    reference: string,
    onClaimed: () => void,
  ): Promise<TransactionResult>;
  /** The back-office notification of a transaction (the connector's outbox), if any. */
  notificationFor?(transactionId: number): Awaitable<NotificationRow | undefined>;
}

function terminalJson(t: DashboardTerminal) {
  return {
    terminalId: t.terminalId,
    protocol: t.protocol,
    serial: t.serial,
    status: t.status,
    statusText:
      t.status === 'online' ? 'POS Online' : t.status === 'offline' ? 'POS Offline' : 'Busy',
    lastHeartbeatAt: isoOrNull(t.lastHeartbeatAt),
    model: t.model,
    address: t.address,
  };
}

/** The terminals `who` sees, as the page's JSON (`GET /ui/api/terminals`, the live stream). */
export type TerminalsJson = { terminals: ReturnType<typeof terminalJson>[] };

export async function terminalsJson(
  backend: DashboardBackend,
  who: string,
): Promise<TerminalsJson> {
  return { terminals: (await backend.terminals(who)).map(terminalJson) };
}
