import { once } from 'node:events';
import { invalid } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { humanLogDestination } from './human-log.js';
import { requireCurrency } from '../core/money.js';
import { PayableSimulator } from '../simulators/payable/simulator.js';
import { SEMI_WAITING_TEXT, SemiSimulator } from '../simulators/semi/simulator.js';
import type { CommandOutput, CommonOptions } from './main.js';

/** Ports of the simulators when the command line names none (the vendors' defaults). */
export const SIMULATOR_DEFAULTS = {
  payable: { port: 45454, statusPort: 8080, currency: 'LKR' },
  semi: { ws: 5000, tcp: 5001, controlPort: 8081, currency: 'USD' },
} as const;

export interface SimulateOptions extends CommonOptions {
  readonly host: string;
  readonly port?: number;
  readonly statusPort?: number;
  readonly token?: string;
  /** A port, or `off`. */
  readonly ws?: number | 'off';
  readonly tcp?: number | 'off';
  readonly controlPort?: number;
  readonly fragment?: boolean;
  readonly currency?: string;
  readonly cardDelay: number;
  readonly slowAnswer: number;
}

type StartOptions = Omit<SimulateOptions, keyof CommonOptions> & {
  logLevel: string;
  json: boolean;
};

/** JSON lines for --json (machines), one readable line per event otherwise. */
function simulatorLogger(options: { logLevel: string; json: boolean }) {
  return createLogger({
    level: options.logLevel,
    ...(options.json ? {} : { destination: humanLogDestination() }),
  });
}

/** Starts a PAYable simulator and returns it with a description of where it listens. */
export async function startPayableSimulator(options: StartOptions) {
  const d = SIMULATOR_DEFAULTS.payable;
  const simulator = await new PayableSimulator({
    host: options.host,
    port: options.port ?? d.port,
    statusPort: options.statusPort ?? d.statusPort,
    currency: requireCurrency(options.currency ?? d.currency).code,
    cardDelayMs: options.cardDelay,
    slowAnswerMs: options.slowAnswer,
    logger: simulatorLogger(options),
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
  const text = `PAYable simulator ${info.serial} on ${info.url}${info.token === null ? ' (old firmware: no token)' : ` (token ${info.token})`}\nstatus page ${info.statusUrl}   ledger ${info.ledgerUrl}`;
  return { simulator, info, text };
}

/** Starts a SEMI simulator on WebSocket and/or TCP at once. */
export async function startSemiSimulator(options: StartOptions) {
  const d = SIMULATOR_DEFAULTS.semi;
  const listener = (value: number | 'off' | undefined, fallback: number): number | null =>
    value === 'off' ? null : (value ?? fallback);
  const ws = listener(options.ws, d.ws);
  const tcp = listener(options.tcp, d.tcp);
  if (ws === null && tcp === null)
    throw invalid('INVALID_INPUT', 'ws', 'at least one of --ws and --tcp must be a port');
  const simulator = await new SemiSimulator({
    host: options.host,
    wsPort: ws,
    tcpPort: tcp,
    controlPort: options.controlPort ?? d.controlPort,
    currency: requireCurrency(options.currency ?? d.currency).code,
    cardDelayMs: options.cardDelay,
    slowAnswerMs: options.slowAnswer,
    fragment: options.fragment === true,
    logger: simulatorLogger(options),
  }).start();
  const control = `http://${options.host}:${simulator.controlPort}`;
  const info = {
    protocol: 'semi',
    wsUrl: simulator.wsUrl ?? null,
    tcpUrl: simulator.tcpUrl ?? null,
    statusUrl: `${control}/`,
    ledgerUrl: `${control}/ledger`,
    batchUrl: `${control}/batch`,
    controlPort: simulator.controlPort,
    serial: simulator.serial,
    fragment: options.fragment === true,
  };
  const text = [
    SEMI_WAITING_TEXT,
    `SEMI simulator ${info.serial}: WebSocket ${info.wsUrl ?? 'off'}, TCP ${info.tcpUrl ?? 'off'}${info.fragment ? ' (TCP writes fragmented)' : ''}`,
    `status page ${info.statusUrl}   ledger ${info.ledgerUrl}   batch ${info.batchUrl}`,
  ].join('\n');
  return { simulator, info, text };
}

/** Options that belong to one simulator only: naming one for the other is a usage error. */
const ONLY_FOR: Readonly<Record<string, { readonly protocol: string; readonly flag: string }>> = {
  port: { protocol: 'payable', flag: '--port' },
  statusPort: { protocol: 'payable', flag: '--status-port' },
  token: { protocol: 'payable', flag: '--token' },
  ws: { protocol: 'semi', flag: '--ws' },
  tcp: { protocol: 'semi', flag: '--tcp' },
  controlPort: { protocol: 'semi', flag: '--control-port' },
  fragment: { protocol: 'semi', flag: '--fragment' },
};

/** Waits for Ctrl-C or SIGTERM. */
export async function untilInterrupted(): Promise<void> {
  await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
}

export async function runSimulate(
  options: SimulateOptions,
  protocol: string,
): Promise<CommandOutput> {
  if (protocol !== 'payable' && protocol !== 'semi')
    throw invalid(
      'INVALID_INPUT',
      'protocol',
      'must be payable or semi (the simulators available in this release)',
      protocol,
    );
  for (const [key, { protocol: owner, flag }] of Object.entries(ONLY_FOR)) {
    const value = (options as unknown as Record<string, unknown>)[key];
    if (owner !== protocol && value !== undefined && value !== false) {
      throw invalid(
        'INVALID_INPUT',
        flag,
        `is an option of the ${owner} simulator, not ${protocol}`,
      );
    }
  }
  const { simulator, info, text } =
    protocol === 'semi' ? await startSemiSimulator(options) : await startPayableSimulator(options);
  // Listen before saying we are up: a supervisor may signal as soon as it reads the first line.
  const interrupted = untilInterrupted();
  process.stdout.write(options.json ? `${JSON.stringify(info)}\n` : `${text}\nCtrl-C stops it.\n`);
  await interrupted;
  await simulator.stop();
  return { exitCode: 0 };
}
