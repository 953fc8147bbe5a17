import { EcrError } from '../core/errors.js';
import { parseAmount } from '../core/money.js';
import type { TransactionResult } from '../core/transaction.js';
import type { Journal } from '../core/journal-port.js';
import type { DashboardBackend } from '../web/backend.js';
import { credentialsMatch } from './auth.js';
import type { ConnectorServerOptions } from './server.js';

/** What the connector's dashboard reads of the running connector. */
export interface ConnectorActivity {
  /** Payments at the terminal now. */
  readonly inFlight: number;
  /** Why the last payment did not reach the terminal, if it did not. */
  readonly lastErrorCode: string | undefined;
  /** When the terminal last answered (ms since the epoch). */
  readonly lastContactAt: number | undefined;
  onChange(listener: () => void): () => void;
  /** Runs a payment the way `POST /` does (counted in `inFlight`). */
  track(work: () => Promise<TransactionResult>): Promise<TransactionResult>;
}

/** Errors that say the terminal itself could not be reached. */
export const UNREACHABLE: ReadonlySet<string> = new Set([
  'TERMINAL_UNREACHABLE',
  'TERMINAL_NOT_READY',
  'LINK_LOST',
]);

/**
 * The connector's side of the dashboard: signed in with the connector's own Basic Auth login and
 * password; one terminal; every transaction of its journal.
 */
export function connectorDashboard(
  options: Pick<
    ConnectorServerOptions,
    'login' | 'password' | 'service' | 'terminalId' | 'driver' | 'currency'
  > & {
    readonly journal: Journal;
    readonly activity: ConnectorActivity;
  },
): DashboardBackend {
  const { activity, driver } = options;
  return {
    service: 'connector',
    title: 'Local connector',
    loginLabel: 'Login',
    currency: options.currency,
    journal: options.journal,
    authenticate: (login, password) =>
      Promise.resolve(credentialsMatch(options, login, password) ? 'connector' : undefined),
    terminals: () => [
      {
        terminalId: options.terminalId,
        protocol: driver.protocol,
        serial: driver.serial ?? null,
        status:
          activity.inFlight > 0
            ? 'busy'
            : UNREACHABLE.has(activity.lastErrorCode ?? '')
              ? 'offline'
              : 'online',
        lastHeartbeatAt: activity.lastContactAt,
        model: null,
        address: driver.endpoint,
      },
    ],
    onTerminalsChange: (listener) => activity.onChange(() => listener(options.terminalId)),
    owns: () => true,
    scope: () => ({}),
    testPayment(_who, terminalId, amount, reference, onClaimed) {
      if (terminalId !== options.terminalId) {
        return Promise.reject(
          new EcrError('NOT_FOUND', `terminalId: no terminal ${terminalId.slice(0, 64)}`, {
            field: 'terminalId',
            rule: `the connector's terminal, ${options.terminalId}`,
          }),
        );
      }
      const money = parseAmount(amount.text, amount.currency);
      return activity.track(() =>
        options.service.pay(terminalId, { kind: 'sale', reference, amount: money }, { onClaimed }),
      );
    },
    notificationFor: (id) => options.journal.notificationFor(id),
  };
}
