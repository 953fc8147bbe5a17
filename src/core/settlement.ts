import type { Logger } from 'pino';
import type { StatusTarget, TerminalDriver } from './driver.js';
import { EcrError, invalid, toEcrError } from './errors.js';
import {
  RECOVERED_BEFORE_SENT,
  type Journal,
  type JournalRow,
  type Owner,
} from './journal-port.js';
import { silentLogger } from './logger.js';
import { redactPans } from './pan.js';
import { hasControlCharacters, type DriverOutcome } from './transaction.js';

/** How many `unknown` rows one `recover()` looks at for the never-sent ones of earlier versions. */
export const RECOVERY_BATCH = 500;

/**
 * How a service settles what ended `unknown` (ARCHITECTURE.md invariant 1: never sent again, the
 * terminal's own word decides): its status query (at once, before the next request, or when the
 * terminal comes back), its late answers, the timeline of rows never sent, and the contradictions
 * a person must see. It never takes the terminal's lock itself: the service calls it under it.
 */
export class Settlement {
  private readonly journal: Journal;
  private readonly logger: Logger;
  private readonly merchantId: string;
  private readonly isAlive: (owner: Owner) => boolean;

  constructor(options: {
    readonly journal: Journal;
    readonly logger: Logger;
    readonly merchantId: string;
    /** Whether the owner of an in-flight row still lives (the service's `isOwnerAlive`). */
    readonly isAlive: (owner: Owner) => boolean;
  }) {
    this.journal = options.journal;
    this.logger = options.logger;
    this.merchantId = options.merchantId;
    this.isAlive = options.isAlive;
  }

  /**
   * Settles what a crashed process left in flight: a row still `received` was never sent and
   * becomes `failed`, a `sent` one `unknown` (never retried). Rows an earlier version left
   * `unknown` although never sent (RECOVERED_BEFORE_SENT, at most RECOVERY_BATCH of them per
   * call) are settled `failed` too. Returns the rows the orphan recovery changed.
   */
  async recover(): Promise<JournalRow[]> {
    const recovered = await this.recoverOrphans();
    const left = await this.journal.list({ state: 'unknown', limit: RECOVERY_BATCH });
    for (const row of left) {
      if (row.message === RECOVERED_BEFORE_SENT)
        await this.settleIfNeverSent(row, 'at start-up', this.logger.child({ id: row.id }));
    }
    return recovered;
  }

  /** Settles the rows of owners that are gone (crash, kill): see `Journal.recoverOrphans`. */
  async recoverOrphans(): Promise<JournalRow[]> {
    const recovered = await this.journal.recoverOrphans(this.isAlive);
    for (const row of recovered) {
      this.logger.warn(
        { reference: row.reference, terminalId: row.terminalId, id: row.id, state: row.state },
        row.state === 'failed'
          ? 'crash left a transaction before it was sent: failed, nothing was charged'
          : 'crash left a transaction unresolved: now unknown',
      );
    }
    return recovered;
  }

  /** The latest request sent to a terminal, when it ended `unknown`. */
  async unknownLatest(terminalId: string): Promise<JournalRow | undefined> {
    const latest = await this.journal.latestSentBefore(
      this.merchantId,
      terminalId,
      Number.MAX_SAFE_INTEGER,
    );
    return latest?.state === 'unknown' ? latest : undefined;
  }

  /**
   * For a terminal that is back, under its lock: settles the latest request sent to it if it
   * ended `unknown`, asking the status query patiently. Resolves with the settled row, or
   * undefined when there was nothing to settle or the terminal still cannot say.
   */
  async reconcile(terminalId: string, driver: TerminalDriver): Promise<JournalRow | undefined> {
    const query = driver.queryOutcome;
    const latest = await this.unknownLatest(terminalId);
    if (query === undefined || latest === undefined) return undefined;
    const log = this.logger.child({ terminalId, reference: latest.reference });
    if (await this.settleIfNeverSent(latest, 'when the terminal came back', log))
      return this.journal.get(latest.id);
    const found = await this.provenNotCharged(
      await query.call(
        driver,
        {
          reference: latest.reference,
          ...(await this.attemptOf(latest)),
          sentAt: await this.localTime(latest.updatedAt),
        },
        { patient: true },
      ),
      latest,
    );
    if (found.outcome === 'unknown') {
      log.warn({ why: found.message }, 'the terminal is back but cannot say yet: still unknown');
      return undefined;
    }
    const settled = await this.journal.resolveUnknown(latest.id, {
      ...found,
      message: `${found.message ?? ''} when the terminal came back`,
    });
    if (settled === undefined) {
      // Settled meanwhile (by hand?): the terminal's word still goes to the timeline.
      await this.noteIfContradicted(
        latest.id,
        found,
        'status query when the terminal came back',
        log,
      );
      return undefined;
    }
    log.warn({ outcome: settled.state }, 'unknown transaction settled');
    return settled;
  }

