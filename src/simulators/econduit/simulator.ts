import { once } from 'node:events';
import type { Logger } from 'pino';
import { z } from 'zod';
import { silentLogger } from '../../core/logger.js';
import { loggerOption, MAX_TIMER_MS, parseOptions, wholeNumber } from '../../core/options.js';
import type { AgentEndpoint } from '../../agent/agent-options.js';
import { EconduitAgent } from '../../agent/econduit-agent.js';
import { POS_ONLINE } from '../../protocols/econduit/messages.js';
import type { ListeningServer } from '../../transports/serve.js';
import type { TlsClientConfig } from '../../transports/tls.js';
import { ChargeLedger } from '../ledger.js';
import { listenControl, NextScenarioQueue } from '../next-scenario.js';
import { SemiSimulator } from '../semi/simulator.js';

/** The seed's sample terminal: its serial number is its TerminalID. */
export const ECONDUIT_SIMULATOR_DEFAULT_ID = '29531204';
export const ECONDUIT_SIMULATOR_DEFAULT_TYPE = 'Valor';
/** Most virtual terminals one process runs (20,000 open files per process here). */
export const ECONDUIT_SIMULATOR_MAX_COUNT = 18_000;

export interface EconduitSimulatorOptions {
  /** The gateway's endpoints: primary first, then the secondary. */
  readonly endpoints: readonly AgentEndpoint[];
  /** The first terminal's id; the others count up from it. @default ECONDUIT_SIMULATOR_DEFAULT_ID */
  readonly terminalId?: string;
  /** @default ECONDUIT_SIMULATOR_DEFAULT_TYPE */
  readonly terminalType?: string;
  /** @default 'VL100' */
  readonly terminalModel?: string;
  /** @default 'ecr-bridge simulator' */
  readonly softwareVersion?: string;
  /** Virtual terminals in this process. @default 1 */
  readonly count?: number;
  /** @default the agent's (60 s) */
  readonly heartbeatIntervalMs?: number;
  /** Time the simulated cardholder takes. @default 0 */
  readonly cardDelayMs?: number;
  /** Delay of the slow-approve scenario (amounts ending in 56). */
  readonly slowAnswerMs?: number;
  /** @default 'USD' */
  readonly currency?: string;
  /**
   * Connect to the gateway over TLS (see the agent's `tls`; with `cert` and `key`, every
   * terminal presents that client certificate). @default plain TCP
   */
  readonly tls?: TlsClientConfig;
  /**
   * The registration secret every terminal sends (`TerminalSecret`; see the agent's
   * `terminalSecret`). @default none sent
   */
  readonly terminalSecret?: string;
  /** Address the control port listens on. @default '127.0.0.1' */
  readonly host?: string;
  /** Status page, `/ledger` and `/next`; 0 picks a free one, null turns it off. @default null */
  readonly controlPort?: number | null;
  readonly logger?: Logger;
}

const OPTIONS = z.strictObject({
  endpoints: z
    .array(z.object({ host: z.string().min(1), port: wholeNumber(1, 65_535) }))
    .min(1, 'must name at least the primary endpoint')
    .max(8, 'must name at most 8 endpoints'),
  terminalId: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - (1 to 64)')
    .default(ECONDUIT_SIMULATOR_DEFAULT_ID),
  terminalType: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - (1 to 64)')
    .default(ECONDUIT_SIMULATOR_DEFAULT_TYPE),
  terminalModel: z.string().max(64).default('VL100'),
  softwareVersion: z.string().max(128).default('ecr-bridge simulator'),
  count: wholeNumber(1, ECONDUIT_SIMULATOR_MAX_COUNT).default(1),
  heartbeatIntervalMs: wholeNumber(10, MAX_TIMER_MS).optional(),
  cardDelayMs: wholeNumber(0, MAX_TIMER_MS).default(0),
  slowAnswerMs: wholeNumber(0, MAX_TIMER_MS).optional(),
  currency: z.string().default('USD'),
  tls: z
    .strictObject({
      ca: z.string().min(1).optional(),
      cert: z.string().min(1).optional(),
      key: z.string().min(1).optional(),
    })
    .optional(),
  // The agent checks its bounds, naming `terminalSecret`.
  terminalSecret: z.string().optional(),
  host: z.string().min(1).max(253).default('127.0.0.1'),
  controlPort: wholeNumber(0, 65_535).nullable().default(null),
  logger: loggerOption(),
});

/** One virtual terminal: the cloud agent and the SEMI terminal behind it. */
export interface VirtualTerminal {
  readonly terminalId: string;
  readonly agent: EconduitAgent;
  readonly terminal: SemiSimulator;
}

/**
 * The ids of `count` terminals from `first`: all digits count up keeping the width
 * (29531204, 29531205, …); anything else gets a suffix (`T-A`, `T-A-2`, …).
 */
