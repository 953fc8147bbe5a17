import type { Logger } from 'pino';
import type { TerminalDriver } from '../core/driver.js';
import { SemiDriver } from '../drivers/semi.js';
import type { LinkSource } from '../transports/message-link.js';
import type { PayloadProtocol } from './provisioning.js';

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

/** The driver for a terminal's payload format, over the gateway's channel to it. */
export function payloadDriver(
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
