/**
 * The gateway bench's second baseline: what a team might build instead of a gateway, MQTT
 * request/response through Debian's mosquitto broker. Every simulated terminal is an MQTT client
 * (MQTT 5, its own connection, keepalive = the terminals' heartbeat interval, so its PINGREQs
 * are the heartbeats) subscribed to `ecr/terminal/<id>/request`; behind it the same SEMI
 * terminal engine as the gateway's simulated terminals (`SemiSimulator`, one charge ledger)
 * answers on the request's MQTT 5 response topic with its correlation data. A POS is an MQTT
 * client of its own per worker, listening on `ecr/pos/<w>/response`, publishing the same SEMI
 * request bytes the relay carries.
 *
 * By default the broker is a mosquitto child process of the bench on a free port (a fresh
 * process, so its VmRSS before and after the terminals connect is theirs alone, and the same
 * start/stop as the gateway and the relay); BENCH_MQTT_URL=mqtt://host:port uses a broker
 * already running instead (its VmRSS read when one mosquitto process runs on this machine).
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MqttClient, type IClientOptions, type IPublishPacket } from 'mqtt';
import { ChargeLedger } from '../src/simulators/ledger.js';
import { SemiSimulator } from '../src/simulators/semi/simulator.js';
import type { LinkClosed, MessageLink } from '../src/transports/message-link.js';
import { startChild, stopChild, type RunningChild } from './children.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';
const HOST = '127.0.0.1';
/** Bound on one MQTT connect (CONNACK) while thousands connect at once. */
const CONNECT_TIMEOUT_MS = 60_000;

export type Qos = 0 | 1;

// ---------------------------------------------------------------------------------------------
// The broker

export interface Broker {
  readonly host: string;
  readonly port: number;
  /** The broker process, for /proc readings; undefined when it cannot be told apart. */
  readonly pid: number | undefined;
  /** `bench child, /usr/sbin/mosquitto` or the URL of the one already running. */
  readonly describe: string;
  /** Its version line (`mosquitto version 2.0.11`), when known. */
  readonly version: string | undefined;
  stop(): Promise<number | string | null>;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, HOST);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once `host:port` accepts a TCP connection. */
async function accepting(host: string, port: number): Promise<void> {
  for (;;) {
    const socket: Socket = tcpConnect({ host, port });
    // events.once rejects on 'error': plain listeners instead.
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      socket.once('error', () => resolve(false));
    });
    socket.destroy();
    if (ok) return;
    await sleep(100);
  }
}

/** `mosquitto 2.0.11`, from the binary's usage text (`mosquitto -h` exits 3). */
function mosquittoVersion(): string | undefined {
  const { stdout } = spawnSync(MOSQUITTO, ['-h'], { encoding: 'utf8' });
  const match = /mosquitto version (\S+)/.exec(stdout ?? '');
  return match === null ? undefined : `mosquitto ${match[1]}`;
}

/** The one mosquitto process on this machine, if exactly one runs. */
function findMosquittoPid(): number | undefined {
  const pids = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'mosquitto';
      } catch {
        return false;
      }
    });
  return pids.length === 1 ? Number(pids[0]) : undefined;
}

/**
 * Starts `mosquitto -c <dir>/mosquitto.conf` on a free port of 127.0.0.1 (no persistence, no
 * connection limit, TCP_NODELAY like the relay's sockets), or, with BENCH_MQTT_URL, uses that
 * broker. The child inherits this process's open-file limit.
 */
export async function startBroker(dir: string): Promise<Broker> {
  const external = process.env.BENCH_MQTT_URL;
  if (external !== undefined && external !== '') {
    const url = new URL(external);
    const port = Number(url.port === '' ? 1883 : url.port);
    await accepting(url.hostname, port);
    const pid = findMosquittoPid();
    return {
      host: url.hostname,
      port,
      pid,
      describe: `${external} (already running)`,
      version: mosquittoVersion(),
      stop: () => Promise.resolve(null),
    };
  }
  const port = await freePort();
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(
    config,
    [
      `listener ${port} ${HOST}`,
      'allow_anonymous true',
      'persistence false',
      'max_connections -1',
      'set_tcp_nodelay true',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      '',
    ].join('\n'),
  );
  const child: RunningChild = await startChild('mosquitto', ['-c', config], {
    command: MOSQUITTO,
    ready: async () => {
      await accepting(HOST, port);
      return { port };
    },
  });
  return {
    host: HOST,
    port,
    pid: child.pid,
    describe: `${MOSQUITTO} as a child process`,
    version: mosquittoVersion(),
    stop: () => stopChild(child),
  };
}

// ---------------------------------------------------------------------------------------------
// Clients

function newClient(broker: Broker, clientId: string, keepaliveSeconds: number): MqttClient {
  const options: IClientOptions = {
    clientId,
    protocolVersion: 5,
    keepalive: keepaliveSeconds,
    clean: true,
    reconnectPeriod: 0,
    resubscribe: false,
    connectTimeout: CONNECT_TIMEOUT_MS,
    manualConnect: true,
  };
  // mqtt.js's own TCP builder leaves Nagle on; the relay and the gateway turn it off.
  return new MqttClient(
    () => tcpConnect({ host: broker.host, port: broker.port, noDelay: true }),
    options,
  );
}

/** Connects and subscribes; resolves once the SUBACK is in. */
async function connectAndSubscribe(client: MqttClient, topic: string, qos: Qos): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () =>
      reject(new Error(`${client.options.clientId}: connection closed before CONNACK`)),
    );
    client.connect();
  });
  await client.subscribeAsync(topic, { qos });
}

