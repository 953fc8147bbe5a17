import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { findCurrency } from '../core/currencies.js';
import { EcrError } from '../core/errors.js';
import { wholeNumber } from '../core/options.js';
import {
  parseTerminalAddress,
  VALID_ADDRESS_FORMS,
  WINDOWS_SERIAL_PORT,
  withoutSecrets,
} from '../core/terminal-address.js';
import { hasControlCharacters } from '../core/transaction.js';
import {
  CONFIG_ENV_PREFIX,
  CONFIG_MAX_BYTES,
  configError,
  excerpt,
  readEnv,
  readLines,
  type ConfigKey,
  type Origin,
} from './config-text.js';
import { ALLOWED_HOSTS_RULE, parseAllowedHosts } from './host-check.js';

// The reader's bounds and keys are part of this module's surface (src/index.ts, tests).
export {
  CONFIG_ENV_PREFIX,
  CONFIG_KEYS,
  CONFIG_MAX_BYTES,
  CONFIG_MAX_LINES,
  type ConfigKey,
} from './config-text.js';

/**
 * The connector's `config.txt` (kiosk seed 003, "Fill in the setup file"): `KEY=VALUE` lines,
 * overridden key by key by `ECR_BRIDGE_<KEY>` environment variables. One path (house style 5):
 * named defaults → a strict zod schema → a frozen object; every error names where the value came
 * from (line or environment variable), the key and the rule, and never quotes a secret.
 */

/** Port of the local API (`http://localhost:{LOCAL_PORT}`, seed 003's example). */
export const CONNECTOR_DEFAULT_PORT = 8080;
/**
 * `desktop` (seed 001, a POS beside an attended terminal) or `kiosk` (seed 003, unattended): the
 * flavour of a config with neither CONNECTOR_FLAVOUR nor SERIAL_PORT (with SERIAL_PORT: kiosk).
 */
export const CONNECTOR_DEFAULT_FLAVOUR = 'desktop';
/** Journal, logs and outbox; a relative path is taken from the config file's folder. */
export const CONNECTOR_DEFAULT_DATA_DIR = './data';
/** Baud rate of the Concert line derived from SERIAL_PORT (the HiPay kiosk connector's). */
export const CONNECTOR_SERIAL_BAUD_RATE = 9600;
/** The file `connector start` reads from its data directory (seed 003: "located into the data directory"). */
export const CONFIG_FILE_NAME = 'config.txt';
/** Longest value of any key, in characters. */
export const CONFIG_MAX_VALUE_LENGTH = 2_048;

/** Keys whose value is never quoted anywhere (NOTIFY_URL may carry a password in its userinfo). */
const SECRET_KEYS: ReadonlySet<ConfigKey> = new Set([
  'TERMINAL_MANAGER_PWD',
  'HIPAY_PWD',
  'NOTIFY_URL',
]);
/** Keys that must have a value: Basic Auth is always on (seed 003, "Authentication"). */
const REQUIRED_KEYS: ReadonlySet<ConfigKey> = new Set([
  'TERMINAL_MANAGER_LOGIN',
  'TERMINAL_MANAGER_PWD',
]);

export interface ConnectorConfig {
  /** CONNECTOR_FLAVOUR; without it `kiosk` when SERIAL_PORT is set. @default CONNECTOR_DEFAULT_FLAVOUR */
  readonly flavour: 'desktop' | 'kiosk';
  /** LOCAL_PORT, 1–65535. @default CONNECTOR_DEFAULT_PORT */
  readonly localPort: number;
  /** TERMINAL_MANAGER_LOGIN: the local API's Basic Auth user. Required. */
  readonly login: string;
  /** TERMINAL_MANAGER_PWD: the local API's Basic Auth password. Required; never logged. */
  readonly password: string;
  /** HIPAY_LOGIN: HiPay API user the transactions are sent with. */
  readonly hipayLogin?: string;
  /** HIPAY_PWD: never logged. Given together with HIPAY_LOGIN. */
  readonly hipayPassword?: string;
  /** UPDATE_TIME (`hh:mm`): daily update time. */
  readonly updateTime?: { readonly hour: number; readonly minute: number };
  /** TERMINAL_URL, or `serial://<SERIAL_PORT>?baud=9600` when only SERIAL_PORT is given. */
  readonly terminalUrl: string;
  /** DATA_DIR, absolute. @default CONNECTOR_DEFAULT_DATA_DIR beside the config file */
  readonly dataDir: string;
  /** NOTIFY_URL: the back office that receives each transaction (http or https). */
  readonly notifyUrl?: string;
  /** POS_NUMBER, 1–99: this POS's number on a Concert terminal. */
  readonly posNumber?: number;
  /** CURRENCY: the terminal's ISO 4217 currency. */
  readonly currency?: string;
  /** SERIAL_PORT: the terminal's serial device, as written (`/dev/ttyUSB0`). */
  readonly serialPort?: string;
  /**
   * ALLOWED_HOSTS: names (lower case) the local API answers to in the `Host` header besides
   * localhost, 127.0.0.1 and [::1]. @default []
   */
  readonly allowedHosts?: readonly string[];
  /** The file it was read from, absolute; absent when no file was read. */
  readonly file?: string;
}

