import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CONFIG_MAX_BYTES,
  CONFIG_MAX_LINES,
  CONFIG_MAX_VALUE_LENGTH,
  CONNECTOR_DEFAULT_DATA_DIR,
  CONNECTOR_DEFAULT_FLAVOUR,
  CONNECTOR_DEFAULT_PORT,
  describeConfig,
  loadConfig,
  loadDataDirConfig,
  parseConfigText,
} from '../../src/connector/config.js';
import type { EcrError } from '../../src/core/errors.js';
import { parseTerminalAddress } from '../../src/core/terminal-address.js';
import { tempDir, thrownBy } from '../helpers.js';

const BASE = '/srv/ecr';

/** Kiosk seed 003, "Fill in the setup file", Linux table, in its order. */
const SEED_LINUX = [
  'SERIAL_PORT=/dev/ttyUSB0',
  'LOCAL_PORT=8080',
  'TERMINAL_MANAGER_LOGIN=log',
  'TERMINAL_MANAGER_PWD=pwd',
  'HIPAY_LOGIN=99999999.stage-secure-gateway.hipay-tpp.com',
  'HIPAY_PWD=Test_XXXXXXXXXXXXXXXXXXXXXXXX',
  'UPDATE_TIME=04:00',
].join('\n');

/** The same seed's Windows table, in its order. */
const SEED_WINDOWS = SEED_LINUX.replace('SERIAL_PORT=/dev/ttyUSB0', 'SERIAL_PORT=COM8');

/** The smallest valid file: credentials and a terminal. */
const MINIMAL = [
  'TERMINAL_MANAGER_LOGIN=log',
  'TERMINAL_MANAGER_PWD=pwd',
  'TERMINAL_URL=simulator:concert',
];

function parse(text: string, env: Record<string, string | undefined> = {}) {
  return parseConfigText(text, { env, baseDir: BASE });
}

function failure(text: string, env: Record<string, string | undefined> = {}): EcrError {
  const error = thrownBy(() => parse(text, env));
  expect(error.code).toBe('INVALID_INPUT');
  return error;
}

