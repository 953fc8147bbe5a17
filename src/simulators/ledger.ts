import { EventEmitter } from 'node:events';

/** One charge a simulated terminal really made. */
export interface Charge {
  readonly reference: string;
  readonly amountMinor: number;
  readonly currency: string;
  readonly maskedPan: string;
  readonly approvalCode: string;
  readonly terminalTxId: string;
  /** The request id or wire number the POS used. */
  readonly requestId: string;
  /** What moved the money, where a terminal does more than sales (`auth`, `capture`, `refund`, …). */
  readonly kind?: string;
  readonly at: string;
}

/** Charges kept in memory; the oldest are dropped past this many. */
export const DEFAULT_LEDGER_CAPACITY = 100_000;

/**
 * What a simulator really charged, by reference: the ground truth "charged exactly once" tests
 * compare against. Read in-process or as JSON over the simulator's control port (`GET /ledger`).
 * Emits `charge` with each new Charge.
 */
export class ChargeLedger extends EventEmitter<{ charge: [Charge] }> {
  private readonly charges: Charge[] = [];

  constructor(private readonly capacity = DEFAULT_LEDGER_CAPACITY) {
    super();
  }

  record(charge: Omit<Charge, 'at'>): Charge {
    const full = { ...charge, at: new Date().toISOString() };
    this.charges.push(full);
    if (this.charges.length > this.capacity) this.charges.shift();
    this.emit('charge', full);
    return full;
  }

  all(): readonly Charge[] {
    return [...this.charges];
  }

  forReference(reference: string): Charge[] {
    return this.charges.filter((c) => c.reference === reference);
  }

  get count(): number {
    return this.charges.length;
  }

  toJSON(): { count: number; charges: readonly Charge[] } {
    return { count: this.charges.length, charges: this.charges };
  }
}