  /**
   * The first answer to a request was `unknown`: where the terminal has a status query, it says
   * what happened (invariant 1: never sent again). Returns the outcome to journal.
   */
  async askAfterUnknown(
    driver: TerminalDriver,
    row: JournalRow,
    first: DriverOutcome,
    sent: { readonly wireId: number; readonly sentAt: number | undefined },
    log: Logger,
  ): Promise<DriverOutcome> {
    if (first.outcome !== 'unknown' || driver.queryOutcome === undefined) return first;
    log.warn({ err: first.message }, 'outcome not seen: asking the terminal');
    const found = await this.provenNotCharged(
      await driver.queryOutcome(
        {
          reference: row.reference,
          ...(await this.attemptOf(row)),
          wireId: sent.wireId,
          sentAt: sent.sentAt ?? Date.now(),
        },
        { patient: true },
      ),
      row,
    );
    return found.outcome === 'unknown'
      ? { ...first, message: `${first.message ?? 'no answer'}; ${found.message ?? ''}` }
      : { ...found, message: `${found.message ?? ''} (after: ${first.message ?? 'no answer'})` };
  }

  /**
   * Before a new request goes to a terminal that can answer a status query: if the latest
   * request sent to it ended `unknown` (a lost answer the recovery could not settle, or a crash),
   * ask now — once another transaction runs, "the last transaction" is no longer that one. If the
   * terminal still cannot say, nothing new is sent (TERMINAL_NOT_READY, certainly not charged).
   */
  async settleEarlier(driver: TerminalDriver, current: JournalRow, log: Logger): Promise<void> {
    if (driver.queryOutcome === undefined) return;
    const latest = await this.journal.latestSentBefore(
      this.merchantId,
      current.terminalId,
      current.id,
    );
    if (latest?.state !== 'unknown') return;
    // Settled without asking: the one before it may be unknown too.
    if (await this.settleIfNeverSent(latest, 'before the next transaction', log))
      return this.settleEarlier(driver, current, log);
    // `updatedAt` is when it became unknown: surely after it was sent.
    const found = await this.provenNotCharged(
      await driver.queryOutcome({
        reference: latest.reference,
        ...(await this.attemptOf(latest)),
        sentAt: await this.localTime(latest.updatedAt),
      }),
      latest,
    );
    if (found.outcome === 'unknown') {
      if (found.errorCode !== 'OUTCOME_UNKNOWN') {
        throw new EcrError(
          'TERMINAL_NOT_READY',
          `the outcome of ${latest.reference} on this terminal is still unknown and the terminal cannot say yet (${found.message ?? found.errorCode}): nothing was sent`,
        );
      }
      // The terminal answered but cannot tell (it has no record of it): no status query ever
      // will, so the row stays `unknown` for a person (`tx list --unresolved`) and work goes on.
      log.warn(
        { reference: latest.reference, why: found.message },
        'the terminal cannot say what became of an unknown transaction: reconcile it by hand',
      );
      return;
    }
    const settled = await this.journal.resolveUnknown(latest.id, {
      ...found,
      message: `${found.message ?? ''} before the next transaction`,
    });
    if (settled !== undefined)
      log.warn(
        { reference: latest.reference, outcome: settled.state },
        'unknown transaction settled',
      );
    else
      await this.noteIfContradicted(
        latest.id,
        found,
        'status query before the next transaction',
        log,
      );
  }

