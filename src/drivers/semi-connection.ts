import type { Logger } from 'pino';
import { EcrError, toEcrError } from '../core/errors.js';
import {
  decodeResponse,
  encodeRequest,
  type SemiRequest,
  type SemiResponse,
} from '../protocols/semi/codec.js';
import type { MessageLink } from '../transports/message-link.js';

/** How one request on a SEMI link ended: the terminal's answer, or why none was seen. */
export type SemiExchange =
  | { readonly type: 'answer'; readonly response: SemiResponse }
  | {
      readonly type: 'no-answer';
      readonly error: EcrError;
      /** False only when the request certainly never left (the link was already down). */
      readonly sent: boolean;
    };

interface Pending {
  readonly request: SemiRequest;
  /** A cancel went out for this request: an answer that names neither is taken for its ack. */
  cancelSent: boolean;
  readonly timer: NodeJS.Timeout;
  readonly settle: (exchange: SemiExchange) => void;
}

/**
 * One link to a SEMI terminal, carrying one request at a time. Answers are matched to the request
 * in flight (its MER_TXN_ID and REQ_TXN_ID when the terminal echoes them); anything that cannot be
 * trusted as that answer — bad bytes, an answer for another transaction, no answer in time —
 * ends the request without an answer and drops the link, so that a late or stray answer can
 * never be taken for the next request's (the driver resolves such a request by a status query
 * on a fresh link, never by sending it again).
 */
export class SemiConnection {
  private pending: Pending | undefined;
  /** True while `beforeSend` of the next request runs: the link is taken. */
  private preparing = false;

  constructor(
    private readonly link: MessageLink,
    private readonly logger: Logger,
  ) {
    link.onMessage((text) => this.receive(text));
    void link.closed.then((closed) => {
      const reason = closed.error?.message ?? `the terminal closed the link (code ${closed.code})`;
      this.settle({
        type: 'no-answer',
        sent: true,
        error: closed.error ?? new EcrError('LINK_LOST', `link lost before the answer: ${reason}`),
      });
    });
  }

  get isOpen(): boolean {
    return this.link.isOpen;
  }

  /** True while a request waits for its answer. */
  get busy(): boolean {
    return this.pending !== undefined || this.preparing;
  }

  /**
   * Sends `request` and resolves with its answer or with why none came within `timeoutMs`.
   * `beforeSend` is awaited right before the first byte; if it throws, nothing is sent and the
   * error propagates.
   */
  async exchange(
    request: SemiRequest,
    timeoutMs: number,
    beforeSend?: () => void | Promise<void>,
  ): Promise<SemiExchange> {
    if (this.pending !== undefined || this.preparing)
      throw new EcrError('INTERNAL', 'two requests in flight on one SEMI link');
    const frame = encodeRequest(request);
    const closed = (): SemiExchange => ({
      type: 'no-answer',
      sent: false,
      error: new EcrError('LINK_LOST', `link to ${this.link.remote} is closed`),
    });
    if (!this.link.isOpen) return closed();
    if (beforeSend !== undefined) {
      this.preparing = true;
      try {
        await beforeSend();
      } finally {
        this.preparing = false;
      }
      // The link may have dropped while the journal wrote: then nothing left.
      if (!this.link.isOpen) return closed();
    }
    const answered = new Promise<SemiExchange>((resolve) => {
      const timer = setTimeout(() => {
        this.fail(new EcrError('TIMEOUT', `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending = { request, timer, settle: resolve, cancelSent: false };
    });
    this.link.send(frame).catch((error: unknown) => {
      this.fail(
        new EcrError(
          'LINK_LOST',
          `sending may have failed part way: ${toEcrError(error, 'LINK_LOST').message}`,
        ),
      );
    });
    return answered;
  }

  /**
   * Asks the terminal to abandon the money request in flight on this link (TRAN_CODE 7). The
   * terminal then answers that request as cancelled (or with its result, if the card step had
   * finished). False when this link carries no money request.
   */
  async cancel(): Promise<boolean> {
    const pending = this.pending;
    const code = pending?.request.code;
    if (pending === undefined || code === 'lastStatus' || code === 'batchClose') return false;
    if (!this.link.isOpen) return false;
    pending.cancelSent = true;
    try {
      await this.link.send(encodeRequest({ code: 'cancelCurrent' }));
      return true;
    } catch {
      // The link went down meanwhile: the request's own outcome is resolved by the status query.
      return false;
    }
  }

  close(): Promise<unknown> {
    this.link.close();
    return this.link.closed;
  }

  private settle(exchange: SemiExchange): void {
    const pending = this.pending;
    this.pending = undefined;
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    pending.settle(exchange);
  }

  /** Ends the request in flight without an answer and drops the link (see the class comment). */
  private fail(error: EcrError): void {
    this.settle({ type: 'no-answer', sent: true, error });
    this.link.terminate();
  }

  private receive(text: string): void {
    let response: SemiResponse;
    try {
      response = decodeResponse(text, this.pending?.request.code);
    } catch (error) {
      const e = toEcrError(error, 'PROTOCOL_ERROR');
      this.logger.warn({ err: e.message }, 'bad message from the terminal; dropping the link');
      this.fail(e);
      return;
    }
    // The acknowledgement of a cancel request: the cancelled request's own answer follows. One
    // that names neither request is taken for the ack too (its "0" means cancelled, not approved).
    const ack =
      response.tranCode === 'cancelCurrent' ||
      (this.pending?.cancelSent === true &&
        response.tranCode === undefined &&
        response.merTxnId === undefined);
    if (ack && this.pending?.request.code !== 'cancelCurrent') {
      this.logger.info({ state: response.state }, 'cancel request acknowledged');
      return;
    }
    const pending = this.pending;
    if (pending === undefined) {
      this.logger.warn(
        { state: response.state, merTxnId: response.merTxnId },
        'answer with no request in flight; ignored',
      );
      return;
    }
    const mismatch = mismatchOf(pending.request, response);
    if (mismatch !== undefined) {
      this.logger.warn({ mismatch }, 'answer for another request; dropping the link');
      this.fail(
        new EcrError('PROTOCOL_ERROR', `the terminal answered another request: ${mismatch}`, {
          field: mismatch.split(' ')[0] as string,
          rule: 'must echo the request in flight',
        }),
      );
      return;
    }
    this.settle({ type: 'answer', response });
  }
}

/**
 * Why `response` cannot be the answer to `request`, or undefined when it can. A status answer
 * describes another transaction by design; only its TRAN_CODE echo is checked.
 */
function mismatchOf(request: SemiRequest, response: SemiResponse): string | undefined {
  if (response.tranCode !== undefined && response.tranCode !== request.code)
    return `TRAN_CODE is for ${response.tranCode}, not ${request.code}`;
  if (request.code === 'lastStatus') return undefined;
  if (
    request.merTxnId !== undefined &&
    response.merTxnId !== undefined &&
    response.merTxnId !== request.merTxnId
  )
    return `MER_TXN_ID is ${response.merTxnId}, not ${request.merTxnId}`;
  if (
    request.reqTxnId !== undefined &&
    response.reqTxnId !== undefined &&
    response.reqTxnId !== request.reqTxnId
  )
    return `REQ_TXN_ID is ${response.reqTxnId}, not ${request.reqTxnId}`;
  return undefined;
}
