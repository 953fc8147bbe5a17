import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isEcrError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { maskPan } from '../../core/pan.js';
import {
  decodeRequest,
  encodeResponse,
  SEMI_BATCH_FIELDS,
  type DecodedRequest,
} from '../../protocols/semi/codec.js';
import {
  SEMI_ERROR_MESSAGES,
  SEMI_TENDER_NAMES,
  SEMI_TRAN_CODES,
  type SemiTranCode,
} from '../../protocols/semi/codes.js';
import { JsonObjectFramer } from '../../protocols/semi/framer.js';
import type { MessageLink } from '../../transports/message-link.js';
import { listenTcp, type WriteSplitter } from '../../transports/tcp.js';
import { listenWebSocket, type ListeningServer } from '../../transports/websocket.js';
import { ChargeLedger } from '../ledger.js';
import { listenControl, NextScenarioQueue } from '../next-scenario.js';
import { DEFAULT_SLOW_ANSWER_MS, SIMULATED_CARD } from '../scenarios.js';

export const SEMI_SIMULATOR_DEFAULT_SERIAL = 'VL100-5T0R3-0001';
/** The simulated device's EPI: Valor's end point id, ten digits starting with 2 (vendor's docs). */
export const SEMI_SIMULATOR_EPI = '2000000001';
const SEMI_SIMULATOR_MID = '887000000001';
const SEMI_SIMULATOR_TID = '75000001';
/** What the real terminal's screen says while it waits for the POS (seed 004). */
export const SEMI_WAITING_TEXT = 'Server is Waiting for Transaction';

export interface SemiSimulatorOptions {
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** WebSocket port; 0 picks a free one, null turns WebSocket off. @default 5000 */
  readonly wsPort?: number | null;
  /** Raw TCP port; 0 picks a free one, null turns TCP off. @default 5001 */
  readonly tcpPort?: number | null;
  /** Status page, `/ledger`, `/batch` and `/next`; 0 picks a free one. @default 8081 */
  readonly controlPort?: number;
  /** @default SEMI_SIMULATOR_DEFAULT_SERIAL */
  readonly serial?: string;
  /** Currency the ledger records amounts in. @default 'USD' */
  readonly currency?: string;
  /** Time the simulated cardholder takes to present the card. @default 0 */
  readonly cardDelayMs?: number;
  /** Delay of the slow-approve scenario (amounts ending in 56). @default DEFAULT_SLOW_ANSWER_MS */
  readonly slowAnswerMs?: number;
  /**
   * Cut every TCP write into random pieces (true), or by a given splitter, so that the POS's
   * framer meets split objects for real.
   */
  readonly fragment?: boolean | WriteSplitter;
  /** Where charges are recorded (several simulated terminals may share one). @default a new one */
  readonly ledger?: ChargeLedger;
  /** Scenarios queued for the next payments (several terminals may share one). @default a new one */
  readonly next?: NextScenarioQueue;
  readonly logger?: Logger;
}

/** One transaction of the open batch, with the answer the terminal gave for it. */
export interface SemiBatchEntry {
  readonly txnId: string;
  readonly code: SemiTranCode;
  readonly merTxnId?: string;
  readonly reqTxnId?: string;
  /** Approved amount in minor units (0 when not approved). */
  amountMinor: number;
  readonly approved: boolean;
  voided: boolean;
  captured: boolean;
  readonly response: Record<string, string>;
}

interface InProgress {
  readonly link: MessageLink;
  readonly abort: AbortController;
}

const TRAN_TYPES: Readonly<Record<SemiTranCode, string>> = {
  sale: 'SALE',
  auth: 'AUTH',
  capture: 'CAPTURE',
  refund: 'REFUND',
  void: 'VOID',
  tipAdjust: 'TIP ADJUST',
  cancelCurrent: 'CANCEL',
  batchClose: 'BATCH CLOSE',
  lastStatus: 'STATUS',
};

