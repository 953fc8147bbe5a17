import ora from 'ora';
import { toEcrError } from '../core/errors.js';
import { parseAmount } from '../core/money.js';
import { parseTerminalAddress, type TerminalAddress } from '../core/terminal-address.js';
import { validateReference, type PaymentMethod } from '../core/transaction.js';
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
}

export async function runPay(options: PayOptions): Promise<CommandOutput> {
  // Validate everything before touching the journal or the network.
  let address = parseTerminalAddress(options.terminal, options.protocol);
  const amount = parseAmount(options.amount, options.currency ?? PAYABLE_DEFAULT_CURRENCY, {
    field: 'amount',
  });
  const reference = validateReference(options.reference);

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
        currency: amount.currency,
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
      currency: amount.currency,
      answerTimeoutMs: options.timeout * 1000,
      logger: context.logger,
    });
    context.service.addTerminal(address.id, driver);
    const terminalId = address.id;
    // Ctrl-C: a request still waiting for the terminal is abandoned (nothing sent: `failed`,
    // ABORTED); one at the card step is STOPped on this command's own connection (the outcome
    // comes back `cancelled`). A second Ctrl-C quits at once; the next command recovers the
    // transaction as `unknown`, never silently dropping it.
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
      address.id,
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
