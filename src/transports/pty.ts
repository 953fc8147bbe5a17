import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { EcrError } from '../core/errors.js';

/** Bound on socat creating both pseudo-terminals and printing their paths. */
export const PTY_DEFAULT_START_TIMEOUT_MS = 5_000;
/** Bound on socat exiting after SIGTERM, before it gets SIGKILL. */
export const PTY_STOP_TIMEOUT_MS = 2_000;
/** socat's stderr kept for error messages. */
const MAX_STDERR_TAIL = 4 * 1024;

/**
 * Two pseudo-terminals joined back to back by socat: what one side writes, the other reads, as
 * over a null-modem cable. A simulated terminal opens `terminalPath`; the POS opens `posPath`.
 */
export interface PtyPair {
  readonly posPath: string;
  readonly terminalPath: string;
  /** Stops socat (both devices disappear, as if the cable were pulled); resolves once it has exited. */
  close(): Promise<void>;
}

export interface PtyOptions {
  /** Cancels the start (not the pair once made). */
  readonly signal?: AbortSignal;
  /** @default PTY_DEFAULT_START_TIMEOUT_MS */
  readonly startTimeoutMs?: number;
}

/** socat -d -d prints "… socat[123] N PTY is /dev/pts/4" once per pty it made (whole lines only). */
const PTY_LINE = /\bPTY is (\S+)\r?\n/g;

/** Makes a pty pair with `socat` (Debian package `socat`). */
export function openPtyPair(options: PtyOptions = {}): Promise<PtyPair> {
  const startTimeoutMs = options.startTimeoutMs ?? PTY_DEFAULT_START_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted === true) {
      reject(new EcrError('ABORTED', 'cancelled before making the pty pair'));
      return;
    }
    // raw,echo=0 on both sides: bytes pass untouched (no CR/LF mapping, no echo back).
    const socat = spawn('socat', ['-d', '-d', 'pty,raw,echo=0', 'pty,raw,echo=0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<void>((done) => socat.once('close', () => done()));
    // If this process ends without close(), socat must not outlive it holding the ptys.
    const killOnExit = (): void => void socat.kill('SIGKILL');
    process.once('exit', killOnExit);
    let stderr = '';
    let settled = false;
    let paths: string[] = [];

    const stop = async (): Promise<void> => {
      process.off('exit', killOnExit);
      if (socat.exitCode === null && socat.signalCode === null) {
        socat.kill('SIGTERM');
        const timer = setTimeout(() => socat.kill('SIGKILL'), PTY_STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      } else await exited;
    };
    const finish = (error?: EcrError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (error !== undefined) {
        void stop().then(() => reject(error));
        return;
      }
      const [posPath, terminalPath] = paths as [string, string];
      let closing: Promise<void> | undefined;
      resolve({ posPath, terminalPath, close: () => (closing ??= stop()) });
    };
    const tail = (): string => stderr.trim().split('\n').slice(-3).join(' | ');
    const onAbort = (): void =>
      finish(new EcrError('ABORTED', 'cancelled while making the pty pair'));
    const timer = setTimeout(
      () =>
        finish(
          new EcrError(
            'TIMEOUT',
            `socat did not make a pty pair within ${startTimeoutMs} ms${stderr === '' ? '' : `: ${tail()}`}`,
          ),
        ),
      startTimeoutMs,
    );
    options.signal?.addEventListener('abort', onAbort, { once: true });

    socat.once('error', (error: NodeJS.ErrnoException) =>
      finish(
        error.code === 'ENOENT'
          ? new EcrError('INVALID_INPUT', 'socat is not installed: apt-get install socat', {
              field: 'pty',
              rule: 'needs socat',
              cause: error,
            })
          : new EcrError('INVALID_INPUT', `cannot start socat: ${error.message}`, {
              field: 'pty',
              rule: 'needs socat',
              cause: error,
            }),
      ),
    );
    socat.once('exit', (code, signal) =>
      finish(
        new EcrError(
          'INVALID_INPUT',
          `socat exited (${signal ?? `code ${code}`}) before making the pty pair${stderr === '' ? '' : `: ${tail()}`}`,
          { field: 'pty', rule: 'needs socat' },
        ),
      ),
    );
    // Read all of stderr for as long as socat runs (a full pipe would stall it); keep a tail.
    socat.stderr.setEncoding('utf8');
    socat.stderr.on('data', (text: string) => {
      stderr = (stderr + text).slice(-MAX_STDERR_TAIL);
      if (settled) return;
      // Parsed from the whole text: a chunk may end in the middle of a line.
      paths = [...stderr.matchAll(PTY_LINE)].map((match) => match[1] as string);
      // socat prints each path after creating its pty, so both exist by now.
      if (paths.length >= 2 && paths.slice(0, 2).every((path) => existsSync(path))) finish();
    });
  });
}
