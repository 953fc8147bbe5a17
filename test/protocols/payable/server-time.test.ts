import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeTerminalMessage,
  formatServerTime,
  parseServerTime,
} from '../../../src/protocols/payable/codec.js';

// `server_time` is the terminal's local clock on a 12-hour dial: `2020-09-29 01:42:22 PM` (seed
// 000 line 71); the vendor's public README (payable/ecr-sdks, README.md) shows
// `2020-12-12 01:30:55 AM` and `2021-02-24 09:47:43 AM`.
const VENDOR_FORM = /^\d{4}-\d{2}-\d{2} (0[1-9]|1[0-2]):[0-5]\d:[0-5]\d (AM|PM)$/;

describe('formatServerTime', () => {
  it.each([
    [new Date(2020, 8, 29, 13, 42, 22), '2020-09-29 01:42:22 PM'],
    [new Date(2020, 11, 12, 1, 30, 55), '2020-12-12 01:30:55 AM'],
    [new Date(2021, 1, 24, 9, 47, 43), '2021-02-24 09:47:43 AM'],
    // The 12-hour dial has no hour 00: midnight is 12 AM, noon 12 PM.
    [new Date(2024, 0, 1, 0, 5, 0), '2024-01-01 12:05:00 AM'],
    [new Date(2024, 0, 1, 12, 0, 0), '2024-01-01 12:00:00 PM'],
    [new Date(2024, 0, 1, 23, 59, 59), '2024-01-01 11:59:59 PM'],
  ])('%s → %s, as the vendor writes it', (date, text) => {
    expect(formatServerTime(date)).toBe(text);
  });

  it('any instant → the vendor form, which reads back to the same local time', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date(2000, 0, 1), max: new Date(2099, 11, 31), noInvalidDate: true }),
        (date) => {
          const text = formatServerTime(date);
          expect(text).toMatch(VENDOR_FORM);
          const p = (n: number) => String(n).padStart(2, '0');
          expect(parseServerTime(text)).toBe(
            `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}T${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`,
          );
        },
      ),
    );
  });
});

describe('parseServerTime', () => {
  it.each([
    ['2020-09-29 01:42:22 PM', '2020-09-29T13:42:22'],
    ['2020-12-12 01:30:55 AM', '2020-12-12T01:30:55'],
    ['2024-01-01 12:05:00 AM', '2024-01-01T00:05:00'],
    ['2024-01-01 12:00:00 PM', '2024-01-01T12:00:00'],
    // The 24-hour form our simulator sent before it followed the vendor: still read.
    ['2024-05-01 10:00:00', '2024-05-01T10:00:00'],
    ['2024-05-01 22:15:09', '2024-05-01T22:15:09'],
    ['2024-02-29 10:00:00 AM', '2024-02-29T10:00:00'],
  ])('%s → %s', (text, local) => {
    expect(parseServerTime(text)).toBe(local);
  });

  it.each([
    '',
    'S',
    '2020-09-29 00:42:22 PM', // no hour 00 on a 12-hour dial
    '2020-09-29 13:42:22 PM',
    '2020-13-01 01:00:00 AM',
    '2023-02-29 01:00:00 AM', // not a leap year
    '2020-09-29 24:00:00',
    '2020-09-29 01:60:00 PM',
    '2020-09-29 1:42:22 PM',
    '2020-09-29T13:42:22Z',
    '2020-09-29 01:42:22 pm',
  ])('%j is not a server time → undefined, no error', (text) => {
    expect(parseServerTime(text)).toBeUndefined();
  });
});

describe('server_time in a terminal answer', () => {
  const answer = (serverTime: unknown) =>
    decodeTerminalMessage(
      JSON.stringify({ request: { id: 1 }, server_time: serverTime, status: 'STATUS_SUCCESS' }),
    );

  it("the vendor's form → kept as sent, and read as the terminal's local time", () => {
    expect(answer('2020-09-29 01:42:22 PM')).toEqual({
      type: 'answer',
      answer: {
        id: 1,
        status: 'STATUS_SUCCESS',
        serverTime: '2020-09-29 01:42:22 PM',
        terminalTime: '2020-09-29T13:42:22',
      },
    });
  });

  it('an unreadable clock text → kept as sent, no terminal time, and the answer still stands', () => {
    expect(answer('yesterday')).toEqual({
      type: 'answer',
      answer: { id: 1, status: 'STATUS_SUCCESS', serverTime: 'yesterday' },
    });
  });
});
