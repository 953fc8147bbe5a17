import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { EcrError } from '../core/errors.js';
import { DEFAULT_DATA_DIR } from './context.js';
import { describeError, errorJson, exitCodeForError, ERROR_EXIT_CODES } from './output.js';
import { runDemo } from './demo.js';
import { runBatchClose, runPay } from './pay.js';
import { PORTS_MAX_INTERVAL_MS, PORTS_MIN_INTERVAL_MS, runPorts } from './ports.js';
import { runConnectorStart } from './connector.js';
import { runConnectorAlwaysUp, runConnectorSupervise } from './supervise.js';
import { MONEY_KINDS } from '../core/transaction.js';
import { PACKAGE_VERSION } from '../core/version.js';
import { runSimulate } from './simulate.js';
import { runTxList, runTxResolve, runTxShow } from './tx.js';
import { registerGatewayCommands } from './gateway.js';

/** Options every command takes. */
export interface CommonOptions {
  readonly dataDir: string;
  /** A PostgreSQL URL: the journal (and the gateway's tenants) live there, not in the data dir. */
  readonly journal?: string;
  readonly json: boolean;
  readonly logLevel: string;
}

/** What a command hands back: the text or JSON object to print, and the exit code. */
export interface CommandOutput {
  readonly exitCode: number;
  readonly text?: string;
  readonly json?: unknown;
}

function common(command: Command): Command {
  return command
    .addOption(
      new Option('--data-dir <dir>', 'where the journal and logs live')
        .env('ECR_BRIDGE_DATA_DIR')
        .default(DEFAULT_DATA_DIR),
    )
    .addOption(
      new Option(
        '--journal <url>',
        'a postgres:// URL: keep the journal in PostgreSQL (a gateway cluster) instead of the data directory',
      ).env('ECR_BRIDGE_JOURNAL_URL'),
    )
    .option('--json', 'print one JSON object on stdout instead of text', false)
    .addOption(
      new Option('--log-level <level>', 'log file level')
        .choices(['fatal', 'error', 'warn', 'info', 'debug'])
        .default('info'),
    );
}

/** An option parser for whole numbers in [min, max]; commander reports the message as a usage error. */
export function integerIn(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

const port = (name: string) => integerIn(name, 0, 65_535);

/** A probability from 0 to 1. */
const chance =
  (name: string) =>
  (value: string): number => {
    const n = Number(value);
    if (!/^(0(\.\d+)?|1(\.0+)?)$/.test(value) || Number.isNaN(n)) {
      throw new InvalidArgumentError(`${name} must be a number from 0 to 1`);
    }
    return n;
  };

/** A port, or `off` for a listener that should not run. */
const portOrOff = (name: string) => {
  const parse = port(name);
  return (value: string): number | 'off' => {
    if (value === 'off') return 'off';
    try {
      return parse(value);
    } catch {
      throw new InvalidArgumentError(`${name} must be a whole number from 0 to 65535, or off`);
    }
  };
};

function print(output: CommandOutput, json: boolean): void {
  if (json && output.json !== undefined) process.stdout.write(`${JSON.stringify(output.json)}\n`);
  else if (output.text !== undefined) process.stdout.write(`${output.text}\n`);
}

function printJsonError(reference: string | null, error: unknown): void {
  process.stdout.write(
    `${JSON.stringify({ outcome: null, reference, error: errorJson(error) })}\n`,
  );
}

type Action<O> = (options: O & CommonOptions, ...args: string[]) => Promise<CommandOutput>;

/** Runs a command action: prints its output, or its error without a stack trace; sets the exit code. */
function action<O>(run: Action<O>) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args[args.length - 1] as Command;
    const options = command.opts<O & CommonOptions>();
    const positional = args.slice(0, -2).map(String);
    try {
      const output = await run(options, ...positional);
      print(output, options.json);
      process.exitCode = output.exitCode;
    } catch (error) {
      const reference = (options as { reference?: string }).reference ?? positional[0] ?? null;
      if (options.json) printJsonError(reference, error);
      else process.stderr.write(`${describeError(error)}\n`);
      process.exitCode = exitCodeForError(error);
    }
  };
}

