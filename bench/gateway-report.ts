/**
 * The gateway bench's report: its tables on stdout (latency per side, then every figure of the
 * three runs side by side with the ratios b/a and b/c), and its results file (bench/results.ts).
 */
import type { MqttExtras, RelayExtras } from './gateway-baselines.js';
import {
  AMOUNT,
  BATCH,
  CONCURRENCY,
  HEARTBEAT_MS,
  TERMINALS,
  TX,
  WARMUP,
  type GatewayExtras,
  type RunResult,
} from './gateway-setup.js';
import { compare, figure, writeResult, type Figure, type Ratio } from './results.js';
import { printTable } from './stats.js';

type Relay = RunResult & RelayExtras;
type Gateway = RunResult & GatewayExtras;
type Mqtt = RunResult & MqttExtras;

/** The tables: (a) the relay, (b) the gateway, (c) MQTT. */
export function printGatewayTables(a: Relay, b: Gateway, c: Mqtt): void {
  const names = [
    '(a) bare TCP relay (node:net)',
    '(b) gateway, HTTP runTransaction',
    `(c) MQTT via ${c.version ?? 'mosquitto'}, QoS ${c.qos}`,
  ] as const;
  console.log(
    `\n${TX} sales of ${AMOUNT} each, ${CONCURRENCY} in flight (each on a terminal of its own), ` +
      `${TERMINALS} terminals connected (MQTT: ${c.terminals}) and heartbeating every ` +
      `${HEARTBEAT_MS / 1000} s; POS→terminal→POS latency\n`,
  );
  printTable([
    [names[0], a.latency],
    [names[1], b.latency],
  ]);
  printTable([
    [names[2], c.latency],
    [names[1], b.latency],
  ]);
  const row = (name: string, ...values: string[]) =>
    console.log(`${name.padEnd(40)} ${values.map((v) => v.padStart(13)).join('')}`);
  const both = (x: number, base: number, digits = 2) => (x / base).toFixed(digits);
  console.log('');
  row('', '(a) relay', '(b) gateway', '(c) MQTT', 'ratio b/a', 'ratio b/c');
  row(
    `sales/s, ${CONCURRENCY} in flight`,
    a.perSecond.toFixed(0),
    b.perSecond.toFixed(0),
    c.perSecond.toFixed(0),
    both(b.perSecond, a.perSecond),
    both(b.perSecond, c.perSecond),
  );
  row(
    'terminals online',
    String(a.terminalsOnline),
    String(b.terminalsOnline),
    String(c.terminalsOnline),
  );
  row(
    `time to connect all, ${BATCH} at a time (s)`,
    a.connectSeconds.toFixed(1),
    b.connectSeconds.toFixed(1),
    c.connectSeconds.toFixed(1),
    both(b.connectSeconds, a.connectSeconds),
    both(b.connectSeconds, c.connectSeconds),
  );
  row(
    'VmRSS, no terminal (MiB)',
    (a.rssBeforeKiB / 1024).toFixed(1),
    (b.rssBeforeKiB / 1024).toFixed(1),
    (c.rssBeforeKiB / 1024).toFixed(1),
  );
  row(
    'VmRSS, all terminals (MiB)',
    (a.rssWithTerminalsKiB / 1024).toFixed(1),
    (b.rssWithTerminalsKiB / 1024).toFixed(1),
    (c.rssWithTerminalsKiB / 1024).toFixed(1),
  );
  row(
    'VmRSS per connected terminal (KiB)',
    a.rssPerTerminalKiB.toFixed(2),
    b.rssPerTerminalKiB.toFixed(2),
    c.rssPerTerminalKiB.toFixed(2),
    both(b.rssPerTerminalKiB, a.rssPerTerminalKiB),
    both(b.rssPerTerminalKiB, c.rssPerTerminalKiB),
  );
  row(
    `heartbeats/s, idle (expected ${Math.round((TERMINALS * 1000) / HEARTBEAT_MS)})`,
    a.heartbeatsPerSecondIdle.toFixed(0),
    b.heartbeatsPerSecondIdle.toFixed(0),
    c.heartbeatsPerSecondIdle.toFixed(0),
    both(b.heartbeatsPerSecondIdle, a.heartbeatsPerSecondIdle),
    both(b.heartbeatsPerSecondIdle, c.heartbeatsPerSecondIdle),
  );
  row(
    'heartbeats/s, during the sales',
    a.heartbeatsPerSecondUnderLoad.toFixed(0),
    b.heartbeatsPerSecondUnderLoad.toFixed(0),
    c.heartbeatsPerSecondUnderLoad.toFixed(0),
  );
  row('  (MQTT: keepalive PINGRESPs the terminals got)');
  row('registrations / online at the end', '', `${b.registrationsOk} / ${b.terminalsOnlineAtEnd}`);
  row('HTTP connections opened', '', String(b.httpConnections));
  row(
    'CPU in the timed sales, % of a core',
    a.cpu.childPercent.toFixed(0),
    b.cpu.childPercent.toFixed(0),
    c.cpu.childPercent.toFixed(0),
  );
  row(
    '  bench process (terminals and POS)',
    a.cpu.benchPercent.toFixed(0),
    b.cpu.benchPercent.toFixed(0),
    c.cpu.benchPercent.toFixed(0),
  );
  row(
    'VmRSS after the sales (MiB)',
    (a.rssAtEndKiB / 1024).toFixed(1),
    (b.rssAtEndKiB / 1024).toFixed(1),
    (c.rssAtEndKiB / 1024).toFixed(1),
  );
  row(
    'VmHWM (MiB)',
    (a.hwmKiB / 1024).toFixed(1),
    (b.hwmKiB / 1024).toFixed(1),
    (c.hwmKiB / 1024).toFixed(1),
  );
  row('charges on the terminals', String(a.charges), String(b.charges), String(c.charges));
  row('child exit code', String(a.exitCode), String(b.exitCode), String(c.exitCode));
  row(
    'MQTT: bench process VmRSS with its clients',
    '',
    '',
    `${(c.clientProcessRssKiB / 1024).toFixed(0)} MiB`,
  );
}

