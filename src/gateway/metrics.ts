import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { logWriteFailures } from '../core/logger.js';
import type { Outcome } from '../core/transaction.js';
import type { TerminalListener } from './terminal-listener.js';

/** Latency buckets (seconds): from a fast decline to a cardholder taking two minutes. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * The gateway's Prometheus metrics, on a registry of its own (several gateways may share a
 * process in tests): terminals online, registrations by result, heartbeats, transactions by
 * outcome and their POS→terminal→POS latency, plus the process defaults (memory, CPU, handles).
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly transactions: Counter<'command' | 'outcome'>;
  private readonly latency: Histogram<'command'>;
  private readonly settled: Counter<'outcome'>;
  private readonly tlsFailures: Counter<'listener'>;

  constructor(listener: TerminalListener) {
    const registry = this.registry;
    this.tlsFailures = new Counter({
      name: 'ecr_gateway_tls_handshake_failures_total',
      help: 'Connections closed for a failed or missing TLS handshake (plain TCP or HTTP to a TLS listener, untrusted client, stalled handshake), by listener.',
      labelNames: ['listener'] as const,
      registers: [registry],
    });
    collectDefaultMetrics({ register: registry });
    new Gauge({
      name: 'ecr_gateway_terminals_online',
      help: 'Terminals registered on an open connection now.',
      registers: [registry],
      collect() {
        this.set(listener.onlineCount);
      },
    });
    new Gauge({
      name: 'ecr_gateway_terminal_connections',
      help: 'TCP connections from terminals now, registered or not.',
      registers: [registry],
      collect() {
        this.set(listener.connectionCount);
      },
    });
    new Counter({
      name: 'ecr_gateway_registrations_total',
      help: 'Terminal registrations, by answer (rate-limited ones were answered FAILED-REGISTRATION).',
      labelNames: ['result'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [result, count] of Object.entries(listener.stats.registrations))
          this.inc({ result }, count);
      },
    });
    new Counter({
      name: 'ecr_gateway_heartbeats_total',
      help: 'Heartbeats received from registered terminals.',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(listener.stats.heartbeats);
      },
    });
    new Counter({
      name: 'ecr_log_write_failures_total',
      help: 'Log lines this process could not write (full disk, unwritable file): dropped, payments go on.',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(logWriteFailures());
      },
    });
    new Counter({
      name: 'ecr_gateway_unexpected_answers_total',
      help: 'Transaction answers that came with no request waiting (ignored).',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(listener.stats.unexpectedAnswers);
      },
    });
    new Counter({
      name: 'ecr_gateway_registrations_refused_elsewhere_total',
      help: 'Registrations refused because the terminal is live on another address (alert on any: an impostor, or two devices sharing a serial).',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(listener.stats.refusedFromElsewhere);
      },
    });
    new Counter({
      name: 'ecr_gateway_registrations_replaced_elsewhere_total',
      help: 'Registrations from another address that replaced a connection of the same terminal gone silent past its heartbeat window (a terminal that moved).',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(listener.stats.replacedFromElsewhere);
      },
    });
    new Counter({
      name: 'ecr_gateway_registrations_refused_credentials_total',
      help: 'Registrations of a terminal provisioned with a registration secret or a client certificate requirement that did not prove it, by reason (secret-missing, secret-wrong, certificate-missing, certificate-untrusted, certificate-name); refused FAILED-REGISTRATION. Alert on any.',
      labelNames: ['reason'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [reason, count] of Object.entries(listener.stats.refusedCredentials))
          this.inc({ reason }, count);
      },
    });
    new Counter({
      name: 'ecr_gateway_registrations_replaced_verified_total',
      help: 'Registrations that proved the terminal’s identity (secret, client certificate) and replaced a live connection of it from another address (a terminal that moved; if it repeats, two devices hold one terminal’s credentials).',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(listener.stats.replacedVerified);
      },
    });
    this.transactions = new Counter({
      name: 'ecr_gateway_transactions_total',
      help: 'POS transactions answered, by command and outcome.',
      labelNames: ['command', 'outcome'] as const,
      registers: [registry],
    });
    this.latency = new Histogram({
      name: 'ecr_gateway_transaction_duration_seconds',
      help: 'POS→terminal→POS time of the transactions the gateway drove (replays excluded).',
      labelNames: ['command'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
    this.settled = new Counter({
      name: 'ecr_gateway_settled_on_registration_total',
      help: 'Unknown transactions settled by a status query when their terminal registered again.',
      labelNames: ['outcome'] as const,
      registers: [registry],
    });
  }

  transaction(command: string, outcome: Outcome, seconds: number | undefined): void {
    this.transactions.inc({ command, outcome });
    if (seconds !== undefined) this.latency.observe({ command }, seconds);
  }

  settledOnRegistration(outcome: Outcome): void {
    this.settled.inc({ outcome });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** A connection refused for its TLS handshake on `listener`. */
  tlsRefused(listener: 'terminals' | 'http'): void {
    this.tlsFailures.inc({ listener });
  }
}
