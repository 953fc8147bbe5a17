import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteTenantStore } from '../../src/gateway/tenants.js';
import { JOURNAL_FILE_NAME, SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { EconduitSimulator } from '../../src/simulators/econduit/simulator.js';
import { RawTerminal, SEED_REGISTER } from '../gateway/raw-terminal.js';
import { closedPort, tempDir } from '../helpers.js';
import { json, runCli, startGatewayCli } from './run-cli.js';

const gateway = (dataDir: string, ...args: string[]) =>
  runCli(['gateway', ...args, '--data-dir', dataDir]);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** `gateway start` as a real process on free ports; resolves once it says where it listens. */
async function startGateway(dataDir: string, ...extra: string[]) {
  const ports = { tcpPort: await closedPort(), httpPort: await closedPort() };
  await startGatewayCli(dataDir, ports, cleanups, ...extra);
  return ports;
}

/** A raw terminal connection to the gateway, sending `register` and reading the answer. */
async function register(tcpPort: number, text: string): Promise<string> {
  const raw = await RawTerminal.connect(tcpPort);
  cleanups.push(() => raw.destroy());
  raw.send(text);
  return raw.next();
}

describe('ecr-bridge gateway merchant / terminal', () => {
  it('merchant add --json prints one line with the key and password, which then authenticate on the same data directory', async () => {
    const dataDir = tempDir('gateway-cli-');
    const run = await gateway(dataDir, 'merchant', 'add', 'shop-1', '--json');
    expect(run.code).toBe(0);
    const answer = json(run) as { merchant: string; key: string; password: string };
    expect(answer).toEqual({ merchant: 'shop-1', key: answer.key, password: answer.password });
    expect(answer.key).toMatch(/^ek_[A-Za-z]{24}$/);
    expect(answer.password).toMatch(/^[A-Za-z]{32}$/);

    const journal = new SqliteJournal({ path: join(dataDir, JOURNAL_FILE_NAME) });
    try {
      const tenants = new SqliteTenantStore(journal);
      expect(await tenants.authenticate(answer.key, answer.password)).toMatchObject({
        name: 'shop-1',
        apiKey: answer.key,
      });
      expect(await tenants.authenticate(answer.key, 'NotThePassword')).toBeUndefined();
    } finally {
      journal.close();
    }

    // The list shows names and keys, never the password; the log holds neither.
    const [list, listJson] = await Promise.all([
      gateway(dataDir, 'merchant', 'list'),
      gateway(dataDir, 'merchant', 'list', '--json'),
    ]);
    expect(list.stdout).toMatch(/^name\s+key\s+created\n/);
    expect(list.stdout).toContain(`shop-1  ${answer.key}`);
    expect(json(listJson)).toMatchObject({
      count: 1,
      merchants: [{ name: 'shop-1', key: answer.key }],
    });
    const log = readFileSync(join(dataDir, 'logs', 'ecr-bridge.log'), 'utf8');
    for (const output of [list.stdout, listJson.stdout, log]) {
      expect(output).not.toContain(answer.password);
      expect(output).not.toContain('scrypt$');
    }
    expect(log).toContain('gateway merchant added');
  });

  it('merchant add without --json shows the key and password once, saying the password is shown only now', async () => {
    const run = await gateway(tempDir('gateway-cli-'), 'merchant', 'add', 'shop-2');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/key\s+ek_[A-Za-z]{24}\n/);
    expect(run.stdout).toMatch(/password\s+[A-Za-z]{32}\n/);
    expect(run.stdout).toContain('The password is shown only now');
  });

  it('terminal add and list, per merchant and all; a terminal id already taken by another merchant is refused', async () => {
    const dataDir = tempDir('gateway-cli-');
    await Promise.all([
      gateway(dataDir, 'merchant', 'add', 'a'),
      gateway(dataDir, 'merchant', 'add', 'b'),
    ]);
    const added = await gateway(
      dataDir,
      'terminal',
      'add',
      'SN-1',
      '--merchant',
      'a',
      '--type',
      'semi',
      '--json',
    );
    expect(added.code).toBe(0);
    expect(json(added)).toMatchObject({ terminalId: 'SN-1', merchant: 'a', terminalType: 'semi' });
    const [other, taken] = await Promise.all([
      gateway(dataDir, 'terminal', 'add', 'SN-2', '--merchant', 'b', '--type', 'semi'),
      gateway(dataDir, 'terminal', 'add', 'SN-1', '--merchant', 'b', '--type', 'semi', '--json'),
    ]);
    expect(other.code).toBe(0);
    expect(other.stdout).toContain('terminal SN-2 (semi) added to merchant b');
    expect(taken.code).toBe(64);
    expect(json(taken)).toMatchObject({
      error: {
        code: 'INVALID_INPUT',
        field: 'terminalId',
        rule: 'must be unique across all merchants',
      },
    });

    const [all, ofB, text] = await Promise.all([
      gateway(dataDir, 'terminal', 'list', '--json'),
      gateway(dataDir, 'terminal', 'list', '--merchant', 'b', '--json'),
      gateway(dataDir, 'terminal', 'list'),
    ]);
    expect(json(all)).toMatchObject({
      count: 2,
      terminals: [
        { terminalId: 'SN-1', merchant: 'a' },
        { terminalId: 'SN-2', merchant: 'b' },
      ],
    });
    expect(json(ofB)).toMatchObject({ count: 1, terminals: [{ terminalId: 'SN-2' }] });
    expect(text.stdout).toMatch(
      /^terminal\s+merchant\s+type\s+payload\s+secret\s+certificate\s+created\nSN-1\s+a\s+semi\s+semi\s+no\s+no\s/,
    );
  });

  it('bad input: exit 64 (66 for a missing merchant) with the field and rule in the message; nothing written', async () => {
    const dataDir = tempDir('gateway-cli-');
    const [badName, missing, badId, noType, listMissing] = await Promise.all([
      gateway(dataDir, 'merchant', 'add', 'bad name'),
      gateway(dataDir, 'terminal', 'add', 'SN-1', '--merchant', 'ghost', '--type', 'semi'),
      gateway(
        dataDir,
        'terminal',
        'add',
        'SN/1',
        '--merchant',
        'ghost',
        '--type',
        'semi',
        '--json',
      ),
      gateway(dataDir, 'terminal', 'add', 'SN-1', '--merchant', 'ghost'),
      gateway(dataDir, 'terminal', 'list', '--merchant', 'ghost'),
    ]);
    expect(badName.code).toBe(64);
    expect(badName.stderr).toContain(
      'error INVALID_INPUT: name: must be 1–64 characters: letters, digits, . _ - (" " at position 4)',
    );
    expect(missing.code).toBe(66);
    expect(missing.stderr).toContain('error NOT_FOUND: merchant: must name an existing merchant');
    expect(badId.code).toBe(64);
    expect(json(badId)).toMatchObject({ error: { code: 'INVALID_INPUT', field: 'terminalId' } });
    expect(noType.code).toBe(64);
    expect(noType.stderr).toContain("required option '--type <type>' not specified");
    expect(listMissing.code).toBe(66);

    const list = await gateway(dataDir, 'merchant', 'list', '--json');
    expect(json(list)).toEqual({ count: 0, merchants: [] });
  });
});

