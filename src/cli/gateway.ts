import { InvalidArgumentError, Option, type Command } from 'commander';
import { EcrError, invalid, type ErrorCode } from '../core/errors.js';
import type { Outcome } from '../core/transaction.js';
import { Gateway, GATEWAY_DEFAULT_CURRENCY, GATEWAY_HTTP_PORT } from '../gateway/gateway.js';
import {
  DEFAULT_MAX_UNREGISTERED_PER_ADDRESS,
  DEFAULT_REGISTRATION_BURST,
  DEFAULT_REGISTRATIONS_PER_SECOND,
  GATEWAY_TERMINAL_PORT,
} from '../gateway/terminal-listener.js';
import { DEFAULT_PAYLOAD, PAYLOAD_PROTOCOLS } from '../gateway/provisioning.js';
import { OUTCOME_EXIT_CODES } from './output.js';
import { httpCall } from '../transports/http-client.js';
import { loadTlsCa, loadTlsServer, tlsFailureReason } from '../transports/tls.js';
import { untilInterrupted } from './simulate.js';
import { type Merchant, type TenantStore, validateTenantId } from '../gateway/tenants.js';
import { ClusterNode, DEFAULT_SUBJECT_PREFIX } from '../gateway/cluster.js';
import { PostgresJournal } from '../journal/postgres-journal.js';
import { openContext, type Context } from './context.js';
import {
  identityFlags,
  runTerminalAdd,
  runTerminalList,
  runTerminalUpdate,
  shortDate,
  table,
  withTenants,
} from './gateway-terminals.js';
import type { CommandOutput, CommonOptions } from './main.js';

/** What `main.ts` lends a command group: its common options and its action wrapper. */
export interface CommandKit {
  /** Adds the options every command takes (`--data-dir`, `--json`, `--log-level`). */
  readonly common: (command: Command) => Command;
  /** Turns a run function into a commander action: prints its output or error, sets the exit code. */
  readonly action: <O>(
    run: (options: O & CommonOptions, ...args: string[]) => Promise<CommandOutput>,
  ) => (...args: unknown[]) => Promise<void>;
}

/**
 * Adds `gateway …` to the program and returns the `gateway` command, so that further
 * subcommands (`gateway start`, `gateway test`) can be added next to `merchant` and `terminal`.
 */