export interface ParseConfigOptions {
  /** Where `ECR_BRIDGE_<KEY>` overrides are read from; none when left out. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Folder a relative DATA_DIR of the file is resolved against. @default process.cwd() */
  readonly baseDir?: string;
  /** The file's name in error messages. @default 'config.txt' */
  readonly source?: string;
  /**
   * The system the connector runs on: SERIAL_PORT `COM8` names a port on Windows and nothing
   * elsewhere. @default process.platform
   */
  readonly platform?: NodeJS.Platform;
  /** DATA_DIR when neither the file nor the environment sets it, from baseDir. @default CONNECTOR_DEFAULT_DATA_DIR */
  readonly defaultDataDir?: string;
}

const CONTROL_RULE = 'must not contain control characters';
const PORT_RULE = 'must be a whole number from 1 to 65535';
const TIME_RULE = 'must be hh:mm from 00:00 to 23:59';
const POS_RULE = 'must be a whole number from 1 to 99';
const REQUIRED_RULE = 'is required (Basic Auth must always be on)';

/** Checks every value shares: no control characters, bounded length. */
function text() {
  return z
    .string()
    .refine((value) => !hasControlCharacters(value), CONTROL_RULE)
    .max(CONFIG_MAX_VALUE_LENGTH, `must be at most ${CONFIG_MAX_VALUE_LENGTH} characters`);
}

