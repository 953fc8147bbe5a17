import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EcrError } from '../../src/core/errors.js';
import { EconduitAgent } from '../../src/agent/econduit-agent.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { SqliteTenantStore } from '../../src/gateway/tenants.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { encodeFrame } from '../../src/protocols/econduit/framer.js';
import { EconduitSimulator } from '../../src/simulators/econduit/simulator.js';
import { loadTlsServer, TLS_OPTION_NAMES } from '../../src/transports/tls.js';
import { json, runCli, startCli } from '../cli/run-cli.js';
import { closedPort, tempDir, waitFor } from '../helpers.js';
import { makeCertificates, type TestCertificates } from './certificates.js';
import {
  cleanups,
  closedByServer,
  httpsCall,
  letters,
  rawClient,
  runCleanups,
  startGateway,
} from './support.js';

let certs: TestCertificates;
let ca: string;

beforeAll(() => {
  certs = makeCertificates(tempDir('security-certs-'));
  ca = readFileSync(certs.caCert, 'utf8');
});

afterEach(runCleanups);

const tlsFiles = () => ({ certFile: certs.serverCert, keyFile: certs.serverKey });

function registerText(terminalId: string): string {
  return JSON.stringify({
    Command: 'Register',
    TerminalType: 'Valor',
    TerminalModel: 'VL100',
    TerminalID: terminalId,
    SoftwareVersion: 'test',
    AckHeartbeat: 'true',
  });
}

/** Runs `fn` and returns the EcrError it throws. */
function refusal(fn: () => unknown): EcrError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(EcrError);
    return error as EcrError;
  }
  throw new Error('expected a refusal');
}

