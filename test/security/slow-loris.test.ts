import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame } from '../../src/protocols/econduit/framer.js';
import { tempDir, waitFor, waitForAsync } from '../helpers.js';
import { makeCertificates, type TestCertificates } from './certificates.js';
import {
  closedByServer,
  dribble,
  forTheBlock,
  rawClient,
  runCleanups,
  startConnector,
  startGateway,
} from './support.js';

// Small bounds so that the tests are quick; the assertions only say "closed by the server, no
// sooner than its bound, and well before several times it" (a loaded 2-core box may be slow, it
// cannot be early).
const HEADERS_MS = 400;
const REQUEST_MS = 1_200;
/** A generous ceiling: many times the bound. */
const CEILING_MS = 20_000;
/** Slower than any bound here: one byte every… */
const DRIP_MS = 150;

let certs: TestCertificates;

beforeAll(() => {
  certs = makeCertificates(tempDir('security-certs-'));
});

afterEach(runCleanups);

/** The three stalled clients every HTTP edge must drop. */
function httpSlowLoris(
  port: () => number,
  bounds: { headers: number; request: number },
  /** A POST route whose body is read, with what it needs to get that far. */
  post: { path: string; headers: string },
) {
  it('headers sent a byte at a time, never finished: dropped after the headers bound', async () => {
    const client = await rawClient(port());
    void dribble(
      client,
      `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(500)}`,
      DRIP_MS,
    );
    const elapsed = await closedByServer(client, CEILING_MS);
    expect(elapsed).toBeGreaterThanOrEqual(bounds.headers * 0.8);
    expect(client.received()).not.toContain('200 OK');
  });

  it('headers whole, then a body a byte at a time: dropped after the request bound', async () => {
    const client = await rawClient(port());
    client.socket.write(
      `POST ${post.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${post.headers}content-type: application/json\r\ncontent-length: 4000\r\n\r\n`,
    );
    void dribble(client, `{"reference":"${'a'.repeat(3900)}`, DRIP_MS);
    const elapsed = await closedByServer(client, CEILING_MS);
    expect(elapsed).toBeGreaterThanOrEqual(bounds.request * 0.8);
  });

  it('connects and sends nothing: dropped', async () => {
    const client = await rawClient(port());
    const elapsed = await closedByServer(client, CEILING_MS);
    expect(elapsed).toBeGreaterThanOrEqual(bounds.headers * 0.8);
    expect(client.received()).not.toContain('200 OK');
  });
}

