import { once } from 'node:events';
import { invalid } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { humanLogDestination } from './human-log.js';
import { requireCurrency } from '../core/money.js';
import { PayableSimulator } from '../simulators/payable/simulator.js';
import { SEMI_WAITING_TEXT, SemiSimulator } from '../simulators/semi/simulator.js';
import { ConcertSimulator } from '../simulators/concert/simulator.js';
import { EconduitSimulator } from '../simulators/econduit/simulator.js';
import { loadTlsCa, loadTlsClientCertificate } from '../transports/tls.js';
import type { CommandOutput, CommonOptions } from './main.js';

/** Ports of the simulators when the command line names none (the vendors' defaults). */
export const SIMULATOR_DEFAULTS = {
  payable: { port: 45454, statusPort: 8080, currency: 'LKR' },
  semi: { ws: 5000, tcp: 5001, controlPort: 8081, currency: 'USD' },
  concert: { lineNoise: 0.2, currency: 'EUR' },
  econduit: { currency: 'USD' },
} as const;

/** The simulators this release has. */
export const SIMULATED_PROTOCOLS = ['payable', 'semi', 'concert', 'econduit'] as const;
/** `simulate econduit`: where the terminals' registration secret comes from without --terminal-secret. */
export const TERMINAL_SECRET_ENV = 'ECR_BRIDGE_TERMINAL_SECRET';

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
  readonly pty?: boolean;
  /** `true` for the default chance, or a chance from 0 to 1. */
  readonly lineNoise?: boolean | number;
  /** concert: answer with the request's private data instead of the terminal's own number. */
  readonly echoPrivate?: boolean;
  readonly currency?: string;
  /** econduit: the gateway's primary endpoint, `host:port`. */
  readonly gateway?: string;
  /** econduit: the secondary endpoint. */
  readonly secondary?: string;
  /** econduit: the (first) terminal id. */
  readonly id?: string;
  /** econduit: the terminal type it registers with. */
  readonly type?: string;
  /** econduit: virtual terminals in this process. */
  readonly count?: number;
  /** econduit: heartbeat interval in ms. */
  readonly heartbeat?: number;
  /** econduit: connect over TLS only. */
  readonly tls?: boolean;
  /** econduit: the CA file the gateway's certificate is checked against (implies tls). */
  readonly tlsCa?: string;
  /** econduit: the client certificate and key files presented to the gateway (implies tls). */
  readonly tlsClientCert?: string;
  readonly tlsClientKey?: string;
  /** econduit: the registration secret (default: TERMINAL_SECRET_ENV). */
  readonly terminalSecret?: string;
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
    controlPort: options.controlPort ?? null,
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
    controlPort: simulator.controlPort === 0 ? null : simulator.controlPort,
    nextUrl: controlUrl(options.host, simulator.controlPort, '/next'),
    serial: simulator.serial,
    token: options.token ?? null,
  };
  const text = `PAYable simulator ${info.serial} on ${info.url}${info.token === null ? ' (old firmware: no token)' : ` (token ${info.token})`}\nstatus page ${info.statusUrl}   ledger ${info.ledgerUrl}${info.nextUrl === null ? '' : `\nnext scenario ${info.nextUrl}`}`;
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
    nextUrl: `${control}/next`,
    controlPort: simulator.controlPort,
    serial: simulator.serial,
    fragment: options.fragment === true,
  };
  const text = [
    SEMI_WAITING_TEXT,
    `SEMI simulator ${info.serial}: WebSocket ${info.wsUrl ?? 'off'}, TCP ${info.tcpUrl ?? 'off'}${info.fragment ? ' (TCP writes fragmented)' : ''}`,
    `status page ${info.statusUrl}   ledger ${info.ledgerUrl}   batch ${info.batchUrl}   next scenario ${info.nextUrl}`,
  ].join('\n');
  return { simulator, info, text };
}

