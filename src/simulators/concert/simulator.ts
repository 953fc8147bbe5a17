import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { findCurrencyByNumeric } from '../../core/currencies.js';
import { toEcrError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { maskPan } from '../../core/pan.js';
import { ConcertSession } from '../../drivers/concert-session.js';
import { CONCERT_CONTROL } from '../../protocols/concert/frame.js';
import {
  CONCERT_PRIVATE_DATA_LENGTH,
  decodeRequest,
  encodeAnswer,
  type ConcertAnswerFields,
  type ConcertRequest,
} from '../../protocols/concert/messages.js';
import type { ByteStream } from '../../transports/byte-stream.js';
import { openPtyPair, type PtyPair } from '../../transports/pty.js';
import { openSerial } from '../../transports/serial.js';
import type { ListeningServer } from '../../transports/serve.js';
import { listenTcpStream } from '../../transports/tcp-stream.js';
import { ChargeLedger } from '../ledger.js';
import { listenControl, NextScenarioQueue } from '../next-scenario.js';
import { DEFAULT_SLOW_ANSWER_MS, SIMULATED_CARD } from '../scenarios.js';

export interface ConcertSimulatorOptions {
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** Concert over IP; 0 picks a free port, null (the default) turns TCP off. */
  readonly tcpPort?: number | null;
  /** A pseudo-terminal pair made with socat; the POS opens `posPath`. @default false */
  readonly pty?: boolean;
  /** `/ledger` and `/next`; 0 picks a free one, null turns it off. @default null */
  readonly controlPort?: number | null;
  /** The terminal's currency. @default 'EUR' */
  readonly currency?: string;
  /** Time the simulated cardholder takes. @default 0 */
  readonly cardDelayMs?: number;
  /** Delay of the slow-approve scenario (amounts ending in 56). @default DEFAULT_SLOW_ANSWER_MS */
  readonly slowAnswerMs?: number;
  /**
   * Chance (0–1) that a frame the terminal sends gets one byte corrupted on the wire, so the
   * POS's NAK and the terminal's resend run for real. Never more than twice in a row for one
   * frame, so that the exchange still gets through within the three resends. @default 0
   */
  readonly lineNoise?: number;
  /**
   * Send the request's private data back in the answer (what the driver once assumed all
   * terminals do). Off by default: like the terminals public implementations describe, the
   * simulator puts its own transaction number (10 digits) there. @default false
   */
  readonly echoPrivate?: boolean;
  readonly logger?: Logger;
}

/** Answers that may wait for the line at once on one session (a terminal has one or two). */
export const MAX_HELD_ANSWERS = 4;

/**
 * A Concert V2 terminal (protocol E / E+) on a real pseudo-terminal and/or TCP, running the same
 * link state machine and codec as the driver from the terminal's side. Behaviour per amount from
 * the shared scenario table; every approval is recorded in the charge ledger, keyed by the
 * request's private data (the driver puts its wire id there).
 */
export class ConcertSimulator {
  readonly ledger = new ChargeLedger();
  /** Scenarios queued with `POST /next`: the next payments take them whatever the amount. */
  readonly next = new NextScenarioQueue();
  private readonly options: ConcertSimulatorOptions;
  private readonly logger: Logger;
  private busy = false;
  private nextTxn = 1;
  private pty: PtyPair | undefined;
  /** The session on the pty: it has no connection to drop. */
  private ptySession: ConcertSession | undefined;
  private tcp: ListeningServer | undefined;
  private control: ListeningServer | undefined;
  private readonly sessions = new Set<ConcertSession>();
  /** Answers waiting for the line, per session (one frame at a time). */
  private readonly held = new WeakMap<ConcertSession, string[]>();
  private stopping = false;

  constructor(options: ConcertSimulatorOptions = {}) {
    this.options = options;
    this.logger = (options.logger ?? silentLogger).child({ simulator: 'concert' });
  }

  /** The POS side of the pty pair: what `serial://` addresses name. */
  get device(): string | undefined {
    return this.pty?.posPath;
  }

  get tcpUrl(): string | undefined {
    return this.tcp === undefined ? undefined : `tcp://${this.tcp.host}:${this.tcp.port}`;
  }

  get controlPort(): number {
    return this.control?.port ?? 0;
  }

  async start(): Promise<this> {
    const host = this.options.host ?? '127.0.0.1';
    try {
      if (this.options.pty === true) {
        this.pty = await openPtyPair();
        this.ptySession = this.serve(await openSerial({ path: this.pty.terminalPath }));
      }
      if (this.options.tcpPort !== undefined && this.options.tcpPort !== null) {
        this.tcp = await listenTcpStream({
          host,
          port: this.options.tcpPort,
          onConnection: (stream) => this.serve(stream),
        });
      }
      if (this.options.controlPort !== undefined && this.options.controlPort !== null) {
        this.control = await listenControl({
          host,
          port: this.options.controlPort,
          queue: this.next,
          pages: (path) =>
            path === '/ledger'
              ? { status: 200, contentType: 'application/json', body: JSON.stringify(this.ledger) }
              : {
                  status: 404,
                  contentType: 'text/plain; charset=utf-8',
                  body: 'path: must be /ledger or /next\n',
                },
        });
      }
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.logger.info({ device: this.device, tcp: this.tcpUrl }, 'terminal ready');
    return this;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.sessions].map((s) => s.close().catch(() => {})));
    await Promise.all([this.tcp?.close(), this.control?.close()]);
    await this.pty?.close();
  }

  /** Simulates pulling the cable: the pty pair disappears under the POS. */
  async unplug(): Promise<void> {
    await this.pty?.close();
  }

  private serve(stream: ByteStream): ConcertSession {
    let corruptedInARow = 0;
    const noise = this.options.lineNoise ?? 0;
    const session: ConcertSession = new ConcertSession(stream, {
      role: 'terminal',
      logger: this.logger,
      onEvent: (event) => {
        if (event.type === 'message') void this.handle(session, event.data);
        else if (event.type === 'rejected')
          this.logger.info({ why: event.error.message }, 'frame refused (NAK)');
        else if (event.type === 'send-failed')
          this.logger.warn({ why: event.error.message }, 'answer not delivered');
        if (event.type === 'delivered' || event.type === 'send-failed')
          setImmediate(() => this.sendHeld(session));
      },
      corrupt: (bytes) => {
        // Line noise: one data byte of a frame flipped, at most twice in a row.
        if (bytes[0] !== CONCERT_CONTROL.STX || bytes.length < 4) return bytes;
        if (noise <= 0 || corruptedInARow >= 2 || Math.random() >= noise) {
          corruptedInARow = 0;
          return bytes;
        }
        corruptedInARow++;
        const noisy = Uint8Array.from(bytes);
        const at = 1 + Math.floor(Math.random() * (noisy.length - 3));
        noisy[at] = (noisy[at] as number) ^ 0x01;
        this.logger.info({ at }, 'line noise: corrupted a byte');
        return noisy;
      },
    });
    this.sessions.add(session);
    void session.closed.then(() => this.sessions.delete(session));
    return session;
  }

  private answer(
    session: ConcertSession,
    request: ConcertRequest,
    fields: Partial<ConcertAnswerFields>,
  ): void {
    if (!session.isOpen || this.stopping) return;
    const frame = encodeAnswer({
      posNumber: request.posNumber,
      status: 'refused',
      amountMinor: request.amountMinor,
      paymentMode: request.paymentMode,
      size: request.answer,
      currencyNumeric: request.currencyNumeric,
      privateData: request.privateData,
      ...fields,
    });
    // One frame at a time on the line: while an earlier answer is still being delivered (its
    // exchange not over), this one waits its turn, as a terminal's answer does, and is sent
    // once the line is free; a charged card's answer is never thrown away.
    const held = this.held.get(session) ?? [];
    if (session.link.sending || held.length > 0) {
      if (held.length >= MAX_HELD_ANSWERS) {
        this.logger.warn('too many answers waiting for the line: the oldest is dropped');
        held.shift();
      }
      held.push(frame);
      this.held.set(session, held);
      this.logger.info('an earlier answer is still being delivered: this one waits its turn');
      return;
    }
    session.send(frame);
  }

  /** Sends the next answer waiting for the line, once it is free. */
  private sendHeld(session: ConcertSession): void {
    const held = this.held.get(session);
    if (held === undefined || !session.isOpen || this.stopping || session.link.sending) return;
    const next = held.shift();
    if (held.length === 0) this.held.delete(session);
    if (next !== undefined) session.send(next);
  }

  private async handle(session: ConcertSession, data: string): Promise<void> {
    let request: ConcertRequest;
    try {
      request = decodeRequest(data);
    } catch (error) {
      // A frame with a good LRC but a bad request: nothing to answer to (no POS number).
      this.logger.warn({ err: toEcrError(error).message }, 'unreadable request; ignored');
      return;
    }
    if (session.link.sending) {
      // Still delivering the previous answer (the POS's EOT after its request, or its ACK, was
      // lost, and it went on to the next request): the terminal takes no new transaction it
      // could not answer. Nothing is charged; the POS sees no answer.
      this.logger.warn('request while an earlier answer is still being delivered; ignored');
      return;
    }
    // The terminal numbers every transaction it answers; by default that number is what goes in
    // the answer's private field, as public implementations read it (pyTeliumManager's
    // `transaction_id`); `echoPrivate` sends the request's private data back instead.
    const txn = String(this.nextTxn++).padStart(CONCERT_PRIVATE_DATA_LENGTH, '0');
    const privateData = this.options.echoPrivate === true ? request.privateData : txn;
    const reply = (fields: Partial<ConcertAnswerFields>): void =>
      this.answer(session, request, { privateData, ...fields });
    const currency = this.options.currency ?? 'EUR';
    if (findCurrencyByNumeric(request.currencyNumeric)?.code !== currency || this.busy) {
      reply({ status: 'refused' });
      return;
    }
    // A scenario queued with POST /next takes the amount's place.
    const scenario = this.next.scenarioFor(request.amountMinor);
    // Concert V2 has no separate busy, invalid or cancelled status: all are refusals.
    if (scenario === 'busy' || scenario === 'invalid') {
      reply({ status: 'refused' });
      return;
    }
    // A011 ("answer at once"): the answer goes now, before the card step, and none follows; it
    // has no valid status (pyTeliumManager: "immediate (without valid status)"), so the status
    // only says the terminal took the transaction, and there is no card number yet. A terminal
    // that goes silent (no-answer) sends not even that.
    const immediate = request.delay === 'immediate';
    if (immediate && scenario !== 'no-answer') reply({ status: 'approved' });
    this.busy = true;
    try {
      const cardDelayMs = this.options.cardDelayMs ?? 0;
      if (cardDelayMs > 0) await sleep(cardDelayMs);
      if (scenario === 'decline' || scenario === 'cancel') {
        if (!immediate) reply({ status: 'refused' });
        return;
      }
      const reference = request.privateData.trim();
      this.ledger.record({
        reference,
        amountMinor: request.amountMinor,
        currency,
        maskedPan: maskPan(SIMULATED_CARD.pan),
        approvalCode: '',
        terminalTxId: txn,
        requestId: reference,
        kind: request.transactionType,
      });
      this.logger.info({ reference, scenario }, 'card charged');
      if (scenario === 'no-answer' || immediate) return;
      if (scenario === 'drop-after-card') {
        // Over TCP the connection drops; a pty has no connection to drop, so it goes silent.
        if (session !== this.ptySession) await session.close();
        return;
      }
      if (scenario === 'slow-approve')
        await sleep(this.options.slowAnswerMs ?? DEFAULT_SLOW_ANSWER_MS);
      // The report field carries the card number, as real terminals do: the driver masks it.
      reply({ status: 'approved', report: SIMULATED_CARD.pan });
    } finally {
      this.busy = false;
    }
  }
}
