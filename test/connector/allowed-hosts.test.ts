import { describe, expect, it } from 'vitest';
import { describeConfig, parseConfigText } from '../../src/connector/config.js';
import {
  allowedHosts,
  checkHost,
  CONNECTOR_MAX_ALLOWED_HOSTS,
  CONNECTOR_MAX_HOST_LENGTH,
} from '../../src/connector/host-check.js';
import { thrownBy } from '../helpers.js';

const MINIMAL = [
  'TERMINAL_MANAGER_LOGIN=log',
  'TERMINAL_MANAGER_PWD=pwd',
  'TERMINAL_URL=simulator:concert',
];
const RULE =
  'must be host names or IP addresses separated by commas, without a scheme or port, such as pos.shop.lan,192.168.1.20,[fd00::1]';

function parse(lines: readonly string[], env: Record<string, string> = {}) {
  return parseConfigText([...MINIMAL, ...lines].join('\n'), { env, baseDir: '/srv/ecr' });
}

describe('config.txt ALLOWED_HOSTS', () => {
  it('lists names and addresses, commas and spaces between, kept in lower case; describeConfig shows them', () => {
    const config = parse(['ALLOWED_HOSTS= POS.shop.lan, 192.168.1.20 ,[fd00::1],till_2']);
    expect(config.allowedHosts).toEqual(['pos.shop.lan', '192.168.1.20', '[fd00::1]', 'till_2']);
    expect(Object.isFrozen(config.allowedHosts)).toBe(true);
    expect(describeConfig(config).ALLOWED_HOSTS).toBe('pos.shop.lan,192.168.1.20,[fd00::1],till_2');
  });

  it('is optional: absent or empty, only the loopback names are answered to', () => {
    expect(parse([]).allowedHosts).toBeUndefined();
    expect(parse(['ALLOWED_HOSTS=']).allowedHosts).toBeUndefined();
    expect(describeConfig(parse([])).ALLOWED_HOSTS).toBeUndefined();
  });

  it('ECR_BRIDGE_ALLOWED_HOSTS overrides the file, as for every key', () => {
    const config = parse(['ALLOWED_HOSTS=pos.shop.lan'], {
      ECR_BRIDGE_ALLOWED_HOSTS: 'kiosk.local',
    });
    expect(config.allowedHosts).toEqual(['kiosk.local']);
  });

  it.each([
    ['a port', 'pos.shop.lan:8080'],
    ['a scheme', 'http://pos.shop.lan'],
    ['a path', 'pos.shop.lan/x'],
    ['an empty name between commas', 'pos.shop.lan,,till.lan'],
    ['a trailing comma', 'pos.shop.lan,'],
    ['a wildcard', '*.shop.lan'],
    ['user info', 'evil.example@pos.shop.lan'],
    ['an address the URL parser rewrites', '127.1'],
    ['an IPv6 address without brackets', 'fd00::1'],
    ['an IPv6 address not in its short form', '[fd00:0:0:0:0:0:0:1]'],
    ['a name longer than a DNS name', `${'a'.repeat(254)}`],
    [
      `more than ${CONNECTOR_MAX_ALLOWED_HOSTS} names`,
      Array.from({ length: CONNECTOR_MAX_ALLOWED_HOSTS + 1 }, (_, i) => `h${i}.lan`).join(','),
    ],
  ])('refuses %s, naming the line, the key and the rule', (_what, value) => {
    const error = thrownBy(() => parse([`ALLOWED_HOSTS=${value}`]));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.field).toBe('ALLOWED_HOSTS');
    expect(error.rule).toBe(RULE);
    expect(error.message.startsWith(`config.txt line 4: ALLOWED_HOSTS: ${RULE} (got "`)).toBe(true);
  });

  it('a bad environment value names the variable', () => {
    const error = thrownBy(() => parse([], { ECR_BRIDGE_ALLOWED_HOSTS: 'pos.lan:80' }));
    expect(error.message).toBe(
      `environment variable ECR_BRIDGE_ALLOWED_HOSTS: ${RULE} (got "pos.lan:80")`,
    );
  });

  it('a near miss of the key is pointed at it', () => {
    const error = thrownBy(() => parse(['ALLOWED_HOST=pos.lan']));
    expect(error.message).toContain('did you mean ALLOWED_HOSTS?');
  });
});

describe('checkHost', () => {
  const hosts = allowedHosts(['pos.shop.lan', '[fd00::1]']);

  it('passes the loopback names, the listen address and the added names, with or without a port', () => {
    for (const host of [
      'localhost',
      'localhost:8080',
      '127.0.0.1:1',
      '[::1]:65535',
      'pos.shop.lan:8080',
      '[FD00::1]',
      undefined,
      '',
    ])
      expect(checkHost(host, hosts), String(host)).toBeUndefined();
  });

  it('refuses anything else with MISDIRECTED_REQUEST naming host and the rule', () => {
    for (const host of [
      'evil.example',
      'localhost:65536',
      'localhost:',
      'localhost:80:80',
      '[::1',
      '::1',
      'pos.shop.lan.',
      `${'l'.repeat(CONNECTOR_MAX_HOST_LENGTH)}`,
    ]) {
      const error = checkHost(host, hosts);
      expect(error?.code, host).toBe('MISDIRECTED_REQUEST');
      expect(error?.field).toBe('host');
      expect(error?.httpStatus).toBe(421);
    }
  });
});
