import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EconduitAgent } from '../../src/agent/econduit-agent.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import { TerminalListener } from '../../src/gateway/terminal-listener.js';
import { EconduitSimulator } from '../../src/simulators/econduit/simulator.js';
import { subjectAltNames } from '../../src/transports/tls.js';
import { json, runCli } from '../cli/run-cli.js';
import { tempDir, thrownBy, waitFor } from '../helpers.js';
import {
  makeCertificates,
  makeClientCertificate,
  type ClientCertificate,
  type TestCertificates,
} from './certificates.js';
import { cleanups, httpsCall, letters, runCleanups, startGateway } from './support.js';

// Issue 17, part 1, mutual TLS: `gateway start --tls-client-ca`. A terminal provisioned as
// requiring a certificate registers only with a certificate the client CA signed whose CN or a
// DNS name is its TerminalID; other terminals still connect without one. Real TLS sockets on
// 127.0.0.1, certificates made with openssl at test time.

let certs: TestCertificates;
let ca: string;
/** PEM text of a client certificate and its key. */
const pem = (c: ClientCertificate) => ({
  cert: readFileSync(c.cert, 'utf8'),
  key: readFileSync(c.key, 'utf8'),
});
let forA: ClientCertificate;
let forB: ClientCertificate;
let forCByDns: ClientCertificate;
let forAByOtherCa: ClientCertificate;

beforeAll(() => {
  certs = makeCertificates(tempDir('mtls-certs-'));
  ca = readFileSync(certs.caCert, 'utf8');
  forA = makeClientCertificate(certs, 'term-a', { cn: 'MTLS-A', serial: 11 });
  forB = makeClientCertificate(certs, 'term-b', { cn: 'MTLS-B', serial: 12 });
  forCByDns = makeClientCertificate(certs, 'term-c', {
    cn: 'fleet-device',
    dns: ['other-name', 'MTLS-C'],
    serial: 13,
  });
  forAByOtherCa = makeClientCertificate(certs, 'term-a-other', {
    cn: 'MTLS-A',
    signer: 'other-ca',
    serial: 14,
  });
});

afterEach(runCleanups);

/** A TLS gateway whose terminal listener asks for client certificates signed by the test CA. */
async function mtlsGateway(clientCa: string | null = ca) {
  const started = await startGateway({
    tls: { certFile: certs.serverCert, keyFile: certs.serverKey },
    ...(clientCa === null ? {} : { terminals: { tlsClientCa: clientCa } }),
  });
  const { tenants, merchant } = started;
  tenants.addTerminal({
    terminalId: 'MTLS-A',
    merchant: merchant.name,
    terminalType: 'Valor',
    requireCertificate: true,
  });
  tenants.addTerminal({
    terminalId: 'MTLS-C',
    merchant: merchant.name,
    terminalType: 'Valor',
    requireCertificate: true,
  });
  tenants.addTerminal({ terminalId: 'MTLS-P', merchant: merchant.name, terminalType: 'Valor' });
  return started;
}

/** An agent registering as `terminalId` over TLS, presenting `client` when given. */
function agent(gateway: Gateway, terminalId: string, client?: ClientCertificate): EconduitAgent {
  const a = new EconduitAgent({
    endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
    registration: {
      terminalType: 'Valor',
      terminalModel: 'VL100',
      terminalId,
      softwareVersion: 'test',
      ackHeartbeat: true,
    },
    tls: { ca, ...(client === undefined ? {} : pem(client)) },
    backoffBaseMs: 5_000,
    backoffMaxMs: 5_000,
  });
  cleanups.push(() => a.stop());
  return a;
}

/** The first answer an agent gets: online, or the registration's refusal. */
async function firstAnswer(a: EconduitAgent): Promise<string> {
  const signal = AbortSignal.timeout(15_000);
  const answer = Promise.race([
    once(a, 'online', { signal }).then(() => 'OK-REGISTRATION'),
    once(a, 'registrationRefused', { signal }).then(([result]) => String(result)),
  ]);
  a.start();
  const result = await answer;
  await a.stop();
  return result;
}