/**
 * One terminal's side of the MQTT channel, as the SEMI terminal engine sees it: a request on
 * its topic is a message; what it sends goes to that request's response topic.
 */
class MqttTerminalLink implements MessageLink {
  readonly remote: string;
  private handler: ((text: string) => void) | undefined;
  private reply: { topic: string; correlation: Buffer | undefined } | undefined;
  private open = true;
  private resolveClosed!: (closed: LinkClosed) => void;
  readonly closed = new Promise<LinkClosed>((resolve) => (this.resolveClosed = resolve));

  constructor(
    private readonly client: MqttClient,
    private readonly qos: Qos,
    terminalId: string,
  ) {
    this.remote = `mqtt:ecr/terminal/${terminalId}`;
    client.on('message', (_topic, payload, packet: IPublishPacket) => {
      const topic = packet.properties?.responseTopic;
      if (topic === undefined) return;
      this.reply = { topic, correlation: packet.properties?.correlationData };
      this.handler?.(payload.toString('utf8'));
    });
    client.on('close', () => this.end());
  }

  get isOpen(): boolean {
    return this.open;
  }

  async send(text: string): Promise<void> {
    const reply = this.reply;
    if (reply === undefined) return;
    await this.client.publishAsync(reply.topic, text, {
      qos: this.qos,
      ...(reply.correlation === undefined
        ? {}
        : { properties: { correlationData: reply.correlation } }),
    });
  }

  onMessage(handler: ((text: string) => void) | undefined): void {
    this.handler = handler;
  }

  close(): void {
    this.end();
  }

  terminate(): void {
    this.end();
  }

  private end(): void {
    if (!this.open) return;
    this.open = false;
    this.resolveClosed({ code: 1000, reason: 'closed' });
  }
}

export interface MqttTerminal {
  readonly terminalId: string;
  readonly client: MqttClient;
  /** Connects and subscribes; resolves once it can be asked. */
  start(): Promise<void>;
}

/** The simulated terminals as MQTT clients, each with a SEMI terminal engine behind it. */
export class MqttTerminalFleet {
  readonly ledger = new ChargeLedger();
  readonly terminals: readonly MqttTerminal[];
  private online = 0;
  private pingAnswers = 0;

  constructor(broker: Broker, ids: readonly string[], keepaliveSeconds: number, qos: Qos) {
    this.terminals = ids.map((terminalId) => {
      const client = newClient(broker, `t-${terminalId}`, keepaliveSeconds);
      client.on('error', () => {});
      client.on('packetreceive', (packet) => {
        if (packet.cmd === 'pingresp') this.pingAnswers++;
      });
      const engine = new SemiSimulator({
        serial: terminalId,
        currency: 'USD',
        ledger: this.ledger,
      });
      engine.attach(new MqttTerminalLink(client, qos, terminalId));
      let started: Promise<void> | undefined;
      const start = () =>
        (started ??= connectAndSubscribe(client, `ecr/terminal/${terminalId}/request`, qos).then(
          () => {
            this.online++;
          },
        ));
      return { terminalId, client, start };
    });
  }

  /** Terminals connected and subscribed. */
  get onlineCount(): number {
    return this.online;
  }

  /** PINGRESPs the terminals have had from the broker (their heartbeats, answered). */
  get heartbeatsAnswered(): number {
    return this.pingAnswers;
  }

  /** Terminals whose connection is up now. */
  get connectedCount(): number {
    return this.terminals.filter((t) => t.client.connected).length;
  }

  async stop(): Promise<void> {
    await Promise.all(this.terminals.map((t) => t.client.endAsync(true).catch(() => {})));
  }
}

/** The POS side: one MQTT client per worker, one request in flight on each. */
export class MqttRequester {
  private readonly waiting = new Map<
    number,
    { correlation: string; resolve: (b: Buffer) => void }
  >();

  private constructor(
    private readonly clients: readonly MqttClient[],
    private readonly qos: Qos,
  ) {
    clients.forEach((client, w) => {
      client.on('message', (_topic, payload, packet: IPublishPacket) => {
        const wait = this.waiting.get(w);
        const correlation = packet.properties?.correlationData?.toString('utf8');
        if (wait === undefined || correlation !== wait.correlation) return;
        this.waiting.delete(w);
        wait.resolve(payload);
      });
    });
  }

  static async open(broker: Broker, workers: number, qos: Qos): Promise<MqttRequester> {
    const clients = Array.from({ length: workers }, (_, w) => newClient(broker, `pos-${w}`, 60));
    await Promise.all(clients.map((c, w) => connectAndSubscribe(c, `ecr/pos/${w}/response`, qos)));
    return new MqttRequester(clients, qos);
  }

  /** Publishes `payload` to the terminal and resolves with its answer; `refId` correlates. */
  request(worker: number, terminalId: string, payload: string, refId: string, timeoutMs: number) {
    const client = this.clients[worker] as MqttClient;
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(worker);
        reject(new Error(`no answer over MQTT within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(worker, {
        correlation: refId,
        resolve: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
      });
      client
        .publishAsync(`ecr/terminal/${terminalId}/request`, payload, {
          qos: this.qos,
          properties: {
            responseTopic: `ecr/pos/${worker}/response`,
            correlationData: Buffer.from(refId, 'utf8'),
          },
        })
        .catch((error: unknown) => {
          clearTimeout(timer);
          this.waiting.delete(worker);
          reject(error as Error);
        });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.endAsync(true).catch(() => {})));
  }
}
