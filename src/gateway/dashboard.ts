import { EcrError } from '../core/errors.js';
import { parseAmount } from '../core/money.js';
import type { DashboardBackend, DashboardTerminal } from '../web/dashboard.js';
import type { Gateway } from './gateway.js';

/**
 * The gateway's side of the dashboard: a merchant signs in with its API key and password and
 * sees its own terminals and transactions only; someone else's answer like none.
 */
export function gatewayDashboard(
  gateway: Gateway,
  journal: DashboardBackend['journal'],
): DashboardBackend {
  return {
    service: 'gateway',
    title: 'Cloud gateway',
    loginLabel: 'API key',
    currency: gateway.currency,
    journal,
    async authenticate(key, password) {
      return (await gateway.authenticate(key, password))?.name;
    },
    terminals(who) {
      return gateway.terminalsOf(who).map((t): DashboardTerminal => {
        const online = gateway.listener.terminal(t.terminalId);
        return {
          terminalId: t.terminalId,
          protocol: `${t.terminalType} (${online?.payload ?? 'semi'} over eConduit)`,
          serial: t.terminalId,
          status: online === undefined ? 'offline' : online.busy ? 'busy' : 'online',
          lastHeartbeatAt: online?.lastSeenAt,
          model: online === undefined ? null : `${online.terminalModel} ${online.softwareVersion}`,
          address: online?.remote ?? null,
        };
      });
    },
    onTerminalsChange(listener) {
      const changed = (info: { terminalId: string }) => listener(info.terminalId);
      gateway.listener.on('online', changed);
      gateway.listener.on('offline', changed);
      return () => {
        gateway.listener.off('online', changed);
        gateway.listener.off('offline', changed);
      };
    },
    owns: (who, row) => row.merchantId === who,
    scope: (who) => ({ merchantId: who }),
    async testPayment(who, terminalId, amount, reference, onClaimed) {
      const service = gateway.serviceFor(who, terminalId);
      if (!gateway.listener.isOnline(terminalId)) {
        throw new EcrError(
          'TERMINAL_OFFLINE',
          `terminal ${terminalId} is offline ("POS Offline"): nothing was sent`,
          { field: 'terminalId', rule: 'an online terminal' },
        );
      }
      const money = parseAmount(amount.text, amount.currency);
      gateway.bindReference(who, reference, terminalId);
      return service.pay(terminalId, { kind: 'sale', reference, amount: money }, { onClaimed });
    },
  };
}
