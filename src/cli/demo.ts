import type { CommandOutput, CommonOptions } from './main.js';
import { startPayableSimulator, untilInterrupted } from './simulate.js';

/** The token and POS name the demo uses, so the printed commands work as they are. */
export const DEMO_TOKEN = 'demo-token';

export async function runDemo(
  options: CommonOptions & { port: number; statusPort: number },
): Promise<CommandOutput> {
  const { simulator, info } = await startPayableSimulator({
    host: '127.0.0.1',
    port: options.port,
    statusPort: options.statusPort,
    token: DEMO_TOKEN,
    currency: 'LKR',
    cardDelay: 1500,
    slowAnswer: 5000,
    logLevel: 'info',
    json: options.json,
  });
  const pay = (amount: string, reference: string) =>
    `npx ecr-bridge pay --terminal ${info.url} --token ${DEMO_TOKEN} --pos POS-1 --amount ${amount} --currency LKR --reference ${reference}`;
  const text = [
    `ecr-bridge demo: a simulated PAYable terminal (serial ${info.serial}) listens on ${info.url}`,
    `status page: ${info.statusUrl}   charges it made: ${info.ledgerUrl}`,
    '',
    'In another shell, take a payment (approved):',
    `  ${pay('20.00', 'ORDER-1')}`,
    'A decline (amounts ending in .51; see docs/simulators.md for the other endings):',
    `  ${pay('20.51', 'ORDER-2')}`,
    'Run the first command again: the same reference returns the stored result and charges nothing.',
    'Then: npx ecr-bridge tx list',
    '',
    'Ctrl-C stops the demo.',
  ].join('\n');
  const interrupted = untilInterrupted();
  process.stdout.write(options.json ? `${JSON.stringify(info)}\n` : `${text}\n`);
  await interrupted;
  await simulator.stop();
  return { exitCode: 0 };
}
