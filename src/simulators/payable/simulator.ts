import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isEcrError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { parseAmount } from '../../core/money.js';
import { maskPan } from '../../core/pan.js';
import {
  decodePosMessage,
  encodeAnswer,
  encodeAuthorized,
  encodeLegacyGreeting,
  formatServerTime,
  type AnswerFields,
  type PosMessage,
} from '../../protocols/payable/codec.js';
import { FAILED_ERRORS } from '../../protocols/payable/statuses.js';
import { listenHttp } from '../../transports/http-server.js';
import type { MessageLink } from '../../transports/message-link.js';
import { listenWebSocket, type ListeningServer } from '../../transports/websocket.js';
import { ChargeLedger } from '../ledger.js';
import { listenControl, NextScenarioQueue } from '../next-scenario.js';
import { DEFAULT_SLOW_ANSWER_MS, SIMULATED_CARD } from '../scenarios.js';

export const SIMULATOR_DEFAULT_SERIAL = 'PP35271812000161';
export const SIMULATOR_ECR_VERSION = '1.0';

export interface PayableSimulatorOptions {
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** WebSocket port; 0 picks a free one. @default 45454 */
  readonly port?: number;
  /** Status page and `/ledger` port; 0 picks a free one. @default 8080 */
  readonly statusPort?: number;
  /**
   * The control port, apart from the terminal's own status page: its pages plus `/next`; 0 picks
   * a free one, null turns it off. @default null
   */
  readonly controlPort?: number | null;
  /** Access token of newer firmware; without it the simulator behaves as the seed's old firmware. */
  readonly token?: string;
  /** @default SIMULATOR_DEFAULT_SERIAL */
  readonly serial?: string;
  /** @default 'LKR' */
  readonly currency?: string;
  /** Time the simulated cardholder takes to present the card. @default 0 */
  readonly cardDelayMs?: number;
  /** Delay of the slow-approve scenario (amounts ending in 56). @default DEFAULT_SLOW_ANSWER_MS */
  readonly slowAnswerMs?: number;
  readonly logger?: Logger;
}

interface Session {
  readonly pos: string;
  readonly link: MessageLink;
  /** Request ids this POS already used: a repeat is refused, as the real terminal does. */
  readonly seenIds: Set<number>;
}

interface InProgress {
  readonly session: Session;
  readonly abort: AbortController;
}

/**
 * A PAYable terminal on real sockets: a WebSocket server speaking the seed's protocol through the
 * same codec as the driver, a status page, and a charge ledger. Behaviour per amount comes from
 * the shared scenario table (`../scenarios.ts`).
 */
export class PayableSimulator {
  readonly ledger = new ChargeLedger();
  /** Scenarios queued with `POST /next`: the next payments take them whatever the amount. */
  readonly next = new NextScenarioQueue();
  readonly serial: string;
  private readonly options: PayableSimulatorOptions;
  private readonly logger: Logger;
  private readonly sessions = new Map<string, Session>();
  private current: InProgress | undefined;
  private ws: ListeningServer | undefined;
  private http: ListeningServer | undefined;
  private control: ListeningServer | undefined;
  private nextTxid = 26741;

  constructor(options: PayableSimulatorOptions = {}) {
    this.options = options;
    this.serial = options.serial ?? SIMULATOR_DEFAULT_SERIAL;
    this.logger = (options.logger ?? silentLogger).child({ simulator: 'payable' });
  }

  get port(): number {
    return this.ws?.port ?? 0;
  }

  get statusPort(): number {
    return this.http?.port ?? 0;
  }

  /** 0 when the control port is off. */
  get controlPort(): number {
    return this.control?.port ?? 0;
  }

