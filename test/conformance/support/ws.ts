import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { ByteReader, DEFAULT_STEP_TIMEOUT_MS, type Role } from './transcript.js';

/**
 * Message transcripts for the JSON protocols (PAYable over WebSocket; SEMI over WebSocket and raw
 * TCP): the same idea as `transcript.ts` — a conversation written literally from independent
 * sources and played by a scripted peer on a real socket — but a step is one text message, and
 * what the code under test sends may be compared as JSON where key order, whitespace or a value
 * the other side chooses (a transaction id, a clock) may legitimately differ.
 */

/** How a message from the code under test is compared with the step's literal text. */
export type Compare =
  /** Exactly the same text. */
  | { readonly kind: 'bytes' }
  /** The same JSON value; key order and whitespace may differ. */
  | { readonly kind: 'json' }
  /**
   * The same keys with values of the same JSON type (objects compared the same way, key by
   * key). `same`: paths (`request.id`) whose values must also be equal; `patterns`: paths whose
   * value, as text, must match; `extra`: keys beyond the literal's that may appear, each with
   * why; `optional`: keys of the literal that may be missing, each with why.
   */
  | {
      readonly kind: 'shape';
      readonly same?: readonly string[];
      readonly patterns?: Readonly<Record<string, RegExp>>;
      readonly extra?: Readonly<Record<string, string>>;
      readonly optional?: Readonly<Record<string, string>>;
    };

export interface MessageStep {
  readonly from: Role;
  /** The message, verbatim from the source. */
  readonly text: string;
  readonly note?: string;
  /** @default { kind: 'bytes' } */
  readonly compare?: Compare;
  /** An extra check on the received text; returns the problem. */
  readonly check?: (text: string) => string | undefined;
  /**
   * Split points (UTF-8 byte offsets) for writing: separate TCP writes, or WebSocket
   * continuation frames (RFC 6455 §5.4) of one message.
   */
  readonly chunks?: readonly number[];
  readonly timeoutMs?: number;
}

export interface MessageCloseStep {
  readonly from: Role;
  readonly close: true;
  readonly note?: string;
  readonly timeoutMs?: number;
}

export interface MessageTranscript {
  /** Where the messages come from: seed file and lines, repository and path, vendor page. */
  readonly source: string;
  /** What the conversation demonstrates. */
  readonly shows: string;
  readonly steps: readonly (MessageStep | MessageCloseStep)[];
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function typeOf(value: Json): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function shapeProblem(
  want: Json,
  got: Json,
  rule: Extract<Compare, { kind: 'shape' }>,
  path: string,
): string | undefined {
  const pattern = rule.patterns?.[path];
  if (pattern !== undefined) {
    const text = typeof got === 'string' || typeof got === 'number' ? String(got) : undefined;
    return text !== undefined && pattern.test(text)
      ? undefined
      : `${path}: ${JSON.stringify(got)} does not match ${pattern}`;
  }
  if (typeOf(want) !== typeOf(got))
    return `${path || 'message'}: a ${typeOf(got)}, where the source has a ${typeOf(want)}`;
  if (rule.same?.includes(path) === true && JSON.stringify(want) !== JSON.stringify(got))
    return `${path}: ${JSON.stringify(got)}, where the source has ${JSON.stringify(want)}`;
  if (typeOf(want) !== 'object') return undefined;
  const w = want as Record<string, Json>;
  const g = got as Record<string, Json>;
  const at = (key: string) => (path === '' ? key : `${path}.${key}`);
  for (const key of Object.keys(w)) {
    if (!(key in g)) {
      if (rule.optional?.[at(key)] !== undefined) continue;
      return `${at(key)}: missing`;
    }
    const problem = shapeProblem(w[key] as Json, g[key] as Json, rule, at(key));
    if (problem !== undefined) return problem;
  }
  for (const key of Object.keys(g)) {
    if (!(key in w) && rule.extra?.[at(key)] === undefined)
      return `${at(key)}: not in the source, and not listed as an allowed extra`;
  }
  return undefined;
}

/** Why `got` does not stand for `step`, or undefined when it does. */
export function messageProblem(step: MessageStep, got: string): string | undefined {
  const compare = step.compare ?? { kind: 'bytes' };
  let problem: string | undefined;
  if (compare.kind === 'bytes') {
    problem = got === step.text ? undefined : 'the text differs';
  } else {
    let parsed: Json;
    try {
      parsed = JSON.parse(got) as Json;
    } catch {
      return 'not JSON';
    }
    const want = JSON.parse(step.text) as Json;
    problem =
      compare.kind === 'json'
        ? JSON.stringify(sortKeys(want)) === JSON.stringify(sortKeys(parsed))
          ? undefined
          : 'a different JSON value'
        : shapeProblem(want, parsed, compare, '');
  }
  return problem ?? step.check?.(got);
}

function sortKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortKeys(value[key] as Json)]),
  );
}