/** Starts a Concert simulator on a pty pair (the default) and/or TCP. */
export async function startConcertSimulator(options: StartOptions) {
  const d = SIMULATOR_DEFAULTS.concert;
  const tcp = options.tcp === 'off' ? undefined : options.tcp;
  const pty = options.pty === true || tcp === undefined;
  const lineNoise =
    options.lineNoise === undefined || options.lineNoise === false
      ? 0
      : options.lineNoise === true
        ? d.lineNoise
        : options.lineNoise;
  const simulator = await new ConcertSimulator({
    host: options.host,
    pty,
    tcpPort: tcp ?? null,
    controlPort: options.controlPort ?? null,
    currency: requireCurrency(options.currency ?? d.currency).code,
    cardDelayMs: options.cardDelay,
    slowAnswerMs: options.slowAnswer,
    lineNoise,
    echoPrivate: options.echoPrivate === true,
    logger: simulatorLogger(options),
  }).start();
  const info = {
    device: simulator.device ?? null,
    protocol: 'concert',
    tcpUrl: simulator.tcpUrl ?? null,
    ledgerUrl: controlUrl(options.host, simulator.controlPort, '/ledger'),
    nextUrl: controlUrl(options.host, simulator.controlPort, '/next'),
    lineNoise,
    echoPrivate: options.echoPrivate === true,
  };
  // The device comes first, alone on its line: scripts read it with `head -1`.
  const text = [
    ...(info.device === null ? [] : [info.device]),
    `Concert simulator: ${info.device === null ? '' : `POS side of the pty ${info.device}`}${info.device !== null && info.tcpUrl !== null ? ', ' : ''}${info.tcpUrl === null ? '' : `TCP ${info.tcpUrl}`}${lineNoise > 0 ? ` (line noise ${lineNoise})` : ''}${info.echoPrivate ? ' (echoes the private data)' : ''}`,
    ...(info.ledgerUrl === null
      ? []
      : [`ledger ${info.ledgerUrl}   next scenario ${info.nextUrl}`]),
  ].join('\n');
  return { simulator, info, text };
}

/** A page of a control port, or null when the port is off (0). */
function controlUrl(host: string, port: number, path: string): string | null {
  return port === 0 ? null : `http://${host}:${port}${path}`;
}

/** `host:port` as an endpoint, or INVALID_INPUT naming the flag. */
function endpoint(flag: string, value: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (match === null || port < 1 || port > 65_535)
    throw invalid(
      'INVALID_INPUT',
      flag,
      'must be host:port, e.g. 127.0.0.1:9001',
      value.slice(0, 64),
    );
  return { host: (match[1] as string).replace(/^\[(.*)\]$/, '$1'), port };
}

/** Starts eConduit cloud terminals: SEMI terminals whose agents connect to a gateway. */
export async function startEconduitSimulator(options: StartOptions) {
  if (options.gateway === undefined)
    throw invalid('INVALID_INPUT', '--gateway', 'is required: the gateway host:port');
  const endpoints = [
    endpoint('--gateway', options.gateway),
    ...(options.secondary === undefined ? [] : [endpoint('--secondary', options.secondary)]),
  ];
  const client = loadTlsClientCertificate(
    { certFile: options.tlsClientCert, keyFile: options.tlsClientKey },
    { cert: '--tls-client-cert', key: '--tls-client-key' },
  );
  const tls =
    options.tlsCa !== undefined || client !== undefined || options.tls === true
      ? {
          ...(options.tlsCa === undefined ? {} : { ca: loadTlsCa(options.tlsCa, '--tls-ca') }),
          ...client,
        }
      : undefined;
  // From the environment by default: a flag's value is on every `ps` listing.
  const terminalSecret = options.terminalSecret ?? process.env[TERMINAL_SECRET_ENV];
  const simulator = new EconduitSimulator({
    endpoints,
    ...(tls === undefined ? {} : { tls }),
    ...(terminalSecret === undefined || terminalSecret === '' ? {} : { terminalSecret }),
    ...(options.id === undefined ? {} : { terminalId: options.id }),
    ...(options.type === undefined ? {} : { terminalType: options.type }),
    ...(options.count === undefined ? {} : { count: options.count }),
    ...(options.heartbeat === undefined ? {} : { heartbeatIntervalMs: options.heartbeat }),
    currency: requireCurrency(options.currency ?? SIMULATOR_DEFAULTS.econduit.currency).code,
    cardDelayMs: options.cardDelay,
    slowAnswerMs: options.slowAnswer,
    host: options.host,
    controlPort: options.controlPort ?? null,
    logger: simulatorLogger(options),
  });
  await simulator.start();
  const ids = simulator.terminals.map((t) => t.terminalId);
  const info = {
    protocol: 'econduit',
    tls: tls !== undefined,
    clientCertificate: client !== undefined,
    // Whether one is sent; never the secret.
    terminalSecret: terminalSecret !== undefined && terminalSecret !== '',
    endpoints: endpoints.map((e) => `${tls === undefined ? '' : 'tls://'}${e.host}:${e.port}`),
    terminals: ids.length,
    first: ids[0],
    last: ids[ids.length - 1],
    controlPort: simulator.controlPort === 0 ? null : simulator.controlPort,
    ledgerUrl: controlUrl(options.host, simulator.controlPort, '/ledger'),
    nextUrl: controlUrl(options.host, simulator.controlPort, '/next'),
  };
  const text = `eConduit terminal${ids.length > 1 ? `s ${info.first} … ${info.last} (${ids.length})` : ` ${info.first}`} connecting to ${info.endpoints.join(', then ')}; each shows "POS Online" once registered${info.nextUrl === null ? '' : `\nledger ${info.ledgerUrl}   next scenario ${info.nextUrl}`}`;
  return { simulator, info, text };
}