describe('slow-loris: the connector HTTP server', () => {
  let port = 0;
  beforeAll(async () => {
    const { value, teardown } = await forTheBlock(() =>
      startConnector({ headersTimeoutMs: HEADERS_MS, requestTimeoutMs: REQUEST_MS }),
    );
    port = value.port;
    return teardown;
  });
  httpSlowLoris(
    () => port,
    { headers: HEADERS_MS, request: REQUEST_MS },
    {
      path: '/api/v1/payments',
      headers: `authorization: Basic ${Buffer.from('log:pwd').toString('base64')}\r\n`,
    },
  );

  it('a client that is quick enough is answered (the bounds cut only the stalled ones)', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/version`, {
      headers: { authorization: `Basic ${Buffer.from('log:pwd').toString('base64')}` },
    });
    expect(response.status).toBe(200);
  });
});

describe('slow-loris: the gateway POS API', () => {
  let port = 0;
  beforeAll(async () => {
    const { value, teardown } = await forTheBlock(() =>
      startGateway({ api: { headersTimeoutMs: HEADERS_MS, requestTimeoutMs: REQUEST_MS } }),
    );
    port = value.gateway.httpPort;
    return teardown;
  });
  httpSlowLoris(
    () => port,
    { headers: HEADERS_MS, request: REQUEST_MS },
    { path: '/services/api.asmx/runTransaction', headers: '' },
  );
});

describe('slow-loris: the gateway POS API over HTTPS', () => {
  let port = 0;
  beforeAll(async () => {
    const { value, teardown } = await forTheBlock(() =>
      startGateway({
        api: { headersTimeoutMs: HEADERS_MS, requestTimeoutMs: REQUEST_MS },
        tls: { certFile: certs.serverCert, keyFile: certs.serverKey },
      }),
    );
    port = value.gateway.httpPort;
    return teardown;
  });

  it('connects and never starts the TLS handshake: dropped after the headers bound', async () => {
    const client = await rawClient(port);
    const elapsed = await closedByServer(client, CEILING_MS);
    expect(elapsed).toBeGreaterThanOrEqual(HEADERS_MS * 0.8);
  });

  it('a TLS client that sends its headers a byte at a time: dropped', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(certs.caCert) });
    socket.on('error', () => {});
    await once(socket, 'secureConnect');
    const started = Date.now();
    // Not events.once: it rejects on 'error' (an EPIPE as the server drops the socket).
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const bytes = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa';
    let i = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || i >= bytes.length) return clearInterval(timer);
      socket.write(bytes[i++] as string);
    }, DRIP_MS);
    await Promise.race([
      closed,
      new Promise((_, reject) => setTimeout(() => reject(new Error('not dropped')), CEILING_MS)),
    ]);
    clearInterval(timer);
    expect(Date.now() - started).toBeGreaterThanOrEqual(HEADERS_MS * 0.8);
  });
});

describe('slow-loris: the gateway terminal listener', () => {
  const REGISTER_MS = 500;
  const HEARTBEAT_MS = 200;
  const registerText = (terminalId: string) =>
    JSON.stringify({
      Command: 'Register',
      TerminalType: 'Valor',
      TerminalModel: 'VL100',
      TerminalID: terminalId,
      SoftwareVersion: 'test',
      AckHeartbeat: 'true',
    });
  const terminals = {
    registerTimeoutMs: REGISTER_MS,
    heartbeatIntervalMs: HEARTBEAT_MS,
    missedHeartbeats: 2,
  };

  it('a Register sent a byte at a time, never finished: dropped after the register bound, never online', async () => {
    const { gateway, terminalId } = await startGateway({ terminals });
    const client = await rawClient(gateway.tcpPort);
    void dribble(client, registerText(terminalId), DRIP_MS);
    const elapsed = await closedByServer(client, CEILING_MS);
    expect(elapsed).toBeGreaterThanOrEqual(REGISTER_MS * 0.8);
    expect(gateway.listener.isOnline(terminalId)).toBe(false);
  });

  it('connects and never registers: dropped after the register bound', async () => {
    const { gateway } = await startGateway({ terminals });
    const client = await rawClient(gateway.tcpPort);
    const elapsed = await closedByServer(client, CEILING_MS);
    expect(elapsed).toBeGreaterThanOrEqual(REGISTER_MS * 0.8);
    await waitFor(() => gateway.listener.connectionCount === 0, CEILING_MS, 'no connections');
  });

  it('registers, then sends a message a byte at a time and never ends it: dropped as silent', async () => {
    const { gateway, terminalId } = await startGateway({ terminals });
    const client = await rawClient(gateway.tcpPort);
    // Before the Register: the silence bound runs from the registration, which comes after.
    const registeredAt = Date.now();
    client.socket.write(encodeFrame(registerText(terminalId)));
    await waitFor(() => gateway.listener.isOnline(terminalId), CEILING_MS, 'registered');
    // A heartbeat that never gets its terminator: bytes arrive, no message does.
    void dribble(client, `{"Command":"TerminalHeartbeat","pad":"${'a'.repeat(400)}`, DRIP_MS / 3);
    await closedByServer(client, CEILING_MS);
    expect(Date.now() - registeredAt).toBeGreaterThanOrEqual(HEARTBEAT_MS * 2 * 0.8);
    expect(gateway.listener.isOnline(terminalId)).toBe(false);
  });

  it('over TLS: connects and never starts the handshake: dropped after the register bound', async () => {
    const { gateway } = await startGateway({
      terminals,
      tls: { certFile: certs.serverCert, keyFile: certs.serverKey },
    });
    const client = await rawClient(gateway.tcpPort);
    const elapsed = await closedByServer(client, CEILING_MS);
    expect(elapsed).toBeGreaterThanOrEqual(REGISTER_MS * 0.8);
    expect(gateway.listener.stats.tlsRefused).toBe(1);
  });

  it('over TLS: one address past its bound of handshakes in progress is closed at once, counted from the first moment', async () => {
    const { gateway } = await startGateway({
      terminals: { ...terminals, registerTimeoutMs: 30_000, maxUnregisteredPerAddress: 3 },
      tls: { certFile: certs.serverCert, keyFile: certs.serverKey },
    });
    // Three connections that never say ClientHello hold the address's three places…
    const stalled = await Promise.all([1, 2, 3].map(() => rawClient(gateway.tcpPort)));
    // …so the fourth is closed at once, long before the 30 s handshake bound.
    const fourth = await rawClient(gateway.tcpPort);
    const elapsed = await closedByServer(fourth, CEILING_MS);
    expect(elapsed).toBeLessThan(CEILING_MS);
    await waitFor(() => gateway.listener.stats.tlsRefused === 1, CEILING_MS, 'counted');
    // Closing one of the three frees a place: a real TLS client gets through again.
    stalled[0]?.socket.destroy();
    await waitForAsync(
      async () => {
        const client = tlsConnect({
          port: gateway.tcpPort,
          host: '127.0.0.1',
          ca: readFileSync(certs.caCert),
        });
        const admitted = await Promise.race([
          once(client, 'secureConnect').then(
            () => true,
            () => false,
          ),
          once(client, 'close').then(() => false),
        ]);
        client.destroy();
        return admitted;
      },
      CEILING_MS,
      'a TLS client admitted once a place is free',
    );
    for (const client of stalled) client.socket.destroy();
  });

  it('a terminal that registers and heartbeats stays (the bounds cut only the stalled ones)', async () => {
    // A roomy heartbeat bound here: this test must not depend on timers firing on time.
    const { gateway, terminalId } = await startGateway({
      terminals: {
        registerTimeoutMs: REGISTER_MS,
        heartbeatIntervalMs: 1_000,
        missedHeartbeats: 10,
      },
    });
    const client = await rawClient(gateway.tcpPort);
    client.socket.write(encodeFrame(registerText(terminalId)));
    await waitFor(() => gateway.listener.isOnline(terminalId), CEILING_MS, 'registered');
    const beat = setInterval(
      () => client.socket.write(encodeFrame('{"Command":"TerminalHeartbeat"}')),
      100,
    );
    // Several register bounds pass; the registered, heartbeating terminal is still there.
    const until = Date.now() + REGISTER_MS * 5;
    await waitFor(() => Date.now() > until, CEILING_MS, 'time to pass');
    clearInterval(beat);
    expect(gateway.listener.isOnline(terminalId)).toBe(true);
    expect(client.socket.destroyed).toBe(false);
  });
});
