import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { Gateway } from '../../src/gateway/gateway.js';
import { SqliteTenantStore } from '../../src/gateway/tenants.js';
import { JOURNAL_FILE_NAME, SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir, waitFor } from '../helpers.js';
import { json, runCli, startCli } from './run-cli.js';

// Issue 17, part 1, from the command line: `gateway terminal add --secret | --generate-secret
// | --require-certificate`, `gateway terminal update`, and `simulate econduit` sending the
// secret from ECR_BRIDGE_TERMINAL_SECRET. Real processes on a real SQLite file.

const SECRET = 'Cli-provided_secret.value42';

const gateway = (dataDir: string, ...args: string[]) =>
  runCli(['gateway', ...args, '--data-dir', dataDir]);

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A data directory with merchant `shop`. */
async function withMerchant(): Promise<string> {
  const dataDir = tempDir('identity-cli-');
  expect((await gateway(dataDir, 'merchant', 'add', 'shop')).code).toBe(0);
  return dataDir;
}

/** The stored secret hash of a terminal, read straight from the database file. */
function storedHash(dataDir: string, terminalId: string): string | null {
  const db = new Database(join(dataDir, JOURNAL_FILE_NAME), { readonly: true });
  try {
    const row = db
      .prepare('SELECT secret_hash FROM gateway_terminals WHERE terminal_id = ?')
      .get(terminalId) as { secret_hash: string | null } | undefined;
    return row?.secret_hash ?? null;
  } finally {
    db.close();
  }
}

/** Every byte ecr-bridge wrote in the data directory: the database (and its WAL) and the log. */
function everythingOnDisk(dataDir: string): string {
  return ['ecr-bridge.db', 'ecr-bridge.db-wal', join('logs', 'ecr-bridge.log')]
    .map((name) => join(dataDir, name))
    .filter((path) => existsSync(path))
    .map((path) => readFileSync(path).toString('latin1'))
    .join('\n');
}

async function checkSecret(dataDir: string, terminalId: string, secret: string): Promise<boolean> {
  const journal = new SqliteJournal({ path: join(dataDir, JOURNAL_FILE_NAME) });
  try {
    return await new SqliteTenantStore(journal).checkTerminalSecret(terminalId, secret);
  } finally {
    journal.close();
  }
}

const add = ['terminal', 'add', 'SN-S', '--merchant', 'shop', '--type', 'Valor'];

