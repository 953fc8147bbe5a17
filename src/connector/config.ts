import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { findCurrency } from '../core/currencies.js';
import { EcrError } from '../core/errors.js';
import { wholeNumber } from '../core/options.js';
import {
  parseTerminalAddress,
  VALID_ADDRESS_FORMS,
  withoutSecrets,
} from '../core/terminal-address.js';
import { hasControlCharacters } from '../core/transaction.js';

/**
 * The connector's `config.txt` (kiosk seed 003, "Fill in the setup file"): `KEY=VALUE` lines,
 * overridden key by key by `ECR_BRIDGE_<KEY>` environment variables. One path (house style 5):
 * named defaults → a strict zod schema → a frozen object; every error names where the value came
 * from (line or environment variable), the key and the rule, and never quotes a secret.
 */

/** Port of the local API (`http://localhost:{LOCAL_PORT}`, seed 003's example). */
export const CONNECTOR_DEFAULT_PORT = 8080;
/** `desktop` (seed 001, a POS beside an attended terminal) or `kiosk` (seed 003, unattended). */
export const CONNECTOR_DEFAULT_FLAVOUR = 'desktop';
/** Journal, logs and outbox; a relative path is taken from the config file's folder. */
export const CONNECTOR_DEFAULT_DATA_DIR = './data';
/** Baud rate of the Concert line derived from SERIAL_PORT (the HiPay kiosk connector's). */
export const CONNECTOR_SERIAL_BAUD_RATE = 9600;
/** Largest config file read: 64 KiB. */
export const CONFIG_MAX_BYTES = 64 * 1024;
/** Most lines a config file may have, comments and blank lines included. */
export const CONFIG_MAX_LINES = 1_000;
/** Longest value of any key, in characters. */
export const CONFIG_MAX_VALUE_LENGTH = 2_048;
/** Prefix of the environment variables that override the file: `ECR_BRIDGE_LOCAL_PORT`. */
export const CONFIG_ENV_PREFIX = 'ECR_BRIDGE_';

/** Every key `config.txt` may hold: the seed's seven, then the project's. */
export const CONFIG_KEYS = [
  'SERIAL_PORT',
  'LOCAL_PORT',
  'TERMINAL_MANAGER_LOGIN',
  'TERMINAL_MANAGER_PWD',
  'HIPAY_LOGIN',
  'HIPAY_PWD',
  'UPDATE_TIME',
  'CONNECTOR_FLAVOUR',
  'TERMINAL_URL',
  'DATA_DIR',
  'NOTIFY_URL',
  'POS_NUMBER',
  'CURRENCY',
] as const;

export type ConfigKey = (typeof CONFIG_KEYS)[number];

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
  /** CONNECTOR_FLAVOUR. @default CONNECTOR_DEFAULT_FLAVOUR */
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
}

export interface ParseConfigOptions {
  /** Where `ECR_BRIDGE_<KEY>` overrides are read from; none when left out. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Folder a relative DATA_DIR of the file is resolved against. @default process.cwd() */
  readonly baseDir?: string;
  /** The file's name in error messages. @default 'config.txt' */
  readonly source?: string;
}

/** Where a value came from: a line of the file or an environment variable. */
type Origin =
  | { readonly type: 'line'; readonly line: number }
  | { readonly type: 'env'; readonly name: string };

const CONTROL_RULE = 'must not contain control characters';
const PORT_RULE = 'must be a whole number from 1 to 65535';
const TIME_RULE = 'must be hh:mm from 00:00 to 23:59';
const POS_RULE = 'must be a whole number from 1 to 99';
const REQUIRED_RULE = 'is required (Basic Auth must always be on)';
const UNCLOSED_RULE = 'has an opening double quote without a closing one';
// A Windows port name, also in its `\\.\COM10` form. See SERIAL_PORT below for why it is refused.
const WINDOWS_PORT = /^(?:\\\\\.\\)?COM\d+$/i;

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