/** What a void, capture or tip adjust may apply to. */
const APPLIES_TO: Partial<Record<SemiTranCode, readonly SemiTranCode[]>> = {
  void: ['sale', 'auth', 'refund', 'capture'],
  capture: ['auth'],
  tipAdjust: ['sale', 'capture'],
};

/** Random pieces of 1–16 bytes. */
function randomPieces(bytes: Uint8Array): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < bytes.length;) {
    const size = 1 + Math.floor(Math.random() * 16);
    pieces.push(bytes.subarray(i, i + size));
    i += size;
  }
  return pieces;
}

function terminalDate(now: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(now.getDate())}${p(now.getMonth() + 1)}${now.getFullYear()} ${p(now.getHours())}:${p(now.getMinutes())}:${p(now.getSeconds())}`;
}

/**
 * A SEMI terminal (seed 004) on real sockets: a WebSocket server and a raw TCP server at once,
 * speaking through the same codec and framer as the driver. One card step at a time across both;
 * behaviour per amount from the shared scenario table; a real batch, so that the status query and
 * batch close answer from what happened; a charge ledger on the control port.
 */
export class SemiSimulator {
  readonly ledger: ChargeLedger;
  /** Scenarios queued with `POST /next`: the next card requests take them whatever the amount. */
  readonly next: NextScenarioQueue;
  readonly serial: string;
  private readonly options: SemiSimulatorOptions;
  private readonly logger: Logger;
  private readonly split: WriteSplitter | undefined;
  private current: InProgress | undefined;
  private batch: SemiBatchEntry[] = [];
  private batchNumber = 1;
  private last: SemiBatchEntry | undefined;
  private nextTxnId = 880001;
  private servers: { ws?: ListeningServer; tcp?: ListeningServer; control?: ListeningServer } = {};

  constructor(options: SemiSimulatorOptions = {}) {
    this.options = options;
    this.ledger = options.ledger ?? new ChargeLedger();
    this.next = options.next ?? new NextScenarioQueue();
    this.serial = options.serial ?? SEMI_SIMULATOR_DEFAULT_SERIAL;
    this.logger = (options.logger ?? silentLogger).child({ simulator: 'semi' });
    this.split =
      options.fragment === true
        ? randomPieces
        : typeof options.fragment === 'function'
          ? options.fragment
          : undefined;
  }

  private get host(): string {
    return this.options.host ?? '127.0.0.1';
  }

  /** `ws://host:port`, when WebSocket is on. */
  get wsUrl(): string | undefined {
    return this.servers.ws === undefined ? undefined : `ws://${this.host}:${this.servers.ws.port}`;
  }

  /** `tcp://host:port`, when TCP is on. */
  get tcpUrl(): string | undefined {
    return this.servers.tcp === undefined
      ? undefined
      : `tcp://${this.host}:${this.servers.tcp.port}`;
  }

  get controlPort(): number {
    return this.servers.control?.port ?? 0;
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  /** The open batch, oldest first. */
  openBatch(): readonly SemiBatchEntry[] {
    return [...this.batch];
  }

  async start(): Promise<this> {
    const host = this.host;
    try {
      const wsPort = this.options.wsPort === undefined ? 5000 : this.options.wsPort;
      const tcpPort = this.options.tcpPort === undefined ? 5001 : this.options.tcpPort;
      if (wsPort !== null) {
        this.servers.ws = await listenWebSocket<null>({
          host,
          port: wsPort,
          authorize: () => ({ accept: true, context: null }),
          onConnection: (link) => this.attach(link),
        });
      }
      if (tcpPort !== null) {
        this.servers.tcp = await listenTcp({
          host,
          port: tcpPort,
          framer: () => new JsonObjectFramer(),
          onConnection: (link) => this.attach(link),
          ...(this.split === undefined ? {} : { split: this.split }),
        });
      }
      this.servers.control = await listenControl({
        host,
        port: this.options.controlPort ?? 8081,
        queue: this.next,
        pages: (path) => this.page(path),
      });
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.logger.info({ serial: this.serial }, SEMI_WAITING_TEXT);
    return this;
  }

  async stop(): Promise<void> {
    this.current?.abort.abort();
    const { ws, tcp, control } = this.servers;
    await Promise.all([ws?.close(), tcp?.close(), control?.close()]);
  }

  /**
   * Serves a POS over `link`, whoever opened it: the simulator's own listeners, or a connection
   * the terminal itself holds (the eConduit simulator's agent). The terminal's state (the card
   * step in progress, the batch, the last transaction) outlives any one link.
   */
  attach(link: MessageLink): void {
    this.logger.info({ remote: link.remote }, 'POS connected');
    void link.closed.then(() => this.logger.info({ remote: link.remote }, 'POS disconnected'));
    link.onMessage((text) => void this.handle(link, text));
  }

  private reply(link: MessageLink, fields: Record<string, string>): void {
    void link.send(encodeResponse(fields)).catch(() => {});
  }

  private refuse(link: MessageLink, code: string | undefined, message: string): void {
    this.reply(link, {
      ...(code === undefined ? {} : { TRAN_CODE: code }),
      STATE: '-1',
      ERROR_MSG: message,
      SERIAL_NO: this.serial,
    });
  }

  private async handle(link: MessageLink, text: string): Promise<void> {
    let request: DecodedRequest;
    try {
      request = decodeRequest(text);
    } catch (error) {
      const reason = isEcrError(error) ? error.message : 'malformed request';
      this.refuse(link, undefined, `${SEMI_ERROR_MESSAGES.invalid}: ${reason}`);
      return;
    }
    const code = SEMI_TRAN_CODES[request.code];
    switch (request.code) {
      case 'cancelCurrent': {
        const current = this.current;
        const cancelled = current !== undefined && current.link === link;
        if (cancelled) current.abort.abort();
        this.reply(link, { TRAN_CODE: code, STATE: cancelled ? '0' : '-2' });
        return;
      }
      case 'lastStatus':
        if (this.current !== undefined) return this.refuse(link, code, SEMI_ERROR_MESSAGES.busy);
        if (this.last === undefined) {
          this.reply(link, {
            TRAN_CODE: code,
            STATE: '-2',
            ERROR_MSG: SEMI_ERROR_MESSAGES.notFound,
          });
          return;
        }
        this.reply(link, { ...this.last.response, TRAN_CODE: code });
        return;
      case 'batchClose':
        if (this.current !== undefined) return this.refuse(link, code, SEMI_ERROR_MESSAGES.busy);
        this.reply(link, this.closeBatch());
        return;
      default:
        break;
    }
    if (this.current !== undefined) return this.refuse(link, code, SEMI_ERROR_MESSAGES.busy);
    const progress: InProgress = { link, abort: new AbortController() };
    this.current = progress;
    try {
      await this.run(progress, request);
    } finally {
      if (this.current === progress) {
        this.current = undefined;
        this.logger.info(SEMI_WAITING_TEXT);
      }
    }
  }

  /** A money request: the scenario table for card requests, the batch for follow-ups. */
  private async run(progress: InProgress, request: DecodedRequest): Promise<void> {
    const { link } = progress;
    const code = SEMI_TRAN_CODES[request.code];
    const amountMinor = request.amountMinor ?? 0;
    const follows = APPLIES_TO[request.code];
    let original: SemiBatchEntry | undefined;
    if (follows !== undefined) {
      original = this.batch.find(
        (e) => e.txnId === request.origTxnId && e.approved && !e.voided && follows.includes(e.code),
      );
      if (original === undefined) {
        return this.refuse(
          link,
          code,
          `${SEMI_ERROR_MESSAGES.invalid}: ORIG_TXN_ID not in the open batch`,
        );
      }
    } else if (amountMinor === 0) {
      return this.refuse(link, code, `${SEMI_ERROR_MESSAGES.invalid}: AMOUNT is required`);
    }
    // Follow-ups need no card: the table (and a scenario queued with POST /next, which takes the
    // amount's place) applies to the card requests only.
    const scenario = original === undefined ? this.next.scenarioFor(amountMinor) : 'approve';
    if (scenario === 'busy') return this.refuse(link, code, SEMI_ERROR_MESSAGES.busy);
    if (scenario === 'invalid') return this.refuse(link, code, SEMI_ERROR_MESSAGES.invalid);

    let cancelled = false;
    const cardDelayMs = original === undefined ? (this.options.cardDelayMs ?? 0) : 0;
    try {
      // No timer at all when there is no delay: a 0 ms timer still costs ~1 ms.
      if (cardDelayMs > 0) await sleep(cardDelayMs, undefined, { signal: progress.abort.signal });
    } catch {
      cancelled = true;
    }
    const txnId = String(this.nextTxnId++);
    // Field names and meanings as in the vendor's published answer and a terminal's answer a
    // public POS captured (test/conformance/semi/transcripts.ts): TRAN_TYPE is the tender,
    // TRAN_METHOD the kind of transaction.
    const base: Record<string, string> = {
      TRAN_CODE: code,
      EPI: SEMI_SIMULATOR_EPI,
      TRAN_TYPE: SEMI_TENDER_NAMES[request.mode],
      TRAN_METHOD: TRAN_TYPES[request.code],
      ...(request.merTxnId === undefined ? {} : { MER_TXN_ID: request.merTxnId }),
      ...(request.reqTxnId === undefined ? {} : { REQ_TXN_ID: request.reqTxnId }),
      TXN_ID: txnId,
      SERIAL_NO: this.serial,
      BATCH_NO: String(this.batchNumber),
      TRAN_NO: String(this.batch.length + 1),
      STAN_ID: String(Number(txnId) % 1_000_000),
      DATE: terminalDate(new Date()),
    };
    const failure =
      cancelled || scenario === 'cancel'
        ? SEMI_ERROR_MESSAGES.cancelled
        : scenario === 'decline'
          ? SEMI_ERROR_MESSAGES.declined
          : undefined;
    if (failure !== undefined) {
      const entry = this.record(request, { ...base, STATE: '-1', ERROR_MSG: failure }, 0);
      return this.reply(link, entry.response);
    }
    const approvedMinor = scenario === 'partial' ? Math.floor(amountMinor / 2) : amountMinor;
    const approvalCode = String(100000 + (Number(txnId) % 900000));
    const card: Record<string, string> =
      original === undefined
        ? {
            MASKED_PAN: maskPan(SIMULATED_CARD.pan),
            CARD_TYPE: SEMI_TENDER_NAMES[request.mode],
            ISSUER: SIMULATED_CARD.brand,
            ENTRY_MODE: 'CHIP',
          }
        : {};
    const response: Record<string, string> = {
      ...base,
      STATE: scenario === 'partial' ? '1' : '0',
      PARTIAL: scenario === 'partial' ? '1' : '0',
      AMOUNT: String(approvedMinor),
      TOTAL_AMOUNT: String(approvedMinor + (request.tipMinor ?? 0)),
      ...card,
      CODE: approvalCode,
      AUTH_RSP_TEXT: scenario === 'partial' ? 'PARTIAL APPROVAL' : 'APPROVED',
      RRN: `${txnId}00`,
      MID: SEMI_SIMULATOR_MID,
      TID: SEMI_SIMULATOR_TID,
    };
    const entry = this.record(request, response, approvedMinor);
    if (original !== undefined) {
      if (request.code === 'void') original.voided = true;
      if (request.code === 'capture') original.captured = true;
      if (request.code === 'tipAdjust') original.amountMinor += request.tipMinor ?? 0;
    }
    this.ledger.record({
      reference: request.merTxnId ?? '',
      amountMinor: request.code === 'tipAdjust' ? (request.tipMinor ?? 0) : approvedMinor,
      currency: this.options.currency ?? 'USD',
      maskedPan: maskPan(SIMULATED_CARD.pan),
      approvalCode,
      terminalTxId: txnId,
      requestId: request.reqTxnId ?? '',
      kind: TRAN_TYPES[request.code].toLowerCase(),
    });
    this.logger.info({ reference: request.merTxnId, txnId, scenario }, 'transaction approved');
    if (scenario === 'no-answer') return;
    if (scenario === 'drop-after-card') {
      link.terminate();
      return;
    }
    if (scenario === 'slow-approve') {
      await sleep(this.options.slowAnswerMs ?? DEFAULT_SLOW_ANSWER_MS).catch(() => {});
    }
    this.reply(link, entry.response);
  }

  private record(
    request: DecodedRequest,
    response: Record<string, string>,
    amountMinor: number,
  ): SemiBatchEntry {
    const entry: SemiBatchEntry = {
      txnId: response.TXN_ID as string,
      code: request.code,
      ...(request.merTxnId === undefined ? {} : { merTxnId: request.merTxnId }),
      ...(request.reqTxnId === undefined ? {} : { reqTxnId: request.reqTxnId }),
      amountMinor,
      approved: response.STATE === '0' || response.STATE === '1',
      voided: false,
      captured: false,
      response,
    };
    this.batch.push(entry);
    this.last = entry;
    return entry;
  }

  /** Totals of the open batch (approved, not voided; an auth counts once captured), then a new batch. */
  private closeBatch(): Record<string, string> {
    let saleCount = 0;
    let saleMinor = 0;
    let refundCount = 0;
    let refundMinor = 0;
    for (const e of this.batch) {
      if (!e.approved || e.voided) continue;
      if (e.code === 'sale' || e.code === 'capture') {
        saleCount++;
        saleMinor += e.amountMinor;
      } else if (e.code === 'refund') {
        refundCount++;
        refundMinor += e.amountMinor;
      }
    }
    const fields: Record<string, string> = {
      TRAN_CODE: SEMI_TRAN_CODES.batchClose,
      STATE: '0',
      SERIAL_NO: this.serial,
      [SEMI_BATCH_FIELDS.batchNumber]: String(this.batchNumber),
      [SEMI_BATCH_FIELDS.saleCount]: String(saleCount),
      [SEMI_BATCH_FIELDS.saleMinor]: String(saleMinor),
      [SEMI_BATCH_FIELDS.refundCount]: String(refundCount),
      [SEMI_BATCH_FIELDS.refundMinor]: String(refundMinor),
      [SEMI_BATCH_FIELDS.netMinor]: String(saleMinor - refundMinor),
    };
    this.logger.info({ batch: this.batchNumber, saleCount, refundCount }, 'batch closed');
    this.batch = [];
    this.batchNumber++;
    return fields;
  }

  /** The control port's pages (`/next` is the shared route): status page, ledger, open batch. */
  private page(path: string): { status: number; contentType: string; body: string } {
    if (path === '/') {
      const body = [
        `Terminal Serial: ${this.serial}`,
        `Status: ${this.busy ? 'Processing Transaction' : SEMI_WAITING_TEXT}`,
        `WebSocket: ${this.wsUrl ?? 'off'}`,
        `TCP: ${this.tcpUrl ?? 'off'}`,
        `Open batch: ${this.batchNumber} (${this.batch.length} transactions)`,
        `Next scenarios: ${this.next.queued().join(', ') || '(none: by amount)'}`,
        '',
      ].join('\n');
      return { status: 200, contentType: 'text/plain; charset=utf-8', body };
    }
    if (path === '/ledger')
      return { status: 200, contentType: 'application/json', body: JSON.stringify(this.ledger) };
    if (path === '/batch') {
      const body = JSON.stringify({ batchNumber: this.batchNumber, transactions: this.batch });
      return { status: 200, contentType: 'application/json', body };
    }
    return {
      status: 404,
      contentType: 'text/plain; charset=utf-8',
      body: 'path: must be /, /ledger, /batch or /next\n',
    };
  }
}
