import ora from 'ora';
import { invalid, toEcrError } from '../core/errors.js';
import { parseAmount } from '../core/money.js';
import { parseTerminalAddress, type TerminalAddress } from '../core/terminal-address.js';
import {
  hasControlCharacters,
  validateReference,
  type PaymentMethod,
} from '../core/transaction.js';
import { createDriver } from '../drivers/index.js';
import { PAYABLE_DEFAULT_CURRENCY } from '../drivers/payable.js';
import { PayableSimulator } from '../simulators/payable/simulator.js';
import { openContext } from './context.js';
import type { CommandOutput, CommonOptions } from './main.js';
import { describeResult, OUTCOME_EXIT_CODES, resultJson } from './output.js';

export interface PayOptions extends CommonOptions {
  readonly terminal: string;
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

export async function runPay(options: PayOptions): Promise<CommandOutput> {
  // Validate everything before touching the journal or the network.
  let address = parseTerminalAddress(options.terminal, options.protocol);
  const simulated = address.transport === 'simulator';
  // The terminal's currency is part of its set-up (`?currency=` in the address), never taken
  // from the request: PAYable requests carry no currency, so a mismatch must be refused here.
  const terminalCurrency = simulated
    ? (options.currency ?? address.params.currency ?? PAYABLE_DEFAULT_CURRENCY)
    : (address.params.currency ?? PAYABLE_DEFAULT_CURRENCY);
  const amount = parseAmount(options.amount, options.currency ?? terminalCurrency, {
    field: 'amount',
  });
  const reference = validateReference(options.reference);
  // The default id comes from an address already checked; only a given one needs checking.
  const terminalId =
    options.terminalId === undefined ? address.id : validateTerminalId(options.terminalId);

  const context = openContext({ dataDir: options.dataDir, logLevel: options.logLevel });
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
  let simulator: PayableSimulator | undefined;
  try {
    // `simulator:payable`: a terminal simulated inside this process, on free ports.
    if (address.transport === 'simulator') {
      simulator = await new PayableSimulator({
        port: 0,
        statusPort: 0,
        currency: terminalCurrency,
      }).start();
      address = {
        ...address,
        transport: 'ws',
        host: '127.0.0.1',
        port: simulator.port,
      } satisfies TerminalAddress;
    }
    const driver = createDriver(address, {
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.pos === undefined ? {} : { posName: options.pos }),
      currency: terminalCurrency,
      answerTimeoutMs: options.timeout * 1000,
      logger: context.logger,
    });
    context.service.addTerminal(terminalId, driver);
    // Ctrl-C: a request still waiting for the terminal is abandoned (nothing sent: `failed`,
    // ABORTED); one at the card step is STOPped on this command's own connection (`cancelled`
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
        kind: 'sale',
        reference,
        amount,
        method: options.method,
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
    await simulator?.stop();
  }
}
