import { describe, expect, it } from 'vitest';
import {
  encodeRegister,
  HEARTBEAT,
  HEARTBEAT_ACK,
  type Registration,
} from '../../../src/protocols/econduit/messages.js';
import {
  EconduitClientSession,
  type ClientAction,
  type ClientSessionOptions,
} from '../../../src/protocols/econduit/session-client.js';
import { thrownBy } from '../../helpers.js';

// The terminal's side of the eConduit channel, fed link events, messages and times by hand: no
// socket, no timer. Endpoints are plain names; times are plain numbers (ms).

const INTERVAL = 60_000;
const ACK_TIMEOUT = 10_000;
const SPREAD = 500;
const GRACE = 2_000;
const REGISTRATION: Registration = {
  terminalType: 'Valor',
  terminalModel: 'VL110',
  terminalId: '29531204',
  softwareVersion: 'v1',
  ackHeartbeat: true,
};
const PAYLOAD = '{"TRAN_CODE":"01","AMOUNT":"1000"}';

type Endpoint = 'primary' | 'secondary';
type Action = ClientAction<Endpoint>;

function client(options: Partial<ClientSessionOptions<Endpoint>> = {}) {
  return new EconduitClientSession<Endpoint>({
    endpoints: ['primary', 'secondary'],
    registration: REGISTRATION,
    heartbeatIntervalMs: INTERVAL,
    ackTimeoutMs: ACK_TIMEOUT,
    reconnectSpreadMs: SPREAD,
    closeGraceMs: GRACE,
    backoffDelay: (failures) => 100 * 2 ** failures,
    random: () => 0.5,
    ...options,
  });
}

const frame = (text: string): Action => ({ type: 'send', frame: `${text}\x04\x04` });
const REGISTER = frame(encodeRegister(REGISTRATION));

/** A client registered on the primary at `now`. */
function online(now = 0, options: Partial<ClientSessionOptions<Endpoint>> = {}) {
  const c = client(options);
  c.start();
  c.connected(now);
  c.receive('OK-REGISTRATION', now);
  return c;
}

describe('EconduitClientSession: registering', () => {
  it('connects to the primary, sends Register (seed 002 fields, 0x04 0x04), goes online on OK', () => {
    const c = client();
    expect(c.start()).toEqual([{ type: 'connect', endpoint: 'primary' }]);
    expect(c.start()).toEqual([]);
    expect(c.connected(10)).toEqual([REGISTER]);
    expect(c.nextDeadline()).toBe(10 + ACK_TIMEOUT);
    expect(c.receive('OK-REGISTRATION', 20)).toEqual([{ type: 'online', endpoint: 'primary' }]);
    expect(c.endpoint).toBe('primary');
    expect(c.nextDeadline()).toBe(20 + INTERVAL);
  });

  it('sends the TerminalSecret when it has one', () => {
    const c = client({ terminalSecret: 'abcdefghijklmnop' });
    c.start();
    expect(c.connected(0)).toEqual([frame(encodeRegister(REGISTRATION, 'abcdefghijklmnop'))]);
  });

  it('fails over to the secondary; a cycle with no endpoint ends offline with the reasons, then back-off', () => {
    const c = client();
    c.start();
    expect(c.connectFailed('connection refused', 0)).toEqual([
      { type: 'connect-failed', endpoint: 'primary', reason: 'connection refused' },
      { type: 'connect', endpoint: 'secondary' },
    ]);
    expect(c.connectFailed('connection refused', 5)).toEqual([
      { type: 'connect-failed', endpoint: 'secondary', reason: 'connection refused' },
      { type: 'offline', reason: 'connection refused' },
      { type: 'backoff', delayMs: 100, failures: 1 },
    ]);
    expect(c.nextDeadline()).toBe(105);
    expect(c.tick(104)).toEqual([]);
    expect(c.tick(105)).toEqual([{ type: 'connect', endpoint: 'primary' }]);
    c.connectFailed('host not found', 110);
    // The back-off doubles with each failed cycle.
    expect(c.connectFailed('connection timed out', 120)).toEqual([
      { type: 'connect-failed', endpoint: 'secondary', reason: 'connection timed out' },
      { type: 'offline', reason: 'host not found; connection timed out' },
      { type: 'backoff', delayMs: 200, failures: 2 },
    ]);
  });

  it('a refusal is the gateway speaking: closed in order, no secondary, offline, back-off', () => {
    const c = client();
    c.start();
    c.connected(0);
    expect(c.receive('FAILED-INVALID-TERMINAL-TYPE', 10)).toEqual([
      { type: 'refused', endpoint: 'primary', result: 'FAILED-INVALID-TERMINAL-TYPE' },
      { type: 'close' },
    ]);
    // The gateway does not close its side: dropped after the grace.
    expect(c.tick(10 + GRACE)).toEqual([{ type: 'terminate' }]);
    expect(c.linkClosed(10 + GRACE + 1)).toEqual([
      { type: 'offline', reason: 'registration refused: FAILED-INVALID-TERMINAL-TYPE' },
      { type: 'backoff', delayMs: 100, failures: 1 },
    ]);
  });

  it('no usable answer from an endpoint: dropped, and the next one tried once the link closed', () => {
    const answered = client();
    answered.start();
    answered.connected(0);
    expect(answered.receive(HEARTBEAT_ACK, 1)).toEqual([
      {
        type: 'register-failed',
        endpoint: 'primary',
        reason: 'Register answered with a heartbeat-ack',
      },
      { type: 'terminate' },
    ]);
    expect(answered.linkClosed(2)).toEqual([{ type: 'connect', endpoint: 'secondary' }]);

    const silent = client();
    silent.start();
    silent.connected(0);
    expect(silent.tick(ACK_TIMEOUT - 1)).toEqual([]);
    expect(silent.tick(ACK_TIMEOUT)).toEqual([
      { type: 'register-failed', endpoint: 'primary', reason: 'registration not answered' },
      { type: 'terminate' },
    ]);

    const lost = client();
    lost.start();
    lost.connected(0);
    expect(lost.linkClosed(1)).toEqual([
      { type: 'register-failed', endpoint: 'primary', reason: 'link lost while registering' },
      { type: 'connect', endpoint: 'secondary' },
    ]);
  });
});