  /** The terminal answered after all: an `unknown` row gets its real outcome. */
  async settleLate(row: JournalRow, late: DriverOutcome, log: Logger): Promise<void> {
    try {
      const resolved = await this.journal.resolveUnknown(row.id, {
        ...late,
        message: [late.message, 'settled by a late answer from the terminal']
          .filter(Boolean)
          .join('; '),
      });
      if (resolved !== undefined) {
        log.warn({ outcome: resolved.state }, 'unknown transaction settled by a late answer');
        return;
      }
      await this.noteIfContradicted(row.id, late, 'a late answer', log);
    } catch (error) {
      log.error({ err: toEcrError(error).message }, 'could not record a late answer');
    }
  }

  /**
   * An `unknown` left by a process that stopped before journaling `sent` never reached the
   * terminal: `sent` is committed before the first byte. Recovery says so when it finds the row
   * still `received` (RECOVERED_BEFORE_SENT, decided under the row's lock), and the timeline
   * agrees (no `sent`); then it is settled `failed` without asking the terminal — whose status
   * answer could not prove it until the longest card step had passed, keeping the terminal from
   * taking payments meanwhile (found by the invariant suite, test/faults/connector.test.ts).
   * Both are required: a timeline alone proves nothing for a row older than it (migration 6
   * filled the timelines of earlier rows without their `sent`). Returns true when it settled.
   */
  private async settleIfNeverSent(row: JournalRow, when: string, log: Logger): Promise<boolean> {
    if (row.message !== RECOVERED_BEFORE_SENT) return false;
    const events = await this.journal.eventsOf(row.id);
    if (events.some((e) => e.state === 'sent')) return false;
    const settled = await this.journal.resolveUnknown(row.id, {
      outcome: 'failed',
      errorCode: 'ABORTED',
      message: `interrupted before the request was sent: the terminal was never contacted, nothing was charged (journal timeline, ${when})`,
    });
    if (settled !== undefined)
      log.warn({ reference: row.reference }, 'unknown transaction never sent: settled as failed');
    return true;
  }

  /**
   * The terminal's word on a transaction that is no longer `unknown` (settled meanwhile, by hand
   * or otherwise): when it disagrees with what is recorded, it is logged and kept in the
   * transaction's timeline for a person to reconcile. The record itself is never overwritten.
   */
  private async noteIfContradicted(
    id: number,
    said: DriverOutcome,
    source: string,
    log: Logger,
  ): Promise<void> {
    const current = await this.journal.get(id);
    if (current === undefined || current.state === said.outcome) return;
    log.error(
      { recorded: current.state, terminalSaid: said.outcome, approvalCode: said.approvalCode },
      'the terminal contradicts the recorded outcome: reconcile',
    );
    await this.journal.annotate(
      id,
      `${source}: the terminal says ${said.outcome}${said.approvalCode === undefined ? '' : ` (approval ${said.approvalCode})`}, but ${current.state} is recorded: reconcile`,
    );
  }

  /**
   * A status answer naming another transaction as the terminal's last proves `target` never
   * completed only if that transaction is ours and older: then nothing ran after `target`. One
   * this journal does not know (another POS, a truncated reference) proves nothing: `unknown`.
   */
  private async provenNotCharged(found: DriverOutcome, target: JournalRow): Promise<DriverOutcome> {
    const last = found.lastReference;
    if (found.outcome !== 'failed' || last === undefined) return found;
    // The terminal's last is an earlier attempt under this same reference (it echoed that
    // attempt's request id): older by construction, since no attempt follows an unknown one.
    if (last === target.reference) return found;
    const row = await this.journal.find({
      merchantId: this.merchantId,
      terminalId: target.terminalId,
      reference: last,
    });
    if (row !== undefined && row.id < target.id) return found;
    return {
      outcome: 'unknown',
      errorCode: 'OUTCOME_UNKNOWN',
      message: `the terminal's last transaction is ${last}, which this journal did not send before ${target.reference}: another POS may have used the terminal; reconcile`,
    };
  }

  /**
   * What a status query needs to tell an attempt from the earlier attempts under its reference,
   * which the terminal saw with the same reference (see StatusTarget).
   */
  private async attemptOf(
    row: JournalRow,
  ): Promise<Pick<StatusTarget, 'wireId' | 'attempt' | 'earlierTerminalTxIds'>> {
    // The wire id lets a terminal that echoes it (SEMI's REQ_TXN_ID) name this very request.
    const wireId = await this.journal.wireIdOf(row.id);
    const pinned = wireId === undefined ? {} : { wireId };
    if (row.attempt <= 1) return { ...pinned, attempt: row.attempt };
    const earlier = (await this.journal.attemptsOf(row))
      .filter((a) => a.attempt < row.attempt)
      .flatMap((a) => (a.terminalTxId === undefined ? [] : [a.terminalTxId]));
    return { ...pinned, attempt: row.attempt, earlierTerminalTxIds: earlier };
  }