export function registerGatewayCommands(program: Command, kit: CommandKit): Command {
  const { common, action } = kit;
  const gateway = program
    .command('gateway')
    .description('the eConduit-compatible cloud gateway: merchants, their terminals and keys');

  const port = (name: string) => (value: string) => {
    if (!/^\d{1,5}$/.test(value) || Number(value) > 65_535)
      throw new InvalidArgumentError(`${name} must be a whole number from 0 to 65535`);
    return Number(value);
  };
  common(
    gateway
      .command('start')
      .description(
        'run the gateway: terminals connect over TCP, POS programs call HTTP (until Ctrl-C)',
      )
      .option('--host <host>', 'address to listen on', '127.0.0.1')
      .option(
        '--tcp-port <port>',
        `terminals' port (0: any free one)`,
        port('--tcp-port'),
        GATEWAY_TERMINAL_PORT,
      )
      .option(
        '--http-port <port>',
        'POS programs’ port (0: any free one)',
        port('--http-port'),
        GATEWAY_HTTP_PORT,
      )
      .option('--currency <code>', "the terminals' currency", GATEWAY_DEFAULT_CURRENCY)
      .option(
        '--heartbeat-interval <ms>',
        'the heartbeat interval terminals use; 3 missed ones mark a terminal offline (default 60000)',
        (value: string) => {
          if (!/^\d{2,9}$/.test(value))
            throw new InvalidArgumentError(
              '--heartbeat-interval must be a whole number of ms ≥ 10',
            );
          return Number(value);
        },
      )
      .option(
        '--registration-rate <n>',
        `registrations accepted per second from one address, after a burst (default ${DEFAULT_REGISTRATIONS_PER_SECOND}; and as many connections waiting to register; a fleet behind one NAT may need more)`,
        (value: string) => {
          if (!/^\d{1,7}$/.test(value) || Number(value) < 1)
            throw new InvalidArgumentError('--registration-rate must be a whole number from 1');
          return Number(value);
        },
      )
      .option(
        '--terminal-type <type...>',
        'an allow-list: only terminals of these types may register (default: any type; each terminal registers with the type it was provisioned with)',
      )
      .addOption(
        new Option(
          '--tls-cert <file>',
          'TLS certificate (PEM, chain after the leaf) for both listeners: terminals then connect over TLS and POS programs over HTTPS; plain connections are refused',
        ).env('ECR_BRIDGE_TLS_CERT'),
      )
      .addOption(
        new Option('--tls-key <file>', "the TLS certificate's private key (PEM)").env(
          'ECR_BRIDGE_TLS_KEY',
        ),
      )
      .addOption(
        new Option(
          '--tls-client-ca <file>',
          'mutual TLS (with --tls-cert): ask terminals for a client certificate signed by this CA (PEM); terminals added with --require-certificate must present one naming them',
        ).env('ECR_BRIDGE_TLS_CLIENT_CA'),
      )
      .option(
        '--cluster',
        'run as one node of a cluster: needs --nats and a PostgreSQL --journal shared by all nodes',
        false,
      )
      .addOption(
        new Option(
          '--nats <urls>',
          'cluster: NATS server(s), comma-separated (nats://host:4222)',
        ).env('ECR_BRIDGE_NATS_URL'),
      )
      .option('--node-id <id>', 'cluster: this node’s name in logs and messages (default: random)')
      .option(
        '--cluster-prefix <prefix>',
        'cluster: the NATS subject prefix; clusters sharing a NATS server need different ones',
        DEFAULT_SUBJECT_PREFIX,
      ),
  ).action(action(runGatewayStart));
  common(
    gateway
      .command('test')
      .description("send a test sale to a terminal through a running gateway (the seed's test URL)")
      .requiredOption('--terminal <id>', 'the terminal id')
      .requiredOption('--amount <amount>', 'with a decimal point, e.g. 1.00')
      .addOption(
        new Option('--url <url>', 'the gateway (https://… for a gateway with TLS)').default(
          `http://127.0.0.1:${GATEWAY_HTTP_PORT}`,
        ),
      )
      .option(
        '--tls-ca <file>',
        "with an https:// --url: the CA (PEM) that signed the gateway's certificate (default: the system's CAs)",
      )
      .addOption(new Option('--key <key>', "the merchant's API key").env('ECR_BRIDGE_GATEWAY_KEY'))
      .addOption(
        new Option('--password <password>', "the merchant's API password").env(
          'ECR_BRIDGE_GATEWAY_PASSWORD',
        ),
      ),
  ).action(action(runGatewayTest));

  const merchant = gateway.command('merchant').description("the gateway's merchants");
  common(
    merchant
      .command('add')
      .description('add a merchant; prints its API key and password (the password only this once)')
      .argument('<name>', '1–64 letters, digits, . _ -'),
  ).action(action(runMerchantAdd));
  common(merchant.command('list').description('list the merchants and their keys')).action(
    action(runMerchantList),
  );

  const terminal = gateway.command('terminal').description("the merchants' terminals");
  common(
    identityFlags(
      terminal
        .command('add')
        .description(
          'give a terminal (its device serial, the TerminalID it registers with) to a merchant',
        )
        .argument(
          '<id>',
          'the terminal id: 1–64 letters, digits, . _ -; unique across all merchants',
        )
        .requiredOption('--merchant <name>', 'the merchant that owns it')
        .requiredOption('--type <type>', 'its terminal type (the TerminalType it registers with)')
        .option(
          '--payload <format>',
          `the format of its transactions: ${PAYLOAD_PROTOCOLS.join(', ')} (SEMI JSON, seed 004)`,
          DEFAULT_PAYLOAD,
        ),
      false,
    ),
  ).action(action(runTerminalAdd));
  common(
    identityFlags(
      terminal
        .command('update')
        .description(
          "set, rotate or clear a terminal's registration secret, or its client certificate requirement",
        )
        .argument('<id>', 'the terminal id'),
      true,
    ),
  ).action(action(runTerminalUpdate));
  common(
    terminal
      .command('list')
      .description('list the terminals')
      .option('--merchant <name>', "only this merchant's terminals"),
  ).action(action(runTerminalList));

  return gateway;
}

const iso = (ms: number): string => new Date(ms).toISOString();

const merchantJson = (m: Merchant) => ({
  name: m.name,
  key: m.apiKey,
  createdAt: iso(m.createdAt),
});