/** The rules of each key; empty values of optional keys were dropped before (= not set). */
const SCHEMA = z.strictObject({
  // The seed's Windows example is `COM8`. ecr-bridge is Linux-first and its serial transport opens
  // device paths: `serial:///COM8` would name a file `/COM8` that never exists, and the user would
  // only learn it at the first payment. Refusing at start, with the Linux name to use instead, is
  // what someone copying the Windows table expects to be told.
  SERIAL_PORT: text()
    .refine(
      (value) => !WINDOWS_PORT.test(value),
      'is a Windows port name; name the device, such as /dev/ttyUSB0 or /dev/ttyACM0 (`npx ecr-bridge ports` lists them)',
    )
    .refine((value) => value.startsWith('/'), 'must be a device path such as /dev/ttyUSB0')
    .optional(),
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
  CONNECTOR_FLAVOUR: text()
    .pipe(z.enum(['desktop', 'kiosk'], { error: 'must be desktop or kiosk' }))
    .default(CONNECTOR_DEFAULT_FLAVOUR),
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
});

/** A value as it may appear in a message: quoted, control characters escaped, at most 40 characters. */
function excerpt(value: string): string {
  const chars = [...value];
  const short = chars.length > 40 ? `${chars.slice(0, 40).join('')}…` : value;
  const escaped = short.replace(/["\\]/g, '\\$&').replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return `"${escaped}"`;
}

/** `config.txt line 3: LOCAL_PORT: rule (detail)`, or `environment variable ECR_BRIDGE_…: rule`. */
function configError(
  source: string,
  origin: Origin | undefined,
  key: string | undefined,
  rule: string,
  detail?: string,
): EcrError {
  const where =
    origin === undefined
      ? `${source}: ${key === undefined ? '' : `${key}: `}`
      : origin.type === 'env'
        ? `environment variable ${origin.name}: `
        : `${source} line ${origin.line}: ${key === undefined ? '' : `${key}: `}`;
  const message = `${where}${rule}${detail === undefined ? '' : ` (${detail})`}`;
  return new EcrError('INVALID_INPUT', message, { field: key ?? source, rule });
}

/** Optimal string alignment distance: a swap of two neighbours (PROT/PORT) counts as one edit. */
function distance(a: string, b: string): number {
  let older: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      let best = Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, (older[j - 2] ?? 0) + 1);
      }
      row.push(best);
    }
    [older, previous] = [previous, row];
  }
  return previous[b.length] ?? 0;
}

function isConfigKey(key: string): key is ConfigKey {
  return (CONFIG_KEYS as readonly string[]).includes(key);
}

/** "did you mean" for a near miss: a typo of at most two edits, any case, or the env prefix. */
function suggestion(key: string): string | undefined {
  const upper = key.toUpperCase();
  const bare = upper.startsWith(CONFIG_ENV_PREFIX) ? upper.slice(CONFIG_ENV_PREFIX.length) : upper;
  if (isConfigKey(bare)) return bare;
  let best: { key: ConfigKey; distance: number } | undefined;
  for (const candidate of CONFIG_KEYS) {
    const d = distance(bare, candidate);
    if (d <= 2 && (best === undefined || d < best.distance)) best = { key: candidate, distance: d };
  }
  return best?.key;
}

/**
 * A value may be wrapped in double quotes to keep surrounding spaces or start with `#`; there are
 * no escapes inside (a password holding `"` is written as is: only the outer pair is removed).
 * Returns undefined for an opening quote without a closing one.
 */
function unquote(value: string): string | undefined {
  if (!value.startsWith('"')) return value;
  if (value.length < 2 || !value.endsWith('"')) return undefined;
  return value.slice(1, -1);
}

/**
 * An unknown key. What stands before "=" is quoted only when it looks like a key (UPPER_SNAKE, or
 * a near miss of one): a misplaced password line (`dGVzdA==`, `TERMINAL_MANAGER_PWD:a=b`) must not
 * end up in a log.
 */
