import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EcrError } from '../../../src/core/errors.js';
import {
  HEARTBEAT,
  HEARTBEAT_ACK,
  REGISTRATION_RESULTS,
  decodeGatewayMessage,
  decodeRegister,
  decodeTerminalMessage,
  encodeRegister,
  type Registration,
} from '../../../src/protocols/econduit/messages.js';
import { thrownBy } from '../../helpers.js';

/** Any Unicode scalar value (no lone surrogates), 1- to 4-byte UTF-8 all likely. */
const scalar = fc
  .oneof(
    fc.integer({ min: 0, max: 0x7f }),
    fc.integer({ min: 0x80, max: 0x7ff }),
    fc.integer({ min: 0x800, max: 0xd7ff }),
    fc.integer({ min: 0xe000, max: 0xffff }),
    fc.integer({ min: 0x10000, max: 0x10ffff }),
  )
  .map((c) => String.fromCodePoint(c));

const REGISTER = {
  Command: 'Register',
  TerminalType: 'TerminalManufacturer',
  TerminalModel: 'Model1',
  TerminalID: '29531204',
  SoftwareVersion: 'SomeProcessor v1.2',
  AckHeartbeat: 'true',
};
const EXPECTED: Registration = {
  terminalType: 'TerminalManufacturer',
  terminalModel: 'Model1',
  terminalId: '29531204',
  softwareVersion: 'SomeProcessor v1.2',
  ackHeartbeat: true,
};

/** The Register command with some fields replaced (or removed, with `undefined`). */
const register = (patch: Record<string, unknown> = {}): string =>
  JSON.stringify({ ...REGISTER, ...patch });

/** The registration sample of seed 002, verbatim: typographic quotes, no opening brace. */
const SEED_SAMPLE = [
  '“Command”:”Register”,',
  '“TerminalType”:”TerminalManufacturer”,',
  '“TerminalModel”:”Model1″,',
  '“TerminalID”:”29531204″, // This should be the device serial number',
  '“SoftwareVersion”:”SomeProcessor v1.2″,',
  '“AckHeartbeat”:”true”',
  '}',
].join('\n');

