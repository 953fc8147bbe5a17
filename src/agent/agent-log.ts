import type { Logger } from 'pino';
import { POS_OFFLINE } from '../protocols/econduit/messages.js';
import type { ClientAction } from '../protocols/econduit/session-client.js';
import type { LinkClosed } from '../transports/message-link.js';
import type { AgentEndpoint } from './agent-options.js';

/** Drops that mean trouble (warn); the others are this side's choice (info). */
const TROUBLE: ReadonlySet<string> = new Set([
  'heartbeat not acknowledged',
  'too many unread payloads',
]);

/** An endpoint as the log and the session's `remote` show it. */
export function where(endpoint: AgentEndpoint): string {
  return `${endpoint.host}:${endpoint.port}`;
}

/**
 * What the agent logs for each action of its machine (nothing for most effects). `endpoint`: the
 * one registered with, for a drop; `closed`: how the last link ended, for a lost one.
 */
export function logAction(
  logger: Logger,
  action: ClientAction<AgentEndpoint>,
  endpoint: AgentEndpoint | undefined,
  closed: LinkClosed | undefined,
): void {
  switch (action.type) {
    case 'connect-failed':
      logger.warn(
        { endpoint: where(action.endpoint), reason: action.reason },
        'cannot connect to the gateway',
      );
      return;
    case 'register-failed':
      logger.warn(
        { endpoint: where(action.endpoint), reason: action.reason },
        'registration failed',
      );
      return;
    case 'refused':
      logger.warn(
        { endpoint: where(action.endpoint), result: action.result },
        'registration refused',
      );
      return;
    case 'stray-answer':
      logger.warn({ result: action.result }, 'registration answer while registered: ignored');
      return;
    case 'dropping': {
      const fields = {
        endpoint: endpoint === undefined ? undefined : where(endpoint),
        reason: action.reason,
      };
      if (TROUBLE.has(action.reason)) logger.warn(fields, 'dropping the link');
      else logger.info(fields, 'closing the link');
      return;
    }
    case 'lost':
      logger.warn(
        { endpoint: where(action.endpoint), error: closed?.error?.code },
        'link to the gateway lost',
      );
      return;
    case 'offline':
      logger.info(
        action.endpoint === undefined
          ? { reason: action.reason }
          : { endpoint: where(action.endpoint), reason: action.reason },
        POS_OFFLINE,
      );
      return;
    case 'backoff':
      logger.debug(
        { delayMs: action.delayMs, failures: action.failures },
        'waiting before the next cycle',
      );
      return;
    default:
      return;
  }
}
