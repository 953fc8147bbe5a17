import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentEndpoint, EconduitAgentOptions } from '../../src/agent/agent-options.js';
import { EconduitAgent } from '../../src/agent/econduit-agent.js';
import { EconduitFramer, encodeFrame } from '../../src/protocols/econduit/framer.js';
import {
  decodeTerminalMessage,
  HEARTBEAT,
  HEARTBEAT_ACK,
  POS_OFFLINE,
  POS_ONLINE,
  type Registration,
  type RegistrationResult,
} from '../../src/protocols/econduit/messages.js';
import type { MessageLink } from '../../src/transports/message-link.js';
import type { ListeningServer } from '../../src/transports/serve.js';
import { listenTcp } from '../../src/transports/tcp.js';
import { closedPort, thrownBy, waitFor } from '../helpers.js';
import { FakeClock } from '../support/fake-clock.js';

const REGISTRATION: Registration = {
  terminalType: 'Valor',
  terminalModel: 'VL110',
  terminalId: '29531204',
  softwareVersion: 'ecr-bridge agent test 1.0',
  ackHeartbeat: true,
};

/** A SEMI-style request, as the gateway would pass it through (no card data). */
const PAYLOAD = '{"TRAN_MODE":"1","TRAN_CODE":"01","AMOUNT":"1000","INVOICENUMBER":"A-17"}';
const ANSWER = '{"STATE":"0","RESULT_CODE":"000","AMOUNT":"1000","INVOICENUMBER":"A-17"}';

/** One connection the test gateway accepted: every byte it read, and the frames in them. */
interface GatewayConnection {
  link: MessageLink | undefined;
  readonly raw: Buffer[];
  readonly frames: string[];
}

/**
 * A small eConduit gateway on 127.0.0.1: answers Register with `answer` (or not at all when
 * 'silent'), acks heartbeats when `ackHeartbeats`, and records everything it reads.
 */
class TestGateway {
  readonly connections: GatewayConnection[] = [];
  readonly registrations: Registration[] = [];
  readonly payloads: string[] = [];
  heartbeats = 0;
  answer: RegistrationResult | 'silent' = 'OK-REGISTRATION';
  ackHeartbeats = true;
  private server: ListeningServer | undefined;

  async listen(port = 0): Promise<this> {
    this.server = await listenTcp({
      port,
      framer: () => {
        // Called for each connection right before onConnection: the record is the last one.
        const connection: GatewayConnection = { link: undefined, raw: [], frames: [] };
        this.connections.push(connection);
        const framer = new EconduitFramer();
        return {
          push: (chunk: Uint8Array) => {
            connection.raw.push(Buffer.from(chunk));
            return framer.push(chunk);
          },
        };
      },
      onConnection: (link) => {
        const connection = this.connections[this.connections.length - 1] as GatewayConnection;
        connection.link = link;
        link.onMessage((text) => this.handle(connection, link, text));
      },
    });
    gateways.push(this);
    return this;
  }

  get endpoint(): AgentEndpoint {
    return { host: '127.0.0.1', port: this.server?.port ?? 0 };
  }

  /** The link of the latest connection. */
  get link(): MessageLink {
    const link = this.connections[this.connections.length - 1]?.link;
    if (link === undefined) throw new Error('no connection yet');
    return link;
  }

