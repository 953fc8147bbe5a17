import { EcrError } from '../core/errors.js';
import { parseAmount } from '../core/money.js';
import type { DashboardBackend, DashboardTerminal } from '../web/backend.js';
import type { GatewayPort } from './gateway-port.js';
import { shownSerial } from './provisioning.js';

/**
 * The gateway's side of the dashboard: a merchant signs in with its API key and password and
 * sees its own terminals and transactions only; someone else's answer like none.
 */
export function gatewayDashboard(
  gateway: GatewayPort,
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
    async terminals(who) {
      return (await gateway.terminalsWithPresence(who)).map(
        ({ terminal: t, online }): DashboardTerminal => ({
          terminalId: t.terminalId,
          protocol: `${t.terminalType} (${t.payload} over eConduit)`,
          // The serial the terminal registered with (its TerminalID), card-number-like runs masked.
          serial: shownSerial(online?.terminalId ?? t.terminalId),
          status: online === undefined ? 'offline' : online.busy ? 'busy' : 'online',
          lastHeartbeatAt: online?.lastSeenAt,
          model: online === undefined ? null : `${online.terminalModel} ${online.softwareVersion}`,
          address: online?.remote ?? null,
        }),
      );
    },
    onTerminalsChange: (listener) => gateway.onTerminalsChange(listener),
    owns: (who, row) => row.merchantId === who,
    scope: (who) => ({ merchantId: who }),
    async testPayment(who, terminalId, amount, reference, onClaimed) {
      const service = await gateway.serviceFor(who, terminalId);
      if (!(await gateway.isOnline(terminalId))) {
        throw new EcrError(
          'TERMINAL_OFFLINE',
          `terminal ${terminalId} is offline ("POS Offline"): nothing was sent`,
          { field: 'terminalId', rule: 'an online terminal' },
        );
      }
      const money = parseAmount(amount.text, amount.currency);
      await gateway.bindReference(who, reference, terminalId);
      return service.pay(terminalId, { kind: 'sale', reference, amount: money }, { onClaimed });
    },
  };
}