describe('EconduitClientSession: online', () => {
  it('heartbeats every interval while idle; an ack clears the wait for it', () => {
    const c = online(0);
    expect(c.tick(INTERVAL - 1)).toEqual([]);
    expect(c.tick(INTERVAL)).toEqual([frame(HEARTBEAT)]);
    // The ack is awaited before the next beat (60 s ± 10 %; random 0.5 → exactly 60 s).
    expect(c.nextDeadline()).toBe(INTERVAL + ACK_TIMEOUT);
    expect(c.receive(HEARTBEAT_ACK, INTERVAL + 5)).toEqual([]);
    expect(c.nextDeadline()).toBe(2 * INTERVAL);
    expect(c.tick(2 * INTERVAL)).toEqual([frame(HEARTBEAT)]);
  });

  it('jitters the heartbeat by up to ±10 %', () => {
    const low = online(0, { random: () => 0 });
    low.tick(INTERVAL);
    low.receive(HEARTBEAT_ACK, INTERVAL);
    expect(low.nextDeadline()).toBe(INTERVAL + 0.9 * INTERVAL);
  });

  it('a heartbeat not acked in time: the link is dropped, and the client registers again at once', () => {
    const c = online(0);
    c.tick(INTERVAL);
    expect(c.tick(INTERVAL + ACK_TIMEOUT)).toEqual([
      { type: 'dropping', reason: 'heartbeat not acknowledged' },
      { type: 'terminate' },
    ]);
    // It had lasted a heartbeat interval: back within the random spread (0.5 → 250 ms).
    expect(c.linkClosed(INTERVAL + ACK_TIMEOUT + 1)).toEqual([
      { type: 'offline', endpoint: 'primary', reason: 'heartbeat not acknowledged' },
    ]);
    expect(c.nextDeadline()).toBe(INTERVAL + ACK_TIMEOUT + 1 + SPREAD / 2);
  });

  it('a payload reaches the terminal; no heartbeat until it is answered, then not before an interval of quiet', () => {
    const c = online(0);
    expect(c.receive(PAYLOAD, 1_000)).toEqual([{ type: 'payload', text: PAYLOAD }]);
    expect(c.tick(INTERVAL)).toEqual([]);
    expect(c.answer('{"STATE":"0"}', INTERVAL + 500)).toBe('{"STATE":"0"}\x04\x04');
    expect(c.tick(2 * INTERVAL)).toEqual([]);
    expect(c.nextDeadline()).toBe(2 * INTERVAL + 500);
    expect(c.tick(2 * INTERVAL + 500)).toEqual([frame(HEARTBEAT)]);
  });

  it('an answer with a 0x04 in it is refused and counts nothing', () => {
    const c = online(0);
    c.receive(PAYLOAD, 1);
    expect(thrownBy(() => c.answer('a\x04b', 2)).code).toBe('INVALID_INPUT');
    expect(c.tick(INTERVAL)).toEqual([]);
  });

  it('a registration answer while registered is reported and ignored', () => {
    expect(online().receive('OK-REGISTRATION', 5)).toEqual([
      { type: 'stray-answer', result: 'OK-REGISTRATION' },
    ]);
  });

  it('the gateway ends a working link: lost, offline "link lost", back at once within the spread', () => {
    const c = online(0);
    expect(c.linkClosed(INTERVAL)).toEqual([
      { type: 'lost', endpoint: 'primary' },
      { type: 'offline', endpoint: 'primary', reason: 'link lost' },
    ]);
    expect(c.tick(INTERVAL + SPREAD / 2)).toEqual([{ type: 'connect', endpoint: 'primary' }]);
  });

  it('a registration dropped before an interval counts as a failed cycle: back-off', () => {
    const c = online(0);
    expect(c.linkClosed(10, 'message too large')).toEqual([
      { type: 'lost', endpoint: 'primary' },
      { type: 'offline', endpoint: 'primary', reason: 'message too large' },
      { type: 'backoff', delayMs: 100, failures: 1 },
    ]);
  });

  it('a session closed in order: FIN, dropped after the grace if the gateway keeps it open', () => {
    const c = online(0);
    expect(c.drop('session closed', true, 100)).toEqual([
      { type: 'dropping', reason: 'session closed' },
      { type: 'close' },
    ]);
    expect(c.drop('session terminated', false, 200)).toEqual([{ type: 'terminate' }]);
    expect(c.tick(100 + GRACE)).toEqual([{ type: 'terminate' }]);
    expect(c.linkClosed(100 + GRACE)).toEqual([
      { type: 'offline', endpoint: 'primary', reason: 'session closed' },
      { type: 'backoff', delayMs: 100, failures: 1 },
    ]);
  });

  it('dropConnection: as a pulled cable, then reconnecting as after any drop', () => {
    const c = online(0);
    expect(c.dropConnection(INTERVAL)).toEqual([
      { type: 'dropping', reason: 'connection dropped' },
      { type: 'terminate' },
    ]);
    expect(c.linkClosed(INTERVAL)).toEqual([
      { type: 'offline', endpoint: 'primary', reason: 'connection dropped' },
    ]);
    expect(c.endpoint).toBeUndefined();
  });
});