/** Every string an error exposes: message, JSON, and the messages of its cause chain. */
function exposed(error: EcrError): string {
  const parts = [error.message, JSON.stringify(error.toJSON()), String(error.stack)];
  let cause: unknown = error.cause;
  while (cause !== undefined) {
    parts.push(cause instanceof Error ? `${cause.message} ${String(cause.stack)}` : String(cause));
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return parts.join('\n');
}

describe('the kiosk seed’s config.txt', () => {
  it('the Linux example parses as the kiosk (it has no flavour key), its serial port becoming a Concert address at 9600 baud', () => {
    const config = parse(SEED_LINUX);
    expect(config).toEqual({
      flavour: 'kiosk',
      localPort: 8080,
      login: 'log',
      password: 'pwd',
      hipayLogin: '99999999.stage-secure-gateway.hipay-tpp.com',
      hipayPassword: 'Test_XXXXXXXXXXXXXXXXXXXXXXXX',
      updateTime: { hour: 4, minute: 0 },
      terminalUrl: 'serial:///dev/ttyUSB0?baud=9600',
      dataDir: resolve(BASE, 'data'),
      serialPort: '/dev/ttyUSB0',
    });
    expect(parseTerminalAddress(config.terminalUrl)).toMatchObject({
      protocol: 'concert',
      transport: 'serial',
      path: '/dev/ttyUSB0',
      params: { baud: '9600' },
    });
  });

  // On Linux `serial:///COM8` would name a file that never exists and fail only at the first
  // payment. The user copying the Windows table is told at start which name to use instead.
  it.each(['COM8', 'com3', '\\\\.\\COM10'])(
    'on Linux the Windows example’s %s is refused at start, pointing to the Linux device name',
    (port) => {
      const error = thrownBy(() =>
        parseConfigText(SEED_LINUX.replace('/dev/ttyUSB0', port), { platform: 'linux' }),
      );
      expect(error.message).toMatch(
        /^config\.txt line 1: SERIAL_PORT: is a Windows port name; name the device, such as \/dev\/ttyUSB0/,
      );
      expect(error.message).toContain('npx ecr-bridge ports');
      expect(error.field).toBe('SERIAL_PORT');
    },
  );

  it.each(['COM8', 'com3', '\\\\.\\COM10'])(
    'on Windows the Windows example with %s is accepted as written: the kiosk, on that port',
    (port) => {
      const config = parseConfigText(SEED_WINDOWS.replace('COM8', port), {
        platform: 'win32',
        baseDir: BASE,
      });
      expect(config).toMatchObject({ flavour: 'kiosk', serialPort: port });
      // The serial port is opened by its bare Windows name, not as a path `/COM8`.
      expect(parseTerminalAddress(config.terminalUrl)).toMatchObject({
        protocol: 'concert',
        transport: 'serial',
        path: port,
        params: { baud: '9600' },
      });
    },
  );

  it('on Windows a device path is not a port: refused naming the form to use', () => {
    const error = thrownBy(() => parseConfigText(SEED_LINUX, { platform: 'win32' }));
    expect(error.field).toBe('SERIAL_PORT');
    expect(error.message).toMatch(
      /^config\.txt line 1: SERIAL_PORT: must be a port name such as COM8/,
    );
  });

  it('a Notepad file with BOM, CRLF, comments, blank lines, spaces around "=" and quotes parses', () => {
    const text =
      '\uFEFF# kiosk 12, hall B\r\n' +
      '\r\n' +
      '  LOCAL_PORT = 9000  \r\n' +
      'TERMINAL_MANAGER_LOGIN = "log"\r\n' +
      '   # the password keeps its spaces and its # when quoted\r\n' +
      'TERMINAL_MANAGER_PWD = " p#w d "\r\n' +
      'HIPAY_LOGIN=user\r\n' +
      'HIPAY_PWD=a#b"c\r\n' +
      '\tCONNECTOR_FLAVOUR\t=\tkiosk\t\r\n' +
      'TERMINAL_URL="concert+tcp://10.0.0.7:8888"\r\n';
    const config = parse(text);
    expect(config).toMatchObject({
      localPort: 9000,
      login: 'log',
      password: ' p#w d ',
      hipayPassword: 'a#b"c',
      flavour: 'kiosk',
      terminalUrl: 'concert+tcp://10.0.0.7:8888',
    });
  });

  it('defaults fill what is left out, and an empty optional value counts as left out', () => {
    const config = parse([...MINIMAL, 'LOCAL_PORT=', 'HIPAY_LOGIN=', 'HIPAY_PWD=""'].join('\n'));
    expect(config).toEqual({
      flavour: CONNECTOR_DEFAULT_FLAVOUR,
      localPort: CONNECTOR_DEFAULT_PORT,
      login: 'log',
      password: 'pwd',
      terminalUrl: 'simulator:concert',
      dataDir: resolve(BASE, CONNECTOR_DEFAULT_DATA_DIR),
    });
  });

  it('the project’s keys are read: flavour, data dir, notify URL, POS number, currency', () => {
    const config = parse(
      [
        ...MINIMAL,
        'CONNECTOR_FLAVOUR=kiosk',
        'DATA_DIR=/var/lib/ecr',
        'NOTIFY_URL=https://bo.example/notify',
        'POS_NUMBER=07',
        'CURRENCY=CHF',
      ].join('\n'),
    );
    expect(config).toMatchObject({
      flavour: 'kiosk',
      dataDir: '/var/lib/ecr',
      notifyUrl: 'https://bo.example/notify',
      posNumber: 7,
      currency: 'CHF',
    });
  });

  it('the result is frozen, its update time too', () => {
    const config = parse(SEED_LINUX);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.updateTime)).toBe(true);
    expect(() => {
      (config as { localPort: number }).localPort = 1;
    }).toThrow(TypeError);
  });
});

describe('the flavour', () => {
  const creds = MINIMAL.slice(0, 2).join('\n');
  it.each<[string, string, Record<string, string>, 'desktop' | 'kiosk']>([
    [
      'SERIAL_PORT and no CONNECTOR_FLAVOUR (the seed’s file)',
      'SERIAL_PORT=/dev/ttyUSB0',
      {},
      'kiosk',
    ],
    ['neither (TERMINAL_URL only)', 'TERMINAL_URL=simulator:concert', {}, 'desktop'],
    [
      'SERIAL_PORT and TERMINAL_URL, no CONNECTOR_FLAVOUR',
      'SERIAL_PORT=/dev/ttyUSB0\nTERMINAL_URL=concert+tcp://10.0.0.7:8888',
      {},
      'kiosk',
    ],
    [
      'SERIAL_PORT with CONNECTOR_FLAVOUR=desktop (the explicit key wins)',
      'SERIAL_PORT=/dev/ttyUSB0\nCONNECTOR_FLAVOUR=desktop',
      {},
      'desktop',
    ],
    [
      'TERMINAL_URL with CONNECTOR_FLAVOUR=kiosk',
      'TERMINAL_URL=simulator:concert\nCONNECTOR_FLAVOUR=kiosk',
      {},
      'kiosk',
    ],
    [
      'SERIAL_PORT from the environment',
      'TERMINAL_URL=simulator:concert',
      { ECR_BRIDGE_SERIAL_PORT: '/dev/ttyACM0' },
      'kiosk',
    ],
    [
      'an empty SERIAL_PORT (not set)',
      'SERIAL_PORT=\nTERMINAL_URL=simulator:concert',
      {},
      'desktop',
    ],
  ])('%s → %s', (_, lines, env, flavour) => {
    expect(parse(`${creds}\n${lines}`, env).flavour).toBe(flavour);
  });
});

