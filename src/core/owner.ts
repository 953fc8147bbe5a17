import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Owner } from './journal-port.js';
import { randomLetters } from './random-text.js';

/**
 * When a process started, as the kernel counts it (`/proc/<pid>/stat` field 22, clock ticks
 * since boot), or '' where there is no /proc. Together with the pid it names one process life:
 * a pid reused by another program has another start time.
 */
export function processStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/** This boot of the kernel ('' without /proc): processes of an earlier boot are all gone. */
function bootId(): string {
  try {
    // Digits become letters: a hex run in a token must never look like a card number.
    return readFileSync('/proc/sys/kernel/random/boot_id', 'latin1')
      .trim()
      .replace(/-/g, '')
      .replace(/\d/g, (d) => 'ghijklmnop'[Number(d)] as string);
  } catch {
    return '';
  }
}

/** The pid namespace of this process ('' without /proc): pids only mean something inside it. */
function pidNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/pid').replace(/\D/g, '');
  } catch {
    return '';
  }
}

const HOST = hostname();
const BOOT = bootId();
const PID_NAMESPACE = pidNamespace();

interface OwnerParts {
  readonly host: string;
  readonly boot: string;
  readonly namespace: string;
  readonly started: string;
}

function partsOf(owner: Owner): OwnerParts | undefined {
  const [host, boot, namespace, started] = owner.token.split('~');
  if (host === undefined || boot === undefined || namespace === undefined || started === undefined)
    return undefined;
  return { host, boot, namespace, started };
}

/**
 * Builds an owner identity: the pid, and a token `<host>~<boot>~<pid namespace>~<start time>~<random>`
 * that names one life of one process (or one service object in it, by the random part).
 */
export function makeOwner(pid = process.pid): Owner {
  return Object.freeze({
    pid,
    token: [HOST, BOOT, PID_NAMESPACE, processStartTime(pid), randomLetters(16)].join('~'),
  });
}

/** How often a service with work in flight refreshes its heartbeat in the journal. */
export const HEARTBEAT_INTERVAL_MS = 5_000;
/** An owner that cannot be checked directly is taken for gone after this long without a heartbeat. */
export const OWNER_STALE_AFTER_MS = 30_000;

/**
 * True unless the process that owns a row is gone. Where it can be checked — this host, this
 * pid namespace, with /proc — dead means: an earlier boot, a pid not running, or a pid now
 * belonging to a process with another start time (pid reuse). Where it cannot — another host,
 * another pid namespace (a container), no start time to compare — the owner's heartbeat decides:
 * alive while it refreshed the journal in the last OWNER_STALE_AFTER_MS.
 */
export function isOwnerAlive(
  owner: Owner,
  self: Owner = makeOwner(),
  now: number = Date.now(),
): boolean {
  if (owner.token === self.token) return true;
  const byHeartbeat = (): boolean =>
    owner.heartbeatAt === undefined || now - owner.heartbeatAt < OWNER_STALE_AFTER_MS;
  const theirs = partsOf(owner);
  const ours = partsOf(self);
  if (theirs === undefined || ours === undefined || theirs.host !== ours.host) return byHeartbeat();
  if (theirs.boot !== '' && ours.boot !== '' && theirs.boot !== ours.boot) return false;
  if (theirs.namespace !== ours.namespace || theirs.namespace === '') return byHeartbeat();
  // Our own pid: alive only if it is our own life (another service object in this process).
  if (owner.pid === self.pid) return theirs.started === ours.started;
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const started = processStartTime(owner.pid);
  // A process we may not look into (hidepid, another user): only its heartbeat can tell.
  if (theirs.started === '' || started === '') return byHeartbeat();
  return theirs.started === started;
}