describe('mutual TLS on the terminal listener (--tls-client-ca)', () => {
  it('refuses a certificate for another TerminalID, one from another CA and none at all for a terminal that requires one; accepts its own (CN or DNS name); others need none', async () => {
    const { gateway, merchant } = await mtlsGateway();
    const refused = gateway.listener.stats.refusedCredentials;

    expect(await firstAnswer(agent(gateway, 'MTLS-A', forB))).toBe('FAILED-REGISTRATION');
    expect(refused['certificate-name']).toBe(1);
    expect(await firstAnswer(agent(gateway, 'MTLS-A'))).toBe('FAILED-REGISTRATION');
    expect(refused['certificate-missing']).toBe(1);
    expect(await firstAnswer(agent(gateway, 'MTLS-A', forAByOtherCa))).toBe('FAILED-REGISTRATION');
    expect(refused['certificate-untrusted']).toBe(1);
    expect(gateway.listener.isOnline('MTLS-A')).toBe(false);

    // Its own certificate: registered, and a sale over HTTPS is charged once.
    const simulator = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      terminalId: 'MTLS-A',
      tls: { ca, ...pem(forA) },
    }).start(15_000);
    cleanups.push(() => simulator.stop());
    await waitFor(() => gateway.listener.isOnline('MTLS-A'), 15_000, 'MTLS-A online');
    const query = new URLSearchParams({
      command: 'Sale',
      key: merchant.key,
      password: merchant.password,
      amount: '2.50',
      refID: `MTLS-${letters(6)}`,
      terminalId: 'MTLS-A',
    });
    const answer = await httpsCall(
      `https://127.0.0.1:${gateway.httpPort}/services/api.asmx/runTransaction?${query.toString()}`,
      ca,
    );
    expect(JSON.parse(answer.text)).toMatchObject({ ResultCode: 'Approved' });
    expect(simulator.ledger.count).toBe(1);

    // A DNS subjectAltName names the terminal as well as the CN.
    expect(await firstAnswer(agent(gateway, 'MTLS-C', forCByDns))).toBe('OK-REGISTRATION');
    // A terminal not provisioned so registers without a certificate, or with anyone's.
    expect(await firstAnswer(agent(gateway, 'MTLS-P'))).toBe('OK-REGISTRATION');
    expect(await firstAnswer(agent(gateway, 'MTLS-P', forB))).toBe('OK-REGISTRATION');
    expect(refused).toMatchObject({
      'certificate-name': 1,
      'certificate-missing': 1,
      'certificate-untrusted': 1,
    });
    // Nothing was refused at the TLS layer: the listener decides at Register.
    expect(gateway.listener.stats.tlsRefused).toBe(0);
    const metrics = await httpsCall(`https://127.0.0.1:${gateway.httpPort}/metrics`, ca);
    expect(metrics.text).toMatch(
      /ecr_gateway_registrations_refused_credentials_total\{reason="certificate-name"\} 1/,
    );
  });

  it('without a client CA the listener asks for no certificate: a terminal that requires one is refused, even presenting its own', async () => {
    const { gateway } = await mtlsGateway(null);
    expect(await firstAnswer(agent(gateway, 'MTLS-A', forA))).toBe('FAILED-REGISTRATION');
    expect(gateway.listener.stats.refusedCredentials['certificate-missing']).toBe(1);
    expect(await firstAnswer(agent(gateway, 'MTLS-P'))).toBe('OK-REGISTRATION');
  });

  it('a certificate and a secret together: both are required when both are provisioned', async () => {
    const { gateway, tenants } = await mtlsGateway();
    const secret = `Both-${letters(20)}`;
    tenants.updateTerminalIdentity('MTLS-A', { secret });
    expect(await firstAnswer(agent(gateway, 'MTLS-A', forA))).toBe('FAILED-REGISTRATION');
    expect(gateway.listener.stats.refusedCredentials['secret-missing']).toBe(1);
    const both = new EconduitAgent({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      registration: {
        terminalType: 'Valor',
        terminalModel: 'VL100',
        terminalId: 'MTLS-A',
        softwareVersion: 'test',
        ackHeartbeat: true,
      },
      terminalSecret: secret,
      tls: { ca, ...pem(forA) },
    });
    cleanups.push(() => both.stop());
    expect(await firstAnswer(both)).toBe('OK-REGISTRATION');
  });

  it('names are read exactly: a quoted subjectAltName cannot pass for two, and a malformed list trusts none', () => {
    expect(subjectAltNames('DNS:MTLS-A, URI:urn:x, DNS:b')).toEqual([
      { type: 'DNS', value: 'MTLS-A' },
      { type: 'URI', value: 'urn:x' },
      { type: 'DNS', value: 'b' },
    ]);
    expect(subjectAltNames('DNS:"evil, DNS:MTLS-A", DNS:c')).toEqual([
      { type: 'DNS', value: 'evil, DNS:MTLS-A' },
      { type: 'DNS', value: 'c' },
    ]);
    expect(subjectAltNames('DNS:"unterminated')).toBeUndefined();
    expect(subjectAltNames('no colon here')).toBeUndefined();
  });

  it('settings are checked before anything listens: a client CA without TLS, or not PEM, names the option or flag', async () => {
    expect(
      thrownBy(() => new TerminalListener({ port: 0, lookup: () => undefined, tlsClientCa: ca })),
    ).toMatchObject({ code: 'INVALID_INPUT', field: 'tlsClientCa' });
    expect(
      thrownBy(
        () =>
          new TerminalListener({
            port: 0,
            lookup: () => undefined,
            tls: { certFile: certs.serverCert, keyFile: certs.serverKey },
            tlsClientCa: 'not a certificate',
          }),
      ),
    ).toMatchObject({ code: 'INVALID_INPUT', field: 'tlsClientCa' });
    expect(
      thrownBy(
        () =>
          new EconduitAgent({
            endpoints: [{ host: '127.0.0.1', port: 9 }],
            registration: {
              terminalType: 'Valor',
              terminalModel: '',
              terminalId: 'MTLS-A',
              softwareVersion: '',
              ackHeartbeat: true,
            },
            tls: { cert: pem(forA).cert },
          }),
      ),
    ).toMatchObject({ code: 'INVALID_INPUT', field: 'tls.key' });
    const run = await runCli([
      'gateway',
      'start',
      '--tls-client-ca',
      certs.caCert,
      '--tcp-port',
      '0',
      '--http-port',
      '0',
      '--data-dir',
      tempDir('mtls-cli-'),
      '--json',
    ]);
    expect(run.code).toBe(64);
    expect(json(run)).toMatchObject({ error: { code: 'INVALID_INPUT', field: '--tls-client-ca' } });
  });
});