  /**
   * A journal time (a row's `updatedAt`, on the journal's clock) on this machine's clock (ms
   * since the epoch, what StatusTarget.sentAt is): the row's age measured by the journal, so that
   * machines whose clocks disagree agree on it.
   */
  private async localTime(journalTime: number): Promise<number> {
    try {
      return Date.now() - Math.max(0, (await this.journal.now()) - journalTime);
    } catch {
      // Unreadable clock: "sent just now" keeps a status query patient, never hasty.
      return Date.now();
    }
  }
}

/** The outcomes a person may record for an `unknown` transaction. */
export const HAND_OUTCOMES = ['approved', 'declined', 'cancelled', 'failed'] as const;
export type HandOutcome = (typeof HAND_OUTCOMES)[number];
/** Longest reconciliation note kept (before `by` is added). */
export const MAX_NOTE_LENGTH = 500;
/** The rule a resolution by hand breaks when its row is not (or no longer) `unknown`. */
export const MUST_BE_UNKNOWN = 'must name an unknown transaction';

/** A resolution by hand, checked: made by `handResolution`, recorded by `resolveByHand`. */
export interface HandResolution {
  readonly outcome: HandOutcome;
  /** The note as the journal keeps it: trimmed, card numbers masked, who recorded it added. */
  readonly note: string;
}

/**
 * Checks what a person recorded after reconciling an `unknown` transaction (terminal receipt,
 * acquirer report), before anything is looked up: the outcome is one of HAND_OUTCOMES; the note
 * (`note`, trimmed) is 1–MAX_NOTE_LENGTH printable characters. A note may quote a receipt: card
 * numbers in it are masked before anything keeps it. `by` (`alice in the dashboard`) is added
 * after it. INVALID_INPUT naming `outcome` or the note (`noteField`: how the caller names it,
 * `note` on the command line, `reason` in the dashboard) otherwise.
 */
export function handResolution(input: {
  readonly outcome: string;
  readonly note: string;
  readonly by?: string;
  readonly noteField?: string;
}): HandResolution {
  const outcome = HAND_OUTCOMES.find((o) => o === input.outcome);
  if (outcome === undefined)
    throw invalid('INVALID_INPUT', 'outcome', 'must be approved, declined, cancelled or failed');
  const note = redactPans(input.note.trim());
  if (note.length === 0 || note.length > MAX_NOTE_LENGTH || hasControlCharacters(note)) {
    throw invalid(
      'INVALID_INPUT',
      input.noteField ?? 'note',
      `must be 1–${MAX_NOTE_LENGTH} printable characters`,
    );
  }
  return { outcome, note: input.by === undefined ? note : `${note} (by ${input.by})` };
}

/**
 * Records a resolution by hand of `row`, which must be `unknown`: only the state and the message
 * change (the journal keeps what was known before), and only once. When the row is not (or no
 * longer) `unknown`, nothing changes: INVALID_INPUT naming `rowField`, how the caller named the
 * row (`reference` on the command line, `id` in the dashboard), with the state it is in.
 */
export async function resolveByHand(
  journal: Journal,
  row: JournalRow,
  resolution: HandResolution,
  options: { readonly rowField: string; readonly logger?: Logger },
): Promise<JournalRow> {
  const resolved = await journal.resolveByHand(row.id, resolution.outcome, resolution.note);
  if (resolved === undefined) {
    const now = await journal.get(row.id);
    throw invalid(
      'INVALID_INPUT',
      options.rowField,
      MUST_BE_UNKNOWN,
      `it is ${now?.state ?? 'gone'}`,
    );
  }
  (options.logger ?? silentLogger).warn(
    {
      id: row.publicId,
      transactionId: row.id,
      reference: row.reference,
      terminalId: row.terminalId,
      outcome: resolution.outcome,
    },
    'unknown transaction resolved by hand',
  );
  return resolved;
}