describe('decodeRegister', () => {
  it('reads a valid Register with "AckHeartbeat":"true" as a string, as the seed writes it', () => {
    expect(decodeRegister(register())).toEqual(EXPECTED);
    expect(decodeTerminalMessage(register())).toEqual({ type: 'register', ...EXPECTED });
  });

  it('reads AckHeartbeat as a JSON boolean, "false", any case of the strings, or absent', () => {
    expect(decodeRegister(register({ AckHeartbeat: true })).ackHeartbeat).toBe(true);
    expect(decodeRegister(register({ AckHeartbeat: false })).ackHeartbeat).toBe(false);
    expect(decodeRegister(register({ AckHeartbeat: 'false' })).ackHeartbeat).toBe(false);
    expect(decodeRegister(register({ AckHeartbeat: 'TRUE' })).ackHeartbeat).toBe(true);
    expect(decodeRegister(register({ AckHeartbeat: 'True' })).ackHeartbeat).toBe(true);
    expect(decodeRegister(register({ AckHeartbeat: 'False' })).ackHeartbeat).toBe(false);
    expect(decodeRegister(register({ AckHeartbeat: undefined })).ackHeartbeat).toBe(false);
  });

  it('accepts surrounding whitespace and ignores unknown fields', () => {
    expect(decodeRegister(` \n${register({ Extra: 1 })}\r\n`)).toEqual(EXPECTED);
  });

  it("refuses the seed's own sample text (typographic quotes, no opening brace) without crashing", () => {
    const error = thrownBy(() => decodeRegister(SEED_SAMPLE));
    expect(error).toMatchObject({ code: 'PROTOCOL_ERROR', field: 'message' });
    expect(error.message).toMatch(/JSON/);
    // Read as any terminal message it is a payload (its own codec will judge it), not a crash.
    expect(decodeTerminalMessage(SEED_SAMPLE)).toEqual({ type: 'payload', text: SEED_SAMPLE });
  });

  it('refuses JSON that is not an object', () => {
    for (const text of ['[]', '"x"', '42', 'null', 'true', '[{"Command":"Register"}]']) {
      expect(
        thrownBy(() => decodeRegister(text)),
        text,
      ).toMatchObject({
        code: 'PROTOCOL_ERROR',
        field: 'message',
        rule: 'must be a JSON object',
      });
    }
    expect(thrownBy(() => decodeRegister(''))).toMatchObject({
      code: 'PROTOCOL_ERROR',
      field: 'message',
    });
  });

  it('names each missing required field with the rule "is required"', () => {
    for (const field of ['TerminalType', 'TerminalModel', 'TerminalID', 'SoftwareVersion']) {
      const error = thrownBy(() => decodeRegister(register({ [field]: undefined })));
      expect(error, field).toMatchObject({ code: 'PROTOCOL_ERROR', field, rule: 'is required' });
      expect(error.message).toContain(field);
    }
  });

  it('names a field of the wrong type', () => {
    for (const [field, value] of [
      ['TerminalType', 7],
      ['TerminalModel', null],
      ['TerminalID', 29531204],
      ['SoftwareVersion', ['v1']],
      ['TerminalID', { id: '1' }],
    ] as const) {
      expect(
        thrownBy(() => decodeRegister(register({ [field]: value }))),
        field,
      ).toMatchObject({
        code: 'PROTOCOL_ERROR',
        field,
        rule: 'must be a string',
      });
    }
    for (const value of ['yes', 1, 0, null, '']) {
      expect(
        thrownBy(() => decodeRegister(register({ AckHeartbeat: value }))),
        String(value),
      ).toMatchObject({
        code: 'PROTOCOL_ERROR',
        field: 'AckHeartbeat',
        rule: 'must be true or false',
      });
    }
  });

  it('refuses over-long values', () => {
    for (const [field, max] of [
      ['TerminalType', 64],
      ['TerminalModel', 64],
      ['TerminalID', 64],
      ['SoftwareVersion', 128],
    ] as const) {
      expect(decodeRegister(register({ [field]: 'a'.repeat(max) }))).toBeDefined();
      expect(
        thrownBy(() => decodeRegister(register({ [field]: 'a'.repeat(max + 1) }))),
        field,
      ).toMatchObject({
        code: 'PROTOCOL_ERROR',
        field,
        rule: `must be at most ${max} characters`,
      });
    }
  });

  it('refuses an empty TerminalID or TerminalType and characters outside letters, digits, . _ -', () => {
    for (const field of ['TerminalID', 'TerminalType']) {
      expect(
        thrownBy(() => decodeRegister(register({ [field]: '' }))),
        field,
      ).toMatchObject({
        code: 'PROTOCOL_ERROR',
        field,
        rule: 'must not be empty',
      });
    }
    for (const id of ['2953 1204', '29/31', '../etc', 'id\n', 'é1', '1;DROP', '\u0000', 'a b']) {
      expect(
        thrownBy(() => decodeRegister(register({ TerminalID: id }))),
        id,
      ).toMatchObject({
        code: 'PROTOCOL_ERROR',
        field: 'TerminalID',
        rule: 'letters, digits, . _ - only',
      });
    }
    expect(decodeRegister(register({ TerminalID: 'A-z_0.9' })).terminalId).toBe('A-z_0.9');
    // The model and the software version are free text, empty included.
    expect(decodeRegister(register({ TerminalModel: '', SoftwareVersion: 'v1.2 (β)' }))).toEqual({
      ...EXPECTED,
      terminalModel: '',
      softwareVersion: 'v1.2 (β)',
    });
  });

  it('refuses a heartbeat, a payload or another command where Register must come first', () => {
    const error = thrownBy(() => decodeRegister(HEARTBEAT));
    expect(error).toMatchObject({
      code: 'PROTOCOL_ERROR',
      field: 'Command',
      rule: 'must be Register first',
    });
    expect(error.message).toMatch(/must be Register before anything else/);
    expect(thrownBy(() => decodeRegister('{"STATE":"0"}'))).toMatchObject({
      code: 'PROTOCOL_ERROR',
      field: 'Command',
      rule: 'must be Register first',
    });
    expect(thrownBy(() => decodeRegister('{"Command":"Sale"}'))).toMatchObject({
      code: 'PROTOCOL_ERROR',
      field: 'Command',
    });
  });

  it('property: encodeRegister then decodeRegister gives back the registration', () => {
    const idChar = fc.constantFrom(
      ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-'.split(''),
    );
    const id = fc.string({ unit: idChar, minLength: 1, maxLength: 64 });
    const registration = fc.record({
      terminalType: id,
      terminalModel: fc.string({ maxLength: 64 }),
      terminalId: id,
      softwareVersion: fc.string({ unit: scalar, maxLength: 64 }),
      ackHeartbeat: fc.boolean(),
    });
    fc.assert(
      fc.property(registration, (r) => {
        const text = encodeRegister(r);
        expect(decodeRegister(text)).toEqual(r);
        expect(decodeTerminalMessage(text)).toEqual({ type: 'register', ...r });
      }),
      { numRuns: 500 },
    );
  });
});

