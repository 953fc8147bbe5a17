import { EcrError } from '../core/errors.js';

/**
 * The `KEY=VALUE` reader behind `config.txt` (kiosk seed 003, "Fill in the setup file"): the
 * file's lines and the `ECR_BRIDGE_<KEY>` environment overrides become raw values, each with
 * where it came from, so that every error names the line (or variable), the key and the rule.
 * The rules of each key's value are config.ts's.
 */

/** Largest config file read: 64 KiB. */
export const CONFIG_MAX_BYTES = 64 * 1024;
/** Most lines a config file may have, comments and blank lines included. */
export const CONFIG_MAX_LINES = 1_000;
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
  'ALLOWED_HOSTS',
] as const;

export type ConfigKey = (typeof CONFIG_KEYS)[number];

/** Where a value came from: a line of the file or an environment variable. */
export type Origin =
  | { readonly type: 'line'; readonly line: number }
  | { readonly type: 'env'; readonly name: string };

const UNCLOSED_RULE = 'has an opening double quote without a closing one';

/** A value as it may appear in a message: quoted, control characters escaped, at most 40 characters. */
export function excerpt(value: string): string {
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
export function configError(
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

export function isConfigKey(key: string): key is ConfigKey {
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

export function readLines(
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

export function readEnv(
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