/** One end of a message conversation, over whichever transport. */
export interface MessageChannel {
  send(text: string, chunks?: readonly number[]): Promise<void>;
  /** The next message; for raw TCP, `expected` says how to cut it from the byte stream. */
  next(expected: MessageStep, timeoutMs: number): Promise<string | 'closed' | 'timeout'>;
  close(): void;
}

function pieces(text: string, chunks: readonly number[] = []): Buffer[] {
  const bytes = Buffer.from(text, 'utf8');
  const offsets = [0, ...chunks, bytes.length];
  return offsets.slice(1).map((end, i) => bytes.subarray(offsets[i], end));
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A `ws` socket as a channel; chunks become continuation frames of one message. */
export function wsChannel(socket: WebSocket): MessageChannel {
  const inbox: string[] = [];
  let closed = false;
  let wake: (() => void) | undefined;
  socket.on('message', (data, isBinary) => {
    inbox.push(isBinary ? '<binary>' : String(data));
    wake?.();
  });
  socket.on('close', () => {
    closed = true;
    wake?.();
  });
  socket.on('error', () => undefined);
  return {
    async send(text, chunks) {
      const parts = pieces(text, chunks);
      for (const [i, part] of parts.entries()) {
        const fin = i === parts.length - 1;
        await new Promise<void>((resolve, reject) =>
          socket.send(part, { binary: false, fin }, (e) => (e ? reject(e) : resolve())),
        );
        if (!fin) await pause(15);
      }
    },
    async next(_expected, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (inbox.length === 0) {
        if (closed) return 'closed';
        const left = deadline - Date.now();
        if (left <= 0) return 'timeout';
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      return inbox.shift() as string;
    },
    close: () => socket.terminate(),
  };
}

/**
 * Length of the first JSON object in `bytes` (after whitespace), by brace depth outside strings
 * — written here, not taken from our framer, so that the test does not trust the code it tests.
 */
function objectEnd(bytes: Uint8Array): number | undefined {
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 0x5c) escaped = true;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b) depth++;
    else if (c === 0x7d && --depth === 0) return i + 1;
    else if (depth === 0 && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i + 1;
  }
  return undefined;
}

/** A raw TCP socket as a channel: a JSON message is cut at its closing brace. */
export function tcpChannel(socket: Socket, reader = new ByteReader(socket)): MessageChannel {
  socket.setNoDelay(true);
  return {
    async send(text, chunks) {
      for (const [i, part] of pieces(text, chunks).entries()) {
        if (i > 0) await pause(15);
        await new Promise<void>((resolve, reject) =>
          socket.write(part, (e) => (e ? reject(e) : resolve())),
        );
      }
    },
    async next(expected, timeoutMs) {
      const length = Buffer.byteLength(expected.text, 'utf8');
      const taken =
        (expected.compare ?? { kind: 'bytes' }).kind === 'bytes'
          ? await reader.takeExactly(length, timeoutMs)
          : await reader.takeWhen(objectEnd, timeoutMs);
      if (taken.stopped === 'ok') return Buffer.from(taken.bytes).toString('utf8').trimStart();
      return taken.bytes.length === 0
        ? taken.stopped === 'ended'
          ? 'closed'
          : 'timeout'
        : Buffer.from(taken.bytes).toString('utf8');
    },
    close: () => socket.destroy(),
  };
}

/**
 * Plays `role` of `transcript` on `channel`: sends that role's messages as written and requires
 * the other role's to arrive in order, as each step's `compare` says. Returns what arrived.
 */