  /** `ws://host:port` to give a driver (without token and POS name). */
  get url(): string {
    return `ws://${this.options.host ?? '127.0.0.1'}:${this.port}`;
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  async start(): Promise<this> {
    const host = this.options.host ?? '127.0.0.1';
    this.ws = await listenWebSocket<string>({
      host,
      port: this.options.port ?? 45454,
      authorize: ({ url, remote }) => {
        const token = this.options.token;
        if (token === undefined)
          return { accept: true, context: url.searchParams.get('pos') || remote };
        const pos = url.searchParams.get('pos') ?? '';
        // protocols.md: bad token, empty POS name or a POS name already connected → 404.
        if (
          url.searchParams.get('token') !== token ||
          pos.trim() === '' ||
          this.sessions.has(pos)
        ) {
          return { accept: false, status: 404 };
        }
        return { accept: true, context: pos };
      },
      onConnection: (link, pos) => this.attach(link, pos),
    });
    try {
      this.http = await listenHttp({
        host,
        port: this.options.statusPort ?? 8080,
        field: 'statusPort',
        handle: (path) => this.page(path),
      });
      const controlPort = this.options.controlPort;
      if (controlPort !== undefined && controlPort !== null) {
        this.control = await listenControl({
          host,
          port: controlPort,
          queue: this.next,
          pages: (path) => this.page(path),
        });
      }
    } catch (error) {
      await Promise.all([this.ws.close(), this.http?.close()]);
      throw error;
    }
    return this;
  }

  async stop(): Promise<void> {
    this.current?.abort.abort();
    await Promise.all([this.ws?.close(), this.http?.close(), this.control?.close()]);
  }

  private attach(link: MessageLink, pos: string): void {
    const session: Session = { pos, link, seenIds: new Set() };
    const key = this.options.token === undefined ? `${pos}#${link.remote}` : pos;
    this.sessions.set(key, session);
    void link.closed.then(() => this.sessions.delete(key));
    link.onMessage((frame) => void this.handle(session, frame));
    void link
      .send(
        this.options.token === undefined
          ? encodeLegacyGreeting(this.serial)
          : encodeAuthorized(this.serial, pos),
      )
      .catch(() => {});
    this.logger.info({ pos }, 'POS connected');
  }

  private reply(session: Session, fields: Omit<AnswerFields, 'serial'>): void {
    void session.link.send(encodeAnswer({ serial: this.serial, ...fields })).catch(() => {});
  }

  private async handle(session: Session, frame: string): Promise<void> {
    let message: PosMessage;
    try {
      message = decodePosMessage(frame);
    } catch (error) {
      const reason = isEcrError(error) ? error.message : 'malformed request';
      this.reply(session, { status: 'STATUS_FAILED', error: `Invalid request: ${reason}` });
      return;
    }
    if (message.type === 'stop') {
      this.current?.abort.abort();
      return;
    }
    const request = { ...message.echo };
    // The echo names the POS: old firmware by its socket address, `/192.168.2.230:41588` (seed
    // 000 line 66); newer firmware by its POS name (the vendor's README, payable/ecr-sdks).
    const origin = this.options.token === undefined ? session.link.remote : session.pos;
    if (session.seenIds.has(message.id)) {
      this.reply(session, {
        status: 'STATUS_FAILED',
        error: FAILED_ERRORS.duplicateId,
        request,
        origin,
      });
      return;
    }
    session.seenIds.add(message.id);
    if (this.current !== undefined) {
      this.reply(session, { status: 'STATUS_BUSY', error: 'Terminal is busy.', request, origin });
      return;
    }
    const currency = this.options.currency ?? 'LKR';
    let amountMinor: number;
    try {
      amountMinor = parseAmount(message.amount, currency).minor;
    } catch {
      this.reply(session, {
        status: 'STATUS_INVALID_AMOUNT',
        error: 'Invalid amount.',
        request,
        origin,
      });
      return;
    }
    const progress: InProgress = { session, abort: new AbortController() };
    this.current = progress;
    try {
      await this.run(progress, {
        amountMinor,
        currency,
        id: message.id,
        reference: message.orderTracking ?? '',
        request,
        origin,
      });
    } finally {
      if (this.current === progress) this.current = undefined;
    }
  }

  private async run(
    progress: InProgress,
    tx: {
      amountMinor: number;
      currency: string;
      id: number;
      reference: string;
      request: Record<string, unknown>;
      origin: string;
    },
  ): Promise<void> {
    const { session } = progress;
    // A scenario queued with POST /next takes the amount's place.
    const scenario = this.next.scenarioFor(tx.amountMinor);
    const answer = (fields: Omit<AnswerFields, 'serial' | 'request' | 'origin'>): void =>
      this.reply(session, { ...fields, request: tx.request, origin: tx.origin });
    if (scenario === 'busy') return answer({ status: 'STATUS_BUSY', error: 'Terminal is busy.' });
    if (scenario === 'invalid')
      return answer({ status: 'STATUS_INVALID_AMOUNT', error: 'Invalid amount.' });
    // The card step: a STOP from the POS during it cancels, and nothing is charged.
    const cardDelayMs = this.options.cardDelayMs ?? 0;
    try {
      // No timer at all when there is no delay: a 0 ms timer still costs ~1 ms and would skew benches.
      if (cardDelayMs > 0) await sleep(cardDelayMs, undefined, { signal: progress.abort.signal });
    } catch {
      return answer({ status: 'STATUS_FAILED', error: FAILED_ERRORS.cancelled });
    }
    if (scenario === 'decline')
      return answer({ status: 'STATUS_FAILED', error: 'Transaction declined.' });
    if (scenario === 'cancel')
      return answer({ status: 'STATUS_FAILED', error: FAILED_ERRORS.cancelled });
    const txid = this.nextTxid++;
    const approvalCode = String(100000 + (txid % 900000));
    this.ledger.record({
      reference: tx.reference,
      amountMinor: tx.amountMinor,
      currency: tx.currency,
      maskedPan: maskPan(SIMULATED_CARD.pan),
      approvalCode,
      terminalTxId: String(txid),
      requestId: String(tx.id),
    });
    this.logger.info({ reference: tx.reference, txid, scenario }, 'card charged');
    if (scenario === 'no-answer') return;
    if (scenario === 'drop-after-card') {
      session.link.terminate();
      return;
    }
    if (scenario === 'slow-approve') {
      await sleep(this.options.slowAnswerMs ?? DEFAULT_SLOW_ANSWER_MS).catch(() => {});
    }
    answer({
      status: 'STATUS_SUCCESS',
      approvalCode,
      cardName: SIMULATED_CARD.holder,
      cardType: SIMULATED_CARD.brand,
      mid: '242332553252353',
      tid: '24343227',
      txid,
      // The vendor's form, `2020-09-29 01:42:22 PM` (seed 000 line 71), in local time.
      serverTime: formatServerTime(new Date()),
      transactionType: 'EMV',
    });
  }

  /** The status page (as the real terminal's port 8080) and the ledger. */
  private page(path: string): { status: number; contentType: string; body: string } {
    const posNames = [...this.sessions.values()].map((s) => s.pos);
    if (path === '/') {
      const body = [
        `Terminal Serial: ${this.serial}`,
        `ECR Version: ${SIMULATOR_ECR_VERSION}`,
        `PAYable Status: ${this.busy ? 'BUSY' : 'READY'}`,
        `Connected POS: ${posNames.length === 0 ? '(none)' : posNames.join(', ')}`,
        '',
      ].join('\n');
      return { status: 200, contentType: 'text/plain; charset=utf-8', body };
    }
    if (path === '/status.json') {
      const body = JSON.stringify({
        serial: this.serial,
        ecrVersion: SIMULATOR_ECR_VERSION,
        status: this.busy ? 'BUSY' : 'READY',
        pos: posNames,
      });
      return { status: 200, contentType: 'application/json', body };
    }
    if (path === '/ledger')
      return { status: 200, contentType: 'application/json', body: JSON.stringify(this.ledger) };
    return {
      status: 404,
      contentType: 'text/plain; charset=utf-8',
      body: 'path: must be /, /status.json or /ledger\n',
    };
  }
}