describe('decodeTerminalMessage', () => {
  it('reads the heartbeat', () => {
    expect(decodeTerminalMessage(HEARTBEAT)).toEqual({ type: 'heartbeat' });
    expect(decodeTerminalMessage('{\n  "Command": "TerminalHeartbeat"\n}\n')).toEqual({
      type: 'heartbeat',
    });
    expect(HEARTBEAT).toBe('{"Command":"TerminalHeartbeat"}');
  });

  it('refuses an unknown Command, naming the field', () => {
    for (const command of ['Sale', 'register', '', 1, null, { a: 1 }, ['Register']]) {
      const error = thrownBy(() => decodeTerminalMessage(JSON.stringify({ Command: command })));
      expect(error, JSON.stringify(command)).toMatchObject({
        code: 'PROTOCOL_ERROR',
        field: 'Command',
        rule: 'Register or TerminalHeartbeat',
      });
    }
    // A very long command is quoted short in the message.
    const long = thrownBy(() =>
      decodeTerminalMessage(JSON.stringify({ Command: 'x'.repeat(5000) })),
    );
    expect(long.message.length).toBeLessThan(200);
  });

  // Found by fuzzing (test/fuzz): the command was quoted with JSON.stringify, which overflows
  // the stack on nesting JSON.parse takes (a few thousand deep): a RangeError, not a refusal.
  it('refuses a Command nested 20,000 deep with PROTOCOL_ERROR, in Register decoding too', () => {
    const deep = `{"Command":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
    for (const decode of [decodeTerminalMessage, decodeRegister]) {
      const error = thrownBy(() => decode(deep));
      expect(error).toMatchObject({ code: 'PROTOCOL_ERROR', field: 'Command' });
      expect(error.message).toContain('nested too deep');
    }
  });

  it('passes a SEMI answer (JSON without Command) and non-JSON text through unchanged', () => {
    for (const text of [
      '{"STATE":"0","MSG":"APPROVED","AMOUNT":"100"}',
      ' {"STATE":"0"} ',
      'OK-REGISTRATION',
      'not json at all',
      '',
      '[1,2]',
      '"Command"',
      'null',
      '{"command":"Register"}',
      SEED_SAMPLE,
    ]) {
      expect(decodeTerminalMessage(text), text).toEqual({ type: 'payload', text });
    }
  });

  it('property: any string decodes to a message or throws PROTOCOL_ERROR, never anything else', () => {
    const commandish = fc
      .record(
        {
          Command: fc.oneof(
            fc.constantFrom('Register', 'TerminalHeartbeat'),
            fc.string(),
            fc.integer(),
            fc.constant(null),
          ),
          TerminalType: fc.oneof(fc.string({ maxLength: 70 }), fc.integer()),
          TerminalModel: fc.string({ maxLength: 70 }),
          TerminalID: fc.oneof(fc.string({ maxLength: 70 }), fc.constant('29531204')),
          SoftwareVersion: fc.string({ maxLength: 130 }),
          AckHeartbeat: fc.oneof(fc.boolean(), fc.string({ maxLength: 6 }), fc.constant('true')),
        },
        { requiredKeys: ['Command'] },
      )
      .map((o) => JSON.stringify(o));
    const input = fc.oneof(
      fc.string({ unit: scalar }),
      fc.json(),
      commandish,
      commandish.map((s) => s.slice(0, -1)),
    );
    fc.assert(
      fc.property(input, (text) => {
        let result: unknown;
        try {
          result = decodeTerminalMessage(text);
        } catch (error) {
          expect(error).toBeInstanceOf(EcrError);
          expect((error as EcrError).code).toBe('PROTOCOL_ERROR');
          expect((error as EcrError).field).toBeTruthy();
          return;
        }
        expect(['register', 'heartbeat', 'payload']).toContain((result as { type: string }).type);
      }),
      { numRuns: 1500 },
    );
  });
});

describe('decodeGatewayMessage', () => {
  it('reads the three registration results, with surrounding whitespace too', () => {
    expect(REGISTRATION_RESULTS).toEqual([
      'OK-REGISTRATION',
      'FAILED-REGISTRATION',
      'FAILED-INVALID-TERMINAL-TYPE',
    ]);
    for (const result of REGISTRATION_RESULTS) {
      expect(decodeGatewayMessage(result)).toEqual({ type: 'registration', result });
      expect(decodeGatewayMessage(` \r\n${result}\n\t`)).toEqual({ type: 'registration', result });
    }
  });

  it('reads {"Status":"OK"} as the heartbeat acknowledgement', () => {
    expect(HEARTBEAT_ACK).toBe('{"Status":"OK"}');
    expect(decodeGatewayMessage(HEARTBEAT_ACK)).toEqual({ type: 'heartbeat-ack' });
    expect(decodeGatewayMessage(' { "Status" : "OK" }\n')).toEqual({ type: 'heartbeat-ack' });
  });

  it('passes anything else through unchanged as a payload', () => {
    for (const text of [
      '{"Status":"OK","X":1}',
      '{"Status":"ok"}',
      '{"Status":"FAILED"}',
      '{"STATE":"0"}',
      '{"TRAN_MODE":"1","TRAN_CODE":"1","AMOUNT":"100"}',
      '["Status","OK"]',
      '{}',
      'null',
      'OK',
      'ok-registration',
      'OK-REGISTRATION extra',
      '',
      '  ',
      '{"Status":"OK"',
    ]) {
      expect(decodeGatewayMessage(text), text).toEqual({ type: 'payload', text });
    }
  });

  it('property: never throws, and a payload keeps the text untouched', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: scalar }), fc.json()), (text) => {
        const message = decodeGatewayMessage(text);
        if (message.type === 'payload') expect(message.text).toBe(text);
      }),
      { numRuns: 500 },
    );
  });
});
