/**
 * The gateway bench's baseline: a bare TCP relay on node:net alone, doing the least a gateway
 * must do to carry a POS request to a terminal holding a connection and the answer back. Run as
 * a child process (`node --import tsx bench/relay.ts`), the way the gateway runs, so that both
 * have a process of their own and their RSS can be compared.
 *
 * Terminal port: messages end with 0x04 0x04. The first on a connection is a Register (its
 * TerminalID is read with JSON.parse, nothing checked) and is answered OK-REGISTRATION; a
 * heartbeat is answered {"Status":"OK"}; any other message is passed raw to the POS connection
 * waiting on that terminal. POS port: `<terminalId>\n<payload>\x04\x04` sends the payload to the
 * terminal; the terminal's next message comes back, then 0x04 0x04. `#stats\x04\x04` on the POS
 * port answers `{"heartbeats":H,"terminals":T}`: heartbeats answered so far and terminals held
 * (the bench's heartbeats/s, as it reads the gateway's from /metrics).
 *
 * Prints `{"terminal":P,"pos":Q}` once listening; stops on SIGTERM, SIGINT or the end of stdin
 * (the bench that started it is gone).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

const TERMINATOR = Buffer.from([0x04, 0x04]);
const OK_REGISTRATION = Buffer.from('OK-REGISTRATION\x04\x04', 'latin1');
const HEARTBEAT = '{"Command":"TerminalHeartbeat"}';
const HEARTBEAT_ACK = Buffer.from('{"Status":"OK"}\x04\x04', 'latin1');
/** Bound on a message held without its terminator (the gateway's is 64 KiB too). */
const MAX_FRAME_BYTES = 64 * 1024;

/**
 * Calls `onFrame` with each message, 0x04 0x04 excluded, and the same bytes with it (what a
 * write passes on, no copy); holds only an unfinished message.
 */
function onFrames(socket: Socket, onFrame: (frame: Buffer, whole: Buffer) => void): void {
  let held: Buffer | undefined;
  socket.on('data', (chunk: Buffer) => {
    let bytes = held === undefined ? chunk : Buffer.concat([held, chunk]);
    held = undefined;
    let start = 0;
    for (;;) {
      const at = bytes.indexOf(TERMINATOR, start);
      if (at < 0) break;
      onFrame(bytes.subarray(start, at), bytes.subarray(start, at + 2));
      start = at + 2;
    }
    bytes = bytes.subarray(start);
    if (bytes.length > MAX_FRAME_BYTES) socket.destroy();
    else if (bytes.length > 0) held = Buffer.from(bytes);
  });
}

interface Terminal {
  readonly socket: Socket;
  /** The POS connection waiting for this terminal's answer. */
  waiting: Socket | undefined;
}

const terminals = new Map<string, Terminal>();
let heartbeats = 0;

const terminalServer = createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  let terminal: Terminal | undefined;
  let id: string | undefined;
  socket.on('close', () => {
    if (id !== undefined && terminals.get(id) === terminal) terminals.delete(id);
  });
  onFrames(socket, (frame, whole) => {
    if (terminal === undefined) {
      try {
        id = String((JSON.parse(frame.toString('utf8')) as { TerminalID: unknown }).TerminalID);
      } catch {
        socket.destroy();
        return;
      }
      terminal = { socket, waiting: undefined };
      terminals.get(id)?.socket.destroy();
      terminals.set(id, terminal);
      socket.write(OK_REGISTRATION);
      return;
    }
    if (frame.length === HEARTBEAT.length && frame.toString('latin1') === HEARTBEAT) {
      socket.write(HEARTBEAT_ACK);
      heartbeats++;
      return;
    }
    const pos = terminal.waiting;
    terminal.waiting = undefined;
    if (pos !== undefined && !pos.destroyed) pos.write(whole);
  });
});

const NEWLINE = 0x0a;
const STATS = '#stats';
const UNKNOWN_TERMINAL = Buffer.from(
  '{"STATE":"-1","ERROR_MSG":"relay: no such terminal online"}\x04\x04',
  'latin1',
);

const posServer = createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  onFrames(socket, (frame, whole) => {
    if (frame.length === STATS.length && frame.toString('latin1') === STATS) {
      socket.write(`${JSON.stringify({ heartbeats, terminals: terminals.size })}\x04\x04`);
      return;
    }
    const newline = frame.indexOf(NEWLINE);
    const terminal =
      newline < 0 ? undefined : terminals.get(frame.subarray(0, newline).toString('latin1'));
    if (terminal === undefined || terminal.socket.destroyed) {
      socket.write(UNKNOWN_TERMINAL);
      return;
    }
    terminal.waiting = socket;
    terminal.socket.write(whole.subarray(newline + 1));
  });
});

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // The same backlog the gateway's listeners get (Node's default).
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

const [terminalPort, posPort] = await Promise.all([listen(terminalServer), listen(posServer)]);
process.stdout.write(`${JSON.stringify({ terminal: terminalPort, pos: posPort })}\n`);

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  terminalServer.close();
  posServer.close();
  for (const t of terminals.values()) t.socket.destroy();
  process.exit(0);
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.stdin.on('end', stop).on('close', stop).resume();
