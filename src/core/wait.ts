import type { Clock } from './clock.js';
import { MAX_TIMER_MS } from './options.js';

/**
 * Resolves `ms` from now on `clock`: a poll's pause while another process holds what we wait for.
 * The clock's timers keep no process alive, but this wait has a caller awaiting it (a CLI whose
 * terminal another process holds has nothing else pending, and would exit mid-wait): an idle
 * handle holds the process open until the wait ends, as a plain Node timer would.
 */
export function wait(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const hold = setInterval(() => undefined, MAX_TIMER_MS);
    clock.setTimeout(() => {
      clearInterval(hold);
      resolve();
    }, ms);
  });
}
