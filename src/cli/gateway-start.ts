import { invalid } from '../core/errors.js';
import { Gateway } from '../gateway/gateway.js';
import {
  DEFAULT_MAX_UNREGISTERED_PER_ADDRESS,
  DEFAULT_REGISTRATION_BURST,
} from '../gateway/terminal-listener-options.js';
import type { TenantStore } from '../gateway/tenants.js';
import { ClusterNode } from '../gateway/cluster/node.js';
import { PostgresJournal } from '../journal/postgres-journal.js';
import { loadTlsCa, loadTlsServer } from '../transports/tls.js';
import { openContext, type Context } from './context.js';
import type { CommandOutput, CommonOptions } from './main.js';
import { untilInterrupted } from './simulate.js';

/**
 * `ecr-bridge gateway start`: the options checked (TLS files, cluster settings) before anything
 * starts, then the gateway run until Ctrl-C. `demo` starts one the same way.
 */

export interface GatewayStartOptions extends CommonOptions {
  readonly host: string;
  readonly tcpPort: number;
  readonly httpPort: number;
  readonly currency: string;
  readonly heartbeatInterval?: number;
  readonly registrationRate?: number;
  /** `--terminal-type`: an allow-list of terminal types; absent, any provisioned type registers. */
  readonly terminalType?: readonly string[];
  /** TLS certificate and key files for both listeners. */
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** Mutual TLS on the terminal listener: the CA file client certificates are checked against. */
  readonly tlsClientCa?: string;
  readonly cluster?: boolean;
  readonly nats?: string;
  readonly nodeId?: string;
  readonly clusterPrefix?: string;
}

/** A running gateway: where it listens, and how to stop it. */
export interface RunningGateway {
  readonly gateway: Gateway;
  readonly tenants: TenantStore;
  /** Cluster mode: this node's name. */
  readonly nodeId?: string;
  close(): Promise<void>;
}

/**
 * Cluster mode's settings, checked before anything starts: NATS servers and a shared PostgreSQL
 * journal are both required, and each missing one is named.
 */
async function joinCluster(
  context: Context,
  options: Omit<GatewayStartOptions, keyof CommonOptions>,
): Promise<ClusterNode | undefined> {
  if (options.cluster !== true) {
    if (options.nats !== undefined)
      throw invalid('INVALID_INPUT', 'nats', 'is only used with --cluster');
    return undefined;
  }
  if (options.nats === undefined || options.nats.trim() === '') {
    throw invalid(
      'INVALID_INPUT',
      'nats',
      'is required with --cluster (--nats nats://host:4222 or ECR_BRIDGE_NATS_URL)',
    );
  }
  if (!(context.journal instanceof PostgresJournal)) {
    throw invalid(
      'INVALID_INPUT',
      'journal',
      'must be a postgres:// URL with --cluster (--journal or ECR_BRIDGE_JOURNAL_URL): every node shares it',
    );
  }
  const servers = options.nats.split(',').map((s) => s.trim());
  for (const server of servers) {
    if (!/^(nats|tls):\/\/[^\s/]+(:\d+)?\/?$/.test(server))
      throw invalid(
        'INVALID_INPUT',
        'nats',
        'must be nats://host:port URLs, comma-separated',
        server,
      );
  }
  return ClusterNode.connect({
    servers,
    ...(options.nodeId === undefined ? {} : { nodeId: options.nodeId }),
    ...(options.clusterPrefix === undefined ? {} : { subjectPrefix: options.clusterPrefix }),
    logger: context.logger,
  });
}

/** `--tls-cert` and `--tls-key` read and checked (both or neither), as PEM text. */
function gatewayTls(
  options: Pick<GatewayStartOptions, 'tlsCert' | 'tlsKey'>,
): { cert: string; key: string } | undefined {
  if (options.tlsCert === undefined && options.tlsKey === undefined) return undefined;
  if (options.tlsCert === undefined || options.tlsKey === undefined) {
    const missing = options.tlsCert === undefined ? '--tls-cert' : '--tls-key';
    throw invalid(
      'INVALID_INPUT',
      missing,
      'is required with TLS: give both --tls-cert and --tls-key (or ECR_BRIDGE_TLS_CERT and ECR_BRIDGE_TLS_KEY)',
    );
  }
  const loaded = loadTlsServer(
    { certFile: options.tlsCert, keyFile: options.tlsKey },
    { certFile: '--tls-cert', keyFile: '--tls-key', cert: '--tls-cert', key: '--tls-key' },
  );
  return { cert: loaded.cert, key: loaded.key };
}

