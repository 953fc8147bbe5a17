import { journalCheck, type ReadinessCheck } from '../core/readiness.js';
import type { Journal } from '../core/journal-port.js';
import type { ClusterNode } from './cluster/node.js';
import type { TerminalListener } from './terminal-listener.js';

/**
 * What a gateway node needs to serve a payment, as readiness checks (`/readyz`): its journal
 * takes a write (SQLite, or the cluster's PostgreSQL, which also holds the merchants), terminals
 * can connect to its listener, and in a cluster NATS carries its messages.
 */
export function gatewayChecks(parts: {
  readonly journal: Journal;
  readonly listener: Pick<TerminalListener, 'listening' | 'host' | 'port'>;
  readonly cluster?: Pick<ClusterNode, 'ping'>;
}): ReadinessCheck[] {
  const { listener, cluster } = parts;
  return [
    journalCheck(parts.journal),
    {
      name: 'terminal-listener',
      run: () => {
        if (!listener.listening)
          throw new Error(
            `the terminal listener (${listener.host}:${listener.port}) is not listening: terminals cannot connect`,
          );
      },
    },
    ...(cluster === undefined ? [] : [{ name: 'nats', run: () => cluster.ping() }]),
  ];
}