/** The results file, `seconds` the whole bench's. */
export function writeGatewayResult(a: Relay, b: Gateway, c: Mqtt, seconds: number): void {
  const gw = 'gateway';
  const against = (
    measure: string,
    unit: string,
    better: 'lower' | 'higher',
    pick: (r: RunResult) => number,
  ): Ratio[] => [
    compare(measure, unit, better, [gw, pick(b)], ['bare TCP relay', pick(a)]),
    compare(measure, unit, better, [gw, pick(b)], [`MQTT (mosquitto, QoS ${c.qos})`, pick(c)]),
  ];
  const ratios: Ratio[] = [
    ...against('latency p50', 'ms', 'lower', (r) => r.latency.p50),
    ...against('latency p99', 'ms', 'lower', (r) => r.latency.p99),
    ...against('throughput', 'sales/s', 'higher', (r) => r.perSecond),
    ...against('memory per connection', 'KiB', 'lower', (r) => r.rssPerTerminalKiB),
    ...against('time to connect', 's', 'lower', (r) => r.connectSeconds),
    compare(
      'heartbeats/s answered',
      'heartbeats/s',
      'higher',
      [gw, b.heartbeatsPerSecondIdle],
      ['bare TCP relay', a.heartbeatsPerSecondIdle],
    ),
    compare(
      'heartbeats/s answered',
      'heartbeats/s',
      'higher',
      [gw, b.heartbeatsPerSecondIdle],
      [`MQTT keepalive pings (QoS ${c.qos})`, c.heartbeatsPerSecondIdle],
    ),
  ];
  const sides = [
    ['relay', a],
    ['gateway', b],
    ['mqtt', c],
  ] as const;
  const figures: Figure[] = [
    ...sides.flatMap(([side, r]) => [
      figure(`${side}: terminals connected`, r.terminalsOnline, 'terminals'),
      figure(`${side}: latency p50`, r.latency.p50, 'ms'),
      figure(`${side}: latency p99`, r.latency.p99, 'ms'),
      figure(`${side}: latency mean`, r.latency.mean, 'ms'),
      figure(`${side}: throughput`, r.perSecond, 'sales/s'),
      figure(`${side}: memory per connection`, r.rssPerTerminalKiB, 'KiB'),
      figure(`${side}: VmRSS with all connected`, r.rssWithTerminalsKiB / 1024, 'MiB'),
      figure(`${side}: time to connect`, r.connectSeconds, 's'),
      figure(`${side}: CPU during the sales`, r.cpu.childPercent, '% of a core'),
    ]),
    figure('relay: heartbeats/s idle', a.heartbeatsPerSecondIdle, 'heartbeats/s'),
    figure('gateway: heartbeats/s idle', b.heartbeatsPerSecondIdle, 'heartbeats/s'),
    figure(
      'gateway: heartbeats/s during the sales',
      b.heartbeatsPerSecondUnderLoad,
      'heartbeats/s',
    ),
    figure('mqtt: keepalive pings/s idle', c.heartbeatsPerSecondIdle, 'heartbeats/s'),
    figure(
      'mqtt: keepalive pings/s during the sales',
      c.heartbeatsPerSecondUnderLoad,
      'heartbeats/s',
    ),
  ];
  writeResult({
    bench: 'gateway',
    title: `Gateway: ${TERMINALS} terminals, ${TX} sales, ${CONCURRENCY} in flight`,
    seconds,
    parameters: {
      terminals: TERMINALS,
      mqttTerminals: c.terminals,
      heartbeatIntervalMs: HEARTBEAT_MS,
      sales: TX,
      warmup: WARMUP,
      concurrency: CONCURRENCY,
      amount: AMOUNT,
      mqttQos: c.qos,
      mqttBroker: `${c.broker}${c.version === undefined ? '' : `, ${c.version}`}`,
    },
    figures,
    ratios,
    details: { relay: a, gateway: b, mqtt: c },
  });
}