function unknownKey(source: string, origin: Origin, key: string): EcrError {
  const known = /^[A-Za-z_][A-Za-z0-9_]*/.exec(key)?.[0];
  if (known !== undefined && known !== key && isConfigKey(known)) {
    return configError(
      source,
      origin,
      known,
      'expected KEY=VALUE (only spaces may stand between the key and "=")',
    );
  }
  const near = /^[A-Za-z0-9_]{1,64}$/.test(key) ? suggestion(key) : undefined;
  if (near !== undefined) {
    return configError(source, origin, key, 'is not a config.txt key', `did you mean ${near}?`);
  }
  const keys = `keys: ${CONFIG_KEYS.join(', ')}`;
  if (/^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/.test(key) && key.length <= 64) {
    return configError(source, origin, key, 'is not a config.txt key', keys);
  }
  return configError(
    source,
    origin,
    undefined,
    'expected KEY=VALUE with a config.txt key before "="',
    keys,
  );
}

function readLines(
  text: string,
  source: string,
  values: Map<ConfigKey, string>,
  origins: Map<ConfigKey, Origin>,
): void {
  if (Buffer.byteLength(text, 'utf8') > CONFIG_MAX_BYTES) {
    throw configError(source, undefined, undefined, `must be at most ${CONFIG_MAX_BYTES} bytes`);
  }
  // Notepad saves a UTF-8 BOM and CRLF line endings.
  const lines = (text.startsWith('\uFEFF') ? text.slice(1) : text).split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  if (lines.length > CONFIG_MAX_LINES) {
    throw configError(
      source,
      undefined,
      undefined,
      `must have at most ${CONFIG_MAX_LINES} lines`,
      `got ${lines.length}`,
    );
  }
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const origin: Origin = { type: 'line', line: index + 1 };
    const equals = line.indexOf('=');
    if (equals === -1) {
      // Never quote the line: it may be `TERMINAL_MANAGER_PWD secret` with the `=` forgotten.
      const known = /^[A-Za-z_][A-Za-z0-9_]*/.exec(line)?.[0];
      const key = known !== undefined && isConfigKey(known) ? known : undefined;
      throw configError(source, origin, key, 'expected KEY=VALUE (this line has no "=")');
    }
    const key = line.slice(0, equals).trim();
    if (key === '') throw configError(source, origin, undefined, 'expected KEY=VALUE (no key)');
    if (!isConfigKey(key)) throw unknownKey(source, origin, key);
    const first = origins.get(key);
    if (first !== undefined && first.type === 'line') {
      throw configError(source, origin, key, 'is given twice', `first on line ${first.line}`);
    }
    const value = unquote(line.slice(equals + 1).trim());
    if (value === undefined) {
      throw configError(source, origin, key, UNCLOSED_RULE);
    }
    values.set(key, value);
    origins.set(key, origin);
  });
}

function readEnv(
  env: Readonly<Record<string, string | undefined>>,
  source: string,
  values: Map<ConfigKey, string>,
  origins: Map<ConfigKey, Origin>,
): void {
  for (const key of CONFIG_KEYS) {
    const name = `${CONFIG_ENV_PREFIX}${key}`;
    const raw = env[name];
    if (raw === undefined) continue;
    const origin: Origin = { type: 'env', name };
    const value = unquote(raw.trim());
    if (value === undefined) {
      throw configError(source, origin, key, UNCLOSED_RULE);
    }
    values.set(key, value);
    origins.set(key, origin);
  }
}

/** `serial://<path>?baud=9600`, each path segment escaped so `?`, `#` or `%` stay in the path. */
function serialUrl(path: string): string {
  return `serial://${path.split('/').map(encodeURIComponent).join('/')}?baud=${CONNECTOR_SERIAL_BAUD_RATE}`;
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

  const result = SCHEMA.safeParse(input);
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
      : resolve(options.baseDir ?? process.cwd(), parsed.DATA_DIR ?? CONNECTOR_DEFAULT_DATA_DIR);

  const config: ConnectorConfig = {
    flavour: parsed.CONNECTOR_FLAVOUR,
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

/**
 * Reads and parses a config file; a relative DATA_DIR is taken from the file's folder. A missing
 * or unreadable file, one over 64 KiB or one not saved as UTF-8 is an INVALID_INPUT naming the path.
 */
export function loadConfig(
  path: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
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
  return parseConfigText(text, { env, baseDir: dirname(resolve(path)), source: path });
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
  return out;
}
