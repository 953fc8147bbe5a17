import type { DriverRequest, StatusTarget, TerminalDriver } from '../../core/driver.js';
import { toEcrError } from '../../core/errors.js';
import type { DriverOutcome } from '../../core/transaction.js';
import type { TerminalInfo } from '../terminal-listener.js';
import { outcomeToWire, type RpcReply, type RpcRequest } from './wire.js';

/** What the node holding a terminal serves for it. */
export interface HeldTerminal {
  /** The driver over this node's socket to the terminal. */
  readonly driver: TerminalDriver;
  /** The terminal's registration and liveness, while connected here. */
  info(): TerminalInfo | undefined;
}

/**
 * The holder's side of one request another node sent for `terminal`: runs it on this node's
 * driver and says what to answer. Never throws: a failure is a coded refusal.
 */
export async function answerForHeld(
  terminal: HeldTerminal,
  request: RpcRequest,
): Promise<RpcReply> {
  const { driver } = terminal;
  try {
    switch (request.op) {
      case 'status': {
        const info = terminal.info();
        if (info === undefined) return { ok: false, code: 'TERMINAL_OFFLINE', message: 'gone' };
        return { ok: true, info: { ...info } };
      }
      case 'execute': {
        let outcome: DriverOutcome;
        try {
          outcome = await driver.execute(request.request as DriverRequest);
        } catch (error) {
          // A driver throws only before sending, by contract; a bug may not keep it: what began
          // here may have reached the terminal.
          outcome = {
            outcome: 'unknown',
            errorCode: 'OUTCOME_UNKNOWN',
            message: `the holding node's driver failed: ${toEcrError(error).message}`,
          };
        }
        return { ok: true, outcome: outcomeToWire(outcome) };
      }
      case 'query': {
        if (driver.queryOutcome === undefined)
          return { ok: false, code: 'UNSUPPORTED_OPERATION', message: 'no status query' };
        const target: StatusTarget = {
          reference: request.reference,
          ...(request.wireId === undefined ? {} : { wireId: request.wireId }),
          ...(request.attempt === undefined ? {} : { attempt: request.attempt }),
          ...(request.earlierTerminalTxIds === undefined
            ? {}
            : { earlierTerminalTxIds: request.earlierTerminalTxIds }),
          // StatusTarget.sentAt is a date (ms since the epoch), so the wall clock: the age came
          // over the wire and this node's date turns it back into one.
          ...(request.sentAgoMs === undefined ? {} : { sentAt: Date.now() - request.sentAgoMs }),
        };
        const outcome = await driver.queryOutcome(target, { patient: request.patient });
        return { ok: true, outcome: outcomeToWire(outcome) };
      }
      case 'cancel':
        return { ok: true, cancelled: await driver.cancelCurrent() };
      case 'batch-close': {
        if (driver.batchClose === undefined)
          return { ok: false, code: 'UNSUPPORTED_OPERATION', message: 'no batch close' };
        const totals = await driver.batchClose();
        return { ok: true, totals: { ...totals } };
      }
    }
  } catch (error) {
    const e = toEcrError(error);
    return { ok: false, code: e.code, message: e.message };
  }
}