describe('EconduitClientSession: stop', () => {
  it('online: dropped, offline "stopped", then stopped; nothing more', () => {
    const c = online(0);
    expect(c.stop(5)).toEqual([
      { type: 'dropping', reason: 'connection dropped' },
      { type: 'terminate' },
    ]);
    expect(c.linkClosed(6)).toEqual([
      { type: 'offline', endpoint: 'primary', reason: 'stopped' },
      { type: 'stopped' },
    ]);
    expect(c.state.type).toBe('idle');
    expect(c.nextDeadline()).toBeUndefined();
  });

  it('waiting between cycles: stopped at once', () => {
    const c = client();
    c.start();
    c.connectFailed('connection refused', 0);
    c.connectFailed('connection refused', 0);
    expect(c.stop(1)).toEqual([{ type: 'stopped' }]);
  });

  it('registering, or closing a refused link: dropped, then stopped without an offline event', () => {
    const registering = client();
    registering.start();
    registering.connected(0);
    expect(registering.stop(1)).toEqual([{ type: 'terminate' }]);
    expect(registering.linkClosed(2)).toEqual([{ type: 'stopped' }]);

    const refused = client();
    refused.start();
    refused.connected(0);
    refused.receive('FAILED-REGISTRATION', 1);
    expect(refused.stop(2)).toEqual([{ type: 'terminate' }]);
    expect(refused.linkClosed(3)).toEqual([{ type: 'stopped' }]);
  });

  it('connecting: the runner abandons the connect; a link that opened anyway is dropped', () => {
    const failed = client();
    failed.start();
    expect(failed.stop(0)).toEqual([]);
    expect(failed.connectFailed('aborted', 1)).toEqual([{ type: 'stopped' }]);

    const opened = client();
    opened.start();
    opened.stop(0);
    expect(opened.connected(1)).toEqual([{ type: 'terminate' }]);
    expect(opened.linkClosed(2)).toEqual([{ type: 'stopped' }]);
    // A stopped client starts again from the primary.
    expect(opened.start()).toEqual([{ type: 'connect', endpoint: 'primary' }]);
  });

  it('never started: stop does nothing', () => {
    expect(client().stop(0)).toEqual([]);
  });
});
