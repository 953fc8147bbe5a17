import { InvalidArgumentError, Option, type Command } from 'commander';
import { GATEWAY_DEFAULT_CURRENCY, GATEWAY_HTTP_PORT } from '../gateway/gateway.js';
import {
  DEFAULT_REGISTRATIONS_PER_SECOND,
  GATEWAY_TERMINAL_PORT,
} from '../gateway/terminal-listener-options.js';
import { DEFAULT_PAYLOAD, PAYLOAD_PROTOCOLS } from '../gateway/provisioning.js';
import type { Merchant } from '../gateway/tenants.js';
import { DEFAULT_SUBJECT_PREFIX } from '../gateway/cluster/options.js';
import { runGatewayStart } from './gateway-start.js';
import {
  identityFlags,
  runTerminalAdd,
  runTerminalList,
  runTerminalUpdate,
  withTenants,
} from './gateway-terminals.js';
import { shortDate, table } from './output.js';
import { runGatewayTest } from './gateway-test.js';
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
