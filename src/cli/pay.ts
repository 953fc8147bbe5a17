import ora from 'ora';
import { invalid, toEcrError } from '../core/errors.js';
import { parseAmount, requireCurrency } from '../core/money.js';
import { parseTerminalAddress, type TerminalAddress } from '../core/terminal-address.js';
import {
  hasControlCharacters,
  validateReference,
  type MoneyKind,
  type PaymentMethod,
} from '../core/transaction.js';
import { totalsJson, type BatchTotals, type TerminalDriver } from '../core/driver.js';
import type { Logger } from '../core/logger.js';
import { createDriver, DEFAULT_CURRENCIES } from '../drivers/index.js';
import { PayableSimulator } from '../simulators/payable/simulator.js';
import { SemiSimulator } from '../simulators/semi/simulator.js';
import { ConcertSimulator } from '../simulators/concert/simulator.js';
import { openContext, type Context } from './context.js';
import type { CommandOutput, CommonOptions } from './main.js';
import { describeResult, describeTotals, OUTCOME_EXIT_CODES, resultJson } from './output.js';

export interface PayOptions extends CommonOptions {
  readonly terminal: string;
  readonly kind: MoneyKind;
  readonly original?: string;
  readonly amount: string;
  readonly reference: string;
  readonly currency?: string;
  readonly protocol?: string;
  readonly token?: string;
  readonly pos?: string;
  readonly method: PaymentMethod;
  readonly receiptEmail?: string;
  readonly receiptSms?: string;
  readonly timeout: number;
  readonly terminalId?: string;
}

/** A terminal id names the journal's idempotency scope: 1–128 printable characters. */
function validateTerminalId(value: string): string {
  if (value.length === 0 || value.length > 128 || hasControlCharacters(value)) {
    throw invalid('INVALID_INPUT', 'terminal-id', 'must be 1–128 printable characters');
  }
  return value;
}

/** The terminal a command talks to, as parsed and checked before anything is opened. */
export interface TerminalChoice {
  readonly address: TerminalAddress;
  /** The terminal's own currency: from its set-up, never from a request. */
  readonly currency: string;
  readonly terminalId: string;
}

/** Parses `--terminal`, `--protocol`, `--terminal-id` and the currency rule, touching nothing. */
export function chooseTerminal(options: {
  readonly terminal: string;
  readonly protocol?: string;
  readonly terminalId?: string;
  readonly currency?: string;
}): TerminalChoice {
  const address = parseTerminalAddress(options.terminal, options.protocol);
  // The terminal's currency is part of its set-up (`?currency=` in the address), never taken
  // from the request: PAYable and SEMI requests carry no currency, so a mismatch is refused.
  // A simulated terminal is set up by this very command, so --currency sets it up.
  const fallback = DEFAULT_CURRENCIES[address.protocol];
  const currency =
    address.transport === 'simulator'
      ? (options.currency ?? address.params.currency ?? fallback)
      : (address.params.currency ?? fallback);
  // The default id comes from an address already checked; only a given one needs checking.
  const terminalId =
    options.terminalId === undefined ? address.id : validateTerminalId(options.terminalId);
  return { address, currency, terminalId };
}

/** A simulator started inside this process for `simulator:<protocol>`, on free ports. */
export interface Attached {
  readonly address: TerminalAddress;
  stop(): Promise<void>;
}

export async function attachSimulator(choice: TerminalChoice): Promise<Attached> {
  const { address } = choice;
  if (address.transport !== 'simulator') return { address, stop: async () => {} };
  if (address.protocol === 'semi') {
    const simulator = await new SemiSimulator({
      wsPort: null,
      tcpPort: 0,
      controlPort: 0,
      currency: choice.currency,
    }).start();
    const port = Number(new URL(simulator.tcpUrl as string).port);
    return {
      address: { ...address, transport: 'tcp', host: '127.0.0.1', port },
      stop: () => simulator.stop(),
    };
  }
  if (address.protocol === 'concert') {
    const simulator = await new ConcertSimulator({ tcpPort: 0, currency: choice.currency }).start();
    const port = Number(new URL(simulator.tcpUrl as string).port);
    return {
      address: { ...address, transport: 'tcp', host: '127.0.0.1', port },
      stop: () => simulator.stop(),
    };
  }
  if (address.protocol === 'payable') {
    const simulator = await new PayableSimulator({
      port: 0,
      statusPort: 0,
      currency: choice.currency,
    }).start();
    return {
      address: { ...address, transport: 'ws', host: '127.0.0.1', port: simulator.port },
      stop: () => simulator.stop(),
    };
  }
  const unknown: never = address.protocol;
  throw invalid('UNSUPPORTED_OPERATION', 'terminal', 'names no simulator of this release', unknown);
}

