import { ascii, concat, utf8, type Transcript } from '../support/transcript.js';

/**
 * eConduit Cloud terminal-channel conversations written by hand from seed 002
 * (/work/shared/seeds/002_2d9a85099a3f2c3e.txt) and protocols.md ("econduit"), never from our
 * codec. No public eConduit sample beyond the seed was found (searched code and pages for the
 * Register command, "OK-REGISTRATION" and "TerminalHeartbeat"). In these transcripts the role
 * `pos` is the cloud gateway — the POS's side of the terminal's connection — and `terminal` is
 * the terminal.
 *
 * Seed 002, line 3: "all commands sent to the server need to have 2 – 0x04 characters added to
 * the end of the string. This includes registration, heartbeat and transaction responses."
 */

/** The two 0x04 bytes that end every message, both ways. */
const END = Uint8Array.of(0x04, 0x04);

function message(text: string): Uint8Array {
  return concat(ascii(text), END);
}

/**
 * Seed 002, lines 15–21, verbatim as the seed prints them: typographic quotes (U+201C “,
 * U+201D ”, and U+2033 ″ in three places), no opening brace, a `//` comment. Not JSON.
 */
export const SEED_REGISTER_VERBATIM = [
  '“Command”:”Register”,',
  '“TerminalType”:”TerminalManufacturer”,',
  '“TerminalModel”:”Model1″,',
  '“TerminalID”:”29531204″, // This should be the device serial number',
  '“SoftwareVersion”:”SomeProcessor v1.2″,',
  '“AckHeartbeat”:”true”',
  '}',
].join('\n');

/**
 * The same Register as valid JSON: the seed's fields, values and line layout, with straight
 * quotes, the opening brace, and the comment taken out.
 */
export const SEED_REGISTER_JSON = [
  '{',
  '"Command":"Register",',
  '"TerminalType":"TerminalManufacturer",',
  '"TerminalModel":"Model1",',
  '"TerminalID":"29531204",',
  '"SoftwareVersion":"SomeProcessor v1.2",',
  '"AckHeartbeat":"true"',
  '}',
].join('\n');

/** Seed 002, lines 30–32 ({ “Command”:”TerminalHeartbeat” }), with straight quotes. */
export const SEED_HEARTBEAT_JSON = ['{', '"Command":"TerminalHeartbeat"', '}'].join('\n');

export const SEED_TERMINAL = {
  terminalId: '29531204',
  terminalType: 'TerminalManufacturer',
  terminalModel: 'Model1',
  softwareVersion: 'SomeProcessor v1.2',
} as const;

// ---------------------------------------------------------------------------------------------
// Against our gateway's terminal listener: the scripted peer plays the terminal.
// ---------------------------------------------------------------------------------------------

const registerBytes = message(SEED_REGISTER_JSON);
const heartbeatBytes = message(SEED_HEARTBEAT_JSON);

export const GATEWAY_REGISTER_AND_HEARTBEAT: Transcript = {
  source:
    'seed 002 lines 13-22 (Register), 23-26 (OK-REGISTRATION), 28-36 (heartbeat, {"Status":"OK"} when AckHeartbeat is true)',
  shows:
    "the seed's Register and heartbeat (as JSON), each written in pieces with the 0x04 0x04 terminator split between writes",
  steps: [
    {
      from: 'terminal',
      bytes: registerBytes,
      // One byte, then all but the last 0x04, then the last 0x04 on its own.
      chunks: [1, registerBytes.length - 1],
      note: 'Register',
    },
    // Seed line 24: "OK-REGISTRATION (This is a success, anything else is a failure)".
    { from: 'pos', bytes: message('OK-REGISTRATION'), note: 'OK-REGISTRATION' },
    {
      from: 'terminal',
      bytes: heartbeatBytes,
      // The JSON, then each 0x04 in a write of its own.
      chunks: [heartbeatBytes.length - 2, heartbeatBytes.length - 1],
      note: 'TerminalHeartbeat',
    },
    // Seed line 35: {“Status”:”OK”} 0x04 0x04 — the seed's quotes are typography, the bytes JSON.
    { from: 'pos', bytes: message('{"Status":"OK"}'), note: 'heartbeat ack' },
  ],
};

const verbatimBytes = concat(utf8(SEED_REGISTER_VERBATIM), END);

export const GATEWAY_SEED_SAMPLE_VERBATIM: Transcript = {
  source:
    'seed 002 lines 15-21 verbatim; protocols.md "econduit": malformed input gets FAILED-REGISTRATION, never a crash',
  shows:
    "the seed's own Register sample, byte for byte (typographic quotes, no opening brace), refused with FAILED-REGISTRATION and the connection closed",
  steps: [
    {
      from: 'terminal',
      bytes: verbatimBytes,
      // Split inside a three-byte UTF-8 quote, and between the two 0x04.
      chunks: [1, 2, verbatimBytes.length - 1],
      note: 'Register, verbatim from the seed',
    },
    // Seed line 25: "FAILED-REGISTRATION (Generic catch all for any errors that may occur)".
    { from: 'pos', bytes: message('FAILED-REGISTRATION'), note: 'FAILED-REGISTRATION' },
    { from: 'pos', close: true, note: 'the gateway ends the connection' },
  ],
};

// ---------------------------------------------------------------------------------------------
// Against our terminal agent: the scripted peer plays the cloud.
// ---------------------------------------------------------------------------------------------

/**
 * What our agent sends, registered as the seed's terminal: the seed's fields in the seed's
 * order. The seed spreads them over lines; whitespace is the sender's choice, and ours is
 * compact JSON, compared byte for byte here (the field order is the seed's).
 */
const AGENT_REGISTER =
  '{"Command":"Register","TerminalType":"TerminalManufacturer","TerminalModel":"Model1",' +
  '"TerminalID":"29531204","SoftwareVersion":"SomeProcessor v1.2","AckHeartbeat":"true"}';

const okRegistration = message('OK-REGISTRATION');
const statusOk = message('{"Status":"OK"}');

export function agentRegisterAndHeartbeats(heartbeatTimeoutMs: number): Transcript {
  return {
    source:
      'seed 002 lines 13-26 (Register, OK-REGISTRATION), 28-36 (heartbeat once idle, {"Status":"OK"})',
    shows:
      'the terminal registers as the seed shows, then heartbeats while idle; the cloud answers in pieces',
    steps: [
      { from: 'terminal', bytes: message(AGENT_REGISTER), note: 'Register' },
      {
        from: 'pos',
        bytes: okRegistration,
        // One byte, then the rest up to the first 0x04, then the second 0x04.
        chunks: [1, okRegistration.length - 1],
        note: 'OK-REGISTRATION',
      },
      {
        from: 'terminal',
        bytes: message('{"Command":"TerminalHeartbeat"}'),
        timeoutMs: heartbeatTimeoutMs,
        note: 'first TerminalHeartbeat',
      },
      {
        from: 'pos',
        bytes: statusOk,
        chunks: [1, statusOk.length - 2, statusOk.length - 1],
        note: 'heartbeat ack',
      },
      // A second heartbeat on the same connection: the ack was understood (an agent that missed
      // it would drop the line and register again).
      {
        from: 'terminal',
        bytes: message('{"Command":"TerminalHeartbeat"}'),
        timeoutMs: heartbeatTimeoutMs,
        note: 'second TerminalHeartbeat',
      },
      {
        from: 'pos',
        bytes: statusOk,
        chunks: Array.from({ length: statusOk.length - 1 }, (_, i) => i + 1),
        note: 'heartbeat ack, one byte per write',
      },
    ],
  };
}