export function terminalIds(first: string, count: number): string[] {
  if (/^\d+$/.test(first)) {
    const start = BigInt(first);
    return Array.from({ length: count }, (_, i) =>
      (start + BigInt(i)).toString().padStart(first.length, '0'),
    );
  }
  return Array.from({ length: count }, (_, i) => (i === 0 ? first : `${first}-${i + 1}`));
}

/**
 * eConduit cloud terminals (seed 002) without hardware: each a SEMI terminal (the same engine
 * as `simulate semi`, the shared scenario table, a real batch) reached through the cloud agent
 * that holds its connection to the gateway, registers, heartbeats and reconnects. `count` runs
 * many in one process (load tests); all share one charge ledger and one queue of next scenarios.
 */
export class EconduitSimulator {
  readonly ledger = new ChargeLedger();
  /** Scenarios queued with `POST /next`: the next payment on any terminal takes the oldest. */
  readonly next = new NextScenarioQueue();
  readonly terminals: readonly VirtualTerminal[];
  private readonly logger: Logger;
  private readonly host: string;
  private readonly controlPortOption: number | null;
  private control: ListeningServer | undefined;

  constructor(input: EconduitSimulatorOptions) {
    const options = parseOptions(OPTIONS, input, 'EconduitSimulator');
    this.logger = (options.logger ?? silentLogger).child({ simulator: 'econduit' });
    this.host = options.host;
    this.controlPortOption = options.controlPort;
    const quiet = options.count > 1;
    this.terminals = terminalIds(options.terminalId, options.count).map((terminalId) => {
      // With many terminals only the first one's life is logged.
      const logger = quiet && terminalId !== options.terminalId ? silentLogger : this.logger;
      const terminal = new SemiSimulator({
        serial: terminalId,
        currency: options.currency,
        cardDelayMs: options.cardDelayMs,
        ...(options.slowAnswerMs === undefined ? {} : { slowAnswerMs: options.slowAnswerMs }),
        ledger: this.ledger,
        next: this.next,
        logger,
      });
      const agent = new EconduitAgent({
        endpoints: options.endpoints,
        registration: {
          terminalType: options.terminalType,
          terminalModel: options.terminalModel,
          terminalId,
          softwareVersion: options.softwareVersion,
          ackHeartbeat: true,
        },
        ...(options.heartbeatIntervalMs === undefined
          ? {}
          : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
        ...(options.tls === undefined ? {} : { tls: options.tls }),
        ...(options.terminalSecret === undefined ? {} : { terminalSecret: options.terminalSecret }),
        logger: logger.child({ terminalId }),
      });
      agent.on('session', (link) => terminal.attach(link));
      return { terminalId, agent, terminal };
    });
  }

  /** The virtual terminal with this id. */
  terminal(terminalId: string): VirtualTerminal | undefined {
    return this.terminals.find((t) => t.terminalId === terminalId);
  }

  /** Terminals showing "POS Online". */
  get onlineCount(): number {
    return this.terminals.filter((t) => t.agent.status === POS_ONLINE).length;
  }

  /** The control port; 0 when it is off. */
  get controlPort(): number {
    return this.control?.port ?? 0;
  }

  /**
   * Opens the control port (when asked for) and starts every agent; resolves once all are online
   * or `timeoutMs` passed (they keep trying).
   */
  async start(timeoutMs = 0): Promise<this> {
    if (this.controlPortOption !== null) {
      this.control = await listenControl({
        host: this.host,
        port: this.controlPortOption,
        queue: this.next,
        pages: (path) => this.page(path),
      });
    }
    for (const t of this.terminals) t.agent.start();
    if (timeoutMs > 0) await this.whenOnline(timeoutMs);
    return this;
  }

  /** Resolves true once every terminal is online, false when `timeoutMs` passes first. */
  async whenOnline(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (const t of this.terminals) {
      if (t.agent.status === POS_ONLINE) continue;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const signal = AbortSignal.timeout(left);
      try {
        await once(t.agent, 'online', { signal });
      } catch {
        return false;
      }
    }
    return true;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.terminals.map((t) => t.agent.stop()), this.control?.close()]);
  }

  /** The control port's pages (`/next` is the shared route): a status page and the ledger. */
  private page(path: string): { status: number; contentType: string; body: string } {
    if (path === '/') {
      const first = this.terminals[0]?.terminalId ?? '';
      const last = this.terminals[this.terminals.length - 1]?.terminalId ?? '';
      const body = [
        `Terminals: ${this.terminals.length === 1 ? first : `${first} … ${last}`} (${this.terminals.length})`,
        `POS Online: ${this.onlineCount}`,
        `Next scenarios: ${this.next.queued().join(', ') || '(none: by amount)'}`,
        '',
      ].join('\n');
      return { status: 200, contentType: 'text/plain; charset=utf-8', body };
    }
    if (path === '/ledger')
      return { status: 200, contentType: 'application/json', body: JSON.stringify(this.ledger) };
    return {
      status: 404,
      contentType: 'text/plain; charset=utf-8',
      body: 'path: must be /, /ledger or /next\n',
    };
  }
}
