import { describe, expect, it } from 'vitest';
import { EcrError } from '../../src/core/errors.js';
import {
  DEFAULT_PORTS,
  VALID_ADDRESS_FORMS,
  parseTerminalAddress,
} from '../../src/core/terminal-address.js';
import { thrownBy } from '../helpers.js';

/** Expects `address` to be refused as INVALID_TERMINAL_ADDRESS on `terminal`, and returns the error. */
function refusal(address: string, protocolOverride?: string): EcrError {
  const error = thrownBy(() => parseTerminalAddress(address, protocolOverride));
  expect(error.code).toBe('INVALID_TERMINAL_ADDRESS');
  expect(error.field).toBe('terminal');
  expect(error.message.startsWith('terminal: ')).toBe(true);
  for (const form of VALID_ADDRESS_FORMS) expect(error.message).toContain(form);
  return error;
}

describe('parseTerminalAddress', () => {
  it('parses a full payable+ws address with its options, keeping secrets out of the id', () => {
    expect(parseTerminalAddress('payable+ws://10.0.0.5:45454?token=T&pos=POS-1')).toEqual({
      protocol: 'payable',
      transport: 'ws',
      id: 'payable+ws://10.0.0.5:45454',
      host: '10.0.0.5',
      port: 45454,
      params: { token: 'T', pos: 'POS-1' },
    });
  });

  it('parses every protocol+transport pair', () => {
    expect(parseTerminalAddress('semi+ws://pos.local:6000')).toMatchObject({
      protocol: 'semi',
      transport: 'ws',
      id: 'semi+ws://pos.local:6000',
      host: 'pos.local',
      port: 6000,
    });
    expect(parseTerminalAddress('semi+tcp://10.0.0.9:5001')).toMatchObject({
      protocol: 'semi',
      transport: 'tcp',
      id: 'semi+tcp://10.0.0.9:5001',
    });
    expect(parseTerminalAddress('concert+tcp://10.0.0.7:9999')).toMatchObject({
      protocol: 'concert',
      transport: 'tcp',
      id: 'concert+tcp://10.0.0.7:9999',
      port: 9999,
    });
    expect(parseTerminalAddress('concert+serial:///dev/ttyUSB1')).toEqual({
      protocol: 'concert',
      transport: 'serial',
      id: 'concert+serial:///dev/ttyUSB1',
      path: '/dev/ttyUSB1',
      params: {},
    });
  });

  it('reads ws:// as payable', () => {
    expect(parseTerminalAddress('ws://10.0.0.5:45455?token=T')).toEqual({
      protocol: 'payable',
      transport: 'ws',
      id: 'payable+ws://10.0.0.5:45455',
      host: '10.0.0.5',
      port: 45455,
      params: { token: 'T' },
    });
  });

  it('reads tcp:// as semi', () => {
    expect(parseTerminalAddress('tcp://10.0.0.6:5001')).toEqual({
      protocol: 'semi',
      transport: 'tcp',
      id: 'semi+tcp://10.0.0.6:5001',
      host: '10.0.0.6',
      port: 5001,
      params: {},
    });
  });

  it('reads serial:// as concert with the device path and options', () => {
    expect(parseTerminalAddress('serial:///dev/ttyACM0?baud=9600')).toEqual({
      protocol: 'concert',
      transport: 'serial',
      id: 'concert+serial:///dev/ttyACM0',
      path: '/dev/ttyACM0',
      params: { baud: '9600' },
    });
  });

  it.each([
    { address: 'payable+ws://10.0.0.5', protocol: 'payable' as const },
    { address: 'ws://10.0.0.5', protocol: 'payable' as const },
    { address: 'semi+tcp://10.0.0.5', protocol: 'semi' as const },
    { address: 'tcp://10.0.0.5', protocol: 'semi' as const },
    { address: 'semi+ws://10.0.0.5', protocol: 'semi' as const },
    { address: 'concert+tcp://10.0.0.5', protocol: 'concert' as const },
  ])('uses the default port of $protocol for $address', ({ address, protocol }) => {
    const parsed = parseTerminalAddress(address);
    expect(parsed.protocol).toBe(protocol);
    expect(parsed.port).toBe(DEFAULT_PORTS[protocol]);
    expect(parsed.id.endsWith(`:${DEFAULT_PORTS[protocol]}`)).toBe(true);
  });

  it('has the vendors’ default ports', () => {
    expect(DEFAULT_PORTS).toEqual({ payable: 45454, semi: 5000, concert: 8888 });
  });

  it.each(['ws://10.0.0.5:80', 'payable+ws://10.0.0.5:80', 'tcp://10.0.0.5:80'])(
    'keeps the explicit port 80 in %s',
    (address) => {
      const parsed = parseTerminalAddress(address);
      expect(parsed.port).toBe(80);
      expect(parsed.id.endsWith(':80')).toBe(true);
    },
  );

  it('brackets an IPv6 host in the id', () => {
    const parsed = parseTerminalAddress('payable+ws://[::1]:45454');
    expect(parsed.id).toBe('payable+ws://[::1]:45454');
    expect(parsed.port).toBe(45454);
  });

  it('gives the same id whatever the options', () => {
    const a = parseTerminalAddress('payable+ws://10.0.0.5:45454?token=A');
    const b = parseTerminalAddress('ws://10.0.0.5:45454?token=B&pos=2');
    expect(a.id).toBe(b.id);
  });

  it.each(['payable', 'semi', 'concert'] as const)('parses simulator:%s', (protocol) => {
    expect(parseTerminalAddress(`simulator:${protocol}`)).toEqual({
      protocol,
      transport: 'simulator',
      id: `simulator:${protocol}`,
      params: {},
    });
  });

  it('lets the --protocol override win over the scheme', () => {
    expect(parseTerminalAddress('ws://10.0.0.5:6000', 'semi')).toMatchObject({
      protocol: 'semi',
      transport: 'ws',
      id: 'semi+ws://10.0.0.5:6000',
    });
    expect(parseTerminalAddress('tcp://10.0.0.5', 'concert')).toMatchObject({
      protocol: 'concert',
      transport: 'tcp',
      port: DEFAULT_PORTS.concert,
      id: `concert+tcp://10.0.0.5:${DEFAULT_PORTS.concert}`,
    });
    expect(parseTerminalAddress('semi+tcp://10.0.0.5:1', 'concert').protocol).toBe('concert');
    expect(parseTerminalAddress('simulator:payable', 'semi')).toMatchObject({
      protocol: 'semi',
      id: 'simulator:semi',
    });
  });

  it('refuses an unknown --protocol override', () => {
    const error = refusal('ws://10.0.0.5:1', 'foo');
    expect(error.rule).toBe('protocol must be one of payable, semi, concert');
  });

  it('refuses an override that cannot use the transport', () => {
    const error = refusal('tcp://10.0.0.5:1', 'payable');
    expect(error.rule).toBe('payable terminals are reached over ws, not tcp');
  });

  it.each([
    { name: 'an unknown protocol', address: 'foo+ws://h:1', rule: 'names an unknown protocol' },
    { name: 'an unknown short form', address: 'http://h:1', rule: 'names an unknown protocol' },
    {
      name: 'payable over tcp',
      address: 'payable+tcp://h:1',
      rule: 'payable terminals are reached over ws, not tcp',
    },
    {
      name: 'payable over serial',
      address: 'payable+serial:///dev/x',
      rule: 'payable terminals are reached over ws, not serial',
    },
    {
      name: 'semi over serial',
      address: 'semi+serial:///dev/x',
      rule: 'semi terminals are reached over ws or tcp, not serial',
    },
    {
      name: 'concert over ws',
      address: 'concert+ws://h:1',
      rule: 'concert terminals are reached over serial or tcp, not ws',
    },
    { name: 'text that is not a URL', address: 'not a url', rule: /must be a URL/ },
    { name: 'an empty address', address: '', rule: /must be a URL/ },
    { name: 'a bare IP and port', address: '10.0.0.5:45454', rule: /must be a URL/ },
    {
      name: 'a bare host name and port',
      address: 'localhost:45454',
      rule: 'names an unknown protocol',
    },
    {
      name: 'an unknown simulator',
      address: 'simulator:unknown',
      rule: 'simulator must be one of payable, semi, concert',
    },
    {
      name: 'a path on a network address',
      address: 'payable+ws://h:1/path',
      rule: 'must not have a path',
    },
    { name: 'a path on a ws:// address', address: 'ws://h:1/x', rule: 'must not have a path' },
    { name: 'a path on a tcp:// address', address: 'tcp://h:1/x', rule: 'must not have a path' },
    { name: 'a network address with no host', address: 'tcp:///x', rule: 'must name a host' },
    {
      name: 'a serial address with a host',
      address: 'serial://host/dev/ttyACM0',
      rule: 'serial addresses name a device: serial:///dev/ttyACM0',
    },
    {
      name: 'a serial address with no device',
      address: 'serial:///',
      rule: 'serial addresses name a device: serial:///dev/ttyACM0',
    },
    {
      name: 'an address over 2048 characters',
      address: `ws://${'a'.repeat(2050)}:1`,
      rule: 'must be at most 2048 characters',
    },
  ])('refuses $name', ({ address, rule }) => {
    const error = refusal(address);
    expect(error.rule).toMatch(rule);
    expect(error.message).toMatch(rule);
  });

  it('accepts an address of exactly 2048 characters', () => {
    const prefix = 'ws://10.0.0.5:1?pad=';
    const address = prefix + 'a'.repeat(2048 - prefix.length);
    expect(address).toHaveLength(2048);
    expect(parseTerminalAddress(address).params.pad).toHaveLength(2048 - prefix.length);
  });

  it('does not echo an over-long address whole in the message', () => {
    const error = refusal(`ws://h:1?x=${'z'.repeat(5000)}`);
    expect(error.message.length).toBeLessThan(1000);
  });

  it.each([
    'foo+ws://h:1?token=SECRET123',
    'payable+tcp://h:1?token=SECRET123',
    'payable+ws://h:1/path?token=SECRET123',
    'semi+serial:///dev/x?token=SECRET123',
    'simulator:payable?token=SECRET123',
    `ws://h:1?token=SECRET123&pad=${'p'.repeat(3000)}`,
  ])('keeps the token of %s out of the message', (address) => {
    const error = refusal(address);
    expect(error.message).not.toContain('SECRET123');
    expect(JSON.stringify(error.toJSON())).not.toContain('SECRET123');
  });

  it('keeps the token out of the message when the override is refused', () => {
    const error = refusal('ws://h:1?token=SECRET123', 'foo');
    expect(error.message).not.toContain('SECRET123');
  });

  it('echoes the address without its query in the message', () => {
    const error = refusal('foo+ws://h:1?token=SECRET123');
    expect(error.message).toContain('"foo+ws://h:1?…"');
  });
});