describe('the terminal address', () => {
  it.each([
    'ws://10.0.0.5:45454',
    'tcp://10.0.0.6:5000',
    'semi+ws://10.0.0.6:5000',
    'concert+tcp://10.0.0.7:8888',
    'serial:///dev/ttyACM0?baud=9600',
    'simulator:payable',
    'simulator:semi',
  ])('TERMINAL_URL=%s is accepted as written', (url) => {
    expect(parse([...MINIMAL.slice(0, 2), `TERMINAL_URL=${url}`].join('\n')).terminalUrl).toBe(url);
  });

  it('TERMINAL_URL wins over SERIAL_PORT when both are given; SERIAL_PORT is still reported', () => {
    const config = parse(`${SEED_LINUX}\nTERMINAL_URL=concert+tcp://10.0.0.7:8888`);
    expect(config.terminalUrl).toBe('concert+tcp://10.0.0.7:8888');
    expect(config.serialPort).toBe('/dev/ttyUSB0');
  });

  it('a serial device path with URL characters stays one path in the derived address', () => {
    const config = parse(SEED_LINUX.replace('/dev/ttyUSB0', '/dev/serial/by-id/usb-Ingenico_#1?x'));
    expect(parseTerminalAddress(config.terminalUrl).path).toBe(
      '/dev/serial/by-id/usb-Ingenico_#1?x',
    );
  });

  // Found by fuzzing (test/fuzz): encodeURIComponent threw a URIError out of parseConfigText
  // (public API; loadConfig's strict UTF-8 decoding cannot produce a lone surrogate).
  it('a serial device path holding a lone surrogate is refused on its line, not a URIError', () => {
    const error = failure(SEED_LINUX.replace('/dev/ttyUSB0', '/dev/tty\uD800'));
    expect(error.field).toBe('SERIAL_PORT');
    expect(error.message).toMatch(/^config\.txt line 1: SERIAL_PORT: must be a device path/);
    expect(
      failure(MINIMAL.slice(0, 2).join('\n'), { ECR_BRIDGE_SERIAL_PORT: '/dev/\uDC00' }).field,
    ).toBe('SERIAL_PORT');
  });

  it('neither TERMINAL_URL nor SERIAL_PORT is an error naming TERMINAL_URL', () => {
    const error = failure(MINIMAL.slice(0, 2).join('\n'));
    expect(error.message).toMatch(
      /^config\.txt: TERMINAL_URL: is required unless SERIAL_PORT names the terminal's serial device \(valid forms: .*simulator:concert/,
    );
    expect(error.field).toBe('TERMINAL_URL');
  });
});

