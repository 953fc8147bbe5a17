import { describe, expect, it } from 'vitest';
import {
  EconduitServerSession,
  MAX_EARLY_MESSAGES,
  MAX_UNREAD_BYTES,
  REFUSAL_GRACE_MS,
  type ServerAction,
} from '../../../src/protocols/econduit/session-server.js';
import {
  encodeRegister,
  HEARTBEAT,
  type Registration,
} from '../../../src/protocols/econduit/messages.js';

// The gateway's side of one eConduit connection, fed messages and times by hand: no socket, no
// timer. Times are plain numbers (ms).

const REGISTER_TIMEOUT_MS = 10_000;
const SILENCE_LIMIT_MS = 3 * 60_000;

const REGISTRATION: Registration = {
  terminalType: 'Valor',
  terminalModel: 'VL100',
  terminalId: '29531204',
  softwareVersion: 'v1',
  ackHeartbeat: true,
};
const REGISTER = encodeRegister(REGISTRATION);
const ANSWER = '{"TRAN_CODE":"01","STATE":"0"}';

function session(now = 0): EconduitServerSession {
  return new EconduitServerSession(
    { registerTimeoutMs: REGISTER_TIMEOUT_MS, silenceLimitMs: SILENCE_LIMIT_MS },
    now,
  );
}

/** A session registered at `now` with `registration`. */
function registered(registration = REGISTRATION, now = 0): EconduitServerSession {
  const s = session(now);
  s.receive(encodeRegister(registration), now);
  s.accept(registration, now);
  return s;
}

const send = (text: string): ServerAction => ({ type: 'send', frame: `${text}\x04\x04` });

describe('EconduitServerSession: before Register', () => {
  it('hands the first message out to be judged, then OK-REGISTRATION and online on accept', () => {
    const s = session();
    expect(s.receive(REGISTER, 5)).toEqual([{ type: 'register', text: REGISTER }]);
    expect(s.state.type).toBe('checking');
    expect(s.accept(REGISTRATION, 40)).toEqual([send('OK-REGISTRATION'), { type: 'online' }]);
    expect(s.terminal).toMatchObject({ registration: REGISTRATION, registeredAt: 40, busy: false });
  });

  it('a connection silent past the register bound: register-timeout at the deadline, not before', () => {
    const s = session(1_000);
    expect(s.nextDeadline()).toBe(1_000 + REGISTER_TIMEOUT_MS);
    expect(s.tick(1_000 + REGISTER_TIMEOUT_MS - 1)).toEqual([]);
    expect(s.tick(1_000 + REGISTER_TIMEOUT_MS)).toEqual([{ type: 'register-timeout' }]);
    expect(s.state.type).toBe('ended');
    expect(s.nextDeadline()).toBeUndefined();
  });

  it('no register bound while the Register is judged', () => {
    const s = session();
    s.receive(REGISTER, 1);
    expect(s.nextDeadline()).toBeUndefined();
    expect(s.tick(REGISTER_TIMEOUT_MS * 10)).toEqual([]);
  });

  it('messages sent without waiting for the answer are held, then handled in order once online', () => {
    const s = session();
    s.receive(REGISTER, 0);
    expect(s.receive(HEARTBEAT, 1)).toEqual([]);
    expect(s.receive(HEARTBEAT, 2)).toEqual([]);
    expect(s.accept(REGISTRATION, 3)).toEqual([
      send('OK-REGISTRATION'),
      { type: 'online' },
      { type: 'heartbeat' },
      send('{"Status":"OK"}'),
      { type: 'heartbeat' },
      send('{"Status":"OK"}'),
    ]);
  });

  it(`more than ${MAX_EARLY_MESSAGES} messages while the Register is judged drop the connection`, () => {
    const s = session();
    s.receive(REGISTER, 0);
    for (let i = 0; i < MAX_EARLY_MESSAGES; i++) expect(s.receive(HEARTBEAT, i)).toEqual([]);
    expect(s.receive(HEARTBEAT, 9)).toEqual([{ type: 'drop', reason: 'too many early messages' }]);
    // The verdict that comes later changes nothing.
    expect(s.accept(REGISTRATION, 10)).toEqual([]);
    expect(s.terminal).toBeUndefined();
  });

  it('a refusal is answered, then closed; a peer that keeps the socket open is dropped after the grace', () => {
    const s = session();
    s.receive(REGISTER, 0);
    s.receive(HEARTBEAT, 1);
    expect(s.refuse('FAILED-INVALID-TERMINAL-TYPE', 100)).toEqual([
      send('FAILED-INVALID-TERMINAL-TYPE'),
      { type: 'close' },
    ]);
    // What it sends now is not read, and the held heartbeat was never answered.
    expect(s.receive(HEARTBEAT, 150)).toEqual([]);
    expect(s.nextDeadline()).toBe(100 + REFUSAL_GRACE_MS);
    expect(s.tick(100 + REFUSAL_GRACE_MS - 1)).toEqual([]);
    expect(s.tick(100 + REFUSAL_GRACE_MS)).toEqual([{ type: 'drop', reason: 'refused' }]);
  });

  it('no verdict (the lookup failed): the connection just ends', () => {
    const s = session();
    s.receive(REGISTER, 0);
    expect(s.abandon()).toEqual([{ type: 'drop', reason: 'registration not judged' }]);
    expect(s.refuse('FAILED-REGISTRATION', 1)).toEqual([]);
  });
});