/** Starts the gateway on a data directory's journal and tenants. */
export async function startGateway(
  context: Context,
  options: Omit<GatewayStartOptions, keyof CommonOptions>,
): Promise<RunningGateway> {
  const tenants = context.tenants;
  // Checked before anything starts: a bad certificate names its flag and path, exit 64.
  const tls = gatewayTls(options);
  if (options.tlsClientCa !== undefined && tls === undefined) {
    throw invalid(
      'INVALID_INPUT',
      '--tls-client-ca',
      'is only used with --tls-cert and --tls-key (terminals connect over TLS)',
    );
  }
  const tlsClientCa =
    options.tlsClientCa === undefined
      ? undefined
      : loadTlsCa(options.tlsClientCa, '--tls-client-ca');
  const cluster = await joinCluster(context, options);
  const gateway = new Gateway({
    ...(cluster === undefined ? {} : { cluster }),
    journal: context.journal,
    tenants,
    host: options.host,
    tcpPort: options.tcpPort,
    httpPort: options.httpPort,
    currency: options.currency,
    ...(tls === undefined ? {} : { tls }),
    terminals: {
      ...(tlsClientCa === undefined ? {} : { tlsClientCa }),
      ...(options.terminalType === undefined ? {} : { terminalTypes: options.terminalType }),
      ...(options.heartbeatInterval === undefined
        ? {}
        : { heartbeatIntervalMs: options.heartbeatInterval }),
      ...(options.registrationRate === undefined
        ? {}
        : {
            registrationsPerSecond: options.registrationRate,
            registrationBurst: Math.max(DEFAULT_REGISTRATION_BURST, options.registrationRate),
            // As many may be connecting at once from that address.
            maxUnregisteredPerAddress: Math.max(
              DEFAULT_MAX_UNREGISTERED_PER_ADDRESS,
              options.registrationRate,
            ),
          }),
    },
    logger: context.logger,
  });
  try {
    await gateway.start();
  } catch (error) {
    await cluster?.close();
    throw error;
  }
  return {
    gateway,
    tenants,
    ...(cluster === undefined ? {} : { nodeId: cluster.nodeId }),
    close: async () => {
      await gateway.close();
      await cluster?.close();
    },
  };
}

/**
 * `ecr-bridge gateway start`: terminals on TCP (default 9001), POS programs on HTTP (default
 * 8081), until Ctrl-C or SIGTERM.
 */
export async function runGatewayStart(options: GatewayStartOptions): Promise<CommandOutput> {
  const interrupted = untilInterrupted();
  const context = await openContext(options);
  try {
    const running = await startGateway(context, options);
    const { gateway } = running;
    const info = {
      tcp: `${options.host}:${gateway.tcpPort}`,
      http: `${gateway.secure ? 'https' : 'http'}://${options.host}:${gateway.httpPort}`,
      tls: gateway.secure,
      dataDir: context.dataDir,
      ...(running.nodeId === undefined ? {} : { node: running.nodeId }),
      journal: context.journalWhere,
      terminals: (await running.tenants.allTerminals()).length,
      merchants: (await running.tenants.merchants()).length,
    };
    process.stdout.write(
      options.json
        ? `${JSON.stringify(info)}\n`
        : `ecr-bridge gateway${running.nodeId === undefined ? '' : ` (cluster node ${running.nodeId})`}: terminals on ${gateway.secure ? 'tls' : 'tcp'}://${info.tcp}, POS programs on ${info.http} (${info.merchants} merchants, ${info.terminals} terminals; journal: ${info.journal})\nCtrl-C stops it.\n`,
    );
    await interrupted;
    await running.close();
    return { exitCode: 0 };
  } finally {
    await context.close();
  }
}