export async function runMerchantAdd(options: CommonOptions, name: string): Promise<CommandOutput> {
  return withTenants(options, async (tenants, context) => {
    const added = await tenants.addMerchant(name);
    // Neither the password nor the key goes to the log: the answer below is their only copy.
    context.logger.info({ merchant: name }, 'gateway merchant added');
    return {
      exitCode: 0,
      text: [
        `✔ merchant ${name} added`,
        `  key       ${added.key}`,
        `  password  ${added.password}`,
        'The password is shown only now: ecr-bridge keeps only a hash of it. Store it safely;',
        'the POS sends the key and the password with every request.',
      ].join('\n'),
      json: { merchant: name, key: added.key, password: added.password },
    };
  });
}

export async function runMerchantList(options: CommonOptions): Promise<CommandOutput> {
  return withTenants(options, async (tenants) => {
    const merchants = await tenants.merchants();
    return {
      exitCode: 0,
      text:
        merchants.length === 0
          ? 'No merchants yet (add one with `ecr-bridge gateway merchant add NAME`).'
          : table(
              ['name', 'key', 'created'],
              merchants.map((m) => [m.name, m.apiKey, shortDate(m.createdAt)]),
            ),
      json: { count: merchants.length, merchants: merchants.map(merchantJson) },
    };
  });
}

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

export interface GatewayTestOptions extends CommonOptions {
  readonly terminal: string;
  readonly amount: string;
  readonly url: string;
  readonly key?: string;
  readonly password?: string;
  readonly tlsCa?: string;
}

/**
 * `ecr-bridge gateway test --terminal ID --amount 1.00`: a test sale on a terminal through a
 * running gateway's test-transaction endpoint (seed 002's "url to send test transactions").
 */
export async function runGatewayTest(options: GatewayTestOptions): Promise<CommandOutput> {
  validateTenantId('terminal', options.terminal);
  if (options.key === undefined || options.password === undefined) {
    throw invalid(
      'INVALID_INPUT',
      options.key === undefined ? 'key' : 'password',
      'is required (--key/--password or ECR_BRIDGE_GATEWAY_KEY/ECR_BRIDGE_GATEWAY_PASSWORD)',
    );
  }
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    throw invalid('INVALID_INPUT', 'url', 'must be the gateway URL, e.g. http://127.0.0.1:8081');
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw invalid('INVALID_INPUT', 'url', 'must be an http:// or https:// URL', options.url);
  if (options.tlsCa !== undefined && base.protocol !== 'https:')
    throw invalid('INVALID_INPUT', '--tls-ca', 'is only used with an https:// --url');
  const ca = options.tlsCa === undefined ? undefined : loadTlsCa(options.tlsCa, '--tls-ca');
  const url = new URL(
    `/api/v1/terminals/${encodeURIComponent(options.terminal)}/test-transaction`,
    base,
  );
  let response: { status: number; text: string };
  try {
    response = await httpCall({
      url,
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${options.key}:${options.password}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ amount: options.amount }),
      ...(ca === undefined ? {} : { ca }),
      signal: AbortSignal.timeout(300_000),
    });
  } catch (error) {
    const why = tlsFailureReason((error as NodeJS.ErrnoException).code);
    throw new EcrError(
      'TERMINAL_UNREACHABLE',
      `cannot reach the gateway at ${base.origin}: ${why === undefined ? '' : `${why}: `}${(error as Error).message}`,
    );
  }
  const body = (() => {
    try {
      return JSON.parse(response.text) as unknown;
    } catch {
      return {};
    }
  })() as {
    transaction?: { outcome: Outcome; amount: string; currency: string; reference: string };
    error?: { code: ErrorCode; message: string; field?: string; rule?: string };
  };
  if (body.error !== undefined) {
    throw new EcrError(body.error.code, body.error.message, {
      ...(body.error.field === undefined ? {} : { field: body.error.field }),
      ...(body.error.rule === undefined ? {} : { rule: body.error.rule }),
    });
  }
  const tx = body.transaction;
  if (tx === undefined)
    throw new EcrError('PROTOCOL_ERROR', `unexpected answer (HTTP ${response.status})`);
  return {
    exitCode: OUTCOME_EXIT_CODES[tx.outcome],
    json: body.transaction,
    text: `${tx.outcome}  ${tx.amount} ${tx.currency}  on terminal ${options.terminal}  reference ${tx.reference}`,
  };
}