describe('EconduitServerSession: registered', () => {
  it('acks a heartbeat when the terminal asked for it, counts it either way', () => {
    expect(registered().receive(HEARTBEAT, 10)).toEqual([
      { type: 'heartbeat' },
      send('{"Status":"OK"}'),
    ]);
    const quiet = registered({ ...REGISTRATION, ackHeartbeat: false });
    expect(quiet.receive(HEARTBEAT, 10)).toEqual([{ type: 'heartbeat' }]);
  });

  it(`a terminal that left more than ${MAX_UNREAD_BYTES} bytes unread is dropped at its next heartbeat`, () => {
    const s = registered();
    expect(s.receive(HEARTBEAT, 10, MAX_UNREAD_BYTES)).toEqual([
      { type: 'heartbeat' },
      send('{"Status":"OK"}'),
    ]);
    expect(s.receive(HEARTBEAT, 20, MAX_UNREAD_BYTES + 1)).toEqual([
      { type: 'heartbeat' },
      { type: 'drop', reason: `more than ${MAX_UNREAD_BYTES} bytes of answers left unread` },
    ]);
  });

  it('its Register again is answered OK; a Register as another terminal drops it', () => {
    const s = registered();
    expect(s.receive(REGISTER, 10)).toEqual([send('OK-REGISTRATION')]);
    const other = encodeRegister({ ...REGISTRATION, terminalId: '29531205' });
    expect(s.receive(other, 20)).toEqual([
      { type: 'drop', reason: 'registered again as another terminal' },
    ]);
  });

  it('a transaction answer goes to the request in flight; with none it is ignored, reported once', () => {
    const s = registered();
    expect(s.receive(ANSWER, 1)).toEqual([{ type: 'unexpected-answer', first: true }]);
    expect(s.receive(ANSWER, 2)).toEqual([{ type: 'unexpected-answer', first: false }]);
    expect(s.beginRequest()).toBe(true);
    expect(s.beginRequest()).toBe(false);
    expect(s.receive(ANSWER, 3)).toEqual([{ type: 'answer', text: ANSWER }]);
    s.endRequest();
    expect(s.beginRequest()).toBe(true);
  });

  it('a bad command is ignored and reported the first time only', () => {
    const s = registered();
    const [first] = s.receive('{"Command":"Reboot"}', 1);
    expect(first).toMatchObject({ type: 'bad-command', error: { code: 'PROTOCOL_ERROR' } });
    expect(s.receive('{"Command":"Reboot"}', 2)).toEqual([]);
    expect(s.receive(HEARTBEAT, 3)[0]).toEqual({ type: 'heartbeat' });
  });

  it('an idle terminal silent strictly past the limit is dropped; any message keeps it', () => {
    const s = registered(REGISTRATION, 0);
    s.receive(HEARTBEAT, 1_000);
    expect(s.silentFor(1_500)).toBe(500);
    expect(s.nextDeadline()).toBe(1_000 + SILENCE_LIMIT_MS + 1);
    expect(s.tick(1_000 + SILENCE_LIMIT_MS)).toEqual([]);
    expect(s.tick(1_000 + SILENCE_LIMIT_MS + 1)).toEqual([
      { type: 'drop', reason: `silent for more than ${SILENCE_LIMIT_MS} ms` },
    ]);
    // Its registration stays readable for the offline view.
    expect(s.terminal?.lastSeenAt).toBe(1_000);
  });

  it('a terminal with a request in flight is never dropped for silence (it is at the card step)', () => {
    const s = registered(REGISTRATION, 0);
    s.beginRequest();
    expect(s.nextDeadline()).toBeUndefined();
    expect(s.tick(SILENCE_LIMIT_MS * 10)).toEqual([]);
    s.endRequest();
    expect(s.tick(SILENCE_LIMIT_MS * 10)).toEqual([
      { type: 'drop', reason: `silent for more than ${SILENCE_LIMIT_MS} ms` },
    ]);
  });

  it('once ended, nothing more: messages and ticks do nothing', () => {
    const s = registered();
    s.ended();
    expect(s.receive(HEARTBEAT, 1)).toEqual([]);
    expect(s.tick(SILENCE_LIMIT_MS * 10)).toEqual([]);
    expect(s.beginRequest()).toBe(false);
    expect(s.terminal?.registration).toEqual(REGISTRATION);
  });
});
