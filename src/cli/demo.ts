import { join } from 'node:path';
import type { ConnectorConfig } from '../connector/config.js';
import { startConnector } from './connector.js';
import type { CommandOutput, CommonOptions } from './main.js';
import { startPayableSimulator, untilInterrupted } from './simulate.js';

/** The token and POS name the demo uses, so the printed commands work as they are. */
export const DEMO_TOKEN = 'demo-token';
/** The demo connector's Basic Auth credentials (the kiosk seed's own example: log / pwd). */
export const DEMO_LOGIN = 'log';
export const DEMO_PASSWORD = 'pwd';

export interface DemoOptions extends CommonOptions {
  readonly port: number;
  readonly statusPort: number;
  readonly connectorPort: number;
}

/**
 * `npm start`: the HiPay-compatible connector (desktop flavour) on 127.0.0.1:8080 over a
 * simulated Concert terminal, and a simulated PAYable terminal for `ecr-bridge pay`; prints how to
 * use both.
 */
export async function runDemo(options: DemoOptions): Promise<CommandOutput> {
  const interrupted = untilInterrupted();
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
  const config: ConnectorConfig = {
    flavour: 'desktop',
    localPort: options.connectorPort,
    login: DEMO_LOGIN,
    password: DEMO_PASSWORD,
    terminalUrl: 'simulator:concert',
    dataDir: join(options.dataDir, 'connector'),
  };
  let connector;
  try {
    connector = await startConnector(config, options.logLevel);
  } catch (error) {
    await simulator.stop();
    throw error;
  }
  const pay = (amount: string, reference: string) =>
    `npx ecr-bridge pay --terminal ${info.url} --token ${DEMO_TOKEN} --pos POS-1 --amount ${amount} --currency LKR --reference ${reference}`;
  const body = JSON.stringify({ amount: '10,23', currency: 'EUR', order_id: 'Order_12345' });
  const text = [
    `ecr-bridge demo`,
    ``,
    `1. A HiPay-compatible connector (desktop) on ${connector.url}, Basic Auth ${DEMO_LOGIN}/${DEMO_PASSWORD},`,
    `   over a simulated Concert terminal. Take a payment as a POS would:`,
    `   curl -u ${DEMO_LOGIN}:${DEMO_PASSWORD} -H 'content-type: application/json' -d '${body}' ${connector.url}/`,
    ``,
    `2. A simulated PAYable terminal (serial ${info.serial}) on ${info.url}; status ${info.statusUrl}`,
    `   ${pay('20.00', 'ORDER-1')}`,
    `   A decline (amounts ending in .51; docs/simulators.md has the other endings):`,
    `   ${pay('20.51', 'ORDER-2')}`,
    ``,
    `Run a payment again with the same reference: the stored result comes back, nothing is charged twice.`,
    `Then: npx ecr-bridge tx list   (connector payments: --data-dir ${config.dataDir})`,
    `Ctrl-C stops the demo.`,
  ].join('\n');
  process.stdout.write(
    options.json
      ? `${JSON.stringify({ ...info, connectorUrl: connector.url, login: DEMO_LOGIN, password: DEMO_PASSWORD })}\n`
      : `${text}\n`,
  );
  await Promise.race([interrupted, connector.stopRequested]);
  await connector.close();
  await simulator.stop();
  return { exitCode: 0 };
}