describe('ecr-bridge gateway: the provisioning says what registers', () => {
  it("terminal add --type TerminalManufacturer says what the gateway accepts; a gateway started without --terminal-type answers the seed's Register OK-REGISTRATION, another TerminalType FAILED-INVALID-TERMINAL-TYPE; a sale then goes through", async () => {
    const dataDir = tempDir('gateway-provisioning-');
    const merchant = json(await gateway(dataDir, 'merchant', 'add', 'M', '--json')) as {
      key: string;
      password: string;
    };
    const added = await gateway(
      dataDir,
      'terminal',
      'add',
      '29531204',
      '--type',
      'TerminalManufacturer',
      '--merchant',
      'M',
    );
    expect(added.code).toBe(0);
    expect(added.stdout).toContain('terminal 29531204 (TerminalManufacturer) added to merchant M');
    expect(added.stdout).toContain(
      'the gateway accepts its Register with "TerminalID":"29531204","TerminalType":"TerminalManufacturer"',
    );
    expect(added.stdout).toContain('its transactions as semi payloads');
    const listed = json(await gateway(dataDir, 'terminal', 'list', '--json'));
    expect(listed).toMatchObject({
      terminals: [
        { terminalId: '29531204', terminalType: 'TerminalManufacturer', payload: 'semi' },
      ],
    });

    const { tcpPort, httpPort } = await startGateway(dataDir);
    expect(await register(tcpPort, SEED_REGISTER)).toBe('OK-REGISTRATION');
    expect(
      await register(tcpPort, SEED_REGISTER.replace('"TerminalManufacturer"', '"Valor"')),
    ).toBe('FAILED-INVALID-TERMINAL-TYPE');

    // A terminal of that type behind the gateway takes a sale (its payloads are SEMI JSON).
    const simulator = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: tcpPort }],
      terminalId: '29531204',
      terminalType: 'TerminalManufacturer',
    }).start(10_000);
    cleanups.push(() => simulator.stop());
    const sale = await runCli(
      [
        'gateway',
        'test',
        '--terminal',
        '29531204',
        '--amount',
        '1.00',
        '--url',
        `http://127.0.0.1:${httpPort}`,
        '--json',
      ],
      { ECR_BRIDGE_GATEWAY_KEY: merchant.key, ECR_BRIDGE_GATEWAY_PASSWORD: merchant.password },
    );
    expect(sale.code, sale.stderr).toBe(0);
    expect(json(sale)).toMatchObject({ outcome: 'approved', amount: '1.00' });
    expect(simulator.ledger.count).toBe(1);
  });

  it('gateway start --terminal-type is an allow-list: a provisioned terminal of a type outside it is refused FAILED-INVALID-TERMINAL-TYPE, one inside it registers', async () => {
    const dataDir = tempDir('gateway-allow-list-');
    expect((await gateway(dataDir, 'merchant', 'add', 'M')).code).toBe(0);
    for (const [id, type] of [
      ['29531204', 'TerminalManufacturer'],
      ['29531205', 'Valor'],
    ] as const) {
      expect(
        (await gateway(dataDir, 'terminal', 'add', id, '--type', type, '--merchant', 'M')).code,
      ).toBe(0);
    }
    const { tcpPort } = await startGateway(dataDir, '--terminal-type', 'Valor', 'Dejavoo');
    expect(await register(tcpPort, SEED_REGISTER)).toBe('FAILED-INVALID-TERMINAL-TYPE');
    expect(
      await register(
        tcpPort,
        SEED_REGISTER.replace('"TerminalManufacturer"', '"Valor"').replace(
          '"29531204"',
          '"29531205"',
        ),
      ),
    ).toBe('OK-REGISTRATION');
  });

  it('terminal add --payload other than semi: exit 64 naming payload and the formats there are; nothing written', async () => {
    const dataDir = tempDir('gateway-payload-');
    expect((await gateway(dataDir, 'merchant', 'add', 'M')).code).toBe(0);
    const [refused, explicit] = await Promise.all([
      gateway(
        dataDir,
        'terminal',
        'add',
        'SN-1',
        '--type',
        'T',
        '--merchant',
        'M',
        '--payload',
        'json',
        '--json',
      ),
      gateway(
        dataDir,
        'terminal',
        'add',
        'SN-2',
        '--type',
        'T',
        '--merchant',
        'M',
        '--payload',
        'semi',
        '--json',
      ),
    ]);
    expect(refused.code).toBe(64);
    expect(json(refused)).toMatchObject({
      error: { code: 'INVALID_INPUT', field: 'payload', rule: 'must be one of: semi' },
    });
    expect(explicit.code).toBe(0);
    expect(json(explicit)).toMatchObject({ terminalId: 'SN-2', payload: 'semi' });
    expect(json(await gateway(dataDir, 'terminal', 'list', '--json'))).toMatchObject({
      count: 1,
      terminals: [{ terminalId: 'SN-2' }],
    });
  });
});