export async function playMessages(
  channel: MessageChannel,
  transcript: MessageTranscript,
  role: Role,
): Promise<string[]> {
  const received: string[] = [];
  for (const [index, step] of transcript.steps.entries()) {
    const where = `step ${index + 1}/${transcript.steps.length} (${step.from})${step.note === undefined ? '' : ` "${step.note}"`} of [${transcript.shows}]`;
    const timeoutMs = step.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
    if (step.from === role) {
      if ('close' in step) channel.close();
      else await channel.send(step.text, step.chunks);
      continue;
    }
    if ('close' in step) {
      const got = await channel.next(
        { from: step.from, text: '{}', compare: { kind: 'json' } },
        timeoutMs,
      );
      if (got !== 'closed') throw new Error(`${where}: expected a close, got ${got}`);
      continue;
    }
    const got = await channel.next(step, timeoutMs);
    const problem =
      got === 'closed' || got === 'timeout'
        ? `no message (${got === 'closed' ? 'the connection closed' : `nothing within ${timeoutMs} ms`})`
        : messageProblem(step, got);
    if (problem !== undefined)
      throw new Error(`${where}: ${problem}\n  expected: ${step.text}\n  got:      ${got}`);
    received.push(got);
  }
  return received;
}

export interface ScriptedServer {
  readonly url: string;
  readonly port: number;
  /** The request URL (path and query) of the upgrade, for a WebSocket server. */
  readonly upgradeUrls: string[];
  /** Settles when the transcript was played with the first client (or failed). */
  readonly done: Promise<string[]>;
  close(): Promise<void>;
}

/**
 * A terminal on 127.0.0.1, port 0, playing `role` (the terminal, by default) of `transcript`
 * with the first client; over WebSocket or raw TCP. Later clients are refused.
 */
export async function startScriptedServer(
  transport: 'ws' | 'tcp',
  transcript: MessageTranscript,
  options: {
    readonly role?: Role;
    readonly verifyClient?: (request: IncomingMessage) => boolean;
  } = {},
): Promise<ScriptedServer> {
  const role = options.role ?? 'terminal';
  const upgradeUrls: string[] = [];
  const sockets = new Set<Socket>();
  let first: ((channel: MessageChannel) => void) | undefined;
  const connected = new Promise<MessageChannel>((resolve) => (first = resolve));
  const take = (channel: MessageChannel): boolean => {
    const resolve = first;
    first = undefined;
    resolve?.(channel);
    return resolve !== undefined;
  };
  let stop: () => Promise<void>;
  let port: number;
  if (transport === 'ws') {
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      ...(options.verifyClient === undefined
        ? {}
        : {
            verifyClient: (info: { req: IncomingMessage }) =>
              options.verifyClient?.(info.req) ?? true,
          }),
    });
    await once(wss, 'listening');
    wss.on('connection', (socket, request) => {
      sockets.add(request.socket);
      upgradeUrls.push(request.url ?? '');
      if (!take(wsChannel(socket))) socket.terminate();
    });
    port = (wss.address() as AddressInfo).port;
    stop = () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      });
  } else {
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      if (!take(tcpChannel(socket))) socket.destroy();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
    stop = () => new Promise<void>((resolve) => server.close(() => resolve()));
  }
  const done = connected.then((channel) => playMessages(channel, transcript, role));
  done.catch(() => undefined);
  return {
    url: `${transport}://127.0.0.1:${port}`,
    port,
    upgradeUrls,
    done,
    async close() {
      for (const socket of sockets) socket.destroy();
      await stop();
    },
  };
}

/** Connects to `url` (`ws://…` or `tcp://host:port`) and plays `role` (the POS, by default). */
export async function runScriptedClient(
  url: string,
  transcript: MessageTranscript,
  role: Role = 'pos',
): Promise<string[]> {
  let channel: MessageChannel;
  if (url.startsWith('ws://')) {
    const socket = new WebSocket(url);
    const channelOf = wsChannel(socket);
    await once(socket, 'open');
    channel = channelOf;
  } else {
    const { hostname, port } = new URL(url);
    const socket = connect({ host: hostname, port: Number(port) });
    const reader = new ByteReader(socket);
    await once(socket, 'connect');
    channel = tcpChannel(socket, reader);
  }
  try {
    return await playMessages(channel, transcript, role);
  } finally {
    channel.close();
  }
}
