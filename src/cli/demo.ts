import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { invalid } from '../core/errors.js';
import type { TenantStore } from '../gateway/tenants.js';
import { EconduitSimulator } from '../simulators/econduit/simulator.js';
import { openContext } from './context.js';
import { startGateway } from './gateway-start.js';
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
  readonly gatewayPort: number;
  readonly gatewayTcpPort: number;
}

/** The demo gateway's merchant and its simulated terminals. */
export const DEMO_MERCHANT = 'demo-shop';
export const DEMO_GATEWAY_TERMINALS = ['29531204', '29531205', '29531206'] as const;

/**
 * The demo merchant's key and password. A merchant's password is kept nowhere but by whoever
 * added it; the demo is that someone: it keeps them in its own data directory (owner-only),
 * for the demo only.
 */
async function demoMerchant(
  dataDir: string,
  tenants: TenantStore,
): Promise<{ key: string; password: string }> {
  const file = join(dataDir, 'demo-merchant.json');
  if ((await tenants.merchant(DEMO_MERCHANT)) !== undefined) {
    if (existsSync(file))
      return JSON.parse(readFileSync(file, 'utf8')) as { key: string; password: string };
    throw invalid(
      'INVALID_INPUT',
      'data-dir',
      `holds a demo merchant whose password is lost: remove ${dataDir} (demo data only) and start again`,
    );
  }
  const added = await tenants.addMerchant(DEMO_MERCHANT);
  for (const terminalId of DEMO_GATEWAY_TERMINALS)
    await tenants.addTerminal({ terminalId, merchant: DEMO_MERCHANT, terminalType: 'Valor' });
  const credentials = { key: added.key, password: added.password };
  writeFileSync(file, JSON.stringify(credentials), { mode: 0o600 });
  return credentials;
}

/** The gateway and three simulated eConduit terminals connected to it. */
async function startDemoGateway(options: DemoOptions) {
  const context = await openContext({
    dataDir: join(options.dataDir, 'gateway'),
    logLevel: options.logLevel,
  });
  const closers: (() => Promise<void>)[] = [() => context.close()];
  const close = async () => {
    for (const closer of closers.splice(0).reverse()) await closer().catch(() => {});
  };
  try {
    const running = await startGateway(context, {
      host: '127.0.0.1',
      tcpPort: options.gatewayTcpPort,
      httpPort: options.gatewayPort,
      currency: 'USD',
    });
    closers.push(() => running.close());
    const credentials = await demoMerchant(context.dataDir, running.tenants);
    const simulator = new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: running.gateway.tcpPort }],
      terminalId: DEMO_GATEWAY_TERMINALS[0],
      count: DEMO_GATEWAY_TERMINALS.length,
      cardDelayMs: 1500,
    });
    await simulator.start(10_000);
    closers.push(() => simulator.stop());
    return {
      url: `http://127.0.0.1:${running.gateway.httpPort}`,
      tcp: `127.0.0.1:${running.gateway.tcpPort}`,
      ...credentials,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
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
  let gateway;
  try {
    connector = await startConnector(config, options.logLevel);
    try {
      gateway = await startDemoGateway(options);
    } catch (error) {
      await connector.close();
      throw error;
    }
  } catch (error) {
    await simulator.stop();
    throw error;
  }
  const run = `${gateway.url}/services/api.asmx/runTransaction?${new URLSearchParams({
    command: 'Sale',
    key: gateway.key,
    password: gateway.password,
    amount: '2.50',
    refID: 'INV-1001',
    terminalId: DEMO_GATEWAY_TERMINALS[0],
  }).toString()}`;
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
    `3. An eConduit-compatible cloud gateway: terminals on tcp://${gateway.tcp}, POS programs on ${gateway.url};`,
    `   simulated terminals ${DEMO_GATEWAY_TERMINALS.join(', ')} registered ("POS Online"), merchant ${DEMO_MERCHANT}`,
    `   (key ${gateway.key}, password ${gateway.password}: demo only, kept in ${join(options.dataDir, 'gateway')}).`,
    `   curl '${run}'`,
    `   Its terminals: curl -u ${gateway.key}:${gateway.password} ${gateway.url}/api/v1/terminals`,
    ``,
    `Dashboards: ${connector.url}/ui/ (${DEMO_LOGIN} / ${DEMO_PASSWORD}) and ${gateway.url}/ui/ (the key and password above).`,
    ``,
    `Run a payment again with the same reference: the stored result comes back, nothing is charged twice.`,
    `Then: npx ecr-bridge tx list   (connector payments: --data-dir ${config.dataDir})`,
    `Ctrl-C stops the demo.`,
  ].join('\n');
  process.stdout.write(
    options.json
      ? `${JSON.stringify({
          ...info,
          connectorUrl: connector.url,
          login: DEMO_LOGIN,
          password: DEMO_PASSWORD,
          gatewayUrl: gateway.url,
          gatewayTcp: gateway.tcp,
          gatewayKey: gateway.key,
          gatewayPassword: gateway.password,
          gatewayTerminals: DEMO_GATEWAY_TERMINALS,
        })}\n`
      : `${text}\n`,
  );
  await Promise.race([interrupted, connector.stopRequested]);
  await gateway.close();
  await connector.close();
  await simulator.stop();
  return { exitCode: 0 };
}