function digits(pattern: RegExp, rule: string, min: number, max: number) {
  return text().regex(pattern, rule).transform(Number).pipe(wholeNumber(min, max));
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

const required = text().min(1, 'must not be empty');

/**
 * SERIAL_PORT's rule on Linux (and macOS): a device path. The seed's Windows example is `COM8`;
 * here `serial:///COM8` would name a file that never exists, and the user would only learn it at
 * the first payment. Refusing at start, with the Linux name to use instead, is what someone
 * copying the Windows table expects to be told.
 */
const POSIX_SERIAL_PORT = text()
  .refine(
    (value) => !WINDOWS_SERIAL_PORT.test(value),
    'is a Windows port name; name the device, such as /dev/ttyUSB0 or /dev/ttyACM0 (`npx ecr-bridge ports` lists them)',
  )
  .refine((value) => value.startsWith('/'), 'must be a device path such as /dev/ttyUSB0')
  .optional();

/** SERIAL_PORT's rule on Windows: a port name, as in the seed's Windows table (`COM8`). */
const WINDOWS_SERIAL_PORT_RULE = text()
  .regex(
    WINDOWS_SERIAL_PORT,
    'must be a port name such as COM8 (`npx ecr-bridge ports` lists them)',
  )
  .optional();

/** The rules of each key; empty values of optional keys were dropped before (= not set). */
const SCHEMA = z.strictObject({
  SERIAL_PORT: POSIX_SERIAL_PORT,
  LOCAL_PORT: digits(/^\d{1,5}$/, PORT_RULE, 1, 65535).default(CONNECTOR_DEFAULT_PORT),
  TERMINAL_MANAGER_LOGIN: required.refine(
    (value) => !value.includes(':'),
    'must not contain ":" (Basic Auth puts it between login and password)',
  ),
  TERMINAL_MANAGER_PWD: required,
  HIPAY_LOGIN: text().optional(),
  HIPAY_PWD: text().optional(),
  UPDATE_TIME: text()
    .regex(/^(?:[01]\d|2[0-3]):[0-5]\d$/, TIME_RULE)
    .transform((value) =>
      Object.freeze({ hour: Number(value.slice(0, 2)), minute: Number(value.slice(3)) }),
    )
    .optional(),
  // No default here: without it, the flavour follows SERIAL_PORT (parseConfigText).
  CONNECTOR_FLAVOUR: text()
    .pipe(z.enum(['desktop', 'kiosk'], { error: 'must be desktop or kiosk' }))
    .optional(),
  TERMINAL_URL: text()
    .superRefine((value, ctx) => {
      try {
        parseTerminalAddress(value);
      } catch (error) {
        const rule =
          error instanceof EcrError && error.rule !== undefined
            ? error.rule
            : 'is not a terminal address';
        ctx.addIssue({ code: 'custom', message: rule });
      }
    })
    .optional(),
  DATA_DIR: text().optional(),
  NOTIFY_URL: text()
    .refine(
      isHttpUrl,
      'must be an http:// or https:// URL such as https://backoffice.example/notify',
    )
    .optional(),
  POS_NUMBER: digits(/^\d{1,2}$/, POS_RULE, 1, 99).optional(),
  CURRENCY: text()
    .superRefine((value, ctx) => {
      if (findCurrency(value) !== undefined) return;
      const upper = value.toUpperCase();
      ctx.addIssue({
        code: 'custom',
        message:
          findCurrency(upper) === undefined
            ? 'must be an active ISO 4217 currency code such as EUR'
            : `must be an active ISO 4217 currency code in capitals (did you mean ${upper}?)`,
      });
    })
    .optional(),
  ALLOWED_HOSTS: text()
    .transform((value, ctx) => {
      const names = parseAllowedHosts(value);
      if (names === undefined) ctx.addIssue({ code: 'custom', message: ALLOWED_HOSTS_RULE });
      return Object.freeze(names ?? []);
    })
    .optional(),
});
const WINDOWS_SCHEMA = SCHEMA.extend({ SERIAL_PORT: WINDOWS_SERIAL_PORT_RULE });

/**
 * `serial://<path>?baud=9600`, each path segment escaped so `?`, `#` or `%` stay in the path; a
 * Windows name becomes `serial:///COM8` (the address reads it back as the port COM8).
 */
function serialUrl(path: string): string {
  const device = path.startsWith('/') ? path : `/${path}`;
  return `serial://${device.split('/').map(encodeURIComponent).join('/')}?baud=${CONNECTOR_SERIAL_BAUD_RATE}`;
}

/**
 * Parses the text of a `config.txt`, with `ECR_BRIDGE_<KEY>` overrides from `options.env`.
 * Throws an INVALID_INPUT EcrError naming the line (or variable), the key and the rule.
 */
export function parseConfigText(text: string, options: ParseConfigOptions = {}): ConnectorConfig {
  const source = options.source ?? 'config.txt';
  const values = new Map<ConfigKey, string>();
  const origins = new Map<ConfigKey, Origin>();
  readLines(text, source, values, origins);
  readEnv(options.env ?? {}, source, values, origins);

  // An empty optional value is the same as leaving the line out (templates ship `HIPAY_PWD=`).
  const input: Partial<Record<ConfigKey, string>> = {};
  for (const [key, value] of values) if (value !== '' || REQUIRED_KEYS.has(key)) input[key] = value;

  const windows = (options.platform ?? process.platform) === 'win32';
  const result = (windows ? WINDOWS_SCHEMA : SCHEMA).safeParse(input);
  if (!result.success) {
    // Report the problem the user meets first: an environment variable, then the file top down.
    const rank = (issue: z.core.$ZodIssue): number => {
      const origin = origins.get(issue.path[0] as ConfigKey);
      return origin === undefined ? Infinity : origin.type === 'env' ? 0 : origin.line;
    };
    const issue = result.error.issues.reduce((a, b) => (rank(b) < rank(a) ? b : a));
    const key = issue.path[0] as ConfigKey;
    const value = input[key];
    const origin = origins.get(key);
    if (value === undefined) throw configError(source, origin, key, REQUIRED_RULE);
    let detail = SECRET_KEYS.has(key)
      ? undefined
      : `got ${excerpt(key === 'TERMINAL_URL' ? withoutSecrets(value) : value)}`;
    if (key === 'TERMINAL_URL')
      detail = `${detail}; valid forms: ${VALID_ADDRESS_FORMS.join(', ')}`;
    throw configError(source, origin, key, issue.message, detail);
  }
  const parsed = result.data;

  if ((parsed.HIPAY_LOGIN === undefined) !== (parsed.HIPAY_PWD === undefined)) {
    const [given, missing] =
      parsed.HIPAY_LOGIN === undefined
        ? (['HIPAY_PWD', 'HIPAY_LOGIN'] as const)
        : (['HIPAY_LOGIN', 'HIPAY_PWD'] as const);
    throw configError(source, origins.get(given), given, `needs ${missing} too`);
  }

  let terminalUrl = parsed.TERMINAL_URL;
  if (terminalUrl === undefined && parsed.SERIAL_PORT !== undefined) {
    // The kiosk seed names only the serial port: its terminal speaks Concert at 9600 baud.
    try {
      // Inside the try: encodeURIComponent throws URIError on a lone surrogate.
      terminalUrl = serialUrl(parsed.SERIAL_PORT);
      parseTerminalAddress(terminalUrl);
    } catch {
      throw configError(
        source,
        origins.get('SERIAL_PORT'),
        'SERIAL_PORT',
        'must be a device path such as /dev/ttyUSB0',
      );
    }
  }
  if (terminalUrl === undefined) {
    throw configError(
      source,
      origins.get('TERMINAL_URL'),
      'TERMINAL_URL',
      "is required unless SERIAL_PORT names the terminal's serial device",
      `valid forms: ${VALID_ADDRESS_FORMS.join(', ')}`,
    );
  }

  // A relative DATA_DIR in the file is read from the file's folder (the file travels with its
  // data, seed 003 keeps config.txt in the data directory); ECR_BRIDGE_DATA_DIR keeps the meaning
  // the CLI gives it (`--data-dir`): relative to the working directory.
  const dataDirOrigin = origins.get('DATA_DIR');
  const dataDir =
    parsed.DATA_DIR !== undefined && dataDirOrigin?.type === 'env'
      ? resolve(parsed.DATA_DIR)
      : resolve(
          options.baseDir ?? process.cwd(),
          parsed.DATA_DIR ?? options.defaultDataDir ?? CONNECTOR_DEFAULT_DATA_DIR,
        );

  // Seed 003's config.txt has no flavour key and is the kiosk's: its SERIAL_PORT says so. A file
  // without either (TERMINAL_URL only) keeps the desktop default; CONNECTOR_FLAVOUR always wins.
  const flavour =
    parsed.CONNECTOR_FLAVOUR ??
    (parsed.SERIAL_PORT === undefined ? CONNECTOR_DEFAULT_FLAVOUR : 'kiosk');

  const config: ConnectorConfig = {
    flavour,
    localPort: parsed.LOCAL_PORT,
    login: parsed.TERMINAL_MANAGER_LOGIN,
    password: parsed.TERMINAL_MANAGER_PWD,
    ...(parsed.HIPAY_LOGIN === undefined ? {} : { hipayLogin: parsed.HIPAY_LOGIN }),
    ...(parsed.HIPAY_PWD === undefined ? {} : { hipayPassword: parsed.HIPAY_PWD }),
    ...(parsed.UPDATE_TIME === undefined ? {} : { updateTime: parsed.UPDATE_TIME }),
    terminalUrl,
    dataDir,
    ...(parsed.NOTIFY_URL === undefined ? {} : { notifyUrl: parsed.NOTIFY_URL }),
    ...(parsed.POS_NUMBER === undefined ? {} : { posNumber: parsed.POS_NUMBER }),
    ...(parsed.CURRENCY === undefined ? {} : { currency: parsed.CURRENCY }),
    ...(parsed.SERIAL_PORT === undefined ? {} : { serialPort: parsed.SERIAL_PORT }),
    ...(parsed.ALLOWED_HOSTS === undefined ? {} : { allowedHosts: parsed.ALLOWED_HOSTS }),
  };
  return Object.freeze(config);
}

function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a folder, not a file';
  return code ?? 'cannot be read';
}