describe('TLS on the gateway: terminals over TLS, POS programs over HTTPS', () => {
  it('a simulated terminal registers over TLS and a POS sale over HTTPS is approved end to end, charged once', async () => {
    const { gateway, merchant, terminalId, journal } = await startGateway({ tls: tlsFiles() });
    expect(gateway.secure).toBe(true);
    const simulator = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      terminalId,
      tls: { ca },
    }).start(15_000);
    cleanups.push(() => simulator.stop());
    await waitFor(() => gateway.listener.isOnline(terminalId), 15_000, 'the terminal online');

    const refId = `INV-${letters(8)}`;
    const query = new URLSearchParams({
      command: 'Sale',
      key: merchant.key,
      password: merchant.password,
      amount: '2.50',
      refID: refId,
      terminalId,
    });
    const answer = await httpsCall(
      `https://127.0.0.1:${gateway.httpPort}/services/api.asmx/runTransaction?${query.toString()}`,
      ca,
    );
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({
      ResultCode: 'Approved',
      ResultFinal: true,
      Last4: '0010',
      RefID: refId,
    });
    // The host name is checked too: the certificate names localhost as well as 127.0.0.1.
    const health = await httpsCall(`https://localhost:${gateway.httpPort}/healthz`, ca);
    expect(JSON.parse(health.text)).toMatchObject({ status: 'ok', terminalsOnline: 1 });
    expect(simulator.ledger.count).toBe(1);
    expect(journal.find({ merchantId: merchant.name, terminalId, reference: refId })).toMatchObject(
      { state: 'approved' },
    );
    expect(gateway.listener.stats.tlsRefused).toBe(0);
    // The dashboard's session cookie is marked Secure over HTTPS.
    const login = await httpsCall(`https://127.0.0.1:${gateway.httpPort}/ui/api/login`, ca, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login: merchant.key, password: merchant.password }),
    });
    expect(login.status).toBe(200);
    expect(String(login.headers['set-cookie'])).toMatch(/; Secure/);
  });

  it('a plain TCP terminal on the TLS listener is refused at its first bytes and never registers', async () => {
    const { gateway, terminalId } = await startGateway({ tls: tlsFiles() });
    const plain = await rawClient(gateway.tcpPort);
    plain.socket.write(encodeFrame(registerText(terminalId)));
    await closedByServer(plain, 15_000);
    expect(plain.received()).not.toContain('REGISTRATION');
    expect(gateway.listener.isOnline(terminalId)).toBe(false);
    expect(gateway.listener.stats.registrations['OK-REGISTRATION']).toBe(0);
    expect(gateway.listener.stats.tlsRefused).toBe(1);
    expect(await gateway.metrics.text()).toMatch(
      /ecr_gateway_tls_handshake_failures_total\{listener="terminals"\} 1/,
    );
  });

  it('plain HTTP to the HTTPS API gets no answer, and a plain payment call charges nothing', async () => {
    const { gateway, merchant, terminalId, journal } = await startGateway({ tls: tlsFiles() });
    const simulator = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      terminalId,
      tls: { ca },
    }).start(15_000);
    cleanups.push(() => simulator.stop());
    await waitFor(() => gateway.listener.isOnline(terminalId), 15_000, 'the terminal online');

    const query = new URLSearchParams({
      command: 'Sale',
      key: merchant.key,
      password: merchant.password,
      amount: '3.00',
      refID: `INV-${letters(8)}`,
      terminalId,
    });
    const plain = await rawClient(gateway.httpPort);
    plain.socket.write(
      `GET /services/api.asmx/runTransaction?${query.toString()} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    );
    await closedByServer(plain, 15_000);
    expect(plain.received()).not.toContain('HTTP/1.1');
    await expect(fetch(`http://127.0.0.1:${gateway.httpPort}/healthz`)).rejects.toThrow();
    expect(journal.list({})).toEqual([]);
    expect(simulator.ledger.count).toBe(0);
    expect(await gateway.metrics.text()).toMatch(
      /ecr_gateway_tls_handshake_failures_total\{listener="http"\} [1-9]/,
    );
  });

  it('an agent that trusts another CA refuses the gateway: never registered, "POS Offline" with the reason', async () => {
    const { gateway, terminalId } = await startGateway({ tls: tlsFiles() });
    const agent = new EconduitAgent({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      registration: {
        terminalType: 'Valor',
        terminalModel: 'VL100',
        terminalId,
        softwareVersion: 'test',
        ackHeartbeat: true,
      },
      tls: { ca: readFileSync(certs.otherCaCert, 'utf8') },
      backoffBaseMs: 50,
      backoffMaxMs: 200,
    });
    cleanups.push(() => agent.stop());
    const offline = once(agent, 'offline') as Promise<[string]>;
    agent.start();
    const [reason] = await offline;
    expect(reason).toMatch(/not signed by a trusted CA/);
    expect(agent.status).toBe('POS Offline');
    expect(gateway.listener.isOnline(terminalId)).toBe(false);
    expect(gateway.listener.stats.registrations['OK-REGISTRATION']).toBe(0);
  });

  it('an agent set for TLS never speaks plain: against a plain gateway it never registers', async () => {
    const { gateway, terminalId } = await startGateway();
    expect(gateway.secure).toBe(false);
    const agent = new EconduitAgent({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      registration: {
        terminalType: 'Valor',
        terminalModel: 'VL100',
        terminalId,
        softwareVersion: 'test',
        ackHeartbeat: true,
      },
      tls: { ca },
      connectTimeoutMs: 1_000,
      backoffBaseMs: 50,
      backoffMaxMs: 200,
    });
    cleanups.push(() => agent.stop());
    const offline = once(agent, 'offline') as Promise<[string]>;
    agent.start();
    const [reason] = await offline;
    expect(reason).toMatch(/timed out|does not speak TLS|connection failed/);
    expect(gateway.listener.isOnline(terminalId)).toBe(false);
    // Nothing the agent sent was a Register the gateway could accept.
    expect(gateway.listener.stats.registrations['OK-REGISTRATION']).toBe(0);
  });

  it('bad TLS settings are refused before anything listens, naming the setting and the path', async () => {
    const dir = tempDir('security-badtls-');
    const journal = new SqliteJournal({ path: `${dir}/journal.db` });
    cleanups.push(() => journal.close());
    const tenants = new SqliteTenantStore(journal);
    const gateway = (tls: Record<string, string>) => () =>
      new Gateway({ journal, tenants, tcpPort: 0, httpPort: 0, tls });

    const missing = refusal(gateway({ certFile: `${dir}/nowhere.crt`, keyFile: certs.serverKey }));
    expect(missing).toMatchObject({ code: 'INVALID_INPUT', field: 'tls.certFile' });
    expect(missing.message).toContain('nowhere.crt');
    expect(refusal(gateway({ certFile: certs.notPem, keyFile: certs.serverKey }))).toMatchObject({
      code: 'INVALID_INPUT',
      field: 'tls.certFile',
      rule: expect.stringMatching(/PEM certificate/) as unknown,
    });
    expect(refusal(gateway({ certFile: certs.serverCert, keyFile: certs.notPem }))).toMatchObject({
      field: 'tls.keyFile',
      rule: expect.stringMatching(/PEM private key/) as unknown,
    });
    expect(refusal(gateway({ certFile: certs.serverCert, keyFile: certs.otherKey }))).toMatchObject(
      {
        field: 'tls.keyFile',
        rule: expect.stringMatching(/private key of the certificate/) as unknown,
      },
    );
    expect(refusal(gateway({ certFile: certs.serverCert }))).toMatchObject({
      field: 'tls.keyFile',
      rule: expect.stringMatching(/is required with TLS/) as unknown,
    });
    expect(
      refusal(gateway({ certFile: certs.serverCert, keyFile: certs.serverKey, keyfile: 'x' })),
    ).toMatchObject({ code: 'INVALID_INPUT', field: 'keyfile' });
    // The test certificates are good for 2 days: five days on, they have expired.
    expect(
      refusal(() => loadTlsServer(tlsFiles(), TLS_OPTION_NAMES, Date.now() + 5 * 86_400_000)),
    ).toMatchObject({
      field: 'tls.certFile',
      rule: expect.stringMatching(/has not expired/) as unknown,
    });
    // …and an hour before they were made, they are not valid yet (every client would refuse).
    expect(
      refusal(() => loadTlsServer(tlsFiles(), TLS_OPTION_NAMES, Date.now() - 3_600_000)),
    ).toMatchObject({
      field: 'tls.certFile',
      rule: expect.stringMatching(/already valid/) as unknown,
    });
    // PEM text works as well as files; the agent checks its CA too.
    expect(
      new Gateway({
        journal,
        tenants,
        tls: {
          cert: readFileSync(certs.serverCert, 'utf8'),
          key: readFileSync(certs.serverKey, 'utf8'),
        },
      }).secure,
    ).toBe(true);
    expect(
      refusal(
        () =>
          new EconduitAgent({
            endpoints: [{ host: '127.0.0.1', port: 9 }],
            registration: {
              terminalType: 'Valor',
              terminalModel: 'VL100',
              terminalId: 'TERMBAD',
              softwareVersion: 'test',
              ackHeartbeat: true,
            },
            tls: { ca: 'not a certificate' },
          }),
      ),
    ).toMatchObject({ code: 'INVALID_INPUT', field: 'tls.ca' });
  });
});

