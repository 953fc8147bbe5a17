import type { Clock } from '../../core/clock.js';
import { EcrError } from '../../core/errors.js';

/** How often a node waiting on a long request checks that the holder that took it still lives. */
export const HOLDER_WATCH_INTERVAL_MS = 1_000;
/**
 * Failed checks in a row after which the holder is taken for gone. One miss may be a blip (the
 * holder reconnecting); a few in a row is not.
 */
export const HOLDER_MISSES = 3;

/** What one liveness check of the holder found. */
export type HolderPing =
  /** The holder answered; `done` when it says it finished the request already. */
  | { readonly type: 'pong'; readonly done: boolean }
  /** Nobody serves the holder's subjects any more (NATS "no responders"). */
  | { readonly type: 'gone' }
  /** No answer in time, or another error: a busy holder, not a dead one. */
  | { readonly type: 'no-answer' };

/** What the watch needs from the node that sent the request. */
export interface HolderWatch {
  readonly clock: Clock;
  /** A check while NATS is away proves nothing about the holder: it is skipped. */
  isConnected(): boolean;
  /** The node that said it took the request, once one did. */
  holder(): string | undefined;
  /** Asks `holder` whether it lives and still works on the request. */
  ping(holder: string): Promise<HolderPing>;
  /** @default HOLDER_WATCH_INTERVAL_MS */
  readonly intervalMs?: number;
}

/**
 * Resolves after `ms` on `clock`; rejects with the signal's reason as soon as it is aborted.
 */
export function delay(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Watches, every `intervalMs`, that the node that took a long request is alive: a holder that
 * died mid-request never answers, and its caller must not wait out the whole request timeout to
 * say `unknown`. Never resolves: rejects with LINK_LOST once the holder is taken for gone, or with
 * the signal's reason once the caller aborts it (its answer came, or its timeout).
 */
export async function watchHolder(watch: HolderWatch, signal: AbortSignal): Promise<never> {
  const intervalMs = watch.intervalMs ?? HOLDER_WATCH_INTERVAL_MS;
  /** Checks in a row that found the holder gone, or done without its answer arriving. */
  let misses = 0;
  /** Checks, while connected, that still knew of no node taking the request. */
  let unclaimed = 0;
  for (;;) {
    await delay(watch.clock, intervalMs, signal);
    if (!watch.isConnected()) continue;
    const holder = watch.holder();
    if (holder === undefined) {
      // A node says it took the request as soon as it gets it. No word after a few checks: the
      // node that got it died before its word went out (or it never left here): nobody will
      // answer, and waiting for the request bound helps no one.
      if (++unclaimed < HOLDER_MISSES) continue;
      throw new EcrError('LINK_LOST', 'no gateway node said it took the request: none will answer');
    }
    const ping = await watch.ping(holder);
    signal.throwIfAborted();
    switch (ping.type) {
      case 'pong':
        // Alive but done with the request: its answer was sent and lost (NATS went away and came
        // back meanwhile); waiting longer cannot bring it.
        if (!ping.done) misses = 0;
        else if (++misses >= HOLDER_MISSES) {
          throw new EcrError(
            'LINK_LOST',
            `node ${holder}, which held the terminal, finished the request but its answer never came`,
          );
        }
        break;
      case 'no-answer':
        // A slow answer is a busy holder, not a dead one.
        misses = 0;
        break;
      case 'gone':
        // The holder's subscriptions are gone: its process died, or NATS dropped its connection,
        // as it does for a lost machine after its ping interval.
        if (++misses >= HOLDER_MISSES) {
          throw new EcrError(
            'LINK_LOST',
            `node ${holder}, which held the terminal, is gone mid-request`,
          );
        }
        break;
    }
  }
}