/** Options that belong to some simulators only: naming one for another is a usage error. */
const ONLY_FOR: Readonly<
  Record<string, { readonly protocols: readonly string[]; readonly flag: string }>
> = {
  port: { protocols: ['payable'], flag: '--port' },
  statusPort: { protocols: ['payable'], flag: '--status-port' },
  token: { protocols: ['payable'], flag: '--token' },
  ws: { protocols: ['semi'], flag: '--ws' },
  tcp: { protocols: ['semi', 'concert'], flag: '--tcp' },
  fragment: { protocols: ['semi'], flag: '--fragment' },
  pty: { protocols: ['concert'], flag: '--pty' },
  lineNoise: { protocols: ['concert'], flag: '--line-noise' },
  echoPrivate: { protocols: ['concert'], flag: '--echo-private' },
  gateway: { protocols: ['econduit'], flag: '--gateway' },
  secondary: { protocols: ['econduit'], flag: '--secondary' },
  id: { protocols: ['econduit'], flag: '--id' },
  type: { protocols: ['econduit'], flag: '--type' },
  count: { protocols: ['econduit'], flag: '--count' },
  heartbeat: { protocols: ['econduit'], flag: '--heartbeat' },
  tls: { protocols: ['econduit'], flag: '--tls' },
  tlsCa: { protocols: ['econduit'], flag: '--tls-ca' },
  tlsClientCert: { protocols: ['econduit'], flag: '--tls-client-cert' },
  tlsClientKey: { protocols: ['econduit'], flag: '--tls-client-key' },
  terminalSecret: { protocols: ['econduit'], flag: '--terminal-secret' },
};

/** Waits for Ctrl-C or SIGTERM. */
export async function untilInterrupted(): Promise<void> {
  await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
}

export async function runSimulate(
  options: SimulateOptions,
  protocol: string,
): Promise<CommandOutput> {
  if (!(SIMULATED_PROTOCOLS as readonly string[]).includes(protocol))
    throw invalid(
      'INVALID_INPUT',
      'protocol',
      `must be ${SIMULATED_PROTOCOLS.join(', ')} (the simulators available in this release)`,
      protocol,
    );
  for (const [key, { protocols, flag }] of Object.entries(ONLY_FOR)) {
    const value = (options as unknown as Record<string, unknown>)[key];
    if (!protocols.includes(protocol) && value !== undefined && value !== false) {
      throw invalid(
        'INVALID_INPUT',
        flag,
        `is an option of the ${protocols.join(' and ')} simulator${protocols.length > 1 ? 's' : ''}, not ${protocol}`,
      );
    }
  }
  const { simulator, info, text } =
    protocol === 'semi'
      ? await startSemiSimulator(options)
      : protocol === 'concert'
        ? await startConcertSimulator(options)
        : protocol === 'econduit'
          ? await startEconduitSimulator(options)
          : await startPayableSimulator(options);
  // Listen before saying we are up: a supervisor may signal as soon as it reads the first line.
  const interrupted = untilInterrupted();
  process.stdout.write(options.json ? `${JSON.stringify(info)}\n` : `${text}\nCtrl-C stops it.\n`);
  await interrupted;
  await simulator.stop();
  return { exitCode: 0 };
}