export function buildProgram(): Command {
  const program = new Command('ecr-bridge')
    .description('Connect point-of-sale software to card-payment terminals.')
    .version(PACKAGE_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  common(
    program
      .command('pay')
      .description(
        'take a payment on a terminal; exit code 0 approved, 2 declined, 3 cancelled, 4 failed, 5 unknown',
      )
      .requiredOption(
        '--terminal <address>',
        'terminal address, e.g. ws://127.0.0.1:45454 (payable), tcp://127.0.0.1:5001 or semi+ws://127.0.0.1:5000 (semi), simulator:semi',
      )
      .addOption(
        new Option('--kind <kind>', 'what to do (all but sale need a terminal that can)')
          .choices([...MONEY_KINDS])
          .default('sale'),
      )
      .option(
        '--original <reference>',
        'reference of the transaction a void, capture, tip-adjust (or refund) applies to',
      )
      .requiredOption('--amount <amount>', 'amount in major units: 20.00 or 20,00')
      .requiredOption(
        '--reference <ref>',
        'your order id: the idempotency key (a retry with it never charges twice)',
      )
      .option(
        '--currency <code>',
        "ISO 4217 code; must be the terminal's currency (?currency= in the address; by default LKR for payable, USD for semi)",
      )
      .option(
        '--terminal-id <id>',
        'stable name of the terminal; references are unique per terminal id (default: the address without options)',
      )
      .option('--protocol <name>', 'override the protocol the address implies')
      .option('--token <token>', 'terminal access token (PAYable newer firmware)')
      .option('--pos <name>', "this POS's name, as the terminal shows it")
      .addOption(
        new Option('--method <method>', 'payment method')
          .choices(['card', 'wallet'])
          .default('card'),
      )
      .option('--receipt-email <email>', 'send the receipt to this address')
      .option('--receipt-sms <number>', 'send the receipt to this phone number')
      .option(
        '--timeout <seconds>',
        'how long to wait for the cardholder',
        integerIn('--timeout', 1, 3600),
        180,
      ),
  ).action(action(runPay));

  const tx = program.command('tx').description('read the journal; settle unknown transactions');
  common(tx.command('list').description('list transactions, newest first'))
    .option('--unresolved', 'only transactions whose outcome is not known (reconcile these)', false)
    .option('--limit <n>', 'at most this many', integerIn('--limit', 1, 10_000), 50)
    .action(action(runTxList));
  common(
    tx
      .command('show')
      .description('show the transactions with a reference, or the one with a public id (tx_…)')
      .argument('<reference>'),
  ).action(action(runTxShow));
  common(
    tx
      .command('resolve')
      .description(
        'record the outcome of an unknown transaction, after checking the terminal or the acquirer',
      )
      .argument('<reference>')
      .addOption(
        new Option('--outcome <outcome>', 'what really happened')
          .choices(['approved', 'declined', 'cancelled', 'failed'])
          .makeOptionMandatory(),
      )
      .requiredOption('--note <text>', 'how it was checked (kept in the journal)')
      .option('--terminal <id>', 'terminal id, when the reference exists on several terminals'),
  ).action(action(runTxResolve));

  common(
    program
      .command('simulate')
      .description('run a simulated terminal until interrupted')
      .argument('<protocol>', 'payable, semi, concert or econduit')
      .option('--host <host>', 'address to listen on', '127.0.0.1')
      .option(
        '--port <port>',
        'payable: terminal port (0: any free port; default 45454)',
        port('--port'),
      )
      .option(
        '--status-port <port>',
        'payable: status page and /ledger port (0: any free port; default 8080)',
        port('--status-port'),
      )
      .option(
        '--token <token>',
        'payable: require this token (newer firmware); without it the simulator is the old firmware',
      )
      .option('--ws <port>', 'semi: WebSocket port, or off (default 5000)', portOrOff('--ws'))
      .option(
        '--tcp <port>',
        'semi: raw TCP port, or off (default 5001); concert: Concert over IP port (default off)',
        portOrOff('--tcp'),
      )
      .option(
        '--control-port <port>',
        'control port: /next (queue the next scenario), /ledger and more (semi: default 8081; payable, concert, econduit: default off)',
        port('--control-port'),
      )
      .option('--fragment', 'semi: cut every TCP write into random small pieces')
      .option(
        '--pty',
        'concert: a pseudo-terminal pair (socat); prints the POS-side device first (the default without --tcp)',
      )
      .option(
        '--line-noise [chance]',
        'concert: corrupt a byte of a frame now and then (chance 0–1, default 0.2)',
        chance('--line-noise'),
      )
      .option(
        '--echo-private',
        "concert: answer with the request's private data (the default puts the terminal's own transaction number there)",
      )
      .option(
        '--currency <code>',
        "the terminal's currency (default LKR for payable, USD for semi and econduit)",
      )
      .option('--gateway <host:port>', "econduit: the gateway's primary endpoint")
      .option(
        '--secondary <host:port>',
        'econduit: the secondary endpoint, tried when the primary fails',
      )
      .option(
        '--tls',
        "econduit: connect to the gateway over TLS only, verifying its certificate (the system's CAs, or --tls-ca)",
      )
      .option(
        '--tls-ca <file>',
        "econduit: the CA (PEM) that signed the gateway's certificate; implies --tls",
      )
      .option(
        '--tls-client-cert <file>',
        'econduit: present this client certificate (PEM) to the gateway (mutual TLS); needs --tls-client-key; implies --tls',
      )
      .option('--tls-client-key <file>', "econduit: the client certificate's private key (PEM)")
      .option(
        '--terminal-secret <secret>',
        'econduit: the registration secret every terminal sends (TerminalSecret); better from ECR_BRIDGE_TERMINAL_SECRET, which ps does not show',
      )
      .option('--id <terminalId>', 'econduit: the terminal id (device serial), default 29531204')
      .option('--type <type>', 'econduit: the terminal type it registers with, default Valor')
      .option(
        '--count <n>',
        'econduit: run n virtual terminals, ids counting up from --id',
        integerIn('--count', 1, 18_000),
      )
      .option(
        '--heartbeat <ms>',
        'econduit: heartbeat interval while idle (default 60000)',
        integerIn('--heartbeat', 10, 3_600_000),
      )
      .option(
        '--card-delay <ms>',
        'time the simulated cardholder takes',
        integerIn('--card-delay', 0, 600_000),
        0,
      )
      .option(
        '--slow-answer <ms>',
        'delay of the slow scenario (amounts ending in 56)',
        integerIn('--slow-answer', 0, 600_000),
        5000,
      ),
  ).action(action(runSimulate));

  const connector = program
    .command('connector')
    .description('the HiPay-compatible local connector a POS or kiosk calls over HTTP');
  common(
    connector
      .command('start')
      .description('start the connector described by a config.txt (runs until Ctrl-C or GET /stop)')
      .option(
        '--config <file>',
        'the config.txt (KEY=VALUE lines, see docs/connector.md); default: config.txt in --data-dir',
      ),
  ).action(action(runConnectorStart));
  common(
    connector
      .command('supervise')
      .description(
        'run `connector start` and restart it when it exits abnormally (back-off 1 s → 60 s); ends on GET /stop, Ctrl-C or SIGTERM',
      )
      .requiredOption('--config <file>', 'the config.txt (KEY=VALUE lines, see docs/connector.md)'),
  ).action(action(runConnectorSupervise));
  common(
    connector
      .command('always-up')
      .description(
        'for cron or Task Scheduler: exit 0 if the connector answers, otherwise start `connector supervise` detached and wait for it',
      )
      .requiredOption('--config <file>', 'the config.txt (KEY=VALUE lines, see docs/connector.md)')
      .option(
        '--wait <seconds>',
        'how long to wait for the connector to answer (default 20)',
        integerIn('--wait', 1, 600),
      ),
  ).action(action(runConnectorAlwaysUp));

  registerGatewayCommands(program, { common, action });

  const batch = program.command('batch').description("the terminal's batch (settlement)");
  common(
    batch
      .command('close')
      .description("close the terminal's open batch and print its totals (semi terminals)")
      .requiredOption('--terminal <address>', 'terminal address, e.g. tcp://127.0.0.1:5001')
      .option('--terminal-id <id>', 'stable name of the terminal (default: the address)')
      .option('--protocol <name>', 'override the protocol the address implies')
      .option('--currency <code>', "the terminal's currency (default USD for semi)"),
  ).action(action(runBatchClose));

  common(
    program
      .command('demo')
      .description(
        'start the HiPay-compatible connector over a simulated terminal, a simulated PAYable terminal, and the cloud gateway with three simulated eConduit terminals; print how to pay',
      )
      .option('--port <port>', 'PAYable terminal port', port('--port'), 45454)
      .option('--status-port <port>', 'PAYable status page port', port('--status-port'), 8090)
      .option(
        '--connector-port <port>',
        'connector port (the seed default 8080)',
        port('--connector-port'),
        8080,
      )
      .option(
        '--gateway-port <port>',
        "gateway's HTTP port for POS programs",
        port('--gateway-port'),
        8081,
      )
      .option(
        '--gateway-tcp-port <port>',
        "gateway's TCP port for terminals",
        port('--gateway-tcp-port'),
        9001,
      ),
  ).action(action(runDemo));

  common(
    program
      .command('ports')
      .description('list the serial ports (where a USB or RS-232 terminal shows up)')
      .option('--watch', 'keep looking; print a line per port that appears (+) or disappears (-)')
      .option(
        '--interval <ms>',
        'with --watch: how often to look (default 1000)',
        integerIn('--interval', PORTS_MIN_INTERVAL_MS, PORTS_MAX_INTERVAL_MS),
      ),
  ).action(action(runPorts));

  return program;
}

/** Runs the CLI; resolves when the command has finished (or, for servers, was interrupted). */
export async function main(argv: readonly string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are successes; anything else commander refused is a usage error
      // (already explained on stderr; scripts asking for --json get it on stdout too).
      if (error.exitCode === 0) return;
      process.exitCode = ERROR_EXIT_CODES.INVALID_INPUT ?? 64;
      if (argv.includes('--json')) {
        printJsonError(null, new EcrError('INVALID_INPUT', error.message.replace(/^error: /, '')));
      }
      return;
    }
    process.stderr.write(
      `${describeError(new EcrError('INTERNAL', String(error), { cause: error }))}\n`,
    );
    process.exitCode = 1;
  }
}