/** How a config file is read: `platform` and `defaultDataDir` of ParseConfigOptions. */
export type LoadConfigOptions = Pick<ParseConfigOptions, 'platform' | 'defaultDataDir'>;

/**
 * Reads and parses a config file; a relative DATA_DIR is taken from the file's folder. A missing
 * or unreadable file, one over 64 KiB or one not saved as UTF-8 is an INVALID_INPUT naming the path.
 */
export function loadConfig(
  path: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: LoadConfigOptions = {},
): ConnectorConfig {
  const fail = (rule: string, cause?: unknown): EcrError =>
    new EcrError('INVALID_INPUT', `${path}: ${rule}`, { field: path, rule, cause });
  let bytes: Buffer;
  try {
    if (statSync(path).size > CONFIG_MAX_BYTES)
      throw fail(`must be at most ${CONFIG_MAX_BYTES} bytes`);
    bytes = readFileSync(path);
  } catch (error) {
    if (error instanceof EcrError) throw error;
    throw fail(`cannot be read: ${describeFsError(error)}`, error);
  }
  // Notepad's "Unicode" is UTF-16 with a BOM; its "ANSI" is not UTF-8 as soon as a letter has an accent.
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw fail('is saved as UTF-16 ("Unicode"): save it as UTF-8');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw fail('is not UTF-8 text: save it as UTF-8');
  }
  const config = parseConfigText(text, {
    ...options,
    env,
    baseDir: dirname(resolve(path)),
    source: path,
  });
  return Object.freeze({ ...config, file: resolve(path) });
}

