import { once } from 'node:events';
import { invalid } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { humanLogDestination } from './human-log.js';
import { requireCurrency } from '../core/money.js';
import { PayableSimulator } from '../simulators/payable/simulator.js';
import type { CommandOutput, CommonOptions } from './main.js';

export interface SimulateOptions extends CommonOptions {
  readonly host: string;
  readonly port: number;
  readonly statusPort: number;
  readonly token?: string;
  readonly currency: string;
  readonly cardDelay: number;
  readonly slowAnswer: number;
}

/** Starts a PAYable simulator and returns it with a description of where it listens. */
export async function startPayableSimulator(
  options: Omit<SimulateOptions, keyof CommonOptions> & { logLevel: string; json: boolean },
) {
  const simulator = await new PayableSimulator({
    host: options.host,
    port: options.port,
    statusPort: options.statusPort,
    currency: requireCurrency(options.currency).code,
    cardDelayMs: options.cardDelay,
    slowAnswerMs: options.slowAnswer,
    // JSON lines for --json (machines), one readable line per event otherwise.
    logger: createLogger({
      level: options.logLevel,
      ...(options.json ? {} : { destination: humanLogDestination() }),
    }),
    ...(options.token === undefined ? {} : { token: options.token }),
  }).start();
  const info = {
    protocol: 'payable',
    url: simulator.url,
    port: simulator.port,
    statusUrl: `http://${options.host}:${simulator.statusPort}/`,
    ledgerUrl: `http://${options.host}:${simulator.statusPort}/ledger`,
    statusPort: simulator.statusPort,
    serial: simulator.serial,
    token: options.token ?? null,
  };
  return { simulator, info };
}

/** Waits for Ctrl-C or SIGTERM. */
export async function untilInterrupted(): Promise<void> {
  await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
}

export async function runSimulate(
  options: SimulateOptions,
  protocol: string,
): Promise<CommandOutput> {
  if (protocol !== 'payable')
    throw invalid(
      'INVALID_INPUT',
      'protocol',
      'must be payable (the simulators available in this release)',
      protocol,
    );
  const { simulator, info } = await startPayableSimulator(options);
  const text = `PAYable simulator ${info.serial} on ${info.url}${info.token === null ? ' (old firmware: no token)' : ` (token ${info.token})`}\nstatus page ${info.statusUrl}   ledger ${info.ledgerUrl}\nCtrl-C stops it.`;
  process.stdout.write(options.json ? `${JSON.stringify(info)}\n` : `${text}\n`);
  await untilInterrupted();
  await simulator.stop();
  return { exitCode: 0 };
}