describe('ecr-bridge gateway terminal add / update: a registration secret', () => {
  it('--secret stores a scrypt hash, never the secret: not in the database file, the log, the answer or the list', async () => {
    const dataDir = await withMerchant();
    const run = await gateway(dataDir, ...add, '--secret', SECRET, '--json');
    expect(run.code, run.stderr).toBe(0);
    expect(json(run)).toMatchObject({
      terminalId: 'SN-S',
      hasSecret: true,
      requireCertificate: false,
    });
    expect(run.stdout).not.toContain(SECRET);
    expect(storedHash(dataDir, 'SN-S')).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await checkSecret(dataDir, 'SN-S', SECRET)).toBe(true);
    expect(await checkSecret(dataDir, 'SN-S', `${SECRET}x`)).toBe(false);

    const [list, listJson] = await Promise.all([
      gateway(dataDir, 'terminal', 'list'),
      gateway(dataDir, 'terminal', 'list', '--json'),
    ]);
    expect(list.stdout).toMatch(/\nSN-S\s+shop\s+Valor\s+semi\s+yes\s+no\s/);
    expect(json(listJson)).toMatchObject({ terminals: [{ terminalId: 'SN-S', hasSecret: true }] });
    for (const output of [list.stdout, listJson.stdout, everythingOnDisk(dataDir)]) {
      expect(output).not.toContain(SECRET);
    }
    expect(list.stdout + listJson.stdout).not.toContain('scrypt$');
  });

  it('--generate-secret prints a strong one only this once; the hash verifies it; nothing else shows it', async () => {
    const dataDir = await withMerchant();
    const run = await gateway(dataDir, ...add, '--generate-secret', '--json');
    expect(run.code, run.stderr).toBe(0);
    const secret = (json(run) as { secret: string }).secret;
    expect(secret).toMatch(/^[A-Za-z]{32}$/);
    expect(await checkSecret(dataDir, 'SN-S', secret)).toBe(true);
    const text = await gateway(
      dataDir,
      'terminal',
      'add',
      'SN-T',
      '--merchant',
      'shop',
      '--type',
      'Valor',
      '--generate-secret',
    );
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/secret\s+[A-Za-z]{32}\n/);
    expect(text.stdout).toContain('The secret is shown only now');
    const list = await gateway(dataDir, 'terminal', 'list', '--json');
    expect(list.stdout).not.toContain(secret);
    expect(everythingOnDisk(dataDir)).not.toContain(secret);
  });

  it('a bad secret is refused naming the field and the rule, exit 64, nothing written; two secret flags are refused', async () => {
    const dataDir = await withMerchant();
    const short = await gateway(dataDir, ...add, '--secret', 'too-short', '--json');
    expect(short.code).toBe(64);
    expect(json(short)).toMatchObject({
      error: {
        code: 'INVALID_INPUT',
        field: 'secret',
        rule: 'must be 16–128 characters: letters, digits, . _ ~ + / = -',
      },
    });
    const spaced = await gateway(dataDir, ...add, '--secret', 'has a space in it, sixteen+');
    expect(spaced.code).toBe(64);
    expect(spaced.stderr).toContain('error INVALID_INPUT: secret: must be 16–128 characters');
    expect(spaced.stderr).toContain('position 4 is not allowed');
    expect(spaced.stderr).not.toContain('has a space');
    const both = await gateway(dataDir, ...add, '--secret', SECRET, '--generate-secret', '--json');
    expect(both.code).toBe(64);
    expect(json(both)).toMatchObject({ error: { field: '--generate-secret' } });
    expect(json(await gateway(dataDir, 'terminal', 'list', '--json'))).toMatchObject({ count: 0 });
  });

  it('terminal update rotates, clears and sets the certificate requirement; an unknown terminal is 66', async () => {
    const dataDir = await withMerchant();
    expect((await gateway(dataDir, ...add, '--secret', SECRET)).code).toBe(0);
    const rotated = await gateway(
      dataDir,
      'terminal',
      'update',
      'SN-S',
      '--generate-secret',
      '--json',
    );
    expect(rotated.code, rotated.stderr).toBe(0);
    const fresh = (json(rotated) as { secret: string }).secret;
    expect(await checkSecret(dataDir, 'SN-S', SECRET)).toBe(false);
    expect(await checkSecret(dataDir, 'SN-S', fresh)).toBe(true);

    const cert = await gateway(
      dataDir,
      'terminal',
      'update',
      'SN-S',
      '--require-certificate',
      '--clear-secret',
      '--json',
    );
    expect(json(cert)).toMatchObject({ hasSecret: false, requireCertificate: true });
    expect(json(cert)).not.toHaveProperty('secret');
    expect(storedHash(dataDir, 'SN-S')).toBeNull();
    const off = await gateway(
      dataDir,
      'terminal',
      'update',
      'SN-S',
      '--no-require-certificate',
      '--json',
    );
    expect(json(off)).toMatchObject({ requireCertificate: false });

    const nothing = await gateway(dataDir, 'terminal', 'update', 'SN-S', '--json');
    expect(nothing.code).toBe(64);
    const unknown = await gateway(
      dataDir,
      'terminal',
      'update',
      'SN-NONE',
      '--require-certificate',
      '--json',
    );
    expect(unknown.code).toBe(66);
    expect(json(unknown)).toMatchObject({ error: { code: 'NOT_FOUND', field: 'terminalId' } });
  });
});

describe('ecr-bridge simulate econduit: the secret from ECR_BRIDGE_TERMINAL_SECRET', () => {
  it('registers a terminal provisioned with a secret; without it the same terminal is refused', async () => {
    const dataDir = tempDir('identity-cli-');
    const journal = new SqliteJournal({ path: join(dataDir, 'journal.db') });
    cleanups.push(() => journal.close());
    const tenants = new SqliteTenantStore(journal);
    tenants.addMerchant('shop');
    tenants.addTerminal({
      terminalId: 'SN-SIM',
      merchant: 'shop',
      terminalType: 'Valor',
      secret: SECRET,
    });
    const gw = await new Gateway({ journal, tenants, tcpPort: 0, httpPort: 0 }).start();
    cleanups.push(() => gw.close());

    const simulate = (env: NodeJS.ProcessEnv) => {
      const run = startCli(
        [
          'simulate',
          'econduit',
          '--gateway',
          `127.0.0.1:${gw.tcpPort}`,
          '--id',
          'SN-SIM',
          '--json',
        ],
        env,
      );
      cleanups.push(() => {
        if (run.child.exitCode === null) run.child.kill('SIGKILL');
      });
      return run;
    };
    const without = simulate({ ECR_BRIDGE_TERMINAL_SECRET: '' });
    await waitFor(
      () => gw.listener.stats.refusedCredentials['secret-missing'] >= 1,
      20_000,
      'the registration without a secret refused',
    );
    without.child.kill('SIGTERM');
    await without.done;
    expect(gw.listener.isOnline('SN-SIM')).toBe(false);

    const withSecret = simulate({ ECR_BRIDGE_TERMINAL_SECRET: SECRET });
    await waitFor(() => gw.listener.isOnline('SN-SIM'), 20_000, 'the simulated terminal online');
    withSecret.child.kill('SIGTERM');
    const done = await withSecret.done;
    expect(done.stdout).toContain('"terminalSecret":true');
    expect(done.stdout + done.stderr).not.toContain(SECRET);
    expect(gw.listener.stats.refusedCredentials['secret-wrong']).toBe(0);
  });
});
