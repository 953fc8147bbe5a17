import type { Logger } from 'pino';
import type { TerminalDriver } from '../core/driver.js';
import { EcrError } from '../core/errors.js';
import type { TerminalAddress } from '../core/terminal-address.js';
import type { Protocol } from '../core/terminal-address.js';
import { PAYABLE_DEFAULT_CURRENCY, PayableDriver } from './payable.js';
import { CONCERT_DEFAULT_CURRENCY, ConcertDriver } from './concert.js';
import { SEMI_DEFAULT_CURRENCY, SemiDriver } from './semi.js';

/** A terminal's currency when neither its address (`?currency=`) nor a setting names one. */
export const DEFAULT_CURRENCIES: Readonly<Record<Protocol, string>> = {
  payable: PAYABLE_DEFAULT_CURRENCY,
  semi: SEMI_DEFAULT_CURRENCY,
  concert: CONCERT_DEFAULT_CURRENCY,
};

export interface DriverSettings {
  readonly token?: string;
  /** PAYable: this POS's name. */
  readonly posName?: string;
  /** Concert: this POS's number on the terminal, 1–99 (else `?pos=` in the address). */
  readonly posNumber?: number;
  /** The terminal's currency; wins over `?currency=` in the address. */
  readonly currency?: string;
  readonly answerTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  readonly logger?: Logger;
}

/**
 * The driver for a (real or already-started simulated) terminal at `address`. Options given
 * here win over the address's query string (`?token=…&pos=…`).
 */
export function createDriver(
  address: TerminalAddress,
  settings: DriverSettings = {},
): TerminalDriver {
  // What every network driver takes: only the settings that were given.
  const currency = settings.currency ?? address.params.currency;
  const common = {
    ...(currency === undefined ? {} : { currency }),
    ...(settings.answerTimeoutMs === undefined
      ? {}
      : { answerTimeoutMs: settings.answerTimeoutMs }),
    ...(settings.connectTimeoutMs === undefined
      ? {}
      : { connectTimeoutMs: settings.connectTimeoutMs }),
    ...(settings.logger === undefined ? {} : { logger: settings.logger }),
  };
  if (address.protocol === 'payable' && address.transport === 'ws') {
    const token = settings.token ?? address.params.token;
    const posName = settings.posName ?? address.params.pos;
    return new PayableDriver({
      url: `ws://${address.host}:${address.port}`,
      ...(token === undefined ? {} : { token }),
      ...(posName === undefined ? {} : { posName }),
      ...common,
    });
  }
  if (address.protocol === 'semi' && (address.transport === 'ws' || address.transport === 'tcp')) {
    return new SemiDriver({
      url: `${address.transport}://${address.host}:${address.port}`,
      ...common,
    });
  }
  if (address.protocol === 'concert') {
    const pos = settings.posNumber ?? posNumberParam(address.params.pos);
    const url =
      address.transport === 'serial'
        ? `serial://${address.path ?? ''}${address.params.baud === undefined ? '' : `?baud=${encodeURIComponent(address.params.baud)}`}`
        : `tcp://${address.host}:${address.port}`;
    const answerSize = choiceParam('answer', address.params.answer, ['full', 'short'] as const);
    const answerDelay = choiceParam('delay', address.params.delay, ['end', 'immediate'] as const);
    return new ConcertDriver({
      url,
      ...(pos === undefined ? {} : { posNumber: pos }),
      ...(answerSize === undefined ? {} : { answerSize }),
      ...(answerDelay === undefined ? {} : { answerDelay }),
      ...common,
    });
  }
  throw new EcrError(
    'UNSUPPORTED_OPERATION',
    `${address.protocol} terminals over ${address.transport} are not available in this release of ecr-bridge (payable over ws, semi over ws or tcp, concert over serial or tcp are)`,
    { field: 'terminal', rule: 'protocol and transport must have a driver' },
  );
}

/** `?answer=short`, `?delay=immediate`: one of a few words; anything else is refused by name. */
function choiceParam<T extends string>(
  field: string,
  value: string | undefined,
  choices: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if ((choices as readonly string[]).includes(value)) return value as T;
  const rule = `must be ${choices.join(' or ')}`;
  throw new EcrError('INVALID_TERMINAL_ADDRESS', `${field}: ${rule} (got ${value.slice(0, 12)})`, {
    field,
    rule,
  });
}

/** `?pos=07`: a Concert POS number; anything else is refused by name. */
function posNumberParam(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,2}$/.test(value) || Number(value) < 1) {
    throw new EcrError(
      'INVALID_TERMINAL_ADDRESS',
      `pos: must be a POS number from 1 to 99 (got ${value.slice(0, 8)})`,
      {
        field: 'pos',
        rule: 'a POS number from 1 to 99',
      },
    );
  }
  return Number(value);
}