/**
 * The config of a data directory: its `config.txt`, where seed 003 keeps it, with DATA_DIR
 * defaulting to that directory. Without the file, the defaults and the `ECR_BRIDGE_<KEY>`
 * variables alone (which must then give the Basic Auth credentials); errors say so.
 */
export function loadDataDirConfig(
  dataDir: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: Pick<ParseConfigOptions, 'platform'> = {},
): ConnectorConfig {
  const dir = resolve(dataDir);
  const path = join(dir, CONFIG_FILE_NAME);
  try {
    statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return parseConfigText('', {
        ...options,
        env,
        baseDir: dir,
        defaultDataDir: '.',
        source: `${path} (no such file: defaults and ${CONFIG_ENV_PREFIX}<KEY> variables)`,
      });
    }
    // Anything else (permission, a folder in its place) is loadConfig's to report.
  }
  return loadConfig(path, env, { ...options, defaultDataDir: '.' });
}

/** Query parameters that hold credentials in terminal and back-office URLs. */
const SECRET_PARAMS =
  /^(?:token|access[_-]?token|api[_-]?key|key|secret|password|passwd|pass|pwd|auth)$/i;

/** A URL with its userinfo and credential parameters replaced by `****`. */
function maskUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return withoutSecrets(value);
  }
  let masked = false;
  if (url.username !== '' || url.password !== '') {
    url.username = '****';
    url.password = '';
    masked = true;
  }
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_PARAMS.test(name)) {
      url.searchParams.set(name, '****');
      masked = true;
    }
  }
  return masked ? url.href : value;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/**
 * The configuration by config.txt key, for logs and `connector start`: passwords, NOTIFY_URL's
 * userinfo and credential parameters of the URLs are `****`.
 */
export function describeConfig(config: ConnectorConfig): Record<string, string | number> {
  const out: Record<string, string | number> = {
    CONNECTOR_FLAVOUR: config.flavour,
    LOCAL_PORT: config.localPort,
    TERMINAL_MANAGER_LOGIN: config.login,
    TERMINAL_MANAGER_PWD: '****',
    TERMINAL_URL: maskUrl(config.terminalUrl),
    DATA_DIR: config.dataDir,
  };
  if (config.serialPort !== undefined) out.SERIAL_PORT = config.serialPort;
  if (config.hipayLogin !== undefined) out.HIPAY_LOGIN = config.hipayLogin;
  if (config.hipayPassword !== undefined) out.HIPAY_PWD = '****';
  if (config.updateTime !== undefined)
    out.UPDATE_TIME = `${pad(config.updateTime.hour)}:${pad(config.updateTime.minute)}`;
  if (config.notifyUrl !== undefined) out.NOTIFY_URL = maskUrl(config.notifyUrl);
  if (config.posNumber !== undefined) out.POS_NUMBER = config.posNumber;
  if (config.currency !== undefined) out.CURRENCY = config.currency;
  if (config.allowedHosts !== undefined) out.ALLOWED_HOSTS = config.allowedHosts.join(',');
  return out;
}
