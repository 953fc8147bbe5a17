import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CONCERT_CONTROL,
  CONCERT_MAX_DATA_BYTES,
  decodeFrame,
  encodeFrame,
  lrc,
} from '../../../src/protocols/concert/frame.js';
import { thrownBy } from '../../helpers.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const fromHex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));
/** Printable ASCII data, 1 to 80 characters. */
const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: CONCERT_MAX_DATA_BYTES,
});

describe('Concert control bytes', () => {
  it('are the values protocols.md lists', () => {
    expect(CONCERT_CONTROL).toEqual({
      STX: 0x02,
      ETX: 0x03,
      EOT: 0x04,
      ENQ: 0x05,
      ACK: 0x06,
      NAK: 0x15,
    });
    expect(CONCERT_MAX_DATA_BYTES).toBe(80);
  });
});

describe('encodeFrame', () => {
  it.each([
    ['A', '02410342'],
    ['HELLO', '0248454c4c4f0341'],
    [
      '0100001000110978          A010B010',
      '02303130303030313030303131303937382020202020202020202041303130423031300306',
    ],
  ])('frames %j byte-exact as STX data ETX LRC', (data, expected) => {
    expect(hex(encodeFrame(data))).toBe(expected);
  });

  it('a full 80-character answer frames to 83 bytes, a short 25-character one to 28', () => {
    expect(encodeFrame('x'.repeat(80))).toHaveLength(83);
    expect(encodeFrame('x'.repeat(25))).toHaveLength(28);
  });

  it.each([
    ['a control character', 'AB\u0003C', 'must be printable ASCII'],
    ['a non-ASCII character', 'caf\u00e9', 'must be printable ASCII'],
    ['a DEL', 'A\u007f', 'must be printable ASCII'],
    ['empty data', '', 'must be 1 to 80 characters'],
    ['81 characters', 'x'.repeat(81), 'must be 1 to 80 characters'],
  ])('refuses %s with INVALID_INPUT on field data', (_case, data, rule) => {
    expect(thrownBy(() => encodeFrame(data))).toMatchObject({
      code: 'INVALID_INPUT',
      field: 'data',
      rule: expect.stringContaining(rule),
    });
  });

  it('takes a larger bound when the link is configured with one', () => {
    expect(encodeFrame('x'.repeat(100), 100)).toHaveLength(103);
  });
});

describe('lrc', () => {
  it('is the XOR of every byte given: the data and ETX give the frame last byte', () => {
    expect(lrc(fromHex('4103'))).toBe(0x42);
    expect(lrc(new Uint8Array())).toBe(0);
  });

  it('property: the last byte of every frame is the LRC of its data and ETX', () => {
    fc.assert(
      fc.property(printable, (data) => {
        const frame = encodeFrame(data);
        const withEtx = Uint8Array.from([...Buffer.from(data, 'latin1'), CONCERT_CONTROL.ETX]);
        expect(frame[frame.length - 1]).toBe(lrc(withEtx));
        expect(lrc(frame.subarray(1))).toBe(0); // data, ETX and LRC XOR to zero
        expect(decodeFrame(frame)).toBe(data);
      }),
    );
  });

  it('property: flipping any bits of any one data byte makes the LRC check fail', () => {
    fc.assert(
      fc.property(printable, fc.nat(), fc.integer({ min: 1, max: 255 }), (data, at, mask) => {
        const frame = encodeFrame(data);
        const index = 1 + (at % data.length);
        frame[index] = (frame[index] as number) ^ mask;
        expect(lrc(frame.subarray(1, frame.length - 1))).not.toBe(frame[frame.length - 1]);
        expect(() => decodeFrame(frame)).toThrow();
      }),
    );
  });
});

describe('decodeFrame', () => {
  it.each([
    ['no STX', '410342', 'PROTOCOL_ERROR', 'frame'],
    ['no ETX', '02414242', 'PROTOCOL_ERROR', 'frame'],
    ['no data', '020303', 'PROTOCOL_ERROR', 'frame'],
    ['a bad LRC', '02410343', 'PROTOCOL_ERROR', 'lrc'],
    ['a control byte in the data', '0241010343', 'PROTOCOL_ERROR', 'data'],
  ])('refuses a frame with %s, naming the field', (_case, frame, code, field) => {
    expect(thrownBy(() => decodeFrame(fromHex(frame)))).toMatchObject({ code, field });
  });

  it('refuses data past the bound with FRAME_TOO_LARGE', () => {
    const frame = encodeFrame('x'.repeat(81), 81);
    expect(thrownBy(() => decodeFrame(frame))).toMatchObject({
      code: 'FRAME_TOO_LARGE',
      field: 'frame',
    });
  });
});