describe('bad input is refused with the line, the key and the rule', () => {
  const head = MINIMAL.join('\n'); // lines 1–3
  it.each<[string, string, number, string, RegExp]>([
    ['a line without "="', 'LOCAL_PORT 8080', 4, 'LOCAL_PORT', /expected KEY=VALUE/],
    [
      'a near-miss key',
      'LOCAL_PROT=8080',
      4,
      'LOCAL_PROT',
      /is not a config\.txt key \(did you mean LOCAL_PORT\?\)/,
    ],
    ['a key in lower case', 'local_port=8080', 4, 'local_port', /did you mean LOCAL_PORT\?/],
    [
      'the environment prefix in the file',
      'ECR_BRIDGE_UPDATE_TIME=04:00',
      4,
      'ECR_BRIDGE_UPDATE_TIME',
      /did you mean UPDATE_TIME\?/,
    ],
    [
      'an unknown key',
      'SHOP_NAME=blue',
      4,
      'SHOP_NAME',
      /is not a config\.txt key \(keys: SERIAL_PORT, LOCAL_PORT/,
    ],
    [
      'a key given twice',
      'TERMINAL_MANAGER_LOGIN=other',
      4,
      'TERMINAL_MANAGER_LOGIN',
      /is given twice \(first on line 1\)/,
    ],
    [
      'a control character',
      'HIPAY_LOGIN=us\u0007er\u0085',
      4,
      'HIPAY_LOGIN',
      /must not contain control characters \(got "us\\u0007er\\u0085"\)/,
    ],
    [
      'a tab inside a value',
      'CURRENCY=E\tUR',
      4,
      'CURRENCY',
      /must not contain control characters/,
    ],
    [
      'an unclosed quote',
      'HIPAY_LOGIN="user',
      4,
      'HIPAY_LOGIN',
      /has an opening double quote without a closing one/,
    ],
    [
      'a value over the bound',
      `HIPAY_LOGIN=${'u'.repeat(CONFIG_MAX_VALUE_LENGTH + 1)}`,
      4,
      'HIPAY_LOGIN',
      /must be at most 2048 characters \(got "u{40}…"\)/,
    ],
    [
      'port 0',
      'LOCAL_PORT=0',
      4,
      'LOCAL_PORT',
      /must be a whole number from 1 to 65535 \(got "0"\)/,
    ],
    ['port 65536', 'LOCAL_PORT=65536', 4, 'LOCAL_PORT', /must be a whole number from 1 to 65535/],
    [
      'a decimal port',
      'LOCAL_PORT=80.5',
      4,
      'LOCAL_PORT',
      /must be a whole number from 1 to 65535 \(got "80\.5"\)/,
    ],
    ['a negative port', 'LOCAL_PORT=-1', 4, 'LOCAL_PORT', /must be a whole number from 1 to 65535/],
    [
      'a port with an inline comment',
      'LOCAL_PORT=8080 # api',
      4,
      'LOCAL_PORT',
      /must be a whole number from 1 to 65535 \(got "8080 # api"\)/,
    ],
    [
      '24:00',
      'UPDATE_TIME=24:00',
      4,
      'UPDATE_TIME',
      /must be hh:mm from 00:00 to 23:59 \(got "24:00"\)/,
    ],
    ['minute 60', 'UPDATE_TIME=12:60', 4, 'UPDATE_TIME', /must be hh:mm from 00:00 to 23:59/],
    ['one-digit hour', 'UPDATE_TIME=4:00', 4, 'UPDATE_TIME', /must be hh:mm from 00:00 to 23:59/],
    [
      'an http terminal',
      'TERMINAL_URL=http://10.0.0.5',
      3,
      'TERMINAL_URL',
      /TERMINAL_URL: names an unknown protocol \(got "http:\/\/10\.0\.0\.5"; valid forms: /,
    ],
    [
      'a serial terminal over ws',
      'TERMINAL_URL=concert+ws://h:1',
      3,
      'TERMINAL_URL',
      /concert terminals are reached over serial or tcp, not ws/,
    ],
    [
      'a notify URL with ftp',
      'NOTIFY_URL=ftp://bo.example/x',
      4,
      'NOTIFY_URL',
      /must be an http:\/\/ or https:\/\/ URL/,
    ],
    [
      'a notify URL that is no URL',
      'NOTIFY_URL=bo.example/notify',
      4,
      'NOTIFY_URL',
      /must be an http:\/\/ or https:\/\/ URL/,
    ],
    [
      'a flavour in capitals',
      'CONNECTOR_FLAVOUR=Kiosk',
      4,
      'CONNECTOR_FLAVOUR',
      /must be desktop or kiosk \(got "Kiosk"\)/,
    ],
    [
      'an unknown flavour',
      'CONNECTOR_FLAVOUR=server',
      4,
      'CONNECTOR_FLAVOUR',
      /must be desktop or kiosk/,
    ],
    [
      'POS number 0',
      'POS_NUMBER=0',
      4,
      'POS_NUMBER',
      /must be a whole number from 1 to 99 \(got "0"\)/,
    ],
    ['POS number 100', 'POS_NUMBER=100', 4, 'POS_NUMBER', /must be a whole number from 1 to 99/],
    [
      'an unknown currency',
      'CURRENCY=XXX',
      4,
      'CURRENCY',
      /must be an active ISO 4217 currency code such as EUR \(got "XXX"\)/,
    ],
    [
      'a withdrawn currency',
      'CURRENCY=HRK',
      4,
      'CURRENCY',
      /must be an active ISO 4217 currency code/,
    ],
    [
      'a currency in lower case',
      'CURRENCY=eur',
      4,
      'CURRENCY',
      /in capitals \(did you mean EUR\?\)/,
    ],
    [
      'a relative serial port',
      'SERIAL_PORT=ttyUSB0',
      4,
      'SERIAL_PORT',
      /must be a device path such as \/dev\/ttyUSB0 \(got "ttyUSB0"\)/,
    ],
    ['a HiPay login alone', 'HIPAY_LOGIN=user', 4, 'HIPAY_LOGIN', /needs HIPAY_PWD too/],
    ['a HiPay password alone', 'HIPAY_PWD=secret', 4, 'HIPAY_PWD', /needs HIPAY_LOGIN too/],
  ])('%s', (_what, line, lineNumber, key, rule) => {
    // TERMINAL_URL cases replace line 3 so that the key is not given twice.
    const text =
      key === 'TERMINAL_URL' ? `${MINIMAL.slice(0, 2).join('\n')}\n${line}` : `${head}\n${line}`;
    const error = failure(text);
    expect(error.message.startsWith(`config.txt line ${lineNumber}: ${key}: `)).toBe(true);
    expect(error.message).toMatch(rule);
    expect(error.field).toBe(key);
    expect(error.rule).toBeDefined();
    expect(error.message).toContain(error.rule as string);
  });

  it('an empty login is refused on its line', () => {
    const error = failure(
      'TERMINAL_MANAGER_LOGIN=\nTERMINAL_MANAGER_PWD=pwd\nTERMINAL_URL=simulator:semi',
    );
    expect(error.message).toBe(
      'config.txt line 1: TERMINAL_MANAGER_LOGIN: must not be empty (got "")',
    );
  });

  it('a login holding ":" is refused: Basic Auth could not tell it from the password', () => {
    const error = failure(`${head.replace('=log', '=lo:g')}`);
    expect(error.message).toMatch(
      /^config\.txt line 1: TERMINAL_MANAGER_LOGIN: must not contain ":"/,
    );
  });

  it('a missing password is refused: Basic Auth is always on', () => {
    const error = failure('TERMINAL_MANAGER_LOGIN=log\nTERMINAL_URL=simulator:semi');
    expect(error.message).toBe(
      'config.txt: TERMINAL_MANAGER_PWD: is required (Basic Auth must always be on)',
    );
    expect(error.field).toBe('TERMINAL_MANAGER_PWD');
  });

  it('a line without "=" and no known key names only the line, quoting nothing of it', () => {
    const error = failure(`${head}\nhunter2`);
    expect(error.message).toBe('config.txt line 4: expected KEY=VALUE (this line has no "=")');
  });

  it('a pasted base64 password before "=" is not quoted back', () => {
    const error = failure(`${head}\ndGVzdC1zZWNyZXQ=`);
    expect(error.message).toBe(
      `config.txt line 4: expected KEY=VALUE with a config.txt key before "=" (keys: SERIAL_PORT, LOCAL_PORT, TERMINAL_MANAGER_LOGIN, TERMINAL_MANAGER_PWD, HIPAY_LOGIN, HIPAY_PWD, UPDATE_TIME, CONNECTOR_FLAVOUR, TERMINAL_URL, DATA_DIR, NOTIFY_URL, POS_NUMBER, CURRENCY, ALLOWED_HOSTS)`,
    );
  });

  it('a key followed by ":" names the key and does not quote what follows', () => {
    const error = failure(
      `TERMINAL_MANAGER_LOGIN=log\nTERMINAL_MANAGER_PWD: hunter2=x\nTERMINAL_URL=simulator:semi`,
    );
    expect(error.message).toBe(
      'config.txt line 2: TERMINAL_MANAGER_PWD: expected KEY=VALUE (only spaces may stand between the key and "=")',
    );
    expect(error.field).toBe('TERMINAL_MANAGER_PWD');
  });

  it('line numbers count comments, blank lines and CRLF lines, after a BOM', () => {
    const error = failure(
      `\uFEFF# c\r\n\r\n${MINIMAL.join('\r\n')}\r\n\r\n# d\r\nLOCAL_PORT=x\r\n`,
    );
    expect(error.message).toMatch(/^config\.txt line 8: LOCAL_PORT: /);
  });

  it('the first problem from the top of the file is the one reported', () => {
    const error = failure(`${head}\nUPDATE_TIME=99:99\nLOCAL_PORT=0`);
    expect(error.message).toMatch(/^config\.txt line 4: UPDATE_TIME: /);
  });

  it('messages name the source given', () => {
    const error = thrownBy(() =>
      parseConfigText(`${head}\nLOCAL_PORT=0`, { source: '/etc/ecr/config.txt' }),
    );
    expect(error.message).toMatch(/^\/etc\/ecr\/config\.txt line 4: LOCAL_PORT: /);
  });

  it(`a file over ${CONFIG_MAX_BYTES} bytes is refused whole`, () => {
    const error = failure(`${head}\n# ${'x'.repeat(CONFIG_MAX_BYTES)}`);
    expect(error.message).toBe('config.txt: must be at most 65536 bytes');
  });

  it(`a file over ${CONFIG_MAX_LINES} lines is refused whole; exactly ${CONFIG_MAX_LINES} is fine`, () => {
    const filler = (n: number) => Array.from({ length: n }, () => '#').join('\n');
    expect(() => parse(`${head}\n${filler(CONFIG_MAX_LINES - 3)}\n`)).not.toThrow();
    const error = failure(`${head}\n${filler(CONFIG_MAX_LINES - 2)}`);
    expect(error.message).toBe('config.txt: must have at most 1000 lines (got 1001)');
  });
});

describe('ECR_BRIDGE_<KEY> environment variables override the file', () => {
  it('an override replaces the file’s value, and can give a key the file lacks', () => {
    const config = parse(SEED_LINUX, {
      ECR_BRIDGE_LOCAL_PORT: '9090',
      ECR_BRIDGE_TERMINAL_URL: 'simulator:concert',
      ECR_BRIDGE_CURRENCY: ' "EUR" ',
      ECR_BRIDGE_UNRELATED: 'x',
      ECR_BRIDGE_HIPAY_LOGIN: undefined,
    });
    expect(config).toMatchObject({
      localPort: 9090,
      terminalUrl: 'simulator:concert',
      currency: 'EUR',
      hipayLogin: '99999999.stage-secure-gateway.hipay-tpp.com',
    });
  });

  it('credentials may come from the environment alone', () => {
    const config = parse('TERMINAL_URL=simulator:payable', {
      ECR_BRIDGE_TERMINAL_MANAGER_LOGIN: 'env-login',
      ECR_BRIDGE_TERMINAL_MANAGER_PWD: 'env-pwd',
    });
    expect(config).toMatchObject({ login: 'env-login', password: 'env-pwd' });
  });

  it('an empty override unsets an optional key', () => {
    const config = parse(`${MINIMAL.join('\n')}\nNOTIFY_URL=https://bo.example/n`, {
      ECR_BRIDGE_NOTIFY_URL: '',
    });
    expect(config.notifyUrl).toBeUndefined();
  });

  it.each<[string, string, RegExp]>([
    ['ECR_BRIDGE_LOCAL_PORT', '90a', /must be a whole number from 1 to 65535 \(got "90a"\)/],
    ['ECR_BRIDGE_UPDATE_TIME', '25:00', /must be hh:mm from 00:00 to 23:59/],
    ['ECR_BRIDGE_CONNECTOR_FLAVOUR', 'tablet', /must be desktop or kiosk/],
    ['ECR_BRIDGE_TERMINAL_MANAGER_LOGIN', '', /must not be empty/],
    ['ECR_BRIDGE_TERMINAL_URL', 'nope', /must be a URL such as ws:\/\//],
  ])('a bad %s is an error naming the variable, not a line', (name, value, rule) => {
    const error = failure(SEED_LINUX, { [name]: value });
    expect(error.message.startsWith(`environment variable ${name}: `)).toBe(true);
    expect(error.message).not.toMatch(/line \d/);
    expect(error.message).toMatch(rule);
    expect(error.field).toBe(name.slice('ECR_BRIDGE_'.length));
  });

  it('a file DATA_DIR is taken from the config file’s folder, an ECR_BRIDGE_DATA_DIR from the working directory', () => {
    const text = `${MINIMAL.join('\n')}\nDATA_DIR=kiosk-data`;
    expect(parse(text).dataDir).toBe(resolve(BASE, 'kiosk-data'));
    expect(parse(MINIMAL.join('\n'), { ECR_BRIDGE_DATA_DIR: 'env-data' }).dataDir).toBe(
      resolve(process.cwd(), 'env-data'),
    );
    expect(parse(text, { ECR_BRIDGE_DATA_DIR: '/abs/data' }).dataDir).toBe('/abs/data');
  });
});

describe('secrets are never printed', () => {
  it('a password with a control character is refused without quoting it', () => {
    const error = failure(
      `TERMINAL_MANAGER_LOGIN=log\nTERMINAL_MANAGER_PWD=s3cr\u0007et-value\nTERMINAL_URL=simulator:semi`,
    );
    expect(error.message).toBe(
      'config.txt line 2: TERMINAL_MANAGER_PWD: must not contain control characters',
    );
    expect(exposed(error)).not.toContain('s3cr');
  });

  it('a bad NOTIFY_URL is refused without quoting it (its userinfo may hold a password)', () => {
    const error = failure(`${MINIMAL.join('\n')}\nNOTIFY_URL=ftp://bo:hunter2-pass@bo.example/`);
    expect(error.message).toMatch(
      /^config\.txt line 4: NOTIFY_URL: must be an http:\/\/ or https:\/\/ URL/,
    );
    expect(exposed(error)).not.toContain('hunter2');
  });

  it('describeConfig shows every key, with passwords and URL credentials as ****', () => {
    const config = parse(
      [
        SEED_LINUX,
        'TERMINAL_URL=payable+ws://10.0.0.5:45454?token=tok-secret&pos=POS-1',
        'NOTIFY_URL=https://bo-user:bo-secret@bo.example/notify?api_key=key-secret&shop=12',
        'POS_NUMBER=3',
        'CURRENCY=EUR',
        'CONNECTOR_FLAVOUR=kiosk',
      ].join('\n'),
    );
    const described = describeConfig(config);
    expect(described).toEqual({
      CONNECTOR_FLAVOUR: 'kiosk',
      LOCAL_PORT: 8080,
      TERMINAL_MANAGER_LOGIN: 'log',
      TERMINAL_MANAGER_PWD: '****',
      TERMINAL_URL: 'payable+ws://10.0.0.5:45454?token=****&pos=POS-1',
      DATA_DIR: resolve(BASE, 'data'),
      SERIAL_PORT: '/dev/ttyUSB0',
      HIPAY_LOGIN: '99999999.stage-secure-gateway.hipay-tpp.com',
      HIPAY_PWD: '****',
      UPDATE_TIME: '04:00',
      NOTIFY_URL: 'https://****@bo.example/notify?api_key=****&shop=12',
      POS_NUMBER: 3,
      CURRENCY: 'EUR',
    });
    expect(JSON.stringify(described)).not.toMatch(/pwd|Test_X|secret/);
  });

  it('describeConfig leaves a URL without credentials as written', () => {
    expect(describeConfig(parse(SEED_LINUX)).TERMINAL_URL).toBe('serial:///dev/ttyUSB0?baud=9600');
  });

  // Long random passwords: one found in a message can only have been copied there.
  const password = fc.stringMatching(/^[A-Za-z0-9!$%&*+,.;<>^_{|}~-]{12,40}$/);
  const control = fc.constantFrom('\u0000', '\u0007', '\t', '\r', '\u001b', '\u007f', '\u0085');

  /** Bad files built around a password, each failing in a different way. */
  const badFiles = (pw: string, c: string): [string, Record<string, string>][] => {
    const creds = `TERMINAL_MANAGER_LOGIN=log\nTERMINAL_MANAGER_PWD=${pw}`;
    return [
      [
        `TERMINAL_MANAGER_LOGIN=log\nTERMINAL_MANAGER_PWD=${pw}${c}x\nTERMINAL_URL=simulator:semi`,
        {},
      ],
      [
        `${creds}\nHIPAY_LOGIN=u\nHIPAY_PWD=${pw.slice(0, 6)}${c}${pw.slice(6)}\nTERMINAL_URL=simulator:semi`,
        {},
      ],
      [`${creds}\nTERMINAL_MANAGER_PWD=${pw}\nTERMINAL_URL=simulator:semi`, {}],
      [`TERMINAL_MANAGER_LOGIN=log\nTERMINAL_MANAGER_PWD ${pw}\nTERMINAL_URL=simulator:semi`, {}],
      [`TERMINAL_MANAGER_LOGIN=log\n${pw}\nTERMINAL_URL=simulator:semi`, {}],
      [`TERMINAL_MANAGER_LOGIN=log\nTERMINAL_MANAGER_PWD:${pw}=x\nTERMINAL_URL=simulator:semi`, {}],
      [`TERMINAL_MANAGER_LOGIN=log\nTERMINAL_MANAGER_PWD ${pw}=x\nTERMINAL_URL=simulator:semi`, {}],
      [`TERMINAL_MANAGER_LOGIN=log\nTERMINAL_MANAGER_PWD="${pw}\nTERMINAL_URL=simulator:semi`, {}],
      [`${creds}\nHIPAY_PWD=${pw}\nTERMINAL_URL=simulator:semi`, {}],
      [`${creds}\nHIPAY_LOGIN=u\nHIPAY_PWD=${pw.repeat(200)}\nTERMINAL_URL=simulator:semi`, {}],
      [`${creds}\nNOTIFY_URL=https://bo:${pw}@bo.example:99999/\nTERMINAL_URL=simulator:semi`, {}],
      [`${creds}\nNOTIFY_URL=ftp://bo:${pw}@bo.example/\nTERMINAL_URL=simulator:semi`, {}],
      [`${creds}\nLOCAL_PORT=0\nTERMINAL_URL=simulator:semi`, {}],
      [`${creds}`, {}],
      [SEED_LINUX, { ECR_BRIDGE_TERMINAL_MANAGER_PWD: `${pw}${c}x` }],
      [SEED_LINUX, { ECR_BRIDGE_HIPAY_PWD: `"${pw}` }],
      [SEED_LINUX, { ECR_BRIDGE_NOTIFY_URL: `mailto:${pw}` }],
      [`${creds}\nUPDATE_TIME=9`, { ECR_BRIDGE_TERMINAL_MANAGER_PWD: pw }],
    ];
  };

  it('no error message, JSON or cause ever holds a password, whatever is wrong', () => {
    fc.assert(
      fc.property(password, control, (pw, c) => {
        for (const [text, env] of badFiles(pw, c)) {
          const error = failure(text, env);
          expect(exposed(error)).not.toContain(pw);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('describeConfig never holds a password or NOTIFY_URL’s password', () => {
    fc.assert(
      fc.property(password, password, password, (pw, hipay, notify) => {
        const config = parse(
          [
            'TERMINAL_MANAGER_LOGIN=log',
            `TERMINAL_MANAGER_PWD=${pw}`,
            'HIPAY_LOGIN=user',
            `HIPAY_PWD="${hipay}"`,
            `NOTIFY_URL=https://bo:${encodeURIComponent(notify)}@bo.example/n`,
            'SERIAL_PORT=/dev/ttyACM0',
          ].join('\n'),
        );
        expect(config.password).toBe(pw);
        const text = JSON.stringify(describeConfig(config));
        for (const secret of [pw, hipay, notify, encodeURIComponent(notify)]) {
          expect(text).not.toContain(secret);
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('loadConfig', () => {
  it('a missing file is an INVALID_INPUT naming the path', () => {
    const path = join(tempDir('config-'), 'nope', 'config.txt');
    const error = thrownBy(() => loadConfig(path, {}));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(`${path}: cannot be read: no such file`);
    expect(error.field).toBe(path);
  });

  it('a folder given as the file is an INVALID_INPUT naming the path', () => {
    const dir = tempDir('config-');
    expect(() => loadConfig(dir, {})).toThrow(`${dir}: cannot be read: is a folder, not a file`);
  });

  it('a real file parses, DATA_DIR defaulting to data/ beside it; env overrides apply', () => {
    const dir = tempDir('config-');
    const path = join(dir, 'config.txt');
    writeFileSync(path, `\uFEFF${SEED_LINUX.replaceAll('\n', '\r\n')}\r\n`);
    const config = loadConfig(path, { ECR_BRIDGE_LOCAL_PORT: '8181' });
    expect(config).toMatchObject({
      localPort: 8181,
      terminalUrl: 'serial:///dev/ttyUSB0?baud=9600',
      dataDir: join(dir, 'data'),
    });
  });

  it('a relative path is read from the working directory, DATA_DIR from the file’s folder', () => {
    const dir = tempDir('config-');
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc', 'config.txt'), `${MINIMAL.join('\n')}\nDATA_DIR=../var`);
    const path = relative(process.cwd(), join(dir, 'etc', 'config.txt'));
    expect(path.startsWith('/')).toBe(false);
    expect(loadConfig(path, {}).dataDir).toBe(join(dir, 'var'));
  });

  it('errors in the file name the file’s path and line', () => {
    const path = join(tempDir('config-'), 'config.txt');
    writeFileSync(path, `${MINIMAL.join('\n')}\nLOCAL_PROT=1`);
    expect(() => loadConfig(path, {})).toThrow(
      `${path} line 4: LOCAL_PROT: is not a config.txt key (did you mean LOCAL_PORT?)`,
    );
  });

  it('a file saved by Notepad as "Unicode" (UTF-16) or "ANSI" with accents is refused with how to fix it', () => {
    const dir = tempDir('config-');
    const utf16 = join(dir, 'utf16.txt');
    writeFileSync(
      utf16,
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(MINIMAL.join('\r\n'), 'utf16le')]),
    );
    expect(() => loadConfig(utf16, {})).toThrow(
      `${utf16}: is saved as UTF-16 ("Unicode"): save it as UTF-8`,
    );
    const ansi = join(dir, 'ansi.txt');
    writeFileSync(ansi, Buffer.from(`${MINIMAL.join('\r\n')}\r\nHIPAY_LOGIN=caf\u00e9`, 'latin1'));
    expect(() => loadConfig(ansi, {})).toThrow(`${ansi}: is not UTF-8 text: save it as UTF-8`);
  });

  it(`a file over ${CONFIG_MAX_BYTES} bytes is refused before it is read`, () => {
    const path = join(tempDir('config-'), 'config.txt');
    writeFileSync(path, `${MINIMAL.join('\n')}\n#${'x'.repeat(CONFIG_MAX_BYTES)}`);
    expect(() => loadConfig(path, {})).toThrow(`${path}: must be at most 65536 bytes`);
  });
});

describe('loadDataDirConfig (connector start without --config)', () => {
  it('reads DIR/config.txt, the seed’s Linux file verbatim: the kiosk, its data in DIR itself', () => {
    const dir = tempDir('config-dir-');
    writeFileSync(join(dir, 'config.txt'), `${SEED_LINUX}\n`);
    const config = loadDataDirConfig(dir, {}, { platform: 'linux' });
    expect(config).toMatchObject({
      flavour: 'kiosk',
      localPort: 8080,
      terminalUrl: 'serial:///dev/ttyUSB0?baud=9600',
      dataDir: dir,
      file: join(dir, 'config.txt'),
    });
  });

  it('a relative DATA_DIR in it is still read from its folder; ECR_BRIDGE_ variables still apply', () => {
    const dir = tempDir('config-dir-');
    writeFileSync(join(dir, 'config.txt'), `${SEED_LINUX}\nDATA_DIR=journal`);
    const env = { ECR_BRIDGE_LOCAL_PORT: '9090' };
    expect(loadDataDirConfig(dir, env, { platform: 'linux' })).toMatchObject({
      dataDir: join(dir, 'journal'),
      localPort: 9090,
    });
  });

  it('no config.txt: defaults and variables only, and an error says which file was missing', () => {
    const dir = tempDir('config-dir-');
    const error = thrownBy(() => loadDataDirConfig(dir, {}));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(
      `${join(dir, 'config.txt')} (no such file: defaults and ECR_BRIDGE_<KEY> variables): TERMINAL_MANAGER_LOGIN: is required (Basic Auth must always be on)`,
    );
    const config = loadDataDirConfig(dir, {
      ECR_BRIDGE_TERMINAL_MANAGER_LOGIN: 'log',
      ECR_BRIDGE_TERMINAL_MANAGER_PWD: 'pwd',
      ECR_BRIDGE_TERMINAL_URL: 'simulator:concert',
    });
    expect(config).toMatchObject({ flavour: 'desktop', localPort: 8080, dataDir: dir });
    expect(config.file).toBeUndefined();
  });

  it('a config.txt that cannot be read is not taken for a missing one', () => {
    const dir = tempDir('config-dir-');
    mkdirSync(join(dir, 'config.txt'));
    expect(() => loadDataDirConfig(dir, {})).toThrow(
      `${join(dir, 'config.txt')}: cannot be read: is a folder, not a file`,
    );
  });
});