  async close(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  private handle(connection: GatewayConnection, link: MessageLink, text: string): void {
    connection.frames.push(text);
    const message = decodeTerminalMessage(text);
    if (message.type === 'register') {
      this.registrations.push({
        terminalType: message.terminalType,
        terminalModel: message.terminalModel,
        terminalId: message.terminalId,
        softwareVersion: message.softwareVersion,
        ackHeartbeat: message.ackHeartbeat,
      });
      if (this.answer !== 'silent') void link.send(encodeFrame(this.answer));
    } else if (message.type === 'heartbeat') {
      this.heartbeats++;
      if (this.ackHeartbeats) void link.send(encodeFrame(HEARTBEAT_ACK));
    } else {
      this.payloads.push(message.text);
    }
  }
}

const gateways: TestGateway[] = [];
const agents: EconduitAgent[] = [];

afterEach(async () => {
  for (const agent of agents.splice(0)) await agent.stop();
  for (const gateway of gateways.splice(0)) await gateway.close();
});

function gateway(port = 0): Promise<TestGateway> {
  return new TestGateway().listen(port);
}

/** Short intervals so the file runs in seconds; the ack bound stays roomy for a loaded machine. */
function agentFor(
  endpoints: readonly AgentEndpoint[],
  options: Partial<EconduitAgentOptions> = {},
): EconduitAgent {
  const agent = new EconduitAgent({
    endpoints,
    registration: REGISTRATION,
    heartbeatIntervalMs: 40,
    ackTimeoutMs: 2_000,
    connectTimeoutMs: 2_000,
    backoffBaseMs: 20,
    backoffMaxMs: 100,
    ...options,
  });
  agents.push(agent);
  return agent;
}

/** Every event, in order, as short strings. */
function record(agent: EconduitAgent): string[] {
  const events: string[] = [];
  agent.on('online', (endpoint) => events.push(`online ${endpoint.host}:${endpoint.port}`));
  agent.on('offline', (reason) => events.push(`offline ${reason}`));
  agent.on('registrationRefused', (result) => events.push(`refused ${result}`));
  return events;
}

/** The sessions, in the order they were handed out. */
function sessions(agent: EconduitAgent): MessageLink[] {
  const links: MessageLink[] = [];
  agent.on('session', (link) => links.push(link));
  return links;
}

const where = (endpoint: AgentEndpoint): string => `${endpoint.host}:${endpoint.port}`;
const count = (events: readonly string[], prefix: string): number =>
  events.filter((e) => e.startsWith(prefix)).length;

/** Handles that would keep the process alive, by kind. */
function handles(kind: string): number {
  return process.getActiveResourcesInfo().filter((name) => name === kind).length;
}

describe('EconduitAgent: registration and heartbeats', () => {
  it('registers on the primary with the Register JSON of seed 002 and shows POS Online', async () => {
    const g = await gateway();
    const agent = agentFor([g.endpoint]);
    const events = record(agent);
    expect(agent.status).toBe(POS_OFFLINE);
    agent.start();
    await waitFor(() => events.length > 0, 10_000, 'the first event');
    expect(events).toEqual([`online ${where(g.endpoint)}`]);
    expect(agent.status).toBe(POS_ONLINE);
    expect(agent.endpoint).toEqual(g.endpoint);
    const first = g.connections[0];
    expect(JSON.parse(first?.frames[0] ?? '')).toEqual({
      Command: 'Register',
      TerminalType: 'Valor',
      TerminalModel: 'VL110',
      TerminalID: '29531204',
      SoftwareVersion: 'ecr-bridge agent test 1.0',
      AckHeartbeat: 'true',
    });
    // The very first bytes on the wire: the Register object, then 0x04 0x04.
    const wire = Buffer.concat(first?.raw ?? []).toString('utf8');
    expect(wire.startsWith(`${first?.frames[0]}\x04\x04`)).toBe(true);
    expect(g.registrations).toEqual([REGISTRATION]);
  });

  it('sends TerminalHeartbeat every interval while idle and stays on one connection while acked', async () => {
    const g = await gateway();
    const agent = agentFor([g.endpoint]).start();
    const events = record(agent);
    await waitFor(() => g.heartbeats >= 4, 10_000, 'four heartbeats');
    expect(g.connections).toHaveLength(1);
    expect(g.connections[0]?.frames.slice(1, 5)).toEqual([
      HEARTBEAT,
      HEARTBEAT,
      HEARTBEAT,
      HEARTBEAT,
    ]);
    expect(events.filter((e) => e.startsWith('offline'))).toEqual([]);
    expect(agent.status).toBe(POS_ONLINE);
  });

  it('a heartbeat not acknowledged in time → offline "heartbeat not acknowledged", then registers again', async () => {
    const g = await gateway();
    g.ackHeartbeats = false;
    const agent = agentFor([g.endpoint], { ackTimeoutMs: 150 }).start();
    const events = record(agent);
    await waitFor(() => count(events, 'online') >= 2, 10_000, 'a second registration');
    expect(events.slice(0, 3)).toEqual([
      `online ${where(g.endpoint)}`,
      'offline heartbeat not acknowledged',
      `online ${where(g.endpoint)}`,
    ]);
    expect(g.connections.length).toBeGreaterThanOrEqual(2);
    expect(g.registrations.length).toBeGreaterThanOrEqual(2);
  });
});

describe('EconduitAgent: injected time', () => {
  it('heartbeats when its clock says the interval has passed (a minute, at once on a fake clock)', async () => {
    const clock = new FakeClock();
    const g = await gateway();
    const agent = agentFor([g.endpoint], { clock, heartbeatIntervalMs: 60_000 }).start();
    await waitFor(() => agent.status === POS_ONLINE, 10_000, 'online');
    await clock.advance(60_000);
    await waitFor(() => g.heartbeats === 1, 10_000, 'a heartbeat');
    expect(g.connections[0]?.frames.slice(1)).toEqual([HEARTBEAT]);
    expect(g.connections).toHaveLength(1);
  });
});

describe('EconduitAgent: reconnecting and failing over', () => {
  it('primary refusing connections → registers on the secondary; back on the primary once it listens and the secondary is gone', async () => {
    const primaryPort = await closedPort();
    const secondary = await gateway();
    const primary: AgentEndpoint = { host: '127.0.0.1', port: primaryPort };
    const agent = agentFor([primary, secondary.endpoint]).start();
    const events = record(agent);
    await waitFor(() => agent.status === POS_ONLINE, 10_000, 'online on the secondary');
    expect(agent.endpoint).toEqual(secondary.endpoint);
    expect(events).toEqual([`online ${where(secondary.endpoint)}`]);

    await secondary.close();
    const restored = await gateway(primaryPort);
    await waitFor(
      () => agent.status === POS_ONLINE && agent.endpoint?.port === primaryPort,
      10_000,
      'online on the primary',
    );
    expect(restored.registrations).toHaveLength(1);
    expect(events[events.length - 1]).toBe(`online ${where(primary)}`);
    // Between the two: offline while neither endpoint answered.
    expect(events[1]).toBe('offline link lost');
    expect(events.slice(2, -1).every((e) => e === 'offline connection refused')).toBe(true);
  });

  it('the gateway closing the socket → offline "link lost", then reconnects at once and registers again', async () => {
    const g = await gateway();
    // A back-off this long would outlast the wait below: reconnecting in time means "at once".
    const agent = agentFor([g.endpoint], {
      backoffBaseMs: 600_000,
      backoffMaxMs: 600_000,
    }).start();
    const events = record(agent);
    // A working registration: it has lasted a heartbeat interval.
    await waitFor(() => g.heartbeats >= 1, 10_000, 'a heartbeat');
    g.link.close();
    await waitFor(() => events.length >= 3, 10_000, 'online, offline, online');
    expect(events).toEqual([
      `online ${where(g.endpoint)}`,
      'offline link lost',
      `online ${where(g.endpoint)}`,
    ]);
    expect(g.registrations).toHaveLength(2);
  });

  it('FAILED-INVALID-TERMINAL-TYPE → registrationRefused and offline, then retries with back-off, never hammering', async () => {
    const g = await gateway();
    g.answer = 'FAILED-INVALID-TERMINAL-TYPE';
    const secondary = await gateway();
    const agent = agentFor([g.endpoint, secondary.endpoint], {
      backoffBaseMs: 20,
      backoffMaxMs: 200,
    }).start();
    const events = record(agent);
    await waitFor(() => events.length >= 2, 10_000, 'the refusal');
    expect(events.slice(0, 2)).toEqual([
      'refused FAILED-INVALID-TERMINAL-TYPE',
      'offline registration refused: FAILED-INVALID-TERMINAL-TYPE',
    ]);
    expect(agent.status).toBe(POS_OFFLINE);
    const before = g.connections.length;
    await sleep(1_000);
    const during = g.connections.length - before;
    // It does retry; with full-jitter back-off (20 ms doubling to 200 ms) about a dozen times a
    // second, where a loop without a pause would connect hundreds of times.
    expect(during).toBeGreaterThanOrEqual(1);
    expect(during).toBeLessThan(40);
    expect(count(events, 'online')).toBe(0);
    // A refusal is the gateway's answer, not a network problem: the secondary is not tried.
    expect(secondary.connections).toHaveLength(0);
  });

  it('dropConnection() → offline "connection dropped", then registers again', async () => {
    const g = await gateway();
    const agent = agentFor([g.endpoint]).start();
    const events = record(agent);
    await waitFor(() => g.heartbeats >= 1, 10_000, 'a heartbeat');
    agent.dropConnection();
    expect(agent.status).toBe(POS_OFFLINE);
    await waitFor(() => events.length >= 3, 10_000, 'online, offline, online');
    expect(events).toEqual([
      `online ${where(g.endpoint)}`,
      'offline connection dropped',
      `online ${where(g.endpoint)}`,
    ]);
    expect(g.connections).toHaveLength(2);
  });
});

describe('EconduitAgent: the session link', () => {
  it('a payload reaches the session (even before a handler is set); the answer goes back ending in 0x04 0x04', async () => {
    const g = await gateway();
    const agent = agentFor([g.endpoint]).start();
    const links = sessions(agent);
    await waitFor(() => links.length === 1, 10_000, 'a session');
    const session = links[0] as MessageLink;
    expect(session.remote).toBe(where(g.endpoint));
    expect(session.isOpen).toBe(true);

    // Heartbeats acked before the payload: neither the acks nor OK-REGISTRATION reach the session.
    await waitFor(() => g.heartbeats >= 2, 10_000, 'heartbeats');
    await g.link.send(encodeFrame(PAYLOAD));
    await sleep(100);
    const got: string[] = [];
    session.onMessage((text) => got.push(text));
    await waitFor(() => got.length === 1, 10_000, 'the payload');
    expect(got).toEqual([PAYLOAD]);

    await session.send(ANSWER);
    await waitFor(() => g.payloads.length === 1, 10_000, 'the answer');
    expect(g.payloads).toEqual([ANSWER]);
    const wire = Buffer.concat(g.connections[0]?.raw ?? []).toString('utf8');
    expect(wire).toContain(`${ANSWER}\x04\x04`);
    // A 0x04 inside an answer would end it early on the gateway's side: refused, nothing sent.
    await expect(session.send('a\x04b')).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('no heartbeat while a payload waits for its answer; they resume after it', async () => {
    const g = await gateway();
    const agent = agentFor([g.endpoint], { heartbeatIntervalMs: 30 }).start();
    const links = sessions(agent);
    await waitFor(() => g.heartbeats >= 1, 10_000, 'a heartbeat');
    const session = links[0] as MessageLink;
    const got: string[] = [];
    session.onMessage((text) => got.push(text));
    await g.link.send(encodeFrame(PAYLOAD));
    await waitFor(() => got.length === 1, 10_000, 'the payload');
    const busy = g.heartbeats;
    await sleep(300);
    // At most one that was already on its way when the payload arrived.
    expect(g.heartbeats).toBeLessThanOrEqual(busy + 1);
    await session.send(ANSWER);
    await waitFor(() => g.heartbeats >= busy + 2, 10_000, 'heartbeats again');
    expect(agent.status).toBe(POS_ONLINE);
  });

  it('closing the session ends its connection; the agent registers again with a new session', async () => {
    const g = await gateway();
    const agent = agentFor([g.endpoint]).start();
    const events = record(agent);
    const links = sessions(agent);
    await waitFor(() => g.heartbeats >= 1, 10_000, 'a heartbeat');
    const first = links[0] as MessageLink;
    first.close();
    const closed = await first.closed;
    expect(closed.error).toBeUndefined();
    expect(first.isOpen).toBe(false);
    await waitFor(() => links.length === 2, 10_000, 'a second session');
    expect(links[1]).not.toBe(first);
    expect(links[1]?.isOpen).toBe(true);
    expect(events).toEqual([
      `online ${where(g.endpoint)}`,
      'offline session closed',
      `online ${where(g.endpoint)}`,
    ]);
    await expect(first.send(ANSWER)).rejects.toMatchObject({ code: 'LINK_LOST' });
  });
});

describe('EconduitAgent: stop', () => {
  it('stop() closes the socket, reports offline, and leaves no reconnect and no open handle', async () => {
    const sockets = handles('TCPSocketWrap');
    const timers = handles('Timeout');
    const g = await gateway();
    const agent = agentFor([g.endpoint]).start();
    const events = record(agent);
    const links = sessions(agent);
    await waitFor(() => g.heartbeats >= 1, 10_000, 'a heartbeat');
    await agent.stop();
    expect(agent.status).toBe(POS_OFFLINE);
    expect(agent.endpoint).toBeUndefined();
    expect(links[0]?.isOpen).toBe(false);
    expect(events).toEqual([`online ${where(g.endpoint)}`, 'offline stopped']);
    await sleep(300);
    expect(g.connections).toHaveLength(1);
    await g.close();
    await new Promise((resolve) => setImmediate(resolve));
    expect(handles('TCPSocketWrap')).toBe(sockets);
    expect(handles('Timeout')).toBeLessThanOrEqual(timers);
  });

  it('stop() ends cleanly while waiting to retry, while registering, and before start', async () => {
    // Waiting: nothing listens on either endpoint.
    const waiting = agentFor([
      { host: '127.0.0.1', port: await closedPort() },
      { host: '127.0.0.1', port: await closedPort() },
    ]).start();
    const waitingEvents = record(waiting);
    await waitFor(() => waitingEvents.length >= 1, 10_000, 'a failed cycle');
    expect(waitingEvents[0]).toBe('offline connection refused');
    await waiting.stop();

    // Registering: the gateway never answers Register.
    const g = await gateway();
    g.answer = 'silent';
    const registering = agentFor([g.endpoint], { ackTimeoutMs: 60_000 }).start();
    const registeringEvents = record(registering);
    await waitFor(() => g.registrations.length === 1, 10_000, 'the Register');
    await registering.stop();
    await sleep(200);
    expect(g.connections).toHaveLength(1);
    expect(registeringEvents).toEqual([]);

    // Never started; and a second stop() is harmless.
    const idle = agentFor([g.endpoint]);
    await idle.stop();
    await registering.stop();
    expect(idle.status).toBe(POS_OFFLINE);

    // A stopped agent can be started again.
    g.answer = 'OK-REGISTRATION';
    registering.start();
    await waitFor(() => registering.status === POS_ONLINE, 10_000, 'online after a restart');
    expect(registeringEvents).toEqual([`online ${where(g.endpoint)}`]);
  });
});

describe('EconduitAgent: options', () => {
  it('refuses bad options with INVALID_INPUT naming the option', () => {
    const make = (options: Partial<EconduitAgentOptions> & Record<string, unknown>) => () =>
      new EconduitAgent({
        endpoints: [{ host: '127.0.0.1', port: 9001 }],
        registration: REGISTRATION,
        ...options,
      });
    expect(thrownBy(make({ endpoints: [] }))).toMatchObject({
      code: 'INVALID_INPUT',
      field: 'endpoints',
    });
    expect(thrownBy(make({ endpoints: [{ host: 'a', port: 70_000 }] }))).toMatchObject({
      field: 'endpoints.0.port',
    });
    expect(
      thrownBy(make({ registration: { ...REGISTRATION, terminalId: '2953 1204' } })),
    ).toMatchObject({ code: 'INVALID_INPUT', field: 'registration.terminalId' });
    expect(thrownBy(make({ heartbeat: 5 }))).toMatchObject({ field: 'heartbeat' });
    expect(thrownBy(make({ backoffBaseMs: 500, backoffMaxMs: 100 }))).toMatchObject({
      field: 'backoffMaxMs',
    });
  });
});
