import { join, resolve } from 'node:path';
import {
  loadConfig,
  loadDataDirConfig,
  describeConfig,
  CONFIG_FILE_NAME,
  type ConnectorConfig,
} from '../connector/config.js';
import { MaintenanceScheduler, runMaintenance } from '../connector/maintenance.js';
import { CONNECTOR_LISTEN_HOST } from '../connector/host-check.js';
import { Notifier } from '../connector/notifier.js';
import { buildConnector } from '../connector/server.js';
import { EcrError } from '../core/errors.js';
import { openContext } from './context.js';
import type { CommandOutput, CommonOptions } from './main.js';
import { addTerminal, attachSimulator, chooseTerminal, type Attached } from './pay.js';
import { untilInterrupted } from './simulate.js';

export interface ConnectorStartOptions extends CommonOptions {
  /** The config file; without it, `config.txt` in `dataDir` (where seed 003 keeps it). */
  readonly config?: string;
}

/** The currency of a payment request that names none (seeds 001 and 003). */
export const CONNECTOR_DEFAULT_CURRENCY = 'EUR';

/** The terminal id the connector journals its payments under. */
export const CONNECTOR_TERMINAL_ID = 'connector';

/** A running connector: its URL, and how to stop it. */
export interface RunningConnector {
  readonly url: string;
  readonly config: ConnectorConfig;
  /** Resolves when `GET /stop` asked the connector to stop. */
  readonly stopRequested: Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the HiPay-compatible connector described by a config.txt: the journal in DATA_DIR, the
 * terminal at TERMINAL_URL (a built-in simulator for `simulator:<protocol>`), the back-office
 * notifier when NOTIFY_URL is set, and the HTTP API on 127.0.0.1:LOCAL_PORT.
 */
export async function startConnector(
  config: ConnectorConfig,
  logLevel: string,
): Promise<RunningConnector> {
  // CURRENCY in config.txt is the terminal's set-up; otherwise the address's or the protocol's.
  const base = chooseTerminal({ terminal: config.terminalUrl, terminalId: CONNECTOR_TERMINAL_ID });
  const choice = config.currency === undefined ? base : { ...base, currency: config.currency };
  // One payment at a time, refused at once when busy (409): a kiosk must not queue blindly.
  const context = await openContext({ dataDir: config.dataDir, logLevel, maxQueue: 0 });
  const closers: (() => Promise<void>)[] = [() => context.close()];
  const close = async (): Promise<void> => {
    for (const closer of closers.splice(0).reverse()) await closer().catch(() => {});
  };
  try {
    const attached: Attached = await attachSimulator(choice);
    closers.push(() => attached.stop());
    const driver = addTerminal(context, choice, attached.address, {
      ...(config.posNumber === undefined ? {} : { posNumber: config.posNumber }),
      logger: context.logger,
    });
    let notifier: Notifier | undefined;
    if (config.notifyUrl !== undefined) {
      notifier = new Notifier({
        journal: context.journal,
        url: config.notifyUrl,
        ...(config.hipayLogin === undefined ? {} : { login: config.hipayLogin }),
        ...(config.hipayPassword === undefined ? {} : { password: config.hipayPassword }),
        logger: context.logger,
      });
      await notifier.start();
      const started = notifier;
      closers.push(() => started.stop());
    }
    let requestStop: () => void = () => {};
    const stopRequested = new Promise<void>((resolve) => {
      requestStop = resolve;
    });
    const app = await buildConnector({
      flavour: config.flavour,
      login: config.login,
      password: config.password,
      service: context.service,
      terminalId: choice.terminalId,
      driver,
      // The seeds' default is EUR; CURRENCY in config.txt sets both the terminal's and this.
      currency: config.currency ?? CONNECTOR_DEFAULT_CURRENCY,
      journal: context.journal,
      journalId: async (reference, attempt) =>
        (
          await context.journal.attemptsOf({
            merchantId: 'default',
            terminalId: choice.terminalId,
            reference,
          })
        ).find((row) => row.attempt === attempt)?.id,
      ...(notifier === undefined ? {} : { notifier }),
      ...(config.allowedHosts === undefined ? {} : { allowedHosts: config.allowedHosts }),
      onStop: () => requestStop(),
      logger: context.logger,
    });
    closers.push(() => app.close());
    await app
      .listen({ port: config.localPort, host: CONNECTOR_LISTEN_HOST })
      .catch((error: unknown) => {
        throw new EcrError(
          'INVALID_INPUT',
          `LOCAL_PORT: ${config.localPort} cannot be used (${(error as Error).message}); choose another in config.txt`,
          { field: 'LOCAL_PORT', rule: 'must be a free port' },
        );
      });
    if (config.updateTime !== undefined) {
      // UPDATE_TIME (seed 003): the daily batch close and journal upkeep, stopped first on close.
      const logger = context.logger.child({ component: 'maintenance' });
      const scheduler = new MaintenanceScheduler({
        time: config.updateTime,
        task: () =>
          runMaintenance({
            service: context.service,
            terminalId: choice.terminalId,
            driver,
            journal: context.journal,
            logger,
          }),
        succeeded: (report) => report.ok,
        logger,
      });
      scheduler.start();
      closers.push(() => scheduler.stop());
    }
    context.logger.info(
      { ...describeConfig(config), configFile: config.file ?? null },
      'connector started',
    );
    // LOCAL_PORT 0 (tests, the demo's free port) is the port actually bound.
    const address = app.addresses()[0];
    const bound = typeof address === 'object' ? address.port : config.localPort;
    return { url: `http://127.0.0.1:${bound}`, config, stopRequested, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * `ecr-bridge connector start [--config config.txt]`: runs until Ctrl-C, SIGTERM or `GET /stop`.
 * Without `--config`, the data directory's config.txt; the start message names the file read.
 */
export async function runConnectorStart(options: ConnectorStartOptions): Promise<CommandOutput> {
  const config =
    options.config === undefined ? loadDataDirConfig(options.dataDir) : loadConfig(options.config);
  const interrupted = untilInterrupted();
  const connector = await startConnector(config, options.logLevel);
  const info = {
    url: connector.url,
    flavour: config.flavour,
    // The file read; null: none was found in the data directory, defaults and variables only.
    config: config.file ?? null,
    // Through describeConfig: an address's token or a URL's password is never printed.
    terminal: describeConfig(config).TERMINAL_URL,
    dataDir: config.dataDir,
    notify: config.notifyUrl === undefined ? null : describeConfig(config).NOTIFY_URL,
  };
  process.stdout.write(
    options.json
      ? `${JSON.stringify(info)}\n`
      : `ecr-bridge connector (${config.flavour}) on ${connector.url}, terminal ${String(info.terminal)}\n${
          config.file === undefined
            ? `no ${join(resolve(options.dataDir), CONFIG_FILE_NAME)}: defaults and ECR_BRIDGE_<KEY> variables`
            : `config ${config.file}`
        }\nCtrl-C or GET /stop stops it.\n`,
  );
  await Promise.race([interrupted, connector.stopRequested]);
  await connector.close();
  return { exitCode: 0 };
}
