import type { DestinationStream } from 'pino';

const LEVELS: Readonly<Record<number, string>> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/**
 * A pino destination for people at a terminal: `10:42:07 info  card charged reference=ORDER-1`.
 * What reaches it was already masked and redacted by the logger.
 */
export function humanLogDestination(
  out: NodeJS.WritableStream = process.stderr,
): DestinationStream {
  return {
    write(line: string): void {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : '';
      const level = (LEVELS[entry.level as number] ?? 'log').padEnd(5);
      const fields = Object.entries(entry)
        .filter(([key]) => !HIDDEN.has(key))
        .map(
          ([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`,
        );
      out.write(
        `${time} ${level} ${String(entry.msg ?? '')}${fields.length > 0 ? ` ${fields.join(' ')}` : ''}\n`,
      );
    },
  };
}