describe('TLS from the command line', () => {
  it('gateway start refuses bad --tls-cert/--tls-key with exit 64 naming the flag; simulate and gateway test check --tls-ca', async () => {
    const dataDir = tempDir('security-cli-');
    const start = (...args: string[]) =>
      runCli([
        'gateway',
        'start',
        '--data-dir',
        dataDir,
        '--tcp-port',
        '0',
        '--http-port',
        '0',
        ...args,
      ]);
    const missing = await start(
      '--tls-cert',
      `${dataDir}/nowhere.pem`,
      '--tls-key',
      certs.serverKey,
    );
    expect(missing.code).toBe(64);
    expect(missing.stderr).toContain('--tls-cert');
    expect(missing.stderr).toContain('nowhere.pem');
    const mismatched = await start('--tls-cert', certs.serverCert, '--tls-key', certs.otherKey);
    expect(mismatched.code).toBe(64);
    expect(mismatched.stderr).toMatch(/--tls-key: must be the private key of the certificate/);
    const alone = await start('--tls-cert', certs.serverCert);
    expect(alone.code).toBe(64);
    expect(alone.stderr).toContain('--tls-key');

    const simulate = await runCli([
      'simulate',
      'econduit',
      '--gateway',
      '127.0.0.1:9',
      '--tls-ca',
      certs.notPem,
    ]);
    expect(simulate.code).toBe(64);
    expect(simulate.stderr).toContain('--tls-ca');
    const wrongProtocol = await runCli(['simulate', 'semi', '--tls', '--data-dir', dataDir]);
    expect(wrongProtocol.code).toBe(64);
    expect(wrongProtocol.stderr).toContain('--tls');
    const test = await runCli([
      'gateway',
      'test',
      '--terminal',
      'TERMX',
      '--amount',
      '1.00',
      '--key',
      'k',
      '--password',
      'p',
      '--url',
      'http://127.0.0.1:9',
      '--tls-ca',
      certs.caCert,
    ]);
    expect(test.code).toBe(64);
    expect(test.stderr).toContain('--tls-ca');
  });

  it('gateway start --tls-cert --tls-key, simulate econduit --tls-ca and gateway test --url https:// --tls-ca: approved, exit 0', async () => {
    const dataDir = tempDir('security-cli-');
    const merchant = json(
      await runCli(['gateway', 'merchant', 'add', 'shop', '--json', '--data-dir', dataDir]),
    ) as { key: string; password: string };
    const terminalId = `TERM${letters(8)}`;
    const added = await runCli([
      'gateway',
      'terminal',
      'add',
      terminalId,
      '--merchant',
      'shop',
      '--type',
      'Valor',
      '--data-dir',
      dataDir,
    ]);
    expect(added.code).toBe(0);
    const [tcpPort, httpPort] = [await closedPort(), await closedPort()];
    const gateway = startCli([
      'gateway',
      'start',
      '--data-dir',
      dataDir,
      '--tcp-port',
      String(tcpPort),
      '--http-port',
      String(httpPort),
      '--json',
      '--tls-cert',
      certs.serverCert,
      '--tls-key',
      certs.serverKey,
    ]);
    cleanups.push(() => {
      if (gateway.child.exitCode === null) gateway.child.kill('SIGKILL');
    });
    let out = '';
    gateway.child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    await waitFor(() => out.includes('\n') || gateway.child.exitCode !== null, 30_000, 'gateway');
    expect(JSON.parse(out.trim())).toMatchObject({
      tls: true,
      http: `https://127.0.0.1:${httpPort}`,
    });

    const terminal = startCli([
      'simulate',
      'econduit',
      '--gateway',
      `127.0.0.1:${tcpPort}`,
      '--id',
      terminalId,
      '--tls-ca',
      certs.caCert,
      '--json',
      '--data-dir',
      dataDir,
    ]);
    cleanups.push(() => {
      if (terminal.child.exitCode === null) terminal.child.kill('SIGKILL');
    });
    const online = async () =>
      (
        JSON.parse((await httpsCall(`https://127.0.0.1:${httpPort}/healthz`, ca)).text) as {
          terminalsOnline: number;
        }
      ).terminalsOnline === 1;
    const deadline = Date.now() + 30_000;
    while (!(await online().catch(() => false))) {
      if (Date.now() > deadline) throw new Error('the simulated terminal never came online');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const paid = await runCli(
      [
        'gateway',
        'test',
        '--terminal',
        terminalId,
        '--amount',
        '1.00',
        '--url',
        `https://127.0.0.1:${httpPort}`,
        '--tls-ca',
        certs.caCert,
        '--json',
      ],
      { ECR_BRIDGE_GATEWAY_KEY: merchant.key, ECR_BRIDGE_GATEWAY_PASSWORD: merchant.password },
    );
    expect(paid.code).toBe(0);
    expect(json(paid)).toMatchObject({ outcome: 'approved', amount: '1.00' });
    // Without the CA the same call refuses the gateway's certificate: nothing sent.
    const untrusted = await runCli(
      [
        'gateway',
        'test',
        '--terminal',
        terminalId,
        '--amount',
        '1.00',
        '--url',
        `https://127.0.0.1:${httpPort}`,
      ],
      { ECR_BRIDGE_GATEWAY_KEY: merchant.key, ECR_BRIDGE_GATEWAY_PASSWORD: merchant.password },
    );
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.stderr).toMatch(/TERMINAL_UNREACHABLE.*not signed by a trusted CA/);
  });
});
