import type { Logger } from 'pino';
import type { Journal, Owner } from '../core/journal-port.js';
import { TransactionService } from '../core/transaction-service.js';

export interface OrphanSweepOptions {
  readonly journal: Journal;
  readonly logger: Logger;
  /** The gateway's own owner: its rows are not orphans while it runs. */
  readonly owner: Owner;
  /**
   * Cluster mode: asks a terminal (on whatever node holds it) about a row the sweep made
   * `unknown`. Alone, a gateway waits for the terminal's next registration instead.
   */
  readonly reconcile?: (merchant: string, terminalId: string) => void;
}

/**
 * Rows left in flight by a process that is gone (this one before a crash, or in a cluster
 * another node): `received` ones were never sent and become `failed`; `sent` ones become
 * `unknown`, and the terminals' status queries settle them.
 */
export class OrphanSweep {
  private current: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  constructor(private readonly options: OrphanSweepOptions) {}

  /** Sweeps now. */
  async run(): Promise<void> {
    const { journal, logger, owner, reconcile } = this.options;
    const recovered = await new TransactionService({ journal, logger, owner }).recover();
    if (recovered.length === 0) return;
    logger.warn({ count: recovered.length }, 'transactions left in flight were settled');
    if (reconcile === undefined) return;
    for (const row of recovered)
      if (row.state === 'unknown') reconcile(row.merchantId, row.terminalId);
  }

  /**
   * One sweep for a burst of registrations (a dead node's terminals arriving at once): at most
   * one runs, and one more after it for those that came meanwhile.
   */
  soon(): Promise<void> {
    if (this.next !== undefined) return this.next;
    const next = (this.current ?? Promise.resolve())
      .catch(() => {})
      .then(() => {
        this.next = undefined;
        this.current = this.run().finally(() => {
          this.current = undefined;
        });
        return this.current;
      });
    this.next = next;
    return next;
  }
}