/** Opens the terminal's driver inside `context` (the journal's service), under its terminal id. */
export function addTerminal(
  context: Context,
  choice: TerminalChoice,
  address: TerminalAddress,
  settings: {
    token?: string;
    pos?: string;
    posNumber?: number;
    timeoutSeconds?: number;
    logger: Logger;
  },
): TerminalDriver {
  const driver = createDriver(address, {
    ...(settings.token === undefined ? {} : { token: settings.token }),
    ...(settings.pos === undefined ? {} : { posName: settings.pos }),
    ...(settings.posNumber === undefined ? {} : { posNumber: settings.posNumber }),
    currency: choice.currency,
    ...(settings.timeoutSeconds === undefined
      ? {}
      : { answerTimeoutMs: settings.timeoutSeconds * 1000 }),
    logger: settings.logger,
  });
  context.service.addTerminal(choice.terminalId, driver);
  return driver;
}

export async function runPay(options: PayOptions): Promise<CommandOutput> {
  // Validate everything before touching the journal or the network.
  const choice = chooseTerminal(options);
  const amount = parseAmount(options.amount, options.currency ?? choice.currency, {
    field: 'amount',
  });
  const reference = validateReference(options.reference);
  const originalReference =
    options.original === undefined ? undefined : validateReference(options.original, 'original');
  const terminalId = choice.terminalId;

  const context = await openContext({ dataDir: options.dataDir, logLevel: options.logLevel });
  const spinner =
    !options.json && process.stderr.isTTY ? ora({ stream: process.stderr }) : undefined;
  const started = Date.now();
  let interrupts = 0;
  let onInterrupt: (() => void) | undefined;
  const abort = new AbortController();
  const ticker = setInterval(() => {
    if (spinner !== undefined)
      spinner.text = `waiting for the terminal… ${((Date.now() - started) / 1000).toFixed(1)} s`;
  }, 100);
  let attached: Attached | undefined;
  try {
    attached = await attachSimulator(choice);
    addTerminal(context, choice, attached.address, {
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.pos === undefined ? {} : { pos: options.pos }),
      timeoutSeconds: options.timeout,
      logger: context.logger,
    });
    // Ctrl-C: a request still waiting for the terminal is abandoned (nothing sent: `failed`,
    // ABORTED); one at the card step is cancelled on this command's own connection (`cancelled`
    // if the card was not read yet; otherwise the terminal's answer decides). A second Ctrl-C
    // quits at once; the next command recovers the transaction as `unknown`, never drops it.
    onInterrupt = () => {
      if (++interrupts > 1) process.exit(130);
      spinner?.stop();
      process.stderr.write('cancelling (Ctrl-C again to quit without waiting)\n');
      abort.abort();
      context.service.cancelCurrent(terminalId).catch((error: unknown) => {
        context.logger.warn({ err: toEcrError(error).message }, 'cancel request failed');
      });
    };
    process.on('SIGINT', onInterrupt);
    spinner?.start('waiting for the terminal…');
    const result = await context.service.pay(
      terminalId,
      {
        kind: options.kind,
        reference,
        amount,
        method: options.method,
        ...(originalReference === undefined ? {} : { originalReference }),
        ...(options.receiptEmail === undefined ? {} : { receiptEmail: options.receiptEmail }),
        ...(options.receiptSms === undefined ? {} : { receiptSms: options.receiptSms }),
      },
      { signal: abort.signal },
    );
    spinner?.stop();
    return {
      exitCode: OUTCOME_EXIT_CODES[result.outcome],
      text: describeResult(result),
      json: resultJson(result),
    };
  } finally {
    if (onInterrupt !== undefined) process.off('SIGINT', onInterrupt);
    clearInterval(ticker);
    spinner?.stop();
    await context.close();
    await attached?.stop();
  }
}

export interface BatchCloseOptions extends CommonOptions {
  readonly terminal: string;
  readonly terminalId?: string;
  readonly protocol?: string;
  readonly currency?: string;
}

/** `ecr-bridge batch close`: in turn with the terminal's transactions, then the totals. */
export async function runBatchClose(options: BatchCloseOptions): Promise<CommandOutput> {
  const choice = chooseTerminal(options);
  if (options.currency !== undefined) requireCurrency(options.currency);
  const context = await openContext({ dataDir: options.dataDir, logLevel: options.logLevel });
  let attached: Attached | undefined;
  try {
    attached = await attachSimulator(choice);
    addTerminal(context, choice, attached.address, { logger: context.logger });
    const totals: BatchTotals = await context.service.batchClose(choice.terminalId);
    return { exitCode: 0, text: describeTotals(totals), json: totalsJson(totals) };
  } finally {
    await context.close();
    await attached?.stop();
  }
}
