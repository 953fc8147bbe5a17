import { EcrError } from './errors.js';

/**
 * Terminal addresses (ARCHITECTURE.md, "Terminal addresses"): one URL names a terminal
 * everywhere. `<protocol>+<transport>://…`, short forms `ws://` (payable), `tcp://` (semi),
 * `serial://` (concert), and `simulator:<protocol>` for a built-in simulated terminal.
 */
export const PROTOCOL_TRANSPORTS = {
  payable: ['ws'],
  semi: ['ws', 'tcp'],
  concert: ['serial', 'tcp'],
} as const;

export type Protocol = keyof typeof PROTOCOL_TRANSPORTS;
export type Transport = 'ws' | 'tcp' | 'serial' | 'simulator';

/** Port used when an address names none (the vendors' defaults, protocols.md). */
export const DEFAULT_PORTS: Readonly<Record<Protocol, number>> = {
  payable: 45454,
  semi: 5000,
  concert: 8888,
};

const SHORT_FORMS: Readonly<Record<string, Protocol>> = {
  ws: 'payable',
  tcp: 'semi',
  serial: 'concert',
};

export interface TerminalAddress {
  readonly protocol: Protocol;
  readonly transport: Transport;
  /** Canonical id without secrets or options, the journal's terminal key: `payable+ws://10.0.0.5:45454`. */
  readonly id: string;
  /** Host and port for network transports. */
  readonly host?: string;
  readonly port?: number;
  /** Device path for serial. */
  readonly path?: string;
  /** Query options (`token`, `pos`, `baud`, …). */
  readonly params: Readonly<Record<string, string>>;
}

/** A Windows serial port name, also in its `\\.\COM10` form (seed 003: "the local port is COM8"). */
export const WINDOWS_SERIAL_PORT = /^(?:\\\\\.\\)?COM\d+$/i;

/** Every accepted form, for error messages and `--help`. */
export const VALID_ADDRESS_FORMS: readonly string[] = [
  ...Object.entries(PROTOCOL_TRANSPORTS).flatMap(([protocol, transports]) =>
    transports.map((t) => `${protocol}+${t}://${t === 'serial' ? '/dev/ttyACM0' : 'host:port'}`),
  ),
  'ws://host:port (payable)',
  'tcp://host:port (semi)',
  'serial:///dev/ttyACM0 (concert)',
  ...Object.keys(PROTOCOL_TRANSPORTS).map((p) => `simulator:${p}`),
];

/** An address as it may appear in messages and logs: no user info, no query string (tokens). */
export function withoutSecrets(value: string): string {
  return value.replace(/\?[\s\S]*/, '?…').replace(/^([^:/]*:\/\/)[^@/]*@/, '$1…@');
}

function refuse(value: string, rule: string): EcrError {
  return new EcrError(
    'INVALID_TERMINAL_ADDRESS',
    `terminal: ${rule} (got ${JSON.stringify(withoutSecrets(value))}); valid forms: ${VALID_ADDRESS_FORMS.join(', ')}`,
    { field: 'terminal', rule },
  );
}

/**
 * `ws://h:80` parses with an empty `port` (80 is the ws scheme's default), yet 80 was written:
 * read it from the authority so that only a missing port falls back to DEFAULT_PORTS.
 */
function explicitDefaultPort(value: string): number | undefined {
  const authority = value.slice(value.indexOf('//') + 2).split(/[/?#]/)[0] ?? '';
  const port = /:(\d+)$/.exec(authority.slice(authority.lastIndexOf(']') + 1));
  return port === null ? undefined : Number(port[1]);
}

function isProtocol(value: string): value is Protocol {
  return Object.hasOwn(PROTOCOL_TRANSPORTS, value);
}

/** Parses a terminal address; `protocolOverride` (the CLI's `--protocol`) wins over the scheme. */
export function parseTerminalAddress(value: string, protocolOverride?: string): TerminalAddress {
  if (value.length > 2048) throw refuse(value.slice(0, 64), 'must be at most 2048 characters');
  if (protocolOverride !== undefined && !isProtocol(protocolOverride)) {
    throw refuse(value, `protocol must be one of ${Object.keys(PROTOCOL_TRANSPORTS).join(', ')}`);
  }
  const simulated = /^simulator:([a-z]+)$/.exec(value);
  if (simulated !== null) {
    const protocol = protocolOverride ?? (simulated[1] as string);
    if (!isProtocol(protocol))
      throw refuse(
        value,
        `simulator must be one of ${Object.keys(PROTOCOL_TRANSPORTS).join(', ')}`,
      );
    return { protocol, transport: 'simulator', id: `simulator:${protocol}`, params: {} };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw refuse(value, 'must be a URL such as ws://10.0.0.5:45454');
  }
  const scheme = url.protocol.slice(0, -1);
  const plus = scheme.indexOf('+');
  const named = plus === -1 ? SHORT_FORMS[scheme] : scheme.slice(0, plus);
  const transport = plus === -1 ? scheme : scheme.slice(plus + 1);
  const protocol = protocolOverride ?? named;
  if (protocol === undefined || !isProtocol(protocol))
    throw refuse(value, 'names an unknown protocol');
  if (!(PROTOCOL_TRANSPORTS[protocol] as readonly string[]).includes(transport)) {
    throw refuse(
      value,
      `${protocol} terminals are reached over ${PROTOCOL_TRANSPORTS[protocol].join(' or ')}, not ${transport}`,
    );
  }
  const params = Object.fromEntries(url.searchParams.entries());
  if (transport === 'serial') {
    const decoded = decodeURIComponent(url.pathname);
    if (url.host !== '' || decoded === '' || decoded === '/')
      throw refuse(value, 'serial addresses name a device: serial:///dev/ttyACM0');
    // `serial:///COM8` is the Windows port COM8 (seed 003's Windows example): the serial port
    // wants the bare name, which a URL path cannot start with.
    const path = WINDOWS_SERIAL_PORT.test(decoded.slice(1)) ? decoded.slice(1) : decoded;
    return { protocol, transport, id: `${protocol}+serial://${path}`, path, params };
  }
  if (url.hostname === '') throw refuse(value, 'must name a host');
  if (url.pathname !== '/' && url.pathname !== '') throw refuse(value, 'must not have a path');
  const host = url.hostname;
  const port =
    url.port !== '' ? Number(url.port) : (explicitDefaultPort(value) ?? DEFAULT_PORTS[protocol]);
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return {
    protocol,
    transport: transport as Transport,
    id: `${protocol}+${transport}://${hostPart}:${port}`,
    host,
    port,
    params,
  };
}
